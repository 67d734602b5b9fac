"""Deep GNN models: every architecture at depth 1, 2 and 32, options and errors."""

import subprocess
import sys

import pytest
import torch
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_undirected

from gnnmask.errors import UserError
from gnnmask.models import MODELS, DeepGNN, build_model
from gnnmask.models.deep import OPTIONS, OWN_DEFAULTS, normalized_adjacency
from gnnmask.models.gat import GATHeadsConv
from gnnmask.train import RunConfig, resolve_config
from gnnmask.train.config import MODEL_FIELDS


@pytest.fixture(scope="module")
def graph():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 6, generator=g)
    edge_index = to_undirected(torch.randint(0, 30, (2, 80), generator=g), num_nodes=30)
    return x, edge_index


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("layers", [1, 2, 32])
def test_forward_backward_every_model_and_depth(graph, name, layers):
    x, edge_index = graph
    torch.manual_seed(0)
    reads = MODELS[name].reads
    model = build_model(name, 6, 8, 3, layers, **({"dropout": 0.1} if "dropout" in reads else {}),
                        **({"heads": 2} if "heads" in reads else {}))
    out, hidden = model(x, edge_index, return_hidden=True)
    assert out.shape == (30, 3)
    assert torch.isfinite(out).all()
    assert hidden[0] is x
    n_hidden = len(model.hidden)  # each backbone's own count, checked in its tests
    assert len(hidden) == 1 + n_hidden
    assert len(model.trace_modules()) == n_hidden + 1  # hidden states, then the logits
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def test_gcn_matches_pyg_gcnconv_on_edge_index(graph):
    """The CSR propagation equals PyG's own normalising GCNConv on edge_index."""
    x, edge_index = graph
    model = build_model("gcn", 6, 8, 3, 1, bias=True, dropout=0.0)
    ref = GCNConv(6, 3)
    ref.load_state_dict(model.convs[0].state_dict())
    assert torch.allclose(model(x, edge_index), ref(x, edge_index), atol=1e-6)


