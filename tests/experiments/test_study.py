"""Studies: sweeps read side by side, verdicts chosen by validation accuracy."""

import csv
import json

import pytest

from gnnmask.cli import main
from gnnmask.errors import UserError
from gnnmask.experiments.study import (
    best_by_validation,
    compare,
    is_study,
    last_hidden,
    one_class_counts,
    smoothing_verdict,
    statement,
    study_report,
    verdict,
    welch_p,
)


def group(method, depth, sparsity, val, test, layers=None, seeds=(0,)):
    records = [{"seed": s, "layers": layers or []} for s in seeds]
    return {"method": method, "layers": depth, "sparsity": sparsity, "val_acc": val,
            "test_acc": test, "test_acc_std": 0.0, "seeds": list(seeds), "records": records}


def test_verdict_thresholds_are_one_point_either_side():
    assert verdict(0.0101) == "beats"
    assert verdict(0.01) == verdict(-0.01) == verdict(0.0) == "matches"
    assert verdict(-0.0101) == "below"
    assert verdict(None) == ""


def test_the_ticket_compared_is_the_one_with_the_best_validation_accuracy():
    groups = [group("dense", 4, None, 0.70, 0.70),
              group("ugt", 4, 0.5, 0.75, 0.60),   # best validation, worse test
              group("ugt", 4, 0.9, 0.72, 0.90),   # best test: must not be chosen
              group("ugt", 8, 0.5, 0.99, 0.99)]   # another depth
    assert best_by_validation(groups, "ugt", 4)["sparsity"] == 0.5
    assert best_by_validation(groups, "rigl", 4) is None
    (row,) = [r for r in compare([{"dataset": "d", "model": "m", "groups": groups}])
              if r["depth"] == 4]
    assert row["diff"] == pytest.approx(-0.10) and row["verdict"] == "below"
    assert row["sparse"] is None


def seeded_group(method, sparsity, vals, test=0.7):
    """A group at depth 4 whose records hold one validation accuracy per seed."""
    records = [{"seed": s, "val_acc": v, "test_acc": test, "layers": []}
               for s, v in vals.items()]
    return {"method": method, "layers": 4, "sparsity": sparsity,
            "val_acc": sum(vals.values()) / len(vals), "test_acc": test,
            "test_acc_std": 0.0, "seeds": list(vals), "records": records}


def test_sparsities_are_compared_over_the_seeds_they_share():
    # s 0.5 has seeds 0-2 (mean 0.767), s 0.9 only seeds 0-1 (mean 0.78): over
    # the shared seeds 0 and 1, s 0.5 (0.80) is better than s 0.9 (0.78)
    groups = [seeded_group("ugt", 0.5, {0: 0.80, 1: 0.80, 2: 0.70}),
              seeded_group("ugt", 0.9, {0: 0.78, 1: 0.78})]
    assert best_by_validation(groups, "ugt", 4)["sparsity"] == 0.5
    # with no seed in common, each group's own mean decides
    groups = [seeded_group("ugt", 0.5, {2: 0.70}), seeded_group("ugt", 0.9, {0: 0.78})]
    assert best_by_validation(groups, "ugt", 4)["sparsity"] == 0.9


def test_diverged_runs_and_non_finite_scores_do_not_choose_the_sparsity():
    # s 0.9's seed 1 diverged (its best finite epoch scored 0.95): over the
    # finished seeds only, seed 0 is shared and s 0.5 (0.80) beats s 0.9 (0.79)
    a, b = seeded_group("ugt", 0.5, {0: 0.80, 1: 0.80}), seeded_group("ugt", 0.9, {0: 0.79})
    b["diverged_records"] = [{"seed": 1, "val_acc": 0.95, "test_acc": 0.7, "layers": []}]
    assert best_by_validation([a, b], "ugt", 4)["sparsity"] == 0.5
    # a NaN validation score never wins, whatever the order
    nan = seeded_group("ugt", 0.5, {0: float("nan")})
    nan["val_acc"] = float("nan")
    ok = seeded_group("ugt", 0.9, {1: 0.6})
    assert best_by_validation([nan, ok], "ugt", 4)["sparsity"] == 0.9
    assert best_by_validation([ok, nan], "ugt", 4)["sparsity"] == 0.9


def test_a_validation_tie_goes_to_the_lowest_sparsity_whatever_the_order():
    groups = [seeded_group("ugt", 0.99, {0: 0.8}), seeded_group("ugt", 0.5, {0: 0.8}),
              seeded_group("ugt", 0.9, {0: 0.8})]
    assert best_by_validation(groups, "ugt", 4)["sparsity"] == 0.5
    assert best_by_validation(groups[::-1], "ugt", 4)["sparsity"] == 0.5


