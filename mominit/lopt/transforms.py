"""RNNprop and DMoptimizer as optax transforms, with the meta-parameters as an argument.

Both apply one coordinatewise network (`mominit.lopt.networks`) to every coordinate of any
params pytree: the leaves are flattened and concatenated into one [N] vector, the network runs
once on [N, 2] features, and its steps are split back into the pytree. So a flat vector and the
same numbers split into a pytree get the same updates.

`theta` may be a traced pytree (e.g. the argument of `jax.grad` or of a jitted meta-step): the
transform closes over it, so a training run is a differentiable function of theta and one
compiled program serves every theta value.

References:
  K. Lv, S. Jiang, J. Li. Learning Gradient Descent: Better Generalization and Longer Horizons.
  ICML 2017 (RNNprop; their re-implementation of DMoptimizer).
  M. Andrychowicz et al. Learning to learn by gradient descent by gradient descent. NIPS 2016
  (DMoptimizer, DeepMind's code).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mominit.lopt import networks

EPS = 1e-8

# DMoptimizer as Lv et al. re-implemented it and as DeepMind's own code has it. `k` is the
# log-and-sign preprocessing constant, `scale` multiplies the linear output, `meta_loss` is how
# the unroll's losses are combined and `meta_learning_rate` the Adam rate of meta-training.
DM_VARIANTS = {
    "lv2017": {"k": 10.0, "scale": 0.1, "meta_loss": "mean", "meta_learning_rate": 1e-4},
    "deepmind": {"k": 5.0, "scale": 0.01, "meta_loss": "sum", "meta_learning_rate": 1e-3},
}


class RNNpropState(NamedTuple):
  """State of `rnnprop`.

  Attributes:
    count: t, updates done so far (int32 scalar).
    mu: first moment m_t of the gradient, like the params.
    nu: second moment v_t of the gradient, like the params.
    hidden: the network's recurrent state, [N, L, 2, H] for N coordinates in all leaves.
  """
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates
  hidden: jax.Array


class DMState(NamedTuple):
  """State of `dm_lstm`: the update count t (int32) and the recurrent state [N, L, 2, H]."""
  count: jax.Array
  hidden: jax.Array


def _flat(tree) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  return jnp.concatenate([jnp.ravel(x) for x in leaves]) if leaves else jnp.zeros((0,))


def _unflat(vector: jax.Array, like):
  leaves, treedef = jax.tree.flatten(like)
  out, start = [], 0
  for leaf in leaves:
    out.append(vector[start:start + leaf.size].reshape(leaf.shape).astype(leaf.dtype))
    start += leaf.size
  return jax.tree.unflatten(treedef, out)


def _size(tree) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(tree))


def rnnprop_features(g, m, v, t, beta1=0.95, beta2=0.95, eps=EPS):
  r"""RNNprop's two input features of a coordinate, from its moments after t >= 1 updates.

  .. math::

    \hat m = m / (1 - \beta_1^t), \quad s = \sqrt{v / (1 - \beta_2^t)} + \epsilon, \quad
    \text{features} = (g / s, \hat m / s).

  Both are invariant to multiplying a coordinate's gradients by c > 0 (up to eps); at t = 1
  both equal g / (|g| + eps).

  Args:
    g, m, v: arrays of one shape: the gradient, the first and the second moment.
    t: the update count including this one (>= 1), scalar.
    beta1, beta2, eps: the moments' decay rates and the denominator's epsilon.

  Returns:
    [..., 2] array: g / s and m_hat / s.
  """
  t = jnp.asarray(t, jnp.result_type(g))
  m_hat = m / (1.0 - jnp.power(beta1, t))
  s = jnp.sqrt(v / (1.0 - jnp.power(beta2, t))) + eps
  return jnp.stack([g / s, m_hat / s], axis=-1)


def dm_features(g, k=10.0):
  """DMoptimizer's log-and-sign features: [max(log|g| / k, -1), clip(g e^k, -1, 1)], [..., 2].

  k = 10 is Lv et al.'s [max(log|g|, -10) / 10, ...]; DeepMind's code uses k = 5.
  """
  log = jnp.log(jnp.maximum(jnp.abs(g), jnp.exp(-k))) / k  # = max(log|g| / k, -1), finite at 0
  return jnp.stack([log, jnp.clip(g * jnp.exp(k), -1.0, 1.0)], axis=-1)


def rnnprop(theta, alpha=0.1, beta1=0.95, beta2=0.95, eps=EPS) -> optax.GradientTransformation:
  r"""RNNprop (Lv, Jiang & Li 2017): a learned, coordinatewise, Adam-normalised optimizer.

  Per coordinate, with gradient g_t and t = 1, 2, ...:

  .. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,

    (o_t, h_t) = \mathrm{net}_\theta(\text{features}(g_t, m_t, v_t, t), h_{t-1}), \quad
    x_{t+1} = x_t - \alpha \tanh(o_t),

  features as in `rnnprop_features`, net = dense(2 -> 20, ELU), 2 x LSTM(20), dense(20 -> 1).
  Every step is bounded by alpha in each coordinate.

  Args:
    theta: meta-parameters (`networks.init_rnnprop`), possibly traced.
    alpha: the step bound (0.1 in the paper).
    beta1, beta2: moment decay rates (0.95 in the paper).
    eps: denominator epsilon.

  Returns:
    An `optax.GradientTransformation` with state `RNNpropState`.
  """

  def init_fn(params):
    zeros = optax.tree.zeros_like(params)
    return RNNpropState(jnp.zeros([], jnp.int32), zeros, zeros,
                        networks.zero_state(theta, _size(params)))

  def update_fn(updates, state, params=None):
    del params
    count = optax.safe_increment(state.count)
    mu = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state.nu, updates)
    features = rnnprop_features(_flat(updates), _flat(mu), _flat(nu), count, beta1, beta2, eps)
    out, hidden = networks.apply(theta, features, state.hidden)
    steps = _unflat(-alpha * jnp.tanh(out), updates)
    return steps, RNNpropState(count, mu, nu, hidden)

  return optax.GradientTransformation(init_fn, update_fn)


def dm_lstm(theta, variant: str = "lv2017", k=None, scale=None) -> optax.GradientTransformation:
  r"""DMoptimizer (Andrychowicz et al. 2016): a coordinatewise LSTM on log-and-sign features.

  .. math::

    (o_t, h_t) = \mathrm{net}_\theta(\text{dm\_features}(g_t, k), h_{t-1}), \quad
    x_{t+1} = x_t + \text{scale} \cdot o_t,

  net = 2 x LSTM(20), dense(20 -> 1). The step is not bounded.

  Args:
    theta: meta-parameters (`networks.init_dm_lstm`), possibly traced.
    variant: "lv2017" (Lv et al.'s re-implementation: k = 10, scale 0.1) or "deepmind"
      (DeepMind's code: k = 5, scale 0.01); see `DM_VARIANTS`.
    k, scale: override the variant's values.

  Returns:
    An `optax.GradientTransformation` with state `DMState`.

  Raises:
    ValueError: unknown variant.
  """
  if variant not in DM_VARIANTS:
    raise ValueError(f"variant must be one of {sorted(DM_VARIANTS)}, got {variant!r}")
  k = DM_VARIANTS[variant]["k"] if k is None else k
  scale = DM_VARIANTS[variant]["scale"] if scale is None else scale

  def init_fn(params):
    return DMState(jnp.zeros([], jnp.int32), networks.zero_state(theta, _size(params)))

  def update_fn(updates, state, params=None):
    del params
    out, hidden = networks.apply(theta, dm_features(_flat(updates), k), state.hidden)
    return _unflat(scale * out, updates), DMState(optax.safe_increment(state.count), hidden)

  return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["rnnprop", "dm_lstm", "rnnprop_features", "dm_features", "RNNpropState", "DMState",
           "DM_VARIANTS"]
