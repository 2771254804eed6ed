"""Tests of mominit.models against closed forms, NumPy forwards and initialization statistics.

XLA compiles of random ops dominate the run time here, so the tests build small nets with the
paper's structure, jit every init/apply, and pull results to NumPy before indexing them.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import initializers
from mominit import models
from mominit.models import rnn

# docs/paper.md section 4, written out independently of the package.
PAPER_SIZES = {
    "curves": ((784, 400, 200, 100, 50, 25, 6), "logistic"),
    "mnist": ((784, 1000, 500, 250, 30), "logistic"),
    "faces": ((625, 2000, 1000, 500, 30), "linear"),
}
# A small net with the paper's structure: fan_in 30 > 15 so SI has a choice, 4 -> 20 has none.
SMALL = (30, 20, 4)


def _np_sigmoid(z):
  return 1 / (1 + np.exp(-z))


def _names(encoder_sizes):
  k = len(encoder_sizes) - 1
  return [f"encoder_{i}" for i in range(k)] + [f"decoder_{i}" for i in range(k)]


def _np_autoencoder(params, x, encoder_sizes, hidden_fn, output_fn):
  """Float64 NumPy forward: hidden_fn units, linear code, output_fn at the top.

  Returns:
    Per layer, the (pre-activation, activation) pair.
  """
  k = len(encoder_sizes) - 1
  h, layers = np.asarray(x, np.float64), []
  for i, name in enumerate(_names(encoder_sizes)):
    z = h @ np.asarray(params[name]["kernel"], np.float64) + np.asarray(params[name]["bias"])
    h = output_fn(z) if i == 2 * k - 1 else (z if i == k - 1 else hidden_fn(z))
    layers.append((z, h))
  return layers


def _numpy(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def _count(params):
  return sum(np.size(leaf) for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_autoencoder_sizes_outputs_and_parameter_counts(name):
  sizes, output = PAPER_SIZES[name]
  assert models.AUTOENCODER_SIZES[name] == sizes
  model = models.autoencoder(name)
  assert model.output == output
  assert models.autoencoder_loss_type(name) == (
      "sigmoid_cross_entropy" if output == "logistic" else "squared_error")
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, sizes[0])))
  # Closed form: encoder layers a -> b have a*b + b parameters, the mirrored decoder b -> a has
  # b*a + a.
  pairs = list(zip(sizes[:-1], sizes[1:]))
  expected = sum(a * b + b for a, b in pairs) + sum(b * a + a for a, b in pairs)
  assert _count(shapes) == expected
  assert sorted(shapes["params"]) == sorted(_names(sizes))


def test_parameter_count_hand_value_mnist():
  # 784*1000+1000 + 1000*500+500 + 500*250+250 + 250*30+30 = 1,418,280 (encoder);
  # 30*250+250 + 250*500+500 + 500*1000+1000 + 1000*784+784 = 1,419,034 (decoder).
  shapes = jax.eval_shape(models.autoencoder("mnist").init, jax.random.key(0), jnp.zeros((1, 784)))
  assert _count(shapes) == 1_418_280 + 1_419_034


@pytest.mark.parametrize("activation,fn,output,out_fn", [
    ("sigmoid", _np_sigmoid, "logistic", _np_sigmoid),
    ("tanh", np.tanh, "linear", lambda z: z),
    ("softsign", lambda z: z / (1 + np.abs(z)), "logistic", _np_sigmoid),
])
def test_autoencoder_forward_matches_numpy(x64, activation, fn, output, out_fn):
  sizes = (12, 8, 5, 3)
  model = models.DeepAutoencoder(encoder_sizes=sizes, activation=activation, output=output)
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(4, 12))
  full = list(sizes) + list(sizes[-2::-1])
  params = {name: {"kernel": rng.normal(scale=0.7, size=(a, b)), "bias": rng.normal(size=b)}
            for name, a, b in zip(_names(sizes), full[:-1], full[1:])}
  out, state = jax.jit(lambda p, x: model.apply({"params": p}, x, mutable=["intermediates"]))(
      params, x)
  layers = _np_autoencoder(params, x, sizes, fn, out_fn)
  assert out.dtype == jnp.float64 and out.shape == (4, 12)
  # __call__ returns the output pre-activation: logits (logistic) or the reconstruction (linear).
  np.testing.assert_allclose(out, layers[-1][0], rtol=1e-12, atol=1e-12)
  inter = _numpy(state["intermediates"])
  assert len(inter) == 2 * len(layers)
  for i, (z, a) in enumerate(layers):
    np.testing.assert_allclose(inter[f"preact_{i}"][0], z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inter[f"act_{i}"][0], a, rtol=1e-12, atol=1e-12)
  assert model.layer_names == tuple(_names(sizes))
  assert model.layer_activations == (activation, activation, "linear", activation, activation,
                                     output)
  assert model.layer_sizes == tuple(full)


def test_curves_forward_matches_numpy():
  # The full CURVES net on SI-like weights built in NumPy (only the forward pass is compiled;
  # the per-layer initializers of the named nets are checked below on small shapes).
  sizes, _ = PAPER_SIZES["curves"]
  model = models.autoencoder("curves")
  rng = np.random.default_rng(2)
  x = rng.uniform(size=(3, 784)).astype(np.float32)
  full = list(sizes) + list(sizes[-2::-1])
  params = {}
  for name, a, b in zip(_names(sizes), full[:-1], full[1:]):
    kernel = rng.normal(size=(a, b)) * (rng.uniform(size=(a, b)) < min(1.0, 15 / a))
    params[name] = {"kernel": kernel.astype(np.float32), "bias": np.zeros(b, np.float32)}
  out = jax.jit(model.apply)({"params": params}, x)
  layers = _np_autoencoder(params, x, sizes, _np_sigmoid, _np_sigmoid)
  assert np.std(layers[5][0]) > 0.1  # The code layer is not trivially zero.
  np.testing.assert_allclose(out, layers[-1][0], rtol=1e-4, atol=1e-4)


def test_tanh_sparse_conversion():
  x = jnp.zeros((1, SMALL[0]))

  @jax.jit
  def init(key):
    return [models.autoencoder_from_sizes(SMALL, activation=act).init(key, x)["params"]
            for act in ("sigmoid", "tanh")]

  sig, tanh = _numpy(init(jax.random.key(3)))
  for name in ("encoder_0", "decoder_0"):
    # Layers feeding tanh units: weights x 0.25, biases 0.5 (same key, so same SI pattern).
    np.testing.assert_allclose(tanh[name]["kernel"], 0.25 * sig[name]["kernel"], rtol=1e-6)
    np.testing.assert_array_equal(tanh[name]["bias"], 0.5)
  for name in ("encoder_1", "decoder_1"):  # Linear code layer and logistic output: plain SI.
    np.testing.assert_array_equal(tanh[name]["kernel"], sig[name]["kernel"])
    np.testing.assert_array_equal(tanh[name]["bias"], 0.0)
  # Independently of the sigmoid net: 15 non-zero weights per unit with sd 0.25.
  values = tanh["encoder_0"]["kernel"].astype(np.float64)
  np.testing.assert_array_equal((values != 0).sum(0), 15)
  values = values[values != 0]
  assert abs(values.std() - 0.25) < 5 * 0.25 / np.sqrt(2 * values.size)


def test_tanh_sparse_hfdemo_variant_per_side_factors():
  """tanh_si="hfdemo" (Martens' code): x 0.5 per tanh side. Layers (tanh, tanh, linear code,
  tanh, tanh, logistic): 0.5 (input -> tanh), 0.25 (tanh -> tanh), 0.5 (tanh -> code),
  0.5 (code -> tanh), 0.25, 0.5 (tanh -> output); the paper reading: 0.25, 0.25, 1, 0.25,
  0.25, 1."""
  sizes = (20, 12, 8, 3)
  x = jnp.zeros((1, sizes[0]))

  @jax.jit
  def init(key):
    return [models.autoencoder_from_sizes(sizes, activation=act, tanh_si=variant).init(
        key, x)["params"] for act, variant in (("sigmoid", "paper"), ("tanh", "hfdemo"),
                                               ("tanh", "paper"))]

  sig, demo, paper = _numpy(init(jax.random.key(5)))
  names = ["encoder_0", "encoder_1", "encoder_2", "decoder_0", "decoder_1", "decoder_2"]
  for name, f_demo, f_paper in zip(names, (0.5, 0.25, 0.5, 0.5, 0.25, 0.5),
                                   (0.25, 0.25, 1, 0.25, 0.25, 1)):
    np.testing.assert_allclose(demo[name]["kernel"], f_demo * sig[name]["kernel"], rtol=1e-6)
    np.testing.assert_allclose(paper[name]["kernel"], f_paper * sig[name]["kernel"], rtol=1e-6)
  with pytest.raises(ValueError, match="tanh_si"):
    models.autoencoder_from_sizes(sizes, tanh_si="martens")


def test_named_nets_use_the_converted_initializers():
  # The per-layer initializers of the full CURVES net, evaluated on a small shape (cheap: layers
  # with equal initializers give identical programs, which XLA deduplicates).
  model = models.autoencoder("curves", activation="tanh", init_scale=2.0)
  key, shape = jax.random.key(0), (40, 3)
  make = jax.jit(lambda k: [(kernel(k, shape), bias(k, shape[1:]))
                            for kernel, bias in zip(model.kernel_init, model.bias_init)])
  plain = np.asarray(jax.jit(lambda k: initializers.sparse(15, 2.0)(k, shape))(key))
  assert model.layer_activations == ("tanh",) * 5 + ("linear",) + ("tanh",) * 5 + ("logistic",)
  for act, (kernel, bias) in zip(model.layer_activations, _numpy(make(key))):
    factor, bias_value = (0.25, 0.5) if act == "tanh" else (1.0, 0.0)
    np.testing.assert_allclose(kernel, factor * plain, rtol=1e-6)
    np.testing.assert_array_equal(bias, bias_value)


def test_glorot_autoencoder_bounds():
  bounds = {"glorot_standard": lambda fi, fo: 1 / np.sqrt(fi),
            "glorot_normalized": lambda fi, fo: np.sqrt(6 / (fi + fo))}
  x = jnp.zeros((1, 300))
  params = _numpy(jax.jit(lambda k: {
      init: models.autoencoder_from_sizes((300, 4), init=init, init_scale=2.0).init(k, x)[
          "params"] for init in bounds})(jax.random.key(0)))
  for init, bound in bounds.items():
    for layer in params[init].values():
      w = layer["kernel"].astype(np.float64)
      b = 2.0 * bound(*w.shape)
      assert np.all(np.abs(w) <= b * (1 + 1e-6))
      assert np.max(np.abs(w)) > 0.9 * b
      np.testing.assert_array_equal(layer["bias"], 0.0)


@pytest.mark.parametrize("init", ["gaussian", "sparse", "glorot_normalized"])
def test_population_by_vmap_over_keys_and_traced_scale(init):
  sizes = (30, 4)  # Two layers suffice here; compile time grows with the depth.
  x = jnp.zeros((1, sizes[0]))
  chex.clear_trace_counter()  # The counter is keyed by code, shared by the parametrizations.

  @jax.jit
  @chex.assert_max_traces(n=1)
  def init_population(keys, scales):
    return jax.vmap(lambda k, s: models.autoencoder_from_sizes(
        sizes, init=init, init_scale=s).init(k, x)["params"])(keys, scales)

  keys = jax.random.split(jax.random.key(0), 3)
  pop = _numpy(init_population(keys, jnp.array([1.0, 1.0, 1.0])))
  kernels = pop["encoder_0"]["kernel"].astype(np.float64)
  assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])
  if init == "gaussian":  # The poorly scaled baseline: sd 0.01 * init_scale.
    assert abs(kernels.std() - 0.01) < 5 * 0.01 / np.sqrt(2 * kernels.size)
  # Same key -> same parameters; the traced scale multiplies the weights; no re-trace.
  same = _numpy(init_population(jnp.stack([keys[0]] * 3), jnp.array([1.0, 2.0, 0.5])))
  for name, layer in same.items():
    np.testing.assert_array_equal(layer["kernel"][0], pop[name]["kernel"][0])
    np.testing.assert_allclose(layer["kernel"][1], 2.0 * layer["kernel"][0], rtol=1e-6)
    np.testing.assert_allclose(layer["kernel"][2], 0.5 * layer["kernel"][0], rtol=1e-6)
    np.testing.assert_array_equal(layer["bias"], 0.0)


def test_autoencoder_bad_arguments():
  with pytest.raises(ValueError, match="curves"):
    models.autoencoder("cifar")
  with pytest.raises(ValueError, match="glorot_normalized"):
    models.autoencoder("mnist", init="xavier")
  with pytest.raises(ValueError, match="softsign"):
    models.autoencoder("mnist", activation="relu")
  with pytest.raises(ValueError, match="init_scale"):
    models.autoencoder("mnist", init_scale=-1.0)
  with pytest.raises(ValueError, match="curves"):
    models.autoencoder_loss_type("cifar")
  with pytest.raises(ValueError, match="encoder_sizes"):
    models.DeepAutoencoder(encoder_sizes=(5,))
  with pytest.raises(ValueError, match="output"):
    models.DeepAutoencoder(encoder_sizes=(5, 2), output="softmax")
  with pytest.raises(ValueError, match="2 initializers"):
    models.DeepAutoencoder(encoder_sizes=(5, 2), kernel_init=(jax.nn.initializers.zeros,))
  with pytest.raises(ValueError, match=r"\[B, 5\]"):
    jax.eval_shape(models.DeepAutoencoder(encoder_sizes=(5, 2)).init, jax.random.key(0),
                   jnp.zeros((1, 4)))


def _np_rnn(params, x):
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  batch, length, _ = x.shape
  h = np.zeros((batch, p["W_hh"].shape[0]))
  hs, ys = [], []
  for t in range(length):
    h = np.tanh(x[:, t] @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
    hs.append(h)
    ys.append(h @ p["W_hy"] + p["b_y"])
  return np.stack(hs, 1), np.stack(ys, 1)


@pytest.mark.parametrize("readout", ["linear", "softmax"])
def test_rnn_forward_matches_numpy_loop(x64, readout):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3, 9, 4))
  model = models.TanhRNN(num_outputs=2, hidden=6, readout=readout)
  # Weights large enough that every term matters at float64 tolerance.
  params = {"W_xh": rng.normal(size=(4, 6)), "W_hh": rng.normal(scale=0.5, size=(6, 6)),
            "b_h": rng.normal(size=6), "W_hy": rng.normal(size=(6, 2)), "b_y": rng.normal(size=2)}
  out, state = jax.jit(lambda p, x: model.apply({"params": p}, x, mutable=["intermediates"]))(
      params, x)
  hs, ys = _np_rnn(params, x)
  assert out.shape == (3, 9, 2)
  np.testing.assert_allclose(out, ys, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(state["intermediates"]["hidden"][0], hs, rtol=1e-12, atol=1e-12)


def test_rnn_default_initialization_table4():
  model = models.TanhRNN(num_outputs=3, output_bias=0.25)
  params = _numpy(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, 50)))["params"])
  assert params["W_hh"].shape == (100, 100) and params["W_xh"].shape == (50, 100)
  rho = np.max(np.abs(np.linalg.eigvals(params["W_hh"].astype(np.float64))))
  assert abs(rho - 1.1) < 1e-3
  # Table 4: 15 non-zero inputs per hidden unit (column) before the rescale.
  np.testing.assert_array_equal((params["W_hh"] != 0).sum(axis=0), 15)
  for name, sd in (("W_xh", 0.001), ("W_hy", 0.1)):
    w = params[name].astype(np.float64)
    assert abs(w.std() - sd) < 5 * sd / np.sqrt(2 * w.size)
  np.testing.assert_array_equal(params["b_h"], 0.0)
  np.testing.assert_array_equal(params["b_y"], 0.25)


def test_rnn_dense_recurrent_init_by_name():
  x = jnp.zeros((1, 2, 4))
  dense = _numpy(models.TanhRNN(num_outputs=1, recurrent_init="dense").init(
      jax.random.key(0), x)["params"])["W_hh"]
  assert np.all(dense != 0)
  assert abs(np.max(np.abs(np.linalg.eigvals(dense.astype(np.float64)))) - 1.1) < 1e-3
  with pytest.raises(ValueError, match="recurrent_init"):
    models.TanhRNN(num_outputs=1, recurrent_init="orthogonal")


def test_rnn_traced_input_scale_population():
  x = jnp.zeros((1, 2, 40))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def init_population(keys, scales, biases):
    return jax.vmap(lambda k, s, b: models.TanhRNN(
        num_outputs=2, hidden=20, input_scale=s, output_bias=b).init(k, x)["params"])(
            keys, scales, biases)

  key = jax.random.key(5)
  scales, biases = jnp.array([0.1, 0.001]), np.array([[0.5, -1.0], [2.0, 3.0]], np.float32)
  pop = _numpy(init_population(jnp.stack([key, key]), scales, biases))
  np.testing.assert_allclose(pop["W_xh"][1], 0.01 * pop["W_xh"][0], rtol=1e-5)
  np.testing.assert_array_equal(pop["W_hh"][0], pop["W_hh"][1])
  np.testing.assert_array_equal(pop["b_y"], biases)
  other = _numpy(init_population(jax.random.split(key, 2), jnp.array([0.1, 0.1]), biases))
  assert not np.allclose(other["W_hh"][0], other["W_hh"][1])


def test_rnn_traced_spectral_radius_population():
  """A traced radius rescales Table 4's sparse W_hh to exactly that radius (float64 NumPy
  eigenvalues), one trace for any radii; the same key gives the same matrix up to the factor."""
  x = jnp.zeros((1, 2, 3))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def init_population(keys, radii):
    return jax.vmap(lambda k, r: models.TanhRNN(num_outputs=1, hidden=30, spectral_radius=r).init(
        k, x)["params"])(keys, radii)

  key = jax.random.key(2)
  radii = np.array([0.5, 1.1, 2.0], np.float32)
  pop = _numpy(init_population(jnp.stack([key] * 3), jnp.asarray(radii)))
  for w, r in zip(pop["W_hh"].astype(np.float64), radii):
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - r) < 1e-5 * r
    np.testing.assert_array_equal((w != 0).sum(axis=0), 15)
  np.testing.assert_allclose(pop["W_hh"][2], pop["W_hh"][0] * 4.0, rtol=1e-6)
  init_population(jnp.stack([key] * 3), jnp.asarray(radii[::-1].copy()))  # no retrace
  default = _numpy(models.TanhRNN(num_outputs=1, hidden=30).init(key, x)["params"])["W_hh"]
  np.testing.assert_array_equal(default, pop["W_hh"][1])


def _primitives(jaxpr):
  """Primitive names of a jaxpr and of every jaxpr nested in its equations (scan bodies,
  custom_jvp calls, ...)."""
  names = []
  for eqn in jaxpr.eqns:
    names.append(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          names += _primitives(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          names += _primitives(sub)
  return names


def test_rnn_recurrence_is_one_scan():
  model = models.TanhRNN(num_outputs=2, hidden=8)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 3, 2)))

  def num_eqns(length):
    # The scan sits inside the custom_jvp call of tanh_recurrence.
    prims = _primitives(jax.make_jaxpr(model.apply)(
        params, jax.ShapeDtypeStruct((2, length, 2), jnp.float32)).jaxpr)
    assert prims.count("scan") == 1
    return len(prims)

  # A Python loop over time would make the program grow with the length.
  assert num_eqns(5) == num_eqns(50)


# ---------------------------------------------------------------------------------------------
# tanh_recurrence's custom JVP against differentiating the plain scan.


def _plain_tanh_scan(w_hh, drive):
  """The recurrence as a plain lax.scan that JAX differentiates itself (the reference)."""
  def step(h, d):
    h = jnp.tanh(d + h @ w_hh)
    return h, h

  return jax.lax.scan(step, jnp.zeros(drive.shape[1:], drive.dtype), drive)[1]


def _recurrence_problem(seed=0, length=7, batch=3, hidden=5):
  """w_hh [H, H] with spectral radius near 1 (saturating but not exploding), drive [L, B, H],
  a tangent (or cotangent-weight) pair of the same shapes and [L, B, H] loss weights."""
  rng = np.random.default_rng(seed)
  w = rng.normal(scale=1.2 / np.sqrt(hidden), size=(hidden, hidden))
  drive = rng.normal(size=(length, batch, hidden))
  tangent = (rng.normal(size=w.shape), rng.normal(size=drive.shape))
  return w, drive, tangent, rng.normal(size=drive.shape)


def _scalar_of(recurrence, weights):
  """A nonlinear scalar of the hidden states, so the gradient's cotangent differs per element."""
  return lambda w, d: jnp.sum(weights * jnp.sin(recurrence(w, d)))