def test_welch_p_matches_the_hand_computed_test():
    # means 2 and 5, sample variances 1 and 1: t = -3 / sqrt(2/3) = -3.674 with
    # Welch's df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4, two-sided p = 0.0213
    assert welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.02131, abs=2e-4)
    assert welch_p([1, 2, 3], [3, 2, 1]) == pytest.approx(1.0)
    assert welch_p([0.5], [0.1, 0.2]) is None  # one seed: no test
    assert welch_p([0.6, 0.6], [0.6, 0.6, 0.6]) == 1.0  # constants: the difference is exact
    assert welch_p([0.65, 0.65], [0.6, 0.6]) == 0.0
    assert welch_p([0.5, float("nan")], [0.6, 0.7]) is None  # NaN left out: one value
    assert verdict(0.1, p=float("nan")) == "within noise"  # never significant by accident


def test_a_difference_within_the_seeds_noise_is_not_a_verdict():
    assert verdict(0.05, p=0.3) == "within noise" and verdict(-0.05, p=0.3) == "within noise"
    assert verdict(0.05, p=0.01) == "beats" and verdict(-0.05, p=0.01) == "below"
    assert verdict(0.005, p=0.9) == "matches"  # within MATCH whatever the test says
    noisy = [group("dense", 2, None, 0.5, 0.50, seeds=(0, 1, 2)),
             group("ugt", 2, 0.5, 0.6, 0.55, seeds=(0, 1, 2))]
    for g, accs in zip(noisy, ([0.40, 0.50, 0.60], [0.45, 0.55, 0.65])):
        for r, a in zip(g["records"], accs):
            r["test_acc"] = a
    (row,) = compare([{"dataset": "d", "model": "m", "groups": noisy}])
    assert row["diff"] == pytest.approx(0.05) and row["p"] == pytest.approx(0.5724, abs=1e-3)
    assert row["verdict"] == "within noise"
    assert "differs from it within the seeds' noise at depth 2" in statement([row])[0]
    for r, a in zip(noisy[1]["records"], [0.80, 0.81, 0.82]):  # now clearly above
        r["test_acc"] = a
    noisy[1]["test_acc"] = 0.81
    (row,) = compare([{"dataset": "d", "model": "m", "groups": noisy}])
    assert row["verdict"] == "beats" and row["p"] < 0.05


def test_over_smoothing_must_be_measurable_over_seeds_and_a_zero_state_is_flagged():
    one, two = {"mad": 1, "effective_rank": 1}, {"mad": 2, "effective_rank": 2}
    apart = ([{"mad": 2.0, "effective_rank": 2.0, "norm": 1.0},
              {"mad": 2.1, "effective_rank": 2.1, "norm": 1.0}],
             [{"mad": 1.0, "effective_rank": 1.0, "norm": 1.0},
              {"mad": 1.1, "effective_rank": 1.1, "norm": 1.0}])
    assert smoothing_verdict(two, one, apart) == "less smoothed"
    overlap = (apart[0], [{"mad": 0.1, "effective_rank": 0.1, "norm": 1.0},
                          {"mad": 3.9, "effective_rank": 3.9, "norm": 1.0}])
    assert smoothing_verdict(two, one, overlap) == "no measurable difference"
    assert smoothing_verdict({"mad": 2, "effective_rank": 0}, one, overlap) == "mixed"
    dead = ([{"mad": 0.0, "effective_rank": 0.0, "norm": 0.0}, apart[0][0]], apart[1])
    assert smoothing_verdict(one, two, dead) == "zero state"  # not "more smoothed"
    assert smoothing_verdict(one, two, ([apart[0][0]], [apart[1][0]])) == "more smoothed"


