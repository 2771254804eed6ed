"""Momentum schedules of Sutskever et al. (2013) as optax schedules, plus input checks.

A schedule maps the update count t = 0, 1, 2, ... (the `count` an optax transform keeps; the first
update uses t = 0) to a momentum coefficient mu_t. Every schedule here:

* accepts its hyper-parameters as Python numbers or as traced scalar arrays (e.g. `mu_max` inside
  `jax.vmap`), so a sweep over them is one compiled function;
* returns a scalar (or an array shaped like `count`) of the default float dtype,
  `jnp.result_type(float)`: float32, or float64 under `jax_enable_x64`; the dtype is chosen when the
  schedule is called, not when it is built;
* checks Python-number hyper-parameters eagerly and raises `ValueError` (momentum outside [0, 1),
  negative or fractional step counts, a period that is not positive). Traced values cannot be
  checked and are not.

Schedules are `MomentumSchedule` objects: plain callables (usable wherever optax takes a schedule)
that also carry `peak`, the least upper bound of their values over all t >= 0. `final_phase` uses
`peak == 0` to decide that a schedule is identically zero (all momentum values are >= 0), which
works when `mu_max` is traced. A stepped learning-rate schedule needs nothing new: use
`optax.piecewise_constant_schedule` or `optax.join_schedules`.

Reference: I. Sutskever, J. Martens, G. Dahl, G. Hinton. On the importance of initialization and
momentum in deep learning. ICML 2013, sections 3 and 4.
"""
from collections.abc import Callable
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = jax.typing.ArrayLike
Schedule = Callable[[ArrayLike], jax.Array]


# ------------------------------------------------------------------------------------------------
# Input checks. Each returns quietly for traced values, which cannot be inspected.


def _concrete(value: Any) -> Optional[np.ndarray]:
  """Returns `value` as a float64 NumPy array if it is concrete and numeric, else None."""
  if value is None or callable(value) or isinstance(value, jax.core.Tracer):
    return None
  try:
    return np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    return None


def check_momentum(value: Any, name: str = "momentum") -> None:
  """Raises `ValueError` unless a concrete momentum coefficient lies in [0, 1).

  Args:
    value: a Python number or concrete array (every element is checked). Traced arrays and
      schedules (callables) pass unchecked.
    name: the argument's name, for the error message.
  """
  arr = _concrete(value)
  if arr is not None and not np.all((arr >= 0.0) & (arr < 1.0)):
    raise ValueError(f"{name} must lie in [0, 1) (a momentum coefficient), got {value!r}")


def check_learning_rate(value: Any, name: str = "learning_rate") -> None:
  """Raises `ValueError` unless a concrete learning rate is finite and >= 0.

  Args:
    value: a Python number or concrete array (every element is checked). Traced arrays and
      schedules (callables) pass unchecked.
    name: the argument's name, for the error message.
  """
  arr = _concrete(value)
  if arr is not None and not np.all(np.isfinite(arr) & (arr >= 0.0)):
    raise ValueError(f"{name} must be finite and non-negative, got {value!r}")


def check_steps(value: Any, name: str, positive: bool = False) -> None:
  """Raises `ValueError` unless a concrete step count is a whole number >= 0 (> 0 if `positive`).

  Args:
    value: a Python number or concrete array of update counts. Traced arrays pass unchecked.
    name: the argument's name, for the error message.
    positive: also reject 0 (for a period, which divides the count).
  """
  arr = _concrete(value)
  if arr is None:
    return
  ok = np.isfinite(arr) & (arr == np.floor(arr)) & ((arr > 0) if positive else (arr >= 0))
  if not np.all(ok):
    kind = "a positive" if positive else "a non-negative"
    raise ValueError(f"{name} must be {kind} whole number of updates, got {value!r}")


def check_binary(value: Any, name: str) -> None:
  """Raises `ValueError` unless a concrete value is 0 or 1 (e.g. `nesterov`: 0. CM, 1. NAG).

  Args:
    value: a Python number/bool or concrete array (every element is checked). Traced arrays pass
      unchecked.
    name: the argument's name, for the error message.
  """
  arr = _concrete(value)
  if arr is not None and not np.all((arr == 0) | (arr == 1)):
    raise ValueError(f"{name} must be 0 or 1, got {value!r}")


