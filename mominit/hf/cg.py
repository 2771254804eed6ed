"""Preconditioned conjugate gradient with Martens' stopping test, its store of iterates and CG
backtracking (see `mominit.hf`)."""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax.numpy as jnp
from jax import lax

from mominit.hf._common import (Array, _check_int, _check_range, _is_python_number)

BACKTRACK_MODES = ("best", "walk", "none")


# ---------------------------------------------------------------------------------------------
# Conjugate gradient with Martens' stopping test and backtracking buffer.


def save_iterations(max_iters: int, ratio: float = 1.3) -> tuple[int, ...]:
  """The distinct CG iterations ceil(ratio^j) <= max_iters, j = 0, 1, ... (Martens 2010).

  Args:
    max_iters: largest iteration to keep (Python int >= 1).
    ratio: geometric ratio (> 1).

  Returns:
    Increasing tuple, e.g. (1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 24, ...) for ratio 1.3.
  """
  _check_int("max_iters", max_iters, 1)
  if not ratio > 1:
    raise ValueError(f"ratio must be > 1, got {ratio!r}")
  out, j = [], 0
  while True:
    it = math.ceil(ratio**j)
    if it > max_iters:
      return tuple(out)
    if not out or it != out[-1]:
      out.append(it)
    j += 1


class CGResult(NamedTuple):
  """Output of `pcg` (S = number of save iterations; slots hold flat [P] iterates).

  Attributes:
    x: [P] final iterate.
    num_iters: int32 scalar, CG iterations run (matrix-vector products minus the initial one).
    saved: [S + 1, P] stored iterates; slots 0..last_slot are valid, the last one is `x`.
    saved_iters: [S + 1] int32 iteration of each slot (0 for unwritten slots).
    saved_phi: [S + 1] phi at each slot.
    last_slot: int32 scalar, slot of the final iterate.
    phi: [bound + 1] phi after each iteration (phi[0] at x0; entries past num_iters are 0).
  """
  x: Array
  num_iters: Array
  saved: Array
  saved_iters: Array
  saved_phi: Array
  last_slot: Array
  phi: Array


