#!/usr/bin/env python
"""Copy the depth x sparsity study's per-dataset statements into docs/RESULTS.md.

    gnnmask report docs/results/study && python scripts/study_section.py

Replaces what stands between the ``<!-- study-blocks ... -->`` and
``<!-- /study-blocks -->`` markers of docs/RESULTS.md with every ``## <dataset>``
block of docs/results/study/study.md (as ``#### <dataset>``, image paths made
relative to docs/), and what stands between ``<!-- study-status -->`` and
``<!-- /study-status -->`` with the count of finished cells per (dataset,
backbone) for the seeds on disk. The hand-written readings after the blocks
are left as they are.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "docs" / "results" / "study"
RESULTS = REPO / "docs" / "RESULTS.md"
#: Cells per (dataset, backbone) and seed: 5 depths x (dense + ugt and rigl at 3 sparsities).
CELLS_PER_SEED = 5 * (1 + 3 + 3)


def blocks(report: str) -> str:
    """The ``## <dataset>`` sections of study.md as ``#### <dataset>`` sections."""
    parts = re.split(r"^## ", report, flags=re.M)[1:]
    out = []
    for part in parts:
        part = re.sub(r"\]\((study_[^)]+\.png)\)", r"](results/study/\1)", part.rstrip())
        out.append("#### " + part)
    return "\n\n".join(out)


def finished() -> str:
    counts: Counter[tuple[str, str, int]] = Counter()
    for path in STUDY.glob("*/*/cells/**/seed_*.json"):
        record = json.loads(path.read_text())
        if record.get("status") == "finished":
            dataset, backbone = path.relative_to(STUDY).parts[:2]
            counts[dataset, backbone, record["seed"]] += 1
    seeds = sorted({s for _, _, s in counts})
    pairs = sorted({(d, b) for d, b, _ in counts})
    items = [f"{d}/{b} {sum(counts[d, b, s] for s in seeds)} of {CELLS_PER_SEED * len(seeds)} cells"
             for d, b in pairs]
    return (f"**Finished at this commit** (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}): {', '.join(items)}.")


def splice(text: str, begin: str, end: str, body: str) -> str:
    head = re.escape(begin) + ("" if begin.endswith("-->") else r"[^\n]*?-->")
    pattern = re.compile(rf"({head})(.*?)({re.escape(end)})", re.S)
    if not pattern.search(text):
        sys.exit(f"docs/RESULTS.md lacks the markers {begin} ... {end}")
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def main() -> None:
    text = RESULTS.read_text()
    text = splice(text, "<!-- study-blocks", "<!-- /study-blocks -->",
                  "\n\n" + blocks((STUDY / "study.md").read_text()) + "\n\n")
    text = splice(text, "<!-- study-status -->", "<!-- /study-status -->", finished())
    RESULTS.write_text(text)
    print(f"updated {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
