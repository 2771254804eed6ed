"""Tests of mominit.diagnostics against float64 NumPy forward and hand-written backprop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import diagnostics
from mominit.diagnostics import Layer

# A 5-4-6-3-2 net mixing every bounded activation; the output layer gives logits.
SIZES = (5, 4, 6, 3, 2)
ACTS = ("sigmoid", "tanh", "softsign", "linear")
SPEC = tuple(Layer(("net", f"layer_{i}"), a) for i, a in enumerate(ACTS))
BATCH = 7


def softmax_xent(logits, batch):
  """Mean over cases of the softmax cross-entropy; batch = (inputs, one-hot targets)."""
  return -jnp.mean(jnp.sum(batch[1] * jax.nn.log_softmax(logits), axis=-1))


def sum_squared_error(outputs, batch):
  return jnp.mean(jnp.sum((outputs - batch) ** 2, axis=-1))


# --- float64 NumPy reference of the paper's quantities -------------------------------------------
def np_act(name, z):
  return {"sigmoid": lambda: 1 / (1 + np.exp(-z)), "tanh": lambda: np.tanh(z),
          "softsign": lambda: z / (1 + np.abs(z)), "linear": lambda: z}[name]()


def np_slope(name, z):
  if name == "sigmoid":
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)
  if name == "tanh":
    return 1 - np.tanh(z) ** 2
  if name == "softsign":
    return 1 / (1 + np.abs(z)) ** 2
  return np.ones_like(z)


def np_reference(ws, bs, x, y, acts):
  zs, as_ = [], []
  a = x
  for w, b, name in zip(ws, bs, acts):
    z = a @ w + b
    a = np_act(name, z)
    zs.append(z)
    as_.append(a)
  logits = as_[-1]
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  loss = -np.mean(np.sum(y * np.log(p), 1))
  # Per-case backprop: delta_L = softmax - y (linear output), delta_i = (delta_{i+1} W^T) f'(z_i).
  deltas = [None] * len(ws)
  deltas[-1] = (p - y) * np_slope(acts[-1], zs[-1])
  for i in range(len(ws) - 2, -1, -1):
    deltas[i] = (deltas[i + 1] @ ws[i + 1].T) * np_slope(acts[i], zs[i])
  inputs = [x] + as_[:-1]
  kernel_grads = [inp.T @ d / x.shape[0] for inp, d in zip(inputs, deltas)]
  return dict(loss=loss, zs=zs, acts=as_, deltas=deltas, kernel_grads=kernel_grads,
              bias_grads=[d.mean(0) for d in deltas])


def make_problem(seed=0, weight_scale=4.0):
  rng = np.random.default_rng(seed)
  ws = [weight_scale * rng.normal(size=(m, n)) / np.sqrt(m) for m, n in zip(SIZES, SIZES[1:])]
  bs = [0.5 * rng.normal(size=n) for n in SIZES[1:]]
  x = rng.normal(size=(BATCH, SIZES[0]))
  y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], BATCH)]
  params = {"params": {"net": {f"layer_{i}": {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)}
                               for i, (w, b) in enumerate(zip(ws, bs))}}}
  return ws, bs, x, y, params


MODEL = diagnostics.MLP(SIZES)  # only a static key here: SPEC overrides its layout


def test_layer_stats_equal_numpy(x64):
  ws, bs, x, y, params = make_problem()
  ref = np_reference(ws, bs, x, y, ACTS)
  stats = diagnostics.layer_stats(MODEL, params, (jnp.asarray(x), jnp.asarray(y)), softmax_xent,
                                  spec=SPEC, jacobian_examples=3)
  np.testing.assert_allclose(stats["loss"], ref["loss"], rtol=1e-12)
  np.testing.assert_allclose(stats["act_mean"], [a.mean() for a in ref["acts"]], rtol=1e-12)
  np.testing.assert_allclose(stats["act_std"], [a.std() for a in ref["acts"]], rtol=1e-12)
  np.testing.assert_allclose(stats["preact_std"], [z.std() for z in ref["zs"]], rtol=1e-12)
  np.testing.assert_allclose(
      stats["act_percentiles"],
      [np.percentile(a, [2, 16, 50, 84, 98]) for a in ref["acts"]], rtol=1e-12)
  sat = []
  for a, name in zip(ref["acts"], ACTS):
    lo, hi = {"sigmoid": (0, 1), "tanh": (-1, 1), "softsign": (-1, 1)}.get(name, (-np.inf, np.inf))
    sat.append(np.mean((a - lo <= 0.01) | (hi - a <= 0.01)))
  assert 0 < sat[0] < 1 and 0 < sat[1] < 1, sat  # the test data exercises saturation
  np.testing.assert_allclose(stats["saturation"], sat, rtol=1e-12)
  np.testing.assert_allclose(stats["backprop_var"], [d.var() for d in ref["deltas"]], rtol=1e-10)
  np.testing.assert_allclose(stats["weight_grad_norm"],
                             [np.linalg.norm(g) for g in ref["kernel_grads"]], rtol=1e-10)
  np.testing.assert_allclose(stats["weight_grad_var"],
                             [g.var() for g in ref["kernel_grads"]], rtol=1e-10)


def test_layer_values_equal_numpy(x64):
  ws, bs, x, y, params = make_problem(seed=1)
  ref = np_reference(ws, bs, x, y, ACTS)
  v = diagnostics.layer_values(MODEL, params["params"], (jnp.asarray(x), jnp.asarray(y)),
                               softmax_xent, spec=SPEC)
  for key, ref_key in (("preacts", "zs"), ("acts", "acts"), ("deltas", "deltas"),
                       ("kernel_grads", "kernel_grads"), ("bias_grads", "bias_grads")):
    for got, want in zip(v[key], ref[ref_key]):
      np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14, err_msg=key)


def test_jacobian_singular_values_equal_numpy_svd(x64):
  ws, bs, x, y, params = make_problem(seed=2)
  ref = np_reference(ws, bs, x, y, ACTS)
  k = 4
  stats = diagnostics.layer_stats(MODEL, params, (jnp.asarray(x), jnp.asarray(y)), softmax_xent,
                                  spec=SPEC, jacobian_examples=k)
  values = diagnostics.layer_values(MODEL, params, (jnp.asarray(x), jnp.asarray(y)),
                                    softmax_xent, spec=SPEC, jacobian_examples=k)
  assert len(stats["jacobian_sv"]) == len(ACTS)
  for i, (w, z, name) in enumerate(zip(ws, ref["zs"], ACTS)):
    svs = []
    for b in range(k):
      # d a_i / d a_{i-1} for case b, built entry by entry: J[o, j] = f'(z[b, o]) * W[j, o].
      jac = np.array([[np_slope(name, z[b, o]) * w[j, o] for j in range(w.shape[0])]
                      for o in range(w.shape[1])])
      svs.append(np.linalg.svd(jac, compute_uv=False))
    np.testing.assert_allclose(stats["jacobian_sv"][i], np.mean(svs, 0), rtol=1e-10,
                               err_msg=f"layer {i}")
    np.testing.assert_allclose(values["jacobian_sv"][i], np.mean(svs, 0), rtol=1e-10)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softsign"])
def test_mlp_forward_matches_apply_and_spec(x64, activation):
  # An autoencoder-shaped MLP (output width = input width), so the batch is its own target.
  model = diagnostics.MLP((6, 5, 4, 6), activation=activation)
  x = jax.random.normal(jax.random.key(0), (BATCH, 6))
  params = model.init(jax.random.key(1), x)
  assert diagnostics.layer_spec(model) == (
      Layer(("dense_0",), activation), Layer(("dense_1",), activation),
      Layer(("dense_2",), "linear"))
  v = diagnostics.layer_values(model, params, x, sum_squared_error)
  out = np.asarray(model.apply(params, x))
  np.testing.assert_allclose(v["acts"][-1], out, rtol=1e-12)
  np.testing.assert_allclose(v["loss"], np.mean(np.sum((out - np.asarray(x)) ** 2, 1)),
                             rtol=1e-12)
  assert [a.shape for a in v["acts"]] == [(BATCH, 5), (BATCH, 4), (BATCH, 6)]


def test_vmap_over_population_equals_individual_calls():
  model = diagnostics.MLP((6, 8, 8, 3), activation="tanh")
  keys = jax.random.split(jax.random.key(3), 2)
  x = jax.random.normal(jax.random.key(4), (BATCH, 6))
  y = jax.nn.one_hot(jnp.arange(BATCH) % 3, 3)
  population = jax.vmap(lambda k: model.init(k, x))(keys)
  batched = jax.vmap(lambda p: diagnostics.layer_stats(
      model, p, (x, y), softmax_xent, jacobian_examples=2))(population)
  assert len(batched["jacobian_sv"]) == 3
  for m in range(2):
    single = diagnostics.layer_stats(model, jax.tree.map(lambda a: a[m], population), (x, y),
                                     softmax_xent, jacobian_examples=2)
    jax.tree.map(lambda b, s: np.testing.assert_allclose(b[m], s, rtol=2e-5, atol=1e-7),
                 batched, single)
  # The two members differ, so the comparison is not between equal numbers.
  assert not np.allclose(batched["act_std"][0], batched["act_std"][1])


def test_saturation_tol_is_traced_without_retrace():
  ws, bs, x, y, params = make_problem(seed=5)
  batch = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  params = jax.tree.map(lambda a: a.astype(jnp.float32), params)
  ref = np_reference(ws, bs, x, y, ACTS)
  before = diagnostics._layer_stats_jit._cache_size()
  tols = jnp.array([0.01, 0.1, 0.3])
  swept = jax.vmap(lambda t: diagnostics.layer_stats(
      MODEL, params, batch, softmax_xent, spec=SPEC, jacobian_examples=0, saturation_tol=t))(tols)
  for tol in (0.05, 0.2):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent, spec=SPEC, jacobian_examples=0,
                            saturation_tol=tol)
  # A model rebuilt with fresh initializer closures (unequal to MODEL) must not re-trace either.
  rebuilt = diagnostics.MLP(SIZES, kernel_init=jax.nn.initializers.normal(0.3))
  assert rebuilt != MODEL
  diagnostics.layer_stats(rebuilt, params, batch, softmax_xent, spec=SPEC, jacobian_examples=0,
                          saturation_tol=0.05)
  # One trace for the vmapped sweep, one for Python-float tolerances; none per value or model.
  assert diagnostics._layer_stats_jit._cache_size() - before <= 2
  a = ref["acts"][1]  # tanh layer
  want = [np.mean(1 - np.abs(a) <= t) for t in (0.01, 0.1, 0.3)]
  assert len(set(want)) > 1, want
  np.testing.assert_allclose(swept["saturation"][:, 1], want, atol=1.5 / a.size)


def test_bad_inputs_raise_value_error():
  _, _, x, y, params = make_problem()
  batch = (jnp.asarray(x), jnp.asarray(y))
  with pytest.raises(ValueError, match="activation"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent,
                            spec=(Layer(("net", "layer_0"), "swish"),))
  with pytest.raises(ValueError, match="percentiles"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent, spec=SPEC, percentiles=(50, 101))
  with pytest.raises(ValueError, match="jacobian_examples"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent, spec=SPEC, jacobian_examples=-1)
  with pytest.raises(ValueError, match="batch size"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent, spec=SPEC, jacobian_examples=99)
  with pytest.raises(ValueError, match="not found"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent,
                            spec=(Layer(("net", "nope"), "tanh"),))
  with pytest.raises(ValueError, match="saturation_tol"):
    diagnostics.layer_stats(MODEL, params, batch, softmax_xent, spec=SPEC, saturation_tol=-0.1)
  with pytest.raises(ValueError, match="inputs"):
    diagnostics.layer_stats(MODEL, params, {"x": batch[0]}, softmax_xent, spec=SPEC)
  with pytest.raises(ValueError, match="sizes"):
    diagnostics.layer_spec(diagnostics.MLP((5,)))
  with pytest.raises(ValueError, match="pass"):
    diagnostics.layer_spec(object())


def test_deep_autoencoder_spec_matches_its_sown_intermediates(x64):
  # pylint: disable=g-import-not-at-top
  from mominit import losses
  from mominit.models import DeepAutoencoder
  model = DeepAutoencoder(encoder_sizes=(8, 5, 3), activation="tanh",
                          kernel_init=jax.nn.initializers.normal(1.0))
  x = jax.random.uniform(jax.random.key(0), (BATCH, 8))
  params = model.init(jax.random.key(1), x)
  assert [l.activation for l in diagnostics.layer_spec(model)] == [
      "tanh", "linear", "tanh", "linear"]
  out, state = model.apply(params, x, mutable=["intermediates"])
  sown = state["intermediates"]
  # The batch is the input array itself, so the project's loss serves as loss_fn unchanged.
  v = diagnostics.layer_values(model, params, x, losses.sigmoid_cross_entropy)
  for i in range(4):
    np.testing.assert_allclose(v["preacts"][i], sown[f"preact_{i}"][0], rtol=1e-12)
  for i in range(3):
    np.testing.assert_allclose(v["acts"][i], sown[f"act_{i}"][0], rtol=1e-12)
  np.testing.assert_allclose(v["acts"][-1], out, rtol=1e-12)  # logits reach the loss
  # Per-case output delta of the logistic cross-entropy is sigmoid(z) - x (closed form).
  np.testing.assert_allclose(v["deltas"][-1], jax.nn.sigmoid(out) - x, rtol=1e-10, atol=1e-14)


def test_percentiles_match_numpy_in_float32_with_ties_negatives_and_nan():
  rng = np.random.default_rng(7)
  a = np.concatenate([rng.normal(size=993), [0.0, -0.0, 3.5, 3.5, -2.0, -2.0, 1e-30, -1e-30]])
  a = rng.permutation(a).astype(np.float32).reshape(7, -1)
  q = (0.0, 2.0, 16.0, 50.0, 84.0, 98.0, 100.0, 33.3)
  got = jax.jit(lambda x: diagnostics._percentiles(x, q))(a)
  np.testing.assert_allclose(got, np.percentile(a.astype(np.float64), q), rtol=1e-6, atol=1e-7)
  a[3, 5] = np.nan
  assert np.all(np.isnan(diagnostics._percentiles(jnp.asarray(a), q)))
