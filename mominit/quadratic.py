"""Momentum on quadratics: trajectories, effective momentum and the CM/NAG theorem.

The objective is f(x) = 1/2 (x - c)^T A (x - c) with A = U diag(lambda) U^T symmetric positive
semi-definite (the paper's x^T A x / 2 + b^T x with b = -A c, up to a constant). Along eigenvector
i (coordinate y_i = (U^T x)_i) the gradient is lambda_i (y_i - z_i), z = U^T c.

Sutskever et al. (ICML 2013), section 2.1, Theorem 2.1: on such a quadratic one NAG step along
eigendirection i equals one CM step with the effective momentum mu (1 - lambda_i eps). Indeed
NAG's v' = mu v - eps lambda (y + mu v - z) = mu (1 - lambda eps) v - eps lambda (y - z). So CM and
NAG agree when eps lambda_i is small and NAG damps the high-curvature directions. The identity
holds step by step, so it also holds with schedules, using mu_t (1 - lambda_i eps_t) at update t.
`theorem_check` verifies it numerically in float64 with `mominit.nag` run in the original basis.
"""
from collections.abc import Callable, Sequence
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mominit import momentum as momentum_lib

ArrayLike = jax.typing.ArrayLike


class Quadratic(NamedTuple):
  """f(x) = 1/2 (x - center)^T matrix (x - center); a pytree, so it can be passed to `jit`.

  Attributes:
    matrix: A, [n, n], symmetric positive semi-definite (curvature, per unit of x squared).
    eigenvalues: lambda, [n], ascending, A = U diag(lambda) U^T.
    eigenvectors: U, [n, n], orthonormal columns.
    center: c, [n], a minimiser.
  """

  matrix: jax.Array
  eigenvalues: jax.Array
  eigenvectors: jax.Array
  center: jax.Array


def _float(x: ArrayLike) -> jax.Array:
  return jnp.asarray(x, dtype=jnp.result_type(float))


def _random_rotation(key: jax.Array, n: int) -> jax.Array:
  q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype=jnp.result_type(float)))
  # Fix the signs so the rotation is Haar-distributed and a function of the key only.
  return q * jnp.sign(jnp.diagonal(r))


def _check_eigenvalues(eigenvalues: ArrayLike) -> None:
  if isinstance(eigenvalues, jax.core.Tracer):
    return
  lam = np.asarray(eigenvalues, dtype=np.float64)
  if lam.ndim != 1 or not np.all(np.isfinite(lam) & (lam >= 0)):
    raise ValueError(f"eigenvalues must be a 1-D array of finite values >= 0, got {eigenvalues!r}")


def from_eigenvalues(eigenvalues: ArrayLike, key: Optional[jax.Array] = None,
                     center: Optional[ArrayLike] = None) -> Quadratic:
  """A quadratic with given curvatures, axis-aligned or randomly rotated.

  Args:
    eigenvalues: lambda, [n], >= 0 (sorted ascending here).
    key: a `jax.random` key for a random orthonormal basis U; None keeps the axes (U = I).
    center: the minimiser c, [n]; default 0.

  Returns:
    A `Quadratic` in the default float dtype.

  Raises:
    ValueError: if concrete eigenvalues are not a 1-D array of finite values >= 0.
  """
  _check_eigenvalues(eigenvalues)
  lam = jnp.sort(_float(eigenvalues))
  n = lam.shape[0]
  u = jnp.eye(n, dtype=lam.dtype) if key is None else _random_rotation(key, n)
  a = (u * lam) @ u.T
  c = jnp.zeros(n, lam.dtype) if center is None else _float(center)
  return Quadratic(matrix=0.5 * (a + a.T), eigenvalues=lam, eigenvectors=u, center=c)


def from_matrix(matrix: ArrayLike, center: Optional[ArrayLike] = None) -> Quadratic:
  """A quadratic with curvature matrix A.

  Args:
    matrix: A, [n, n], symmetric positive semi-definite.
    center: the minimiser c, [n]; default 0.

  Returns:
    A `Quadratic` in the default float dtype (eigen-decomposed with `jnp.linalg.eigh`).

  Raises:
    ValueError: if a concrete `matrix` is not square, not symmetric or has a negative eigenvalue.
  """
  if not isinstance(matrix, jax.core.Tracer):
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.allclose(m, m.T):
      raise ValueError(f"matrix must be square and symmetric, got shape {m.shape}")
    if np.linalg.eigvalsh(m)[0] < -1e-12 * max(1.0, np.abs(m).max()):
      raise ValueError("matrix must be positive semi-definite")
  a = _float(matrix)
  lam, u = jnp.linalg.eigh(a)
  c = jnp.zeros(a.shape[0], a.dtype) if center is None else _float(center)
  return Quadratic(matrix=a, eigenvalues=lam, eigenvectors=u, center=c)


