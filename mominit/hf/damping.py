"""Levenberg-Marquardt damping, the Armijo line search and HF's one-CG-step closed form, the
NAG-like step (see `mominit.hf`)."""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from jax import lax

from mominit.hf._common import Array, _check_int


def reduction_ratio(actual_change: Array, model_change: Array) -> Array:
  """rho = actual / predicted change of the objective, NaN unless the model predicts a decrease.

  rho is a ratio of reductions; when the model predicts none (model_change >= 0, which a few CG
  steps from a warm start can leave) the ratio of two increases would read as "the model is
  accurate" and lower the damping, so it is NaN instead, which `update_damping` treats as a
  failure.

  Args:
    actual_change: f(theta + p) - f(theta) (loss units).
    model_change: q(p) - q(0) of the undamped model (loss units).

  Returns:
    The scalar rho, or NaN.
  """
  safe = jnp.where(model_change < 0, model_change, -1.)
  return jnp.where(model_change < 0, actual_change / safe, jnp.nan)


def update_damping(damping: Array, rho: Array, *, boost: float | Array = 1.5,
                   drop: float | Array = 2. / 3., low: float | Array = 0.25,
                   high: float | Array = 0.75) -> Array:
  """Levenberg-Marquardt rule: damping x boost if rho < low, x drop if rho > high.

  Args:
    damping: scalar lambda (loss / param^2).
    rho: scalar reduction ratio (f(theta + p) - f(theta)) / (q(p) - q(0)); NaN counts as a
      failure (boost).
    boost, drop, low, high: Martens' 3/2, 2/3, 1/4, 3/4.

  Returns:
    The new damping (scalar).
  """
  rho = jnp.where(jnp.isnan(rho), -jnp.inf, rho)
  return jnp.where(rho < low, damping * boost, jnp.where(rho > high, damping * drop, damping))


def armijo_line_search(objective_fn: Callable[[Array], Array], f0: Array, slope: Array,
                       f1: Array, *, c: float | Array = 1e-2, shrink: float | Array = 0.8,
                       max_steps: int = 60) -> tuple[Array, Array, Array]:
  """Backtracking line search along p: largest rate = shrink^k with the Armijo condition.

  f(theta + rate p) <= f(theta) + c rate g^T p, k = 0 .. max_steps - 1; rate 0 if none passes.

  Args:
    objective_fn: rate (scalar) -> f(theta + rate p) on the gradient minibatch.
    f0: f(theta).
    slope: g^T p (negative for a descent direction).
    f1: f(theta + p), already known from backtracking.
    c: Armijo constant (1e-2).
    shrink: rate factor (0.8).
    max_steps: rates tried (static int; 60 as in Martens' code).

  Returns:
    (rate, f(theta + rate p), number of new objective evaluations int32).
  """
  _check_int("max_steps", max_steps, 1)
  dtype = jnp.result_type(f0)
  ok = lambda rate, v: v <= f0 + c * rate * slope

  def cond(st):
    k, rate, v, n = st
    return ~ok(rate, v) & (k < max_steps - 1)

  def body(st):
    k, rate, _, n = st
    rate = rate * shrink
    return k + 1, rate, objective_fn(rate), n + 1

  one = jnp.ones([], dtype)
  k, rate, v, n = lax.while_loop(cond, body, (jnp.zeros([], jnp.int32), one, f1,
                                              jnp.zeros([], jnp.int32)))
  accepted = ok(rate, v)
  return jnp.where(accepted, rate, 0.), jnp.where(accepted, v, f0), n


def nag_like_step(grad: Array, matvec: Callable[[Array], Array], prev_update: Array,
                  decay: float | Array, precond: Array | None = None) -> tuple[Array, Array, Array]:
  """One (preconditioned) CG step from the warm start decay * prev_update, in closed form.

  p = mu p_prev - alpha M^-1 (g + B mu p_prev), alpha = r0^T M^-1 r0 / (M^-1 r0)^T B (M^-1 r0),
  r0 = g + B mu p_prev (mu = decay, B = damped curvature, M = I when precond is None). This is
  NAG with v = p, momentum mu, step size alpha and the look-ahead gradient
  grad f(theta + mu p_prev) replaced by the quadratic model's gradient r0 (see module docstring).

  Args:
    grad: [P] gradient g at theta.
    matvec: x [P] -> B x [P].
    prev_update: [P] previous HF solution p_prev.
    decay: scalar mu.
    precond: [P] positive diagonal M, or None.

  Returns:
    (p [P], alpha scalar, r0 [P] the model's look-ahead gradient).
  """
  x0 = decay * prev_update
  r0 = grad + matvec(x0)
  y0 = r0 if precond is None else r0 / precond
  alpha = jnp.vdot(r0, y0) / jnp.vdot(y0, matvec(y0))
  return x0 - alpha * y0, alpha, r0


