"""A reproduction never destroys a good result (refusal before writing, atomic writes, failed
reruns written beside the old report); unreadable requested data fail the run naming the file;
the command line's one-line messages (experiments.cli)."""
import os
import pathlib
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from configs import reproduce as reproduce_config
from experiments import cli
from experiments import reproduce
from experiments import workdirs
from mominit import train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _previous_run(workdir, preset="tiny"):
  """A workdir as a finished reproduction leaves it: its record and outputs."""
  workdir.mkdir(parents=True, exist_ok=True)
  workdirs.record_preset(workdir, preset, reproduce_config.plan(preset))
  files = {"report.md": f"# Reproduction report: preset `{preset}`\n\ngood numbers\n",
           "results.csv": "experiment,train_error\ntable1,20.5\n",
           "claims.json": "[]\n", "claims.md": "all good\n"}
  for name, text in files.items():
    (workdir / name).write_text(text)
  return files


def _snapshot(workdir):
  return {p.relative_to(workdir).as_posix(): p.read_bytes()
          for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_another_preset_is_refused_before_anything_is_written(tmp_path, capsys):
  _previous_run(tmp_path)
  before = _snapshot(tmp_path)
  status = reproduce.main(["--preset", "quick", "--workdir", str(tmp_path), "--experiments",
                           "quadratic", "--no_progress"])
  assert status == 2
  err = capsys.readouterr().err
  assert "preset 'tiny', not 'quick'" in err and "new --workdir" in err
  assert _snapshot(tmp_path) == before  # not one byte written, no subfolder made


def test_changed_preset_settings_are_refused_and_named(tmp_path):
  _previous_run(tmp_path)
  spec = reproduce_config.plan("tiny")
  changed = {**spec, "rnn": {**spec["rnn"], "steps": spec["rnn"]["steps"] + 1}}
  with pytest.raises(workdirs.WorkdirError, match=r"rnn\.steps"):
    workdirs.check_preset(tmp_path, "tiny", changed)
  # The prose of a preset does not count.
  workdirs.check_preset(tmp_path, "tiny", {**spec, "description": "reworded"})


def test_a_study_added_to_the_preset_resumes_but_a_removed_one_is_refused(tmp_path):
  _previous_run(tmp_path)
  spec = reproduce_config.plan("tiny")
  grown = {**spec, "rnn": {**spec["rnn"], "spectral_radii": {"add": (0.5, 1.1)}}}
  workdirs.check_preset(tmp_path, "tiny", grown)  # the old populations are unchanged
  workdirs.record_preset(tmp_path, "tiny", grown)
  with pytest.raises(workdirs.WorkdirError, match=r"rnn\.spectral_radii"):
    workdirs.check_preset(tmp_path, "tiny", spec)


def test_a_workdir_from_before_the_record_is_refused_by_its_report_title(tmp_path):
  (tmp_path / "report.md").write_text("# Reproduction report: preset `quick`\n")
  with pytest.raises(workdirs.WorkdirError, match="'quick', not 'tiny'"):
    workdirs.check_preset(tmp_path, "tiny", reproduce_config.plan("tiny"))
  workdirs.check_preset(tmp_path, "quick", reproduce_config.plan("quick"))


def test_a_failing_rerun_leaves_the_previous_outputs_intact(tmp_path, monkeypatch):
  files = _previous_run(tmp_path)

  def boom(*args):
    raise RuntimeError("quadratic exploded")

  monkeypatch.setattr(reproduce, "_quadratic", boom)
  status = reproduce.main(["--preset", "tiny", "--workdir", str(tmp_path), "--experiments",
                           "quadratic", "--no_progress"])
  assert status == 1
  for name, text in files.items():
    assert (tmp_path / name).read_text() == text, name
  failed = (tmp_path / "report.failed.md").read_text()
  assert "quadratic exploded" in failed and "previous report.md of this workdir was kept" in failed
  for name in ("results.failed.csv", "claims.failed.json", "claims.failed.md"):
    assert (tmp_path / name).exists(), name


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
  path = tmp_path / "report.md"
  path.write_text("old report")

  def disk_full(fd):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "fsync", disk_full)
  with pytest.raises(OSError, match="No space"):
    workdirs.write_text(path, "new report " * 1000)
  assert path.read_text() == "old report"
  assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary file left
  monkeypatch.undo()
  workdirs.write_text(path, "new report")
  assert path.read_text() == "new report"