def value(quad: Quadratic, x: jax.Array) -> jax.Array:
  """f(x) = 1/2 (x - c)^T A (x - c); x: [n] -> scalar."""
  d = x - quad.center
  return 0.5 * d @ (quad.matrix @ d)


def grad(quad: Quadratic, x: jax.Array) -> jax.Array:
  """grad f(x) = A (x - c); x: [n] -> [n]."""
  return quad.matrix @ (x - quad.center)


def effective_momentum(mu: ArrayLike, eps: ArrayLike, lam: ArrayLike) -> jax.Array:
  """NAG's momentum along an eigendirection with curvature lam: mu (1 - lam eps) (Theorem 2.1).

  Args:
    mu: momentum coefficient(s).
    eps: learning rate(s).
    lam: curvature eigenvalue(s); all three broadcast together.

  Returns:
    mu * (1 - lam * eps), the CM momentum that reproduces NAG along that direction.
  """
  return jnp.asarray(mu) * (1 - jnp.asarray(lam) * jnp.asarray(eps))


def trajectory(quad: Quadratic, x0: ArrayLike, learning_rate: optax.ScalarOrSchedule,
               momentum: optax.ScalarOrSchedule, nesterov: ArrayLike,
               num_steps: int) -> tuple[jax.Array, jax.Array]:
  """Runs `mominit.momentum_rule` on the quadratic (GD: momentum 0, CM: n = 0, NAG: n = 1).

  Args:
    quad: the objective.
    x0: theta_0, [n].
    learning_rate: eps, constant (maybe traced) or schedule.
    momentum: mu, constant (maybe traced) or schedule.
    nesterov: 0. for CM/GD, 1. for NAG; may be traced.
    num_steps: T, the number of updates (static).

  Returns:
    (theta [T + 1, n], velocity [T + 1, n]): the paper's iterates theta_0..theta_T (for NAG the
    params are the look-ahead points; these are recovered with `mominit.theta`) and v_0..v_T.
  """
  opt = momentum_lib.momentum_rule(learning_rate, momentum, nesterov)
  params = _float(x0)

  def step(carry, _):
    params, state = carry
    updates, state = opt.update(grad(quad, params), state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), (momentum_lib.theta(params, state), state.velocity)

  state = opt.init(params)
  _, (thetas, velocities) = jax.lax.scan(step, (params, state), None, length=num_steps)
  thetas = jnp.concatenate([momentum_lib.theta(params, state)[None], thetas])
  velocities = jnp.concatenate([state.velocity[None], velocities])
  return thetas, velocities


def cm_eigenbasis(quad: Quadratic, x0: ArrayLike, learning_rate: optax.ScalarOrSchedule,
                  momentum: Union[ArrayLike, Callable[[jax.Array], jax.Array]],
                  num_steps: int) -> tuple[jax.Array, jax.Array]:
  """CM written out coordinate-wise in the eigenbasis, with one momentum per direction.

  y_0 = U^T x0, v_0 = 0, and for t = 0..T-1, along each direction i:
  v_{t+1,i} = mu_{t,i} v_{t,i} - eps_t lambda_i (y_{t,i} - z_i), y_{t+1,i} = y_{t,i} + v_{t+1,i}.

  Args:
    quad: the objective.
    x0: theta_0 in the original basis, [n].
    learning_rate: eps, constant or schedule (count -> eps_t).
    momentum: mu per direction: [n] (or scalar), or a function count -> [n].
    num_steps: T (static).

  Returns:
    (y [T + 1, n], v [T + 1, n]) in eigen-coordinates.
  """
  lam, u = quad.eigenvalues, quad.eigenvectors
  z = u.T @ quad.center
  y0 = u.T @ _float(x0)

  def at(hyper, t):
    return _float(hyper(t) if callable(hyper) else hyper)

  def step(carry, t):
    y, v = carry
    v = at(momentum, t) * v - at(learning_rate, t) * lam * (y - z)
    y = y + v
    return (y, v), (y, v)

  carry = (y0, jnp.zeros_like(y0))
  _, (ys, vs) = jax.lax.scan(step, carry, jnp.arange(num_steps, dtype=jnp.int32))
  return jnp.concatenate([y0[None], ys]), jnp.concatenate([carry[1][None], vs])


