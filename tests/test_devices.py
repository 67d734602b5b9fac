"""The whole path on every device: ``pytest -m cuda`` on a GPU machine runs the CUDA half."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gnnmask.data import load_dataset
from gnnmask.masks import (
    get_mask_group,
    load_ticket,
    mask_model,
    refresh_on_step,
    save_ticket,
    score_parameters,
    sparsify,
)
from gnnmask.masks.select import keep_mask
from gnnmask.models import build_model
from gnnmask.train import RunConfig, train


def test_straight_through_gradients_on_the_device(device):
    torch.manual_seed(0)
    lin = mask_model(nn.Linear(8, 6, bias=False), sparsity=0.5, scale="keep").to(device)
    w = lin.parametrizations.weight.original.detach()
    s = lin.parametrizations.weight[0].scores
    m = get_mask_group(lin).masks()["weight"]
    x, g = torch.randn(5, 8, device=device), torch.randn(5, 6, device=device)
    (lin(x) * g).sum().backward()
    c = 2 ** 0.5
    assert torch.allclose(s.grad, c * w * (g.t() @ x), atol=1e-5)
    assert torch.allclose(lin(x), x @ (c * w * m).t(), atol=1e-5)


def test_exact_selection_on_the_device_matches_the_cpu(device):
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(300_000, generator=g)  # above SMALL: the sampled band
    flat[::7] = 0.25  # ties
    for k in (1, 150_000, 299_999):
        assert torch.equal(keep_mask(flat.to(device), k).cpu(), keep_mask(flat, k))


def test_masks_refresh_on_the_device(device):
    torch.manual_seed(0)
    model = mask_model(build_model("gcn", 6, 16, 3, 3, dropout=0.0, bias=False),
                       sparsity=0.7).to(device)
    group = get_mask_group(model)
    assert all(m.device.type == device.type for m in group.masks().values())
    opt = torch.optim.Adam(score_parameters(model), lr=0.5)
    refresh_on_step(opt, model)
    x = torch.randn(20, 6, device=device)
    ei = torch.randint(0, 20, (2, 60), device=device)
    before = {k: v.clone() for k, v in group.masks().items()}
    model(x, ei).square().sum().backward()
    opt.step()
    assert any(not torch.equal(before[k], v) for k, v in group.masks().items())


def test_tickets_saved_on_the_device_load_on_the_cpu_and_back(tmp_path, device):
    torch.manual_seed(3)
    model = build_model("gcn", 6, 16, 3, 3, dropout=0.0)
    mask_model(model, sparsity=0.6, seed=3)
    model = model.to(device).eval()
    x, ei = torch.randn(20, 6), torch.randint(0, 20, (2, 60))
    path = save_ticket(tmp_path / "t.ticket", model)
    cpu = load_ticket(path)
    assert torch.allclose(cpu(x, ei), model(x.to(device), ei.to(device)).cpu(), atol=1e-5)
    back = load_ticket(path, device=device)
    assert torch.equal(back(x.to(device), ei.to(device)), model(x.to(device), ei.to(device)))


def test_sparse_masks_stay_zero_on_the_device(device):
    torch.manual_seed(0)
    model = sparsify(build_model("gcn", 6, 16, 3, 2, dropout=0.0), 0.8).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=5e-4)
    x, ei = torch.randn(20, 6, device=device), torch.randint(0, 20, (2, 60), device=device)
    for _ in range(5):
        opt.zero_grad()
        model(x, ei).square().mean().backward()
        opt.step()
    group = get_mask_group(model)
    for name, (module, attr) in group.targets.items():
        assert (module.parametrizations[attr].original[~group.masks()[name]] == 0).all()


@pytest.mark.parametrize("method", ["dense", "ugt", "rigl"])
def test_the_engine_on_the_device(device, method):
    data = load_dataset("csbm", nodes=240, classes=3, features=12, seed=0)
    rec = train(RunConfig(method=method, epochs=5, hidden=16, device=str(device),
                          layer_metrics="default"), data=data)
    assert rec["device"].startswith(device.type)
    # the best validation state was restored on the device: its test accuracy is that epoch's
    assert rec["test_acc"] == rec["history"][rec["best_epoch"]]["test_acc"]
    assert rec["layers"]
    assert data.x.device.type == "cpu" and data.edge_index.device.type == "cpu"  # not moved
