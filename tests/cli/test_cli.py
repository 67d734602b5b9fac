"""The command line end to end: train on Cora, datasets listing, bad input."""

import argparse
import json
import subprocess
import sys

import pytest

from gnnmask.cli.args import parse_seeds
from gnnmask.data import DATASETS
from gnnmask.errors import UserError


def test_train_cora_end_to_end_json(cli, data_root, tmp_path):
    code, out, err = cli(
        "train", "--dataset", "cora", "--data-root", str(data_root), "--model", "gcn",
        "--layers", "2", "--hidden", "16", "--epochs", "30", "--seeds", "0,1", "--json",
        "--out", str(tmp_path / "run"),
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    s = json.loads(lines[0])
    for key in ("dataset", "model", "layers", "hidden", "method", "seeds", "test_acc",
                "test_acc_std", "val_acc", "epoch_time_s", "params", "nonzero_params"):
        assert key in s
    assert s["dataset"] == "cora" and s["seeds"] == [0, 1]
    assert 0.6 < s["test_acc"] <= 1.0  # 30 epochs of a 2-layer GCN on Cora
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["config.json", "seed_0.json", "seed_1.json", "summary.json"]
    rec = json.loads((tmp_path / "run" / "seed_1.json").read_text())
    assert rec["seed"] == 1 and len(rec["history"]) == 30
    assert rec["config"]["dataset"] == "cora" and "torch" in rec["versions"]


def test_train_table_output_and_resume(cli, tmp_path):
    args = ["train", "--epochs", "5", "--hidden", "8", "--out", str(tmp_path / "r"), "--quiet"]
    code, out, _ = cli(*args)
    assert code == 0 and "test acc" in out and "seed" in out
    first = (tmp_path / "r" / "seed_0.json").read_text()
    code, _, _ = cli(*args)  # finished seeds are reused, not re-run
    assert code == 0 and (tmp_path / "r" / "seed_0.json").read_text() == first
    code, _, err = cli(*args[:-3], "--hidden", "9", "--out", str(tmp_path / "r"))
    assert code == 2 and "different config" in err and "hidden" in err


def test_datasets_lists_all_shared(cli, data_root):
    code, out, _ = cli("datasets", "--data-root", str(data_root), "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    shared = ["cora", "citeseer", "pubmed", "texas", "wisconsin", "cornell", "actor",
              "amazon-computers", "amazon-photo", "coauthor-cs", "coauthor-physics"]
    assert all(rows[n]["available"] for n in shared)
    arxiv = DATASETS["ogbn-arxiv"]  # present or not, the listing says which
    assert rows["csbm"]["available"] and rows["ogbn-arxiv"]["available"] == all(
        (data_root / arxiv.directory / f).is_file() for f in arxiv.files)
    code, out, _ = cli("datasets", "--data-root", str(data_root))
    assert code == 0 and "cora" in out and "2,708" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--layers", "0"], "--layers 0"),
        (["train", "--hidden", "-5"], "--hidden -5"),
        (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["train", "--model", "mlp"], "argument --model: invalid choice: 'mlp'"),
        (["train", "--method", "magic"], "argument --method: invalid choice: 'magic'"),
        (["train", "--method", "dense", "--sparsity", "0.9"],
         "--sparsity is not used by method 'dense'"),
        (["train", "--method", "ugt", "--extra", "mask_scal=none"],
         "unknown --extra key 'mask_scal' for method 'ugt'; allowed: eval_sparsity, "
         "l0_lambda, mask_bias"),
        (["train", "--method", "ugt", "--extra", "mask_scale=half"],
         "--extra mask_scale='half' is invalid for method 'ugt'; allowed: auto, none, keep"),
        (["train", "--method", "dense", "--save-ticket", "t.ticket"],
         "--save-ticket needs a masked method"),
        (["train", "--dataset", "texas", "--split", "10"], "10"),
        (["train", "--data-root", "/no/such/dir"], "/no/such/dir"),
        (["train", "--seeds", "0,x"], "--seeds '0,x'"),
        (["train", "--seeds", "3-1"], "--seeds '3-1'"),
        (["train", "--method", "ugt", "--sparsity", "1.5"], "--sparsity 1.5"),
        (["train", "--epochs", "ten"], "ten"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, tmp_path, argv, fragment):
    code, out, err = cli(*argv, *(["--out", str(tmp_path / "x")]
                                              if argv[0] == "train" else []))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gnnmask: error:")
    assert fragment in err
    assert "Traceback" not in err
    if argv[0] == "train":
        assert not (tmp_path / "x").exists()  # refused before anything was written


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for bad in ("", "a", "1,1", "-1", "2-"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "gnnmask", "train", "--layers", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gnnmask: error: --layers 0 is out of range; allowed: an integer 1..128"]


@pytest.mark.parametrize("argv, expected", [
    ([], (False, None)), (["--deterministic"], (True, None)),
    (["--deterministic", "false"], (False, None)), (["--no-deterministic"], (False, None)),
    (["--no-bias"], (False, False)), (["--bias", "true"], (False, True)),
])
def test_boolean_settings_are_flags(cli, argv, expected):
    from gnnmask.cli.args import add_run_arguments

    p = argparse.ArgumentParser()
    add_run_arguments(p)
    args = p.parse_args(argv)
    assert (args.deterministic, args.bias) == expected
    code, out, _ = cli("train", "--method", "rigl", "--sparsity", "0.5", "--itop",
                           "--dry-run", "--json")
    assert code == 0 and json.loads(out)["config"]["itop"] is True
