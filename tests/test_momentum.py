"""Tests of mominit.cm / nag / momentum_rule / theta against a float64 NumPy transcription of the
paper's equations (NAG takes its gradient at theta + mu v), against optax.sgd, and properties."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mominit
from mominit import schedules

# ------------------------------------------------------------------------------------------------
# The independent reference: the paper's equations written out in NumPy float64, with mu_t and
# eps_t computed from their closed formulas here (not with mominit.schedules).


def _problem(n=20, seed=0, log10_cond=3.0):
  """A random ill-conditioned quadratic f(x) = 1/2 (x - c)^T A (x - c), and a start x0."""
  rng = np.random.default_rng(seed)
  q, r = np.linalg.qr(rng.standard_normal((n, n)))
  q = q * np.sign(np.diag(r))
  lam = np.logspace(-log10_cond, 0.0, n)  # lambda_max = 1, condition number 10^log10_cond.
  a = (q * lam) @ q.T
  a = 0.5 * (a + a.T)
  return a, rng.standard_normal(n), rng.standard_normal(n)


def _ref_mu(t, mu_max, period, total_steps, final_steps):
  """final_phase(sutskever_momentum(mu_max, period), total_steps, final_steps), literally."""
  if t >= total_steps - final_steps:
    return 0.0 if mu_max == 0 else 0.9
  return min(1.0 - 2.0 ** (-1.0 - np.log2(np.floor(t / period) + 1.0)), mu_max)


def _ref_eps(t, eps0, boundaries):
  """eps0, halved at boundaries[0], times 0.2 from boundaries[1] on."""
  return eps0 * (0.5 if t >= boundaries[0] else 1.0) * (0.2 if t >= boundaries[1] else 1.0)


def _reference(a, c, x0, nesterov, mus, epss):
  """The paper's CM / NAG: v <- mu v - eps grad f(theta [+ mu v]); theta <- theta + v."""
  theta, v = x0.copy(), np.zeros_like(x0)
  thetas, vs = [theta], [v]
  for mu, eps in zip(mus, epss):
    look = theta + mu * v if nesterov else theta
    v = mu * v - eps * (a @ (look - c))
    theta = theta + v
    thetas.append(theta)
    vs.append(v)
  return np.stack(thetas), np.stack(vs)


def _run(opt, a, c, x0, num_steps):
  """theta_0..theta_T and v_0..v_T of an optax optimizer on the quadratic (one lax.scan)."""
  a, c, x0 = jnp.asarray(a), jnp.asarray(c), jnp.asarray(x0)

  def step(carry, _):
    params, state = carry
    updates, state = opt.update(a @ (params - c), state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), (mominit.theta(params, state), _velocity(state))

  state = opt.init(x0)
  (params, state), (thetas, vs) = jax.lax.scan(step, (x0, state), None, length=num_steps)
  thetas = jnp.concatenate([mominit.theta(x0, opt.init(x0))[None], thetas])
  vs = jnp.concatenate([jnp.zeros_like(x0)[None], vs])
  return thetas, vs, params, state


def _velocity(state):
  found = [s for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, mominit.MomentumState))
           if isinstance(s, mominit.MomentumState)]
  return found[0].velocity


def _rel_err(x, ref):
  return np.max(np.linalg.norm(np.asarray(x, np.float64) - ref, axis=-1)) / np.max(
      np.linalg.norm(ref, axis=-1))


# (mu_max, period): the default period (mu climbs 0.5 .. 0.917 and is cut to 0.9 by the final
# phase), a short period (mu reaches the 0.995 cap at t = 990), and mu_max = 0 (plain SGD, which
# the final phase must leave at 0).
SCHEDULES = [(0.995, 250), (0.995, 10), (0.0, 250)]
TOTAL, FINAL, EPS0, BOUNDARIES = 1600, 200, 0.5, (600, 1100)


