"""The training engine: populations, divergence isolation, resume, sharding, validation."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import member
from mominit import placement
from mominit import problems
from mominit import train

REPO = pathlib.Path(__file__).resolve().parents[1]


def small_curves():
  """A small stand-in for the CURVES data: 120 training and 40 test cases in [0, 1]^784."""
  from mominit.data import Dataset
  rng = np.random.default_rng(0)
  return Dataset(rng.uniform(size=(120, 784)).astype(np.float32),
                 rng.uniform(size=(40, 784)).astype(np.float32))


@pytest.fixture(scope="module")
def curves():
  return small_curves()


def ae_config(**overrides):
  c = train.default_config("autoencoder")
  c.dataset = "curves"
  c.batch_size, c.steps, c.chunk, c.eval_every, c.final_steps = 20, 24, 5, 8, 6
  c.momentum_period = 2  # so mu reaches mu_max within the 24 updates
  c.progress = False
  c.sweep.seed, c.sweep.rule = [0], ["nag"]
  c.sweep.mu_max, c.sweep.learning_rate = [0.99], [0.01]
  for k, v in overrides.items():
    setattr(c.sweep, k, v) if k in c.sweep else setattr(c, k, v)
  return c


def rnn_config(**overrides):
  c = train.default_config("rnn")
  c.task, c.task_kwargs = "addition", {"T": 10}
  c.hidden, c.batch_size, c.eval_sequences = 8, 16, 64
  c.steps, c.chunk, c.eval_every, c.warm_steps = 30, 7, 10, 10
  c.progress = False
  c.sweep.seed, c.sweep.rule = [0], ["nag"]
  c.sweep.mu_max, c.sweep.learning_rate = [0.9], [1e-3]
  for k, v in overrides.items():
    setattr(c.sweep, k, v) if k in c.sweep else setattr(c, k, v)
  return c


ERRORS = ["train_error", "test_error", "error_before_final"]


def test_population_equals_members_run_alone(curves):
  config = ae_config(rule=["nag", "cm"], mu_max=[0.9, 0.995], learning_rate=[0.01])
  together = train.train_and_evaluate(config, data=curves)
  assert len(together) == 4
  for _, row in together.iterrows():
    alone = train.train_and_evaluate(ae_config(
        rule=[row.rule], mu_max=[row.mu_max], learning_rate=[row.learning_rate]), data=curves)
    np.testing.assert_allclose(alone[ERRORS].to_numpy()[0], row[ERRORS].to_numpy(np.float64),
                               rtol=2e-5)
  # The members really differ (so the comparison above could fail).
  assert together.train_error.nunique() == 4


def test_rnn_population_equals_members_run_alone():
  together = train.train_and_evaluate(rnn_config(seed=[0, 1], mu_max=[0.0, 0.9]))
  assert set(together.rule) == {"sgd", "nag"}
  for _, row in together.iterrows():
    alone = train.train_and_evaluate(rnn_config(seed=[row.seed], mu_max=[row.mu_max]))
    np.testing.assert_allclose(alone.test_loss[0], row.test_loss, rtol=2e-5)
    np.testing.assert_allclose(alone.zero_one[0], row.zero_one, atol=1e-6)


def test_rnn_spectral_radius_is_a_sweep_axis():
  """`config.sweep.spectral_radius` sets each member's W_hh radius (0: Table 4's 1.1), float64
  NumPy eigenvalues; `config.recurrent_init="dense"` reaches the model."""
  config = rnn_config(spectral_radius=[0.0, 0.5, 2.0], hidden=20)
  engine = train.Engine(config, train.make_problem(config), train.population(config))
  w_hh = np.asarray(engine.init().params["W_hh"], np.float64)
  radii = [np.max(np.abs(np.linalg.eigvals(w))) for w in w_hh]
  np.testing.assert_allclose(radii, [1.1, 0.5, 2.0], rtol=1e-5)
  assert ((w_hh != 0).sum(axis=1) == 15).all()
  config.recurrent_init = "dense"
  engine = train.Engine(config, train.make_problem(config), train.population(config))
  assert (np.asarray(engine.init().params["W_hh"]) != 0).all()
  config.recurrent_init = "orthogonal"
  with pytest.raises(ValueError, match="config.recurrent_init"):
    train.validate_config(config)


def test_divergent_member_is_isolated(curves):
  calm = train.train_and_evaluate(ae_config(learning_rate=[0.01, 0.005, 0.002]), data=curves)
  wild = train.train_and_evaluate(ae_config(learning_rate=[0.01, 1e35, 0.002]), data=curves)
  assert not calm.diverged.any()
  assert wild.diverged.tolist() == [False, True, False]
  assert 0 <= wild.diverged_at[1] < 24
  # The other members are bit-for-bit the same as in the calm population.
  for i in (0, 2):
    np.testing.assert_array_equal(wild.loc[i, ERRORS].to_numpy(np.float64),
                                  calm.loc[i, ERRORS].to_numpy(np.float64))


def _linear_problem():
  """Every member minimises loss(w) = -w for one scalar w (gradient -1) with plain SGD."""
  return train.Problem(
      init_params=lambda key, hp, data: {"w": jnp.zeros((), jnp.float32)},
      init_data=lambda key, hp, data: (),
      batch=lambda state, key, step, data: ((), state),
      loss=lambda params, batch: -params["w"],
      evaluate=lambda params, key, data, place: {"w": params["w"]},
      data={}, error_names=("w",), main_error="w", hp_names=("input_scale",))


@pytest.mark.parametrize("chunks", [[(0, 4), (4, 6)], [(0, 10)], [(0, 2), (2, 2), (4, 6)]])
def test_engine_freezes_a_member_whose_parameters_overflow(chunks):
  """Loss -w, learning rate 1e38: w = 0, 1e38, 2e38, 3e38 and then inf (float32 max 3.4e38),
  while every loss stays finite. The update at step 3 goes bad, so the member must freeze at
  w = 3e38 with diverged_at 3, wherever the chunk boundaries fall; a calm member beside it
  must end where it ends alone."""
  config = train.default_config("rnn")
  config.chunk = 10
  members = [{"seed": 0, "rule": "sgd", "mu_max": 0.0, "learning_rate": lr, "input_scale": 0.0}
             for lr in (1e38, 0.5)]
  engine = train.Engine(config, _linear_problem(), members)
  state = engine.init()
  for start, n in chunks:
    state, _ = engine.run_chunk(state, start, n)
  w = np.float32(0)
  for _ in range(3):
    w = w + np.float32(1e38)
  with np.errstate(over="ignore"):
    assert np.isfinite(w) and not np.isfinite(w + np.float32(1e38))
  assert np.asarray(state.params["w"])[0] == w
  assert np.asarray(state.alive).tolist() == [False, True]
  assert np.asarray(state.diverged_at).tolist() == [3, -1]
  assert engine.reruns == 1
  assert np.asarray(state.params["w"])[1] == np.float32(10 * 0.5)  # ten updates of +0.5
  assert engine.trace_counts["chunk"] == 1  # the rerun reuses the compiled chunk


class Killed(Exception):
  pass


def test_resume_after_kill_gives_identical_results(curves, tmp_path):
  config = ae_config(mu_max=[0.9, 0.99])
  reference = train.train_and_evaluate(config, tmp_path / "straight", data=curves)

  def kill_after_second_eval(step, record):
    if step >= 16:
      raise Killed

  with pytest.raises(Killed):
    train.train_and_evaluate(config, tmp_path / "killed", callback=kill_after_second_eval,
                             data=curves)
  steps_logged = [r["step"] for r in train.read_metrics(tmp_path / "killed")]
  assert steps_logged == [0, 8, 16]
  resumed = train.train_and_evaluate(config, tmp_path / "killed", data=curves)
  np.testing.assert_array_equal(resumed[ERRORS].to_numpy(), reference[ERRORS].to_numpy())
  # metrics.jsonl holds each evaluation once, as in the uninterrupted run.
  assert [r["step"] for r in train.read_metrics(tmp_path / "killed")] == [
      r["step"] for r in train.read_metrics(tmp_path / "straight")] == [0, 8, 16, 18, 24]
  assert (tmp_path / "killed" / "results.csv").exists()


def test_kill_by_signal_then_resume(tmp_path):
  """A real SIGTERM'd process (not an exception) resumes to the uninterrupted result."""
  config = rnn_config(steps=400, eval_every=20, chunk=10)
  reference = train.train_and_evaluate(config)
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "experiments.train", "--config", "configs/rnn.py:add",
         f"--workdir={workdir}", "--config.progress=False", "--config.hidden=8",
         "--config.batch_size=16", "--config.eval_sequences=64", "--config.steps=400",
         "--config.chunk=10", "--config.eval_every=20", "--config.warm_steps=10",
         "--config.task_kwargs.T=10", "--config.sweep.seed=(0,)", "--config.sweep.rule=('nag',)",
         "--config.sweep.mu_max=(0.9,)", "--config.sweep.learning_rate=(0.001,)"]
  # One CPU device, like the in-process reference (experiments/ would otherwise give the CLI one
  # per core and split this lone RNN's minibatch, which sums in another order); resuming in
  # that layout is tested in test_cpu_devices_layouts.
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
  metrics = workdir / "metrics.jsonl"
  try:
    for _ in range(600):  # wait until a few evaluations are written, then kill
      if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
        break
      if proc.poll() is not None:
        break
      import time
      time.sleep(0.1)
    proc.terminate()
    proc.wait(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
  done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stdout + done.stderr
  import pandas as pd
  resumed = pd.read_csv(workdir / "results.csv")
  np.testing.assert_allclose(resumed.test_loss[0], reference.test_loss[0], rtol=1e-6)
  np.testing.assert_allclose(resumed.zero_one[0], reference.zero_one[0], atol=1e-7)


def test_four_devices_match_one():
  """The population sharded over 4 forced CPU devices gives the 1-device results, also when it
  must be padded (6 members -> 8)."""
  script = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
import jax
from tests.test_train import rnn_config
from mominit import train
assert len(jax.devices()) == 4, jax.devices()
c = rnn_config(seed=[0, 1, 2], rule=['nag', 'cm'], mu_max=[0.9])
four = train.train_and_evaluate(c)
one = train.train_and_evaluate(c, devices=jax.devices()[:1])
print(json.dumps({{'four': four.test_loss.tolist(), 'one': one.test_loss.tolist(),
                  'rules': four.rule.tolist()}}))
"""
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="4", JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert len(out["four"]) == 6 and out["rules"].count("cm") == 3
  assert len(set(out["four"])) == 6  # distinct members, so the comparison means something
  np.testing.assert_allclose(out["four"], out["one"], rtol=1e-5)


class _Device:
  process_index = 0  # one process, as a real local device

  def __init__(self, platform):
    self.platform = platform


@pytest.mark.parametrize("kind,members,batch,platform,want", [
    ("rnn", 1, 16, "cpu", ("cases", 2)),         # a lone RNN splits its minibatch
    ("rnn", 1, 15, "cpu", ("single", 1)),        # ... unless the devices do not divide it
    ("rnn", 2, 16, "cpu", ("population", 2)),
    ("rnn", 3, 16, "cpu", ("population", 2)),    # padded to 4
    ("autoencoder", 1, 20, "cpu", ("single", 1)),  # its matmuls use every core of one device
    ("autoencoder", 5, 20, "cpu", ("population", 2)),
    ("rnn", 1, 16, "gpu", ("population", 2)),    # never split off the CPU
])
def test_layout(kind, members, batch, platform, want):
  config = rnn_config(batch_size=batch) if kind == "rnn" else ae_config(batch_size=batch)
  plan = placement.plan(members, [_Device(platform)] * 2, batch_size=config.batch_size,
                        small_sequential_matmuls=kind == "rnn")
  assert (plan.layout, len(plan.devices)) == want


@pytest.mark.parametrize("members,member_bytes,want", [
    (16, 6_800_000, 2),    # CURVES: two members fit 16 MB
    (7, 6_800_000, 1),     # ... an odd count cannot be split in twos
    (12, 22_700_000, 2),   # MNIST: at least two, although two exceed the budget
    (16, 10_000, 16),      # a small model: the whole population in one group
    (9, 1_000_000, 9),
    (1, 6_800_000, 1),
])
def test_group_size(members, member_bytes, want):
  assert placement.group_size(members, member_bytes) == want


def test_member_bytes_of_a_curves_member(curves):
  """float32 parameters and velocity (840,000 weights + 2,340 biases each), the int32 epoch
  order of the 120 training cases, and the optimizer's int32 count and float32 shift."""
  config = ae_config()
  engine = train.Engine(config, train.make_problem(config, curves), train.population(config))
  biases = (400 + 200 + 100 + 50 + 25 + 6) + (25 + 50 + 100 + 200 + 400 + 784)
  assert biases == 2_340
  assert member.member_bytes(engine.init()) == 2 * 4 * (840_000 + biases) + 4 * 120 + 4 + 4


def test_groups_of_members_equal_one_vmapped_population(curves, monkeypatch):
  """Time-blocked groups (2 + 2 members, each group running the whole chunk in turn) compute
  what all 4 members vmapped together compute, divergence flags included."""
  config = ae_config(mu_max=[0.9, 0.99], learning_rate=[0.01, 1e35])
  members = train.population(config)

  def run():
    engine = train.Engine(config, train.make_problem(config, curves), members)
    state = engine.init()
    for start in (0, 7):
      state, loss = engine.run_chunk(state, start, 7)
    return state, loss

  grouped_state, grouped_loss = run()
  assert placement.group_size(4, member.member_bytes(grouped_state)) == 2  # the grouped path ran
  monkeypatch.setattr(placement, "group_size", lambda members, member_bytes: members)
  state, loss = run()
  np.testing.assert_array_equal(np.asarray(grouped_state.alive), np.asarray(state.alive))
  assert list(np.asarray(state.alive)) == [True, False, True, False]  # lr 1e35 diverged
  np.testing.assert_array_equal(np.asarray(grouped_state.diverged_at),
                                np.asarray(state.diverged_at))
  for a, b in zip(jax.tree.leaves(grouped_state.params), jax.tree.leaves(state.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.asarray(grouped_loss)[[0, 2]], np.asarray(loss)[[0, 2]],
                             rtol=1e-5)


def test_cpu_devices_layouts():
  """On 2 CPU devices: a lone RNN splits its minibatch over them (the compiled chunk's hidden
  states hold B/2 cases per device and the gradient is all-reduced) and matches one device up
  to summation order, never recompiles, and resumes to the uninterrupted result; a population
  of 6 is sharded member-wise and equals one device exactly (its batched-LAPACK init runs on
  one device: sharded, it deadlocked); a lone autoencoder stays on one device; the diagnostics
  of a sharded autoencoder population equal one device's at update 0 and to float32 rounding
  after (2 + 2 vmapped members sum in another order than 4)."""
  script = f"""
import json, sys, tempfile
sys.path.insert(0, {str(REPO)!r})
import jax, jax.numpy as jnp, numpy as np
from tests.test_train import rnn_config, ae_config, small_curves
from mominit import train
assert len(jax.devices()) == 2, jax.devices()
out = {{}}
c = rnn_config(steps=40, eval_every=10, hidden=12)
engine = train.Engine(c, train.make_problem(c), train.population(c))
out['layout'] = [engine.layout, len(engine.devices)]
state = engine.init()
for start, n in [(0, 7), (7, 3), (10, 1)]:
  state, _ = engine.run_chunk(state, start, n)
out['chunk_traces'] = engine.trace_counts['chunk']
with engine._context():
  hlo = engine._jit_chunk.lower(state, engine.hparams, engine.data, jnp.int32(0), jnp.int32(1),
                                engine._never).compile().as_text()
out['all_reduce'] = 'all-reduce' in hlo
out['half_batch'] = 'f32[8,12]' in hlo  # h_t of 8 of the 16 cases (H = 12)
two = train.train_and_evaluate(c)
one = train.train_and_evaluate(c, devices=jax.devices()[:1])
out['two'], out['one'] = two.test_loss.tolist(), one.test_loss.tolist()
class Stop(Exception):
  pass
def stop(step, record):
  if step >= 20:
    raise Stop
with tempfile.TemporaryDirectory() as d:
  try:
    train.train_and_evaluate(c, d, callback=stop)
  except Stop:
    pass
  out['resumed'] = train.train_and_evaluate(c, d).test_loss.tolist()
p = rnn_config(seed=[0, 1, 2], rule=['nag', 'cm'])
out['pop_layout'] = train.Engine(p, train.make_problem(p), train.population(p)).layout
out['pop_two'] = train.train_and_evaluate(p).test_loss.tolist()
out['pop_one'] = train.train_and_evaluate(p, devices=jax.devices()[:1]).test_loss.tolist()
a = ae_config()
ae = train.Engine(a, train.make_problem(a, small_curves()), train.population(a))
out['ae_layout'] = [ae.layout, len(ae.devices)]
# Four members sharded 2 + 2, with the diagnostics' batched SVDs (run on one device).
q = ae_config(seed=[0, 1], mu_max=[0.9, 0.99], diagnostics_every=8, diagnostics_cases=50)
stats = []
for devices in (None, jax.devices()[:1]):
  with tempfile.TemporaryDirectory() as d:
    train.train_and_evaluate(q, d, devices=devices, data=small_curves())
    stats.append([json.loads(l) for l in open(d + '/diagnostics.jsonl').read().splitlines()])
out['diag_steps'] = [r['step'] for r in stats[0]]
out['diag_init_same'] = stats[0][0] == stats[1][0]
def numbers(tree):
  if isinstance(tree, dict):
    return [x for k in sorted(tree) for x in numbers(tree[k])]
  if isinstance(tree, list):
    return [x for item in tree for x in numbers(item)]
  return [float(tree)] if isinstance(tree, (int, float)) else []
a, b = (np.array(numbers(s_)) for s_ in stats)
out['diag_close'] = bool(a.size > 100 and a.shape == b.shape and
                         np.allclose(a, b, rtol=1e-3, atol=1e-6, equal_nan=True))
print(json.dumps(out))
"""
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["layout"] == ["cases", 2]
  assert out["chunk_traces"] == 1
  assert out["all_reduce"] and out["half_batch"], "the minibatch was not split"
  np.testing.assert_allclose(out["two"], out["one"], rtol=1e-5)
  assert out["resumed"] == out["two"]
  assert out["pop_layout"] == "population" and len(set(out["pop_two"])) == 6
  assert out["pop_two"] == out["pop_one"]
  assert out["ae_layout"] == ["single", 1]
  assert out["diag_steps"] == [0, 8, 16, 24]
  assert out["diag_init_same"] and out["diag_close"]  # 2 + 2 vs 4 vmapped: float32 rounding


def test_chunks_do_not_recompile(curves):
  config = ae_config(mu_max=[0.9, 0.99])
  members = train.population(config)
  engine = train.Engine(config, train.make_problem(config, curves), members)
  state = engine.init()
  for start, n in [(0, 5), (5, 5), (10, 3), (13, 1)]:  # full and partial chunks
    state, _ = engine.run_chunk(state, start, n)
  engine.evaluate(state)
  engine.evaluate(state)
  assert engine.trace_counts == {"init": 1, "chunk": 1, "evaluate": 1}
  assert int(state.opt_state.count[0]) == 14  # partial chunks really ran their steps only


def test_partial_chunk_equals_single_steps(curves):
  """Running 14 updates as chunks of 5/5/3/1 or as 14 single-update chunks is the same."""
  config = ae_config()
  engine = train.Engine(config, train.make_problem(config, curves), train.population(config))
  a = b = engine.init()
  for start, n in [(0, 5), (5, 5), (10, 3), (13, 1)]:
    a, _ = engine.run_chunk(a, start, n)
  for t in range(14):
    b, _ = engine.run_chunk(b, t, 1)
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)


def test_epoch_order_visits_every_case_once(curves):
  config = ae_config()
  engine = train.Engine(config, train.make_problem(config, curves), train.population(config))
  hp = jax.tree.map(lambda x: x[0], engine.hparams)
  key = member.keys(hp)["data"]
  orders = [np.asarray(problems.autoencoder.epoch_order(key, e, 120)) for e in range(3)]
  for order in orders:
    assert sorted(order.tolist()) == list(range(120))
  assert not np.array_equal(orders[0], orders[1])


def test_population_cross_product_and_sgd_dedupe():
  c = rnn_config(seed=[0, 1], rule=["nag", "cm"], mu_max=[0.0, 0.9], learning_rate=[1e-3, 1e-4])
  members = train.population(c)
  # 2 seeds x 2 lr x (sgd + nag@0.9 + cm@0.9) = 12, not 16: at mu 0 the rules coincide.
  assert len(members) == 12
  assert sum(m["rule"] == "sgd" for m in members) == 4


@pytest.mark.parametrize("field,value,match", [
    ("mu_max", [0.9, 1.0], "mu_max"),
    ("mu_max", [-0.1], "mu_max"),
    ("learning_rate", [0.0], "learning_rate"),
    ("learning_rate", [float("nan")], "learning_rate"),
    ("learning_rate", [-1e-3], "learning_rate"),
    ("rule", ["adamw"], "rule"),
    ("seed", [], "empty"),
    ("steps", 0, "steps"),
    ("final_steps", 24, "final_steps"),
    ("dataset", "cifar", "dataset"),
])
def test_bad_autoencoder_configs_fail_before_compiling(curves, field, value, match):
  config = ae_config(**{field: value})
  with pytest.raises(ValueError, match=match):
    train.validate_config(config)
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, data=curves)


