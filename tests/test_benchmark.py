"""The throughput benchmark: FLOP counts, its PyTorch peer, its limit scan, and a --quick run.

No test here asserts a timing: timings depend on the machine and its load.
"""
import datetime
import json
import math
import sys

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import benchmark


# ---------------------------------------------------------------------------------------------
# FLOP counts, from the layer sizes by hand.


def test_autoencoder_flops_are_hand_counted():
  # CURVES 784-400-200-100-50-25-6 and its mirror: 12 layers of fan_in * fan_out.
  curves = 2 * (784 * 400 + 400 * 200 + 200 * 100 + 100 * 50 + 50 * 25 + 25 * 6)
  assert curves == 840_000
  assert benchmark.autoencoder_weights("curves") == curves
  assert benchmark.autoencoder_flops("curves") == 6 * 200 * 840_000 == 1_008_000_000
  assert len(benchmark.autoencoder_layers("curves")) == 12
  # MNIST 784-1000-500-250-30 and its mirror: 8 layers.
  mnist = 2 * (784 * 1000 + 1000 * 500 + 500 * 250 + 250 * 30)
  assert mnist == 2_833_000
  assert benchmark.autoencoder_flops("mnist") == 6 * 200 * 2_833_000 == 3_399_600_000


def _dot_flops(jaxpr) -> int:
  """2 x (output size) x (contracted size), summed over every dot_general of a jaxpr."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contract)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      total += _dot_flops(sub)
  return total


@pytest.mark.parametrize("name,executed", [("curves", 882_560_000), ("mnist", 3_086_000_000)])
def test_executed_flops_equal_the_gradient_programs_matmuls(name, executed):
  """Hand count (model FLOPs less the first layer's unneeded input gradient, 2 x 200 x 784 x
  fan_out) and an independent count: the matmuls in the jaxpr of the engine's gradient."""
  from mominit import losses, models
  first = 2 * 200 * 784 * (400 if name == "curves" else 1000)
  assert benchmark.autoencoder_executed_flops(name) == (
      benchmark.autoencoder_flops(name) - first) == executed
  model = models.autoencoder(name)
  x = jnp.zeros((200, 784))
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])["params"]
  loss = lambda p: losses.sigmoid_cross_entropy(model.apply({"params": p}, x), x)
  assert _dot_flops(jax.make_jaxpr(jax.grad(loss))(params).jaxpr) == executed


def test_ceiling_ratio_by_hand():
  # MNIST executes 3.086 GFLOP per update; at 340 GFLOP/s that is 110.18 updates/s, which is
  # 1.4690x a peer doing 75 updates/s.
  assert benchmark.ceiling_ratio(340e9, 3_086_000_000, 75.0) == pytest.approx(1.4690, abs=1e-4)


def test_autoencoder_weights_match_the_real_model():
  """The count is the number of kernel entries of the Flax model the engine trains."""
  from mominit import models
  for name in ("curves", "mnist"):
    params = jax.eval_shape(models.autoencoder(name).init, jax.random.PRNGKey(0),
                            jnp.zeros((1, 784)))["params"]
    kernels = sum(math.prod(layer["kernel"].shape) for layer in params.values())
    assert benchmark.autoencoder_weights(name) == kernels


def test_rnn_flops_are_hand_counted():
  # Addition T=80: inputs (value, marker), 100 tanh units, 1 linear output; sequences are padded
  # to floor(1.1 * 80) - 1 = 87 steps.
  from mominit import tasks
  assert tasks.make("addition", T=80).max_len == 87
  assert benchmark.rnn_weights(100, 2, 1) == 2 * 100 + 100 * 100 + 100 * 1 == 10_300
  assert benchmark.rnn_flops(87) == 6 * 100 * 87 * 10_300 == 537_660_000
  assert benchmark.rnn_limit_flops(87) == 3 * 2 * 100 * 100 * 100 * 87