# ------------------------------------------------------------------------------------------------
# Schedules.


class MomentumSchedule:
  """A momentum schedule `count -> mu_count` that also knows its least upper bound.

  Attributes:
    peak: sup over t >= 0 of the schedule's values (a Python number or scalar array, possibly
      traced); `peak == 0` exactly when the schedule is identically zero.
  """

  __slots__ = ("_fn", "peak")

  def __init__(self, fn: Schedule, peak: ArrayLike):
    self._fn = fn
    self.peak = peak

  def __call__(self, count: ArrayLike) -> jax.Array:
    """Returns mu at update count(s) `count` (int array, any shape), default float dtype."""
    return self._fn(count)


def _float(x: ArrayLike) -> jax.Array:
  return jnp.asarray(x, dtype=jnp.result_type(float))


def _maximum(a: ArrayLike, b: ArrayLike) -> ArrayLike:
  # Plain Python for plain numbers, so building a schedule does no device work.
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return max(a, b)
  return jnp.maximum(a, b)


def sutskever_momentum(mu_max: ArrayLike, period: ArrayLike = 250) -> MomentumSchedule:
  """The autoencoder schedule: mu_t = min(1 - 2^(-1 - log2(floor(t / period) + 1)), mu_max).

  With k = floor(t / period) + 1 the first term is 1 - 1/(2k), computed that way (exactly, no
  floating log2): 0.5 for t < period, 0.75 up to 2 * period, then 5/6, 7/8, ... towards 1. It blends
  Nesterov's 1 - 3/(t + 5) with a constant mu_max.

  Args:
    mu_max: the cap on mu, in [0, 1) (the paper: 0, 0.9, 0.99, 0.995, 0.999); may be traced.
      `mu_max = 0` gives plain SGD.
    period: updates between increases of mu (250 in the paper); > 0, may be traced.

  Returns:
    A `MomentumSchedule` with `peak = mu_max`.

  Raises:
    ValueError: for a Python `mu_max` outside [0, 1) or a `period` that is not a positive whole
      number.
  """
  check_momentum(mu_max, "mu_max")
  check_steps(period, "period", positive=True)

  def schedule(count):
    k = jnp.floor_divide(jnp.asarray(count), period) + 1
    return jnp.minimum(1.0 - 0.5 / _float(k), _float(mu_max))

  return MomentumSchedule(schedule, peak=mu_max)


def rnn_momentum(mu: ArrayLike, warm_mu: ArrayLike = 0.9,
                 warm_steps: ArrayLike = 1000) -> MomentumSchedule:
  """The RNN schedule: mu_t = warm_mu for t < warm_steps, then mu.

  Args:
    mu: the momentum after the warm phase, in [0, 1) (the paper's mu_0: 0, 0.9, 0.98, 0.995);
      may be traced.
    warm_mu: the momentum for the first `warm_steps` updates (0.9 in the paper); may be traced.
    warm_steps: number of updates at `warm_mu` (1000 in the paper); >= 0, may be traced.

  Returns:
    A `MomentumSchedule` with `peak = max(mu, warm_mu)` (just `mu` when `warm_steps = 0`).

  Raises:
    ValueError: for Python `mu`/`warm_mu` outside [0, 1) or a negative/fractional `warm_steps`.
  """
  check_momentum(mu, "mu")
  check_momentum(warm_mu, "warm_mu")
  check_steps(warm_steps, "warm_steps")

  def schedule(count):
    return jnp.where(jnp.asarray(count) < warm_steps, _float(warm_mu), _float(mu))

  if isinstance(warm_steps, (int, float)):
    peak = _maximum(mu, warm_mu) if warm_steps > 0 else mu
  else:
    peak = jnp.where(jnp.asarray(warm_steps) > 0, jnp.maximum(mu, warm_mu), mu)
  return MomentumSchedule(schedule, peak=peak)