def test_unknown_keys_and_tasks_fail():
  c = rnn_config()
  c.unlock()
  c.learning_rte = 0.1
  with pytest.raises(ValueError, match="learning_rte"):
    train.validate_config(c)
  with pytest.raises(ValueError, match="nope"):
    train.validate_config(rnn_config(task="nope"))


def test_missing_data_file_is_a_clear_error(tmp_path):
  c = train.default_config("autoencoder")
  c.dataset, c.data_dir = "mnist", str(tmp_path)
  with pytest.raises((FileNotFoundError, ValueError), match="train-images"):
    train.train_and_evaluate(c)


def test_cli_writes_results(tmp_path):
  workdir = tmp_path / "cli"
  done = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config", "configs/rnn.py:add",
       f"--workdir={workdir}", "--config.progress=False", "--config.hidden=8",
       "--config.steps=20", "--config.chunk=10", "--config.eval_every=10",
       "--config.task_kwargs.T=10", "--config.eval_sequences=32", "--config.batch_size=8",
       "--config.sweep.seed=(3,)", "--config.sweep.mu_max=(0.9,)",
       "--config.sweep.learning_rate=(0.001,)"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  import pandas as pd
  results = pd.read_csv(workdir / "results.csv")
  assert sorted(results.rule) == ["cm", "nag"] and (results.seed == 3).all()
  assert json.loads((workdir / "config.json").read_text())["task"] == "addition"


