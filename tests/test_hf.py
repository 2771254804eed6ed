"""Tests for mominit.hf against NumPy references, closed forms and hand-computed values."""
import chex
import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import hf


# ---------------------------------------------------------------------------------------------
# Tiny hand-written MLPs.


def mlp_init(seed, sizes, scale=1.):
  rng = np.random.default_rng(seed)
  return [{"w": jnp.asarray(scale * rng.standard_normal((a, b)) / np.sqrt(a)),
           "b": jnp.asarray(0.1 * rng.standard_normal(b))}
          for a, b in zip(sizes[:-1], sizes[1:])]


def mlp_apply(params, x):
  """Sigmoid hidden layers, linear last layer (logits or linear outputs); any leading axes."""
  h = x
  for i, layer in enumerate(params):
    h = h @ layer["w"] + layer["b"]
    if i < len(params) - 1:
      h = jax.nn.sigmoid(h)
  return h


def np_mlp_apply(params, x):
  h = np.asarray(x, np.float64)
  for i, layer in enumerate(params):
    h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
    if i < len(params) - 1:
      h = 1. / (1. + np.exp(-h))
  return h


def np_sigmoid_ce(logits, targets):
  s = 1. / (1. + np.exp(-logits))
  return np.mean(np.sum(-targets * np.log(s) - (1 - targets) * np.log(1 - s), axis=-1))


def np_loss_hessian(loss, z, y):
  """Closed-form Hessian of the per-position loss w.r.t. its outputs z [O]."""
  if loss == "squared_error":
    return 2. * np.eye(z.size)
  if loss == "sigmoid_cross_entropy":
    s = 1. / (1. + np.exp(-z))
    return np.diag(s * (1 - s))
  p = np.exp(z - z.max())
  p /= p.sum()
  return y.sum() * (np.diag(p) - np.outer(p, p))


def make_batch(loss, rng, shape, num_out):
  """Targets of the right kind for each loss; shape = leading axes ([B] or [B, L])."""
  if loss == "squared_error":
    return rng.standard_normal(shape + (num_out,))
  if loss == "sigmoid_cross_entropy":
    return rng.random(shape + (num_out,))
  return np.eye(num_out)[rng.integers(0, num_out, shape)]


# ---------------------------------------------------------------------------------------------
# Gauss-Newton-vector products.


@pytest.mark.parametrize("loss,masked", [
    ("squared_error", False), ("sigmoid_cross_entropy", False), ("softmax_cross_entropy", False),
    ("softmax_cross_entropy", True), ("squared_error", True)])
def test_gnvp_equals_explicit_gauss_newton(x64, loss, masked):
  rng = np.random.default_rng(1)
  params = mlp_init(2, [3, 4, 5])
  lead = (4, 3) if masked else (6,)
  inputs = jnp.asarray(rng.standard_normal(lead + (3,)))
  targets = make_batch(loss, rng, lead, 5)
  mask = (rng.random(lead) < 0.6).astype(np.float64)
  mask.flat[0] = 1.
  batch = ((inputs, jnp.asarray(targets), jnp.asarray(mask)) if masked
           else (inputs, jnp.asarray(targets)))
  weights = mask if masked else np.ones(lead)

  flat, unravel = ravel_pytree(params)
  jac = np.asarray(jax.jacfwd(lambda w: mlp_apply(unravel(w), inputs).reshape(-1))(flat))
  outputs = np.asarray(mlp_apply(params, inputs)).reshape(-1, 5)
  h = np.zeros((outputs.size, outputs.size))
  for n, (z, y, w) in enumerate(zip(outputs, targets.reshape(-1, 5), weights.reshape(-1))):
    h[5 * n:5 * n + 5, 5 * n:5 * n + 5] = w * np_loss_hessian(loss, z, y)
  gn_explicit = jac.T @ h @ jac / weights.sum()

  matvec = hf.gauss_newton_matvec(mlp_apply, loss, params, batch)
  for seed in range(2):
    v = np.random.default_rng(10 + seed).standard_normal(flat.size)
    got = ravel_pytree(matvec(unravel(jnp.asarray(v))))[0]
    np.testing.assert_allclose(got, gn_explicit @ v, rtol=0, atol=1e-10)
  # Property: every loss here is convex in the outputs, so G is positive semi-definite.
  assert np.linalg.eigvalsh(gn_explicit).min() > -1e-12


@pytest.mark.parametrize("loss", hf.LOSSES)
def test_output_hessian_and_objective_closed_forms(x64, loss):
  rng = np.random.default_rng(3)
  z = rng.standard_normal(4)
  y = make_batch(loss, rng, (), 4)
  u = rng.standard_normal(4)
  got = hf.output_hessian_vp(loss, jnp.asarray(z), jnp.asarray(y), jnp.asarray(u))
  np.testing.assert_allclose(got, np_loss_hessian(loss, z, y) @ u, rtol=0, atol=1e-12)
  # ... and the closed form is the true Hessian of the loss (autodiff as independent source).
  auto = jax.hessian(lambda zz: hf.per_position_loss(loss, zz, jnp.asarray(y)))(jnp.asarray(z))
  np.testing.assert_allclose(np.asarray(auto) @ u, got, rtol=0, atol=1e-12)
  # Objective: sum over outputs, mean over cases, from the textbook formulas.
  zb, yb = rng.standard_normal((5, 4)), make_batch(loss, rng, (5,), 4)
  if loss == "squared_error":
    want = np.mean(np.sum((zb - yb)**2, -1))
  elif loss == "sigmoid_cross_entropy":
    want = np_sigmoid_ce(zb, yb)
  else:
    logp = zb - np.log(np.exp(zb).sum(-1, keepdims=True))
    want = -np.mean(np.sum(yb * logp, -1))
  got = hf.objective(lambda p, x: x, loss, None, (jnp.asarray(zb), jnp.asarray(yb)))
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_empirical_fisher_diagonal_matches_per_case_numpy(x64):
  rng = np.random.default_rng(4)
  params = mlp_init(5, [3, 4, 2])
  x = jnp.asarray(rng.standard_normal((7, 3)))
  y = jnp.asarray(rng.random((7, 2)))
  flat, unravel = ravel_pytree(params)
  # Reference: per-case gradients one at a time (chunk size 3 leaves a padded remainder).
  per_case = [np.asarray(jax.grad(lambda w: hf.objective(
      mlp_apply, "sigmoid_cross_entropy", unravel(w), (x[i:i + 1], y[i:i + 1])))(flat))
              for i in range(7)]
  want = np.mean(np.square(per_case), axis=0)
  got = hf.empirical_fisher_diagonal(mlp_apply, "sigmoid_cross_entropy", params, (x, y),
                                     chunk_size=3)
  np.testing.assert_allclose(ravel_pytree(got)[0], want, rtol=1e-10, atol=1e-14)