def test_rnn_limit_scan_matches_numpy():
  """The limit scan computes the matmuls it claims (float64 NumPy loops)."""
  rng = np.random.default_rng(0)
  p, b, h, length = 2, 3, 4, 5
  w = rng.normal(size=(p, h, h)).astype(np.float32)
  h0 = rng.normal(size=(p, b, h)).astype(np.float32)
  g0 = rng.normal(size=(p, b, h)).astype(np.float32)
  g, dw = benchmark.rnn_limit_fn(length)(w, h0, g0)
  for m in range(p):
    hs, x = [], h0[m].astype(np.float64)
    for _ in range(length):
      x = x @ w[m]
      hs.append(x)
    gm, dwm = g0[m].astype(np.float64), np.zeros((h, h))
    for x in reversed(hs):
      dwm += x.T @ gm
      gm = gm @ w[m].T
    np.testing.assert_allclose(g[m], gm, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw[m], dwm, rtol=1e-4, atol=1e-4)


def test_rnn_limit_scan_split_over_cases_matches_numpy():
  """In the engine's cases layout (2 CPU devices, each scanning half the cases, dW summed) the
  limit scan computes the same matmuls (float64 NumPy loops)."""
  import os
  import pathlib
  import subprocess
  repo = pathlib.Path(__file__).resolve().parents[1]
  script = f"""
import sys
sys.path.insert(0, {str(repo)!r})
import jax, numpy as np
from experiments import benchmark
assert len(jax.devices()) == 2
class Placed:  # what rnn_limit_timer reads of an engine
  layout, mesh = "cases", jax.sharding.Mesh(np.array(jax.devices()), ("cases",))
rng = np.random.default_rng(0)
w, h, g = (rng.normal(size=s).astype(np.float32) for s in ((1, 4, 4), (1, 6, 4), (1, 6, 4)))
sharded = jax.sharding.NamedSharding(Placed.mesh, jax.sharding.PartitionSpec(None, "cases"))
split = benchmark.rnn_limit_fn(5, "cases", Placed.mesh)(w, jax.device_put(h, sharded),
                                                       jax.device_put(g, sharded))
hs, x = [], h[0].astype(np.float64)
for _ in range(5):
  x = x @ w[0]
  hs.append(x)
gm, dwm = g[0].astype(np.float64), np.zeros((4, 4))
for x in reversed(hs):
  dwm += x.T @ gm
  gm = gm @ w[0].T
np.testing.assert_allclose(np.asarray(split[0])[0], gm, rtol=1e-4, atol=1e-4)
np.testing.assert_allclose(np.asarray(split[1])[0], dwm, rtol=1e-4, atol=1e-4)
assert benchmark.rnn_limit_timer(2, 3, batch=4, hidden=4, engine=Placed).info["layout"] == "cases"
print("ok")
"""
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


# ---------------------------------------------------------------------------------------------
# The PyTorch peer trains the same model with the same rule.

def _require_torch():
  return pytest.importorskip("torch", reason="PyTorch is optional (pip install -e '.[bench]')")


def test_torch_autoencoder_does_the_same_nag_updates():
  """Three updates of the PyTorch loop (constant mu, where torch's Nesterov SGD equals the
  paper's NAG in look-ahead form) match mominit.nag on the Flax model from the same weights
  and minibatches."""
  torch_ = _require_torch()
  from mominit import losses, models, momentum
  import optax
  mu, lr = 0.9, 0.005
  peer = benchmark.torch_autoencoder(torch_, "curves", 600, lambda t: mu, lr)
  linear = [m for m in peer["model"] if isinstance(m, torch_.nn.Linear)]
  names = [f"{'encoder' if i < 6 else 'decoder'}_{i % 6}" for i in range(12)]
  params = {name: {"kernel": jnp.asarray(m.weight.detach().numpy().T),
                   "bias": jnp.asarray(m.bias.detach().numpy())}
            for name, m in zip(names, linear)}
  model = models.autoencoder("curves")
  data = peer["data"].numpy()
  tx = momentum.nag(lr, mu)
  opt_state = tx.init(params)

  def loss_fn(p, x):
    return losses.sigmoid_cross_entropy(model.apply({"params": p}, x), x)

  for t in range(3):
    peer_loss = float(peer["step"]())
    order = peer["state"]["order"].numpy()
    x = jnp.asarray(data[order[t * 200:(t + 1) * 200]])
    loss, grads = jax.value_and_grad(loss_fn)(params, x)
    np.testing.assert_allclose(peer_loss, loss, rtol=1e-5)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  for name, m in zip(names, linear):
    np.testing.assert_allclose(m.weight.detach().numpy().T, params[name]["kernel"], atol=2e-6)


