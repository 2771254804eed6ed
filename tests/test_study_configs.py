"""configs/hf.py and configs/glorot.py: the HF and Glorot studies' presets as ml_collections
configs, and their CLIs' --config / --config.x=... / --preset."""
import json

import pytest

from configs import glorot as glorot_config
from configs import hf as hf_config
from configs import reproduce as reproduce_config
from experiments import cli
from experiments import glorot
from experiments import hf

_STUDIES = {"hf": (hf, hf_config, ("preset", "data_dir")),
            "glorot": (glorot, glorot_config, ("preset", "data_dir", "seed"))}


@pytest.mark.parametrize("name", sorted(_STUDIES))
@pytest.mark.parametrize("size", ["tiny", "quick", "medium", "paper"])
def test_each_size_is_the_studys_own_preset(name, size):
  module, config_file, extra = _STUDIES[name]
  config = cli.load_config(f"{config_file.__file__}:{size}").to_dict()
  preset = config["preset"]
  assert {k: v for k, v in config.items() if k not in extra} == module.PRESETS[preset]
  # paper runs what experiments.reproduce's paper preset runs (medium runs neither study).
  if size == "paper":
    assert preset == reproduce_config.plan(size)[name]
  elif size == "medium":
    assert preset == "quick" and reproduce_config.plan(size)[name] is None
  else:
    assert preset == size


def _captured_run(monkeypatch, module):
  calls = []
  monkeypatch.setattr(module, "run", lambda *a, **k: calls.append((a, k)) or {"rows": []})
  return calls


def test_hf_cli_overrides_and_preset_alias_reach_run(monkeypatch):
  calls = _captured_run(monkeypatch, hf)
  hf.main(["--workdir", "w", "--config", "configs/hf.py:quick", "--config.nag_lrs=(0.02,)",
           "--config.max_cg", "7", "--steps", "5"])
  hf.main(["--workdir", "w", "--preset", "paper"])
  (args, kwargs), (alias_args, alias_kwargs) = calls
  assert args == ("w", "quick", 5, None)
  # Every other field is the preset's; hf_steps travels as `steps` (run checks it).
  expected = {k: v for k, v in hf.PRESETS["quick"].items() if k != "hf_steps"}
  assert kwargs["sizes"] == {**expected, "nag_lrs": (0.02,), "max_cg": 7}
  assert alias_args == ("w", "paper", hf.PRESETS["paper"]["hf_steps"], None)
  assert alias_kwargs["sizes"]["compare"] == "final"


def test_glorot_cli_refuses_a_misspelled_field_in_one_line(capsys):
  with pytest.raises(SystemExit) as exit_info:
    glorot.main(["--workdir", "w", "--config", "configs/glorot.py:tiny", "--config.ae_stepz=3"])
  assert exit_info.value.code == 2
  assert "did you mean --config.ae_steps" in capsys.readouterr().err


def test_an_override_reaches_a_tiny_glorot_run(tmp_path):
  # No --data_dir: the MLP task is skipped; the CURVES autoencoder runs with the overrides.
  glorot.main(["--workdir", str(tmp_path), "--preset", "tiny", "--config.ae_steps=20",
               "--config.curves_train=200", "--config.curves_test=100", "--config.log_every=10",
               "--config.eval_size=100", "--config.jacobian_examples=1", "--seed", "1"])
  result = json.loads((tmp_path / "glorot_results.json").read_text())
  assert "no --data_dir" in result["skipped"]["mlp"]
  rows = [r for r in result["rows"] if r["task"] == "curves"]
  assert len(rows) == len(glorot.PRESETS["tiny"]["inits"])  # one sigmoid row per init
  # Monitored every 10 updates of a 20-update run (the preset's 200 would reach step 200).
  assert {r["top_mean_min_step"] for r in rows} <= {0, 10, 20}
  assert any(r["top_mean_min_step"] == 20 for r in rows)
