"""Nothing lost, nothing silently wrong (issue 18): float64 populations, values that overflow the
member's dtype, bad data sizes, a workdir of another config refused before anything compiles,
no metrics line lost to a kill between logging and checkpointing, and the "blown up" outcome."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from mominit import train
from tests.test_bad_input import count_compilations
from tests.test_train import ae_config, small_curves

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def curves():
  return small_curves()


# ---------------------------------------------------------------------------------------------
# float64


def _quadratic_problem():
  """f(w) = 1/2 sum_i a_i (w_i - c_i)^2 from w = 0, in the default float dtype."""
  a, c = np.array([1.0, 4.0, 9.0]), np.array([1.0, -2.0, 0.5])

  def f(w):
    return 0.5 * jnp.sum(jnp.asarray(a, w.dtype) * (w - jnp.asarray(c, w.dtype)) ** 2)

  problem = train.Problem(
      init_params=lambda key, hp, data: jnp.zeros(3, jnp.result_type(float)),
      init_data=lambda key, hp, data: (),
      batch=lambda state, key, step, data: ((), state),
      loss=lambda w, batch: f(w),
      evaluate=lambda w, key, data, place: {"f": f(w), "w": w},
      data={}, error_names=("f",), main_error="f", hp_names=("input_scale",))
  return problem, a, c


def test_float64_population_equals_the_float64_reference_loop():
  """Under jax_enable_x64 a CM / NAG / SGD population on a quadratic trains in float64 (state,
  loss slot, mean loss and hyper-parameters) and ends at the float64 iterates of the paper's
  equations v <- mu v - eps grad f(theta + n mu v), theta <- theta + v to 1e-13, far below
  float32 rounding (1e-7)."""
  with jax.enable_x64(True):
    problem, a, c = _quadratic_problem()
    config = train.default_config("rnn")
    config.momentum_schedule, config.steps, config.chunk = "constant", 30, 12
    members = [{"seed": 0, "rule": r, "mu_max": m, "learning_rate": 0.05, "input_scale": 0.0}
               for r, m in [("cm", 0.9), ("nag", 0.9), ("sgd", 0.0)]]
    engine = train.Engine(config, problem, members)
    state = engine.init()
    for start in range(0, 30, 12):
      state, mean_loss = engine.run_chunk(state, start, min(12, 30 - start))
    got = np.asarray(engine.evaluate(state)["w"])
    assert state.loss.dtype == mean_loss.dtype == got.dtype == np.float64
    assert engine.hparams["learning_rate"].dtype == np.float64
  for i, m in enumerate(members):
    n = 1.0 if m["rule"] == "nag" else 0.0
    theta, v = np.zeros(3), np.zeros(3)
    for _ in range(30):
      v = m["mu_max"] * v - 0.05 * a * (theta + n * m["mu_max"] * v - c)
      theta = theta + v
    np.testing.assert_allclose(got[i], theta, rtol=1e-13, atol=1e-15)


def test_float64_autoencoder_trains_and_equals_a_float64_nag_loop(curves):
  """A float64 CURVES member (x64) trained by train_and_evaluate equals NAG written out in
  float64 with the same init and minibatches: theta, v with v <- mu_t v - eps grad f(theta +
  mu_t v); its train error is the mean per-case squared error at theta, computed in NumPy."""
  from mominit import losses, models
  config = ae_config(mu_max=[0.9], learning_rate=[0.01], final_steps=0, steps=14, eval_every=7)
  with jax.enable_x64(True):
    frame = train.train_and_evaluate(config, data=curves)
    key = jax.random.PRNGKey(0)
    init_key, data_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
    x = jnp.asarray(curves.train, jnp.float64)
    model = models.autoencoder("curves")
    theta = model.init(init_key, x[:1])["params"]
    assert all(leaf.dtype == np.float64 for leaf in jax.tree.leaves(theta))
    grad = jax.jit(jax.grad(
        lambda p, xb: losses.sigmoid_cross_entropy(model.apply({"params": p}, xb), xb)))
    v = jax.tree.map(jnp.zeros_like, theta)
    for t in range(14):
      mu = min(1 - 0.5 / (t // 2 + 1), 0.9)  # the Sutskever schedule, momentum_period 2
      epoch, i = divmod(t, 120 // 20)
      order = jax.random.permutation(jax.random.fold_in(data_key, epoch), 120)
      g = grad(jax.tree.map(lambda p, u: p + mu * u, theta, v), x[order[i * 20:(i + 1) * 20]])
      v = jax.tree.map(lambda u, gi: mu * u - 0.01 * gi, v, g)
      theta = jax.tree.map(lambda p, u: p + u, theta, v)
    out = np.asarray(jax.nn.sigmoid(model.apply({"params": theta}, x)))
  want = np.mean(np.sum((out - curves.train.astype(np.float64)) ** 2, axis=1))
  np.testing.assert_allclose(frame.train_error[0], want, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Validation in the member's dtype, data sizes


@pytest.mark.parametrize("field,value,match", [
    ("learning_rate", [1e39], r"config.sweep.learning_rate: 1e\+39 overflows float32"),
    ("init_scale", [1e39], r"config.sweep.init_scale: 1e\+39 overflows float32"),
    ("num_train", -5, r"config.num_train must be >= 0 \(0 = all\), got -5"),
    ("num_test", -1, r"config.num_test must be >= 0 \(0 = all\), got -1"),
    ("num_train", 500, r"config.num_train=500 exceeds the 120 training cases"),
    ("num_test", 41, r"config.num_test=41 exceeds the 40 test cases"),
    ("init_scale", [0.0], r"config.sweep.init_scale: must be finite and > 0"),
])
def test_bad_values_fail_before_compiling(curves, field, value, match):
  config = ae_config(**{field: value})
  with count_compilations() as compiled:
    with pytest.raises(ValueError, match=match):
      train.train_and_evaluate(config, data=curves)
  assert compiled[0] == 0


def test_a_learning_rate_float64_can_hold_passes_under_x64():
  """1e39 overflows float32, not float64: validation uses the member's dtype."""
  config = ae_config(learning_rate=[1e39])
  with pytest.raises(ValueError, match="overflows float32"):
    train.validate_config(config)
  with jax.enable_x64(True):
    train.validate_config(config)