def test_gcn_gradients_match_pyg_on_a_directed_graph():
    """The backward pass through the precomputed transpose is exact, also
    where the normalised adjacency is not symmetric."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 4, generator=g)
    edge_index = torch.randint(0, 12, (2, 30), generator=g)
    model = build_model("gcn", 4, 5, 3, 2, bias=True, dropout=0.0)
    ref = [GCNConv(4, 5), GCNConv(5, 3)]
    for conv, r in zip(model.convs, ref):
        r.load_state_dict(conv.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    model(xa, edge_index).square().sum().backward()
    ref[1](torch.relu(ref[0](xb, edge_index)), edge_index).square().sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    for conv, r in zip(model.convs, ref):
        assert torch.allclose(conv.lin.weight.grad, r.lin.weight.grad, atol=1e-5)


@pytest.mark.parametrize("name", ["gcnii", "appnp", "dagnn", "gprgnn"])
def test_adjacency_path_equals_pygs_own_layers_on_a_directed_graph(name):
    """GCNII's and the predict-then-propagate backbones' layers take the
    precomputed transpose (:class:`Adjacency`); outputs and gradients equal
    PyG's own GCN2Conv / APPNP propagating the same normalised edges, also
    where the normalised adjacency is not symmetric."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 4, generator=g)
    edge_index = torch.randint(0, 12, (2, 30), generator=g)
    torch.manual_seed(0)
    model = build_model(name, 4, 5, 3, 3, dropout=0.0)
    # differentiable unit edge weights: DeepGNN.graph hands PyG's message
    # passing the normalised edges
    ones = torch.ones(edge_index.size(1), requires_grad=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = model(xa, edge_index)
    ref = model(xb, edge_index, ones)
    assert torch.allclose(out, ref, atol=1e-6)
    grads = torch.autograd.grad(out.square().sum(), [xa, *model.parameters()])
    refs = torch.autograd.grad(ref.square().sum(), [xb, *model.parameters()])
    for a, b in zip(grads, refs):
        assert torch.allclose(a, b, atol=1e-5)


def test_adjacency_path_is_bit_identical_to_the_csr_path():
    """The precomputed transpose changes no bit: GCN2Conv (shared and
    separate weights) and APPNP on an Adjacency give the same outputs and
    gradients as on its CSR matrix ``adj_t`` alone (PyG's spmm, whose
    backward transposes), here on a directed graph."""
    from gnnmask.models.appnp import APPNPPropagation
    from gnnmask.models.deep import gcn_adjacency
    from gnnmask.models.gcnii import GCNIILayer
    g = torch.Generator().manual_seed(3)
    edge_index = torch.randint(0, 40, (2, 160), generator=g)
    adj = gcn_adjacency(edge_index, 40)
    x, x0 = torch.randn(40, 8, generator=g), torch.randn(40, 8, generator=g)
    torch.manual_seed(0)
    layers = [GCNIILayer(8, 0.1, 0.5, layer=2, normalize=False),
              GCNIILayer(8, 0.1, 0.5, layer=2, shared_weights=False, normalize=False),
              APPNPPropagation(K=4, alpha=0.1, normalize=False)]
    for layer in layers:
        results = []
        for graph in (adj, adj.adj_t):
            inputs = [x.clone().requires_grad_(), x0.clone().requires_grad_()]
            out = layer(*inputs, graph) if isinstance(layer, GCNIILayer) else \
                layer(inputs[0], graph)
            wrt = [*inputs, *layer.parameters()]
            grads = torch.autograd.grad(out.square().sum(), wrt, allow_unused=True)
            results.append([out, *(gr for gr in grads if gr is not None)])
        assert len(results[0]) == len(results[1]) > 1
        assert all(torch.equal(a, b) for a, b in zip(*results)), layer


def test_appnp_edge_dropout_on_an_adjacency_takes_pygs_path(graph):
    """PyG's APPNP edge dropout is kept when the graph is an Adjacency: the
    same draws and output as APPNP on the CSR matrix itself."""
    from gnnmask.models.appnp import APPNPPropagation
    from gnnmask.models.deep import gcn_adjacency
    x, edge_index = graph
    adj = gcn_adjacency(edge_index, 30)
    prop = APPNPPropagation(K=3, alpha=0.1, dropout=0.5, normalize=False).train()
    torch.manual_seed(0)
    out = prop(x, adj)
    torch.manual_seed(0)
    assert torch.equal(out, prop(x, adj.adj_t))
    assert not torch.equal(out, prop.eval()(x, adj))  # the dropout did act


def test_normalized_adjacency_is_symmetric_with_self_loops(graph):
    x, edge_index = graph
    a = normalized_adjacency(edge_index, 30).to_dense()
    assert torch.allclose(a, a.T)
    deg = (a != 0).sum(1)  # neighbours + self loop
    assert torch.allclose(a.diagonal(), 1.0 / deg.float())


def _outputs(model, modules, x, edge_index):
    """Outputs of ``modules`` in one forward pass (by forward hooks)."""
    seen = []
    handles = [m.register_forward_hook(lambda m, a, out: seen.append(out)) for m in modules]
    out, hidden = model(x, edge_index, return_hidden=True)
    for h in handles:
        h.remove()
    return seen, hidden


@pytest.mark.parametrize("norm", ["batch", "pair", "layer"])
def test_norms_normalise_as_stated(graph, norm):
    torch.manual_seed(0)
    model = build_model("gcn", 6, 8, 3, 4, norm=norm, dropout=0.0).train()
    normed, _ = _outputs(model, model.norms, *graph)
    for h in normed:
        # (1 up to the eps = 1e-5 the norms add to the variance)
        if norm == "batch":  # per feature: zero mean, unit (biased) variance
            assert torch.allclose(h.mean(0), torch.zeros(8), atol=1e-5)
            assert torch.allclose(h.var(0, unbiased=False), torch.ones(8), atol=5e-3)
        elif norm == "pair":  # centred columns, mean squared row norm 1 (Zhao & Akoglu 2020)
            assert torch.allclose(h.mean(0), torch.zeros(8), atol=1e-5)
            assert h.square().sum(1).mean().item() == pytest.approx(1.0, rel=5e-3)
        else:  # per node: zero mean, unit variance
            assert torch.allclose(h.mean(1), torch.zeros(30), atol=1e-5)
            assert torch.allclose(h.var(1, unbiased=False), torch.ones(30), atol=5e-3)


@pytest.mark.parametrize("residual", ["none", "plain", "initial"])
def test_residuals_combine_as_stated(graph, residual):
    torch.manual_seed(0)
    model = build_model("gcn", 6, 8, 3, 5, residual=residual, dropout=0.0).eval()
    convs, hidden = _outputs(model, model.convs, *graph)
    a = model.alpha
    for i in range(2, 4):  # hidden[i] is the output of layer i (1-based)
        new = convs[i - 1].relu()
        expected = {"none": new, "plain": new + hidden[i - 1],
                    "initial": (1 - a) * new + a * hidden[1]}[residual]
        assert torch.allclose(hidden[i], expected, atol=1e-6), i
    assert torch.equal(hidden[1], convs[0].relu())  # the first layer has no residual


def test_bias_off_removes_biases():
    model = build_model("gcn", 6, 8, 3, 3, bias=False)
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]


