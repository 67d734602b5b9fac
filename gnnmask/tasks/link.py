"""Link prediction: node embeddings scored in pairs by a decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import negative_sampling

from gnnmask.data import DATASETS, get_info, load_dataset
from gnnmask.data.links import link_split, load_ogbl, seeded_draws
from gnnmask.errors import UserError
from gnnmask.metrics.evaluation import auroc, hits_at_k
from gnnmask.registry import Registry
from gnnmask.tasks.base import Objective, Task, register_task

#: Decoders of node pairs ``(z_u, z_v)`` into a logit.
DECODERS = Registry("--decoder", {
    "dot": "inner product z_u . z_v (the graph auto-encoder's, Kipf & Welling 2016)",
    "cosine": "cosine similarity over a fixed temperature, cos(z_u, z_v) / 0.1: parameter-"
              "free and independent of the embeddings' scale, which a mask over frozen weights "
              "cannot set",
    "mlp": "a two-layer MLP on z_u * z_v (Hadamard), as OGB's link-prediction baselines",
})

#: Training losses of link prediction.
LINK_LOSSES = Registry("--link-loss", {
    "sampled": "binary cross-entropy of the training edges against as many non-edges sampled "
               "anew each step (PyG's link-prediction recipe)",
    "gae": "the graph auto-encoder's (Kipf & Welling 2016): binary cross-entropy over every "
           "node pair of the training adjacency with self-loops, positives weighted by "
           "(N^2 - P) / P and the mean scaled by N^2 / (2 (N^2 - P)); N^2 scores a step",
})

#: ``--link-loss gae`` scores all N^2 pairs each step: graphs up to this size.
GAE_MAX_NODES = 30_000

#: Temperature of the ``cosine`` decoder: logits in [-10, 10].
COSINE_TEMPERATURE = 0.1


class LinkMLP(nn.Module):
    """The ``mlp`` decoder: ``Linear(d, d) -> ReLU -> Linear(d, 1)`` on ``z_u * z_v``."""

    def __init__(self, channels: int):
        super().__init__()
        self.lin1 = nn.Linear(channels, channels)
        self.lin2 = nn.Linear(channels, 1)

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, zu: Tensor, zv: Tensor) -> Tensor:
        return self.lin2(F.relu(self.lin1(zu * zv))).view(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lin1.in_features})"


def _labels(pos: Tensor, neg: Tensor) -> Tensor:
    """Binary targets of the pairs ``pos`` then ``neg`` (``[2, P]`` each): 1
    for every edge, 0 for every non-edge, on their device."""
    return torch.cat([torch.ones(pos.size(1), device=pos.device),
                      torch.zeros(neg.size(1), device=pos.device)])


def is_link_data(data) -> bool:
    return all(getattr(data, k, None) is not None
               for k in ("train_pos", "val_pos", "val_neg", "test_pos", "test_neg"))


@register_task
class LinkTask(Task):
    """Link prediction: binary cross-entropy on the training edges against as
    many non-edges sampled anew each step; ROC-AUC and Hits@K of the held-out
    edges against their sampled non-edges (``--link-loss gae``: the graph
    auto-encoder's reconstruction of the whole training adjacency instead).

    Split: a node dataset's undirected edges 85 / 5 / 10 (PyG's
    ``RandomLinkSplit`` from ``(seed, split)``; the graph auto-encoder's
    protocol, Kipf & Welling 2016); OGB link datasets use their official split
    and OGB's ``Evaluator``. Messages pass over the training edges only, so a
    graph ticket (UGS) masks those. The backbone outputs ``--hidden``-wide
    embeddings; the decoder (``--decoder``) scores pairs. Records hold
    ``{train,val,test}_auc`` and ``test_hits@K`` (``--hits-k``)."""

    name = "link"
    metric = "auc"
    reads = ("decoder", "hits_k", "link_loss")

    @classmethod
    def check_config(cls, config) -> None:
        if config.decoder is not None and config.decoder not in DECODERS:
            raise UserError(f"unknown --decoder {config.decoder!r}; allowed: "
                            f"{', '.join(DECODERS)}")
        if config.hits_k is not None and (isinstance(config.hits_k, bool) or not isinstance(
                config.hits_k, int) or config.hits_k < 1):
            raise UserError(f"--hits-k {config.hits_k!r} is invalid; allowed: a positive "
                            "integer")
        if config.link_loss == "gae":
            if config.decoder == "mlp":
                raise UserError("--link-loss gae scores every node pair by the decoder; "
                                "allowed with it: --decoder dot, cosine")
            if config.dataset in DATASETS and get_info(config.dataset).nodes > GAE_MAX_NODES:
                raise UserError(f"--link-loss gae scores all N^2 node pairs each step; dataset "
                                f"{config.dataset!r} has {get_info(config.dataset).nodes:,} "
                                f"nodes; allowed: up to {GAE_MAX_NODES:,}, or --link-loss "
                                "sampled")
        if config.batch_size:
            raise UserError(f"--batch-size {config.batch_size} is not read by --task link, "
                            "which trains full-batch; allowed: 0")
        if config.label_smoothing:
            raise UserError(f"--label-smoothing {config.label_smoothing} is not read by --task "
                            "link (binary cross-entropy); allowed: 0")

    @staticmethod
    def fill(values: dict) -> None:
        """The link task's defaults: the dot decoder; Hits@50 on OGB datasets
        (ogbl-collab's official metric), else Hits@20."""
        values["decoder"] = values.get("decoder") or "dot"
        values["link_loss"] = values.get("link_loss") or "sampled"
        if values.get("hits_k") is None:
            values["hits_k"] = 50 if str(values["dataset"]).startswith("ogbl-") else 20

    def load(self, config):
        c = config
        info = get_info(c.dataset)
        if info.pyg_class == "PygLinkPropPredDataset":
            return load_ogbl(info, c.data_root)
        data = load_dataset(c.dataset, root=c.data_root, split=0 if info.splits else c.split,
                            seed=c.seed)
        return link_split(data, seed=c.seed, split=c.split)

    def adopt(self, data):
        """A graph of one's own is split here (from the run's seed and split)."""
        return data if is_link_data(data) else link_split(data, self.config.seed,
                                                          self.config.split)

    def stats(self, data) -> dict[str, int]:
        return {"nodes": int(data.num_nodes), "edges": int(data.edge_index.size(1)),
                "features": int(data.num_features),
                **{f"{k}_edges": int(getattr(data, k).size(1))
                   for k in ("train_pos", "val_pos", "test_pos")}}

    def train_size(self, data) -> int:
        return int(data.train_pos.size(1))

    def out_channels(self, data, hidden: int) -> int:
        return hidden

    def attach_head(self, model: nn.Module, data) -> nn.Module:
        if self.config.decoder == "mlp":
            model.head = LinkMLP(self.out_channels(data, self.config.hidden)).to(
                data.x.device)
        return model

    def score(self, model: nn.Module, z: Tensor, pairs: Tensor) -> Tensor:
        """Logits of the node pairs ``pairs`` ``[2, P]`` from embeddings ``z``."""
        if self.config.decoder == "cosine":
            z = F.normalize(z, dim=-1)
        zu, zv = z[pairs[0]], z[pairs[1]]
        if self.config.decoder == "mlp":
            return model.head(zu, zv)
        scale = 1.0 / COSINE_TEMPERATURE if self.config.decoder == "cosine" else 1.0
        return (zu * zv).sum(dim=-1) * scale

    def _negatives(self, data, count: int) -> Tensor:
        return negative_sampling(data.edge_index, num_nodes=data.num_nodes,
                                 num_neg_samples=count)

    def _bce(self, model, z, pos, neg) -> Tensor:
        logits = torch.cat([self.score(model, z, pos), self.score(model, z, neg)]).float()
        return F.binary_cross_entropy_with_logits(logits, _labels(pos, neg))

    def _pair_logits(self, z: Tensor) -> Tensor:
        """Logits of every node pair ``[N, N]`` (dot or cosine decoder)."""
        if self.config.decoder == "cosine":
            z = F.normalize(z, dim=-1)
            return z @ z.t() / COSINE_TEMPERATURE
        return z @ z.t()

    def _gae_target(self, data) -> tuple[Tensor, float, float]:
        """GAE's target, the training adjacency with self-loops, as the flat
        indices ``i * N + j`` of its ones, and its positive weight
        ``(N^2 - P) / P`` and normaliser ``N^2 / (2 (N^2 - P))``, with ``P``
        the training adjacency's entries *without* the added self-loops, as
        the GAE code counts them (computed once per run)."""
        if getattr(self, "gae_target", None) is None:
            n = data.num_nodes
            if n > GAE_MAX_NODES:
                raise UserError(f"--link-loss gae scores all N^2 node pairs each step; this "
                                f"graph has {n:,} nodes; allowed: up to {GAE_MAX_NODES:,}, or "
                                "--link-loss sampled")
            row, col = data.edge_index
            edges = row * n + col
            p, total = float(edges.unique().numel()), float(n) * n
            loops = torch.arange(n, device=row.device) * (n + 1)
            ones = torch.cat([edges, loops]).unique()
            self.gae_target = (ones, (total - p) / p, total / (2 * (total - p)))
        return self.gae_target

    def _gae_loss(self, logits: Tensor, data) -> Tensor:
        """GAE's loss, ``norm`` times the mean over all N^2 pairs of the binary
        cross-entropy with ``pos_weight`` w on the ones of the target A:

        .. math::
            \\ell(s, 1) = w\\,\\mathrm{softplus}(-s), \\quad
            \\ell(s, 0) = \\mathrm{softplus}(s).

        Since :math:`\\mathrm{softplus}(-s) = \\mathrm{softplus}(s) - s`, the sum
        is :math:`\\sum_{ij} \\mathrm{softplus}(s_{ij}) + \\sum_{A_{ij}=1}
        [(w - 1)\\,\\mathrm{softplus}(s_{ij}) - w\\,s_{ij}]`: one pass over the
        pairs and one over the ones, with no dense target (equal to
        ``binary_cross_entropy_with_logits`` against the dense adjacency, as
        the GAE code computes it; Kipf & Welling, 2016)."""
        ones, w, norm = self._gae_target(data)
        logits = logits.float()
        kept = logits.reshape(-1)[ones]
        total = F.softplus(logits).sum() + ((w - 1) * F.softplus(kept) - w * kept).sum()
        return norm * total / logits.numel()

    def loss(self, model: nn.Module, out: Tensor, data, split: str = "train") -> Tensor:
        if split == "train" and self.config.link_loss == "gae":
            return self._gae_loss(self._pair_logits(out), data)
        if split == "train":
            pos = data.train_pos
            return self._bce(model, out, pos, self._negatives(data, pos.size(1)))
        return self._bce(model, out, getattr(data, f"{split}_pos"),
                         getattr(data, f"{split}_neg"))

    def objective(self, data) -> Objective:
        if self.config.link_loss == "gae":
            return Objective(logits=lambda m, inputs: self._pair_logits(m(*inputs)),
                             loss=lambda logits: self._gae_loss(logits, data))
        pos = data.train_pos
        neg = self._train_neg(data)  # fixed: drawing them takes nothing from the run's RNG
        labels = _labels(pos, neg)
        pairs = torch.cat([pos, neg], dim=1)
        return Objective(
            logits=lambda m, inputs: self.score(m, m(*inputs), pairs),
            loss=lambda logits: F.binary_cross_entropy_with_logits(logits.float(), labels))

    def _train_neg(self, data) -> Tensor:
        """Non-edges for the training AUC and the fixed objective: drawn once
        per run from the seed in generator states of their own (the run's
        generators are not advanced by evaluations or probes)."""
        if getattr(self, "train_neg", None) is None:
            with seeded_draws(self.config.seed):
                self.train_neg = self._negatives(data, data.train_pos.size(1))
        return self.train_neg

    def evaluate(self, model: nn.Module, out: Tensor, data):
        out = out.float()
        result, val_loss = {}, float(self._bce(model, out, data.val_pos, data.val_neg))
        pairs = {"train": (data.train_pos, self._train_neg(data)),
                 "val": (data.val_pos, data.val_neg), "test": (data.test_pos, data.test_neg)}
        k = self.config.hits_k
        for split, (pos, neg) in pairs.items():
            sp, sn = self.score(model, out, pos), self.score(model, out, neg)
            result[f"{split}_auc"] = auroc(torch.cat([sp, sn]), _labels(pos, neg).bool())
            if split != "train":
                result[f"{split}_hits@{k}"] = self._hits(data, sp, sn, k)
        return result, val_loss

    @staticmethod
    def _hits(data, pos: Tensor, neg: Tensor, k: int) -> float:
        if getattr(data, "ogb_name", None):
            from ogb.linkproppred import Evaluator

            evaluator = Evaluator(data.ogb_name)
            evaluator.K = k
            return float(evaluator.eval({"y_pred_pos": pos.cpu(), "y_pred_neg": neg.cpu()})
                         [f"hits@{k}"])
        return hits_at_k(pos, neg, k)
