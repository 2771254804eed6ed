"""Claim checkers on hand-made results tables: each gives PASS, FAIL and INCONCLUSIVE when it
should (the numbers are chosen by hand, far from the rules' thresholds unless a test says so)."""
import json
import math

import pandas as pd
import pytest

from experiments import claims

BASE = 27.6  # mean-image error of the hand-made autoencoder problem
OFFSETS = (-0.1, 0.0, 0.1)  # seed-to-seed spread: std 0.1 for three seeds


def ae_rows(cells, experiment="table1", seeds=3, steps=1000, spread=OFFSETS, **extra):
  """Rows of a hand-made autoencoder table.

  Args:
    cells: {(rule, mu_max, learning_rate): mean error, or (mean, before) for the final phase,
      or "diverged"}.
    experiment: the experiment label.
    seeds: members per cell (errors mean + spread[i]).
  """
  rows = []
  for (rule, mu, lr), value in cells.items():
    before = None
    if isinstance(value, tuple):
      value, before = value
    for s in range(seeds):
      err = float("nan") if value == "diverged" else value + spread[s % len(spread)] * (
          seeds > 1)
      row = {"experiment": experiment, "problem": "curves", "baseline": BASE, "seed": s,
             "rule": rule, "mu_max": mu, "learning_rate": lr, "train_error": err,
             "error_before_final": err + 1.0 if before is None else (
                 before + spread[s % len(spread)] * (seeds > 1)),
             "diverged": value == "diverged", "steps": steps, "init_scale": 1.0}
      row.update(extra)
      rows.append(row)
  return pd.DataFrame(rows)


def rnn_rows(cells, seeds=3, steps=2000, baseline=0.92, spread=(-0.01, 0.0, 0.01)):
  rows = []
  for (rule, mu, lr), value in cells.items():
    for s in range(seeds):
      err = float("nan") if value == "diverged" else value + spread[s % 3] * (seeds > 1)
      rows.append({"experiment": "table5", "problem": "add", "baseline": baseline, "seed": s,
                   "rule": rule, "mu_max": mu, "learning_rate": lr, "zero_one": err,
                   "test_loss": 0.1 if value == "diverged" else value / 10,
                   "diverged": value == "diverged", "steps": steps})
  return pd.DataFrame(rows)


def test_compare_is_a_two_sample_z_test():
  a = {"mean": 1.0, "std": 0.1, "n_seeds": 4}
  b = {"mean": 2.0, "std": 0.1, "n_seeds": 4}
  out = claims.compare(a, b, tol=0.05)
  assert out["se"] == pytest.approx(math.sqrt(0.01 / 4 + 0.01 / 4))
  assert out["diff"] == pytest.approx(-1.0) and out["resolved"] and out["sign"] == -1
  # 1.0 vs 1.1 with std 0.2, n = 2: se = 0.2, 2 se = 0.4 > 0.1: not resolved.
  assert not claims.compare({"mean": 1.0, "std": 0.2, "n_seeds": 2},
                            {"mean": 1.1, "std": 0.2, "n_seeds": 2}, 0.01)["resolved"]
  # One seed never resolves, however large the difference.
  assert not claims.compare({"mean": 1.0, "std": float("nan"), "n_seeds": 1}, b, 0.0)["resolved"]
  # A diverged cell against a finite one is resolved (with >= 2 seeds each).
  out = claims.compare({"mean": float("inf"), "std": float("inf"), "n_seeds": 2}, b, 0.0)
  assert out["resolved"] and out["sign"] == 1