def test_reset_parameters_redraws(graph):
    model = build_model("sage", 6, 8, 3, 2)
    before = [p.clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_repr_is_informative():
    text = repr(build_model("gat", 6, 8, 3, 5, heads=2, norm="pair"))
    assert text.startswith("GAT(6 -> 8 x 5 -> 3") and "heads=2" in text and "norm=pair" in text


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="mlp"), "unknown --model 'mlp'"),
        (dict(layers=0), "layers 0"),
        (dict(layers=129), "layers 129"),
        (dict(hidden=-4), "hidden -4"),
        (dict(norm="graph"), "unknown norm 'graph'"),
        (dict(residual="dense"), "unknown residual 'dense'"),
        (dict(activation="swish"), "unknown activation 'swish'"),
    ],
)
def test_bad_options_raise_user_error(kwargs, match):
    args = dict(name="gcn", in_dim=6, hidden=8, out_dim=3, layers=2)
    args.update(kwargs)
    with pytest.raises(UserError, match=match):
        build_model(**args)


def test_cpu_dropout_is_inverted_bernoulli_with_matching_gradient():
    from gnnmask.models.deep import dropout

    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5  # no zeros, so dropped entries are exactly the zeros
    x.requires_grad_(True)
    y = dropout(x, 0.3, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01  # 200k draws: sd ~0.001
    assert torch.allclose(y[kept], x.detach()[kept] / 0.7)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.7)
    assert dropout(x, 0.3, False) is x and dropout(x, 0.0, True) is x
    torch.manual_seed(1)
    a = dropout(x, 0.5, True)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.5, True))  # seeded: reproducible


def test_sparse_input_features_give_the_dense_outputs_and_gradients():
    from gnnmask.models.deep import sparse_features

    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 30, generator=g) * (torch.rand(40, 30, generator=g) < 0.04)
    edge_index = to_undirected(torch.randint(0, 40, (2, 120), generator=g), num_nodes=40)
    xs = sparse_features(x)
    assert xs.layout == torch.sparse_csr and sparse_features(torch.ones(3, 3)).layout == \
        torch.strided  # dense features stay dense
    runs = []
    for inp in (x, xs):
        torch.manual_seed(0)
        model = build_model("gcn", 30, 8, 3, 3, dropout=0.0)
        out = model(inp, edge_index)
        out.square().sum().backward()
        runs.append((out, [p.grad for p in model.parameters()]))
    (a, ga), (b, gb) = runs
    assert torch.allclose(a, b, atol=1e-6)
    assert all(torch.allclose(u, v, atol=1e-5) for u, v in zip(ga, gb))
    # dropout draws among the stored entries only: zeros stay zero, the rest scale by 1/(1-p)
    from gnnmask.models.deep import dropout

    dropped = dropout(xs, 0.5, True).to_dense()
    assert ((dropped == 0) | (dropped == 2 * x)).all() and (dropped[x == 0] == 0).all()