# ---------------------------------------------------------------------------------------------
# A workdir of another config


def test_workdir_of_another_config_is_refused_before_anything_compiles(tmp_path, curves):
  train.train_and_evaluate(ae_config(steps=8, eval_every=4, final_steps=0), tmp_path,
                           data=curves)
  before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
  other = ae_config(steps=8, eval_every=4, final_steps=0, learning_rate=[0.5])
  with count_compilations() as compiled:
    with pytest.raises(ValueError, match="different config.*learning_rate"):
      train.train_and_evaluate(other, tmp_path, data=curves)
  assert compiled[0] == 0
  assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_workdir_of_another_config_without_a_checkpoint_is_refused(tmp_path, curves):
  """A run killed before its first checkpoint left config.json and metrics: another config
  must not append to them."""
  (tmp_path / "config.json").write_text(ae_config(steps=8).to_json_best_effort(indent=2))
  with pytest.raises(ValueError, match="different config.*steps"):
    train.train_and_evaluate(ae_config(steps=16), tmp_path, data=curves)


# ---------------------------------------------------------------------------------------------
# A kill between logging an evaluation and checkpointing it

_KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    from mominit import runlog, train
    from tests.test_train import ae_config, small_curves
    when, at = sys.argv[2], int(sys.argv[3])
    save = runlog.RunLog.save

    def dying_save(self, step, tree):
      if step == at and when == "before":
        os._exit(17)
      save(self, step, tree)
      if step == at and when == "after":
        os._exit(17)

    runlog.RunLog.save = dying_save
    train.train_and_evaluate(ae_config(mu_max=[0.9, 0.99]), sys.argv[1], data=small_curves())
""")


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, curves):
  workdir = tmp_path_factory.mktemp("straight")
  return train.train_and_evaluate(ae_config(mu_max=[0.9, 0.99]), workdir, data=curves), workdir


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_around_the_checkpoint_loses_no_metrics_line(tmp_path, curves, straight_run, when):
  """The process dies (os._exit, no cleanup) just before or just after the checkpoint of update
  16 is written; the resumed run's metrics.jsonl has every evaluation once, equal to an
  uninterrupted run's, and the same results."""
  straight, straight_dir = straight_run
  workdir = tmp_path / "killed"
  script = _KILL_SCRIPT.format(repo=str(REPO))
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
  died = subprocess.run([sys.executable, "-c", script, str(workdir), when, "16"], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)
  assert died.returncode == 17, died.stderr[-3000:]
  resumed = train.train_and_evaluate(ae_config(mu_max=[0.9, 0.99]), workdir, data=curves)
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  want = [json.loads(l) for l in (straight_dir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in lines] == [r["step"] for r in want] == [0, 8, 16, 18, 24]
  for got, ref in zip(lines, want):
    assert got["train_error"] == ref["train_error"] and got["train_loss"] == ref["train_loss"]
  pd.testing.assert_frame_equal(resumed.drop(columns="seconds"),
                                straight.drop(columns="seconds"))


# ---------------------------------------------------------------------------------------------
# Blown up: finite but exploded


def test_a_finite_explosion_is_reported_as_blown_up(curves):
  """A learning rate of 1e3 saturates the sigmoids: the loss stays finite (not diverged) but
  sits far above its starting value for whole evaluation windows, so the member is blown up;
  the calm member beside it is not."""
  config = ae_config(learning_rate=[1e3, 0.01], final_steps=0)
  frame = train.train_and_evaluate(config, data=curves)
  wild, calm = frame.iloc[0], frame.iloc[1]
  assert not wild.diverged and np.isfinite(wild.train_error)
  assert wild.blown_up and wild.blown_up_at == 8
  assert not calm.blown_up and calm.blown_up_at == -1


def test_blown_up_criterion_by_hand():
  """The criterion on hand-made chunk losses: every chunk of a window above factor x the
  starting loss; one chunk below, or a non-finite loss (that is divergence), is not."""
  from mominit import outcomes
  start = np.array([2.0, 2.0, 2.0, 2.0])
  window = [np.array([30.0, 30.0, 30.0, np.nan]), np.array([25.0, 19.0, 21.0, 50.0])]
  assert outcomes.blown_up(start, window, factor=10.0).tolist() == [True, False, True, False]
  assert outcomes.blown_up(start, [], factor=10.0).tolist() == [False] * 4
  assert outcomes.blown_up(start, window, factor=0.0).tolist() == [False] * 4  # 0 = off