def test_resume_refuses_a_different_config(tmp_path, curves):
  train.train_and_evaluate(ae_config(steps=8, eval_every=4, final_steps=0), tmp_path, data=curves)
  with pytest.raises(ValueError, match="different config.*learning_rate"):
    train.train_and_evaluate(ae_config(steps=8, eval_every=4, final_steps=0,
                                       learning_rate=[0.5]), tmp_path, data=curves)


def test_checkpoint_every_limits_saves(tmp_path, curves):
  config = ae_config(checkpoint_every=16)
  train.train_and_evaluate(config, tmp_path, data=curves)
  # Evaluations at 8, 16, 18, 24; saves only at 16 and at the end (24), max_to_keep = 2.
  saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert saved == [16, 24]


def test_diagnostics_hook(tmp_path, curves):
  """Diagnostics every 8 updates land in diagnostics.jsonl; at update 0 they match a NumPy
  forward pass of the initial parameters; and the compiled training step is the same program
  with diagnostics on or off."""
  on = ae_config(diagnostics_every=8, diagnostics_cases=50, final_steps=0, mu_max=[0.9, 0.99])
  train.train_and_evaluate(on, tmp_path, data=curves)
  records = [json.loads(l) for l in (tmp_path / "diagnostics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records] == [0, 8, 16, 24]
  # Independent check at update 0: first-layer sigmoid activations of the initial parameters.
  engine = train.Engine(on, train.make_problem(on, curves), train.population(on))
  params = jax.tree.map(np.asarray, engine.init().params)
  w, b = params["encoder_0"]["kernel"][0], params["encoder_0"]["bias"][0]
  x = curves.train[:50].astype(np.float64)
  a = 1 / (1 + np.exp(-(x @ w + b)))
  np.testing.assert_allclose(records[0]["act_mean"][0][0], a.mean(), rtol=1e-5)
  np.testing.assert_allclose(records[0]["act_std"][0][0], a.std(), rtol=1e-4)
  assert len(records[0]["act_mean"]) == 2 and len(records[0]["act_mean"][0]) == 12

  off = ae_config(final_steps=0, mu_max=[0.9, 0.99])
  texts = []
  for config in (on, off):
    e = train.Engine(config, train.make_problem(config, curves), train.population(config))
    s0 = e.init()
    texts.append(e._jit_chunk.lower(s0, e.hparams, e.data, jnp.int32(0), jnp.int32(1),
                                    e._never).as_text())
  assert texts[0] == texts[1]