def _np_tanh_bptt(w, drive, weights):
  """Gradient of sum(weights sin(hs)) w.r.t. (w, drive) by hand-written backpropagation."""
  hs, h = [], np.zeros(drive.shape[1:])
  for d in drive:
    h = np.tanh(d + h @ w)
    hs.append(h)
  hs = np.stack(hs)
  grad_hs = weights * np.cos(hs)
  grad_w, grad_drive, carry = np.zeros_like(w), np.zeros_like(drive), np.zeros(drive.shape[1:])
  for t in reversed(range(len(drive))):
    delta = (grad_hs[t] + carry) * (1 - hs[t] ** 2)
    grad_drive[t] = delta
    if t > 0:
      grad_w += hs[t - 1].T @ delta
    carry = delta @ w.T
  return grad_w, grad_drive


def test_tanh_recurrence_gradient_matches_scan_numpy_and_finite_differences(x64):
  w, drive, (tw, td), weights = _recurrence_problem()
  np.testing.assert_allclose(rnn.tanh_recurrence(w, drive), _plain_tanh_scan(w, drive),
                             rtol=0, atol=1e-15)
  loss = _scalar_of(rnn.tanh_recurrence, weights)
  grad = jax.jit(jax.grad(loss, (0, 1)))(w, drive)
  scan_grad = jax.grad(_scalar_of(_plain_tanh_scan, weights), (0, 1))(w, drive)
  for got, scan, ref in zip(grad, scan_grad, _np_tanh_bptt(w, drive, weights)):
    np.testing.assert_allclose(got, scan, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
  # Central differences along a random direction: the directional derivative is <grad, v>.
  eps = 1e-5
  fd = (loss(w + eps * tw, drive + eps * td) - loss(w - eps * tw, drive - eps * td)) / (2 * eps)
  directional = np.sum(grad[0] * tw) + np.sum(grad[1] * td)
  np.testing.assert_allclose(fd, directional, rtol=1e-9)


def test_tanh_recurrence_jvp_and_linearize_match_scan(x64):
  w, drive, tangent, _ = _recurrence_problem(1)
  hs, d_hs = jax.jit(lambda p, t: jax.jvp(rnn.tanh_recurrence, p, t))((w, drive), tangent)
  ref_hs, ref_d_hs = jax.jvp(_plain_tanh_scan, (w, drive), tangent)
  np.testing.assert_allclose(hs, ref_hs, rtol=0, atol=1e-15)
  np.testing.assert_allclose(d_hs, ref_d_hs, rtol=1e-12, atol=1e-12)
  # The Gauss-Newton products of mominit.hf: jax.linearize, then its transpose.
  out, lin = jax.linearize(rnn.tanh_recurrence, w, drive)
  np.testing.assert_allclose(out, ref_hs, rtol=0, atol=1e-15)
  np.testing.assert_allclose(lin(*tangent), ref_d_hs, rtol=1e-12, atol=1e-12)
  cotangent = np.random.default_rng(2).normal(size=hs.shape)
  transposed = jax.linear_transpose(lin, w, drive)(cotangent)
  for got, ref in zip(transposed, jax.vjp(_plain_tanh_scan, w, drive)[1](cotangent)):
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_tanh_recurrence_hessian_vector_product_matches_scan(x64):
  w, drive, tangent, weights = _recurrence_problem(3)

  def hvp(recurrence):
    return jax.jvp(jax.grad(_scalar_of(recurrence, weights), (0, 1)), (w, drive), tangent)[1]

  for got, ref in zip(jax.jit(lambda: hvp(rnn.tanh_recurrence))(), hvp(_plain_tanh_scan)):
    np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)
  # Reverse over reverse too (jax.hessian), on a smaller problem.
  w, drive, _, weights = _recurrence_problem(4, length=4, batch=2, hidden=3)
  got, ref = (jax.hessian(_scalar_of(recurrence, weights), (0, 1))(w, drive)
              for recurrence in (rnn.tanh_recurrence, _plain_tanh_scan))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11), got, ref)


