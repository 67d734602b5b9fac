"""Tasks: link prediction and graph classification through the one engine."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from gnnmask.data import get_info, load_dataset
from gnnmask.data.graphs import generate_sbm_graphs, graph_split, load_graphs
from gnnmask.data.links import link_split, load_ogbl
from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group
from gnnmask.metrics import auroc, compute_metrics, hits_at_k, trace
from gnnmask.metrics._common import as_graph
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.engine import build


def _small_graph(n=120, seed=0):
    return load_dataset("csbm", seed=seed, nodes=n, classes=2, avg_degree=6.0)


def _graphs(k=24, seed=0):
    return load_graphs(get_info("sbm-graphs"), seed=seed, graphs=k, min_nodes=8,
                       max_nodes=14)


# -- metrics -------------------------------------------------------------------
def test_auroc_and_hits_by_hand():
    # positives 3, 2, 2 against negatives 2, 1: pairs won 2 + 0.5 + 0.5 + 1 + 1 + 1 = 6 of 6 * ...
    pos, neg = torch.tensor([3.0, 2.0, 2.0]), torch.tensor([2.0, 1.0])
    won = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    labels = torch.tensor([1, 1, 1, 0, 0], dtype=torch.bool)
    assert auroc(torch.cat([pos, neg]), labels) == pytest.approx(float(won) / 6)
    # Hits@1: positives strictly above the best negative (2.0): one of three
    assert hits_at_k(pos, neg, 1) == pytest.approx(1 / 3)
    assert hits_at_k(pos, neg, 2) == pytest.approx(1.0)  # above 1.0: all three
    assert hits_at_k(pos, neg, 3) == 1.0  # fewer negatives than K (OGB's rule)


# -- link prediction -----------------------------------------------------------
def test_link_split_holds_edges_out_of_message_passing():
    data = _small_graph()
    before = (torch.get_rng_state(), random.getstate())
    a, b = link_split(data, seed=3), link_split(data, seed=3)
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    for key in ("edge_index", "train_pos", "val_pos", "val_neg", "test_pos", "test_neg"):
        assert torch.equal(a[key], b[key])  # same seed, same split
    assert not torch.equal(a.test_pos, link_split(data, seed=4).test_pos)
    undirected = data.edge_index.size(1) // 2
    held = a.val_pos.size(1) + a.test_pos.size(1)
    assert a.train_pos.size(1) + held == undirected
    assert a.val_pos.size(1) == round(0.05 * undirected)
    assert a.test_pos.size(1) == round(0.1 * undirected)
    assert a.val_neg.size(1) == a.val_pos.size(1) and a.test_neg.size(1) == a.test_pos.size(1)
    mp = {tuple(e) for e in a.edge_index.t().tolist()}
    assert len(mp) == 2 * a.train_pos.size(1)  # training edges, both directions
    for key in ("val_pos", "test_pos"):
        assert not any(tuple(e) in mp or tuple(e[::-1]) in mp for e in a[key].t().tolist())
    edges = {tuple(e) for e in data.edge_index.t().tolist()}
    assert not any(tuple(e) in edges for e in a.test_neg.t().tolist())


def test_link_task_records_auc_and_hits():
    data = _small_graph()
    config = RunConfig(task="link", dataset="mine", method="dense", epochs=5, hidden=16,
                       layer_metrics="mad")
    record = train(config, data=data)
    assert record["metric"] == "auc" and record["config"]["decoder"] == "dot"
    for key in ("train_auc", "val_auc", "test_auc", "val_hits@20", "test_hits@20"):
        assert 0.0 <= record[key] <= 1.0
    assert "test_acc" not in record
    assert record["dataset_stats"]["edges"] == 2 * record["dataset_stats"]["train_pos_edges"]
    assert record["layers"][-1]["dim"] == 16  # embeddings, --hidden wide
    again = train(config, data=data)
    assert again["test_auc"] == record["test_auc"]  # deterministic
    assert not hasattr(data, "train_pos")  # the caller's graph is left as it was


def test_predicted_classes_count_each_splits_distinct_predictions():
    from gnnmask.tasks import get_task_class
    from gnnmask.tasks.base import predicted_classes

    data = Data(train_mask=torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool),
                val_mask=torch.tensor([0, 0, 1, 1, 0, 0], dtype=torch.bool),
                test_mask=torch.tensor([0, 0, 0, 0, 1, 1], dtype=torch.bool))
    pred = torch.tensor([2, 2, 0, 1, 1, 1])
    assert predicted_classes(pred, data) == {"train": 1, "val": 2, "test": 1}
    out = torch.nn.functional.one_hot(pred, 3).float()  # logits whose argmax is pred
    task = get_task_class("node")(RunConfig())
    assert task.predictions(out, data) == {"predicted_classes": {"train": 1, "val": 2,
                                                                 "test": 1}}


def test_records_count_the_classes_the_final_model_predicts():
    data = _small_graph()
    record, model = train(RunConfig(dataset="csbm", epochs=3, hidden=8, layer_metrics="none"),
                          data=data, return_model=True)
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(dim=-1)
    assert record["predicted_classes"] == {
        split: len(set(pred[getattr(data, f"{split}_mask")].tolist()))
        for split in ("train", "val", "test")}
    graphs = train(RunConfig(task="graph", dataset="sbm-graphs", epochs=2, hidden=8,
                             layer_metrics="none"), data=_graphs())
    assert 1 <= graphs["predicted_classes"]["test"] <= graphs["dataset_stats"]["classes"]
    links = train(RunConfig(task="link", dataset="mine", method="dense", epochs=2, hidden=8,
                            layer_metrics="none"), data=data)
    assert "predicted_classes" not in links  # scores of pairs, not classes


def _settings(method: str) -> dict:
    """Small settings under which ``method`` runs (sparse ones at 50%)."""
    from gnnmask.methods import get_method_class

    cls = get_method_class(method)
    extra = {"sparsity": 0.5} if "sparsity" in cls.reads else {}
    if method in ("imp", "ugs"):
        extra["sparsity"] = 0.2  # one round
    if method == "ugs":
        extra["edge_sparsity"] = 0.05
    return extra


ALL_METHODS = ["dense", "random", "magnitude", "snip", "grasp", "synflow", "set-rigl", "rigl",
               "set", "imp", "ugs", "ugt", "edge-popup"]


def test_the_method_list_is_complete():
    from gnnmask.methods import METHODS

    assert sorted(ALL_METHODS) == sorted(METHODS)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_method_predicts_links(method):
    record = train(RunConfig(task="link", dataset="mine", method=method, epochs=4, hidden=16,
                             layer_metrics="none", **_settings(method)), data=_small_graph())
    assert record["status"] == "finished" and 0.0 <= record["test_auc"] <= 1.0
    if "sparsity" in _settings(method):
        assert record["method"]["achieved_sparsity"] == pytest.approx(
            _settings(method)["sparsity"], abs=0.01)
    if method == "ugs":  # the graph mask prunes the message-passing (training) edges only
        kept = record["method"]["kept_edges"]
        assert kept < record["dataset_stats"]["edges"]


def test_mask_only_link_ticket_keeps_weights_and_masks_the_mlp_decoder():
    data = link_split(_small_graph())
    config = resolve_config(RunConfig(task="link", dataset="mine", method="ugt",
                                      sparsity=0.5, decoder="mlp", hidden=16, epochs=3),
                            data=data)
    model, _ = build(config, data)
    masked = get_mask_group(model).masks()
    assert any(name.startswith("head.") for name in masked)  # the decoder is masked too
    _, trained = train(config, data=data, return_model=True)
    fresh, _ = build(config, data)
    for (name, a), (_, b) in zip(fresh.state_dict().items(), trained.state_dict().items()):
        if "original" in name:
            assert torch.equal(a, b), name  # frozen weights bit-identical


def test_cosine_decoder_is_scale_free():
    data = link_split(_small_graph())
    config = resolve_config(RunConfig(task="link", dataset="mine", decoder="cosine"),
                            data=data)
    from gnnmask.tasks import LinkTask

    task, z = LinkTask(config), torch.randn(data.num_nodes, 8)
    pairs = data.val_pos
    assert torch.allclose(task.score(None, z, pairs), task.score(None, 7.0 * z, pairs))
    assert task.score(None, z, pairs).abs().max() <= 10.0 + 1e-5



def test_ogbl_collab_format_from_raw_files(tmp_path, write_csv_gz):
    """A 12-node graph in ogbl-collab's raw layout goes through OGB's class."""
    base, n = tmp_path / "ogb" / "ogbl_collab", 12
    train_edges = [(i, (i + 1) % n) for i in range(n)] + [(0, 6), (0, 6)]  # a repeated edge
    write_csv_gz(base / "raw" / "edge.csv.gz", train_edges)
    write_csv_gz(base / "raw" / "node-feat.csv.gz", [[float(i), 1.0] for i in range(n)])
    write_csv_gz(base / "raw" / "num-node-list.csv.gz", [[n]])
    write_csv_gz(base / "raw" / "num-edge-list.csv.gz", [[len(train_edges)]])
    write_csv_gz(base / "raw" / "edge_weight.csv.gz", [[1]] * len(train_edges))
    write_csv_gz(base / "raw" / "edge_year.csv.gz", [[2010]] * len(train_edges))
    (base / "split" / "time").mkdir(parents=True)
    t = torch.tensor
    torch.save({"edge": t(train_edges), "weight": t([1] * 14), "year": t([2010] * 14)},
               base / "split" / "time" / "train.pt")
    for k, pos in (("valid", [(0, 3), (2, 7)]), ("test", [(1, 5), (4, 9), (3, 8)])):
        torch.save({"edge": t(pos), "weight": t([1] * len(pos)), "year": t([2019] * len(pos)),
                    "edge_neg": t([(0, 10), (5, 11), (6, 9), (2, 4)])},
                   base / "split" / "time" / f"{k}.pt")
    data = load_ogbl(get_info("ogbl-collab"), root=tmp_path)
    assert data.ogb_name == "ogbl-collab" and data.num_nodes == n
    assert data.edge_index.size(1) == 2 * (n + 1)  # undirected, the repeat merged
    assert data.test_pos.t().tolist() == [[1, 5], [4, 9], [3, 8]]
    assert data.val_neg.size(1) == 4 and data.x[3].tolist() == [3.0, 1.0]
    record = train(RunConfig(task="link", dataset="ogbl-collab", data_root=str(tmp_path),
                             epochs=2, hidden=8, layer_metrics="none"))
    assert record["config"]["hits_k"] == 50 and "test_hits@50" in record  # OGB's metric
    assert record["test_hits@50"] == 1.0  # fewer negatives than K: OGB's Evaluator says 1


# -- graph classification ---------------------------------------------------------
def test_sbm_graphs_are_seeded_and_balanced():
    a, b = generate_sbm_graphs(graphs=9, min_nodes=6, max_nodes=9, seed=1), \
        generate_sbm_graphs(graphs=9, min_nodes=6, max_nodes=9, seed=1)
    assert all(torch.equal(g.x, h.x) and torch.equal(g.edge_index, h.edge_index)
               for g, h in zip(a, b))
    assert [int(g.y) for g in a] == [0, 1, 2] * 3
    assert all(6 <= g.num_nodes < 9 for g in a)
    c = generate_sbm_graphs(graphs=9, min_nodes=6, max_nodes=9, seed=2)
    assert not all(torch.equal(g.x, h.x) for g, h in zip(a, c) if g.num_nodes == h.num_nodes)
    train_, val, test = graph_split(100, seed=0, split=0)
    assert (int(train_.sum()), int(val.sum()), int(test.sum())) == (80, 10, 10)
    assert not (train_ & val).any() and not (val & test).any()


def test_graph_task_defaults_to_the_generated_dataset():
    config = resolve_config(RunConfig(task="graph"))
    assert config.dataset == "sbm-graphs" and config.readout == "mean"
    assert config.select == "val_acc"
    assert resolve_config(RunConfig()).dataset == "csbm"  # node classification's default


@pytest.mark.parametrize("batch_size", [0, 8])
@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m != "ugs"])
def test_every_method_classifies_graphs(method, batch_size):
    data = _graphs()
    record = train(RunConfig(task="graph", dataset="sbm-graphs", method=method, epochs=3,
                             hidden=8, batch_size=batch_size, layer_metrics="mad",
                             **_settings(method)), data=data)
    assert record["status"] == "finished" and record["metric"] == "acc"
    assert record["dataset_stats"]["graphs"] == 24
    n_test = int(data.test_mask.sum())
    assert record["test_acc"] * n_test == pytest.approx(round(record["test_acc"] * n_test))


def test_graph_layer_metrics_are_means_over_the_test_graphs():
    data = _graphs(k=12)
    config = RunConfig(task="graph", dataset="sbm-graphs", epochs=1, hidden=8,
                       layer_metrics="mad,dirichlet")
    record, model = train(config, data=data, return_model=True)
    test = data.test_mask.nonzero().view(-1).tolist()
    values = []
    for g in test:  # by hand: each test graph on its own, then the mean
        graph = data.get_example(g)
        values.append(compute_metrics(graph.x, as_graph(graph.edge_index, graph.num_nodes,
                                                         "cpu"), None, ["mad", "dirichlet"]))
    for key in ("mad", "dirichlet"):
        expected = sum(v[key] for v in values) / len(values)
        assert record["layers"][0][key] == pytest.approx(expected, rel=1e-5)
    groups = torch.where(data.test_mask[data.batch], data.batch, -1)
    rows = trace(model, data, metrics=["mad"], groups=groups)
    assert rows[0]["mad"] == pytest.approx(record["layers"][0]["mad"], rel=1e-6)


def test_graph_readouts_and_full_batch_equals_the_pooled_logits():
    data = _graphs(k=12)
    for readout in ("sum", "max"):
        record = train(RunConfig(task="graph", dataset="sbm-graphs", readout=readout,
                                 epochs=2, hidden=8, layer_metrics="none"), data=data)
        assert record["config"]["readout"] == readout


def test_data_of_ones_own_needs_a_name_and_one_label_per_graph():
    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]),
                   y=torch.tensor([0, 1])) for _ in range(4)]
    with pytest.raises(UserError, match=r"needs a name; allowed: RunConfig\(dataset="):
        train(RunConfig(task="graph", epochs=1), data=graphs)
    with pytest.raises(UserError, match=r"graph 0 has no single label in y"):
        train(RunConfig(task="graph", dataset="mine", epochs=1), data=graphs)


def test_graph_task_takes_a_list_of_graphs():
    graphs = [Data(x=torch.randn(5, 3), edge_index=to_undirected(torch.tensor(
        [[0, 1, 2, 3], [1, 2, 3, 4]])), y=torch.tensor([i % 2])) for i in range(20)]
    record = train(RunConfig(task="graph", dataset="my-molecules", epochs=2, hidden=8,
                             layer_metrics="none"), data=graphs)
    assert record["config"]["dataset"] == "my-molecules"
    assert record["dataset_stats"]["graphs"] == 20 and record["dataset_stats"]["classes"] == 2


def test_tu_format_from_raw_files(tmp_path):
    """Four tiny graphs in the TU text format go through PyG's TUDataset."""
    raw = tmp_path / "tu" / "MUTAG" / "raw"
    raw.mkdir(parents=True)
    # graphs of 3, 2, 3, 2 nodes (1-based node ids), labels 1, -1, 1, -1
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4), (6, 7), (7, 6), (9, 10), (10, 9)]
    (raw / "MUTAG_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / "MUTAG_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n3\n3\n3\n4\n4\n")
    (raw / "MUTAG_graph_labels.txt").write_text("1\n-1\n1\n-1\n")
    (raw / "MUTAG_node_labels.txt").write_text("0\n1\n2\n0\n0\n1\n1\n2\n0\n1\n")
    data = load_graphs(get_info("mutag"), root=tmp_path, seed=0)
    assert data.num_graphs == 4 and data.y.tolist() == [1, 0, 1, 0]
    assert data.x.size(1) == 3 and data.x[2].tolist() == [0.0, 0.0, 1.0]  # one-hot labels
    assert data.batch.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    record = train(RunConfig(task="graph", dataset="mutag", data_root=str(tmp_path),
                             epochs=2, hidden=4, layer_metrics="none"))
    assert record["dataset_stats"]["graphs"] == 4


def test_ogbg_format_from_raw_files(tmp_path, write_csv_gz):
    """Six tiny molecules in OGB's graph-property layout, scored by ROC-AUC."""
    base = tmp_path / "ogb" / "ogbg_molhiv"
    sizes = [3, 2, 4, 3, 2, 3]
    edges, counts = [], []
    for s in sizes:
        e = [(i, i + 1) for i in range(s - 1)]
        edges += e
        counts.append(len(e))
    write_csv_gz(base / "raw" / "edge.csv.gz", edges)
    write_csv_gz(base / "raw" / "edge-feat.csv.gz", [[0, 0, 0]] * len(edges))
    write_csv_gz(base / "raw" / "node-feat.csv.gz",
                  [[i % 3] + [0] * 8 for i in range(sum(sizes))])
    write_csv_gz(base / "raw" / "graph-label.csv.gz", [[i % 2] for i in range(6)])
    write_csv_gz(base / "raw" / "num-node-list.csv.gz", [[s] for s in sizes])
    write_csv_gz(base / "raw" / "num-edge-list.csv.gz", [[c] for c in counts])
    for k, idx in (("train", [0, 1, 2, 3]), ("valid", [4, 1]), ("test", [5, 0])):
        write_csv_gz(base / "split" / "scaffold" / f"{k}.csv.gz", [[i] for i in idx])
    data = load_graphs(get_info("ogbg-molhiv"), root=tmp_path)
    assert data.num_graphs == 6 and data.ogb_name == "ogbg-molhiv"
    assert data.test_mask.nonzero().view(-1).tolist() == [0, 5]
    assert data.num_features == 9 and data.edge_index.size(1) == 2 * len(edges)
    record = train(RunConfig(task="graph", dataset="ogbg-molhiv", data_root=str(tmp_path),
                             epochs=2, hidden=4, layer_metrics="none"))
    assert record["metric"] == "rocauc" and record["config"]["select"] == "val_rocauc"
    assert 0.0 <= record["test_rocauc"] <= 1.0


# -- what is refused ---------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    (dict(decoder="dot"), r"--decoder is not read by --task node; allowed with: --task link"),
    (dict(task="link", readout="sum"), r"--readout is not read by --task link"),
    (dict(task="graph", hits_k=10), r"--hits-k is not read by --task graph"),
    (dict(task="graph", evaluations="calibration"), r"--evaluations 'calibration' is only "
                                                    r"read by --task node"),
    (dict(task="link", batch_size=64), r"--batch-size 64 is not read by --task link"),
    (dict(task="graph", method="ugs"), r"--method ugs with a graph mask"),
    (dict(task="link", select="val_acc"), r"--select val_acc is not a metric of --task link.*"
                                          r"allowed: val_auc, val_loss"),
    (dict(task="graph", dataset="cora"), r"dataset 'cora' has no graph task; allowed with "
                                         r"--task graph: .*sbm-graphs"),
    (dict(task="link", dataset="sbm-graphs"), r"dataset 'sbm-graphs' has no link task"),
    (dict(task="edge"), r"unknown --task 'edge'; allowed: node, link, graph"),
    (dict(task="link", decoder="bilinear"), r"unknown --decoder 'bilinear'; allowed: dot, "
                                            r"cosine, mlp"),
    (dict(task="graph", dataset="ogbg-molhiv", split=2), r"--split 2 is invalid for dataset "
                                                         r"'ogbg-molhiv', which has one"),
    (dict(task="link", dataset="ogbl-collab", split=1), r"--split 1 is invalid"),
])
def test_settings_a_task_does_not_read_are_refused(settings, message):
    with pytest.raises(UserError, match=message):
        resolve_config(RunConfig(**settings))


