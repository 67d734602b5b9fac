"""Exact k-smallest selection (gnnmask.masks.select)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gnnmask.masks import get_mask_group, mask_model, select
from gnnmask.masks.select import keep_mask, keep_masks_pooled


def stable_drop(flat, k):
    """The reference: a stable sort drops the first ``k`` positions."""
    expected = torch.ones(flat.numel(), dtype=torch.bool)
    expected[torch.sort(flat, stable=True).indices[:k]] = False
    return expected


@pytest.mark.parametrize("small", [select.SMALL, 64])
def test_keep_mask_random_and_tied_against_stable_sort(monkeypatch, small):
    monkeypatch.setattr(select, "SMALL", small)  # 64: the sampled band path
    monkeypatch.setattr(select, "SAMPLE", 32)
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        n = int(torch.randint(1, 1500, (1,), generator=gen))
        if trial % 2:
            flat = torch.randn(n, generator=gen)
        else:  # many ties
            flat = torch.randint(0, 6, (n,), generator=gen).float()
        k = int(torch.randint(0, n + 1, (1,), generator=gen))
        expected = stable_drop(flat, k)
        assert torch.equal(keep_mask(flat, k), expected)
        cuts = sorted(torch.randint(0, n + 1, (3,), generator=gen).tolist())
        parts = [p for p in torch.tensor_split(flat, cuts) if p.numel()]
        pooled = keep_masks_pooled(parts, k)
        assert torch.equal(torch.cat(pooled), expected)


def test_band_that_misses_falls_back_to_the_exact_answer(monkeypatch):
    monkeypatch.setattr(select, "SMALL", 16)
    monkeypatch.setattr(select, "SAMPLE", 4)
    # the strided sample sees only the zeros; the threshold lies among the ones
    flat = torch.ones(400)
    flat[::100] = 0.0
    for k in (3, 4, 5, 200):
        assert torch.equal(keep_mask(flat, k), stable_drop(flat, k))


def test_large_masked_model_is_exact():
    big = nn.Sequential(*(nn.Linear(300, 300, bias=False) for _ in range(2)))
    for init in ("kaiming-uniform", "constant"):  # > SMALL scores: the sampled band
        mask_model(big, sparsity=0.9, score_init=init)
        masks = get_mask_group(big).masks()
        assert sum(m.numel() for m in masks.values()) > select.SMALL
        assert sum(int((~m).sum()) for m in masks.values()) == 162000
        from gnnmask.masks import unmask_model

        unmask_model(big)
