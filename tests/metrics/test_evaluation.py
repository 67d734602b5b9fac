"""Evaluation beyond accuracy: AUROC, ECE, perturbations, held-out classes."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.utils import to_undirected

from gnnmask.errors import UserError
from gnnmask.metrics import (
    auroc,
    expected_calibration_error,
    fit_temperature,
    holdout_classes,
    ood_scores,
    perturb_edges,
    perturb_features,
    reliability,
)


def test_auroc_by_hand_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4: pairs won 1 + 2 + (1 + 0.5 tie)
    assert auroc(scores, labels) == pytest.approx(4.5 / 6)
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([0, 1])) == 1.0
    with pytest.raises(ValueError):
        auroc(torch.tensor([1.0]), torch.tensor([1]))


def test_ece_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 1, 0])
    # bins of width 1/15: conf 0.9 -> bin 13 (correct), 0.8 -> bin 12 (wrong),
    # 0.7 -> bin 10 (correct), 0.55 -> bin 8 (wrong)
    expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.7) + abs(0 - 0.55)) / 4
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    bins = reliability(probs, labels)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 4
    assert bins[13]["accuracy"] == 1.0 and bins[12]["accuracy"] == 0.0
    # with 2 bins all four fall in [0.5, 1]: accuracy 2/4 against mean confidence 0.7375
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(
        abs(0.5 - (0.9 + 0.8 + 0.7 + 0.55) / 4))


def test_temperature_by_hand():
    # three nodes with logits (d, 0), two of class 0: the likelihood peaks where
    # softmax gives class 0 probability 2/3, i.e. d / T = log 2
    d = 3.0
    logits, labels = torch.tensor([[d, 0.0]] * 3), torch.tensor([0, 0, 1])
    assert fit_temperature(logits, labels) == pytest.approx(d / math.log(2), rel=1e-6)
    # scaling the logits scales the temperature: the scaled model is the same
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(40, 4, generator=g), torch.randint(0, 4, (40,), generator=g)
    assert fit_temperature(10 * z, y) == pytest.approx(10 * fit_temperature(z, y), rel=1e-5)


def test_ood_score_is_the_negative_maximum_softmax():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert torch.allclose(ood_scores(logits), -torch.softmax(logits, -1).max(-1).values)
    assert ood_scores(logits)[1] > ood_scores(logits)[0]  # the uncertain one looks OOD


def test_perturbations_change_what_they_say():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 8, generator=g)
    x = x / x.sum(1, keepdim=True)
    px = perturb_features(x, 0.2, seed=1)
    changed = (px != x).any(1)
    assert int(changed.sum()) == 10
    assert torch.allclose(px.sum(1), x.sum(1))  # rows keep their sums
    ei = to_undirected(torch.randint(0, 50, (2, 120), generator=g), num_nodes=50)
    pe = perturb_edges(ei, 50, 0.3, seed=1)
    assert pe.size(1) == ei.size(1)  # as many edges, undirected
    old, new = set(map(tuple, ei.t().tolist())), set(map(tuple, pe.t().tolist()))
    removed = len(old - new) // 2
    assert removed == round(0.3 * ei.size(1) / 2)
    assert all((b, a) in new for a, b in new)
    assert torch.equal(perturb_edges(ei, 50, 0.3, seed=1), pe)  # seeded


def test_holdout_classes_are_seeded_and_leave_some_in():
    assert holdout_classes(7, 0.4, 0) == holdout_classes(7, 0.4, 0)
    assert len(holdout_classes(7, 0.4, 0)) == 3 and len(holdout_classes(2, 0.9, 0)) == 1


def test_holdout_floor_is_the_untrained_tickets_count():
    # Cora (7 classes) with 0.4: floor 2.8 = 2 classes there, ceil = 3 here
    assert len(holdout_classes(7, 0.4, 0, rounding="floor")) == 2
    assert len(holdout_classes(7, 0.1, 0, rounding="floor")) == 1  # at least one
    assert set(holdout_classes(7, 0.4, 3, rounding="floor")) <= set(range(7))
    with pytest.raises(UserError, match="rounding 'round' is invalid; allowed: ceil, floor"):
        holdout_classes(7, 0.4, 0, rounding="round")


def test_ece_with_the_untrained_tickets_four_bins_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1, 0, 1])
    # bins [0.5, 0.75): confidences 0.7, 0.55, 0.6 with 1 of 3 correct;
    # [0.75, 1]: 0.9 (correct) and 0.8 (wrong)
    low = abs(1 / 3 - (0.7 + 0.55 + 0.6) / 3) * 3 / 5
    high = abs(1 / 2 - (0.9 + 0.8) / 2) * 2 / 5
    assert expected_calibration_error(probs, labels, bins=4) == pytest.approx(low + high)
    assert [b["count"] for b in reliability(probs, labels, bins=4)] == [0, 0, 3, 2]


def test_engine_holds_out_classes_and_records_evaluations():
    from gnnmask.data import load_dataset
    from gnnmask.train import RunConfig, train

    data = load_dataset("csbm", nodes=240, classes=4, features=12, seed=0)
    rec = train(RunConfig(dataset="csbm", hidden=16, epochs=5, layer_metrics="none",
                          evaluations="all", holdout_classes=0.5), data=data)
    held = rec["held_out_classes"]
    assert len(held) == 2
    ev = rec["evaluation"]
    assert 0 <= ev["ood"]["auroc"] <= 1 and ev["ood"]["out_nodes"] > 0
    assert 0 <= ev["calibration"]["ece"] <= 1 and 0 <= ev["calibration"]["ece_scaled"] <= 1
    assert ev["calibration"]["temperature"] > 0
    assert len(ev["robustness"]["features"]) == 5
    assert ev["calibration"]["num_bins"] == 15 and len(ev["calibration"]["bins"]) == 15


def test_engine_uses_the_papers_evaluation_protocol_when_asked():
    from gnnmask.data import load_dataset
    from gnnmask.train import RunConfig, train

    data = load_dataset("csbm", nodes=240, classes=4, features=12, seed=0)
    rec = train(RunConfig(dataset="csbm", hidden=16, epochs=3, layer_metrics="none",
                          evaluations="calibration,ood", holdout_classes=0.6,
                          holdout_rounding="floor", calibration_bins=4), data=data)
    assert len(rec["held_out_classes"]) == 2  # floor(2.4); ceil would hold out 3
    assert rec["evaluation"]["calibration"]["num_bins"] == 4
    assert len(rec["evaluation"]["calibration"]["bins"]) == 4
    assert rec["config"]["calibration_bins"] == 4