def test_gae_loss_by_hand():
    """--link-loss gae: GAE's weighted reconstruction of the training adjacency."""
    data = link_split(_small_graph(n=110))
    config = resolve_config(RunConfig(task="link", dataset="mine", link_loss="gae"), data=data)
    from gnnmask.tasks import LinkTask

    task, z = LinkTask(config), torch.randn(data.num_nodes, 4)
    n = data.num_nodes
    target = torch.eye(n)
    target[data.edge_index[0], data.edge_index[1]] = 1.0
    p = float(data.edge_index.size(1))  # GAE weighs by the edges without self-loops
    logits = z @ z.t()
    expected = 0.0
    for i in range(n):
        for j in range(n):
            s = torch.sigmoid(logits[i, j].double())
            expected -= ((n * n - p) / p) * torch.log(s) if target[i, j] else torch.log(1 - s)
    expected = expected / (n * n) * (n * n) / (2 * (n * n - p))
    assert float(task.loss(None, z, data)) == pytest.approx(float(expected), rel=1e-4)
    record = train(RunConfig(task="link", dataset="mine", link_loss="gae", epochs=3, hidden=8,
                             layer_metrics="none"), data=_small_graph())
    assert record["config"]["link_loss"] == "gae" and 0.0 <= record["test_auc"] <= 1.0