@pytest.mark.parametrize("degree", ["in", "out"])
def test_gcn_degree_normalises_asymmetric_edge_weights_by_in_or_out_degree(degree):
    """On a directed, weighted graph ``degree="in"`` is PyG's ``gcn_norm``
    (degrees summed over each node's incoming weights) and ``"out"`` the UGS
    code's dense normalisation, D^-1/2 (A + I)^T D^-1/2 with D the row sums
    of A + I, A[j, i] the weight of the edge j -> i. Hand-computed densely,
    for learnt (differentiable) and for fixed weights alike."""
    g = torch.Generator().manual_seed(0)
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 3], [1, 2, 2, 0, 0, 1]])
    weight = torch.rand(6, generator=g) + 0.2
    x = torch.randn(4, 3, generator=g)
    a = torch.zeros(4, 4)
    a[edge_index[0], edge_index[1]] = weight
    a = a + torch.eye(4)
    d = (a.sum(1) if degree == "out" else a.sum(0)).pow(-0.5)
    expected_prop = d[:, None] * a.t() * d[None, :]  # row i: messages into i
    torch.manual_seed(0)
    model = build_model("gcn", 3, 5, 2, 1, bias=False, dropout=0.0, degree=degree)
    expected = expected_prop @ (x @ model.convs[0].lin.weight.t())
    for w in (weight, weight.clone().requires_grad_()):
        assert torch.allclose(model(x, edge_index, w), expected, atol=1e-6)
    if degree == "out":  # differs from the in-degree on this graph
        other = build_model("gcn", 3, 5, 2, 1, bias=False, dropout=0.0)
        other.load_state_dict(model.state_dict())
        assert not torch.allclose(other(x, edge_index, weight), expected, atol=1e-3)


def test_degree_is_read_by_gcn_only_and_checked():
    with pytest.raises(UserError, match="degree 'both' is invalid; allowed: in, out"):
        build_model("gcn", 3, 5, 2, 2, degree="both")
    with pytest.raises(UserError, match="degree 'out' is not read by model 'gat'"):
        build_model("gat", 3, 5, 2, 2, degree="out")
    with pytest.raises(UserError, match="--degree 'out' is not read by model 'gcnii'"):
        resolve_config(RunConfig(model="gcnii", degree="out"))


