"""The ``gnnmask`` command line: a thin layer over the Python API.

Every sub-command parses and validates its arguments, then calls the same
functions users call from Python. User errors print one line on stderr and
exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from gnnmask.errors import UserError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line, as gnnmask's other errors."""

    def error(self, message: str):  # noqa: D401
        raise UserError(f"{self.prog}: {message}")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-4"`` or a mix (``"0-2,7"``) to a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (None, None)
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except (TypeError, ValueError):
        raise UserError(
            f"--seeds {text!r} is malformed; allowed: comma-separated non-negative integers "
            "or ranges, e.g. 0,1,2 or 0-4"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(
            f"--seeds {text!r} is malformed; allowed: distinct non-negative integers, e.g. 0,1,2"
        )
    return seeds


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; allowed: true, false")


def add_run_arguments(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """Flags shared by ``train`` and ``sweep`` (one per RunConfig field)."""
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="csbm", help="dataset name (see `gnnmask datasets`)")
    d.add_argument("--data-root", default=None,
                   help="data root (default: $GNNMASK_DATA, else ./datasets)")
    d.add_argument("--split", type=int, default=0, help="split number (geom-gcn splits: 0-9)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="gcn", help="gcn, gat, gin, sage, gcnii or appnp")
    if not sweep:
        m.add_argument("--layers", type=int, default=2, help="message-passing layers (1-128)")
    m.add_argument("--hidden", type=int, default=64, help="hidden width")
    m.add_argument("--dropout", type=float, default=None, help="dropout (method default)")
    m.add_argument("--activation", default="relu")
    m.add_argument("--norm", default="none", help="none, batch, pair or layer")
    m.add_argument("--residual", default="none", help="none, plain or initial")
    m.add_argument("--bias", type=_bool, default=None, help="true/false (method default)")
    m.add_argument("--heads", type=int, default=1, help="attention heads (gat)")
    k = p.add_argument_group("method")
    if not sweep:
        k.add_argument("--method", default="dense", help="dense, ugt, edge-popup, ...")
    k.add_argument("--sparsity", type=float, default=None,
                   help="fraction of weights removed, 0 <= s < 1")
    k.add_argument("--mask-rule", default=None, help="global, topk, bernoulli, hard-concrete")
    k.add_argument("--weight-init", default=None, help="frozen-weight initialisation")
    k.add_argument("--score-init", default=None, help="score initialisation")
    k.add_argument("--schedule", default=None, help="sparsity schedule: constant, linear, cubic")
    k.add_argument("--schedule-end", type=float, default=None,
                   help="fraction of training over which the schedule ramps")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="adam", help="adam, adamw, amsgrad or sgd")
    o.add_argument("--lr", type=float, default=0.01)
    o.add_argument("--lr-schedule", default="constant",
                   help="constant, or cosine (anneal lr to 0 over the epochs)")
    o.add_argument("--weight-decay", type=float, default=None, help="(method default)")
    o.add_argument("--grad-clip", type=float, default=None, metavar="NORM",
                   help="clip the gradient's global L2 norm to NORM (default: off)")
    o.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="cross-entropy against (1-EPS)*one-hot + EPS/classes (default: 0)")
    o.add_argument("--epochs", type=int, default=200)
    o.add_argument("--patience", type=int, default=0, help="early stopping (0: off)")
    o.add_argument("--layer-metrics", default="default",
                   help="per-layer metrics of the final model: default (all but mad_gap), "
                        "all, none or a comma-separated list")
    o.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                   help="method option, e.g. mask_scale=none (repeatable)")
    r = p.add_argument_group("run")
    r.add_argument("--seeds", default="0", help="e.g. 0,1,2 or 0-4")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--out", default=None, help="output folder (default: runs/<name>)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


RUN_FIELDS = (
    "dataset", "data_root", "split", "model", "layers", "hidden", "dropout", "activation", "norm",
    "residual", "bias", "heads", "method", "sparsity", "mask_rule", "weight_init", "score_init",
    "schedule", "schedule_end", "optimizer", "lr", "lr_schedule", "weight_decay", "grad_clip",
    "label_smoothing", "epochs", "patience", "device", "layer_metrics",
)


def parse_extra(items: list[str]) -> dict:
    """``["k=v", ...]`` to a dict; values parse as JSON when they can."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--extra {item!r} is malformed; allowed: KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace, **overrides):
    from gnnmask.train import RunConfig

    values = {f: getattr(args, f) for f in RUN_FIELDS if hasattr(args, f)}
    if getattr(args, "extra", None):
        values["extra"] = parse_extra(args.extra)
    values.update(overrides)
    return RunConfig(**values)


def build_parser() -> argparse.ArgumentParser:
    from gnnmask import __version__

    parser = _Parser(prog="gnnmask", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gnnmask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one configuration over one or more seeds")
    add_run_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    p.add_argument("--save-ticket", default=None, metavar="PATH",
                   help="save the trained ticket (mask-only methods)")

    p = sub.add_parser("datasets", help="list datasets and whether they are available")
    p.add_argument("--data-root", default=None)
    p.add_argument("--json", action="store_true")

    from gnnmask.cli import commands

    commands.add_experiment_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gnnmask.cli import commands

    try:
        args = build_parser().parse_args(argv)
        return int(commands.run(args) or 0)
    except UserError as err:
        print(f"gnnmask: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnnmask: interrupted; finished records are kept", file=sys.stderr)
        return 130


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