def pcg(matvec: Callable[[Array], Array], grad: Array, x0: Array, *,
        precond: Array | None = None, max_iters: int | Array = 250,
        iters_bound: int | None = None, eps: float | Array = 5e-4,
        min_gap: int | Array = 10, gap_ratio: float | Array = 0.1,
        save_ratio: float = 1.3) -> CGResult:
  """Preconditioned CG on phi(x) = 1/2 x^T A x + grad^T x, i.e. it solves A x = -grad.

  Stops after `max_iters` iterations, when p^T A p <= 0 (exact convergence), or at the first
  iteration i > k with phi_{i-k} < 0 and (phi_i - phi_{i-k}) / phi_i < k * eps,
  k = max(min_gap, ceil(gap_ratio * i)) (Martens 2010; eps = 0 disables the test). phi is tracked
  without extra products: phi = 1/2 x^T (r + grad) with the residual r = A x + grad. Iterates
  are kept at iterations ceil(save_ratio^j) as in Martens (2010); his released code keeps them
  at ceil(5 * 1.3^j) instead.

  Args:
    matvec: x [P] -> A x [P], A symmetric positive definite (e.g. G + lambda I).
    grad: [P] linear term.
    x0: [P] initial iterate (HF: decay * previous solution).
    precond: [P] positive diagonal M (CG uses M^-1 r), or None.
    max_iters: iteration cap; may be traced (then it is clipped to `iters_bound`).
    iters_bound: static bound on iterations (sizes the phi history and the save buffer);
      defaults to `max_iters` when that is a Python int, else 250.
    eps: relative-progress tolerance (5e-4).
    min_gap: smallest k of the test (10).
    gap_ratio: k grows as gap_ratio * i (0.1).
    save_ratio: iterates at iterations ceil(save_ratio^j) are kept (static, 1.3).

  Returns:
    A `CGResult`.
  """
  if iters_bound is None:
    iters_bound = int(max_iters) if _is_python_number(max_iters) else 250
  _check_int("iters_bound", iters_bound, 1)
  if _is_python_number(max_iters):
    _check_int("max_iters", max_iters, 1)
  _check_range("eps", eps, lo=0.)
  _check_range("gap_ratio", gap_ratio, lo=0.)
  _check_range("min_gap", min_gap, lo=1.)
  table = jnp.asarray(save_iterations(iters_bound, save_ratio), jnp.int32)
  num_save = table.shape[0]
  dtype = grad.dtype
  inv_m = None if precond is None else 1. / precond
  apply_inv = (lambda r: r) if inv_m is None else (lambda r: inv_m * r)
  limit = jnp.minimum(jnp.asarray(max_iters, jnp.int32), iters_bound)

  r = matvec(x0) + grad
  y = apply_inv(r)
  phi0 = 0.5 * jnp.vdot(x0, r + grad)
  init = dict(
      i=jnp.zeros([], jnp.int32), x=x0, r=r, p=-y, ry=jnp.vdot(r, y), done=jnp.zeros([], bool),
      phi=jnp.zeros([iters_bound + 1], dtype).at[0].set(phi0),
      saved=jnp.zeros((num_save + 1,) + x0.shape, dtype),
      saved_iters=jnp.zeros([num_save + 1], jnp.int32),
      saved_phi=jnp.zeros([num_save + 1], dtype),
      ptr=jnp.zeros([], jnp.int32), last=jnp.zeros([], jnp.int32))

  def cond(c):
    return (c["i"] < limit) & ~c["done"]

  def body(c):
    ap = matvec(c["p"])
    pap = jnp.vdot(c["p"], ap)
    # Guards only matter once CG has converged exactly (r = 0); they keep the iterate fixed.
    alpha = jnp.where(pap > 0, c["ry"] / jnp.where(pap > 0, pap, 1.), 0.)
    x = c["x"] + alpha * c["p"]
    r = c["r"] + alpha * ap
    y = apply_inv(r)
    ry = jnp.vdot(r, y)
    beta = jnp.where(c["ry"] > 0, ry / jnp.where(c["ry"] > 0, c["ry"], 1.), 0.)
    p = -y + beta * c["p"]
    i = c["i"] + 1
    phi_i = 0.5 * jnp.vdot(x, r + grad)
    phi = c["phi"].at[i].set(phi_i)
    # k = max(min_gap, ceil(gap_ratio i)); the 1e-3 keeps 0.1 * 110 = 11.000000000000002 at 11.
    k = jnp.maximum(jnp.asarray(min_gap, jnp.int32),
                    jnp.ceil(gap_ratio * i.astype(dtype) - 1e-3).astype(jnp.int32))
    prev = phi[jnp.maximum(i - k, 0)]
    # As in Martens' code the test needs phi_{i-k} < 0 (then phi_i < 0 too, CG being monotone).
    done = (eps > 0) & (i > k) & (prev < 0) & (phi_i < 0) & (
        (phi_i - prev) / jnp.where(phi_i < 0, phi_i, -1.) < k.astype(dtype) * eps)
    # No positive curvature along p: converged exactly (p = 0) or A is not positive definite.
    done = done | ~(pap > 0)
    # The current iterate always goes to slot ptr; the slot is frozen (ptr advances) when i is a
    # save iteration, so slots 0..last hold the save iterations reached plus the final iterate.
    ptr = c["ptr"]
    freeze = (ptr < num_save) & (i == table[jnp.minimum(ptr, num_save - 1)])
    return dict(
        i=i, x=x, r=r, p=p, ry=ry, done=done, phi=phi,
        saved=c["saved"].at[ptr].set(x), saved_iters=c["saved_iters"].at[ptr].set(i),
        saved_phi=c["saved_phi"].at[ptr].set(phi_i), ptr=ptr + freeze.astype(jnp.int32),
        last=ptr)

  c = lax.while_loop(cond, body, init)
  return CGResult(x=c["x"], num_iters=c["i"], saved=c["saved"], saved_iters=c["saved_iters"],
                  saved_phi=c["saved_phi"], last_slot=c["last"], phi=c["phi"])


def backtrack(objective_fn: Callable[[Array], Array], candidates: Array, last_slot: Array,
              mode: str = "best") -> tuple[Array, Array, Array]:
  """CG backtracking: picks a stored iterate by the objective.

  Args:
    objective_fn: candidate [P] -> scalar objective of theta + candidate (gradient minibatch).
    candidates: [S, P] stored iterates; slots 0..last_slot are valid (ordered by iteration).
    last_slot: int scalar, the final iterate's slot.
    mode: "best": the valid slot with the lowest objective (ties: the later iterate);
      "walk": start at the last slot and go back while the objective strictly decreases
      (Martens' code); "none": the last slot.

  Returns:
    (slot int32, its objective value, number of objective evaluations int32).
  """
  if mode not in BACKTRACK_MODES:
    raise ValueError(f"unknown backtrack mode {mode!r}; valid: {', '.join(BACKTRACK_MODES)}")
  last_slot = jnp.asarray(last_slot, jnp.int32)
  value = objective_fn(candidates[last_slot])
  if mode == "none":
    return last_slot, value, jnp.ones([], jnp.int32)

  def cond(c):
    j, _, _, go, _ = c
    return (j >= 0) & go

  def body(c):
    j, best_j, best_v, _, n = c
    v = objective_fn(candidates[j])
    better = v < best_v
    go = better if mode == "walk" else jnp.ones([], bool)
    return (j - 1, jnp.where(better, j, best_j), jnp.where(better, v, best_v), go, n + 1)

  _, best_j, best_v, _, n = lax.while_loop(
      cond, body, (last_slot - 1, last_slot, value, jnp.ones([], bool), jnp.ones([], jnp.int32)))
  return best_j, best_v, n