def test_dropout_on_sparse_features_warns_nothing():
    """Dropping sparse CSR features builds a CSR tensor; torch's "sparse
    invariant checks are implicitly disabled" warning stays inside gnnmask.
    In a fresh process: torch warns once per process."""
    code = ("import warnings, torch\n"
            "from gnnmask.models.deep import dropout, sparse_features\n"
            "x = sparse_features(torch.eye(50))\n"
            "warnings.simplefilter('error')\n"
            "dropout(x, 0.5, True)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# every backbone is one registered class that declares the options it reads
NON_DEFAULT = dict(dropout=0.3, activation="elu", bias=False, norm="pair", residual="plain",
                   heads=2, output_heads=2, alpha=0.3, theta=0.9, attention_dropout=0.6, jk="max",
                   jk_dropout="outputs", aggr="mean", degree="out", conv_init="uniform",
                   gat_dropout="heads")


def test_every_model_option_is_checked_by_every_backbone():
    assert set(NON_DEFAULT) == set(OPTIONS)


@pytest.mark.parametrize("name", MODELS)
def test_each_backbone_refuses_the_options_it_does_not_read(name):
    cls = MODELS[name]
    assert issubclass(cls, DeepGNN) and cls.name == name and cls.summary().endswith(".")
    for key, value in NON_DEFAULT.items():
        if key == "alpha" and key in cls.reads and key not in cls.always_reads:
            # read only by the initial residual: refused without it
            with pytest.raises(UserError, match=f"alpha 0.3 is read by model {name!r} only "
                                                "with residual initial"):
                build_model(name, 8, 8, 3, 2, alpha=value)
            model = build_model(name, 8, 8, 3, 2, alpha=value, residual="initial")
            assert model.config[key] == value
        elif key in cls.reads:
            model = build_model(name, 8, 8, 3, 2, **{key: value})
            assert model.config[key] == value
        else:
            with pytest.raises(UserError, match=f"{key} {value!r} is not read by model "
                                                f"{name!r}; it reads: "):
                build_model(name, 8, 8, 3, 2, **{key: value})
            if key in MODEL_FIELDS:  # a run configuration refuses it the same way
                with pytest.raises(UserError, match=f"is not read by model {name!r}"):
                    resolve_config(RunConfig(model=name, hidden=8, **{key: value}))


@pytest.mark.parametrize("argv, fragment", [
    ("--model appnp --norm pair", "--norm 'pair' is not read by model 'appnp'"),
    ("--model gcnii --residual initial",
     "--residual 'initial' is not supported by model 'gcnii'; allowed: none, plain"),
    ("--model gcn --heads 4", "--heads 4 is not read by model 'gcn'"),
    ("--model gat --heads 4 --hidden 6", "--hidden 6 is not divisible by --heads 4"),
    ("--model gcn --alpha 0.2", "--alpha 0.2 is read by model 'gcn' only with --residual"),
    ("--model gcnii --theta 0", "--theta 0.0 is invalid; allowed: a number > 0"),
    ("--model gcn --attention-dropout 0.6", "--attention-dropout 0.6 is not read by model 'gcn'"),
    ("--model gat --attention-dropout 1",
     "--attention-dropout 1.0 is invalid; allowed: 0 <= p < 1"),
    ("--model gcn --gat-dropout heads", "--gat-dropout 'heads' is not read by model 'gcn'"),
    ("--model gcn --output-heads 8", "--output-heads 8 is not read by model 'gcn'"),
    ("--model gat --output-heads 0", "--output-heads 0 is invalid; allowed: a positive integer"),
    ("--model gat --gat-dropout edges",
     "argument --gat-dropout: invalid choice: 'edges' (choose from 'inputs', 'heads')"),
])
def test_the_command_line_refuses_unread_model_options_before_writing(
        capsys, tmp_path, argv, fragment):
    from gnnmask.cli import main

    assert main(["train", *argv.split(), "--epochs", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_gat_attention_dropout_acts_in_training_only():
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(30, 6, generator=g), torch.randint(0, 30, (2, 120), generator=g)
    torch.manual_seed(0)
    plain = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.0)
    torch.manual_seed(0)
    dropped = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.0, attention_dropout=0.6)
    assert all(conv.dropout == 0.6 for conv in dropped.convs)
    plain.eval(), dropped.eval()
    assert torch.equal(plain(x, ei), dropped(x, ei))  # the same weights, no dropout in eval
    dropped.train()
    torch.manual_seed(1)
    assert not torch.allclose(plain(x, ei), dropped(x, ei))


def _self_loop_gat(p, gat_dropout, x):
    """A one-layer GAT over a graph with no edges (each node attends to itself
    only, with coefficient 1), every weight 1: its output is the sum of its
    (dropped) input features, (dropped again under ``heads``)."""
    model = build_model("gat", x.size(1), 4, 4, 1, dropout=p, bias=False,
                        gat_dropout=gat_dropout)
    with torch.no_grad():
        model.convs[0].lin.weight.fill_(1.0)
    return model


@pytest.mark.parametrize("features", ["dense", "one-hot"])
def test_gat_dropout_heads_drops_the_input_and_the_transformed_features(features):
    # x of ones (dense; drawn over every entry) or one-hot rows (2.5% non-zero:
    # drawn among the stored entries): each output is the one kept input
    # scaled by 1 / (1 - p), dropped once (inputs) or twice (heads)
    n, p = 20000, 0.5
    x = torch.ones(n, 1) if features == "dense" else torch.eye(40).repeat(n // 40, 1)
    ei = torch.empty(2, 0, dtype=torch.long)
    for gat_dropout, value, kept in (("inputs", 2.0, 0.5), ("heads", 4.0, 0.25)):
        model = _self_loop_gat(p, gat_dropout, x)
        out = model(x, ei)  # training mode
        nonzero = out[out != 0]
        assert torch.all(nonzero == value)  # 1 / (1 - p) per draw
        assert nonzero.numel() / out.numel() == pytest.approx(kept, abs=0.02)
        model.eval()
        assert torch.equal(model(x, ei), torch.ones(n, 4))


def test_gat_dropout_heads_draws_each_heads_input_apart():
    # two heads over one input of ones, no edges, every weight 1: a head's
    # output is zero unless both its draws keep (p 0.5: 0.25). With a draw of
    # the input per head both heads are zero with probability 0.75^2 = 0.5625;
    # with one shared input draw 0.5 + 0.5 * 0.5^2 = 0.625
    n = 20000
    x, ei = torch.ones(n, 1), torch.empty(2, 0, dtype=torch.long)
    model = build_model("gat", 1, 2, 2, 1, output_heads=2, dropout=0.5, bias=False,
                        gat_dropout="heads")
    conv = model.convs[0]
    with torch.no_grad():
        conv.lin.weight.fill_(1.0)
    z = conv.propagate  # the heads' outputs before the mean, from the aggregation
    heads = []
    conv.propagate = lambda *a, **k: heads.append(z(*a, **k)) or heads[-1]
    model(x, ei)
    zero = heads[0][:, :, 0] == 0  # [n, 2]
    assert zero.float().mean().item() == pytest.approx(0.75, abs=0.02)
    assert zero.all(1).float().mean().item() == pytest.approx(0.5625, abs=0.02)
    # PyG's placement: one draw, shared (equal weights give equal heads)
    g = torch.Generator().manual_seed(0)
    x, ei = torch.rand(50, 6, generator=g), torch.randint(0, 50, (2, 200), generator=g)
    shared = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.5)
    conv = shared.convs[0]
    with torch.no_grad():
        conv.lin.weight[4:] = conv.lin.weight[:4]
        conv.att_src[0, 1] = conv.att_src[0, 0]
        conv.att_dst[0, 1] = conv.att_dst[0, 0]
    h = conv(torch.nn.functional.dropout(x, 0.5), ei)
    assert torch.equal(h[:, :4], h[:, 4:])
    model = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.5, gat_dropout="heads")
    assert model.dropout == 0.0 and model.config["dropout"] == 0.5  # dropped in the convs
    assert repr(model.convs[0]) == "GATHeadsConv(6, 4, heads=2, head_dropout=0.5)"
    with pytest.raises(UserError, match="gat_dropout 'edges' is invalid; allowed: inputs, heads"):
        build_model("gat", 6, 8, 3, 2, gat_dropout="edges")
    with pytest.raises(ValueError, match="no residual or edge features"):
        GATHeadsConv(6, 4, heads=2, residual=True, head_dropout=0.5)