def test_over_smoothing_compares_the_last_hidden_state():
    rows = [{"layer": 0, "name": "input", "mad": 9.0, "effective_rank": 9.0},
            {"layer": 1, "name": "hidden.0", "mad": 0.5, "effective_rank": 2.0},
            {"layer": 2, "name": "hidden.1", "mad": 0.25, "effective_rank": 1.0},
            {"layer": 3, "name": "logits", "mad": 9.0, "effective_rank": 9.0}]
    assert last_hidden(group("ugt", 2, 0.5, 0, 0, rows)) == \
        {"mad": 0.25, "effective_rank": 1.0}
    no_hidden = [rows[0], rows[3]]  # e.g. APPNP: input and logits only
    assert last_hidden(group("ugt", 2, 0.5, 0, 0, no_hidden)) == \
        {"mad": 9.0, "effective_rank": 9.0}
    one, two = {"mad": 1, "effective_rank": 1}, {"mad": 2, "effective_rank": 2}
    assert smoothing_verdict(two, one) == "less smoothed"
    assert smoothing_verdict(one, two) == "more smoothed"
    assert smoothing_verdict({"mad": 2, "effective_rank": 0}, one) == "mixed"
    # the Dirichlet energy grows with the scale of the states: it does not decide
    assert smoothing_verdict({**one, "dirichlet": 99.0}, {**two, "dirichlet": 1.0}) == \
        "more smoothed"
    assert smoothing_verdict({"mad": 2, "dirichlet": 5}, {"mad": 1, "dirichlet": 1}) == ""


def test_cells_that_predict_one_class_are_flagged():
    ticket = group("ugt", 2, 0.5, 0.6, 0.65, seeds=(0, 1, 2))
    for r, k in zip(ticket["records"], (1, 1, 3)):
        r["predicted_classes"] = {"train": k, "val": k, "test": k}
    trained = group("dense", 2, None, 0.5, 0.5)  # a record from before the field
    assert one_class_counts(ticket) == (2, 3) and one_class_counts(trained) == (0, 0)
    assert one_class_counts(None) == (0, 0)
    deeper = [group("dense", 8, None, 0.5, 0.5), group("ugt", 8, 0.5, 0.5, 0.5)]
    deeper[0]["records"][0]["predicted_classes"] = {"train": 1, "val": 1, "test": 1}
    rows = compare([{"dataset": "d", "model": "m", "groups": [trained, ticket, *deeper]}])
    assert [(r["ticket_one_class"], r["trained_one_class"]) for r in rows] == \
        [((2, 3), (0, 0)), ((0, 0), (1, 1))]
    (line,) = statement(rows)
    assert line.endswith("One class for every test node (in at least one seed): the ticket "
                         "at depth 2; the trained network at depth 8 (1/3 seeds).")
    for r in rows:
        for g in ("ticket", "trained"):
            r[f"{g}_one_class"] = (0, 1)
    assert "One class" not in statement(rows)[0]


def test_report_of_a_folder_of_sweeps_writes_the_study(tmp_path, capsys):
    root = tmp_path / "study"
    for model in ("gcn", "appnp"):
        assert main(["sweep", "--dataset", "csbm", "--model", model, "--hidden", "8",
                     "--epochs", "3", "--depths", "1,2", "--methods", "dense,ugt,rigl",
                     "--sparsities", "0.5,0.9", "--seeds", "0", "--no-history",
                     "--layer-metrics", "mad,dirichlet,effective_rank,norm", "--no-report",
                     "--quiet", "--device", "cpu", "--out", str(root / "csbm" / model)]) == 0
    assert is_study(root) and not is_study(root / "csbm" / "gcn")
    capsys.readouterr()
    assert main(["report", str(root)]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(p.rsplit("/", 1)[1] for p in written) == ["study.csv", "study.md",
                                                            "study_csbm.png"]
    rows = list(csv.DictReader((root / "study.csv").open()))
    assert [(r["backbone"], r["depth"]) for r in rows] == \
        [("appnp", "1"), ("appnp", "2"), ("gcn", "1"), ("gcn", "2")]
    for r in rows:  # the ticket's difference is its accuracy minus the trained one's
        assert float(r["ugt_minus_dense"]) == pytest.approx(
            float(r["ugt_test_acc"]) - float(r["dense_test_acc"]))
        assert r["verdict"] in ("beats", "matches", "below")
        assert r["ugt_sparsity"] in ("0.5", "0.9") and r["rigl_sparsity"] in ("0.5", "0.9")
        assert 0 < int(r["ugt_inference_macs"]) < int(r["dense_inference_macs"])
        assert r["ugt_one_class_seeds"] in ("0/1", "1/1")
    text = (root / "study.md").read_text()
    assert "## csbm" in text and "- **gcn**: the ticket" in text and "- **appnp**" in text
    cell = json.loads(next((root / "csbm" / "gcn" / "cells").glob("ugt/L2/s0.5/seed_0.json"))
                      .read_text())
    assert "history" not in cell and cell["layers"]


def test_a_folder_without_sweeps_is_refused(tmp_path):
    with pytest.raises(UserError, match="holds no sweep"):
        study_report(tmp_path)