class TestNagNoWorseThanCm:

  def test_pass_and_uses_best_learning_rate(self):
    # NAG's lr 0.05 has one diverged seed (mean inf) and lr 0.001 is worse: lr 0.01 (10) wins.
    table = ae_rows({("nag", 0.99, 0.01): 10.0, ("nag", 0.99, 0.001): 20.0,
                     ("cm", 0.99, 0.01): 12.0, ("cm", 0.99, 0.001): 13.0})
    bad = ae_rows({("nag", 0.99, 0.05): 1.0})
    bad.loc[bad["seed"] == 0, ["diverged", "train_error"]] = [True, float("nan")]
    out = claims.nag_no_worse_than_cm(pd.concat([table, bad]))
    assert out["verdict"] == claims.PASS
    (entry,) = out["numbers"]
    assert entry["nag"]["learning_rate"] == 0.01 and entry["nag"]["mean"] == pytest.approx(10.0)
    assert entry["cm"]["mean"] == pytest.approx(12.0)

  def test_fail(self):
    out = claims.nag_no_worse_than_cm(ae_rows({("nag", 0.995, 0.01): 14.0,
                                               ("cm", 0.995, 0.01): 10.0}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_with_one_seed(self):
    out = claims.nag_no_worse_than_cm(ae_rows({("nag", 0.99, 0.01): 14.0,
                                               ("cm", 0.99, 0.01): 10.0}, seeds=1))
    assert out["verdict"] == claims.INCONCLUSIVE and "2 seeds" in out["reason"]

  def test_inconclusive_within_spread(self):
    # 10.8 vs 10 is beyond the 5% tolerance but std 1 with 3 seeds: se 0.82, 2 se > 0.8.
    out = claims.nag_no_worse_than_cm(ae_rows({("nag", 0.99, 0.01): 10.8,
                                               ("cm", 0.99, 0.01): 10.0},
                                              spread=(-1.0, 0.0, 1.0)))
    assert out["verdict"] == claims.INCONCLUSIVE and "spread" in out["reason"]

  def test_inconclusive_on_the_plateau(self):
    out = claims.nag_no_worse_than_cm(ae_rows({("nag", 0.99, 0.01): 27.0,
                                               ("cm", 0.99, 0.01): 25.5}))
    assert out["verdict"] == claims.INCONCLUSIVE and "plateau" in out["reason"]

  def test_low_mu_is_not_judged(self):
    # NAG is much worse at mu_max 0.9, but the claim is about mu_max >= 0.99 only.
    out = claims.nag_no_worse_than_cm(ae_rows({("nag", 0.9, 0.01): 20.0, ("cm", 0.9, 0.01): 10.0,
                                               ("nag", 0.99, 0.01): 9.0,
                                               ("cm", 0.99, 0.01): 9.2}))
    assert out["verdict"] == claims.PASS and len(out["numbers"]) == 1


class TestLargerMuMaxHelps:

  def test_pass(self):
    out = claims.larger_mu_max_helps(ae_rows({
        ("sgd", 0.0, 0.01): 20.0, ("nag", 0.9, 0.01): 15.0, ("cm", 0.9, 0.01): 16.0,
        ("nag", 0.99, 0.01): 10.0, ("cm", 0.99, 0.01): 11.0}))
    assert out["verdict"] == claims.PASS and len(out["numbers"]) == 2
    nag = [e for e in out["numbers"] if e["rule"] == "nag"][0]
    assert nag["low"]["mu_max"] == 0.9 and nag["high"]["mean"] == pytest.approx(10.0)

  def test_fail_when_high_momentum_is_worse(self):
    out = claims.larger_mu_max_helps(ae_rows({
        ("sgd", 0.0, 0.01): 20.0, ("nag", 0.9, 0.01): 15.0, ("cm", 0.9, 0.01): 12.0,
        ("nag", 0.99, 0.01): 10.0, ("cm", 0.99, 0.01): 18.0}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_with_one_seed(self):
    out = claims.larger_mu_max_helps(ae_rows({("sgd", 0.0, 0.01): 20.0,
                                              ("nag", 0.99, 0.01): 10.0}, seeds=1))
    assert out["verdict"] == claims.INCONCLUSIVE


class TestFinalPhase:

  def test_pass(self):
    out = claims.final_phase_lowers_error(ae_rows({("nag", 0.99, 0.01): (10.0, 12.0)}))
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["before"] == pytest.approx([11.9, 12.0, 12.1])

  def test_fail(self):
    out = claims.final_phase_lowers_error(ae_rows({("nag", 0.99, 0.01): (12.0, 10.0)}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_when_mixed(self):
    table = ae_rows({("nag", 0.995, 0.01): (10.0, 10.0)}, spread=(-0.5, 0.0, 0.5))
    table["error_before_final"] = [10.0, 10.0, 10.0]  # after: 9.5, 10.0, 10.5
    assert claims.final_phase_lowers_error(table)["verdict"] == claims.INCONCLUSIVE

  def test_mu_max_at_the_final_mu_is_not_judged(self):
    # With mu_max = 0.9 the final phase (mu = 0.9) changes nothing: no comparison.
    out = claims.final_phase_lowers_error(ae_rows({("nag", 0.9, 0.01): (12.0, 10.0)}))
    assert out["verdict"] == claims.INCONCLUSIVE and not out["numbers"]


def si_table(errors, steps=1000):
  return pd.concat([ae_rows({("nag", 0.99, 0.01): e}, experiment="table3", steps=steps,
                            init_scale=s) for s, e in errors.items()], ignore_index=True)


class TestSiScale:

  def test_pass(self):
    out = claims.si_scale(si_table({0.25: 27.5, 0.5: 26.0, 1.0: 5.0, 2.0: 6.0, 4.0: 9.0}))
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["scales"]["0.5"]["mean"] == pytest.approx(26.0)

  def test_fail_when_a_small_scale_works(self):
    out = claims.si_scale(si_table({0.25: 27.5, 0.5: 5.5, 1.0: 5.0, 2.0: 6.0}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_when_too_short(self):
    # Scales 1 and 2 left the plateau (< 0.9 x 27.6) but do not "work" (> 0.5 x 27.6) yet.
    out = claims.si_scale(si_table({0.25: 27.5, 0.5: 27.0, 1.0: 20.0, 2.0: 21.0}))
    assert out["verdict"] == claims.INCONCLUSIVE and "too few" in out["reason"]

  def test_fail_with_the_full_protocol(self):
    out = claims.si_scale(si_table({0.25: 27.5, 0.5: 27.0, 1.0: 20.0, 2.0: 21.0},
                                   steps=750_000))
    assert out["verdict"] == claims.FAIL

  def test_diverged_small_scale_counts_as_failing(self):
    out = claims.si_scale(si_table({0.25: "diverged", 0.5: 26.0, 1.0: 5.0, 2.0: 6.0}))
    assert out["verdict"] == claims.PASS


class TestGaussian:

  def tables(self, gaussian, sparse):
    return pd.concat([ae_rows({("nag", 0.99, 0.01): gaussian, ("cm", 0.99, 0.01): 27.5},
                              experiment="gaussian", init_scale=1.0),
                      si_table({1.0: sparse, 0.25: 27.0})], ignore_index=True)

  def test_pass(self):
    out = claims.gaussian_init_fails(self.tables(gaussian=27.0, sparse=5.0))
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["gaussian"]["rule"] == "nag"  # the better Gaussian cell

  def test_fail(self):
    assert claims.gaussian_init_fails(self.tables(6.0, 5.0))["verdict"] == claims.FAIL

  def test_inconclusive_when_sparse_does_not_work_yet(self):
    out = claims.gaussian_init_fails(self.tables(27.0, 20.0))
    assert out["verdict"] == claims.INCONCLUSIVE

  def test_inconclusive_without_a_sparse_reference(self):
    table = ae_rows({("nag", 0.99, 0.01): 27.0}, experiment="gaussian")
    assert claims.gaussian_init_fails(table)["verdict"] == claims.INCONCLUSIVE


class TestMomentumHelpsRnn:

  def test_pass_uses_nag_at_the_largest_mu0(self):
    out = claims.momentum_helps_rnn(rnn_rows({
        ("sgd", 0.0, 1e-3): 0.6, ("nag", 0.9, 1e-3): 0.7, ("nag", 0.995, 1e-3): 0.05}))
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["nag"]["mu_0"] == 0.995

  def test_fail(self):
    out = claims.momentum_helps_rnn(rnn_rows({("sgd", 0.0, 1e-3): 0.3,
                                              ("nag", 0.995, 1e-3): 0.8}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_when_nothing_learnt(self):
    out = claims.momentum_helps_rnn(rnn_rows({("sgd", 0.0, 1e-3): 0.92,
                                              ("nag", 0.995, 1e-3): 0.915}))
    assert out["verdict"] == claims.INCONCLUSIVE and "baseline" in out["reason"]

  def test_inconclusive_with_one_seed(self):
    out = claims.momentum_helps_rnn(rnn_rows({("sgd", 0.0, 1e-3): 0.6,
                                              ("nag", 0.995, 1e-3): 0.05}, seeds=1))
    assert out["verdict"] == claims.INCONCLUSIVE


class TestNagBenefitsMoreFromMu0:

  def test_pass(self):
    out = claims.nag_benefits_more_from_mu0(rnn_rows({
        ("nag", 0.9, 1e-3): 0.5, ("nag", 0.995, 1e-3): 0.1,
        ("cm", 0.9, 1e-3): 0.5, ("cm", 0.995, 1e-3): 0.5}))
    assert out["verdict"] == claims.PASS
    (entry,) = out["numbers"]
    assert entry["gain_nag"] == pytest.approx(0.4) and entry["gain_cm"] == pytest.approx(0.0)
    # se = sqrt(4 * 0.01^2 / 3) with the +-0.01 spread (std 0.01) over 3 seeds.
    assert entry["se"] == pytest.approx(math.sqrt(4 * 0.01**2 / 3))

  def test_fail(self):
    out = claims.nag_benefits_more_from_mu0(rnn_rows({
        ("nag", 0.9, 1e-3): 0.5, ("nag", 0.995, 1e-3): 0.5,
        ("cm", 0.9, 1e-3): 0.5, ("cm", 0.995, 1e-3): 0.1}))
    assert out["verdict"] == claims.FAIL

  def test_inconclusive_when_gains_equal(self):
    out = claims.nag_benefits_more_from_mu0(rnn_rows({
        ("nag", 0.9, 1e-3): 0.5, ("nag", 0.995, 1e-3): 0.3,
        ("cm", 0.9, 1e-3): 0.6, ("cm", 0.995, 1e-3): 0.4}))
    assert out["verdict"] == claims.INCONCLUSIVE

  def test_diverged_cm_counts_as_error_one(self):
    out = claims.nag_benefits_more_from_mu0(rnn_rows({
        ("nag", 0.9, 1e-3): 0.5, ("nag", 0.995, 1e-3): 0.4,
        ("cm", 0.9, 1e-3): 0.5, ("cm", 0.995, 1e-3): "diverged"}))
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["gain_cm"] == pytest.approx(-0.5)


class TestRnnBeatsBiases:

  def test_pass(self):
    out = claims.rnn_beats_biases(rnn_rows({("nag", 0.995, 1e-3): 0.1}))
    assert out["verdict"] == claims.PASS

  def test_fail_with_full_protocol(self):
    out = claims.rnn_beats_biases(rnn_rows({("nag", 0.995, 1e-3): 0.92}, steps=50_000))
    assert out["verdict"] == claims.FAIL

  @pytest.mark.parametrize("error", [0.92, 0.85])
  def test_inconclusive_when_short(self, error):
    # 0.85 is below the baseline (0.92) but does not halve it: not "learnt" yet.
    out = claims.rnn_beats_biases(rnn_rows({("nag", 0.995, 1e-3): error}, steps=2000))
    assert out["verdict"] == claims.INCONCLUSIVE

  def test_fail_when_below_baseline_but_not_halved_with_full_protocol(self):
    out = claims.rnn_beats_biases(rnn_rows({("nag", 0.995, 1e-3): 0.85}, steps=50_000))
    assert out["verdict"] == claims.FAIL


def quad_rows(rel, plain, dtype="float64", cm=12, nag=1):
  rows = [{"experiment": "quadratic", "check": c, "max_rel_diff": rel, "plain_cm_rel_diff": plain,
           "dtype": dtype} for c in ("constant", "scheduled")]
  rows += [{"experiment": "quadratic", "check": "oblong", "rule": r, "oscillations": n}
           for r, n in (("gd", 0), ("cm", cm), ("nag", nag))]
  return pd.DataFrame(rows)


class TestQuadratic:

  @pytest.mark.parametrize("rel, plain, dtype, verdict", [
      (1e-15, 0.3, "float64", claims.PASS),
      (1e-3, 0.3, "float64", claims.FAIL),
      (1e-15, 1e-6, "float64", claims.INCONCLUSIVE),  # cannot tell NAG from plain CM
      (1e-15, 0.3, "float32", claims.INCONCLUSIVE)])
  def test_theorem(self, rel, plain, dtype, verdict):
    assert claims.theorem_holds(quad_rows(rel, plain, dtype))["verdict"] == verdict

  @pytest.mark.parametrize("cm, nag, verdict", [(12, 1, claims.PASS), (1, 1, claims.FAIL),
                                                (3, 2, claims.INCONCLUSIVE)])
  def test_oscillations(self, cm, nag, verdict):
    assert claims.nag_damps_oscillations(quad_rows(1e-15, 0.3, cm=cm, nag=nag))[
        "verdict"] == verdict


def hf_rows(errors, baseline=BASE):
  """Rows of a hand-made HF study: errors = {variant: (error at E, error at T) or "diverged"}."""
  rows = []
  for variant, value in errors.items():
    at_e, at_t = (float("nan"),) * 2 if value == "diverged" else value
    rows.append({"experiment": "hf", "variant": variant, "method": variant,
                 "baseline": baseline, "error_at_equal_evals": at_e, "error_at_equal_time": at_t,
                 "final_error": at_e})
  return pd.DataFrame(rows)


def hf_quadratic_rows(cg, nag, q_star=-100.0, iterations=50):
  """cg = (q after 10, q after half); nag = {mu: (q after 10, q after half)}."""
  rows = [{"experiment": "hf_quadratic", "solver": "cg", "mu": None, "iterations": iterations,
           "q_10": cg[0], "q_half": cg[1], "q_final": cg[1], "q_reference": q_star}]
  rows += [{"experiment": "hf_quadratic", "solver": "nag", "mu": mu, "iterations": iterations,
            "q_10": q[0], "q_half": q[1], "q_final": q[1], "q_reference": q_star}
           for mu, q in nag.items()]
  return pd.DataFrame(rows)


class TestHessianFree:
  # BASE = 27.6: the plateau is below 0.9 x 27.6 = 24.84, "trained" below 0.5 x 27.6 = 13.8.

  @pytest.mark.parametrize("nag, hf, verdict", [
      ((20.0, 20.0), (21.0, 25.0), claims.PASS),    # NAG ahead at E, HF on its plateau at T
      ((10.9, 10.0), (10.0, 10.0), claims.PASS),    # 1.09 x HF at E: within 10%
      ((12.0, 10.0), (10.0, 10.0), claims.INCONCLUSIVE),  # 1.2 x: between the margins
      ((20.0, 10.0), (10.0, 10.0), claims.FAIL),    # 2 x a trained HF at E
      ("diverged", (10.0, 10.0), claims.FAIL),      # a diverged NAG counts as +inf
      ((26.0, 26.0), (40.0, 27.0), claims.INCONCLUSIVE),  # neither left the plateau
      ((22.0, 22.0), (14.5, 14.5), claims.INCONCLUSIVE)])  # 1.52 x, but 14.5 > 13.8
  def test_nag_comparable_to_hf(self, nag, hf, verdict):
    out = claims.nag_comparable_to_hf(hf_rows({"nag": nag, "hf": hf}))
    assert out["verdict"] == verdict
    assert [c["budget"] for c in out["numbers"]] == ["equal evaluations", "equal wall time"]

  def test_ratio_is_reported(self):
    out = claims.nag_comparable_to_hf(hf_rows({"nag": (20.0, 21.0), "hf": (25.0, 28.0)}))
    assert [c["ratio"] for c in out["numbers"]] == [pytest.approx(0.8), pytest.approx(0.75)]

  @pytest.mark.parametrize("like, hf, verdict", [
      ((15.0, 14.0), (16.0, 18.0), claims.PASS),
      ((30.0, 30.0), (12.0, 12.0), claims.FAIL),
      ((16.0, 16.0), (14.0, 14.0), claims.INCONCLUSIVE)])
  def test_momentum_like_hf_works(self, like, hf, verdict):
    out = claims.momentum_like_hf_works(hf_rows({"hf_momentum_like": like, "hf": hf}))
    assert out["verdict"] == verdict

  @pytest.mark.parametrize("warm, cold, verdict", [
      ((20.0, 20.0), (22.0, 22.0), claims.PASS),    # 20 <= 0.95 x 22 = 20.9
      ((21.5, 20.0), (22.0, 22.0), claims.INCONCLUSIVE),  # 21.5 > 20.9 at E
      ((14.0, 14.0), (12.0, 12.0), claims.FAIL),    # 14 >= 1.05 x 12 = 12.6, 12 < 13.8
      ((24.0, 24.0), (22.0, 22.0), claims.INCONCLUSIVE)])  # worse, but neither trained
  def test_hf_warm_start_helps(self, warm, cold, verdict):
    out = claims.hf_warm_start_helps(hf_rows({"hf": warm, "hf_no_warm_start": cold}))
    assert out["verdict"] == verdict

  @pytest.mark.parametrize("cg, nag, verdict", [
      ((-99.0, -100.0), {0.9: (-60.0, -99.0), 0.99: (-50.0, -98.0)}, claims.PASS),
      ((-60.0, -99.0), {0.9: (-70.0, -99.0), 0.99: (-50.0, -98.0)}, claims.FAIL),  # NAG at 10
      ((-100.0, -100.0), {0.9: (-99.95, -100.0)}, claims.INCONCLUSIVE)])  # level within 0.1%
  def test_cg_ahead_of_nag_on_hf_quadratic(self, cg, nag, verdict):
    out = claims.cg_ahead_of_nag_on_hf_quadratic(hf_quadratic_rows(cg, nag))
    assert out["verdict"] == verdict

  def test_the_best_nag_mu_is_chosen_per_checkpoint(self):
    out = claims.cg_ahead_of_nag_on_hf_quadratic(hf_quadratic_rows(
        (-99.0, -100.0), {0.9: (-60.0, -90.0), 0.99: (-50.0, -98.0)}))
    assert [c["nag_mu"] for c in out["numbers"]] == [0.9, 0.99]
    assert out["numbers"][1]["nag_fraction_of_q_star"] == pytest.approx(0.98)

  def test_not_run_is_inconclusive(self):
    table = ae_rows({("nag", 0.99, 0.01): 10.0})
    for check in (claims.nag_comparable_to_hf, claims.momentum_like_hf_works,
                  claims.hf_warm_start_helps, claims.cg_ahead_of_nag_on_hf_quadratic):
      out = check(table)
      assert out["verdict"] == claims.INCONCLUSIVE and out["reason"] == "HF experiment not run"


def test_every_claim_is_inconclusive_without_results():
  empty = pd.DataFrame(columns=["experiment"])
  out = claims.check_all(empty)
  assert [c["id"] for c in out] == [f.__name__ for f in claims.CHECKS]
  assert {c["verdict"] for c in out} == {claims.INCONCLUSIVE}


def test_a_broken_table_gives_inconclusive_not_a_crash():
  broken = pd.DataFrame({"experiment": ["table1"], "problem": ["curves"]})  # no error columns
  out = {c["id"]: c for c in claims.check_all(broken)}
  assert out["nag_no_worse_than_cm"]["verdict"] == claims.INCONCLUSIVE
  assert "checker failed" in out["nag_no_worse_than_cm"]["reason"]


def test_markdown_and_json_carry_every_verdict():
  table = pd.concat([ae_rows({("nag", 0.99, 0.01): 10.0, ("cm", 0.99, 0.01): 12.0}),
                     quad_rows(1e-15, 0.3)], ignore_index=True)
  out = claims.check_all(table)
  text = claims.to_markdown(out)
  for c in out:
    assert f"## {c['id']}: {c['verdict']}" in text
  assert [c["verdict"] for c in json.loads(claims.to_json(out))] == [c["verdict"] for c in out]
