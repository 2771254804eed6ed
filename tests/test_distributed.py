"""Two processes on this machine train one population sharded over both (CPU collectives over
loopback): one writer, resume after one process is killed, the results of one process.

Only 127.0.0.1 is used; every child has a deadline and is killed when the test ends.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from mominit import distributed
from mominit import train
from tests.test_train import ae_config, small_curves

REPO = pathlib.Path(__file__).resolve().parents[1]

_WORKER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from mominit import runlog, train
    from tests.test_train import ae_config, small_curves
    die_after = int(os.environ.get("TEST_DIE_AFTER_SAVE", "-1"))
    save = runlog.RunLog.save

    def save_then_maybe_die(self, step, tree):
      save(self, step, tree)
      if step == die_after:
        os._exit(17)  # a kill: no cleanup, no goodbye to the other process

    runlog.RunLog.save = save_then_maybe_die
    config = ae_config(mu_max=[0.9, 0.99], learning_rate=[0.01, 0.005])
    config.distributed = True
    train.train_and_evaluate(config, sys.argv[1], data=small_curves())
    import jax
    print("devices", jax.device_count(), "local", jax.local_device_count(), flush=True)
""")


def _gloo_available() -> bool:
  from jax._src.lib import _jax  # pylint: disable=import-outside-toplevel
  return hasattr(_jax, "make_gloo_tcp_collectives")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(workdir, port, die_after=None):
  """Starts processes 0 and 1 of one run; returns the Popen objects."""
  procs = []
  for pid in (0, 1):
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="1", MOMINIT_COORDINATOR=f"127.0.0.1:{port}",
               MOMINIT_NUM_PROCESSES="2", MOMINIT_PROCESS_ID=str(pid),
               MOMINIT_DISTRIBUTED_TIMEOUT="120")
    if die_after is not None and pid == 1:
      env["TEST_DIE_AFTER_SAVE"] = str(die_after)
    procs.append(subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(repo=str(REPO)), str(workdir)], cwd=REPO,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  return procs


def _wait(procs, deadline):
  """Waits for every process until `deadline` (time.monotonic()); kills the rest after it."""
  for p in procs:
    try:
      p.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
      pass
  for p in procs:
    if p.poll() is None:
      p.kill()
      p.wait()
  return [p.returncode for p in procs], [p.stdout.read() for p in procs]


@pytest.mark.skipif(not _gloo_available(), reason="this jaxlib has no gloo CPU collectives")
def test_two_processes_train_one_population_and_resume_after_a_kill(tmp_path):
  config = ae_config(mu_max=[0.9, 0.99], learning_rate=[0.01, 0.005])
  reference = train.train_and_evaluate(config, tmp_path / "one", data=small_curves())
  workdir = tmp_path / "two"
  procs = []
  try:
    # Process 1 dies right after the checkpoint of update 16; process 0 is then stuck in the
    # next collective and killed too (a cluster's launcher would do the same).
    procs = _launch(workdir, _free_port(), die_after=16)
    deadline = time.monotonic() + 600  # (generous: a loaded 2-core machine is slow)
    while procs[1].poll() is None and time.monotonic() < deadline:
      time.sleep(0.2)
    # (Process 0 may still be finalising the checkpoint orbax saved with process 1's shards:
    # killed once that checkpoint is in place, or after 30 s.)
    deadline = time.monotonic() + 30
    while (procs[0].poll() is None and time.monotonic() < deadline
           and not (workdir / "checkpoints" / "16").is_dir()):
      time.sleep(0.2)
    codes, logs = _wait(procs, min(deadline, time.monotonic() + 1))
    assert codes[1] == 17, logs[0][-3000:] + logs[1][-3000:]
    assert not (workdir / "results.csv").exists()
    saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] <= 16

    procs = _launch(workdir, _free_port())
    codes, logs = _wait(procs, time.monotonic() + 600)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
  assert all("devices 2 local 1" in log for log in logs)  # one population over both processes
  resumed = pd.read_csv(workdir / "results.csv")
  errors = ["train_error", "test_error", "error_before_final"]
  np.testing.assert_allclose(resumed[errors].to_numpy(), reference[errors].to_numpy(),
                             rtol=1e-5)
  assert resumed.diverged.tolist() == reference.diverged.tolist()
  # One writer: each evaluation once, config.json written once and readable.
  steps = [json.loads(l)["step"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert steps == [0, 8, 16, 18, 24]
  assert json.loads((workdir / "config.json").read_text())["distributed"] is True


def test_settings_from_the_environment(monkeypatch):
  for name in (distributed.COORDINATOR, distributed.NUM_PROCESSES, distributed.PROCESS_ID,
               distributed.TIMEOUT):
    monkeypatch.delenv(name, raising=False)
  assert distributed.settings() == {"coordinator_address": None, "num_processes": None,
                                    "process_id": None, "initialization_timeout": 300}
  monkeypatch.setenv(distributed.COORDINATOR, "127.0.0.1:4321")
  monkeypatch.setenv(distributed.NUM_PROCESSES, "4")
  monkeypatch.setenv(distributed.PROCESS_ID, "3")
  got = distributed.settings()
  assert got["coordinator_bind_address"] == "127.0.0.1:4321"  # loopback binds loopback only
  assert (got["num_processes"], got["process_id"]) == (4, 3)
  monkeypatch.setenv(distributed.COORDINATOR, "node7:4321")
  assert "coordinator_bind_address" not in distributed.settings()
  monkeypatch.setenv(distributed.PROCESS_ID, "4")
  with pytest.raises(ValueError, match=r"MOMINIT_PROCESS_ID must be in \[0, 4\)"):
    distributed.settings()
  monkeypatch.setenv(distributed.PROCESS_ID, "x")
  with pytest.raises(ValueError, match=r"MOMINIT_PROCESS_ID must be an integer, got 'x'"):
    distributed.settings()
  monkeypatch.setenv(distributed.PROCESS_ID, "0")
  monkeypatch.setenv(distributed.COORDINATOR, "nohostport")
  with pytest.raises(ValueError, match=r"MOMINIT_COORDINATOR must be host:port"):
    distributed.settings()