def _per_case_fisher(apply_fn, loss, flat, unravel, x, y, w):
  """(1/B) sum_i (grad l_i)^2 with l_i = B w_i sum_o loss_io / sum(w), one case at a time."""
  num = x.shape[0]

  def case_loss(v, i):
    out = apply_fn(unravel(v), x[i:i + 1])[0]
    return num * w[i] * jnp.sum(hf.per_position_loss(loss, out, y[i])) / jnp.sum(w)

  grads = [np.asarray(jax.grad(case_loss)(flat, i)) for i in range(num)]
  return np.mean(np.square(grads), axis=0)


@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy", "squared_error"])
@pytest.mark.parametrize("masked", [False, True])
def test_dense_fisher_shortcut_matches_per_case_gradients(x64, loss, masked):
  from mominit.models import autoencoder_from_sizes
  model = autoencoder_from_sizes((12, 6, 3), output="logistic", num_connections=4,
                                 param_dtype=jnp.float64)
  rng = np.random.default_rng(7)
  x = jnp.asarray(rng.random((9, 12)))
  params = model.init(jax.random.key(0), x)
  params = jax.tree.map(lambda a: a + 0.5 * jnp.asarray(rng.standard_normal(a.shape)), params)
  apply_fn = lambda p, inputs: model.apply(p, inputs)
  w = jnp.asarray((np.arange(9) % 3 != 0) * 1.5) if masked else jnp.ones(9)
  batch = (x, x, w) if masked else (x, x)
  flat, unravel = ravel_pytree(params)
  want = _per_case_fisher(apply_fn, loss, flat, unravel, x, x, w)
  got = hf.dense_fisher_diagonal(apply_fn, loss, params, batch)
  assert got is not None  # the autoencoder is a stack of Dense layers: the shortcut applies
  np.testing.assert_allclose(ravel_pytree(got)[0], want, rtol=1e-10, atol=1e-14)
  # The same on the flat vector HF ravels the parameters into, and through the public entry.
  flat_apply = lambda v, inputs: apply_fn(unravel(v), inputs)
  np.testing.assert_allclose(hf.dense_fisher_diagonal(flat_apply, loss, flat, batch), want,
                             rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(hf.empirical_fisher_diagonal(flat_apply, loss, flat, batch), want,
                             rtol=1e-10, atol=1e-14)


def test_population_of_flax_hf_runs_uses_the_shortcut_and_equals_single_runs(x64):
  from mominit.models import autoencoder_from_sizes
  model = autoencoder_from_sizes((12, 6, 3), output="logistic", num_connections=4,
                                 param_dtype=jnp.float64)
  x = jnp.asarray(np.random.default_rng(9).random((16, 12)))
  apply_fn = lambda p, inputs: model.apply(p, inputs)
  params = jax.vmap(lambda k: model.init(k, x))(jax.random.split(jax.random.key(0), 3))
  # Under vmap each member still sees [B, in] Dense inputs: the shortcut applies.
  assert jax.vmap(lambda p: hf.dense_fisher_diagonal(
      apply_fn, "sigmoid_cross_entropy", p, (x, x)))(params) is not None
  opt = hf.hessian_free(apply_fn, "sigmoid_cross_entropy", max_cg_iters=5)
  one = lambda s, p: opt.step(s, p, (x, x), (x[:8], x[:8]))
  together, _, _ = jax.jit(jax.vmap(one))(jax.vmap(opt.init)(params), params)
  for i in range(3):
    member = jax.tree.map(lambda a, i=i: a[i], params)
    alone, _, _ = jax.jit(one)(opt.init(member), member)
    chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], together), alone,
                                rtol=1e-10, atol=1e-12)


def test_dense_fisher_shortcut_refuses_models_where_it_is_not_exact(x64):
  import flax.linen as nn
  from mominit.models import TanhRNN

  class Tied(nn.Module):  # one Dense applied twice: per-case gradients are sums of two outers
    @nn.compact
    def __call__(self, x):
      layer = nn.Dense(4, param_dtype=jnp.float64)
      return layer(jax.nn.sigmoid(layer(x)))

  class Scaled(nn.Module):  # a parameter outside any Dense layer
    @nn.compact
    def __call__(self, x):
      scale = self.param("scale", nn.initializers.ones, (4,), jnp.float64)
      return scale * nn.Dense(4, param_dtype=jnp.float64)(x)

  rng = np.random.default_rng(8)
  x = jnp.asarray(rng.random((5, 4)))
  for model in (Tied(), Scaled()):
    params = model.init(jax.random.key(0), x)
    apply_fn = lambda p, inputs, m=model: m.apply(p, inputs)
    assert hf.dense_fisher_diagonal(apply_fn, "squared_error", params, (x, x)) is None
    # ... and the public function falls back to per-case gradients, still exact.
    flat, unravel = ravel_pytree(params)
    want = _per_case_fisher(apply_fn, "squared_error", flat, unravel, x, x, jnp.ones(5))
    got = hf.empirical_fisher_diagonal(apply_fn, "squared_error", params, (x, x), chunk_size=2)
    np.testing.assert_allclose(ravel_pytree(got)[0], want, rtol=1e-10, atol=1e-14)
  rnn = TanhRNN(num_outputs=2, hidden=3, input_scale=0.5)
  seqs = jnp.asarray(rng.random((2, 5, 4)))
  rnn_params = rnn.init(jax.random.key(1), seqs)
  targets = jnp.asarray(rng.random((2, 5, 2)))
  assert hf.dense_fisher_diagonal(rnn.apply, "squared_error", rnn_params, (seqs, targets)) is None
  assert hf.dense_fisher_diagonal(mlp_apply, "squared_error", mlp_init(0, [4, 3, 4]),
                                  (x, x)) is None  # not a Flax model


