"""Classical momentum and Nesterov's accelerated gradient as optax transforms.

The rules are those of Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
momentum in deep learning", ICML 2013, section 2, with both the momentum mu_t and the learning rate
eps_t allowed to follow schedules of the update count t = 0, 1, 2, ... (the first update uses mu_0
and eps_0).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mominit import schedules


class MomentumState(NamedTuple):
  """State of `momentum_rule` (and so of `cm` and `nag`).

  Attributes:
    count: the update count t, an int32 scalar (0 before the first update).
    velocity: the paper's v_t, a pytree shaped like the params and in the params' dtypes. It is in
      parameter units (a step: eps is inside it), unlike the gradient-unit trace of `optax.trace`.
    shift: the scalar n * mu_t (n = 1 for NAG, 0 for CM), in the default float dtype, such that the
      paper's iterate is theta_t = params - shift * velocity (see `theta`).
  """

  count: jax.Array
  velocity: optax.Params
  shift: jax.Array


def _value_at(hyper: optax.ScalarOrSchedule, count: jax.Array) -> jax.Array:
  """A hyper-parameter at update `count`: calls a schedule, passes a constant through."""
  value = hyper(count) if callable(hyper) else hyper
  return jnp.asarray(value, dtype=jnp.result_type(float))


def momentum_rule(
    learning_rate: optax.ScalarOrSchedule,
    momentum: optax.ScalarOrSchedule,
    nesterov: jax.typing.ArrayLike,
) -> optax.GradientTransformation:
  r"""Classical momentum (n = 0) or Nesterov's accelerated gradient (n = 1), one transform.

  With v_0 = 0, gradients g, momentum mu_t and learning rate eps_t at update t (t = 0, 1, ...):

  .. math::

    v_{t+1} = \mu_t v_t - \epsilon_t g_t

  and the update added to the params (with `optax.apply_updates`) is

  .. math::

    u_t = v_{t+1} + n (\mu_{t+1} v_{t+1} - \mu_t v_t).

  CM (n = 0): the params are the paper's theta_t, g_t = grad f(theta_t) and
  theta_{t+1} = theta_t + v_{t+1}.

  NAG (n = 1): the params hold the look-ahead point phi_t = theta_t + mu_t v_t (a "stored
  look-ahead" form, so the train step takes its gradient at the params as usual:
  g_t = grad f(phi_t) = grad f(theta_t + mu_t v_t), the paper's NAG gradient), and
  phi_{t+1} = phi_t + (1 + mu_{t+1}) v_{t+1} - mu_t v_t. This is exactly the paper's NAG,
  v_{t+1} = mu_t v_t - eps_t grad f(theta_t + mu_t v_t), theta_{t+1} = theta_t + v_{t+1}, also when
  mu and eps change between updates (it uses mu at both t and t + 1). Recover theta_t with
  `mominit.theta(params, opt_state)`; that is the point whose error the paper reports.

  The state keeps the shift n * mu_t last used, and the update subtracts that stored shift times
  v_t, so theta = params - shift * velocity holds exactly after every update even when the
  momentum is fed in from outside one value at a time (`optax.inject_hyperparams`). In that case,
  though, the transform cannot see mu_{t+1} and uses mu_t for the next look-ahead: pass momentum
  schedules directly to this function (injecting the learning rate is exact).

  `optax.sgd(eps, mu, nesterov=...)` keeps its trace in gradient units and uses one mu for both
  places, so it matches this transform (params and v = -eps * trace) only for constant mu and
  constant eps.

  Args:
    learning_rate: eps, a float >= 0, a traced scalar array, or an optax schedule
      (count -> eps_t).
    momentum: mu, a float in [0, 1), a traced scalar array, or a schedule (count -> mu_t), e.g.
      `mominit.schedules.sutskever_momentum(0.99)`.
    nesterov: n, 0. (CM) or 1. (NAG). May be a traced float, so CM and NAG members of one
      `vmap`-ed population share one compiled function.

  Returns:
    An `optax.GradientTransformation` with state `MomentumState`.

  Raises:
    ValueError: for a Python learning rate that is negative or not finite, a Python momentum
      outside [0, 1), or a Python `nesterov` other than 0 or 1.

  References:
    Sutskever, Martens, Dahl & Hinton, On the importance of initialization and momentum in deep
    learning, ICML 2013, section 2 (CM and NAG) and section 2.1 (their relationship).
  """
  schedules.check_learning_rate(learning_rate, "learning_rate")
  schedules.check_momentum(momentum, "momentum")
  schedules.check_binary(nesterov, "nesterov")

  def init_fn(params):
    count = jnp.zeros([], jnp.int32)
    # v_0 = 0, so shift_0 never moves theta; it is set for the invariant shift_t = n * mu_t.
    shift = _value_at(nesterov, count) * _value_at(momentum, count)
    return MomentumState(count=count, velocity=optax.tree.zeros_like(params), shift=shift)

  def update_fn(updates, state, params=None):
    del params
    mu = _value_at(momentum, state.count)
    eps = _value_at(learning_rate, state.count)
    count_inc = optax.safe_increment(state.count)
    shift_inc = _value_at(nesterov, count_inc) * _value_at(momentum, count_inc)
    velocity = jax.tree.map(
        lambda g, v: (mu * v - eps * g).astype(v.dtype), updates, state.velocity)
    # u = v_{t+1} + n mu_{t+1} v_{t+1} - n mu_t v_t, with the stored n mu_t (see docstring).
    new_updates = jax.tree.map(
        lambda w, v: (w + (shift_inc * w - state.shift * v)).astype(v.dtype),
        velocity, state.velocity)
    return new_updates, MomentumState(count=count_inc, velocity=velocity, shift=shift_inc)

  return optax.GradientTransformation(init_fn, update_fn)


def cm(learning_rate: optax.ScalarOrSchedule,
       momentum: optax.ScalarOrSchedule) -> optax.GradientTransformation:
  """Classical (Polyak) momentum; the params are the paper's theta.

  v_{t+1} = mu_t v_t - eps_t grad f(theta_t), theta_{t+1} = theta_t + v_{t+1} (see `momentum_rule`).

  Args:
    learning_rate: eps: float >= 0, traced scalar, or schedule (count -> eps_t).
    momentum: mu: float in [0, 1), traced scalar, or schedule (count -> mu_t).

  Returns:
    `momentum_rule(learning_rate, momentum, nesterov=0.)`; the params are theta.
  """
  return momentum_rule(learning_rate, momentum, nesterov=0.0)


def nag(learning_rate: optax.ScalarOrSchedule,
        momentum: optax.ScalarOrSchedule) -> optax.GradientTransformation:
  """Nesterov's accelerated gradient in the stored look-ahead form (see `momentum_rule`).

  The params hold phi_t = theta_t + mu_t v_t; gradients are taken at the params; `theta` gives
  theta_t. Exact for schedules of mu and eps.

  Args:
    learning_rate: eps: float >= 0, traced scalar, or schedule (count -> eps_t).
    momentum: mu: float in [0, 1), traced scalar, or schedule (count -> mu_t).

  Returns:
    `momentum_rule(learning_rate, momentum, nesterov=1.)`.
  """
  return momentum_rule(learning_rate, momentum, nesterov=1.0)


def _is_momentum_state(node) -> bool:
  return isinstance(node, MomentumState)


def theta(params: optax.Params, opt_state: optax.OptState) -> optax.Params:
  """The paper's iterate theta_t = params - n mu_t v_t (NAG: phi_t - mu_t v_t; CM: the params).

  The `MomentumState` is found anywhere in `opt_state` (e.g. inside `optax.chain`,
  `optax.named_chain` or `optax.inject_hyperparams` states) by searching the state pytree. Works
  under `jit` and `vmap`; it also works on a stacked population outside `vmap` when the params
  and the state share their leading batch axes (the shift broadcasts over the trailing axes).

  Args:
    params: the optimizer's params (phi_t for NAG), a pytree of arrays.
    opt_state: the state of an optimizer that contains exactly one `MomentumState`.

  Returns:
    theta_t, a pytree like `params`, in the params' dtypes.

  Raises:
    ValueError: if `opt_state` contains no `MomentumState` or more than one.
  """
  found = [node for node in jax.tree.leaves(opt_state, is_leaf=_is_momentum_state)
           if _is_momentum_state(node)]
  if len(found) != 1:
    raise ValueError(
        f"theta() needs an optimizer state with exactly one MomentumState (from mominit.cm, "
        f"mominit.nag or mominit.momentum_rule), found {len(found)} in a "
        f"{type(opt_state).__name__}")
  state = found[0]

  def unshift(p, v):
    shift = jnp.asarray(state.shift)
    shift = shift.reshape(shift.shape + (1,) * (jnp.ndim(v) - shift.ndim))
    return (p - shift * v).astype(jnp.result_type(p))

  return jax.tree.map(unshift, params, state.velocity)


__all__ = ["MomentumState", "momentum_rule", "cm", "nag", "theta"]