def theorem_check(eigenvalues: Sequence[float] = (1e-3, 1e-2, 0.1, 0.5, 1.0, 1.3),
                  learning_rate: optax.ScalarOrSchedule = 1.0,
                  momentum: optax.ScalarOrSchedule = 0.9, num_steps: int = 200,
                  seed: int = 0) -> dict:
  """Checks Theorem 2.1 numerically in float64: NAG == per-direction CM with mu (1 - lambda eps).

  Builds a randomly rotated quadratic with the given curvatures (random minimiser and start), runs
  `mominit.nag` in the original basis, maps theta_t and v_t to the eigenbasis, and compares them
  with CM run coordinate-wise with momentum mu_t (1 - lambda_i eps_t) (`cm_eigenbasis`), and with
  CM with the same mu_t (which differs where eps lambda_i is not small). Runs under
  `jax.enable_x64(True)` whatever the global setting.

  Args:
    eigenvalues: lambda_i (for NAG to be stable, eps lambda_i < (2 + 2 mu) / (1 + 2 mu)).
    learning_rate: eps, constant or schedule.
    momentum: mu, constant or schedule.
    num_steps: T, updates compared.
    seed: for the rotation, the minimiser and the start.

  Returns:
    A dict of Python numbers: `max_abs_diff` (max over t, i of |y_nag - y_cm_eff|, eigen-coords),
    `max_abs_diff_velocity`, `scale` (max |y_cm_eff|), `max_rel_diff` (= max_abs_diff / scale),
    `plain_cm_max_abs_diff` (NAG vs CM with the same mu), and per direction (lists, ascending
    lambda): `eigenvalues`, `eps_lambda` and `effective_momentum` (at t = 0),
    `max_abs_diff_per_direction`, `plain_cm_max_abs_diff_per_direction`; also `num_steps`,
    `dtype`.
  """
  def at(hyper, t):
    return _float(hyper(t) if callable(hyper) else hyper)

  def compare(key):
    # One jit for the whole comparison: op-by-op dispatch would compile dozens of tiny programs.
    k_rot, k_center, k_start = jax.random.split(key, 3)
    n = len(eigenvalues)
    quad = from_eigenvalues(eigenvalues, key=k_rot,
                            center=jax.random.normal(k_center, (n,), jnp.float64))
    x0 = jax.random.normal(k_start, (n,), jnp.float64)
    lam, u = quad.eigenvalues, quad.eigenvectors
    thetas, velocities = trajectory(quad, x0, learning_rate, momentum, 1.0, num_steps)
    y_nag, v_nag = thetas @ u, velocities @ u  # Rows: (U^T x)^T = x^T U.
    y_eff, v_eff = cm_eigenbasis(
        quad, x0, learning_rate,
        lambda t: effective_momentum(at(momentum, t), at(learning_rate, t), lam), num_steps)
    y_cm, _ = cm_eigenbasis(
        quad, x0, learning_rate, lambda t: jnp.broadcast_to(at(momentum, t), lam.shape),
        num_steps)
    t0 = jnp.zeros([], jnp.int32)
    return {
        "eigenvalues": lam,
        "eps_lambda": at(learning_rate, t0) * lam,
        "effective_momentum": effective_momentum(at(momentum, t0), at(learning_rate, t0), lam),
        "max_abs_diff_per_direction": jnp.max(jnp.abs(y_nag - y_eff), axis=0),
        "plain_cm_max_abs_diff_per_direction": jnp.max(jnp.abs(y_nag - y_cm), axis=0),
        "max_abs_diff_velocity": jnp.max(jnp.abs(v_nag - v_eff)),
        "scale": jnp.max(jnp.abs(y_eff)),
    }

  _check_eigenvalues(eigenvalues)
  with jax.enable_x64(True):
    out = jax.device_get(jax.jit(compare)(jax.random.key(seed)))
  diff = out["max_abs_diff_per_direction"]
  result = {
      "max_abs_diff": float(diff.max()),
      "max_abs_diff_velocity": float(out["max_abs_diff_velocity"]),
      "scale": float(out["scale"]),
      "max_rel_diff": float(diff.max() / out["scale"]),
      "plain_cm_max_abs_diff": float(out["plain_cm_max_abs_diff_per_direction"].max()),
  }
  for name in ("eigenvalues", "eps_lambda", "effective_momentum", "max_abs_diff_per_direction",
               "plain_cm_max_abs_diff_per_direction"):
    result[name] = out[name].tolist()
  result.update(num_steps=int(num_steps), dtype=str(diff.dtype))
  return result


