"""Tickets: seed + recipe + mask bits rebuild the exact network."""

from __future__ import annotations

import struct

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv

from gnnmask.errors import UserError
from gnnmask.masks import (
    get_mask_group,
    load_ticket,
    make_schedule,
    mask_model,
    read_ticket,
    refresh_on_step,
    save_ticket,
    score_parameters,
    sparsify,
    ticket_graph,
)
from gnnmask.masks.tickets import _DIGEST, _HEAD, MAGIC

try:
    from gnnmask.models import build_model
except ImportError:  # pragma: no cover - while models/ is being written
    build_model = None


def build_stack(in_dim: int, hidden: int, out_dim: int, layers: int, bias: bool = True):
    """A generic stand-in builder: ``layers`` GCNConv, ReLU between them."""
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    return Stack(dims, bias)


class Stack(nn.Module):
    def __init__(self, dims, bias=True):
        super().__init__()
        self.convs = nn.ModuleList(
            GCNConv(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:])
        )
        self.norm = nn.BatchNorm1d(dims[1])  # buffers that change in training

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i == 0:
                x = self.norm(x)
            x = x.relu() if i < len(self.convs) - 1 else x
        return x


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(7)
    return torch.randn(30, 5, generator=g), torch.randint(0, 30, (2, 90), generator=g)


def trained_ticket_model(graph, rule="global", seed=4, steps=4, **kw):
    kwargs = dict(in_dim=5, hidden=16, out_dim=3, layers=3)
    torch.manual_seed(seed)
    model = mask_model(build_stack(**kwargs), sparsity=0.8, rule=rule, seed=seed, **kw)
    group = get_mask_group(model)
    schedule = make_schedule("linear", 0.8, end=0.5)
    opt = torch.optim.Adam(score_parameters(model), lr=0.05)
    model.train()
    for step in range(steps):
        group.refresh(schedule(step, 2 * steps))  # stop mid-ramp: sparsity 0.6
        opt.zero_grad()
        model(*graph).square().mean().backward()
        opt.step()
        group.refresh()
    return model.eval(), kwargs


@pytest.mark.parametrize("rule", ["global", "topk", "bernoulli", "hard-concrete"])
def test_ticket_round_trip_is_bit_identical(tmp_path, graph, rule):
    model, kwargs = trained_ticket_model(graph, rule=rule)
    path = save_ticket(tmp_path / "net.ticket", model, builder=build_stack, builder_kwargs=kwargs)
    loaded = load_ticket(path)
    group = get_mask_group(loaded)
    assert group.rule.fixed and group.sparsity == get_mask_group(model).sparsity
    assert torch.equal(loaded(*graph), model(*graph))
    saved = get_mask_group(model).masks()
    assert all(torch.equal(m, saved[n]) for n, m in group.masks().items())
    # fixed masks: no gradient reaches the scores, in train mode too
    loaded.train()
    assert not loaded(*graph).requires_grad


def test_ticket_with_builder_string_keep_scale_and_header(tmp_path, graph):
    model, kwargs = trained_ticket_model(graph, weight_init="signed-constant", scale="keep")
    path = save_ticket(
        tmp_path / "t.ticket", model, builder=f"{__name__}:build_stack", builder_kwargs=kwargs
    )
    header, payload = read_ticket(path)
    assert header["builder"] == f"{__name__}:build_stack" and header["kwargs"] == kwargs
    assert header["recipe"]["weight_init"] == "signed-constant"
    assert header["recipe"]["scale"] == "keep" and header["build_seed"] == 4
    assert torch.equal(load_ticket(path)(*graph), model(*graph))


def test_ticket_redraws_weights_with_their_gain(tmp_path, graph):
    model, kwargs = trained_ticket_model(graph, weight_gain=3.0)
    path = save_ticket(tmp_path / "g.ticket", model, builder=build_stack, builder_kwargs=kwargs)
    assert read_ticket(path)[0]["recipe"]["weight_gain"] == 3.0
    assert torch.equal(load_ticket(path)(*graph), model(*graph))


def test_ticket_keeps_the_tensors_its_recipe_leaves_unscaled(tmp_path, graph):
    model, kwargs = trained_ticket_model(graph, scale="keep", scale_exclude=["convs.1.*"])
    path = save_ticket(tmp_path / "u.ticket", model, builder=build_stack, builder_kwargs=kwargs)
    assert read_ticket(path)[0]["recipe"]["scale_exclude"] == ["convs.1.*"]
    loaded = load_ticket(path)
    assert get_mask_group(loaded).unscaled == {"convs.1.lin.weight"}
    assert torch.equal(loaded(*graph), model(*graph))


