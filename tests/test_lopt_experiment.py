"""experiments.lopt: the tiny preset end to end, config checks, and the benchmark's row."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from configs import lopt as lopt_config
from experiments import lopt
from mominit.lopt import cost, evaluate


def test_tiny_preset_end_to_end(tmp_path, mnist_dir):
  config = lopt_config.get_config("tiny")
  config.progress = False
  config.data_dir = str(mnist_dir)
  out = lopt.train_and_evaluate(config, tmp_path)
  for name in ("report.md", "results.csv", "claims.json", "claims.md", "meta_training.png",
               "curves_mlp_pooled.png", "meta/rnnprop/metrics.jsonl"):
    assert (tmp_path / name).exists(), name
  results = pd.read_csv(tmp_path / "results.csv")
  assert set(results["family"]) == {"adam", "rnnprop"}
  assert len(results) == (1 + 1) * 2  # (one Adam rate + RNNprop) x 2 seeds
  assert {c["id"] for c in out["claims"]} >= {"rnnprop_beats_best_tuned", "tricks_help"}
  assert all(c["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for c in out["claims"])
  assert "MNIST test set" in (tmp_path / "report.md").read_text()
  # The study's RNNprop numbers are those of the selected theta, rerun here from each seed.
  theta = out["trained"]["rnnprop"]["theta"]
  problem = lopt._problem("mlp_pooled", lopt.load_mnist(mnist_dir)[:2], config, None)
  mine = results[results["family"] == "rnnprop"].sort_values("seed")
  for seed, value in zip(mine["seed"], mine["final_loss"]):
    _, finals = evaluate.run_fn(problem, "rnnprop", (20,))(theta, jax.random.PRNGKey(seed),
                                                          problem.data)
    np.testing.assert_allclose(finals[0], value, rtol=1e-5)


@pytest.mark.parametrize("field,value,match", [
    ("learned", ("adamw",), "config.learned"),
    ("problem", "resnet", "config.problem"),
    ("eval.families", ("lion",), "config.eval.families"),
    ("meta.unroll", 7, "config.meta.horizon"),
    ("eval.horizons", (0,), "config.eval.horizons"),
])
def test_bad_config_fields_are_named(field, value, match, tmp_path):
  config = lopt_config.get_config("tiny")
  node, _, leaf = field.rpartition(".")
  (config[node] if node else config)[leaf] = value
  with pytest.raises(ValueError, match=match):
    lopt.train_and_evaluate(config, tmp_path)
  with pytest.raises(ValueError, match="preset"):
    lopt_config.get_config("huge")


def _dots(jaxpr, mult=1) -> int:
  """Matmul FLOPs of a jaxpr: 2 x output size x contracted size per dot_general, scan bodies
  times their length (checkpointed bodies count where they are recomputed)."""
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += mult * 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(
          lhs[d] for d in contract)
    inner = mult * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      total += _dots(sub, inner)
  return total


def test_meta_gradient_flops_equal_the_matmuls_of_its_program():
  from mominit.lopt import meta, networks, problems
  rng = np.random.default_rng(0)
  b, i, h, unroll = 16, 12, 5, 3
  problem = problems.mlp(rng.random((64, i), dtype=np.float32), rng.integers(0, 10, 64),
                         hidden=(h,), batch_size=b)
  theta = networks.init_rnnprop(jax.random.PRNGKey(0))
  net = cost.layer_shapes(theta)
  assert net == [(2, 20), (40, 80), (40, 80), (20, 1)]
  run = meta.init_run(problem, "rnnprop", theta, jax.random.PRNGKey(1))
  grad = jax.grad(lambda t: meta.truncation_loss(t, run, problem.data, problem, "rnnprop",
                                                 unroll)[0])
  executed = _dots(jax.make_jaxpr(grad)(theta).jaxpr)
  mlp = [(i, h), (h, 10)]
  assert cost.flops_per_inner_step(net, mlp, b, unroll) * unroll == executed
  # By hand: N = 12*5+5+5*10+10 = 125 coordinates; network forward 2 (40 + 3200 + 3200 + 20)
  # = 12,920 per coordinate; optimizee gradient 6*16*110 - 2*16*12*5 = 8,640.
  assert cost.flops_per_inner_step(net, mlp, b, unroll) == pytest.approx(
      2 * 8640 + 125 * (4 * 12920 - 80) + 8640 / 3)
  fn, arrays = cost.limit_fn(net, mlp, b, unroll)
  assert _dots(jax.make_jaxpr(fn)(arrays(jax.random.PRNGKey(0))).jaxpr) == (
      unroll * cost.limit_flops_per_step(net, mlp, b))