# ---------------------------------------------------------------------------------------------
# Conjugate gradient.


def random_spd(rng, n, cond):
  q, _ = np.linalg.qr(rng.standard_normal((n, n)))
  return (q * np.logspace(0, -np.log10(cond), n)) @ q.T


def np_pcg(a, g, x0, m, iters):
  """Textbook preconditioned CG on 1/2 x'Ax + g'x; returns iterates and phi values."""
  x = x0.copy()
  r = a @ x + g
  y = r / m
  p = -y
  xs, phis = [x.copy()], [0.5 * x @ a @ x + g @ x]
  for _ in range(iters):
    alpha = (r @ y) / (p @ a @ p)
    x = x + alpha * p
    r_new = r + alpha * (a @ p)
    y_new = r_new / m
    p = -y_new + (r_new @ y_new) / (r @ y) * p
    r, y = r_new, y_new
    xs.append(x.copy())
    phis.append(0.5 * x @ a @ x + g @ x)
  return np.array(xs), np.array(phis)


@pytest.mark.parametrize("preconditioned", [False, True])
def test_cg_solves_spd_in_n_iterations(x64, preconditioned):
  # Moderate conditioning: with cond ~1e3 even textbook float64 CG needs more than n steps
  # (loss of conjugacy), which is not what this test is about.
  rng = np.random.default_rng(6)
  n = 10
  a = random_spd(rng, n, 20.)
  g = rng.standard_normal(n)
  x0 = rng.standard_normal(n)
  m = rng.uniform(0.5, 2., n) if preconditioned else None
  run = lambda iters: hf.pcg(lambda v: jnp.asarray(a) @ v, jnp.asarray(g), jnp.asarray(x0),
                             precond=None if m is None else jnp.asarray(m), max_iters=iters,
                             eps=0.)
  res = run(n)
  want = np.linalg.solve(a, -g)
  assert int(res.num_iters) == n
  np.testing.assert_allclose(res.x, want, rtol=0, atol=1e-9 * np.abs(want).max())
  # ... and not before: after n - 1 steps the error is still visible.
  assert np.abs(run(n - 1).x - want).max() > 1e-6 * np.abs(want).max()
  # The last stored slot is the final iterate; phi there is the minimum of the quadratic.
  np.testing.assert_allclose(res.saved[res.last_slot], res.x, rtol=0, atol=0)
  np.testing.assert_allclose(res.saved_phi[res.last_slot], 0.5 * g @ want, rtol=1e-9)


def test_save_iterations_hand_values():
  assert hf.save_iterations(250) == (1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 24, 31, 40, 52, 67, 87,
                                     113, 147, 191, 248)
  assert hf.save_iterations(4) == (1, 2, 3, 4)
  with pytest.raises(ValueError, match="max_iters"):
    hf.save_iterations(0)


