"""Multi-phase HF runs: the paper's hybrid HF-dagger schedules (docs/paper.md section 9).

A schedule is a sequence of `Phase`s, each run for a length counted in CG steps (the unit the
paper uses), one HF update after another, carrying the HF state (warm start, damping) from one
phase to the next. A phase fixes the CG steps per update (`max_cg_iters`), the minibatch
fractions of the gradient and of the curvature, the warm-start decay, the step-size multiplier
eps and the L2 weight cost (`mominit.hf.hessian_free`); eps and l2 may be functions of the
global update count t (0, 1, ... over the whole run, not restarted per phase), e.g. the paper's
eps = 500 / (t - 4000).

Minibatches: per epoch a permutation of the training cases (numpy `default_rng(seed)`), cut into
consecutive blocks of round(fraction x N) cases; the curvature minibatch is the first cases of
the gradient minibatch when both are minibatches (Martens' code takes it from the gradient's
cases), else its own block. Fraction 1 is the whole set, in order.

Every phase shares one compiled step per (gradient batch, curvature batch) shape: decay, eps,
l2 and the CG cap are traced (`cg_iters_bound` is the largest `cg_per_update`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from mominit.hf.optimizer import hessian_free

Number = Union[int, float]


class Phase(NamedTuple):
  """One phase of a multi-phase HF run.

  Attributes:
    cg_steps: length in CG steps (the phase ends at the first update that reaches it).
    cg_per_update: CG steps per update (HF's `max_cg_iters`).
    grad_fraction: fraction of the training cases in a gradient minibatch (1 = all).
    curv_fraction: fraction in a curvature minibatch (1 = all).
    decay: CG warm-start decay.
    eps: step-size multiplier, a number or a function of the global update count t.
    l2: L2 weight cost, a number or a function of t.
  """
  cg_steps: int
  cg_per_update: int
  grad_fraction: float = 1.0
  curv_fraction: float = 1.0
  decay: float = 0.95
  eps: Union[Number, Callable[[int], Number]] = 1.0
  l2: Union[Number, Callable[[int], Number]] = 0.0


def check_phases(phases: Sequence[Phase]) -> None:
  """Raises ValueError naming the phase and field for a bad value."""
  if not phases:
    raise ValueError("phases: at least one phase is needed")
  for i, ph in enumerate(phases):
    where = f"phases[{i}]"
    for name in ("cg_steps", "cg_per_update"):
      value = getattr(ph, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}.{name} must be an int >= 1, got {value!r}")
    for name in ("grad_fraction", "curv_fraction"):
      value = getattr(ph, name)
      if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{where}.{name} must be in (0, 1], got {value!r}")
    if not 0 <= ph.decay <= 1:
      raise ValueError(f"{where}.decay must be in [0, 1], got {ph.decay!r}")
    for name, lo_open in (("eps", True), ("l2", False)):
      value = getattr(ph, name)
      if not callable(value) and not (math.isfinite(value) and (value > 0 if lo_open
                                                                else value >= 0)):
        raise ValueError(f"{where}.{name} must be a finite number {'>' if lo_open else '>='} 0 "
                         f"or a function of the update count, got {value!r}")


def _value(v, t):
  return float(v(t)) if callable(v) else float(v)


class _Batches:
  """Consecutive blocks of per-epoch permutations (see the module docstring)."""

  def __init__(self, n: int, seed: int):
    self.n, self.rng, self.order, self.pos = n, np.random.default_rng(seed), None, n

  def take(self, size: int) -> np.ndarray:
    if size >= self.n:
      return np.arange(self.n)
    if self.pos + size > self.n:
      self.order, self.pos = self.rng.permutation(self.n), 0
    out = self.order[self.pos:self.pos + size]
    self.pos += size
    return out


def run_phases(apply_fn, loss: str, params, data: Any, phases: Sequence[Phase], *,
               seed: int = 0, evaluate: Optional[Callable] = None, eval_every: int = 0,
               hf_kwargs: Optional[dict] = None, say: Optional[Callable[[str], None]] = None):
  """Runs `phases` one after another from `params`; returns (params, records).

  Args:
    apply_fn: `apply_fn(params, inputs [B, D]) -> outputs [B, O]`.
    loss: a `mominit.hf.LOSSES` name; targets are the inputs (an autoencoder).
    params: initial parameters (pytree).
    data: [N, D] training cases (inputs = targets).
    phases: the `Phase`s.
    seed: minibatch order seed.
    evaluate: optional params -> float (e.g. the training squared error), called at the start,
      every `eval_every` updates (0: only at phase ends) and at every phase end.
    eval_every: see `evaluate`.
    hf_kwargs: other `hessian_free` arguments (e.g. init_damping, cg_eps, backtrack_mode).
    say: optional progress printer.

  Returns:
    (params, dict): `updates`, `cg_steps`, `phase`, `error` (lists, one entry per evaluation),
    `phase_ends` (per phase: updates, cg_steps, error, seconds), `damping` and `rate` per update.

  Raises:
    ValueError: bad phases (see `check_phases`).
  """
  check_phases(phases)
  data = jnp.asarray(data)
  n = data.shape[0]
  bound = max(int(ph.cg_per_update) for ph in phases)
  kwargs = dict(hf_kwargs or {})

  def make(hp):
    return hessian_free(apply_fn, loss, decay=hp["decay"], max_cg_iters=hp["max_cg"],
                        cg_iters_bound=bound, eps=hp["eps"], l2=hp["l2"], **kwargs)

  @jax.jit
  def step(hp, state, params, data, gidx, cidx):  # data an argument: not baked into the program
    gx, cx = data[gidx], data[cidx]
    return make(hp).step(state, params, (gx, gx), (cx, cx))

  dtype = jnp.result_type(float)
  hp0 = dict(decay=jnp.asarray(0.95, dtype), max_cg=jnp.int32(1), eps=jnp.asarray(1., dtype),
             l2=jnp.asarray(0., dtype))
  state = jax.jit(lambda p: make(hp0).init(p))(params)
  batches = _Batches(n, seed)
  t, cg_total = 0, 0
  rec = dict(updates=[], cg_steps=[], phase=[], error=[], phase_ends=[], damping=[], rate=[])

  def record(i):
    if evaluate is not None:
      rec["updates"].append(t)
      rec["cg_steps"].append(cg_total)
      rec["phase"].append(i)
      rec["error"].append(float(evaluate(params)))

  record(0)
  start = time.perf_counter()
  for i, ph in enumerate(phases):
    gsize = max(1, round(ph.grad_fraction * n))
    csize = max(1, round(ph.curv_fraction * n))
    done = 0
    while done < ph.cg_steps:
      gidx = batches.take(gsize)
      # The curvature cases: the gradient minibatch's first cases when it is a minibatch.
      cidx = gidx[:csize] if gsize < n and csize <= gsize else batches.take(csize)
      hp = dict(decay=jnp.asarray(ph.decay, dtype), max_cg=jnp.int32(ph.cg_per_update),
                eps=jnp.asarray(_value(ph.eps, t), dtype),
                l2=jnp.asarray(_value(ph.l2, t), dtype))
      params, state, info = step(hp, state, params, data, jnp.asarray(gidx), jnp.asarray(cidx))
      used = int(info.cg_iters)
      done += max(used, 1)  # an exactly converged CG (0 steps) still ends the update
      cg_total += used
      t += 1
      rec["damping"].append(float(info.damping))
      rec["rate"].append(float(info.rate))
      if eval_every and t % eval_every == 0:
        record(i)
    if evaluate is not None and (not rec["updates"] or rec["updates"][-1] != t):
      record(i)
    end = dict(updates=t, cg_steps=cg_total, seconds=time.perf_counter() - start,
               error=rec["error"][-1] if rec["error"] else None)
    rec["phase_ends"].append(end)
    if say is not None:
      say(f"  phase {i + 1}/{len(phases)}: {t} updates, {cg_total} CG steps"
          + (f", error {end['error']:.4g}" if end["error"] is not None else "")
          + f", {end['seconds']:.1f} s")
  return params, rec