def format_theorem_table(check: dict) -> str:
  """A plain-text table of a `theorem_check` result, one row per eigendirection."""
  lines = [
      f"Theorem 2.1 check ({check['num_steps']} updates, {check['dtype']}): NAG along "
      "eigendirection i == CM with momentum mu (1 - lambda_i eps)",
      f"{'lambda':>10} {'eps*lambda':>11} {'mu_eff':>9} {'|NAG-CM(mu_eff)|':>17}"
      f" {'|NAG-CM(mu)|':>13}",
  ]
  for row in zip(check["eigenvalues"], check["eps_lambda"], check["effective_momentum"],
                 check["max_abs_diff_per_direction"],
                 check["plain_cm_max_abs_diff_per_direction"]):
    lines.append("{:>10.4g} {:>11.4g} {:>9.4f} {:>17.2e} {:>13.2e}".format(*row))
  lines.append(f"max |NAG - CM(mu_eff)| = {check['max_abs_diff']:.2e} "
               f"(relative to max |y| = {check['scale']:.3g}: {check['max_rel_diff']:.2e})")
  return "\n".join(lines)


def oblong(eigenvalues: Sequence[float] = (0.002, 1.0)) -> Quadratic:
  """The 2-D oblong quadratic of the paper's appendix: low curvature along x, high along y.

  Args:
    eigenvalues: (lambda_x, lambda_y), lambda_x << lambda_y.

  Returns:
    An axis-aligned `Quadratic` with minimiser 0.
  """
  return from_eigenvalues(eigenvalues)


def oblong_trajectories(learning_rate: float = 0.8, momentum: float = 0.9, num_steps: int = 150,
                        x0: Sequence[float] = (-10.0, 1.0),
                        eigenvalues: Sequence[float] = (0.002, 1.0)) -> dict:
  """GD, CM and NAG on the oblong quadratic with the same eps and mu.

  The defaults put eps lambda_y = 0.8 on the steep axis: there CM's two-step recurrence has
  complex roots of modulus sqrt(mu) = 0.95 (a slowly decaying zig-zag), while NAG's effective
  momentum is 0.9 * 0.2 = 0.18 (modulus 0.42: the zig-zag dies within a few steps). Along the
  shallow axis eps lambda_x = 0.0016 and both momentum methods run ahead of GD without overshoot.

  Args:
    learning_rate: eps, shared by the three methods.
    momentum: mu, shared by CM and NAG (GD has none).
    num_steps: T.
    x0: the start (x, y).
    eigenvalues: (lambda_x, lambda_y) of `oblong`.

  Returns:
    {"gd": [T + 1, 2], "cm": [T + 1, 2], "nag": [T + 1, 2]} NumPy arrays of theta_t.
  """
  quad = oblong(eigenvalues)
  names, mus, ns = ("gd", "cm", "nag"), (0.0, momentum, momentum), (0.0, 0.0, 1.0)
  # The three methods are one vmap-ed population: one compilation.
  paths = jax.jit(jax.vmap(
      lambda mu, n: trajectory(quad, x0, learning_rate, mu, n, num_steps)[0]))(
          jnp.asarray(mus), jnp.asarray(ns))
  return dict(zip(names, np.asarray(paths)))


def sign_changes(path: ArrayLike, axis: int = 1, center: float = 0.0, tol: float = 0.0) -> int:
  """How often a trajectory crosses `center` along one coordinate (a count of oscillations).

  Args:
    path: [T, n] iterates.
    axis: the coordinate (1: the steep y axis of `oblong`).
    center: the minimiser's coordinate.
    tol: points with |path[:, axis] - center| <= tol are skipped, so that wiggles that have
      already died out (e.g. below 1% of the start) do not count.

  Returns:
    The number of sign changes of path[:, axis] - center among the points beyond `tol`.
  """
  d = np.asarray(path)[:, axis] - center
  s = np.sign(d[np.abs(d) > tol])
  return int(np.sum(s[1:] != s[:-1]))


__all__ = [
    "Quadratic", "from_eigenvalues", "from_matrix", "value", "grad", "effective_momentum",
    "trajectory", "cm_eigenbasis", "theorem_check", "format_theorem_table", "oblong",
    "oblong_trajectories", "sign_changes",
]