def test_cg_stopping_rule_and_stored_iterates(x64):
  rng = np.random.default_rng(8)
  n = 200
  a = random_spd(rng, n, 1e4)
  g = rng.standard_normal(n)
  m = np.diag(a) + 1e-3
  res = hf.pcg(lambda v: jnp.asarray(a) @ v, jnp.asarray(g), jnp.zeros(n),
               precond=jnp.asarray(m), max_iters=250)
  xs, phis = np_pcg(a, g, np.zeros(n), m, 250)
  # Before rounding errors (cond 1e4) separate the two implementations, the iterates agree.
  np.testing.assert_allclose(res.saved[:8], xs[[1, 2, 3, 4, 5, 7, 9, 11]], rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(res.phi[:12], phis[:12], rtol=1e-10)
  # The stored phi values are phi at the stored iterates, exactly evaluated.
  last = int(res.last_slot)
  saved = np.asarray(res.saved[:last + 1])
  np.testing.assert_allclose(res.saved_phi[:last + 1],
                             0.5 * np.einsum("ip,pq,iq->i", saved, a, saved) + saved @ g,
                             rtol=1e-7)
  # Stop = first i > k with phi_{i-k} < 0 and (phi_i - phi_{i-k}) / phi_i < k * 5e-4,
  # k = max(10, ceil(i / 10)), applied by hand to the phi history (library's and NumPy's).
  gap = lambda i: max(10, -(-i // 10))
  for history in (np.asarray(res.phi), phis):
    margin = lambda i, h=history: (h[i] - h[i - gap(i)]) / h[i] / (gap(i) * 5e-4)
    stop = next(i for i in range(1, 251)
                if i > gap(i) and history[i - gap(i)] < 0 and margin(i) < 1)
    # The rule triggers with k > 10 (i > 100), not borderline in floating point.
    assert stop > 100 and margin(stop) < 0.98 and margin(stop - 1) > 1.02
    assert int(res.num_iters) == stop
  np.testing.assert_allclose(res.x, res.saved[last], rtol=0, atol=0)
  saves = [i for i in hf.save_iterations(250) if i < stop] + [stop]
  assert last == len(saves) - 1
  np.testing.assert_array_equal(res.saved_iters[:last + 1], saves)
  # Unused slots are untouched.
  assert not np.asarray(res.saved[last + 1:]).any()
  # eps = 0 switches the test off: all 250 iterations run, all 20 save slots plus the last fill.
  res0 = hf.pcg(lambda v: jnp.asarray(a) @ v, jnp.asarray(g), jnp.zeros(n),
                precond=jnp.asarray(m), max_iters=250, eps=0.)
  assert int(res0.num_iters) == 250 and int(res0.last_slot) == 20
  np.testing.assert_array_equal(res0.saved_iters, list(hf.save_iterations(250)) + [250])


# ---------------------------------------------------------------------------------------------
# Damping, backtracking, line search, one-step closed form.


@pytest.mark.parametrize("rho,want", [
    (-3., 67.5), (0.1, 67.5), (0.2499, 67.5), (0.25, 45.), (0.5, 45.), (0.75, 45.),
    (0.7501, 30.), (1.0, 30.), (2.5, 30.), (float("nan"), 67.5), (-float("inf"), 67.5)])
def test_update_damping_hand_values(rho, want):
  np.testing.assert_allclose(hf.update_damping(jnp.float32(45.), jnp.float32(rho)), want,
                             rtol=1e-6)


@pytest.mark.parametrize("values,last,mode,want_slot,want_evals", [
    ([5., 3., 4., 2.5, 2.7, 3.5, -100.], 5, "best", 3, 6),   # slot 6 is past last: ignored
    ([5., 3., 4., 2.5, 2.7, 3.5, -100.], 5, "walk", 3, 4),   # 3.5 -> 2.7 -> 2.5 -> 4 (stop)
    ([1., 3., 2., 2.5], 3, "best", 0, 4),
    ([1., 3., 2., 2.5], 3, "walk", 2, 3),                    # walk stops at a local minimum
    ([1., 3., 2., 2.5], 3, "none", 3, 1),
    ([2., 2., 2.], 2, "best", 2, 3),                         # ties keep the later iterate
])
def test_backtrack_picks_stored_iterate(values, last, mode, want_slot, want_evals):
  table = jnp.asarray(values)
  candidates = jnp.arange(len(values), dtype=jnp.float32)[:, None]
  slot, value, evals = hf.backtrack(lambda c: table[c[0].astype(jnp.int32)], candidates, last,
                                    mode)
  assert int(slot) == want_slot
  assert float(value) == values[want_slot]
  assert int(evals) == want_evals


def test_armijo_line_search_hand_values():
  # f(theta + a p) = 10 (a - 0.3)^2: f0 = 0.9, slope = -6. Armijo needs f(a) <= 0.9 - 0.06 a:
  # a = 1: 4.9, 0.8: 2.5, 0.64: 1.156 fail; a = 0.512: 0.4492 <= 0.8693 passes (3 new evals).
  f = lambda a: 10. * (a - 0.3)**2
  rate, value, evals = hf.armijo_line_search(f, 0.9, -6., f(1.))
  np.testing.assert_allclose([rate, value, evals], [0.512, f(0.512), 3], rtol=1e-6)
  # An ascent direction is rejected after max_steps rates: rate 0, f unchanged.
  rate, value, evals = hf.armijo_line_search(lambda a: 1. + a, 1., 1., 2., max_steps=5)
  np.testing.assert_allclose([rate, value, evals], [0., 1., 4])


@pytest.mark.parametrize("preconditioned", [False, True])
def test_one_cg_step_from_warm_start_is_nag_like_closed_form(x64, preconditioned):
  rng = np.random.default_rng(8)
  n, mu = 9, 0.9
  b = random_spd(rng, n, 50.)
  g, p_prev = rng.standard_normal(n), rng.standard_normal(n)
  m = rng.uniform(0.5, 2., n) if preconditioned else np.ones(n)
  # Hand-computed: x0 = mu p, r0 = g + B x0, y0 = r0 / m, alpha = r0.y0 / y0.B.y0,
  # p = x0 - alpha y0 = mu p_prev - alpha M^-1 (g + B mu p_prev).
  x0 = mu * p_prev
  r0 = g + b @ x0
  y0 = r0 / m
  alpha = (r0 @ y0) / (y0 @ b @ y0)
  want = mu * p_prev - alpha * (g + b @ (mu * p_prev)) / m
  matvec = lambda v: jnp.asarray(b) @ v
  precond = jnp.asarray(m) if preconditioned else None
  res = hf.pcg(matvec, jnp.asarray(g), jnp.asarray(x0), precond=precond, max_iters=1)
  np.testing.assert_allclose(res.x, want, rtol=1e-12, atol=1e-12)
  step, got_alpha, lookahead = hf.nag_like_step(jnp.asarray(g), matvec, jnp.asarray(p_prev), mu,
                                                precond)
  np.testing.assert_allclose(step, want, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got_alpha, alpha, rtol=1e-12)
  np.testing.assert_allclose(lookahead, r0, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# The optimizer.


def test_linear_least_squares_quadratic_model_is_exact(x64):
  """Linear model + squared error: f is quadratic and G is its Hessian, so rho = 1 exactly,
  the damping drops by 2/3 every update, and g + G (mu p) is the exact look-ahead gradient."""
  rng = np.random.default_rng(9)
  x = jnp.asarray(rng.standard_normal((20, 4)))
  y = jnp.asarray(rng.standard_normal((20, 3)))
  params = {"w": jnp.asarray(rng.standard_normal((4, 3))), "b": jnp.zeros(3)}
  apply = lambda p, xx: xx @ p["w"] + p["b"]
  opt = hf.hessian_free(apply, "squared_error", init_damping=2.)
  step = jax.jit(opt.step)
  state = opt.init(params)
  want_damping = 2.
  for _ in range(3):
    params, state, info = step(state, params, (x, y), (x, y))
    np.testing.assert_allclose(info.rho, 1., rtol=1e-9)
    np.testing.assert_allclose(info.damping, want_damping, rtol=1e-12)
    want_damping *= 2. / 3.
    np.testing.assert_allclose(state.damping, want_damping, rtol=1e-12)
  # Look-ahead identity for the quadratic: g + G (mu p) = grad f(theta + mu p).
  flat, unravel = ravel_pytree(params)
  f = lambda w: hf.objective(apply, "squared_error", unravel(w), (x, y))
  p = jnp.asarray(rng.standard_normal(flat.size))
  gn = hf.gauss_newton_matvec(lambda w, xx: apply(unravel(w), xx), "squared_error", flat, (x, y))
  _, _, lookahead = hf.nag_like_step(jax.grad(f)(flat), gn, p, 0.9)
  np.testing.assert_allclose(lookahead, jax.grad(f)(flat + 0.9 * p), rtol=1e-10, atol=1e-12)


def test_hf_lowers_autoencoder_objective_monotonically():
  rng = np.random.default_rng(10)
  # Data on a 3-D manifold, 16 pixels in [0, 1]: a tiny stand-in for CURVES.
  codes = rng.standard_normal((96, 3))
  data = 1. / (1. + np.exp(-codes @ rng.standard_normal((3, 16)) * 2.))
  data = jnp.asarray(data, jnp.float32)
  params = mlp_init(11, [16, 12, 3, 12, 16])
  opt = hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", max_cg_iters=50)
  step = jax.jit(opt.step)
  state = opt.init(params)
  np_loss = lambda p: np_sigmoid_ce(np_mlp_apply(p, data), np.asarray(data, np.float64))
  losses = [np_loss(params)]
  for _ in range(6):
    params, state, info = step(state, params, (data, data), (data[:48], data[:48]))
    losses.append(np_loss(params))
    np.testing.assert_allclose(info.new_loss, losses[-1], rtol=1e-5)
    assert int(info.cg_iters) >= 1 and 0. < float(info.rate) <= 1.
  assert all(b < a for a, b in zip(losses, losses[1:])), losses
  assert losses[-1] < 0.97 * losses[0], losses  # real progress, not just rate-0 steps


def test_reduction_ratio_hand_values():
  assert float(hf.reduction_ratio(jnp.float32(-1.), jnp.float32(-2.))) == 0.5
  assert float(hf.reduction_ratio(jnp.float32(0.5), jnp.float32(-2.))) == -0.25
  # Two increases would give rho = 1 ("the model is accurate"); it is a failure instead.
  assert np.isnan(float(hf.reduction_ratio(jnp.float32(0.1), jnp.float32(0.1))))
  assert np.isnan(float(hf.reduction_ratio(jnp.float32(-0.1), jnp.float32(0.))))
  assert float(hf.update_damping(jnp.float32(2.), hf.reduction_ratio(0.1, 0.1))) == 3.


def test_vmap_population_equals_individual_runs(x64):
  rng = np.random.default_rng(12)
  data = jnp.asarray(rng.random((24, 6)))
  hparams = dict(decay=jnp.asarray([0.95, 0.5, 0.]), init_damping=jnp.asarray([45., 5., 1.]),
                 max_cg_iters=jnp.asarray([250, 3, 1]))
  params0 = [mlp_init(20 + i, [6, 4, 2, 4, 6]) for i in range(3)]

  def make(hp):
    return hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", decay=hp["decay"],
                           init_damping=hp["init_damping"], max_cg_iters=hp["max_cg_iters"],
                           cg_iters_bound=250)

  @jax.jit
  @chex.assert_max_traces(n=2)  # one individual and one vmapped trace, whatever the values
  def step(hp, state, params):
    return make(hp).step(state, params, (data, data), (data[:12], data[:12]))

  def run(hp, params, step_fn, init_fn):
    state, infos = init_fn(hp, params), []
    for _ in range(3):
      params, state, info = step_fn(hp, state, params)
      infos.append(info)
    return params, state, infos

  individual = [run(jax.tree.map(lambda a, i=i: a[i], hparams), params0[i], step,
                    lambda hp, p: make(hp).init(p)) for i in range(3)]
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *params0)
  population = run(hparams, stacked, jax.vmap(step),
                   jax.vmap(lambda hp, p: make(hp).init(p)))
  for i, ind in enumerate(individual):
    for a, b in zip(jax.tree.leaves(ind), jax.tree.leaves(population)):
      np.testing.assert_allclose(b[i], a, rtol=1e-9, atol=1e-12)
  cg_iters = np.array([[int(info.cg_iters) for info in ind[2]] for ind in individual])
  assert (cg_iters[1] == 3).all() and (cg_iters[2] == 1).all() and (cg_iters[0] > 3).all()


def test_momentum_like_hf_one_step_matches_closed_form(x64):
  """momentum_like_hf with one CG step: p = nag_like_step(g, G + lambda I, mu p_prev) and no
  backtracking (the line search may scale the applied step, not the stored p)."""
  rng = np.random.default_rng(13)
  data = jnp.asarray(rng.random((16, 5)))
  params = mlp_init(14, [5, 3, 5])
  opt = hf.momentum_like_hf(mlp_apply, "sigmoid_cross_entropy", cg_iters=1, decay=0.9,
                            preconditioner="none", init_damping=3.)
  step = jax.jit(opt.step)
  state = opt.init(params)
  params, state, _ = step(state, params, (data, data), (data, data))
  flat, unravel = ravel_pytree(params)
  f = lambda w: hf.objective(mlp_apply, "sigmoid_cross_entropy", unravel(w), (data, data))
  lam = state.damping
  p_prev = ravel_pytree(state.prev_update)[0]
  # Hand-computed NAG-like update from explicit NumPy matrices.
  jac = np.asarray(jax.jacfwd(lambda w: mlp_apply(unravel(w), data).reshape(-1))(flat))
  s = 1. / (1. + np.exp(-np.asarray(mlp_apply(params, data)).reshape(-1)))
  b = jac.T @ (jac * (s * (1 - s))[:, None]) / 16 + float(lam) * np.eye(flat.size)
  g = np.asarray(jax.grad(f)(flat))
  r0 = g + b @ (0.9 * np.asarray(p_prev))
  want = 0.9 * np.asarray(p_prev) - (r0 @ r0) / (r0 @ b @ r0) * r0
  _, state2, info = step(state, params, (data, data), (data, data))
  assert int(info.cg_iters) == 1
  np.testing.assert_allclose(ravel_pytree(state2.prev_update)[0], want, rtol=1e-9, atol=1e-12)


def test_invalid_arguments_raise_value_error():
  with pytest.raises(ValueError, match="valid losses"):
    hf.hessian_free(mlp_apply, "hinge")
  with pytest.raises(ValueError, match="decay"):
    hf.hessian_free(mlp_apply, "squared_error", decay=1.5)
  with pytest.raises(ValueError, match="init_damping"):
    hf.hessian_free(mlp_apply, "squared_error", init_damping=0.)
  with pytest.raises(ValueError, match="max_cg_iters"):
    hf.hessian_free(mlp_apply, "squared_error", max_cg_iters=0)
  with pytest.raises(ValueError, match="backtrack_mode"):
    hf.hessian_free(mlp_apply, "squared_error", backtrack_mode="sideways")
  opt = hf.hessian_free(mlp_apply, "squared_error")
  params = mlp_init(0, [2, 2])
  x = jnp.ones((3, 2))
  with pytest.raises(ValueError, match="batch must be a tuple"):
    opt.step(opt.init(params), params, x, (x, x))
  with pytest.raises(ValueError, match="number of cases"):
    opt.step(opt.init(params), params, (x, x[:2]), (x, x))


def test_hf_study_compared_at_final_errors(tmp_path, monkeypatch):
  """compare="final" (the paper preset's mode): every HF variant runs all its updates and NAG
  its own `nag_steps`, whatever the main run's budgets; the rows say so."""
  from experiments import hf as hf_study  # pylint: disable=import-outside-toplevel
  small = dict(hf_study.PRESETS["tiny"], hf_steps=3, nag_steps=40, nag_chunk=20,
               nag_lrs=(0.01,), quad_iters=5, power_iters=5, compare="final")
  monkeypatch.setitem(hf_study.PRESETS, "tiny_final", small)
  out = hf_study.run(str(tmp_path), "tiny_final")
  rows = {r["variant"]: r for r in out["table"]}
  assert {r["compared_at"] for r in rows.values()} == {"final"}
  for variant in ("hf", "hf_no_warm_start", "hf_momentum_like", "hf_1cg"):
    assert rows[variant]["updates"] == 3
  assert rows["nag"]["updates"] == 40
  frame = hf_study.results_frame(out)
  assert set(frame[frame["experiment"] == "hf"]["compared_at"]) == {"final"}


def test_hf_paper_preset_and_hybrid_schedules_match_the_paper():
  """Against docs/paper.md sections 6 and 9 (hand-copied): at most 250 CG steps; the hybrid
  HF-dagger phases of Curves (250k + 100k + 500k stated CG steps, ending at 0.058) and Mnist
  (25k + 225k + 125k, 0.81 after its second phase, ending at 0.69)."""
  from experiments import hf as hf_study  # pylint: disable=import-outside-toplevel
  paper = hf_study.PRESETS["paper"]
  assert paper["max_cg"] == 250 and paper["compare"] == "final"
  assert paper["grad_batch"] == paper["num_train"] == 20000
  curves = hf_study.HYBRID_SCHEDULES["curves"]
  assert curves["final_error"] == 0.058
  assert sum(p["cg_steps"] or 0 for p in curves["phases"]) == 850_000
  assert [p["cg_per_update"] for p in curves["phases"]] == [50, 50, 200, 200]
  assert curves["phases"][0]["batch_fraction"] == 1 / 16
  mnist = hf_study.HYBRID_SCHEDULES["mnist"]
  assert mnist["final_error"] == 0.69 and mnist["phases"][1]["error_after"] == 0.81
  assert sum(p["cg_steps"] for p in mnist["phases"]) == 375_000
  assert {p["l2"] for p in mnist["phases"]} == {1e-5}


def test_hf_study_nag_arm_is_the_engine_and_equals_the_old_loop():
  """The NAG arm trained by the engine (experiments.hf_nag) equals the study's former loop,
  written out here (mominit.nag with the paper's schedule, optax.apply_updates, error at theta),
  on the engine's minibatches (per-epoch permutations) from the same initial parameters."""
  import optax
  import mominit
  from mominit import schedules
  from mominit.models import autoencoder_from_sizes
  from mominit.problems.autoencoder import epoch_order
  from experiments import hf_nag
  rng = np.random.default_rng(0)
  data = rng.random((48, 12)).astype(np.float32)
  cfg = dict(sizes=(12, 6, 3), nag_batch=8, nag_chunk=4, nag_lrs=(0.05, 0.01), nag_mu_max=0.99,
             seed=3, nag_steps=14, max_updates_factor=2)
  steps = hf_nag.budget_steps(cfg, None, 1.)
  assert steps == 14
  recs = hf_nag.run(cfg, data, steps)
  model = autoencoder_from_sizes((12, 6, 3), "logistic")
  init = autoencoder_from_sizes((12, 6, 3), "logistic", init="sparse")
  key = jax.random.PRNGKey(3)
  params0 = init.init(jax.random.fold_in(key, 0), jnp.asarray(data[:1]))["params"]
  np.testing.assert_array_equal(ravel_pytree(params0)[0],
                                ravel_pytree(hf_nag.initial_params(cfg, data)[0])[0])
  data_key = jax.random.fold_in(key, 1)
  sq_error = lambda p: np.mean(np.sum(
      (np.asarray(jax.nn.sigmoid(model.apply({"params": p}, data))) - data)**2, axis=1))
  for lr, rec in zip(cfg["nag_lrs"], recs):
    opt = mominit.nag(lr, schedules.sutskever_momentum(0.99))
    params, state = params0, opt.init(params0)
    want = [sq_error(params0)]
    for t in range(steps):
      order = np.asarray(epoch_order(data_key, t // 6, 48))  # 48 / 8 = 6 minibatches an epoch
      x = jnp.asarray(data[order[(t % 6) * 8:(t % 6) * 8 + 8]])
      grads = jax.grad(lambda p: jnp.mean(jnp.sum(
          optax.sigmoid_binary_cross_entropy(model.apply({"params": p}, x), x), -1)))(params)
      updates, state = opt.update(grads, state, params)
      params = optax.apply_updates(params, updates)
      if (t + 1) % 4 == 0 or t + 1 == steps:
        want.append(sq_error(mominit.theta(params, state)))
    assert rec["updates"] == [0, 4, 8, 12, 14] and rec["evals"] == [0, 32, 64, 96, 112]
    np.testing.assert_allclose(rec["train_error"], want, rtol=2e-5)
    assert want[-1] < 0.95 * want[0]  # it trained
  # With a budget (E, T): enough updates for both, whole evaluation intervals, capped.
  assert hf_nag.budget_steps(cfg, (100, 0.), 1.) == 16          # ceil(100 / 8) = 13 -> 16
  assert hf_nag.budget_steps(cfg, (100, 18.), 1.) == 20          # 18 s at 1 s/update -> 20
  assert hf_nag.budget_steps(cfg, (100, 30.), 1.) == 28          # 30, capped at 2 x 13 -> 28


def test_engine_refuses_bad_encoder_sizes_naming_the_field():
  from mominit import sweep
  config = sweep.default_config("autoencoder")
  assert config.encoder_sizes is None  # the paper's net; older config.json files stay valid
  for bad in ((784,), (784, 0), (784, 2.5)):
    config.encoder_sizes = bad
    with pytest.raises(ValueError, match="config.encoder_sizes"):
      sweep.validate_config(config)


# ---------------------------------------------------------------------------------------------
# Step-size multiplier eps, L2 weight cost, multi-phase runs (the hybrid HF-dagger schedules).


def _np_mlp_pieces(params, x, y):
  """float64 NumPy: sigmoid CE objective, its gradient J^T (s - y) / B and G = J^T S J / B
  (J from jax.jacfwd, S = diag(s (1 - s))), for `mlp_apply`'s logits."""
  flat, unravel = ravel_pytree(params)
  jac = np.asarray(jax.jacfwd(lambda w: mlp_apply(unravel(w), x).reshape(-1))(flat))
  z = np_mlp_apply(params, x).reshape(-1)
  s = 1. / (1. + np.exp(-z))
  b = x.shape[0]
  grad = jac.T @ (s - np.asarray(y).reshape(-1)) / b
  gn = jac.T @ (jac * (s * (1 - s))[:, None]) / b
  return np.asarray(flat), grad, gn


def test_l2_weight_cost_in_objective_gradient_and_curvature_float64(x64):
  """HF with l2: with CG run to convergence from zero, the update solves
  (G + l2 I + lambda I) p = -(g + l2 theta); loss, model decrease and rho use
  f + l2/2 |theta|^2 and the undamped model with G + l2 I (hand NumPy, float64)."""
  rng = np.random.default_rng(21)
  x = jnp.asarray(rng.random((10, 4)))
  params = mlp_init(22, [4, 3, 4])
  l2, lam = 0.3, 0.7
  opt = hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", decay=0., init_damping=lam,
                        max_cg_iters=80, cg_eps=0., backtrack_mode="none", line_search=False,
                        l2=l2)
  new_params, state, info = jax.jit(opt.step)(opt.init(params), params, (x, x), (x, x))
  flat, grad, gn = _np_mlp_pieces(params, x, x)
  g = grad + l2 * flat
  want_p = np.linalg.solve(gn + (l2 + lam) * np.eye(flat.size), -g)
  np.testing.assert_allclose(ravel_pytree(state.prev_update)[0], want_p, rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(ravel_pytree(new_params)[0], flat + want_p, rtol=1e-8, atol=1e-10)
  f = lambda w, p=params: np_sigmoid_ce(np_mlp_apply(ravel_pytree(p)[1](jnp.asarray(w)), x),
                                        np.asarray(x)) + 0.5 * l2 * w @ w
  np.testing.assert_allclose(info.loss, f(flat), rtol=1e-12)
  model = g @ want_p + 0.5 * want_p @ (gn + l2 * np.eye(flat.size)) @ want_p
  np.testing.assert_allclose(info.model_decrease, model, rtol=1e-8)
  np.testing.assert_allclose(info.rho, (f(flat + want_p) - f(flat)) / model, rtol=1e-7)
  np.testing.assert_allclose([info.l2, info.eps], [l2, 1.], rtol=0)
  # The matrix-vector product CG saw, along one direction: a single CG step from zero gives
  # p = -alpha g with alpha = g.g / g.(G + l2 + lambda) g.
  one = hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", decay=0., init_damping=lam,
                        max_cg_iters=1, preconditioner="none", backtrack_mode="none",
                        line_search=False, l2=l2)
  _, state1, _ = jax.jit(one.step)(one.init(params), params, (x, x), (x, x))
  alpha = (g @ g) / (g @ (gn + (l2 + lam) * np.eye(flat.size)) @ g)
  np.testing.assert_allclose(ravel_pytree(state1.prev_update)[0], -alpha * g, rtol=1e-10)
  # Martens' preconditioner includes the weight cost: (fisher + lambda + l2)^(3/4). With it,
  # one CG step is p = -(r.y / y.B y) y, y = g / M.
  pre = hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", decay=0., init_damping=lam,
                        max_cg_iters=1, backtrack_mode="none", line_search=False, l2=l2)
  _, state2, _ = jax.jit(pre.step)(pre.init(params), params, (x, x), (x, x))
  fisher = ravel_pytree(hf.empirical_fisher_diagonal(mlp_apply, "sigmoid_cross_entropy",
                                                     params, (x, x)))[0]
  y = g / (np.asarray(fisher) + lam + l2)**0.75
  beta = (g @ y) / (y @ (gn + (l2 + lam) * np.eye(flat.size)) @ y)
  np.testing.assert_allclose(ravel_pytree(state2.prev_update)[0], -beta * y, rtol=1e-10)


def test_eps_scales_the_step_exactly_and_nothing_else(x64):
  rng = np.random.default_rng(23)
  x = jnp.asarray(rng.random((12, 5)))
  params = mlp_init(24, [5, 3, 5])
  make = lambda eps: hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", max_cg_iters=4,
                                     init_damping=2., eps=eps)
  base, scaled, sched = make(1.), make(0.37), make(lambda t: 0.37 / (t + 1.))
  state = base.init(params)
  p1, s1, i1 = jax.jit(base.step)(state, params, (x, x), (x[:6], x[:6]))
  for opt in (scaled, sched):
    p2, s2, i2 = jax.jit(opt.step)(state, params, (x, x), (x[:6], x[:6]))
    flat = ravel_pytree(params)[0]
    np.testing.assert_allclose(ravel_pytree(p2)[0] - flat, 0.37 * (ravel_pytree(p1)[0] - flat),
                               rtol=1e-12, atol=1e-15)
    chex.assert_trees_all_close(s2, s1, rtol=0, atol=0)  # warm start, damping: as for eps = 1
    np.testing.assert_allclose([i2.rho, i2.rate, i2.eps], [i1.rho, i1.rate, 0.37], rtol=1e-14)
    np.testing.assert_allclose(i2.new_loss, np_sigmoid_ce(np_mlp_apply(p2, x), np.asarray(x)),
                               rtol=1e-12)
    assert int(i2.num_loss_evals) == int(i1.num_loss_evals) + 1
  # The schedule reads the update count: 0.37 / 2 at the second update.
  _, _, i3 = jax.jit(sched.step)(s1, p1, (x, x), (x[:6], x[:6]))
  np.testing.assert_allclose(i3.eps, 0.37 / 2, rtol=1e-15)
  with pytest.raises(ValueError, match="eps"):
    make(0.)
  with pytest.raises(ValueError, match="l2"):
    hf.hessian_free(mlp_apply, "squared_error", l2=-1e-5)


def test_run_phases_lengths_and_equality_with_plain_steps(x64):
  rng = np.random.default_rng(25)
  data = jnp.asarray(rng.random((24, 6)))
  params = mlp_init(26, [6, 4, 6])
  eps = lambda t: 2. / (t + 2.)
  phases = [hf.Phase(cg_steps=7, cg_per_update=3, decay=0.9, eps=1., l2=1e-3),
            hf.Phase(cg_steps=4, cg_per_update=2, decay=0.99, eps=eps, l2=0.)]
  kw = dict(cg_eps=0., init_damping=3.)
  out, rec = hf.run_phases(mlp_apply, "sigmoid_cross_entropy", params, data, phases,
                           hf_kwargs=kw)
  # 7 CG steps at 3 per update: 3 updates (9 steps); then 4 at 2 per update: 2 updates.
  assert [(e["updates"], e["cg_steps"]) for e in rec["phase_ends"]] == [(3, 9), (5, 13)]
  # The same run as plain hessian_free steps on the whole set (fraction 1), eps at t = 3, 4.
  make = lambda hp: hf.hessian_free(mlp_apply, "sigmoid_cross_entropy", decay=hp[0],
                                    max_cg_iters=hp[1], cg_iters_bound=3, eps=hp[2], l2=hp[3],
                                    **kw)
  step = jax.jit(lambda hp, s, p: make(hp).step(s, p, (data, data), (data, data)))
  p, state = params, make((0.9, 3, 1., 0.)).init(params)
  for t, hp in enumerate([(0.9, 3, 1., 1e-3)] * 3 + [(0.99, 2, eps(3), 0.), (0.99, 2, eps(4), 0.)]):
    p, state, info = step(jnp.asarray(hp), state, p)
    assert int(info.cg_iters) == hp[1]
  chex.assert_trees_all_close(out, p, rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match=r"phases\[1\].grad_fraction"):
    hf.run_phases(mlp_apply, "squared_error", params, data,
                  [phases[0], phases[1]._replace(grad_fraction=1.5)])


def test_hybrid_phases_follow_the_papers_schedules():
  """configs/hf.py hybrid configs -> mominit.hf.Phase lists, against docs/paper.md section 9
  (hand-copied) and the readings documented in experiments.hf_hybrid."""
  from configs import hf as hf_config  # pylint: disable=import-outside-toplevel
  from experiments import hf as hf_study  # pylint: disable=import-outside-toplevel
  from experiments import hf_hybrid  # pylint: disable=import-outside-toplevel
  curves = hf_hybrid.phases(hf_config.get_config("hybrid_curves_paper"),
                            hf_study.HYBRID_SCHEDULES)
  assert [p.cg_steps for p in curves] == [250_000, 250_000, 100_000, 500_000]
  assert [p.cg_per_update for p in curves] == [50, 50, 200, 200]
  assert [p.grad_fraction for p in curves] == [1 / 16, 1 / 16, 1., 1.]
  assert [p.decay for p in curves] == [0.95, 0.999, 0.995, 0.995]
  assert curves[0].eps == 1. and curves[0].l2 == 2e-5
  # Phase 2 starts at update 5,000: eps = 500 / (t - 4000) = 0.5, then 500 / 6000 at 10,000.
  np.testing.assert_allclose([curves[1].eps(5000), curves[1].eps(10_000)], [0.5, 500 / 6000])
  # Phase 4 (updates 10,500 .. 12,999): L2 from 2e-5 down to 2e-8, log-linearly.
  np.testing.assert_allclose([curves[3].l2(10_500), curves[3].l2(11_749.5), curves[3].l2(12_999)],
                             [2e-5, 2e-5 * 10**-1.5, 2e-8], rtol=1e-9)
  mnist = hf_hybrid.phases(hf_config.get_config("hybrid_mnist_paper"), hf_study.HYBRID_SCHEDULES)
  assert [p.cg_steps for p in mnist] == [25_000, 225_000, 125_000]
  assert [(p.grad_fraction, p.curv_fraction) for p in mnist] == [(1 / 20, 1 / 20)] * 2 + [
      (1., 1 / 20)]
  assert {p.l2 for p in mnist} == {1e-5}
  np.testing.assert_allclose(mnist[1].eps(500), 0.5)  # 250 / t at the end of phase 1
  # Reduced: lengths x 1/5000, CG steps per update x 1/10; eps follows the paper's curve at
  # t / (1/500): phase 2 of hybrid_tiny starts at update 10 with eps 0.5.
  tiny = hf_hybrid.phases(hf_config.get_config("hybrid_tiny"), hf_study.HYBRID_SCHEDULES)
  assert [(p.cg_steps, p.cg_per_update) for p in tiny] == [(50, 5), (50, 5), (20, 20), (100, 20)]
  np.testing.assert_allclose(tiny[1].eps(10), 0.5)
  bad = hf_config.get_config("hybrid_tiny")
  bad.length_scale = 2.
  with pytest.raises(ValueError, match="config.length_scale"):
    hf_hybrid.phases(bad, hf_study.HYBRID_SCHEDULES)


def test_hybrid_tiny_runs_from_the_cli(tmp_path):
  import json  # pylint: disable=import-outside-toplevel
  from experiments import hf as hf_study  # pylint: disable=import-outside-toplevel
  hf_study.main(["--workdir", str(tmp_path), "--config", "configs/hf.py:hybrid_tiny",
                 "--config.num_train=160", "--config.sizes=(784, 8, 3)"])
  out = json.loads((tmp_path / "hf_hybrid.json").read_text())
  ends = out["phase_ends"]
  # 50 CG steps at 5 an update: 10 updates; 50 more; 20 at 20: 1; 100 at 20: 5.
  assert [(e["updates"], e["cg_steps"]) for e in ends] == [(10, 50), (20, 100), (21, 120),
                                                           (26, 220)]
  assert ends[-1]["error"] < out["curve"]["error"][0]  # it trained
  assert "| 4 | 100 | 20 |" in (tmp_path / "hf_hybrid.md").read_text()
