"""Named recipes: every shipped preset loads, resolves, trains, and is overridable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gnnmask.errors import UserError
from gnnmask.presets import PRESETS, Preset, get_preset
from gnnmask.train import train
from gnnmask.train.config import RunConfig, preset_config, resolve_config


def test_presets_ship_with_the_package_and_describe_themselves():
    assert {"ugt-paper", "ugt-gat-paper", "edge-popup-paper", "ugs-paper", "gcnii-paper",
            "gat-paper"} <= \
        set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.summary().endswith(".")
        assert preset.paper, name  # a published recipe names its source
        assert name.endswith("-paper") == bool(preset.differs), name


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_two_epochs_on_the_embedded_graph(name):
    # No preset can rot: its settings resolve and run (on the generated graph).
    config = preset_config(name, dataset="csbm", epochs=2, layer_metrics="none")
    record = train(config)
    assert record["status"] == "finished" and record["config"]["preset"] == name
    settings = get_preset(name).settings
    for key, value in settings.items():
        if key not in ("extra", "epochs"):
            assert record["config"][key] == value, key
    for key, value in settings.get("extra", {}).items():
        assert record["method_options"][key] == value, key


def test_changes_override_a_preset_and_its_options():
    c = preset_config("ugt-paper", epochs=3, extra={"mask_scale": "keep"})
    assert (c.epochs, c.hidden, c.preset) == (3, 256, "ugt-paper")
    assert c.extra == {"mask_scale": "keep", "selection": "all", "eval_sparsity": "target"}
    with pytest.raises(UserError, match="unknown setting 'epoch'"):
        preset_config("ugt-paper", epoch=3)
    with pytest.raises(UserError, match="unknown --preset 'ugt'; allowed: .*ugt-paper"):
        preset_config("ugt")
    with pytest.raises(UserError, match="unknown --preset 'nope'"):
        resolve_config(RunConfig(preset="nope"))


def test_a_preset_file_needs_its_description():
    with pytest.raises(ValueError, match="no \\[preset\\] summary"):
        Preset.from_toml("x", 'method = "ugt"\n')
    p = Preset.from_toml("x", 'method = "ugt"\n[preset]\nsummary = "A recipe."\n')
    assert p.settings == {"method": "ugt"} and p.summary() == "A recipe."


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "gnnmask", *argv], capture_output=True,
                          text=True, timeout=120)


def test_cli_flags_and_config_files_override_the_preset(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('hidden = 32\n[extra]\nselection = "target"\n')
    out = run_cli("train", "--preset", "ugt-paper", "--config", str(cfg), "--epochs", "4",
                  "--extra", "mask_scale=keep", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout.splitlines()[0])
    c = c.get("config", c)
    assert (c["preset"], c["hidden"], c["epochs"], c["layers"]) == ("ugt-paper", 32, 4, 2)
    assert c["extra"] == {"mask_scale": "keep", "selection": "target",
                          "eval_sparsity": "target"}
    bad = run_cli("train", "--preset", "nope", "--dry-run")
    assert bad.returncode == 2 and "nope" in bad.stderr and "ugt-paper" in bad.stderr
    listed = run_cli("list", "presets")
    assert "ugt-paper  Untrained GNN tickets" in listed.stdout
