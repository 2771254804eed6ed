"""The Glorot & Bengio study's training through the engine (problem kind ``classifier``):
equal to the study's old loop written out as a plain optax loop, and the study's report fields."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mominit import diagnostics
from mominit import sweep
from mominit import train
from mominit.problems import autoencoder as ae_problem
from mominit.problems import classifier

INITS = ("sparse", "glorot_normalized", "gaussian")


def _data(n_train=100, n_test=40, width=12, seed=0):
  rng = np.random.default_rng(seed)
  # Labels that depend on the inputs, so that training moves the errors.
  w = rng.normal(size=(width, 10))
  x = rng.random((n_train + n_test, width)).astype(np.float32)
  y = np.argmax(x @ w + 0.3 * rng.normal(size=(len(x), 10)), 1).astype(np.int32)
  return classifier.LabeledData(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _config(momentum, steps=30, every=10):
  c = sweep.default_config("classifier")
  c.width, c.depth, c.activation = 16, 3, "tanh"
  c.steps, c.eval_every, c.chunk, c.progress = steps, every, every, False
  c.batch_size, c.eval_cases = 10, 30
  c.diagnostics_every, c.diagnostics_cases = every, 20
  c.sweep.seed, c.sweep.rule = (3,), ("cm",)
  c.sweep.mu_max, c.sweep.learning_rate = (momentum,), (0.1,)
  c.sweep.init = INITS
  return c


def _plain_loop(config, data, init, evaluate_at):
  """The study's old training loop, one member: optax.sgd(lr, momentum) on the mean softmax
  cross-entropy (one-hot targets), minibatches in the order of the member's epoch
  permutations, parameters from the member's init key."""
  key = jax.random.PRNGKey(config.sweep.seed[0])
  init_key, data_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  model = classifier.net(config, data.train_x.shape[1], init)
  params = model.init(init_key, data.train_x[:1])["params"]
  mu = config.sweep.mu_max[0]
  opt = optax.sgd(config.sweep.learning_rate[0], momentum=mu if mu else None)
  state = opt.init(params)
  onehot = lambda y: jax.nn.one_hot(y, 10)

  def loss(p, x, y):
    return jnp.mean(optax.softmax_cross_entropy(model.apply({"params": p}, x), onehot(y)))

  n, b = len(data.train_x), config.batch_size
  out = {}
  for t in range(config.steps + 1):
    if t in evaluate_at:
      out[t] = params
    if t == config.steps:
      break
    order = np.asarray(ae_problem.epoch_order(data_key, t // (n // b), n))
    idx = order[(t % (n // b)) * b:(t % (n // b) + 1) * b]
    grads = jax.grad(loss)(params, data.train_x[idx], data.train_y[idx])
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return model, out


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_engine_classifier_equals_the_plain_optax_loop(momentum):
  """Every init of the population, at every evaluation: errors (against NumPy on the loop's
  parameters) and the diagnostics hook's layer statistics equal the plain loop's to float32
  rounding; the three inits are one population (one compiled chunk)."""
  config, data = _config(momentum), _data()
  records = []
  frame = train.train_and_evaluate(config, None, callback=lambda s, r: records.append(r),
                                   data=data)
  assert list(frame["init"]) == list(INITS)
  assert list(frame["rule"]) == ["sgd" if momentum == 0 else "cm"] * len(INITS)
  steps = [r["step"] for r in records]
  assert steps == [0, 10, 20, 30]
  m = config.eval_cases
  for i, init in enumerate(INITS):
    model, at = _plain_loop(config, data, init, steps)
    for r in records:
      params = jax.tree.map(np.asarray, at[r["step"]])
      for split in ("train", "test"):
        x, y = getattr(data, f"{split}_x")[:m], getattr(data, f"{split}_y")[:m]
        logits = np.asarray(model.apply({"params": params}, x), np.float64)
        logp = logits - logits.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        np.testing.assert_allclose(r[f"{split}_xent"][i], -logp[np.arange(m), y].mean(),
                                   rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(r[f"{split}_error"][i], np.mean(logits.argmax(1) != y),
                                   atol=1e-6)
      cases = config.diagnostics_cases
      want = diagnostics.layer_stats(model, params, (data.test_x[:cases], data.test_y[:cases]),
                                     classifier.xent)
      for key in ("loss", "act_mean", "act_std", "saturation", "backprop_var",
                  "weight_grad_var"):
        np.testing.assert_allclose(r["diagnostics"][key][i], want[key], rtol=1e-4, atol=1e-7,
                                   err_msg=f"{init} {key} at {r['step']}")
  # Training moved every member (the test is not comparing two untouched initial states).
  assert np.all(records[-1]["train_xent"] < records[0]["train_xent"])


def test_one_compiled_chunk_for_every_init():
  config, data = _config(0.0, steps=20), _data()
  engine = train.Engine(config, train.make_problem(config, data), train.population(config))
  state = engine.init()
  for start in (0, 10):
    state, _ = engine.run_chunk(state, start, 10)
  assert engine.trace_counts["chunk"] == 1
  # Members of one seed share the init key, so Glorot's two uniform rules differ by a scale.
  assert engine.hparams["init"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("field,value,match", [
    ("sweep.init", ("glorot",), "config.sweep.init: unknown 'glorot'"),
    ("activation", "relu6", "config.activation"),
    ("width", 0, "config.width"),
    ("eval_cases", -1, "config.eval_cases"),
])
def test_bad_classifier_config_names_the_field(field, value, match):
  config = _config(0.0)
  node = config
  *path, last = field.split(".")
  for key in path:
    node = node[key]
  node[last] = value
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, None, data=_data())


def test_tiny_study_runs_through_the_engine_with_the_same_report_fields(tmp_path, mnist_dir):
  from experiments import glorot  # pylint: disable=import-outside-toplevel
  sizes = dict(mlp_width=24, mlp_steps=20, activations=("sigmoid",), ae_steps=20,
               curves_train=200, curves_test=100, log_every=10, eval_size=100,
               monitor_size=50, jacobian_examples=1, inits=("glorot_normalized", "gaussian"))
  result = glorot.run(tmp_path, "tiny", data_dir=mnist_dir, seed=0, sizes=sizes)
  assert set(result) == {"rows", "findings", "figures", "report", "timing", "skipped", "seconds",
                         "preset", "baselines"}
  assert not result["skipped"]
  assert len(result["rows"]) == 2 * 2  # (mlp, curves) x inits
  fields = {"task", "activation", "init", "train_loss_init", "train_loss_final",
            "test_error_final", "top_mean_init", "top_mean_final", "top_mean_min",
            "top_mean_min_step", "top_saturation_init", "top_saturation_max",
            "top_saturation_max_step", "top_saturation_final", "backprop_var_ratio_init",
            "weight_grad_var_ratio_init", "jacobian_sv_mean_init", "jacobian_sv_mean_end",
            "jacobian_sv_spread_init"}
  assert all(set(r) == fields for r in result["rows"])
  by = {(r["task"], r["init"]): r for r in result["rows"]}
  # N(0, 0.01^2) weights give near-zero logits: a cross-entropy of ln 10 at initialization.
  np.testing.assert_allclose(by[("mlp", "gaussian")]["train_loss_init"], np.log(10), atol=2e-3)
  assert {r["top_mean_min_step"] for r in result["rows"]} <= {0, 10, 20}
  assert set(result["timing"]) == {"mlp/sigmoid", "curves/sigmoid"}
  assert all(set(t) == {"step", "diagnostics", "evaluation"} for t in result["timing"].values())
  assert len(result["figures"]) == 12
  assert json.loads((tmp_path / "glorot_results.json").read_text())["rows"] == result["rows"]