def test_gat_dropout_heads_backward_through_sparse_features_matches_pygs():
    # one-hot rows (2.5% non-zero) take the CSR path; at a dropout that keeps
    # everything (p 1e-9) the layer is PyG's, in value and gradient
    g = torch.Generator().manual_seed(0)
    x = torch.eye(40)[torch.randint(0, 40, (60,), generator=g)]
    ei = torch.randint(0, 60, (2, 240), generator=g)
    heads = build_model("gat", 40, 8, 3, 2, heads=2, dropout=1e-9, gat_dropout="heads")
    pyg = build_model("gat", 40, 8, 3, 2, heads=2, dropout=0.0)
    pyg.load_state_dict(heads.state_dict())
    a, b = heads(x, ei), pyg(x, ei)
    assert torch.allclose(a, b, atol=1e-5)
    a.square().sum().backward(), b.square().sum().backward()
    for (name, p), q in zip(heads.named_parameters(), pyg.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_gat_dropout_heads_reads_the_masked_weight():
    # under a parametrisation (a ticket's mask) the heads' own draws use the
    # weight as masked, like PyG's forward does
    from torch.nn.utils import parametrize

    class Half(torch.nn.Module):
        def forward(self, w):
            return w * (torch.arange(w.size(1)) % 2 == 0)

    g = torch.Generator().manual_seed(0)
    x, ei = torch.rand(40, 6, generator=g), torch.randint(0, 40, (2, 160), generator=g)
    masked = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.5, gat_dropout="heads")
    plain = build_model("gat", 6, 8, 3, 2, heads=2, dropout=0.5, gat_dropout="heads")
    plain.load_state_dict(masked.state_dict())
    raw = masked.convs[0].lin.weight.detach().clone()
    parametrize.register_parametrization(masked.convs[0].lin, "weight", Half())
    with torch.no_grad():
        plain.convs[0].lin.weight.copy_(Half()(raw))
    torch.manual_seed(3)
    a = masked(x, ei)
    torch.manual_seed(3)
    assert torch.equal(a, plain(x, ei))
    assert torch.equal(masked.convs[0].lin.parametrizations.weight.original, raw)


