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


def _record(seed, test_classes, acc=0.5):
    return {"config": {"dataset": "d", "model": "gcn", "layers": 2, "hidden": 8,
                       "method": "ugt", "sparsity": 0.5},
            "seed": seed, "status": "finished", "metric": "acc", "train_acc": acc,
            "val_acc": acc, "test_acc": acc, "params": 10, "nonzero_params": 5,
            "best_epoch": 1, "epoch_time_s": 0.1,
            **({"predicted_classes": {"train": 1, "val": 1, "test": test_classes}}
               if test_classes else {})}


def test_one_class_seeds_are_counted_and_shown_beside_the_accuracy():
    from gnnmask.experiments.runs import describe, summarize
    from gnnmask.experiments.tables import accuracy_table

    group = summarize([_record(0, 1), _record(1, 3), _record(2, None)])
    assert group["one_class_seeds"] == [0]  # seed 2 predates the field: not counted
    assert "0.5000 ± 0.0000 (one class: 1/3)" in accuracy_table([group])
    assert "(one class" not in accuracy_table([summarize([_record(0, 2)])])
    assert describe(_record(0, 1)).endswith("(one class for every test node)")
    assert "one class" not in describe(_record(0, 2))