def test_gae_loss_equals_the_dense_weighted_cross_entropy_and_its_gradient():
    """Without a dense target: the value and gradient of the weighted binary
    cross-entropy against the adjacency (duplicate edges and a self-loop
    given, as the GAE code counts them)."""
    from gnnmask.tasks import LinkTask

    data = link_split(_small_graph(n=110))
    data.edge_index = torch.cat([data.edge_index, data.edge_index[:, :3],
                                 torch.tensor([[5], [5]])], dim=1)
    config = resolve_config(RunConfig(task="link", dataset="mine", link_loss="gae"), data=data)
    n = data.num_nodes
    adj = torch.zeros(n, n)
    adj[data.edge_index[0], data.edge_index[1]] = 1.0
    p, total = float(adj.sum()), float(n * n)
    adj.fill_diagonal_(1.0)
    z = (3 * torch.randn(n, 6, generator=torch.Generator().manual_seed(0))).requires_grad_()
    expected = total / (2 * (total - p)) * F.binary_cross_entropy_with_logits(
        z @ z.t(), adj, pos_weight=torch.tensor((total - p) / p))
    (want,) = torch.autograd.grad(expected, z)
    loss = LinkTask(config).loss(None, z, data)
    (got,) = torch.autograd.grad(loss, z)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("settings, message", [
    (dict(link_loss="gae"), r"--link-loss is not read by --task node"),
    (dict(task="link", link_loss="gae", decoder="mlp"), r"allowed with it: --decoder dot"),
    (dict(task="link", link_loss="gae", dataset="coauthor-physics"),
     r"dataset 'coauthor-physics' has 34,493 nodes; allowed: up to 30,000"),
])
def test_gae_loss_refusals(settings, message):
    with pytest.raises(UserError, match=message):
        resolve_config(RunConfig(**settings))


