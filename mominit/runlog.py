"""A run's folder: ``config.json``, ``metrics.jsonl`` (and ``diagnostics.jsonl``), orbax
checkpoints and ``results.csv``.

Rerunning with the same workdir resumes from the last checkpoint (a workdir of a different
config is refused) and keeps only the metrics written up to it, so an interrupted run ends with
the files of an uninterrupted one. In a multi-process run (``mominit.distributed``) every
process saves and restores the checkpoint (orbax writes each process's shards) and process 0
alone writes the other files.
"""
import json
import pathlib

import jax
import numpy as np

# Fields that do not change a run's numbers: a run may resume with other values.
IGNORED_FIELDS = {"progress", "checkpoint_minutes", "memory_budget"}


def _quiet_orbax() -> None:
  """Drops orbax's INFO / DEBUG log lines (about 90 a run, printed over the progress bar);
  its warnings and errors still show. orbax logs through absl's logger."""
  import logging  # pylint: disable=import-outside-toplevel
  logger = logging.getLogger("absl")
  if not any(getattr(f, "mominit_orbax", False) for f in logger.filters):
    class _Orbax(logging.Filter):
      mominit_orbax = True

      def filter(self, record):
        return record.levelno >= logging.WARNING or "orbax" not in record.pathname

    logger.addFilter(_Orbax())


class RunLog:
  """The files of one run in ``workdir`` (created if missing).

  Attributes:
    workdir: the folder (``pathlib.Path``).
    writer: whether this process writes config, metrics and results (process 0).
  """

  def __init__(self, workdir):
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    _quiet_orbax()
    self.writer = jax.process_index() == 0
    self.workdir = pathlib.Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.workdir.absolute() / "checkpoints",
                                          options=options)

  def latest_step(self):
    """The update count of the last checkpoint (None if there is none)."""
    return self._manager.latest_step()

  def save(self, step: int, tree) -> None:
    """Saves ``tree`` (a pytree of arrays) as the checkpoint of update ``step``; waits for it.

    A Ctrl-C during the save is held until the save is done and then raised: interrupting
    orbax's save midway left ~140 "Event loop is closed" tracebacks and a partial checkpoint
    (which orbax then ignores) for a save that takes a second.
    """
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    import signal  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel
    held = []
    previous = None
    if threading.current_thread() is threading.main_thread():
      previous = signal.signal(signal.SIGINT, lambda *args: held.append(args))
    try:
      self._manager.save(step, args=ocp.args.StandardSave(tree))
      self._manager.wait_until_finished()
    finally:
      if previous is not None:
        signal.signal(signal.SIGINT, previous)
    if held:
      raise KeyboardInterrupt(f"stopped after saving the checkpoint of update {step}")

  def restore(self, like):
    """The last checkpoint, in the structure, shapes, dtypes and shardings of ``like``."""
    import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        like)
    return self._manager.restore(self.latest_step(), args=ocp.args.StandardRestore(abstract))

  def check_config(self, config) -> None:
    """Refuses to resume a checkpoint written by a different config (ValueError naming the
    fields that differ)."""
    path = self.workdir / "config.json"
    if not path.exists():
      return
    old = flat_config(json.loads(path.read_text()))
    new = flat_config(json.loads(config.to_json_best_effort()))
    differ = sorted(k for k in set(old) | set(new)
                    if k not in IGNORED_FIELDS and old.get(k) != new.get(k))
    if differ:
      raise ValueError(
          f"{self.workdir} holds a checkpoint of a different config (fields {differ} differ); "
          f"resume with the same config or use a new --workdir")

  def write_config(self, config) -> None:
    if self.writer:
      (self.workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

  def truncate(self, step: int, names=("metrics.jsonl", "diagnostics.jsonl")) -> None:
    """Keeps only the records written up to update ``step`` (the checkpoint resumed from)."""
    if not self.writer:
      return
    for name in names:
      path = self.workdir / name
      if path.exists():
        keep = [l for l in path.read_text().splitlines() if l and json.loads(l)["step"] <= step]
        path.write_text("".join(l + "\n" for l in keep))

  def append(self, name: str, record: dict, members: list[dict]) -> None:
    """Appends one evaluation's record (``step`` and [P] arrays) to ``name`` as one JSON line."""
    if not self.writer:
      return
    line = {"step": record["step"], "members": list(members)}
    line.update({k: _jsonable(v) for k, v in record.items() if k != "step"})
    with open(self.workdir / name, "a") as f:
      f.write(json.dumps(line, default=float) + "\n")


def flat_config(tree, prefix=""):
  """{"a": {"b": 1}} -> {"a.b": 1} (a config dict's fields by dotted name)."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flat_config(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def _jsonable(x):
  x = np.asarray(x)
  return x.tolist() if x.dtype != bool else [bool(v) for v in x.ravel()]


def read_metrics(workdir) -> list[dict]:
  """The records of ``metrics.jsonl`` in a workdir, one dict per evaluation."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  return [json.loads(l) for l in path.read_text().splitlines() if l]
