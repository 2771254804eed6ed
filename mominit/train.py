"""Training a sweep: ``train_and_evaluate(config, workdir)`` (a notebook calls it, as does
``python -m experiments.train``).

The members of ``config.sweep`` (``mominit.sweep.population``) are grouped by optimizer family
and each family trains as one compiled population (``mominit.engine.Engine``), the families side
by side. Training runs as jit-compiled chunks of at most ``config.chunk`` updates; between
chunks the host evaluates every member at its family's ``eval_params`` (the paper's theta for
the momentum rule), appends to ``metrics.jsonl``, updates a progress bar and saves an orbax
checkpoint (``mominit.runlog``); rerunning with the same ``workdir`` resumes from it and ends
with the same numbers as an uninterrupted run. ``docs/architecture.md`` maps the modules.
"""
import dataclasses
import json
import pathlib
import time
from typing import Callable, Optional

import jax
import ml_collections
import numpy as np

from mominit import branch as branch_lib
from mominit import distributed
from mominit import memory
from mominit import outcomes
from mominit import runlog
from mominit.engine import Engine
from mominit.member import MemberState
from mominit.problems import make as make_problem
from mominit.problems import Problem
from mominit.runlog import read_metrics
from mominit.sweep import default_config, population, validate_config
from mominit import sweep


def engines(config, problem, members: list[dict], devices=None) -> list:
  """One :class:`Engine` per optimizer family of ``members``: ``[(member indices, engine)]``."""
  return [(idx, Engine(config, problem, [members[i] for i in idx], devices))
          for idx in sweep.family_groups(members).values()]


def _boundaries(config, problem):
  """Update counts after which the host evaluates: every ``eval_every``, the problem's own
  evaluation points, and the end."""
  points = set(range(config.eval_every, config.steps, config.eval_every)) | {config.steps}
  return sorted(points | {p for p in problem.eval_points if 0 < p < config.steps})


