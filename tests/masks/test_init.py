"""Weight and score initialisations."""

from __future__ import annotations

import math

import pytest
import torch

from gnnmask.masks import mask_model
from gnnmask.masks.init import draw, fan_in, generator, init_scores, init_weights_


def test_weight_init_distributions():
    gen = generator(0)
    shape, n = (200, 300), 300
    w = draw("kaiming-uniform", shape, gen)
    bound = math.sqrt(6 / n)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    w = draw("kaiming-normal", shape, gen)
    assert w.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.02)
    w = draw("signed-constant", shape, gen)
    assert set(w.abs().unique().tolist()) == pytest.approx([math.sqrt(2 / n)])
    assert 0.45 < (w > 0).float().mean() < 0.55
    w = draw("scaled-signed-constant", shape, gen, sparsity=0.75)
    assert w.abs().unique().tolist() == pytest.approx([math.sqrt(2 / (n * 0.25))])
    assert fan_in((4, 5, 3)) == 15 and fan_in((7,)) == 7
    s = draw("uniform", shape, gen)
    assert s.min() >= 0 and s.max() < 1
    assert torch.equal(draw("constant", (3,), gen), torch.ones(3))


def test_torch_default_scores_are_kaiming_uniform_with_a_sqrt5():
    shape = (200, 300)
    s = draw("torch-default", shape, generator(0))
    ref = torch.nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5),
                                         generator=generator(0))
    assert torch.equal(s, ref)  # the same distribution and the same draws
    assert s.abs().max() <= 1 / math.sqrt(300) < draw("kaiming-uniform", shape,
                                                       generator(0)).abs().max()


def test_inits_deterministic_under_seed_and_independent_of_global_rng(stack):
    def weights(seed, score_init="kaiming-uniform"):
        model = stack()
        torch.manual_seed(seed + 1000)  # the global RNG must not matter
        mask_model(model, seed=seed, score_init=score_init)
        return [p.detach().clone() for n, p in model.named_parameters() if "original" in n]

    a, b = weights(5), weights(5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(not torch.equal(x, y) for x, y in zip(a, weights(6)))
    assert all(torch.equal(x, y) for x, y in zip(a, weights(5, score_init="uniform")))
    t = [torch.empty(3, 4), torch.empty(5, 4)]
    init_weights_(t, "kaiming-normal", 1)
    assert not torch.equal(init_scores(t, "kaiming-normal", 1)[0], t[0])
