"""Tests of mominit.initializers against closed forms, NumPy eigvals and sampling statistics."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import initializers


def _keys(n, seed=0):
  return jax.random.split(jax.random.key(seed), n)


@pytest.mark.parametrize("shape", [(300, 40), (16, 5), (15, 4), (6, 25)])
def test_sparse_exactly_k_distinct_rows_per_column(shape):
  k, num_keys = 15, 16
  kernels = np.asarray(
      jax.jit(jax.vmap(lambda key: initializers.sparse(k)(key, shape)))(_keys(num_keys)))
  assert kernels.shape == (num_keys, *shape)
  # N(0, 1) values are never exactly 0, so the non-zero count is the number of distinct rows.
  counts = (kernels != 0).sum(axis=1)
  np.testing.assert_array_equal(counts, min(k, shape[0]))
  # Different keys give different connection patterns (when there is a choice at all).
  if shape[0] > k:
    assert len({(kernel != 0).tobytes() for kernel in kernels}) == num_keys


def test_sparse_rows_are_uniformly_chosen():
  fan_in, fan_out, k = 100, 4000, 15
  kernel = np.asarray(jax.jit(initializers.sparse(k), static_argnums=1)(
      jax.random.key(3), (fan_in, fan_out)))
  # Each row is chosen by each column with probability k / fan_in: Binomial(4000, 0.15) per row.
  hits = (kernel != 0).sum(axis=1)
  p = k / fan_in
  mean, sd = fan_out * p, np.sqrt(fan_out * p * (1 - p))
  assert np.all(np.abs(hits - mean) < 5 * sd)
  # Pairs of rows are chosen independently of each other (no structured pattern such as
  # contiguous blocks): co-occurrence of rows 0 and 1 ~ fan_out * p * (k-1)/(fan_in-1).
  both = np.sum((kernel[0] != 0) & (kernel[1] != 0))
  expected = fan_out * p * (k - 1) / (fan_in - 1)
  assert abs(both - expected) < 5 * np.sqrt(expected) + 1


def test_sparse_values_are_gaussian_with_scale():
  scales = jnp.array([1.0, 2.0, 0.25])
  kernels = jax.jit(jax.vmap(lambda s: initializers.sparse(15, s)(jax.random.key(1), (200, 1000))))(
      scales)
  for scale, kernel in zip(np.asarray(scales, np.float64), np.asarray(kernels, np.float64)):
    values = kernel[kernel != 0]
    n = values.size
    assert n == 15 * 1000
    # Sampling error: sd(mean) = s / sqrt(n), sd(var) = s^2 sqrt(2 / n) for a Gaussian.
    assert abs(values.mean()) < 5 * scale / np.sqrt(n)
    assert abs(values.var() - scale**2) < 5 * scale**2 * np.sqrt(2 / n)


def test_sparse_traced_scale_one_trace():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def make(key, scale):
    return initializers.sparse(15, scale)(key, (40, 10))

  key = jax.random.key(7)
  base = np.asarray(make(key, 1.0))
  for scale in (0.5, 2.0, 4.0):
    np.testing.assert_allclose(np.asarray(make(key, scale)), scale * base, rtol=1e-6)


def test_default_dtype_follows_x64(x64):
  key = jax.random.key(0)
  for init in (initializers.sparse(), initializers.glorot_standard(), initializers.gaussian(0.1)):
    shapes = (jax.eval_shape(lambda k, i=init: i(k, (30, 4)), key),
              jax.eval_shape(lambda k, i=init: i(k, (30, 4), jnp.float32), key))
    assert [s.dtype for s in shapes] == [jnp.float64, jnp.float32]


@pytest.mark.parametrize("kwargs", [
    {"num_connections": 0}, {"num_connections": 1.5}, {"num_connections": True},
    {"scale": -1.0}, {"scale": float("nan")}, {"scale": np.ones(2)},
])
def test_sparse_rejects_bad_arguments(kwargs):
  with pytest.raises(ValueError):
    initializers.sparse(**kwargs)


def test_kernel_initializers_reject_non_matrix_shapes():
  key = jax.random.key(0)
  for init in (initializers.sparse(), initializers.glorot_standard(),
               initializers.glorot_normalized(), initializers.spectral_radius()):
    with pytest.raises(ValueError, match="2-D"):
      init(key, (3, 4, 5))
  with pytest.raises(ValueError, match="square"):
    initializers.spectral_radius()(key, (4, 5))
  with pytest.raises(ValueError):
    initializers.spectral_radius(0.0)
  with pytest.raises(ValueError):
    initializers.gaussian(-0.1)


@pytest.mark.parametrize("n,radius", [(100, 1.1), (7, 3.0)])
def test_spectral_radius_matches_numpy_eigvals(n, radius):
  mats = np.asarray(jax.jit(jax.vmap(
      lambda key: initializers.spectral_radius(radius)(key, (n, n))))(_keys(8)), np.float64)
  for w in mats:
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - radius) < 1e-3
  # The matrices are dense Gaussians (not e.g. a scaled identity) and differ between keys.
  assert np.all(mats != 0)
  assert not np.allclose(mats[0], mats[1])


def test_spectral_radius_traced_radius():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def make(key, radius):
    return initializers.spectral_radius(radius)(key, (20, 20))

  for radius in (1.1, 0.9, 2.0):
    w = np.asarray(make(jax.random.key(2), radius), np.float64)
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - radius) < 1e-3


@pytest.mark.parametrize("name,bound", [
    ("glorot_standard", lambda fi, fo: 1 / np.sqrt(fi)),
    ("glorot_normalized", lambda fi, fo: np.sqrt(6 / (fi + fo))),
])
@pytest.mark.parametrize("shape", [(400, 300), (50, 1000)])
def test_glorot_bounds_and_variance(name, bound, shape):
  w = np.asarray(jax.jit(getattr(initializers, name)(), static_argnums=1)(
      jax.random.key(5), shape), np.float64)
  b = bound(*shape)
  n = w.size
  assert np.all(np.abs(w) <= b)
  assert np.max(np.abs(w)) > b * (1 - 20 / n)  # Fills the interval up to its ends.
  # U[-b, b]: mean 0 with sd b / sqrt(3n); E w^2 = b^2 / 3 with sd sqrt(4 / 45) b^2 / sqrt(n).
  assert abs(w.mean()) < 5 * b / np.sqrt(3 * n)
  assert abs(np.mean(w**2) - b**2 / 3) < 5 * np.sqrt(4 / 45) * b**2 / np.sqrt(n)


def test_gaussian_traced_stddev_and_statistics():
  stddevs = jnp.array([0.01, 0.1, 1.0])
  samples = jax.jit(jax.vmap(lambda s: initializers.gaussian(s)(jax.random.key(0), (200, 100))))(
      stddevs)
  n = 200 * 100
  for s, w in zip(np.asarray(stddevs, np.float64), np.asarray(samples, np.float64)):
    assert abs(w.mean()) < 5 * s / np.sqrt(n)
    assert abs(w.var() - s**2) < 5 * s**2 * np.sqrt(2 / n)


def test_scaled_and_constant():
  key = jax.random.key(4)
  base = initializers.glorot_normalized()(key, (6, 5))
  np.testing.assert_allclose(initializers.scaled(initializers.glorot_normalized(), -3.0)(
      key, (6, 5)), -3.0 * np.asarray(base), rtol=1e-6)
  np.testing.assert_array_equal(initializers.constant(0.5)(key, (3, 2)), np.full((3, 2), 0.5))
  np.testing.assert_array_equal(initializers.constant(jnp.array([1.0, 2.0]))(key, (2,)),
                                [1.0, 2.0])
  with pytest.raises(ValueError):
    initializers.scaled(0.5, 2.0)


def test_sparse_spectral_radius_has_15_inputs_per_unit_and_radius_1_1(x64):
  """Table 4's W_hh: exactly 15 non-zeros per column (unit), then spectral radius 1.1, checked
  in float64 against NumPy's eigvals."""
  n, k = 100, 15
  mats = np.asarray(jax.jit(jax.vmap(lambda key: initializers.spectral_radius(
      1.1, num_connections=k)(key, (n, n), jnp.float64)))(_keys(6)))
  assert mats.dtype == np.float64
  for w in mats:
    np.testing.assert_array_equal((w != 0).sum(axis=0), k)  # per unit (column), distinct rows
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - 1.1) < 1e-5
  assert not np.array_equal(mats[0] != 0, mats[1] != 0)


def test_sparse_with_replacement_is_hfdemos_variant():
  """replace=True draws rows with replacement (Martens' HFDemo): at most k distinct inputs per
  unit; with fan_in 25 the expected count is 25 (1 - (24/25)^15) = 11.39."""
  fan_in, fan_out, k = 25, 4000, 15
  w = np.asarray(initializers.sparse(k, replace=True)(jax.random.key(3), (fan_in, fan_out)))
  counts = (w != 0).sum(axis=0)
  assert counts.max() <= k and counts.min() >= 1
  expected = fan_in * (1 - (1 - 1 / fan_in) ** k)
  # A column's count has a standard deviation near 1.3, the mean of 4000 near 0.02: 0.15 is 7.
  assert abs(counts.mean() - expected) < 0.15
  nonzero = w[w != 0]
  assert abs(nonzero.std() - 1.0) < 0.03