def nesterov_convex() -> MomentumSchedule:
  """Nesterov's schedule for (not strongly) convex problems: mu_t = 1 - 3 / (t + 5).

  Returns:
    A `MomentumSchedule` (0.4 at t = 0, tending to 1; `peak = 1`).
  """
  return MomentumSchedule(lambda count: 1.0 - 3.0 / (_float(count) + 5.0), peak=1.0)


def final_phase(schedule: Union[Schedule, ArrayLike], total_steps: ArrayLike,
                final_steps: ArrayLike = 1000, value: ArrayLike = 0.9,
                is_zero: Optional[ArrayLike] = None) -> MomentumSchedule:
  """`schedule`, then `value` for the last `final_steps` updates ("low-momentum fine-tuning").

  mu_t = schedule(t) for t < total_steps - final_steps and `value` from then on, except that an
  identically zero schedule (plain SGD, e.g. `sutskever_momentum(0.)`) stays at 0, as in the
  paper ("unless mu_max is 0"). If `final_steps > total_steps` the whole run is in the final phase.

  Whether `schedule` is identically zero is decided, in order, by:
  1. `is_zero` when given (a bool or traced bool array);
  2. `schedule.peak == 0` for the `MomentumSchedule`s of this module (exact; works when `mu_max`
     is traced, e.g. `final_phase(sutskever_momentum(mu_max), n)` inside `vmap`);
  3. `schedule == 0` for a constant (number or array);
  4. for any other callable: schedule(0) == 0 and schedule(total_steps - final_steps - 1) == 0
     (a heuristic: right for constants and for ramps that start at 0; pass `is_zero` otherwise).

  Args:
    schedule: a momentum schedule (callable of the update count) or a constant.
    total_steps: the number of updates in the whole run; >= 0, may be traced.
    final_steps: length of the final phase (1000 in the paper); >= 0, may be traced.
    value: the final-phase momentum (0.9 in the paper), in [0, 1); may be traced.
    is_zero: optional override of the "identically zero" decision (see above).

  Returns:
    A `MomentumSchedule`; its `peak` is max(schedule.peak, value), or 0 for a zero schedule
    (None when the peak of a plain callable is unknown).

  Raises:
    ValueError: for a Python `value` outside [0, 1), a negative/fractional step count, or a
      constant `schedule` outside [0, 1).
  """
  check_steps(total_steps, "total_steps")
  check_steps(final_steps, "final_steps")
  check_momentum(value, "value")
  if callable(schedule):
    inner = schedule
    inner_peak = getattr(schedule, "peak", None)
  else:
    check_momentum(schedule, "schedule")
    inner = lambda count: jnp.broadcast_to(_float(schedule), jnp.shape(count))
    inner_peak = schedule

  # Everything below runs when the schedule is called, i.e. under the caller's trace.
  def start():
    return jnp.asarray(total_steps) - jnp.asarray(final_steps)

  def zero_test():
    if is_zero is not None:
      return jnp.asarray(is_zero, dtype=bool)
    if inner_peak is not None:
      return jnp.asarray(inner_peak) == 0
    return (inner(jnp.zeros([], jnp.int32)) == 0) & (inner(jnp.maximum(start() - 1, 0)) == 0)

  def final_schedule(count):
    count = jnp.asarray(count)
    final_value = jnp.where(zero_test(), 0.0, _float(value))
    return jnp.where(count >= start(), final_value, _float(inner(count)))

  zero = is_zero if is_zero is not None else (None if inner_peak is None else inner_peak == 0)
  if zero is True:
    peak = 0.0
  elif inner_peak is None:
    peak = None
  elif zero is False:
    peak = _maximum(inner_peak, value)
  else:
    peak = jnp.where(zero, 0.0, jnp.maximum(inner_peak, value))
  return MomentumSchedule(final_schedule, peak=peak)


__all__ = [
    "MomentumSchedule", "sutskever_momentum", "rnn_momentum", "nesterov_convex", "final_phase",
    "check_momentum", "check_learning_rate", "check_steps", "check_binary",
]