@pytest.mark.skipif(build_model is None, reason="gnnmask.models not available")
def test_gnnmask_model_ticket_needs_no_builder(tmp_path, graph):
    torch.manual_seed(1)
    model = build_model("gcn", 5, 16, 3, 4, bias=True, dropout=0.0)
    mask_model(model, sparsity=0.7, seed=1)
    opt = torch.optim.Adam(score_parameters(model), lr=0.05)
    refresh_on_step(opt, model)
    for _ in range(2):
        opt.zero_grad()
        model(*graph).sum().backward()
        opt.step()
    model.eval()
    path = save_ticket(tmp_path / "m.ticket", model)
    assert read_ticket(path)[0]["builder"] == "gnnmask.models:build_model"
    assert read_ticket(path)[0]["params"] == []  # frozen weights come from the seed
    assert torch.equal(load_ticket(path)(*graph), model(*graph))


def _rewrite(path, version: int, **kwargs) -> None:
    """Rewrite the ticket at ``path`` as format ``version`` with ``kwargs``
    changed in its builder arguments (header and checksum redone)."""
    import hashlib
    import json

    data = path.read_bytes()
    _, _, n_head = _HEAD.unpack_from(data)
    header = json.loads(data[_HEAD.size:_HEAD.size + n_head])
    header["kwargs"].update(kwargs)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    body = _HEAD.pack(MAGIC, version, len(head)) + head + data[_HEAD.size + n_head:-_DIGEST]
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_an_sgc_ticket_from_before_sgc_read_a_dropout_loads_without_one(tmp_path, graph):
    """Until format 4 an SGC stored the common dropout 0.5 it never read; a
    loaded ticket must not start dropping when trained on."""
    torch.manual_seed(2)
    model = mask_model(build_model("sgc", 5, 16, 3, 2, bias=False), sparsity=0.5, seed=2)
    path = save_ticket(tmp_path / "s.ticket", model.eval())
    assert read_ticket(path)[0]["version"] == 4
    assert load_ticket(path).config["dropout"] == 0.0
    _rewrite(path, 3, dropout=0.5)  # as a version-3 file stored it
    old = load_ticket(path)
    assert old.config["dropout"] == 0.0 and torch.equal(old(*graph), model(*graph))
    _rewrite(path, 4, dropout=0.5)  # from version 4 on the stored dropout is the one it ran
    assert load_ticket(path).config["dropout"] == 0.5


def test_a_graph_ticket_keeps_the_edges_it_runs_on(tmp_path, graph):
    x, edge_index = graph
    model = mask_model(build_model("gcn", 5, 16, 3, 2), sparsity=0.5, seed=0).eval()
    plain = save_ticket(tmp_path / "plain.ticket", model)
    assert ticket_graph(plain) is None  # runs on its dataset's whole graph
    kept, weight = edge_index[:, ::2], torch.rand(edge_index[:, ::2].size(1))
    path = save_ticket(tmp_path / "g.ticket", model, graph=(kept, weight))
    edges, weights = ticket_graph(path)
    assert torch.equal(edges, kept) and edges.dtype == torch.int64
    assert torch.equal(weights, weight)
    assert torch.equal(load_ticket(path)(x, edges, weights), model(x, kept, weight))
    unweighted = save_ticket(tmp_path / "u.ticket", model, graph=(kept, None))
    assert ticket_graph(unweighted)[1] is None


def test_ticket_is_small(tmp_path):
    """A 32-layer, 448-wide GCN: ticket <= 1/25 of the float32 state_dict."""
    if build_model is not None:
        kwargs = dict(name="gcn", in_dim=448, hidden=448, out_dim=448, layers=32, bias=False)
        torch.manual_seed(0)
        model, builder = build_model(**kwargs), None
        del kwargs["name"]
    else:  # pragma: no cover
        kwargs = dict(in_dim=448, hidden=448, out_dim=448, layers=32, bias=False)
        model, builder = build_stack(**kwargs), build_stack
    dense = sum(t.numel() * 4 for t in model.state_dict().values())
    mask_model(model, sparsity=0.9, seed=0)
    path = save_ticket(tmp_path / "big.ticket", model, builder=builder,
                       builder_kwargs=None if builder is None else kwargs)
    size = path.stat().st_size
    assert size * 25 <= dense, (size, dense)
    assert size * 32 >= dense  # one bit per weight really is stored
    loaded = load_ticket(path)
    saved = get_mask_group(model).masks()
    assert all(torch.equal(m, saved[n]) for n, m in get_mask_group(loaded).masks().items())


