"""Branches: a population's whole state at one update count, saved so that another run of some
of its members can start there instead of retraining the updates they share.

A twin whose schedule differs from its parent's only from update p on (Table 2's control
continues at mu_max where the parent lowers mu to 0.9 for its last 1,000 updates) repeats the
parent's first k < p updates exactly: same seeds, same data order, same schedule. Not k = p: the
state after k updates may hold the schedule's value at k (NAG's look-ahead point
phi_k = theta_k + mu_k v_k). ``train_and_evaluate(..., branch_at=(k,))`` saves the parent's
state after k updates (``workdir/branches/<k>.npz``) and ``train_and_evaluate(twin, ...,
start_from=that file)`` starts the twin there. At the paper's length this skips 748,999 of the
control twin's 750,000 updates, and the twin shares its parent's trajectory up to k bit for bit,
so their difference is the final phase alone.

A branch holds, in member order: every leaf of the members' ``MemberState``, the outcome arrays
of ``mominit.outcomes`` (``start_loss``, ``blown_up_at``), the chunk losses since the last
evaluation, the wall time so far, the members and the parent's config; ``check`` says whether a
config may start from it and ``history`` gives the parent's evaluations before it.
"""
import hashlib
import json
import os
import pathlib
from typing import NamedTuple

import jax
import numpy as np

from mominit import runlog

# Fields a run may change and still repeat its parent's updates before the branch point:
# final_steps only acts from steps - final_steps on (checked against the branch step), the
# others change when the host evaluates, saves or what it prints, not the updates; the sweep's
# members are matched one by one.
MAY_DIFFER = {"final_steps", "eval_every", "chunk", "checkpoint_every", "checkpoint_minutes",
              "progress", "memory_budget", "sweep"}


class Branch(NamedTuple):
  """A saved population state (see the module docstring).

  Attributes:
    step: the update count it was taken after.
    members: the members' axis values (list of dicts), in the order of the arrays.
    leaves: the ``MemberState`` leaves, each [P, ...] (``jax.tree.leaves`` order).
    outcomes: {"start_loss": [P], "blown_up_at": [P]}.
    pending: [C, P] mean training losses of the chunks since the last evaluation.
    partial: [P] mean training loss of the chunk the branch point split, so far (its first
      ``partial_steps`` updates; the run that starts here finishes that chunk).
    partial_steps: 0 when the branch point ends a chunk.
    seconds: the parent's wall time up to ``step``.
    config: the parent's config (a dict).
    data: ``digest`` of the problem's arrays (the data may come from the caller, not the config).
  """
  step: int
  members: list
  leaves: list
  outcomes: dict
  pending: np.ndarray
  partial: np.ndarray
  partial_steps: int
  seconds: float
  config: dict
  data: str


def path(workdir, step: int) -> pathlib.Path:
  """Where ``train_and_evaluate(..., branch_at=(step,))`` saves the branch of ``workdir``."""
  return pathlib.Path(workdir) / "branches" / f"{int(step)}.npz"


def save(file, branch: Branch) -> None:
  """Writes ``branch`` to ``file`` atomically (a kill leaves the old file or none)."""
  file = pathlib.Path(file)
  file.parent.mkdir(parents=True, exist_ok=True)
  meta = {"step": int(branch.step), "members": branch.members, "seconds": float(branch.seconds),
          "config": branch.config, "outcomes": sorted(branch.outcomes),
          "leaves": len(branch.leaves), "partial_steps": int(branch.partial_steps),
          "data": branch.data}
  arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(branch.leaves)}
  arrays.update({f"outcome_{k}": np.asarray(v) for k, v in branch.outcomes.items()})
  arrays["pending"] = np.asarray(branch.pending, np.float64)
  arrays["partial"] = np.asarray(branch.partial, np.float64)
  tmp = file.with_name(file.name + ".tmp")
  with open(tmp, "wb") as f:
    np.savez(f, meta=np.array(json.dumps(meta, default=float)), **arrays)
  os.replace(tmp, file)