def test_probing_gradient_flow_leaves_link_training_unchanged():
    data = _small_graph()
    base = dict(task="link", dataset="mine", method="dense", epochs=4, hidden=8,
                layer_metrics="none")
    plain = train(RunConfig(**base), data=data)
    probed = train(RunConfig(**base, grad_flow_every=1), data=data)
    assert probed["test_auc"] == plain["test_auc"] and len(probed["gradient_flow"]) == 5


def test_records_from_before_tasks_still_resume(tmp_path):
    """A stored node record without the task settings is the same run."""
    import json

    from gnnmask.experiments import run_seeds

    config = RunConfig(epochs=2, hidden=8, layer_metrics="none")
    run_seeds(config, [0], tmp_path)
    path = tmp_path / "seed_0.json"
    record = json.loads(path.read_text())
    for key in ("task", "decoder", "hits_k", "readout", "link_loss"):
        del record["config"][key]
    path.write_text(json.dumps(record))
    stamp = path.stat().st_mtime_ns
    run_seeds(config, [0], tmp_path)  # not "differs in task": skipped as finished
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("task", ["link", "graph"])
def test_tasks_train_on_every_device_without_moving_the_callers_data(task, device):
    data = _small_graph() if task == "link" else _graphs()
    x_before = data.x.clone()
    record = train(RunConfig(task=task, dataset="mine", method="ugt", sparsity=0.5, epochs=3,
                             hidden=8, batch_size=8 if task == "graph" else 0,
                             layer_metrics="mad", device=str(device),
                             **({"decoder": "cosine"} if task == "link" else {})), data=data)
    assert record["device"].startswith(device.type) and record["status"] == "finished"
    assert data.x.device.type == "cpu" and torch.equal(data.x, x_before)