def _scheduled_run(nesterov, mu_max, period):
  mu = schedules.final_phase(schedules.sutskever_momentum(mu_max, period), TOTAL, FINAL)
  eps = optax.piecewise_constant_schedule(EPS0, {BOUNDARIES[0]: 0.5, BOUNDARIES[1]: 0.2})
  opt = mominit.nag(eps, mu) if nesterov else mominit.cm(eps, mu)
  a, c, x0 = _problem()
  thetas, vs, _, _ = jax.jit(lambda: _run(opt, a, c, x0, TOTAL))()
  mus = [_ref_mu(t, mu_max, period, TOTAL, FINAL) for t in range(TOTAL)]
  epss = [_ref_eps(t, EPS0, BOUNDARIES) for t in range(TOTAL)]
  ref_thetas, ref_vs = _reference(a, c, x0, nesterov, mus, epss)
  return thetas, vs, ref_thetas, ref_vs


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
@pytest.mark.parametrize("mu_max,period", SCHEDULES)
def test_matches_paper_equations_float64(x64, nesterov, mu_max, period):
  thetas, vs, ref_thetas, ref_vs = _scheduled_run(nesterov, mu_max, period)
  assert thetas.dtype == jnp.float64
  assert _rel_err(thetas, ref_thetas) < 1e-10
  assert _rel_err(vs, ref_vs) < 1e-10


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
@pytest.mark.parametrize("mu_max,period", SCHEDULES[:2])
def test_matches_paper_equations_float32(nesterov, mu_max, period):
  thetas, _, ref_thetas, _ = _scheduled_run(nesterov, mu_max, period)
  assert thetas.dtype == jnp.float32
  assert _rel_err(thetas, ref_thetas) < 1e-4