def test_torch_rnn_computes_the_mominit_loss():
  """nn.RNN + Linear with the TanhRNN's weights gives mominit's masked squared error."""
  torch_ = _require_torch()
  from mominit import losses, models, tasks
  task = tasks.make("addition", T=10)
  peer = benchmark.torch_rnn(torch_, task, lambda t: 0.9, hidden=8, batch=5, pool=1)
  rnn, readout = peer["model"]
  params = {"W_xh": rnn.weight_ih_l0.detach().numpy().T,
            "W_hh": rnn.weight_hh_l0.detach().numpy().T,
            "b_h": (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().numpy(),
            "W_hy": readout.weight.detach().numpy().T, "b_y": readout.bias.detach().numpy()}
  inputs, targets, mask = (x.numpy() for x in peer["batches"][0])
  out = models.TanhRNN(num_outputs=1, hidden=8).apply({"params": params}, jnp.asarray(inputs))
  expected = losses.masked_squared_error(out, targets, mask)
  np.testing.assert_allclose(float(peer["step"]()), expected, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# The --quick run, as CI runs it (without PyTorch).


def test_quick_benchmark_writes_wellformed_json(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "torch", None)  # as in CI, where only .[test] is installed
  out = tmp_path / "bench" / "benchmark.json"
  benchmark.main(["--quick", "--out", str(out)])
  printed = capsys.readouterr().out
  result = json.loads(out.read_text())

  datetime.datetime.fromisoformat(result["date"])
  assert result["quick"] is True
  assert result["versions"]["jax"] == jax.__version__ and result["versions"]["torch"] is None
  assert result["machine"]["cpu_count"] >= 1
  assert result["torch"]["available"] is False
  for name in ("curves", "rnn"):
    assert "not installed" in result["torch"][name]["skipped"]
    assert f"torch {name}" in printed and "skipped" in printed

  peak = result["matmul"]["gflops"]
  assert peak > 0 and result["matmul"]["flops"] == 2 * result["matmul"]["n"] ** 3
  expected = {("curves", p) for p in benchmark.QUICK["autoencoders"]["curves"]} | {
      ("rnn", p) for p in benchmark.QUICK["rnn_populations"]}
  assert {(r["workload"], r["population"]) for r in result["rows"]} == expected
  flops = {"curves": 1_008_000_000, "rnn": 537_660_000}  # hand counts (tests above)
  assert result["flops_per_update"]["curves"]["executed_flops"] == 882_560_000
  for r in result["rows"]:
    assert r["flops_per_update"] == flops[r["workload"]]
    assert r["layout"] in ("single", "population", "cases") and r["devices"] >= 1
    assert r["steps_per_s"] > 0 and r["compile_s"] >= 0
    assert r["member_updates_per_s"] == pytest.approx(r["population"] * r["steps_per_s"])
    assert r["gflops"] == pytest.approx(r["member_updates_per_s"] * r["flops_per_update"] / 1e9)
    assert r["fraction_of_matmul"] == pytest.approx(r["gflops"] / peak)
    assert r["torch_ratio"] is None
    assert r["alive"] == r["population"]
    assert r["compilations"]["chunk"] == 1  # timed chunks never recompile
  limits = {l["population"]: l["gflops"] for l in result["rnn_limit"]}
  for r in result["rows"]:
    if r["workload"] == "rnn":
      assert r["fraction_of_limit"] == pytest.approx(r["gflops"] / limits[r["population"]])
  assert result["checks"]["curves_p1_vs_torch>=1.5"] is None
  assert isinstance(result["checks"]["curves_p1_fraction_of_matmul>=0.85"], bool)
  assert "workload" in printed and "GFLOP/s" in printed
  meta = result["meta_gradient"]  # the learned optimizer's meta-gradient (mominit.lopt)
  assert meta["inner_steps_per_s"] > 0 and meta["unroll"] == benchmark.QUICK["meta_gradient"][
      "unroll"]
  assert meta["gflops"] == pytest.approx(
      meta["inner_steps_per_s"] * meta["flops_per_inner_step"] / 1e9)
  assert meta["fraction_of_limit"] == pytest.approx(meta["gflops"] / meta["limit_gflops"])
  assert meta["fraction_of_matmul"] == pytest.approx(meta["gflops"] / peak)
  assert "meta-gradient" in printed and "of its own matmul limit" in printed
