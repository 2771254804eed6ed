"""Tests of mominit.losses against hand-computed values and float64 NumPy references."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import losses as _losses


class _Jitted:
  """``mominit.losses`` with every function jitted: one compile per call signature instead of
  one per primitive (eager), which keeps these tests fast."""

  def __getattr__(self, name):
    return jax.jit(getattr(_losses, name))


losses = _Jitted()


def _np_log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _sequence_batch(seed, num_outputs=3):
  rng = np.random.default_rng(seed)
  pred = rng.normal(size=(4, 6, num_outputs))
  target = rng.normal(size=(4, 6, num_outputs))
  mask = (rng.uniform(size=(4, 6)) < 0.5).astype(np.float64)
  mask[0, -1] = 1.0  # At least one position.
  return pred, target, mask


def test_hand_values():
  pred, target = np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))
  assert float(losses.squared_error(pred, target)) == pytest.approx((5 + 25) / 2)  # No 1/2.
  # Logit 0 -> p = 1/2 -> log 2 per output, 2 outputs per case.
  assert float(losses.sigmoid_cross_entropy(np.zeros((3, 2)), np.full((3, 2), 0.3))) == (
      pytest.approx(2 * np.log(2), rel=1e-6))
  # Three masked positions, one wrong by more than 0.04 -> 1/3; the unmasked one is ignored.
  p = np.array([[[0.5], [1.0], [2.0], [9.0]]])
  t = np.array([[[0.53], [1.05], [2.0], [0.0]]])
  m = np.array([[1.0, 1.0, 1.0, 0.0]])
  assert float(losses.real_zero_one(p, t, m)) == pytest.approx(1 / 3)
  assert float(losses.masked_squared_error(p, t, m)) == pytest.approx(
      (0.03**2 + 0.05**2) / 3, rel=1e-5)
  logits = np.array([[[2.0, 1.0], [0.0, 3.0], [5.0, 0.0]]])
  onehot = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
  assert float(losses.symbol_zero_one(logits, onehot, np.array([[1.0, 1.0, 0.0]]))) == 0.5


def test_autoencoder_losses_match_numpy(x64):
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=3.0, size=(5, 7))
  target = rng.uniform(size=(5, 7))
  p = 1 / (1 + np.exp(-logits))
  xent = np.mean(np.sum(-(target * np.log(p) + (1 - target) * np.log(1 - p)), axis=1))
  np.testing.assert_allclose(losses.sigmoid_cross_entropy(logits, target), xent, rtol=1e-12)
  se = np.mean(np.sum((logits - target)**2, axis=1))
  np.testing.assert_allclose(losses.squared_error(logits, target), se, rtol=1e-12)


def test_sigmoid_cross_entropy_is_stable_for_large_logits():
  logits = jnp.array([[1000.0, -1000.0, 1000.0, -1000.0]])
  target = jnp.array([[1.0, 0.0, 0.0, 1.0]])
  # Exact: softplus(z) - t z = 0, 0, 1000, 1000.
  value, grad = jax.value_and_grad(losses.sigmoid_cross_entropy)(logits, target)
  assert float(value) == pytest.approx(2000.0)
  np.testing.assert_allclose(grad, [[0.0, 0.0, 1.0, -1.0]], atol=1e-6)


def test_sequence_losses_match_numpy(x64):
  pred, target, mask = _sequence_batch(1)
  n = mask.sum()
  se = np.sum(((pred - target)**2).sum(-1) * mask) / n
  np.testing.assert_allclose(losses.masked_squared_error(pred, target, mask), se, rtol=1e-12)

  onehot = np.eye(3)[np.argmax(target, -1)]
  xent = np.sum(-(onehot * _np_log_softmax(pred)).sum(-1) * mask) / n
  np.testing.assert_allclose(losses.masked_softmax_cross_entropy(pred, onehot, mask), xent,
                             rtol=1e-12)

  sym = np.sum((np.argmax(pred, -1) != np.argmax(onehot, -1)) * mask) / n
  np.testing.assert_allclose(losses.symbol_zero_one(pred, onehot, mask), sym, rtol=1e-12)

  near = target + np.random.default_rng(2).uniform(-0.06, 0.06, size=target.shape)
  real = np.sum(np.any(np.abs(near - target) > 0.04, -1) * mask) / n
  assert 0 < real < 1  # The example exercises both outcomes.
  np.testing.assert_allclose(losses.real_zero_one(near, target, mask), real, rtol=1e-12)


def test_all_zero_mask_gives_zero_and_finite_gradients():
  pred, target, _ = _sequence_batch(3)
  mask = np.zeros(pred.shape[:2])
  onehot = np.eye(3)[np.argmax(target, -1)]
  for fn, args in ((losses.masked_squared_error, (target,)),
                   (losses.masked_softmax_cross_entropy, (onehot,)),
                   (losses.real_zero_one, (target,)), (losses.symbol_zero_one, (onehot,))):
    assert float(fn(pred, *args, mask)) == 0.0
  grad = jax.grad(losses.masked_squared_error)(jnp.asarray(pred), target, mask)
  assert np.all(np.isfinite(grad)) and not np.any(grad)


def test_real_zero_one_traced_tol():
  pred, target, mask = _sequence_batch(4, num_outputs=1)
  target = pred + np.linspace(-0.1, 0.1, pred.size).reshape(pred.shape)
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def err(tol):
    return losses.real_zero_one(pred, target, mask, tol)

  tols = (0.02, 0.04, 0.08)
  for tol in tols:
    expected = np.sum((np.abs(pred - target) > tol)[..., 0] * mask) / mask.sum()
    np.testing.assert_allclose(err(tol), expected, rtol=1e-6)
  batched = jax.vmap(lambda t: losses.real_zero_one(pred, target, mask, t))(jnp.array(tols))
  np.testing.assert_allclose(batched, [err(t) for t in tols])


def test_shape_errors():
  # Unjitted: a Python tol is validated eagerly (a traced one cannot be).
  a = np.zeros((2, 3, 4))
  with pytest.raises(ValueError, match="same shape"):
    _losses.squared_error(np.zeros((2, 3)), np.zeros((2, 4)))
  with pytest.raises(ValueError, match="same shape"):
    _losses.sigmoid_cross_entropy(np.zeros((2, 3)), np.zeros((3, 2)))
  with pytest.raises(ValueError, match=r"mask \[B, L\]"):
    _losses.masked_squared_error(a, a, np.ones((2, 4)))
  with pytest.raises(ValueError, match=r"\[B, L, O\]"):
    _losses.symbol_zero_one(a[0], a[0], np.ones((3,)))
  with pytest.raises(ValueError, match="tol"):
    _losses.real_zero_one(a, a, np.ones((2, 3)), tol=-0.1)
