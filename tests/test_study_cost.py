"""scripts/study_cost.py: the study's remaining cost, priced from its own records."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "study_cost.py"
spec = importlib.util.spec_from_file_location("study_cost", SCRIPT)
study_cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_cost)

CELLS = len(list(study_cost.design("cora", 0)))


def test_the_design_has_every_cell_once():
    cells = list(study_cost.design("cora", 0))
    assert len(cells) == len(set(cells)) == 7 * 5 * (1 + 2 * 3)


def test_missing_cells_are_priced_by_their_group_then_by_cora_times_the_ratio():
    done = {("cora", "gcn", "dense", 2, None, 0): 3600.0,
            ("cora", "gcn", "dense", 2, None, 1): 7200.0,  # median 1.5 h
            ("cora", "gcn", "ugt", 2, 0.5, 0): 1800.0,
            ("pubmed", "gcn", "dense", 2, None, 0): 4 * 5400.0}  # ratio 4 to cora
    rows, ratio = study_cost.estimate(done, ["cora", "pubmed"], [0, 1, 2])
    assert ratio["pubmed"] == pytest.approx(4.0)
    # cora seed 2: its dense cell at the median of seeds 0 and 1, its three ugt
    # cells at depth 2 (sparsities 0.5, 0.9, 0.99) at seed 0's sparsity 0.5
    finished, cells, hours, unpriced = rows[("cora", 2)]
    assert (finished, cells) == (0, CELLS)
    assert hours == pytest.approx(1.5 + 3 * 0.5)
    assert unpriced == CELLS - 4
    # pubmed seed 1: dense from pubmed's own seed 0 (6 h), ugt from cora's 0.5 h x 4
    assert rows[("pubmed", 1)][2] == pytest.approx(6.0 + 3 * 2.0)
    assert rows[("pubmed", 0)][0] == 1


def test_one_cell_timed_under_contention_does_not_price_its_group():
    # a cell timed while other work shared the cores took 60x its neighbours
    done = {("cora", "gcn", "ugt", 32, 0.5, 0): 60 * 80.0,
            ("cora", "gcn", "ugt", 32, 0.9, 0): 80.0,
            ("cora", "gcn", "ugt", 32, 0.99, 0): 80.0}
    rows, _ = study_cost.estimate(done, ["cora"], [1])
    assert rows[("cora", 1)][2] == pytest.approx(3 * 80.0 / 3600)


def test_the_records_are_read_from_the_study_layout(tmp_path):
    f = tmp_path / "cora" / "gcn" / "cells" / "ugt" / "L2" / "s0.9" / "seed_1.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"config": {"method": "ugt", "layers": 2, "sparsity": 0.9},
                             "seed": 1, "test_acc": 0.7, "total_time_s": 12.5}))
    bad = tmp_path / "cora" / "gcn" / "cells" / "dense" / "L2" / "seed_0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{truncated")  # an unreadable record is skipped, not fatal
    untimed = tmp_path / "cora" / "gcn" / "cells" / "dense" / "L8" / "seed_0.json"
    untimed.parent.mkdir(parents=True)
    untimed.write_text(json.dumps({"config": {"method": "dense", "layers": 8}, "seed": 0,
                                   "test_acc": 0.7}))
    done = study_cost.load(tmp_path)
    assert done == {("cora", "gcn", "ugt", 2, 0.9, 1): 12.5,
                    ("cora", "gcn", "dense", 8, None, 0): None}
    rows, _ = study_cost.estimate(done, ["cora"], [0])
    assert rows[("cora", 0)][0] == 1  # the untimed cell is finished, and prices nothing


@pytest.mark.parametrize("argv, says", [
    (["--seeds", "a,b"], "--seeds 'a,b' is malformed"),  # the CLI's own seed parser
    (["nowhere"], "study folder 'nowhere' does not exist"),
    (["--datasets", "cora,coraa"], "--datasets 'coraa' has no sweeps in 'study'; allowed: cora"),
    (["--sedes", "0"], "unrecognized arguments: --sedes"),  # one line, not argparse's usage
])
def test_bad_input_is_one_line_and_exit_2(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study" / "cora").mkdir(parents=True)
    argv = argv if argv[0] == "nowhere" else ["study", *argv]
    monkeypatch.setattr("sys.argv", ["study_cost.py", *argv])
    with pytest.raises(SystemExit) as e:
        study_cost.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and err.count("\n") == 1