def _scan_rnn_apply(params, x):
  """The RNN as written before the custom JVP (batch-major drive and readout, plain scan)."""
  drive = jnp.swapaxes(x @ params["W_xh"] + params["b_h"], 0, 1)

  def step(h, d):
    h = jnp.tanh(d + h @ params["W_hh"])
    return h, h

  _, hs = jax.lax.scan(step, jnp.zeros((x.shape[0], params["W_hh"].shape[0]), x.dtype), drive)
  return jnp.swapaxes(hs, 0, 1) @ params["W_hy"] + params["b_y"]


@pytest.mark.parametrize("readout", ["linear", "softmax"])
def test_rnn_gradient_and_gauss_newton_product_match_plain_scan(x64, readout):
  rng = np.random.default_rng(5)
  x, targets = rng.normal(size=(3, 9, 4)), rng.normal(size=(3, 9, 2))
  model = models.TanhRNN(num_outputs=2, hidden=6, readout=readout)
  params = {"W_xh": rng.normal(size=(4, 6)), "W_hh": rng.normal(scale=0.5, size=(6, 6)),
            "b_h": rng.normal(size=6), "W_hy": rng.normal(size=(6, 2)), "b_y": rng.normal(size=2)}
  apply = lambda p: model.apply({"params": p}, x)

  def loss(forward):
    return lambda p: jnp.sum((jax.nn.log_softmax(forward(p)) if readout == "softmax"
                              else forward(p)) * targets) + jnp.sum(jnp.tanh(forward(p)) ** 2)

  ref_apply = lambda p: _scan_rnn_apply(p, x)
  np.testing.assert_allclose(apply(params), ref_apply(params), rtol=1e-12, atol=1e-12)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
               jax.jit(jax.grad(loss(apply)))(params), jax.grad(loss(ref_apply))(params))
  # J^T J v as mominit.hf builds it (linearize, then transpose the linear map).
  v = jax.tree.map(lambda a: rng.normal(size=a.shape), params)

  def jtjv(forward):
    _, jvp_fn = jax.linearize(forward, params)
    return jax.linear_transpose(jvp_fn, params)(jvp_fn(v))[0]

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
               jtjv(apply), jtjv(ref_apply))