def _most_chunks(config, problem) -> int:
  """The most chunks between two evaluations (rows of a checkpoint's pending losses)."""
  points = [0] + _boundaries(config, problem)
  return max(-(-(b - a) // config.chunk) for a, b in zip(points, points[1:]))


def _label(config, workdir, size: int) -> str:
  """What a progress bar says it is: the workdir's last two folders (e.g. "table1/curves")
  or the problem, and the population size."""
  if workdir is not None:
    name = "/".join(pathlib.Path(workdir).absolute().parts[-2:])
  else:
    name = config.get("dataset") or config.get("task") or config.kind
  return f"{name} ({size} member{'s' if size != 1 else ''})"


def _gather(parts, trees, size):
  """Per-engine pytrees of [P_e, ...] arrays (padded) -> one pytree of [size, ...] arrays in
  member order."""
  def assemble(*leaves):
    leaves = [distributed.to_host(leaf) for leaf in leaves]  # (sharded over processes too)
    out = np.empty((size,) + leaves[0].shape[1:], leaves[0].dtype)
    for (idx, _), leaf in zip(parts, leaves):
      out[idx] = leaf[:len(idx)]
    return out
  return jax.tree.map(assemble, *trees)


def _with_diagnostics(config, problem, fn):
  """``problem`` with the caller's diagnostics ``fn`` every ``config.diagnostics_every``
  updates (also evaluation points)."""
  every = int(config.get("diagnostics_every", 0) or 0)
  if every <= 0:
    raise ValueError("diagnostics= needs config.diagnostics_every > 0 (updates between calls), "
                     f"got {config.get('diagnostics_every')!r}")
  points = set(problem.eval_points) | set(range(every, config.steps, every))
  return dataclasses.replace(problem, diagnostics=fn, diagnostics_every=every,
                             eval_points=tuple(sorted(points)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: Optional[str] = None,
                       callback: Optional[Callable[[int, dict], None]] = None,
                       devices=None, data=None, diagnostics=None, snapshot=None,
                       branch_at=(), start_from=None):
  """Trains every member of the config's sweep and evaluates it.

  The population is evaluated at update 0, every ``config.eval_every`` updates, at the problem's
  own evaluation points (autoencoders: when the final low-momentum phase starts), and at the end.
  With ``config.diagnostics_every > 0`` (autoencoders) the Glorot & Bengio layer statistics of
  every member are also written to ``diagnostics.jsonl`` every that many updates.

  Args:
    config: an autoencoder or RNN config (``configs/autoencoder.py``, ``configs/rnn.py``).
    workdir: folder for ``config.json``, ``metrics.jsonl``, ``results.csv`` and checkpoints.
      When it holds a checkpoint of this config, training resumes from it (a checkpoint of a
      different config is refused). ``None`` trains without writing files.
    callback: called on the host after every evaluation as ``callback(step, record)``, where
      ``record`` holds the [P] arrays of that evaluation; an exception raised there stops
      training (the last checkpoint stays).
    devices: the devices to run on (default: all of ``jax.devices()``), placed by
      ``mominit.placement.plan`` (``Engine.plan``).
    data: optional ``mominit.data.Dataset`` to train an autoencoder on instead of loading
      ``config.dataset`` (e.g. your own images, or a small subset); for a classifier a
      ``mominit.problems.classifier.LabeledData``.
    diagnostics: optional ``(params, data) -> pytree`` (one member's parameters at its family's
      ``eval_params`` and the problem's arrays) replacing the problem's own diagnostics, every
      ``config.diagnostics_every`` updates. The diagnostics (the problem's or these) of every
      member go to ``diagnostics.jsonl`` and to ``callback`` as ``record["diagnostics"]``
      ([P, ...] arrays), with their wall time in ``record["timing"]``
      (as that of the chunks and the evaluation).
    snapshot: optional ``(params, data) -> pytree`` computed for every member at update 0 and
      after the last update, passed to ``callback`` as ``record["snapshot"]`` ([P, ...] arrays;
      not written to files): for heavy statistics needed only at the ends (raw per-layer values,
      Jacobian spectra).
    branch_at: update counts (0 < k < steps) after which the whole state is saved as a branch,
      ``mominit.branch.path(workdir, k)`` (needs ``workdir``; a chunk ends there, no
      evaluation is added).
    start_from: a branch file (``mominit.branch``) of a run whose members include all of this
      config's and whose first k updates are this run's (``branch.check`` says which config
      fields may differ; neither run's final phase may start at or before k): training starts
      at update k instead of 0, unless ``workdir`` holds a checkpoint of its own.
      ``metrics.jsonl`` begins with the parent's records up to k (these members' columns),
      ``seconds`` counts the parent's time up to k, and the run ends where an unbranched one
      would, up to float rounding (its members ran in another population before the branch).

  Returns:
    A ``pandas.DataFrame`` with one row per member: its axis values (``rule`` is the optimizer's
    name), the final errors (for autoencoders ``train_error`` and ``test_error``, the paper's
    per-case squared reconstruction error at theta; for RNNs ``zero_one`` and ``test_loss`` on
    fresh sequences), the problem's marks (autoencoders: ``error_before_final``, the train error
    when the final low-momentum phase starts), ``diverged``, ``diverged_at`` (non-finite),
    ``blown_up``, ``blown_up_at`` (finite but exploded, ``mominit.outcomes``), ``steps`` and
    ``seconds`` (wall time of the whole run).
  """
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  if config.get("distributed"):
    distributed.initialize()  # before anything touches a device
  validate_config(config)
  branch_at = sorted({int(k) for k in branch_at})
  if branch_at and (workdir is None or not 0 < branch_at[0] <= branch_at[-1] < config.steps):
    raise ValueError(f"branch_at={branch_at}: needs a workdir and update counts in (0, "
                     f"steps={config.steps})")
  if start_from is not None and jax.process_count() > 1:
    raise ValueError("start_from: not supported in a multi-process run (train from update 0)")
  log = None
  if workdir is not None:
    log = runlog.RunLog(workdir)
    log.check_config(config)  # before anything is built or compiled
    distributed.barrier("mominit: config checked")  # before process 0 writes config.json
  members = population(config)
  problem = make_problem(config, data)
  if diagnostics is not None:
    problem = _with_diagnostics(config, problem, diagnostics)
  fork = None  # the branch to start from (checked before anything is compiled)
  carry = (0.0, 0)  # (loss sum [P], updates) of a chunk split by a branch point, so far
  if start_from is not None and (log is None or log.latest_step() is None):
    fork = branch_lib.load(start_from)
    where = branch_lib.check(fork, json.loads(config.to_json_best_effort()), members,
                             branch_lib.digest(problem.data))
    if any(at == fork.step for at, _ in problem.marks.values()):
      raise ValueError(f"start_from: a mark of the problem falls on the branch's update "
                       f"{fork.step}")
  # Compiled before training, in groups that fit the memory budget (mominit.memory).
  parts, states, _ = memory.planned_engines(
      config, problem, members, devices,
      say=lambda text: print(text) if config.progress and jax.process_index() == 0 else None,
      init=None if fork is None else lambda idx, engine: _from_branch(engine, fork.leaves,
                                                                     where[idx]))
  p = len(members)
  gather = lambda trees: _gather(parts, trees, p)
  step, seconds, saved_at = 0, 0.0, 0
  # Chunk losses since the last evaluation, kept in a checkpoint taken between evaluations
  # (`checkpoint_minutes`), so a resumed run logs the same train_loss as an uninterrupted one.
  pending = np.full((_most_chunks(config, problem), p), np.nan)
  pending_count = np.int64(0)
  marks = {name: np.full(p, np.nan) for name in problem.marks}
  # After init a member's loss slot holds its starting loss (mominit.outcomes).
  ends = {"start_loss": gather([s.loss for s in states]).astype(np.float64),
          "blown_up_at": np.full(p, outcomes.NOT_BLOWN_UP, np.int64)}
  if log is not None:
    if log.latest_step() is not None:
      saved = log.restore({"states": states, "marks": marks, "outcomes": ends,
                           "seconds": np.float64(0), "pending": pending,
                           "pending_count": pending_count})
      states, marks = list(saved["states"]), {k: np.asarray(v) for k, v in saved["marks"].items()}
      ends = {k: np.asarray(v) for k, v in saved["outcomes"].items()}
      step, seconds = int(log.latest_step()), float(saved["seconds"])
      pending, pending_count = np.asarray(saved["pending"]), int(saved["pending_count"])
      saved_at = step
    log.write_config(config)
    # Evaluations logged after the checkpoint are replayed (logged before it is saved, so a
    # kill between the two loses nothing).
    log.truncate(step)

  def evaluate():
    return gather([engine.evaluate(s) for (_, engine), s in zip(parts, states)])

  def flags():
    return {**gather([{"alive": s.alive, "diverged_at": s.diverged_at} for s in states]),
            "blown_up_at": ends["blown_up_at"]}

  def observe(step, errors, chunk_losses, rate, timing=None):
    """Logs and reports the evaluation after `step` updates; returns its record."""
    ends["blown_up_at"] = outcomes.update(ends["blown_up_at"], ends["start_loss"], chunk_losses,
                                          config.blowup_factor, step)
    record = {"step": step, "train_loss": (np.mean(chunk_losses, axis=0) if chunk_losses
                                           else np.full(p, np.nan)), **errors, **flags()}
    alive, main_error = record["alive"], errors[problem.main_error]
    finite = main_error[alive & np.isfinite(main_error)]
    bar.set_postfix({"alive": f"{alive.sum()}/{p}",
                     "best": f"{finite.min():.4g}" if finite.size else "-",
                     "upd/s": f"{rate:.0f}"})
    if log is not None:
      log.append("metrics.jsonl", record, members)
    timing = dict(timing or {})
    if ((log is not None or callback is not None) and problem.diagnostics is not None
        and step % problem.diagnostics_every == 0):
      t0 = time.perf_counter()
      stats = gather([engine.diagnose(s) for (_, engine), s in zip(parts, states)])
      timing["diagnostics"] = time.perf_counter() - t0
      if log is not None:
        log.append("diagnostics.jsonl", {"step": step, **stats}, members)
      record["diagnostics"] = stats
    if snapshot is not None and step in (0, config.steps):
      record["snapshot"] = gather([engine.diagnose(s, snapshot)
                                   for (_, engine), s in zip(parts, states)])
    record["timing"] = timing  # seconds (for the callback only)
    return record

  if fork is not None:
    step, seconds = fork.step, float(fork.seconds)
    ends = {k: np.asarray(v)[where] for k, v in fork.outcomes.items()}
    pending_count = len(fork.pending)  # the parent's chunk losses since its last evaluation
    pending[:pending_count] = np.asarray(fork.pending)[:, where]
    if fork.partial_steps:  # the branch split a chunk: this run finishes it
      carry = (fork.partial[where] * fork.partial_steps, fork.partial_steps)
    if log is not None:
      for record in branch_lib.history(start_from, step, where):
        log.append("metrics.jsonl", record, members)

  bar = tqdm(total=config.steps, initial=step, unit="upd", desc=_label(config, workdir, p),
             disable=not config.progress or jax.process_index() != 0,
             dynamic_ncols=True)
  record = None
  if step == 0:
    record = observe(0, evaluate(), [], 0.0)
    if callback is not None:
      callback(0, record)
  last_save = time.monotonic()

  def save(step, chunk_losses, seconds):
    rows = np.full_like(pending, np.nan)
    if chunk_losses:
      rows[:len(chunk_losses)] = np.stack(chunk_losses)
    log.save(step, {"states": states, "marks": marks, "outcomes": ends,
                    "seconds": np.float64(seconds), "pending": rows,
                    "pending_count": np.int64(len(chunk_losses))})
    return time.monotonic()

  for boundary in [b for b in _boundaries(config, problem) if b > step]:
    t0 = time.perf_counter()
    chunk_losses, done = [row for row in pending[:pending_count]], boundary - step
    pending_count = 0
    while step < boundary:
      # A branch point inside a chunk runs it in two parts that log as one chunk (their
      # update-weighted mean loss), so branching changes neither the chunks nor the log.
      n = min([config.chunk - carry[1], boundary - step] + [k - step for k in branch_at
                                                            if k > step])
      losses = []
      for j, (_, engine) in enumerate(parts):
        states[j], mean_loss = engine.run_chunk(states[j], step, n)
        losses.append(mean_loss)
      row = gather(losses).astype(np.float64)
      carry = (carry[0] + row * n, carry[1] + n) if carry[1] else (row * n, n)
      step += n
      bar.update(n)
      if carry[1] == config.chunk or step == boundary:
        chunk_losses.append(row if carry[1] == n else carry[0] / carry[1])
        carry = (0.0, 0)
      if step in branch_at:  # before any later checkpoint: a checkpoint past k implies it
        leaves = jax.tree.leaves(gather(states))  # (every process gathers)
        if log.writer:
          branch_lib.save(branch_lib.path(workdir, step), branch_lib.Branch(
              step, members, leaves, ends, np.reshape(chunk_losses, (-1, p)),
              carry[0] / max(carry[1], 1), carry[1], seconds + time.perf_counter() - t0,
              json.loads(config.to_json_best_effort()), branch_lib.digest(problem.data)))
      if (log is not None and step < boundary and config.checkpoint_minutes > 0
          and not carry[1]  # (not inside a chunk a branch point split)
          and jax.process_count() == 1  # processes' clocks would disagree on when to save
          and time.monotonic() - last_save >= 60 * config.checkpoint_minutes):
        # Between evaluations, by wall time: a long stretch between evaluations is not lost.
        last_save = save(step, chunk_losses, seconds + time.perf_counter() - t0)
        saved_at = step
    t_chunks = time.perf_counter() - t0
    errors = evaluate()
    for name, (at, error) in problem.marks.items():
      if step == at:
        marks[name] = errors[error].copy()
    elapsed = time.perf_counter() - t0
    seconds += elapsed
    # Log, then checkpoint: a kill in between replays this evaluation on resume (`truncate`);
    # the checkpoint comes before the callback, so a callback that stops the run finds it saved.
    record = observe(step, errors, chunk_losses, done / max(elapsed, 1e-9),
                     {"chunks": t_chunks, "evaluation": elapsed - t_chunks})
    if log is not None and (step - saved_at >= config.checkpoint_every or step == config.steps):
      last_save = save(step, [], seconds)
      saved_at = step
    if callback is not None:
      callback(step, record)
  bar.close()

  if record is None:  # resumed from a finished run: nothing was trained or logged
    record = {**evaluate(), **flags()}
  rows = []
  for i, member in enumerate(members):
    row = dict(member)
    row.update({name: float(record[name][i]) for name in problem.error_names})
    row.update({name: float(values[i]) for name, values in marks.items()})
    row.update(diverged=not bool(record["alive"][i]), diverged_at=int(record["diverged_at"][i]),
               blown_up=bool(record["blown_up_at"][i] != outcomes.NOT_BLOWN_UP),
               blown_up_at=int(record["blown_up_at"][i]), steps=config.steps, seconds=seconds)
    rows.append(row)
  frame = pd.DataFrame(rows)
  if log is not None and log.writer:
    frame.to_csv(log.workdir / "results.csv", index=False)
  return frame


def _from_branch(engine, leaves, rows):
  """An engine's starting state from a branch's [P_branch, ...] leaves: its members are the
  branch's ``rows`` (padded with the first, as ``Engine`` pads)."""
  rows = np.concatenate([rows, np.full(engine.plan.padded - len(rows), rows[0])])
  try:
    return engine.place([np.asarray(x)[rows] for x in leaves])
  except ValueError as e:
    raise ValueError(f"start_from: the branch's members do not have this run's state ({e}): "
                     "another problem or optimizer") from None


__all__ = ["train_and_evaluate", "engines", "Engine", "MemberState", "Problem", "default_config",
           "validate_config", "population", "make_problem", "read_metrics"]