def test_unreadable_requested_data_fail_the_run_naming_the_file(tmp_path, capsys):
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  # A damaged MNIST file and a CURVES .mat that is not one; FACES is absent (only skipped).
  (data_dir / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x01" * 20)
  (data_dir / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
  (data_dir / "digs3pts_1.mat").write_bytes(b"not a MATLAB file")
  status = reproduce.main(["--preset", "tiny", "--workdir", str(tmp_path / "run"),
                           "--experiments", "table1", "--data_dir", str(data_dir),
                           "--no_progress"])
  assert status == 1
  err = capsys.readouterr().err
  assert "FAILED table1/mnist" in err and "train-images-idx3-ubyte" in err
  assert "FAILED table1/curves" in err and "digs3pts_1.mat" in err
  report = (tmp_path / "run" / "report.md").read_text()
  assert "faces" in report.lower() and "newfaces_rot_single.mat" in report  # skipped, named


def _parse(argv):
  """`cli.parse_config_flags` on fresh flags (the config's override flags come from argv)."""
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=values,
                                  lock_config=True, sys_argv=argv)
  cli.parse_config_flags(argv, flag_values=values)
  return values["config"].value


def test_misspelled_key_names_the_closest_valid_keys(capsys):
  with pytest.raises(SystemExit) as exit_:
    _parse(["prog", "--config", "configs/autoencoder.py:curves",
            "--config.sweep.learnin_rate=(0.1,)"])
  assert exit_.value.code == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert "'learnin_rate'" in err and "--config.sweep.learning_rate" in err


def test_nan_in_a_tuple_reaches_the_configs_own_check():
  config = _parse(["prog", "--config", "configs/autoencoder.py:curves",
                    "--config.sweep.learning_rate=(0.01,nan)"])
  assert config.sweep.learning_rate[0] == 0.01 and config.sweep.learning_rate[1] != 0.01
  with pytest.raises(ValueError, match="learning_rate: must be finite and > 0, got nan"):
    train.validate_config(config)


def test_unparsable_number_is_named(capsys):
  with pytest.raises(SystemExit):
    _parse(["prog", "--config", "configs/rnn.py:add", "--config.sweep.mu_max=(0.9,fast)"])
  err = capsys.readouterr().err
  assert "--config.sweep.mu_max" in err and "'fast'" in err


def test_train_cli_misspelled_key_is_one_line():
  result = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config", "configs/autoencoder.py:curves",
       "--workdir", "unused", "--config.stepz=3"], cwd=ROOT, capture_output=True, text=True,
      timeout=300, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip()] and "did you mean --config.steps" in result.stderr


def test_steps_alone_scales_the_fields_that_depend_on_it():
  from configs import autoencoder
  from configs import rnn
  config = autoencoder.get_config("curves")
  config.steps = 300
  notes = cli.scale_dependent(config, cli.given_overrides(["--config.steps=300"]))
  assert config.final_steps == 30 and "final_steps=1000 does not fit" in notes[0]
  assert "reaches 0.999 only at update 124,750" in notes[1]  # (ceil(1/(2*0.001)) - 1) * 250
  train.validate_config(config)
  # A value the user set is kept, and the config's own check names it.
  config = autoencoder.get_config("curves")
  config.steps = 300
  cli.scale_dependent(config, {"steps", "final_steps"})
  assert config.final_steps == 1000
  with pytest.raises(ValueError, match="final_steps"):
    train.validate_config(config)
  config = rnn.get_config("add")
  config.steps = 300
  notes = cli.scale_dependent(config, {"steps"})
  assert config.warm_steps == 30 and "mu_0 values differ" in notes[0]


def test_results_csv_loads_flags_as_bool_and_counts_as_int(tmp_path):
  import pandas as pd
  training = pd.DataFrame({"experiment": ["table1", "table1"], "seed": [0, 1],
                           "diverged": [True, False], "steps": [100, 100],
                           "diverged_at": [57, -1], "train_error": [float("nan"), 20.5]})
  quadratic = pd.DataFrame({"experiment": ["quadratic"], "check": ["constant"], "steps": [60],
                            "max_abs_diff": [1e-15]})
  both = pd.concat([training, quadratic], ignore_index=True)
  assert both["diverged"].dtype == object and both["seed"].dtype == float  # the raw concat
  workdirs.write_csv(workdirs.tidy_dtypes(both), tmp_path / "results.csv")
  back = pd.read_csv(tmp_path / "results.csv")
  assert back["diverged"].dtype == bool and back["seed"].dtype == "int64"
  assert back["steps"].dtype == "int64" and back["diverged_at"].dtype == "int64"
  assert back[back.diverged]["seed"].tolist() == [0]  # df[df.diverged] works
  assert back["seed"].tolist() == [0, 1, workdirs.NOT_APPLICABLE]
  assert not back.loc[2, "diverged"]
  # A column with a non-integral value is left as it is.
  odd = workdirs.tidy_dtypes(pd.DataFrame({"T": [20, 2.5]}))
  assert odd["T"].tolist() == [20, 2.5]


def _rnn_config(**overrides):
  from tests.test_train import rnn_config
  return rnn_config(**overrides)


def test_an_rnn_run_no_longer_than_its_warm_phase_is_refused_or_warned():
  config = _rnn_config(mu_max=[0.9, 0.995], steps=20, warm_steps=20)
  with pytest.raises(ValueError, match=r"warm_steps=20 >= config.steps=20.*\[0.9, 0.995\]"):
    train.validate_config(config)
  config = _rnn_config(mu_max=[0.995], steps=20, warm_steps=20)
  with pytest.warns(UserWarning, match="mu_0=0.995 is never used"):
    train.validate_config(config)
  train.validate_config(_rnn_config(mu_max=[0.9, 0.995], steps=20, warm_steps=19))