def load(file) -> Branch:
  """Reads a branch written by :func:`save`."""
  with np.load(file, allow_pickle=False) as z:
    meta = json.loads(str(z["meta"]))
    return Branch(meta["step"], meta["members"],
                  [z[f"leaf_{i}"] for i in range(meta["leaves"])],
                  {k: z[f"outcome_{k}"] for k in meta["outcomes"]},
                  z["pending"], z["partial"], meta["partial_steps"], meta["seconds"],
                  meta["config"], meta["data"])


def digest(tree) -> str:
  """SHA-256 of a pytree's arrays (shapes, dtypes and bytes, in leaf order)."""
  h = hashlib.sha256()
  for x in jax.tree.leaves(tree):
    x = np.ascontiguousarray(np.asarray(x))
    h.update(f"{x.shape}{x.dtype}".encode())
    h.update(x.tobytes())
  return h.hexdigest()


def _phase_start(config: dict) -> int:
  """The first update of the final low-momentum phase (``steps`` when there is none)."""
  final = int(config.get("final_steps") or 0)
  return int(config["steps"]) - final if final else int(config["steps"])


def check(branch: Branch, config: dict, members: list, data: str) -> np.ndarray:
  """Where each of ``members`` is in the branch, if a run of ``config`` may start from it.

  Args:
    branch: the saved branch.
    config: the new run's config as a dict (``config.to_dict()``).
    members: the new run's members (``mominit.sweep.population``).
    data: ``digest`` of the new run's problem arrays.

  Returns:
    int array [len(members)]: each member's index in ``branch.members``.

  Raises:
    ValueError: a config field outside ``MAY_DIFFER`` differs (named), the data differ, the
      new run or the parent changes its schedule before the branch step, or a member is not
      in the branch.
  """
  old, new = runlog.flat_config(branch.config), runlog.flat_config(config)
  differ = sorted(k for k in set(old) | set(new)
                  if k.split(".")[0] not in MAY_DIFFER and old.get(k) != new.get(k))
  if differ:
    raise ValueError(f"start_from: the branch was saved by a run of another config (fields "
                     f"{differ} differ)")
  if data != branch.data:
    raise ValueError("start_from: the branch was saved by a run on other data (the problem's "
                     "arrays differ: another data set, subset or data= argument)")
  for who, c in (("the new run", new), ("the branch's run", old)):
    if _phase_start(c) <= branch.step:
      raise ValueError(f"start_from: {who} starts its final phase at update {_phase_start(c)}, "
                       f"not after the branch's update {branch.step}: the state there would "
                       "not be the same")
  if int(config["steps"]) <= branch.step:
    raise ValueError(f"start_from: the branch is at update {branch.step}, not before the run's "
                     f"end (steps={config['steps']})")
  keys = [json.dumps(m, sort_keys=True, default=float) for m in branch.members]
  where = []
  for m in members:
    key = json.dumps(m, sort_keys=True, default=float)
    if key not in keys:
      raise ValueError(f"start_from: member {m} is not in the branch (its members: "
                       f"{branch.members[:3]}{' ...' if len(branch.members) > 3 else ''})")
    where.append(keys.index(key))
  return np.asarray(where, np.int64)



def history(file, step: int, where) -> list:
  """The parent's evaluations up to the branch (its ``metrics.jsonl`` beside ``branches/``),
  each a record of the members at ``where`` only ([] when that file is absent)."""
  metrics = pathlib.Path(file).parent.parent / "metrics.jsonl"
  if not metrics.exists():
    return []
  out = []
  for line in metrics.read_text().splitlines():
    record = json.loads(line) if line else None
    if record is None or record["step"] > step:
      continue
    size = len(record["members"])
    out.append({k: ([v[i] for i in where] if isinstance(v, list) and len(v) == size else v)
                for k, v in record.items() if k != "members"})
  return out
