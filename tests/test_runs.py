"""A run's files and stops: checkpoints by wall time between evaluations resume to the numbers
of an uninterrupted run; results.csv loads its flags as bool and counts as int; progress bars
name their population; a member too large for the memory budget is refused before training."""
import json

import numpy as np
import pandas as pd
import pytest

from mominit import engine as engine_lib
from mominit import train
from tests.test_train import rnn_config


def _metrics(workdir):
  return [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_wall_time_checkpoints_resume_to_an_uninterrupted_run(tmp_path, monkeypatch):
  def config(minutes):
    c = rnn_config(seed=[0, 1], steps=28, chunk=7, eval_every=28, warm_steps=7)
    c.checkpoint_minutes = minutes
    return c

  whole = train.train_and_evaluate(config(0), str(tmp_path / "whole"))
  # Every chunk is a checkpoint (a tiny wall-time interval); stop during the third chunk, long
  # before the only evaluation after update 0.
  real, calls = engine_lib.Engine.run_chunk, []

  def stopping(self, state, start, n):
    calls.append(start)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return real(self, state, start, n)

  monkeypatch.setattr(engine_lib.Engine, "run_chunk", stopping)
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(config(1e-9), str(tmp_path / "stopped"))
  saved = sorted(int(p.name) for p in (tmp_path / "stopped" / "checkpoints").iterdir()
                 if p.name.isdigit())
  assert saved and max(saved) == 14  # after the second chunk, between evaluations
  monkeypatch.setattr(engine_lib.Engine, "run_chunk", real)
  resumed = train.train_and_evaluate(config(1e-9), str(tmp_path / "stopped"))
  for name in ("zero_one", "test_loss", "diverged_at"):
    np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)
  a, b = _metrics(tmp_path / "whole"), _metrics(tmp_path / "stopped")
  assert [r["step"] for r in a] == [r["step"] for r in b] == [0, 28]
  assert a[1]["train_loss"] == b[1]["train_loss"]  # the chunks before the stop were kept


def test_results_csv_loads_flags_as_bool_and_counts_as_int(tmp_path):
  train.train_and_evaluate(rnn_config(seed=[0, 1], rule=["nag", "cm"], steps=14, chunk=7,
                                      eval_every=7, warm_steps=7), str(tmp_path))
  back = pd.read_csv(tmp_path / "results.csv")
  for name in ("seed", "steps", "diverged_at", "blown_up_at"):
    assert back[name].dtype == np.int64, name
  for name in ("diverged", "blown_up"):
    assert back[name].dtype == bool, name
  assert len(back[back.diverged]) == 0 and len(back[~back.diverged]) == 4


def test_progress_bar_names_its_population():
  config = rnn_config()
  assert train._label(config, "runs/quick/table1/curves", 20) == "table1/curves (20 members)"
  assert train._label(config, None, 1) == "addition (1 member)"


def test_a_member_too_large_for_the_budget_is_refused_before_training(tmp_path):
  config = rnn_config(seed=[0, 1])
  config.memory_budget = 1000
  with pytest.raises(MemoryError, match="config.memory_budget"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / "metrics.jsonl").exists()


def test_ctrl_c_during_a_checkpoint_save_finishes_it_then_stops(tmp_path, monkeypatch):
  import os
  import signal
  from mominit import runlog
  log = runlog.RunLog(tmp_path)
  real = log._manager.save

  def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while orbax saves
    return real(*args, **kwargs)

  monkeypatch.setattr(log._manager, "save", interrupted)
  with pytest.raises(KeyboardInterrupt, match="after saving the checkpoint of update 3"):
    log.save(3, {"a": np.arange(3.0)})
  assert log.latest_step() == 3
  np.testing.assert_array_equal(log.restore({"a": np.zeros(3)})["a"], np.arange(3.0))
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_orbax_info_lines_are_dropped_and_its_warnings_kept(tmp_path):
  import logging
  from mominit import runlog
  runlog.RunLog(tmp_path)
  logger = logging.getLogger("absl")

  def shown(level, path):
    record = logging.LogRecord("absl", level, path, 1, "message", (), None)
    return all(f.filter(record) for f in logger.filters)

  orbax_file = "/site-packages/orbax/checkpoint/checkpoint_manager.py"
  assert not shown(logging.INFO, orbax_file)
  assert shown(logging.WARNING, orbax_file)
  assert shown(logging.INFO, "/work/main/experiments/train.py")

