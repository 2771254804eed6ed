"""Tests of mominit.schedules against hand-computed values of the paper's closed forms."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import schedules

# t -> 1 - 1/(2k), k = floor(t / 250) + 1, worked out by hand.
SUTSKEVER_250 = {
    0: 1 - 1 / 2, 249: 1 - 1 / 2, 250: 1 - 1 / 4, 499: 1 - 1 / 4, 500: 1 - 1 / 6,
    999: 1 - 1 / 8, 1000: 1 - 1 / 10, 1749: 1 - 1 / 14, 1750: 1 - 1 / 16,
    10**6: 1 - 1 / 8002,
}
MU_MAXES = [0.0, 0.5, 0.9, 0.99, 0.995, 0.999]


@pytest.mark.parametrize("mu_max", MU_MAXES)
def test_sutskever_momentum_closed_form_float64(x64, mu_max):
  schedule = schedules.sutskever_momentum(mu_max)
  for t, uncapped in SUTSKEVER_250.items():
    value = schedule(t)
    assert value.dtype == jnp.float64
    assert abs(float(value) - min(uncapped, mu_max)) <= 1e-15, t


def test_sutskever_momentum_float32_and_vectorised_counts():
  counts = jnp.array(list(SUTSKEVER_250), dtype=jnp.int32)
  for mu_max in MU_MAXES:
    values = schedules.sutskever_momentum(mu_max)(counts)
    assert values.dtype == jnp.float32 and values.shape == counts.shape
    expected = np.minimum(np.array(list(SUTSKEVER_250.values()), np.float32), np.float32(mu_max))
    np.testing.assert_allclose(values, expected, rtol=1e-7)


def test_sutskever_momentum_other_period(x64):
  schedule = schedules.sutskever_momentum(0.97, period=10)
  # k = t // 10 + 1: t = 9 -> 1/2 off, t = 10 -> 1/4 off, t = 95 -> k = 10 -> 1 - 1/20 = 0.95,
  # t = 150 -> k = 16 -> 1 - 1/32 = 0.96875, capped at 0.97 from k = 17 (t = 160) on.
  for t, expected in {9: 0.5, 10: 0.75, 95: 0.95, 150: 0.96875, 159: 0.96875, 160: 0.97}.items():
    assert float(schedule(t)) == pytest.approx(expected, abs=1e-15)


def test_nesterov_convex(x64):
  schedule = schedules.nesterov_convex()
  for t, expected in {0: 1 - 3 / 5, 1: 0.5, 10: 0.8, 95: 0.97, 10**6: 1 - 3 / 1000005}.items():
    assert float(schedule(t)) == pytest.approx(expected, abs=1e-15)
  assert schedule(0).dtype == jnp.float64


def test_rnn_momentum_boundaries():
  for mu in [0.0, 0.9, 0.98, 0.995]:
    schedule = schedules.rnn_momentum(mu)
    for t, expected in {0: 0.9, 999: 0.9, 1000: mu, 50_000: mu}.items():
      assert float(schedule(t)) == pytest.approx(expected, abs=1e-7)
  short = schedules.rnn_momentum(0.5, warm_mu=0.2, warm_steps=3)
  np.testing.assert_allclose(short(jnp.arange(5)), [0.2, 0.2, 0.2, 0.5, 0.5], rtol=1e-7)
  np.testing.assert_allclose(schedules.rnn_momentum(0.5, warm_steps=0)(0), 0.5)


@pytest.mark.parametrize("mu_max", MU_MAXES)
def test_final_phase_boundaries(x64, mu_max):
  total, final = 10_000, 1000
  schedule = schedules.final_phase(schedules.sutskever_momentum(mu_max), total, final)
  # Before t = 9000 it is the Sutskever schedule (k = 36 at t = 8999: 1 - 1/72).
  assert float(schedule(8999)) == pytest.approx(min(1 - 1 / 72, mu_max), abs=1e-15)
  assert float(schedule(0)) == pytest.approx(min(0.5, mu_max), abs=1e-15)
  final_value = 0.0 if mu_max == 0 else 0.9
  for t in [9000, 9500, 9999, 10_000]:
    assert float(schedule(t)) == pytest.approx(final_value, abs=1e-15)


def test_final_phase_other_values_and_constants():
  schedule = schedules.final_phase(schedules.nesterov_convex(), 100, final_steps=10, value=0.5)
  np.testing.assert_allclose(schedule(jnp.array([89, 90, 99])), [1 - 3 / 94, 0.5, 0.5],
                             rtol=1e-6)
  np.testing.assert_allclose(schedules.final_phase(0.99, 100, 10)(jnp.array([89, 90])),
                             [0.99, 0.9], rtol=1e-6)
  np.testing.assert_allclose(schedules.final_phase(0.0, 100, 10)(jnp.array([89, 90])), [0, 0])
  # Plain callables: zero at t = 0 and at the last main-phase step counts as identically zero.
  np.testing.assert_allclose(
      schedules.final_phase(lambda t: jnp.zeros_like(t, jnp.float32), 100, 10)(95), 0.0)
  ramp = schedules.final_phase(lambda t: jnp.minimum(t / 50.0, 0.95), 100, 10)
  np.testing.assert_allclose(ramp(jnp.array([0, 25, 90])), [0.0, 0.5, 0.9], rtol=1e-6)
  # The explicit override.
  np.testing.assert_allclose(schedules.final_phase(ramp, 100, 10, is_zero=True)(95), 0.0)
  # Whole run in the final phase when final_steps > total_steps.
  np.testing.assert_allclose(schedules.final_phase(0.99, 5, 10)(0), 0.9, rtol=1e-6)


def test_traced_hyperparameters_inside_vmap_without_retracing(x64):
  total, final = 5000, 1000
  counts = jnp.array([0, 250, 999, 1000, 3999, 4000, 4999])

  def values(mu_max, rnn_mu):
    mu = schedules.final_phase(schedules.sutskever_momentum(mu_max), total, final)
    return mu(counts), schedules.rnn_momentum(rnn_mu)(counts)

  population = jax.jit(jax.vmap(chex.assert_max_traces(values, n=1)))
  for mu_maxes in ([0.0, 0.9, 0.995], [0.99, 0.0, 0.5]):
    sutskever, rnn = population(jnp.array(mu_maxes), jnp.array(mu_maxes))
    assert sutskever.dtype == jnp.float64
    for row, mu_max in enumerate(mu_maxes):
      # k at counts[:5] = 1, 2, 4, 5, 16; then the final phase.
      main = [min(1 - 1 / (2 * k), mu_max) for k in (1, 2, 4, 5, 16)]
      tail = [0.0 if mu_max == 0 else 0.9] * 2
      np.testing.assert_allclose(sutskever[row], main + tail, rtol=0, atol=1e-15)
      np.testing.assert_allclose(rnn[row], [0.9, 0.9, 0.9] + [mu_max] * 4, rtol=0, atol=1e-15)


def test_traced_step_counts_and_period():
  @jax.jit
  def values(period, total, final, warm):
    counts = jnp.array([0, 9, 10, 85, 90])
    mu = schedules.final_phase(schedules.sutskever_momentum(0.99, period), total, final)
    return mu(counts), schedules.rnn_momentum(0.5, 0.1, warm)(counts)

  mu, rnn = values(10, 100, 15, 10)
  np.testing.assert_allclose(mu, [0.5, 0.5, 0.75, 0.9, 0.9], rtol=1e-6)
  np.testing.assert_allclose(rnn, [0.1, 0.1, 0.5, 0.5, 0.5], rtol=1e-6)


def test_peak():
  assert schedules.sutskever_momentum(0.99).peak == 0.99
  assert schedules.rnn_momentum(0.0).peak == 0.9
  assert schedules.rnn_momentum(0.3, warm_steps=0).peak == 0.3
  assert schedules.final_phase(schedules.sutskever_momentum(0.0), 100).peak == 0.0
  assert schedules.final_phase(schedules.sutskever_momentum(0.5), 100).peak == 0.9


@pytest.mark.parametrize("make", [
    lambda: schedules.sutskever_momentum(1.0),
    lambda: schedules.sutskever_momentum(-0.1),
    lambda: schedules.sutskever_momentum(float("nan")),
    lambda: schedules.sutskever_momentum(0.9, period=0),
    lambda: schedules.sutskever_momentum(0.9, period=-250),
    lambda: schedules.sutskever_momentum(0.9, period=2.5),
    lambda: schedules.rnn_momentum(1.2),
    lambda: schedules.rnn_momentum(0.9, warm_mu=-1.0),
    lambda: schedules.rnn_momentum(0.9, warm_steps=-1),
    lambda: schedules.final_phase(0.9, total_steps=-5),
    lambda: schedules.final_phase(0.9, total_steps=100, final_steps=-1),
    lambda: schedules.final_phase(0.9, total_steps=100, value=1.0),
    lambda: schedules.final_phase(1.5, total_steps=100),
])
def test_bad_inputs_raise_value_error(make):
  with pytest.raises(ValueError):
    make()
