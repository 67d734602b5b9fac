"""Aggregating records: iterative methods expanded into one record per round."""

from gnnmask.experiments.aggregate import expand_rounds


def test_each_pruning_round_keeps_its_own_metrics_and_predicted_classes():
    rounds = [{"round": 0, "sparsity": 0.5, "test_acc": 0.8, "best_epoch": 3,
               "predicted_classes": {"train": 3, "val": 3, "test": 3}},
              {"round": 1, "sparsity": 0.75, "test_acc": 0.3, "best_epoch": 1,
               "predicted_classes": {"train": 1, "val": 1, "test": 1}}]
    record = {"config": {"sparsity": 0.75}, "status": "finished", "test_acc": 0.3,
              "predicted_classes": rounds[-1]["predicted_classes"], "rounds": rounds,
              "layers": [{"layer": 0}]}
    first, last = expand_rounds([record])
    assert last is record
    assert first["config"]["sparsity"] == 0.5 and first["test_acc"] == 0.8
    assert first["predicted_classes"] == {"train": 3, "val": 3, "test": 3}
    assert first["layers"] == []
    older = {**record, "rounds": [{k: v for k, v in rounds[0].items()
                                   if k != "predicted_classes"}, rounds[1]]}
    assert expand_rounds([older])[0]["predicted_classes"] is None  # not the last round's
