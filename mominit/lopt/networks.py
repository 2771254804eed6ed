"""The coordinatewise networks of RNNprop and DMoptimizer: meta-parameters, init and forward.

One small network is shared by every coordinate of the optimizee: it maps a [N, F] array of
per-coordinate input features (N coordinates, F = 2 features) and a [N, L, 2, H] recurrent state
(L LSTM layers, (h, c), H units) to one output per coordinate. The meta-parameters `theta` are a
plain dict pytree of arrays, so they can be traced, differentiated and vmapped.

LSTM layers follow TensorFlow's `BasicLSTMCell` as the authors' code used it: gate
pre-activations [i, j, f, o] = [x, h] W + b, c' = sigmoid(f + forget_bias) c + sigmoid(i) tanh(j),
h' = sigmoid(o) tanh(c'), forget_bias = 1 (a constant, not a parameter), no peepholes.

Initialisation (LEARNED_OPTIMIZER.md): dense layers ~ N(0, 0.1^2) truncated at 2 standard
deviations, biases 0. The authors' code leaves the LSTM weight init to TensorFlow's default;
we pin Glorot uniform over the [fan_in + H, 4H] kernel (biases 0) and document that choice.
"""
import math

import jax
import jax.numpy as jnp

HIDDEN = 20
LAYERS = 2
FEATURES = 2
FORGET_BIAS = 1.0
DENSE_STD = 0.1


def _dense(key, fan_in: int, fan_out: int) -> dict:
  w = DENSE_STD * jax.random.truncated_normal(key, -2.0, 2.0, (fan_in, fan_out), jnp.float32)
  return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}


def _lstm(key, fan_in: int, hidden: int) -> dict:
  limit = math.sqrt(6.0 / (fan_in + hidden + 4 * hidden))
  w = jax.random.uniform(key, (fan_in + hidden, 4 * hidden), jnp.float32, -limit, limit)
  return {"w": w, "b": jnp.zeros((4 * hidden,), jnp.float32)}


def init_rnnprop(key: jax.Array, hidden: int = HIDDEN, layers: int = LAYERS) -> dict:
  """Meta-parameters of RNNprop: dense F -> H (ELU), `layers` LSTM(H), dense H -> 1.

  Args:
    key: PRNG key.
    hidden: H, units per layer (20 in the paper).
    layers: L, stacked LSTM layers (2 in the paper).

  Returns:
    {"in": {"w" [2, H], "b" [H]}, "lstm_0".."lstm_{L-1}": {"w" [2H, 4H], "b" [4H]},
    "out": {"w" [H, 1], "b" [1]}}; 6,641 numbers for H = 20, L = 2.
  """
  keys = jax.random.split(key, layers + 2)
  theta = {"in": _dense(keys[0], FEATURES, hidden), "out": _dense(keys[-1], hidden, 1)}
  for layer in range(layers):
    theta[f"lstm_{layer}"] = _lstm(keys[layer + 1], hidden, hidden)
  return theta


def init_dm_lstm(key: jax.Array, hidden: int = HIDDEN, layers: int = LAYERS) -> dict:
  """Meta-parameters of DMoptimizer: `layers` LSTM(H) on the 2 features, then dense H -> 1.

  Returns:
    {"lstm_0": {"w" [2 + H, 4H], ...}, "lstm_1": {"w" [2H, 4H], ...}, "out": {"w" [H, 1],
    "b" [1]}}; 5,141 numbers for H = 20, L = 2.
  """
  keys = jax.random.split(key, layers + 1)
  theta = {"out": _dense(keys[-1], hidden, 1)}
  for layer in range(layers):
    theta[f"lstm_{layer}"] = _lstm(keys[layer], FEATURES if layer == 0 else hidden, hidden)
  return theta


def count(theta) -> int:
  """Number of meta-parameters (scalars) in a theta pytree."""
  return sum(int(x.size) for x in jax.tree.leaves(theta))


def num_layers(theta: dict) -> int:
  """L, the number of LSTM layers of a theta."""
  return sum(1 for name in theta if name.startswith("lstm_"))


def hidden_size(theta: dict) -> int:
  """H, the units per LSTM layer of a theta."""
  return int(theta["lstm_0"]["b"].shape[-1]) // 4


def zero_state(theta: dict, n: int, dtype=jnp.float32) -> jax.Array:
  """The initial recurrent state for n coordinates: zeros [n, L, 2, H]."""
  return jnp.zeros((n, num_layers(theta), 2, hidden_size(theta)), dtype)


def lstm_cell(layer: dict, x: jax.Array, h: jax.Array, c: jax.Array):
  """One LSTM step for a batch of coordinates: x [N, I], h, c [N, H] -> (h', c')."""
  gates = jnp.concatenate([x, h], axis=-1) @ layer["w"] + layer["b"]
  i, j, f, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f + FORGET_BIAS) * c + jax.nn.sigmoid(i) * jnp.tanh(j)
  return jax.nn.sigmoid(o) * jnp.tanh(c), c


def apply(theta: dict, features: jax.Array, state: jax.Array):
  """The network on every coordinate at once.

  Args:
    theta: `init_rnnprop` (has an "in" layer: ELU dense first) or `init_dm_lstm` meta-parameters.
    features: [N, 2] input features.
    state: [N, L, 2, H] recurrent state (h, c per layer).

  Returns:
    (out [N], new state [N, L, 2, H]): the linear output layer's value per coordinate.
  """
  x = features.astype(theta["out"]["w"].dtype)
  if "in" in theta:
    x = jax.nn.elu(x @ theta["in"]["w"] + theta["in"]["b"])
  new = []
  for layer in range(num_layers(theta)):
    h, c = lstm_cell(theta[f"lstm_{layer}"], x, state[:, layer, 0], state[:, layer, 1])
    new.append(jnp.stack([h, c], axis=1))
    x = h
  out = x @ theta["out"]["w"] + theta["out"]["b"]
  return out[:, 0], jnp.stack(new, axis=1).astype(state.dtype)


def matmul_flops(theta: dict) -> int:
  """FLOPs of the network's matmuls for one coordinate and one forward step (2 per MAC)."""
  return sum(2 * int(math.prod(layer["w"].shape)) for layer in jax.tree.leaves(
      theta, is_leaf=lambda x: isinstance(x, dict) and "w" in x))


__all__ = ["init_rnnprop", "init_dm_lstm", "apply", "count", "zero_state", "lstm_cell",
           "num_layers", "hidden_size", "matmul_flops", "HIDDEN", "LAYERS"]
