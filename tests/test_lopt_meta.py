"""Meta-training (truncations, skipping, resume), the paired evaluation and the claim rules."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments import lopt_claims
from mominit.lopt import evaluate, meta, problems


@pytest.fixture(scope="module")
def small():
  rng = np.random.default_rng(0)
  images = rng.random((256, 784), dtype=np.float32)
  labels = rng.integers(0, 10, 256).astype(np.int32)
  return problems.mlp(images, labels, pool=4, hidden=(8,), batch_size=16)


def test_truncations_see_the_evaluation_runs_starts_and_batches(small):
  """Two truncations of 5 steps, state carried, reproduce the minibatch losses of one 10-step
  evaluation run (another code path) from the same key, and the "last" meta-loss is the loss
  of x_10 on the batch of step 10."""
  theta = meta.init_theta("rnnprop", jax.random.PRNGKey(1))
  key = jax.random.PRNGKey(7)
  run = meta.init_run(small, "rnnprop", theta, key)
  losses = []
  for _ in range(2):
    value, (run, seg, final) = meta.truncation_loss(theta, run, small.data, small, "rnnprop", 5)
    losses.append(seg)
  ref, _ = evaluate.run_fn(small, "rnnprop", (11,))(theta, key, small.data)
  np.testing.assert_allclose(np.concatenate(losses), ref[:10], rtol=2e-5)
  np.testing.assert_allclose(value, ref[10], rtol=2e-5)
  assert int(run.step) == 10


def test_mean_meta_loss_is_the_mean_of_the_losses_after_each_update(small):
  theta = meta.init_theta("dm_lv2017", jax.random.PRNGKey(2))
  run = meta.init_run(small, "dm_lv2017", theta, jax.random.PRNGKey(3))
  value, (_, seg, final) = meta.truncation_loss(theta, run, small.data, small, "dm_lv2017", 4,
                                                "mean")
  np.testing.assert_allclose(value, (float(jnp.sum(seg[1:])) + float(final)) / 4, rtol=1e-6)
  assert meta.default_meta_loss("dm_lv2017") == "mean"
  assert meta.default_meta_loss("dm_deepmind") == "sum"
  assert meta.default_meta_loss("rnnprop") == "last"


def test_non_finite_meta_gradients_are_skipped_and_counted(small, tmp_path):
  poisoned = dataclasses.replace(small, loss=lambda p, c, b: small.loss(p, c, b) * jnp.nan)
  out = meta.train(poisoned, small, "rnnprop", tmp_path, epochs=1, runs_per_epoch=3, horizon=4,
                   unroll=2, eval_seeds=2, eval_steps=4, progress=False)
  assert out["skipped"] == 3 and out["history"][0]["skipped"] == 3
  init = meta.init_theta("rnnprop", jax.random.fold_in(jax.random.PRNGKey(0), 0))
  for a, b in zip(jax.tree.leaves(out["last_theta"]), jax.tree.leaves(init)):
    np.testing.assert_array_equal(a, b)


def test_resumed_meta_training_equals_an_uninterrupted_one(small, tmp_path):
  kw = dict(runs_per_epoch=2, horizon=4, unroll=2, tasks=2, eval_seeds=2, eval_steps=4,
            progress=False)
  whole = meta.train(small, small, "rnnprop", tmp_path / "a", epochs=2, **kw)
  meta.train(small, small, "rnnprop", tmp_path / "b", epochs=1, **kw)
  resumed = meta.train(small, small, "rnnprop", tmp_path / "b", epochs=2, **kw)
  for a, b in zip(jax.tree.leaves(whole["last_theta"]), jax.tree.leaves(resumed["last_theta"])):
    np.testing.assert_array_equal(a, b)
  assert [h["eval_loss"] for h in whole["history"]] == [h["eval_loss"] for h in
                                                        resumed["history"]]
  assert len(resumed["history"]) == 2
  # theta moved, and the selected theta is the epoch with the lowest base-task loss
  init = meta.init_theta("rnnprop", jax.random.fold_in(jax.random.PRNGKey(0), 0))
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(whole["last_theta"]),
                                             jax.tree.leaves(init)))
  best = min(whole["history"], key=lambda h: h["eval_loss"])
  assert whole["best_epoch"] == best["epoch"]


def test_paired_study_nag_reports_theta_and_grids_are_sqrt2_spaced(small):
  grid = evaluate.learning_rate_grid(-3.0, -1.0)
  np.testing.assert_allclose(grid, 2.0 ** np.array([-3, -2.5, -2, -1.5, -1]), rtol=1e-6)
  keys = jnp.stack([jax.random.PRNGKey(i) for i in range(2)])
  out = evaluate.study(small, {"nag": grid[:2], "adam": grid[:1]}, keys, (3, 6))
  assert out["nag"]["losses"].shape == (2, 2, 6) and out["nag"]["finals"].shape == (2, 2, 2)
  # the same x_0 and first minibatch for every family: identical loss at step 0
  np.testing.assert_array_equal(out["nag"]["losses"][0, :, 0], out["adam"]["losses"][0, :, 0])


def _rows(means, seeds=4, horizon=100, noise=0.01, grid=(0.01, 0.02, 0.04)):
  rng = np.random.default_rng(0)
  rows = []
  for family, mean in means.items():
    rates = grid if family in evaluate.HAND_DESIGNED else (float("nan"),)
    for k, lr in enumerate(rates):
      for s in range(seeds):
        value = mean * (1.5 if k != len(rates) // 2 else 1.0) + noise * rng.normal()
        rows.append({"experiment": "lopt", "problem": "mlp", "family": family,
                     "learning_rate": lr, "seed": s, "horizon": horizon, "final_loss": value,
                     "base_problem": "mlp", "train_horizon": 100})
  return pd.DataFrame(rows)


def test_claim_rules_on_hand_made_tables():
  good = _rows({"adam": 0.5, "nag": 0.3, "rnnprop": 0.2, "dm_lv2017": 0.4})
  bad = _rows({"adam": 0.5, "nag": 0.3, "rnnprop": 0.45, "dm_lv2017": 0.4})
  tie = _rows({"adam": 0.5, "nag": 0.3, "rnnprop": 0.3, "dm_lv2017": 0.3}, noise=0.05)
  assert lopt_claims.best_baseline(good, "mlp", 100)["family"] == "nag"
  assert lopt_claims.beats_best_tuned(good)["verdict"] == "PASS"
  assert lopt_claims.beats_best_tuned(bad)["verdict"] == "FAIL"
  assert lopt_claims.beats_best_tuned(tie)["verdict"] == "INCONCLUSIVE"
  assert lopt_claims.beats_dmoptimizer(good)["verdict"] == "PASS"
  assert lopt_claims.beats_dmoptimizer(bad)["verdict"] == "FAIL"
  # the baseline's best rate at its grid's edge: a win does not count
  edge = _rows({"adam": 0.5, "nag": 0.3, "rnnprop": 0.2}, grid=(0.02, 0.04))
  assert lopt_claims.beats_best_tuned(edge)["verdict"] == "INCONCLUSIVE"
  long = pd.concat([good, _rows({"adam": 0.2, "nag": 0.1, "rnnprop": 0.05, "dm_lv2017": 0.6},
                                horizon=2000)])
  assert lopt_claims.longer_horizons(long)["verdict"] == "PASS"
  assert lopt_claims.dm_degrades(long)["verdict"] == "PASS"  # DM ratio 0.4/0.3 -> 0.6/0.1
  improving = pd.concat([good, _rows({"adam": 0.2, "nag": 0.1, "rnnprop": 0.05,
                                      "dm_lv2017": 0.11}, horizon=2000)])
  assert lopt_claims.dm_degrades(improving)["verdict"] == "FAIL"  # 1.33 -> 1.1
  worse = pd.concat([good, _rows({"adam": 0.2, "nag": 0.1, "rnnprop": 0.3}, horizon=2000)])
  assert lopt_claims.longer_horizons(worse)["verdict"] == "FAIL"
  for check in (lopt_claims.generalises, lopt_claims.tricks_help, lopt_claims.adam_rates_match):
    assert check(good)["verdict"] == "INCONCLUSIVE"


def test_adam_calibration_rule():
  def table(best_lr_100, best_lr_2000):
    rows = []
    for h, best in ((100, best_lr_100), (2000, best_lr_2000)):
      for lr in 2.0 ** np.arange(-9, -2.5, 0.5):
        for s in range(2):
          rows.append({"experiment": "lopt_calibration", "problem": "mlp", "family": "adam",
                       "learning_rate": lr, "seed": s, "horizon": h,
                       "final_loss": 1.0 + abs(np.log2(lr) - np.log2(best))})
    return pd.DataFrame(rows)

  assert lopt_claims.adam_rates_match(table(2**-5, 2**-6.5))["verdict"] == "PASS"
  assert lopt_claims.adam_rates_match(table(2**-5, 2**-7))["verdict"] == "FAIL"
  assert lopt_claims.adam_rates_match(table(2**-3, 2**-6))["verdict"] == "INCONCLUSIVE"  # edge