@pytest.mark.parametrize("gat_dropout", ["inputs", "heads"])
def test_gat_output_layer_averages_its_heads(gat_dropout):
    # no edges: each node attends to itself only, so output head k is x W_k^T
    # and the layer returns their mean plus the bias
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(10, 6, generator=g), torch.empty(2, 0, dtype=torch.long)
    model = build_model("gat", 6, 8, 3, 1, output_heads=4, gat_dropout=gat_dropout).eval()
    conv = model.convs[0]
    assert (conv.heads, conv.concat, conv.lin.weight.shape) == (4, False, (12, 6))
    with torch.no_grad():
        conv.bias.normal_(generator=g)
        expected = (x @ conv.lin.weight.t()).view(10, 4, 3).mean(1) + conv.bias
        assert torch.allclose(model(x, ei), expected, atol=1e-6)
    # one output head (the default) is the layer as it was
    assert build_model("gat", 6, 8, 3, 2).convs[-1].lin.weight.shape == (3, 8)


def test_the_base_class_is_not_a_model():
    with pytest.raises(UserError, match="DeepGNN is a base class"):
        DeepGNN(8, 8, 3, 2)


def test_a_backbone_defaults_only_options_it_reads_and_the_run_config_leaves_unset():
    with pytest.raises(TypeError, match="Bad.defaults sets 'heads'; allowed: options it "
                                        "reads of dropout, bias"):
        class Bad(DeepGNN):
            defaults = {"heads": 2}  # not read by the base stack
    with pytest.raises(TypeError, match="Worse.defaults sets 'norm'"):
        class Worse(DeepGNN):
            defaults = {"norm": "layer"}  # read, but a run config always sets it
    assert OWN_DEFAULTS == ("dropout", "bias")
    assert all(RunConfig.__dataclass_fields__[k].default is None for k in OWN_DEFAULTS)


def test_building_the_propagation_raises_no_torch_warnings(graph):
    import warnings

    x, edge_index = graph
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("gcn", "gcnii", "appnp"):
            build_model(name, 6, 8, 3, 2)(x, edge_index)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("name", ["gcn", "gcnii", "resgcn"])
def test_inference_keeps_only_the_states_it_still_needs(graph, name):
    """Without ``return_hidden`` a forward pass once kept every layer's state
    alive to its end (a 32-layer GCN on 169k nodes: 3 GB instead of 0.3)."""
    import weakref

    x, edge_index = graph
    model = build_model(name, x.size(1), 8, 3, 12).eval()
    alive, seen = [], []
    for tap in model.hidden:
        tap.register_forward_hook(lambda m, a, out: seen.append(weakref.ref(out)))
    model.logits.register_forward_hook(
        lambda m, a, out: alive.append(sum(r() is not None for r in seen)))
    with torch.no_grad():
        model(x, edge_index)
    assert len(seen) >= 11 and alive[0] <= 2  # the current state (and GCNII's x0 / h1)
    with torch.no_grad():
        _, hidden = model(x, edge_index, return_hidden=True)
    assert len(hidden) == len(seen) // 2 + 1
