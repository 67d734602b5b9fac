"""Plots of the signal through deep tickets, from the records of scripts/deep_tickets.sh trace.

For each traced run (``--trace-every``/``--grad-flow-every``), one figure per
quantity: the representations' mean norm, their effective rank and MAD
against the layer, at initialisation, halfway through the sparsity ramp and
at the end; and the gradient norm reaching each layer's scores at the same
moments. Writes PNGs into ``--out`` (default docs/img) and prints the numbers
the RESULTS section quotes.

    python scripts/plot_deep.py runs/deep/trace-s0.04 runs/deep/trace-s0.5 runs/deep/trace-s0.9
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def moments(trace: list[dict]) -> list[dict]:
    """Initialisation, the middle of the ramp and the last traced epoch."""
    ramp = [t for t in trace if t.get("sparsity") is not None]
    target = max(t["sparsity"] for t in ramp)
    mid = min(ramp, key=lambda t: abs(t["sparsity"] - target / 2))
    return [trace[0], mid, trace[-1]]


def label(t: dict) -> str:
    if t["epoch"] < 0:
        return "initialisation"
    return f"epoch {t['epoch'] + 1} (sparsity {t['sparsity']:.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders holding seed_0.json")
    p.add_argument("--out", default="docs/img")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = {Path(r).name: json.loads((Path(r) / "seed_0.json").read_text())
               for r in args.runs}
    for metric, ylabel, log in (("norm", "mean norm of the representations", True),
                                ("effective_rank", "effective rank", True),
                                ("mad", "MAD", False)):
        fig = Figure(figsize=(4.2 * len(records), 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(records), sharey=True, squeeze=False)[0]
        for ax, (name, r) in zip(axes, records.items()):
            for t in moments(r["layer_trace"]):
                ax.plot([row["layer"] for row in t["layers"]],
                        [row[metric] for row in t["layers"]], marker="o", markersize=2,
                        label=label(t))
            ax.set_title(f"{name} (test {r['test_acc']:.3f})")
            ax.set_xlabel("layer (0 = input features)")
            ax.grid(alpha=0.3)
            if log:
                ax.set_yscale("log")
        axes[0].set_ylabel(ylabel)
        axes[0].legend(fontsize="x-small")
        fig.savefig(out / f"deep_{metric}.png", dpi=110)
    fig = Figure(figsize=(4.2 * len(records), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(records), sharey=True, squeeze=False)[0]
    for ax, (name, r) in zip(axes, records.items()):
        flows = r["gradient_flow"]
        picks = [flows[0], flows[len(flows) // 2], flows[-1]]
        for f in picks:
            names = [n for n in f["per_layer"] if n.endswith("weight.scores")]
            ax.plot(range(len(names)), [f["per_layer"][n] for n in names], marker="o",
                    markersize=2, label="initialisation" if f["epoch"] < 0 else
                    f"epoch {f['epoch'] + 1}")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gradient norm reaching the scores")
    axes[0].legend(fontsize="x-small")
    fig.savefig(out / "deep_gradients.png", dpi=110)
    for name, r in records.items():
        last = r["layer_trace"][-1]["layers"]
        first = r["layer_trace"][0]["layers"]
        print(f"{name}: test {r['test_acc']:.3f}; init norm layer 1 / 16 / 31: "
              f"{first[1]['norm']:.3g} / {first[16]['norm']:.3g} / {first[-2]['norm']:.3g}, "
              f"rank {first[1]['effective_rank']:.1f} / {first[16]['effective_rank']:.1f} / "
              f"{first[-2]['effective_rank']:.1f}; end norm {last[1]['norm']:.3g} / "
              f"{last[16]['norm']:.3g} / {last[-2]['norm']:.3g}, rank "
              f"{last[1]['effective_rank']:.1f} / {last[16]['effective_rank']:.1f} / "
              f"{last[-2]['effective_rank']:.1f}, MAD {last[16]['mad']:.3f}")


if __name__ == "__main__":
    main()