@pytest.mark.parametrize("nesterov", [False, True], ids=["cm", "nag"])
def test_matches_optax_sgd_for_constant_hyperparameters(x64, nesterov):
  lr, mu, steps = 0.3, 0.9, 300
  a, c, x0 = _problem(n=8, seed=1, log10_cond=2.0)
  rule = mominit.nag if nesterov else mominit.cm
  thetas, vs, params, state = _run(rule(lr, mu), a, c, x0, steps)
  sgd = optax.sgd(lr, momentum=mu, nesterov=nesterov)

  def sgd_step(carry, _):
    params, state = carry
    updates, state = sgd.update(jnp.asarray(a) @ (params - c), state, params)
    return (optax.apply_updates(params, updates), state), None

  (sgd_params, sgd_state), _ = jax.lax.scan(sgd_step, (jnp.asarray(x0), sgd.init(x0)), None,
                                            length=steps)
  # optax keeps the trace in gradient units: our v = -lr * trace. Both store the same params
  # (phi = theta + mu v for NAG), so theta = optax params - n mu v.
  velocity = -lr * sgd_state[0].trace
  np.testing.assert_allclose(state.velocity, velocity, rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(params, sgd_params, rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(thetas[-1], sgd_params - (mu if nesterov else 0.0) * velocity,
                             rtol=1e-12, atol=1e-14)


def test_vmap_population_matches_individual_runs_without_retracing(x64):
  steps, final, period, boundary = 600, 100, 50, 300
  a, c, x0 = _problem(n=10, seed=2)

  def run(mu_max, eps0, nesterov):
    mu = schedules.final_phase(schedules.sutskever_momentum(mu_max, period), steps, final)
    eps = optax.piecewise_constant_schedule(eps0, {boundary: 0.5})
    return _run(mominit.momentum_rule(eps, mu, nesterov), a, c, x0, steps)[0]

  counted = chex.assert_max_traces(run, n=1)
  population = jax.jit(jax.vmap(counted))
  single = jax.jit(run)
  for mu_max, eps0, nesterov in [([0.0, 0.9, 0.99, 0.995], [0.5, 0.4, 0.3, 0.2], [0., 1., 0., 1.]),
                                 ([0.999, 0.0, 0.95, 0.5], [0.1, 0.3, 0.5, 0.6], [1., 1., 0., 0.])]:
    batch = population(jnp.array(mu_max), jnp.array(eps0), jnp.array(nesterov))
    for i in range(len(mu_max)):
      mus = [_ref_mu(t, mu_max[i], period, steps, final) for t in range(steps)]
      epss = [eps0[i] * (0.5 if t >= boundary else 1.0) for t in range(steps)]
      ref, _ = _reference(a, c, x0, nesterov[i] == 1.0, mus, epss)
      assert _rel_err(batch[i], ref) < 1e-10
      np.testing.assert_allclose(batch[i], single(mu_max[i], eps0[i], nesterov[i]),
                                 rtol=1e-12, atol=1e-13)


def _containers():
  lr = optax.piecewise_constant_schedule(0.4, {10: 0.5})
  return {
      "chain": optax.chain(optax.clip_by_global_norm(1e6), mominit.nag(lr, 0.9)),
      "named_chain": optax.named_chain(("clip", optax.clip(1e6)), ("nag", mominit.nag(lr, 0.9))),
      # inject_hyperparams feeds eps_t in one update at a time: exact for the learning rate.
      "inject_hyperparams": optax.inject_hyperparams(mominit.nag)(learning_rate=lr, momentum=0.9),
      "inject_chain": optax.inject_hyperparams(
          lambda learning_rate: optax.chain(optax.identity(), mominit.nag(learning_rate, 0.9)))(
              learning_rate=lr),
  }


@pytest.mark.parametrize("name", list(_containers()))
def test_theta_found_inside_optimizer_containers(x64, name):
  steps = 30
  a, c, x0 = _problem(n=6, seed=3, log10_cond=1.0)
  thetas, _, params, _ = jax.jit(lambda: _run(_containers()[name], a, c, x0, steps))()
  ref, _ = _reference(a, c, x0, True, [0.9] * steps,
                      [0.4 * (0.5 if t >= 10 else 1.0) for t in range(steps)])
  assert _rel_err(thetas, ref) < 1e-12
  # The params are the look-ahead point, not theta.
  assert np.max(np.abs(np.asarray(params) - ref[-1])) > 1e-3


def test_theta_on_stacked_population_outside_vmap():
  mus, ns = jnp.array([0.5, 0.9, 0.0]), jnp.array([1.0, 1.0, 0.0])
  params = jnp.ones((3, 4))

  def one(mu, n, p):
    opt = mominit.momentum_rule(0.1, mu, n)
    state = opt.init(p)
    updates, state = opt.update(2.0 * p, state, p)  # f = |p|^2: g = 2 p.
    return optax.apply_updates(p, updates), state

  new_params, states = jax.vmap(one)(mus, ns, params)
  # One step from p = 1 with v_0 = 0: v_1 = -0.1 * 2 = -0.2, theta_1 = 0.8 for every member.
  np.testing.assert_allclose(mominit.theta(new_params, states), 0.8, rtol=1e-6)
  np.testing.assert_allclose(new_params[:, 0], 0.8 - 0.2 * mus * ns, rtol=1e-6)


def test_theta_errors():
  params = jnp.zeros(3)
  with pytest.raises(ValueError, match="found 0"):
    mominit.theta(params, optax.sgd(0.1, 0.9).init(params))
  with pytest.raises(ValueError, match="found 2"):
    mominit.theta(params, optax.chain(mominit.cm(0.1, 0.9), mominit.nag(0.1, 0.9)).init(params))


def test_velocity_and_updates_keep_the_params_dtype(x64):
  params = {"w": jnp.ones((2, 3), jnp.float32), "b": jnp.ones(3, jnp.bfloat16)}
  opt = mominit.nag(0.1, schedules.sutskever_momentum(0.99))
  state = opt.init(params)
  updates, state = opt.update(params, state, params)
  updates, state = opt.update(params, state, params)
  for tree in (state.velocity, updates, mominit.theta(params, state)):
    assert tree["w"].dtype == jnp.float32 and tree["b"].dtype == jnp.bfloat16
  assert state.shift.dtype == jnp.float64 and state.count == 2
  # t = 0: v_1 = -0.1 g; t = 1 (mu_1 = 0.5): v_2 = 0.5 v_1 - 0.1 g = -0.15 (g = 1).
  np.testing.assert_allclose(state.velocity["w"], -0.15, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: mominit.cm(0.1, 1.0),
    lambda: mominit.cm(0.1, -0.1),
    lambda: mominit.nag(0.1, float("nan")),
    lambda: mominit.nag(-0.1, 0.9),
    lambda: mominit.cm(float("nan"), 0.9),
    lambda: mominit.cm(float("inf"), 0.9),
    lambda: mominit.nag(np.float32(0.1), np.float64(1.5)),
    lambda: mominit.momentum_rule(0.1, 0.9, nesterov=0.5),
    lambda: mominit.momentum_rule(0.1, 0.9, nesterov=2),
], ids=["mu=1", "mu<0", "mu=nan", "lr<0", "lr=nan", "lr=inf", "numpy-mu", "n=0.5", "n=2"])
def test_bad_inputs_raise_value_error(make):
  with pytest.raises(ValueError):
    make()


def test_traced_hyperparameters_are_accepted_unchecked():
  # Inside jit the values are tracers: no eager check, no error, one update works.
  @jax.jit
  def step(lr, mu, n):
    opt = mominit.momentum_rule(lr, mu, n)
    p = jnp.ones(2)
    updates, _ = opt.update(p, opt.init(p), p)
    return updates

  # CM, first step: u = v_1 = -lr g.
  np.testing.assert_allclose(step(0.25, 0.9, 0.0), -0.25, rtol=1e-6)
  # NAG, first step: u = (1 + mu_1) v_1 = -1.9 * 0.25.
  np.testing.assert_allclose(step(0.25, 0.9, 1.0), -1.9 * 0.25, rtol=1e-6)
