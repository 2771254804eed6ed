"""RNNprop and DMoptimizer transforms, against float64 NumPy references and closed forms."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mominit import lopt
from mominit.lopt import networks, transforms


def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _np_net(theta, features, state):
  """float64 NumPy reference of networks.apply (equations of the module docstring)."""
  theta = jax.tree.map(lambda a: np.asarray(a, np.float64), theta)
  x = np.asarray(features, np.float64)
  if "in" in theta:
    z = x @ theta["in"]["w"] + theta["in"]["b"]
    x = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
  new = np.array(state, np.float64)
  layers = sum(1 for k in theta if k.startswith("lstm_"))
  for l in range(layers):
    h, c = new[:, l, 0], new[:, l, 1]
    gates = np.concatenate([x, h], -1) @ theta[f"lstm_{l}"]["w"] + theta[f"lstm_{l}"]["b"]
    i, j, f, o = np.split(gates, 4, -1)
    c = _np_sigmoid(f + 1.0) * c + _np_sigmoid(i) * np.tanh(j)
    h = _np_sigmoid(o) * np.tanh(c)
    new[:, l, 0], new[:, l, 1] = h, c
    x = h
  return (x @ theta["out"]["w"] + theta["out"]["b"])[:, 0], new


def _np_rnnprop(theta, grads, alpha=0.1, b1=0.95, b2=0.95, eps=1e-8):
  """float64 NumPy RNNprop on a sequence of flat gradients [T, N]: the steps [T, N]."""
  n = grads.shape[1]
  m, v, state, steps = np.zeros(n), np.zeros(n), np.zeros((n, 2, 2, 20)), []
  for t, g in enumerate(np.asarray(grads, np.float64), start=1):
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    s = np.sqrt(v / (1 - b2**t)) + eps
    out, state = _np_net(theta, np.stack([g / s, m / (1 - b1**t) / s], -1), state)
    steps.append(-alpha * np.tanh(out))
  return np.array(steps)


def _run(tx, grads_seq, params):
  state = tx.init(params)
  out = []
  for g in grads_seq:
    u, state = tx.update(g, state, params)
    out.append(u)
  return out


def test_meta_parameter_counts():
  # RNNprop: dense 2x20+20, two LSTMs 4*20*(20+20)+80, dense 20+1. DM: LSTM 4*20*(2+20)+80, ...
  assert 2 * 20 + 20 + 2 * (4 * 20 * 40 + 80) + 21 == 6641
  assert networks.count(lopt.init_rnnprop(jax.random.PRNGKey(0))) == 6641
  assert networks.count(lopt.init_dm_lstm(jax.random.PRNGKey(0))) == 4 * 20 * 22 + 80 + 3280 + 21
  assert networks.count(lopt.init_rnnprop(jax.random.PRNGKey(0), hidden=8, layers=1)) == (
      2 * 8 + 8 + 4 * 8 * 16 + 32 + 9)


def test_dense_init_is_truncated_normal_01():
  theta = lopt.init_rnnprop(jax.random.PRNGKey(3), hidden=200)
  w = np.asarray(theta["in"]["w"]).ravel()
  assert np.max(np.abs(w)) <= 0.2 + 1e-7  # truncated at 2 std
  assert 0.07 < w.std() < 0.1  # std of N(0, 0.1^2) truncated at 2 sigma is 0.088
  assert np.all(np.asarray(theta["out"]["b"]) == 0)


def test_features_are_scale_invariant_and_normalised_at_t1(x64):
  """In float64 (the property of the equations; float32 rounding of m after cancellation is
  a separate matter): rescaling a coordinate's gradients by c changes the features by < 1e-6
  where |g| >> eps."""
  rng = np.random.default_rng(0)
  g_seq = rng.normal(size=(6, 50)) + 0.5
  for c in (0.1, 7.0, 1e3):  # |g| ~ 0.1 .. 1e3 >> eps = 1e-8
    feats = []
    for scale in (1.0, c):
      m = v = np.zeros(50)
      for t, g in enumerate(g_seq * scale, start=1):
        m, v = 0.95 * m + 0.05 * g, 0.95 * v + 0.05 * g * g
      feats.append(np.asarray(transforms.rnnprop_features(jnp.asarray(g), m, v, t)))
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-6, rtol=0)
  g = jnp.asarray(rng.normal(size=100), jnp.float32)
  f1 = np.asarray(transforms.rnnprop_features(g, 0.05 * g, 0.05 * g * g, 1))
  np.testing.assert_allclose(f1[:, 0], g / np.abs(g), atol=1e-6)
  np.testing.assert_allclose(f1[:, 1], g / np.abs(g), atol=1e-6)


def test_rnnprop_matches_float64_reference():
  theta = lopt.init_rnnprop(jax.random.PRNGKey(1))
  theta["out"]["w"] = theta["out"]["w"] * 10.0  # outputs away from 0, so tanh matters
  rng = np.random.default_rng(1)
  grads = rng.normal(size=(5, 30)).astype(np.float32) * np.logspace(-3, 2, 30, dtype=np.float32)
  steps = _run(lopt.rnnprop(theta), [jnp.asarray(g) for g in grads], jnp.zeros(30))
  np.testing.assert_allclose(np.stack(steps), _np_rnnprop(theta, grads), atol=2e-6, rtol=1e-4)


def test_dm_lstm_matches_float64_reference():
  theta = lopt.init_dm_lstm(jax.random.PRNGKey(2))
  rng = np.random.default_rng(2)
  grads = rng.normal(size=(4, 20)).astype(np.float32) * np.logspace(-6, 1, 20, dtype=np.float32)
  grads[0, 0] = 0.0
  for variant, (k, scale) in (("lv2017", (10.0, 0.1)), ("deepmind", (5.0, 0.01))):
    steps = _run(lopt.dm_lstm(theta, variant), [jnp.asarray(g) for g in grads], jnp.zeros(20))
    state, ref = np.zeros((20, 2, 2, 20)), []
    for g in grads.astype(np.float64):
      with np.errstate(divide="ignore"):
        feats = np.stack([np.maximum(np.log(np.abs(g)), -k) / k,
                          np.clip(g * np.exp(k), -1, 1)], -1)
      out, state = _np_net(theta, feats, state)
      ref.append(scale * out)
    np.testing.assert_allclose(np.stack(steps), np.array(ref), atol=1e-7, rtol=1e-4)
  with pytest.raises(ValueError, match="variant"):
    lopt.dm_lstm(theta, "adam")


def test_steps_bounded_by_alpha_and_zero_with_zero_output_layer():
  theta = lopt.init_rnnprop(jax.random.PRNGKey(4))
  theta["out"] = {"w": theta["out"]["w"] * 1e3, "b": jnp.full((1,), 50.0)}  # saturates tanh
  rng = np.random.default_rng(4)
  grads = [jnp.asarray(rng.normal(size=200) * 1e4, jnp.float32) for _ in range(4)]
  for alpha in (0.1, 0.003):
    steps = np.stack(_run(lopt.rnnprop(theta, alpha=alpha), grads, jnp.zeros(200)))
    assert np.all(np.abs(steps) <= alpha * (1 + 1e-7))
    assert np.max(np.abs(steps)) > 0.99 * alpha
  theta["out"] = jax.tree.map(jnp.zeros_like, theta["out"])
  for tx in (lopt.rnnprop(theta), lopt.dm_lstm({**lopt.init_dm_lstm(jax.random.PRNGKey(0)),
                                                 "out": theta["out"]})):
    assert all(np.all(np.asarray(s) == 0.0) for s in _run(tx, grads, jnp.zeros(200)))


def test_flat_vector_and_pytree_get_identical_updates():
  theta = lopt.init_rnnprop(jax.random.PRNGKey(5))
  rng = np.random.default_rng(5)
  grads = [rng.normal(size=23).astype(np.float32) for _ in range(3)]
  # Leaves in the pytree's own order (a, then the tuple b) hold the flat vector's numbers in
  # order: bit-identical updates.
  split = lambda g: {"a": jnp.asarray(g[:12].reshape(3, 4)), "b": (jnp.asarray(g[12:15]),
                                                                   jnp.asarray(g[15:]))}
  for tx in (lopt.rnnprop(theta), lopt.dm_lstm(lopt.init_dm_lstm(jax.random.PRNGKey(6)))):
    flat = _run(tx, [jnp.asarray(g) for g in grads], jnp.zeros(23))
    tree = _run(tx, [split(g) for g in grads], split(np.zeros(23, np.float32)))
    for f, t in zip(flat, tree):
      back = np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])
      np.testing.assert_array_equal(np.asarray(f), back)
  # In another order the same numbers sit at other rows of the network's matmuls, where XLA's
  # vectorised loops may round differently: equal to float32 rounding.
  perm = rng.permutation(23)
  flat = _run(lopt.rnnprop(theta), [jnp.asarray(g) for g in grads], jnp.zeros(23))
  permuted = _run(lopt.rnnprop(theta), [jnp.asarray(g[perm]) for g in grads], jnp.zeros(23))
  for f, p in zip(flat, permuted):
    np.testing.assert_allclose(np.asarray(f)[perm], p, rtol=1e-6, atol=1e-12)


def _linear_run(theta, c, x0, steps):
  """sum(c * x_T) after `steps` RNNprop updates on the linear loss c . x (g = c, constant),
  with stop_gradient on the optimizee gradient (first order, as in meta-training)."""
  tx = lopt.rnnprop(theta)

  def body(carry, _):
    x, state = carry
    g = jax.lax.stop_gradient(jax.grad(lambda y: jnp.sum(c * y))(x))
    u, state = tx.update(g, state, x)
    return (optax.apply_updates(x, u), state), None

  (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
  return jnp.sum(c * x)


def test_first_order_meta_gradient_equals_hand_written_for_constant_gradient():
  """Loss c . x: x_T = x_0 - alpha sum_t tanh(o_t). With a zero output kernel o_t = b, so
  dL/db = -T alpha sech^2(b) sum(c); dL/dW_out = -alpha sech^2(b) sum_t sum_i c_i h2_{t,i}
  (h2 from the float64 reference); every other meta-gradient is exactly 0."""
  theta = lopt.init_rnnprop(jax.random.PRNGKey(7))
  b, steps = 0.3, 6
  theta["out"] = {"w": jnp.zeros((20, 1)), "b": jnp.full((1,), b)}
  rng = np.random.default_rng(7)
  c = jnp.asarray(rng.normal(size=10), jnp.float32)
  grad = jax.grad(_linear_run)(theta, c, jnp.zeros(10), steps)
  sech2 = 1.0 / np.cosh(b) ** 2
  np.testing.assert_allclose(grad["out"]["b"], [-steps * 0.1 * sech2 * float(np.sum(c))],
                             rtol=1e-5)
  cn = np.asarray(c, np.float64)
  state, hsum = np.zeros((10, 2, 2, 20)), np.zeros(20)
  m = v = np.zeros(10)
  for t in range(1, steps + 1):
    m, v = 0.95 * m + 0.05 * cn, 0.95 * v + 0.05 * cn * cn
    s = np.sqrt(v / (1 - 0.95**t)) + 1e-8
    _, state = _np_net(theta, np.stack([cn / s, m / (1 - 0.95**t) / s], -1), state)
    hsum += cn @ state[:, 1, 0]
  np.testing.assert_allclose(grad["out"]["w"][:, 0], -0.1 * sech2 * hsum, rtol=1e-4, atol=1e-7)
  for name in ("in", "lstm_0", "lstm_1"):
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(grad[name]))


def test_meta_gradient_through_a_run_compiles_once_for_every_theta():
  c = jnp.linspace(-1.0, 1.0, 8)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def meta_grad(theta):
    return jax.grad(_linear_run)(theta, c, jnp.zeros(8), 4)

  for seed in range(3):
    g = meta_grad(lopt.init_rnnprop(jax.random.PRNGKey(seed)))
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g))