def test_shape_mismatch_and_wrong_model(tmp_path, graph):
    # the last layer stays unmasked: its frozen random weight comes from the build seed
    model, kwargs = trained_ticket_model(graph, exclude=["convs.2.*"])
    path = save_ticket(tmp_path / "t.ticket", model, builder=build_stack, builder_kwargs=kwargs)
    torch.manual_seed(4)
    other = build_stack(5, 32, 3, 3)
    with pytest.raises(UserError, match=r"does not fit the model: 'convs.0.lin.weight' has shape"):
        load_ticket(path, model=other)
    torch.manual_seed(4)
    deeper = build_stack(5, 16, 3, 4)
    with pytest.raises(UserError, match="does not fit the model"):
        load_ticket(path, model=deeper)
    torch.manual_seed(5)  # right shape, other build seed: unmasked weights differ
    with pytest.raises(UserError, match="fingerprint mismatch"):
        load_ticket(path, model=build_stack(**kwargs))
    torch.manual_seed(4)
    assert torch.equal(load_ticket(path, model=build_stack(**kwargs))(*graph), model(*graph))


def test_no_builder_needs_a_model(tmp_path, graph):
    model, _ = trained_ticket_model(graph)
    path = save_ticket(tmp_path / "t.ticket", model)
    with pytest.raises(UserError, match="names no builder"):
        load_ticket(path)


def test_corrupt_truncated_and_foreign_files(tmp_path, graph):
    model, kwargs = trained_ticket_model(graph)
    path = save_ticket(tmp_path / "t.ticket", model, builder=build_stack, builder_kwargs=kwargs)
    data = path.read_bytes()
    cases = {
        "flipped": data[:-100] + bytes([data[-100] ^ 1]) + data[-99:],
        "truncated": data[: len(data) // 2],
        "tiny": data[:10],
        "magic": b"NOTATKT\0" + data[8:],
        "version": data[:8] + struct.pack("<H", 99) + data[10:],
        "empty": b"",
    }
    messages = {
        "flipped": "checksum mismatch", "truncated": "checksum mismatch",
        "tiny": "not a gnnmask ticket", "magic": "not a gnnmask ticket",
        "version": "format version 99", "empty": "not a gnnmask ticket",
    }
    assert data[:8] == MAGIC
    for name, blob in cases.items():
        bad = tmp_path / f"{name}.ticket"
        bad.write_bytes(blob)
        with pytest.raises(UserError, match=messages[name]):
            load_ticket(bad)
    with pytest.raises(UserError, match="cannot read ticket"):
        load_ticket(tmp_path / "missing.ticket")
    with pytest.raises(UserError, match="builder 'nocolon' is invalid"):
        save_ticket(tmp_path / "x.ticket", model, builder="nocolon")
    with pytest.raises(UserError, match="JSON"):
        save_ticket(tmp_path / "x.ticket", model, builder=build_stack,
                    builder_kwargs={"x": object()})


def build_lazy(out_dim: int):
    """A lazily initialised model (``in_channels=-1``)."""
    return LazyNet(out_dim)


class LazyNet(nn.Module):
    def __init__(self, out_dim):
        super().__init__()
        self.conv = GCNConv(-1, out_dim)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


def test_lazy_model_ticket(tmp_path, graph):
    torch.manual_seed(0)
    model = build_lazy(4)
    model(*graph)  # the dry forward materialises the weight
    mask_model(model, sparsity=0.5, seed=0).eval()
    path = save_ticket(tmp_path / "lazy.ticket", model, builder=build_lazy,
                       builder_kwargs={"out_dim": 4})
    assert torch.equal(load_ticket(path)(*graph), model(*graph))


def test_sparse_trained_ticket_stores_the_trained_weights(tmp_path, graph):
    torch.manual_seed(2)
    kwargs = dict(in_dim=5, hidden=16, out_dim=3, layers=3)
    model = sparsify(build_stack(**kwargs), sparsity=0.8, distribution="erk", seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        model(*graph).square().mean().backward()
        opt.step()
    model.eval()
    path = save_ticket(tmp_path / "sparse.ticket", model, builder=build_stack,
                       builder_kwargs=kwargs)
    header, _ = read_ticket(path)
    assert header["recipe"]["kind"] == "sparsify" and header["fingerprint"] is None
    assert {p[0] for p in header["params"]} == {n for n, _ in model.named_parameters()}
    torch.manual_seed(99)  # another build seed: the stored weights decide
    loaded = load_ticket(path)
    assert torch.equal(loaded(*graph), model(*graph))
    saved = get_mask_group(model).masks()
    assert all(torch.equal(m, saved[n]) for n, m in get_mask_group(loaded).masks().items())
    assert all(p.requires_grad for p in loaded.parameters())  # trainable, as saved


def test_swapped_or_wrong_arguments_name_the_argument(tmp_path):
    model = mask_model(nn.Linear(4, 3), sparsity=0.5, seed=0)
    wrong = r"\(\): argument 'path' is a ParametrizedLinear"
    with pytest.raises(TypeError, match="save_ticket" + wrong):
        save_ticket(model, tmp_path / "t.ticket")
    with pytest.raises(TypeError, match="load_ticket" + wrong):
        load_ticket(model)
    assert list(tmp_path.iterdir()) == []