def test_rnn_bad_arguments():
  with pytest.raises(ValueError, match="softmax"):
    models.TanhRNN(num_outputs=2, readout="sigmoid")
  with pytest.raises(ValueError, match=r"\(2,\)"):
    models.TanhRNN(num_outputs=2, output_bias=np.zeros(3))
  with pytest.raises(ValueError, match="input_scale"):
    models.TanhRNN(num_outputs=2, input_scale=0.0)
  with pytest.raises(ValueError, match="num_outputs"):
    models.TanhRNN(num_outputs=0)
  with pytest.raises(ValueError, match=r"\[B, L, I\]"):
    jax.eval_shape(models.TanhRNN(num_outputs=2).init, jax.random.key(0), jnp.zeros((3, 2)))


def test_glorot_study_mlp_follows_the_one_init_rule():
  """experiments.glorot's MLP takes its initializers from models.layer_inits: SI's tanh
  conversion (15 N(0, 0.25^2) weights into each tanh unit, biases 0.5; plain SI into the linear
  output layer, bias 0), as the autoencoders do (docs/paper.md section 3)."""
  from experiments import glorot  # pylint: disable=import-outside-toplevel
  params = glorot._mlp(60, "tanh", "sparse").init(  # pylint: disable=protected-access
      jax.random.key(3), jnp.ones((1, 784)))["params"]
  hidden = [params[f"dense_{i}"] for i in range(glorot.MLP_DEPTH)]
  out = params[f"dense_{glorot.MLP_DEPTH}"]
  weights = np.concatenate([np.asarray(p["kernel"])[np.asarray(p["kernel"]) != 0] for p in hidden])
  for p in hidden + [out]:
    assert (np.count_nonzero(np.asarray(p["kernel"]), axis=0) == 15).all()
  assert all((np.asarray(p["bias"]) == 0.5).all() for p in hidden)
  assert (np.asarray(out["bias"]) == 0).all()
  # 4,500 draws: the sample std is within ~4 standard errors (0.25 / sqrt(9000)) of 0.25.
  assert abs(weights.std() - 0.25) < 0.011
  out_weights = np.asarray(out["kernel"])[np.asarray(out["kernel"]) != 0]
  assert abs(out_weights.std() - 1.0) < 0.25  # 150 draws of N(0, 1)
  with pytest.raises(ValueError, match="unknown init 'orthogonal'"):
    models.layer_inits("orthogonal", ("tanh",))
