"""The paper's claims, checked on a results table: PASS, FAIL or INCONCLUSIVE, with the numbers.

Every checker is a pure function `check(results: pandas.DataFrame) -> dict` of the combined
results table that `experiments.reproduce` writes to `results.csv` (one row per trained member,
with an `experiment` column: "table1" (autoencoders), "table3" (sparse-init scale), "gaussian"
(poorly scaled dense Gaussian init), "table5" (RNNs), "quadratic" (theorem check and oblong
quadratic), "hf" and "hf_quadratic" (the Hessian-free study, `experiments.hf.results_frame`)).
So each can be tested on hand-made tables. The returned dict has:
  id, claim (the statement), source (where in the paper), verdict ("PASS" | "FAIL" |
  "INCONCLUSIVE"), rule (how the verdict was reached, in words), reason (one line: why this
  verdict), numbers (the values compared).

Shared conventions (written into every rule):
- Cells are chosen with `report.best_learning_rates`: per cell the learning rate with the lowest
  mean over seeds (diverged = +inf); a cell's error is that mean.
- Two cells A, B differ *resolvably* when both have >= 2 seeds and
  |mean_A - mean_B| > Z * sqrt(std_A^2 / n_A + std_B^2 / n_B) and > the claim's tolerance
  (a two-sample z-test at about 95%). One seed never resolves a comparison of two cells (the
  seed-to-seed spread is unknown), except paired before/after comparisons within one run.
- "Trained" autoencoder: error <= TRAINED * baseline, where baseline is the error of outputting
  the mean training image (what a net stuck on the initial plateau produces). Comparisons in
  which no member got below PLATEAU * baseline are INCONCLUSIVE (not enough steps).
- Aggregation over the comparisons of a claim: FAIL if any comparison goes resolvably against
  the claim, PASS if every comparison supports it, INCONCLUSIVE otherwise (and when there are
  no comparisons, e.g. the experiment was not run).
"""
import json
import math
from typing import Callable

import numpy as np
import pandas as pd

from experiments import report

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
Z = 2.0                 # z-score for a resolved difference of two means
REL_TOL = 0.05          # autoencoder errors: differences below 5% do not count
ABS_TOL_ZERO_ONE = 0.01  # RNN zero-one errors: differences below 0.01 do not count
TRAINED = 0.5           # "works": error <= 0.5 x the mean-image error
PLATEAU = 0.9           # no member below 0.9 x the mean-image error: nothing learned yet
FAIL_FACTOR = 2.0       # "no sensible result": error >= 2 x that of the working reference
SOLVED = 0.5            # an RNN "learns the dependencies": zero-one error <= 0.5 x biases
THEOREM_TOL = 1e-9      # float64 relative difference allowed for Theorem 2.1
HF_CLOSE = 0.10         # HF study: "comparable" = error within 10% of the reference method's
HF_GAP = 1.5            # HF study: error >= 1.5 x the reference's is a gap no seed explains
QUAD_TOL = 1e-3         # HF quadratic: differences below 0.1% of |q*| do not count
PAPER_STEPS = {"autoencoder": 750_000, "rnn": 50_000}

AE_CELL = ("problem", "rule", "mu_max")


def _rows(results: pd.DataFrame, experiment: str) -> pd.DataFrame:
  if "experiment" not in results.columns:
    return results.iloc[0:0]
  return results[results["experiment"] == experiment]


def _best(rows: pd.DataFrame, error: str, cell=AE_CELL, tie_break=None, also=()) -> pd.DataFrame:
  if rows.empty:
    return pd.DataFrame()
  return report.best_learning_rates(rows, error, cell=cell, tie_break=tie_break, also=also)


def _cell_numbers(row) -> dict:
  return {"mean": _num(row["mean"]), "std": _num(row["std"]), "n_seeds": int(row["n_seeds"]),
          "learning_rate": float(row["learning_rate"])}


def _num(x):
  """JSON-friendly float (inf and NaN as strings)."""
  x = float(x)
  return x if math.isfinite(x) else str(x)


def compare(a: dict, b: dict, tol: float) -> dict:
  """Compares two cells' means (a minus b) with the z-test rule of the module docstring.

  Args:
    a, b: dicts with `mean`, `std` and `n_seeds` (`mean` may be inf for a diverged cell).
    tol: the smallest difference that counts (absolute, in error units).

  Returns:
    {"diff": a - b, "se": standard error of the difference, "resolved": bool, "sign": -1 if a
    is resolvably lower, +1 if resolvably higher, 0 otherwise}. A finite mean against an
    infinite one (diverged) is resolved whenever both cells have >= 2 seeds.
  """
  ma, mb = float(a["mean"]), float(b["mean"])
  na, nb = int(a["n_seeds"]), int(b["n_seeds"])
  enough = na >= 2 and nb >= 2
  if math.isinf(ma) or math.isinf(mb):
    if math.isinf(ma) and math.isinf(mb):
      return {"diff": float("nan"), "se": float("nan"), "resolved": False, "sign": 0}
    sign = 1 if math.isinf(ma) else -1
    return {"diff": sign * float("inf"), "se": float("nan"), "resolved": enough,
            "sign": sign if enough else 0}
  diff = ma - mb
  if not enough:
    return {"diff": diff, "se": float("nan"), "resolved": False, "sign": 0}
  sa = 0.0 if not math.isfinite(a["std"]) else float(a["std"])
  sb = 0.0 if not math.isfinite(b["std"]) else float(b["std"])
  se = math.sqrt(sa**2 / na + sb**2 / nb)
  resolved = abs(diff) > Z * se and abs(diff) > tol
  return {"diff": diff, "se": se, "resolved": bool(resolved),
          "sign": int(np.sign(diff)) if resolved else 0}


def _aggregate(outcomes: list) -> str:
  """Strict aggregation: any FAIL -> FAIL, all PASS -> PASS, else INCONCLUSIVE."""
  if not outcomes:
    return INCONCLUSIVE
  if FAIL in outcomes:
    return FAIL
  if all(o == PASS for o in outcomes):
    return PASS
  return INCONCLUSIVE


def _result(claim_id, claim, source, rule, comparisons, reason_if_empty="experiment not run"):
  outcomes = [c["outcome"] for c in comparisons]
  verdict = _aggregate(outcomes)
  if not comparisons:
    reason = reason_if_empty
  else:
    counts = {v: outcomes.count(v) for v in (PASS, FAIL, INCONCLUSIVE) if outcomes.count(v)}
    reason = "; ".join(f"{k}: {v}" for k, v in counts.items()) + " comparison(s)"
    notes = sorted({c["why"] for c in comparisons if c["outcome"] == verdict and c.get("why")})
    if notes:
      reason += " — " + "; ".join(notes)
  return {"id": claim_id, "claim": claim, "source": source, "verdict": verdict, "rule": rule,
          "reason": reason, "numbers": comparisons}


def _baseline(rows: pd.DataFrame) -> float:
  if "baseline" not in rows.columns or rows.empty:
    return float("nan")
  values = rows["baseline"].to_numpy(np.float64)
  values = values[np.isfinite(values)]
  return float(values[0]) if values.size else float("nan")


def _short(rows: pd.DataFrame, kind: str) -> bool:
  """Whether these runs were shorter than the paper's protocol."""
  return "steps" in rows.columns and int(rows["steps"].max()) < PAPER_STEPS[kind]


# ---------------------------------------------------------------------------------------------
# Table 1 and 2: deep autoencoders.


def nag_no_worse_than_cm(results: pd.DataFrame) -> dict:
  """NAG is no worse than CM at high mu_max (Table 1)."""
  rule = (f"For every autoencoder problem and every mu_max >= 0.99 run with both rules, take "
          f"each rule's best learning rate (lowest mean final training error over seeds). PASS "
          f"if mean(NAG) <= mean(CM) * (1 + {REL_TOL}) (with >= 2 seeds each); FAIL if NAG is "
          f"higher by a resolved difference (> {Z} standard errors and > {REL_TOL:.0%}); "
          f"INCONCLUSIVE otherwise, with fewer than 2 seeds, or when neither reached "
          f"{PLATEAU} x the mean-image error (not trained enough to tell). All comparisons must "
          f"pass for PASS; any FAIL fails the claim.")
  rows = _rows(results, "table1")
  best = _best(rows, "train_error")
  comparisons = []
  for problem, cells in (best.groupby("problem") if not best.empty else []):
    base = _baseline(rows[rows["problem"] == problem])
    for mu in sorted(cells["mu_max"].unique()):
      if mu < 0.99:
        continue
      nag = cells[(cells["rule"] == "nag") & (cells["mu_max"] == mu)]
      cm = cells[(cells["rule"] == "cm") & (cells["mu_max"] == mu)]
      if nag.empty or cm.empty:
        continue
      nag, cm = nag.iloc[0], cm.iloc[0]
      c = compare(nag, cm, REL_TOL * max(_finite(cm["mean"]), _finite(nag["mean"])))
      entry = {"problem": problem, "mu_max": float(mu), "nag": _cell_numbers(nag),
               "cm": _cell_numbers(cm), "diff": _num(c["diff"]), "se": _num(c["se"]),
               "baseline": _num(base)}
      if min(nag["mean"], cm["mean"]) > PLATEAU * base:
        entry.update(outcome=INCONCLUSIVE, why="not trained enough (both near the plateau)")
      elif min(nag["n_seeds"], cm["n_seeds"]) < 2:
        entry.update(outcome=INCONCLUSIVE, why="fewer than 2 seeds")
      elif nag["mean"] <= cm["mean"] * (1 + REL_TOL):
        entry.update(outcome=PASS, why="NAG <= CM (1 + tol)")
      elif c["sign"] > 0:
        entry.update(outcome=FAIL, why="NAG resolvably worse than CM")
      else:
        entry.update(outcome=INCONCLUSIVE, why="NAG worse but within the seed spread")
      comparisons.append(entry)
  return _result("nag_no_worse_than_cm", "NAG is no worse than CM at high mu_max (>= 0.99).",
                 "Table 1", rule, comparisons, "no autoencoder results with both rules at "
                 "mu_max >= 0.99")


def _finite(x):
  x = float(x)
  return x if math.isfinite(x) else 0.0


def larger_mu_max_helps(results: pd.DataFrame) -> dict:
  """Larger mu_max gives lower final errors (Table 1)."""
  rule = (f"For every autoencoder problem and each rule (NAG, CM): compare the best cell with "
          f"mu_max >= 0.99 ('high') against the best of SGD and mu_max = 0.9 ('low'), each cell "
          f"at its best learning rate. A comparison PASSES when high is resolvably lower "
          f"(> {Z} standard errors and > {REL_TOL:.0%}, >= 2 seeds each), FAILS when resolvably "
          f"higher, and is INCONCLUSIVE otherwise or when neither reached {PLATEAU} x the "
          f"mean-image error. All must pass for PASS.")
  rows = _rows(results, "table1")
  best = _best(rows, "train_error")
  comparisons = []
  for problem, cells in (best.groupby("problem") if not best.empty else []):
    base = _baseline(rows[rows["problem"] == problem])
    for rule_name in ("nag", "cm"):
      mine = cells[cells["rule"] == rule_name]
      high = mine[mine["mu_max"] >= 0.99]
      low = pd.concat([cells[cells["rule"] == "sgd"], mine[mine["mu_max"] <= 0.9]])
      if high.empty or low.empty:
        continue
      hi, lo = high.loc[high["mean"].idxmin()], low.loc[low["mean"].idxmin()]
      c = compare(hi, lo, REL_TOL * max(_finite(hi["mean"]), _finite(lo["mean"])))
      entry = {"problem": problem, "rule": rule_name,
               "high": {"mu_max": float(hi["mu_max"]), **_cell_numbers(hi)},
               "low": {"rule": lo["rule"], "mu_max": float(lo["mu_max"]), **_cell_numbers(lo)},
               "diff": _num(c["diff"]), "se": _num(c["se"]), "baseline": _num(base)}
      if min(hi["mean"], lo["mean"]) > PLATEAU * base:
        entry.update(outcome=INCONCLUSIVE, why="not trained enough (both near the plateau)")
      elif c["sign"] < 0:
        entry.update(outcome=PASS, why="high mu_max resolvably lower")
      elif c["sign"] > 0:
        entry.update(outcome=FAIL, why="high mu_max resolvably higher")
      else:
        entry.update(outcome=INCONCLUSIVE,
                     why="fewer than 2 seeds" if min(hi["n_seeds"], lo["n_seeds"]) < 2
                     else "difference within the seed spread")
      comparisons.append(entry)
  return _result("larger_mu_max_helps", "Larger mu_max gives lower final training errors.",
                 "Table 1", rule, comparisons, "no autoencoder results with high and low mu_max")


def final_phase_lowers_error(results: pd.DataFrame, final_mu: float = 0.9) -> dict:
  """The last low-momentum phase (mu = 0.9, same learning rate) lowers the error (Table 2)."""
  rule = (f"For every autoencoder problem and every NAG cell with mu_max > {final_mu} (where the "
          f"final phase changes mu), at the cell's best learning rate, compare in each seed the "
          f"training error when the final phase starts (error_before_final) with the final one. "
          f"PASS if it went down in every seed (by > 0.1%), FAIL if it went up in every seed, "
          f"INCONCLUSIVE otherwise (mixed, diverged, or no final phase). This is a paired "
          f"comparison within each run, so one seed can decide. Like the paper's Table 2 it "
          f"compares before/after, not against continuing at mu_max. All cells must pass.")
  rows = _rows(results, "table1")
  comparisons = []
  if not rows.empty and "error_before_final" in rows.columns:
    best = _best(rows, "train_error")
    nag = best[(best["rule"] == "nag") & (best["mu_max"] > final_mu)]
    for _, cell in nag.iterrows():
      members = rows[(rows["problem"] == cell["problem"]) & (rows["rule"] == "nag")
                     & (rows["mu_max"] == cell["mu_max"])
                     & (rows["learning_rate"] == cell["learning_rate"])]
      before = members["error_before_final"].to_numpy(np.float64)
      after = members["train_error"].to_numpy(np.float64)
      diverged = report.diverged_flags(members)
      entry = {"problem": cell["problem"], "mu_max": float(cell["mu_max"]),
               "learning_rate": float(cell["learning_rate"]),
               "before": [_num(x) for x in before], "after": [_num(x) for x in after]}
      ok = np.isfinite(before) & np.isfinite(after) & ~diverged
      if not ok.all() or not len(members):
        entry.update(outcome=INCONCLUSIVE, why="no final phase recorded or a seed diverged")
      elif np.all(after < before * (1 - 1e-3)):
        entry.update(outcome=PASS, why="lower after the final phase in every seed")
      elif np.all(after > before):
        entry.update(outcome=FAIL, why="higher after the final phase in every seed")
      else:
        entry.update(outcome=INCONCLUSIVE, why="mixed or negligible change")
      comparisons.append(entry)
  return _result("final_phase_lowers_error",
                 "The final low-momentum phase (mu = 0.9 for the last updates) lowers the "
                 "training error.", "Table 2", rule, comparisons,
                 "no NAG autoencoder runs with mu_max > 0.9 and a final phase")


# ---------------------------------------------------------------------------------------------
# Table 3 and the poorly scaled Gaussian.


def si_scale(results: pd.DataFrame) -> dict:
  """Sparse-init scale 1/4 and 1/2 fail, 1 and 2 work (Table 3)."""
  rule = (f"On the SI-scale runs (best learning rate per scale, mean over seeds): scales 1 and 2 "
          f"'work' if their error <= {TRAINED} x the mean-image error; scales 1/4 and 1/2 "
          f"'fail' if their error >= {FAIL_FACTOR} x the worse of scales 1 and 2 (or they "
          f"diverged). PASS if all four behave so. FAIL if scale 1/4 or 1/2 is no worse than the "
          f"worse of 1 and 2 while those left the plateau (< {PLATEAU} x the mean-image "
          f"error), or (at the paper's full {PAPER_STEPS['autoencoder']:,} updates) scale 1 or "
          f"2 does not work. INCONCLUSIVE otherwise (e.g. too few updates for scales 1 and 2 to "
          f"work, or a small scale in between). Scale 4 is reported, not judged.")
  rows = _rows(results, "table3")
  comparisons = []
  if not rows.empty:
    best = _best(rows, "train_error", cell=("problem", "rule", "mu_max", "init_scale"))
    for (problem, rule_name, mu), cells in best.groupby(["problem", "rule", "mu_max"]):
      base = _baseline(rows[rows["problem"] == problem])
      by_scale = {float(s): cells[cells["init_scale"] == s].iloc[0]
                  for s in cells["init_scale"].unique()}
      entry = {"problem": problem, "rule": rule_name, "mu_max": float(mu),
               "baseline": _num(base),
               "scales": {f"{s:g}": _cell_numbers(r) for s, r in sorted(by_scale.items())}}
      if not all(s in by_scale for s in (0.25, 0.5, 1.0, 2.0)):
        entry.update(outcome=INCONCLUSIVE, why="scales 1/4, 1/2, 1 and 2 not all run")
        comparisons.append(entry)
        continue
      good = max(by_scale[1.0]["mean"], by_scale[2.0]["mean"])
      small = [by_scale[0.25]["mean"], by_scale[0.5]["mean"]]
      works = good <= TRAINED * base
      fails = all(s >= FAIL_FACTOR * good for s in small)
      short = _short(rows, "autoencoder")
      if good > PLATEAU * base:
        entry.update(outcome=INCONCLUSIVE if short else FAIL,
                     why="scales 1 and 2 still near the plateau" + (
                         " (too few updates)" if short else " after the full protocol"))
      elif any(s <= good for s in small):
        entry.update(outcome=FAIL, why="a small scale did as well as scales 1 and 2")
      elif works and fails:
        entry.update(outcome=PASS, why="1/4, 1/2 fail; 1, 2 work")
      elif not works and not short:
        entry.update(outcome=FAIL, why="scale 1 or 2 did not work with the full protocol")
      else:
        entry.update(outcome=INCONCLUSIVE,
                     why="scales 1, 2 not yet below the 'works' level (too few updates)"
                     if not works else "a small scale is between 'works' and 'fails'")
      comparisons.append(entry)
  return _result("si_scale", "Sparse init scaled by 1/4 or 1/2 gives no sensible result, while "
                 "scales 1 and 2 work.", "Table 3", rule, comparisons)


def gaussian_init_fails(results: pd.DataFrame) -> dict:
  """A poorly scaled dense Gaussian N(0, 0.01^2) cannot be trained, even with momentum."""
  rule = (f"Compare the best Gaussian-init cell (any rule and mu_max, best learning rate, mean "
          f"over seeds) with the best sparse-init (SI, scale 1) cell of the same problem and "
          f"number of updates. PASS if SI works (<= {TRAINED} x the mean-image error) while the "
          f"Gaussian does not (> {TRAINED} x it) and is >= {FAIL_FACTOR} x worse than SI. FAIL "
          f"if the Gaussian works and is within {FAIL_FACTOR} x of SI. INCONCLUSIVE otherwise "
          f"(SI itself not working yet: too few updates; or no SI reference).")
  rows = _rows(results, "gaussian")
  comparisons = []
  if not rows.empty:
    best = _best(rows, "train_error")
    si_rows = pd.concat([_rows(results, "table3"), _rows(results, "table1")])
    if not si_rows.empty and "init_scale" in si_rows.columns:
      si_rows = si_rows[np.isclose(si_rows["init_scale"].astype(float), 1.0)]
    for problem, cells in best.groupby("problem"):
      base = _baseline(rows[rows["problem"] == problem])
      g = cells.loc[cells["mean"].idxmin()]
      steps = int(rows[rows["problem"] == problem]["steps"].max())
      ref = si_rows[(si_rows["problem"] == problem)] if not si_rows.empty else si_rows
      if not ref.empty:
        ref = ref[ref["steps"] == steps]
      entry = {"problem": problem, "baseline": _num(base),
               "gaussian": {"rule": g["rule"], "mu_max": float(g["mu_max"]),
                            **_cell_numbers(g)}}
      if ref.empty:
        entry.update(outcome=INCONCLUSIVE, why="no sparse-init run with the same updates")
        comparisons.append(entry)
        continue
      ref_best = _best(ref, "train_error", cell=("experiment", "problem", "rule", "mu_max"))
      si = ref_best.loc[ref_best["mean"].idxmin()]
      entry["sparse"] = {"experiment": si["experiment"], "rule": si["rule"],
                         "mu_max": float(si["mu_max"]), **_cell_numbers(si)}
      si_works = si["mean"] <= TRAINED * base
      g_works = g["mean"] <= TRAINED * base
      if si_works and not g_works and g["mean"] >= FAIL_FACTOR * si["mean"]:
        entry.update(outcome=PASS, why="SI works, the Gaussian does not")
      elif g_works and g["mean"] < FAIL_FACTOR * si["mean"]:
        entry.update(outcome=FAIL, why="the Gaussian init trains about as well as SI")
      else:
        entry.update(outcome=INCONCLUSIVE, why="SI not working yet (too few updates)"
                     if not si_works else "the Gaussian is between 'works' and 'fails'")
      comparisons.append(entry)
  return _result("gaussian_init_fails", "A poorly scaled dense Gaussian initialization "
                 "(N(0, 0.01^2)) cannot be trained, even with momentum.", "Section 3", rule,
                 comparisons)


# ---------------------------------------------------------------------------------------------
# Table 5: RNNs.


def _rnn_best(rows):
  best = _best(rows, "zero_one", tie_break="test_loss")
  if not best.empty:
    # A cell whose every learning rate diverged: the worst zero-one error, 1, with no spread.
    dead = ~np.isfinite(best["mean"].to_numpy(np.float64))
    best.loc[dead, "mean"] = 1.0
    best.loc[dead, "std"] = 0.0
  return best


def momentum_helps_rnn(results: pd.DataFrame) -> dict:
  """Momentum (NAG with the largest mu_0) beats plain SGD on the RNN problems (Table 5)."""
  rule = (f"For every RNN problem, compare NAG at the largest mu_0 run with SGD (mu_0 = 0), "
          f"each at its best learning rate (lowest mean zero-one error over seeds; ties by test "
          f"loss). A problem PASSES when NAG is resolvably lower (> {Z} standard errors and > "
          f"{ABS_TOL_ZERO_ONE}, >= 2 seeds each), FAILS when resolvably higher, and is "
          f"INCONCLUSIVE otherwise or when neither beat the biases baseline by "
          f"{ABS_TOL_ZERO_ONE} (not trained enough). All problems must pass.")
  rows = _rows(results, "table5")
  comparisons = []
  best = _rnn_best(rows)
  for problem, cells in (best.groupby("problem") if not best.empty else []):
    base = _baseline(rows[rows["problem"] == problem])
    nag, sgd = cells[cells["rule"] == "nag"], cells[cells["rule"] == "sgd"]
    if nag.empty or sgd.empty:
      continue
    nag = nag.loc[nag["mu_max"].idxmax()]
    sgd = sgd.iloc[0]
    c = compare(nag, sgd, ABS_TOL_ZERO_ONE)
    entry = {"problem": problem, "baseline": _num(base),
             "nag": {"mu_0": float(nag["mu_max"]), **_cell_numbers(nag)},
             "sgd": _cell_numbers(sgd), "diff": _num(c["diff"]), "se": _num(c["se"])}
    if min(nag["mean"], sgd["mean"]) > base - ABS_TOL_ZERO_ONE:
      entry.update(outcome=INCONCLUSIVE, why="neither beat the biases baseline (not trained)")
    elif c["sign"] < 0:
      entry.update(outcome=PASS, why="NAG resolvably lower")
    elif c["sign"] > 0:
      entry.update(outcome=FAIL, why="NAG resolvably higher")
    else:
      entry.update(outcome=INCONCLUSIVE,
                   why="fewer than 2 seeds" if min(nag["n_seeds"], sgd["n_seeds"]) < 2
                   else "difference within the seed spread")
    comparisons.append(entry)
  return _result("momentum_helps_rnn", "Momentum (NAG, large mu_0) gives lower RNN errors than "
                 "plain SGD.", "Table 5", rule, comparisons, "no RNN results with NAG and SGD")


def nag_benefits_more_from_mu0(results: pd.DataFrame) -> dict:
  """Larger mu_0 helps NAG more than CM (Table 5)."""
  rule = (f"For every RNN problem with at least two mu_0 > 0 for both rules: gain(rule) = "
          f"error(smallest mu_0) - error(largest mu_0), each cell at its best learning rate "
          f"(a cell whose every learning rate diverged counts as error 1). d = gain(NAG) - "
          f"gain(CM), with standard error sqrt(sum std^2 / n) over the four cells. A problem "
          f"PASSES when d > {Z} standard errors and > {ABS_TOL_ZERO_ONE} (>= 2 seeds each), "
          f"FAILS when d is resolvably negative, and is INCONCLUSIVE otherwise (including when "
          f"nothing beat the biases baseline). All problems must pass.")
  rows = _rows(results, "table5")
  comparisons = []
  best = _rnn_best(rows)
  for problem, cells in (best.groupby("problem") if not best.empty else []):
    base = _baseline(rows[rows["problem"] == problem])
    ends = {}
    for rule_name in ("nag", "cm"):
      mine = cells[(cells["rule"] == rule_name) & (cells["mu_max"] > 0)]
      if mine["mu_max"].nunique() < 2:
        break
      ends[rule_name] = (mine.loc[mine["mu_max"].idxmin()], mine.loc[mine["mu_max"].idxmax()])
    if len(ends) < 2:
      continue
    four = [c for pair in ends.values() for c in pair]
    gain = {r: float(lo["mean"] - hi["mean"]) for r, (lo, hi) in ends.items()}
    d = gain["nag"] - gain["cm"]
    n_min = min(int(c["n_seeds"]) for c in four)
    se = math.sqrt(sum((0.0 if not math.isfinite(c["std"]) else float(c["std"]))**2
                       / int(c["n_seeds"]) for c in four))
    entry = {"problem": problem, "baseline": _num(base), "gain_nag": gain["nag"],
             "gain_cm": gain["cm"], "d": d, "se": se,
             "cells": {f"{r}@{float(c['mu_max']):g}": _cell_numbers(c)
                       for r, pair in ends.items() for c in pair}}
    if min(float(c["mean"]) for c in four) > base - ABS_TOL_ZERO_ONE:
      entry.update(outcome=INCONCLUSIVE, why="nothing beat the biases baseline (not trained)")
    elif n_min < 2:
      entry.update(outcome=INCONCLUSIVE, why="fewer than 2 seeds")
    elif d > Z * se and d > ABS_TOL_ZERO_ONE:
      entry.update(outcome=PASS, why="NAG gains resolvably more")
    elif -d > Z * se and -d > ABS_TOL_ZERO_ONE:
      entry.update(outcome=FAIL, why="CM gains resolvably more")
    else:
      entry.update(outcome=INCONCLUSIVE, why="difference of gains within the seed spread")
    comparisons.append(entry)
  return _result("nag_benefits_more_from_mu0", "Larger mu_0 helps NAG more than CM on the RNN "
                 "problems.", "Table 5", rule, comparisons,
                 "no RNN results with two or more mu_0 > 0 for both NAG and CM")


def rnn_beats_biases(results: pd.DataFrame) -> dict:
  """With momentum the RNNs learn the long-range dependencies: NAG beats the biases baseline."""
  rule = (f"For every RNN problem: NAG at the largest mu_0 (best learning rate) against the "
          f"biases baseline (a net that only learns its output biases, i.e. uses no memory). "
          f"PASS if mean + {Z} standard errors of the mean <= {SOLVED} x baseline (the error "
          f"of a memoryless net at least halved), with >= 2 seeds; FAIL if the mean is above "
          f"{SOLVED} x baseline after the paper's full {PAPER_STEPS['rnn']:,} updates; "
          f"INCONCLUSIVE otherwise (fewer updates or seeds).")
  rows = _rows(results, "table5")
  comparisons = []
  best = _rnn_best(rows)
  for problem, cells in (best.groupby("problem") if not best.empty else []):
    base = _baseline(rows[rows["problem"] == problem])
    nag = cells[cells["rule"] == "nag"]
    if nag.empty or not math.isfinite(base):
      continue
    nag = nag.loc[nag["mu_max"].idxmax()]
    n = int(nag["n_seeds"])
    se = float(nag["std"]) / math.sqrt(n) if n > 1 and math.isfinite(nag["std"]) else float("nan")
    mean = float(nag["mean"])
    entry = {"problem": problem, "baseline": base, "threshold": SOLVED * base,
             "nag": {"mu_0": float(nag["mu_max"]), **_cell_numbers(nag)}, "se": _num(se)}
    if n >= 2 and mean + Z * se <= SOLVED * base:
      entry.update(outcome=PASS, why=f"at most {SOLVED} x the biases baseline")
    elif mean > SOLVED * base and not _short(rows, "rnn"):
      entry.update(outcome=FAIL, why="not below half the baseline with the full protocol")
    else:
      entry.update(outcome=INCONCLUSIVE, why="fewer than 2 seeds" if n < 2
                   else "not below half the baseline yet (too few updates)")
    comparisons.append(entry)
  return _result("rnn_beats_biases", "RNNs trained with NAG and a large mu_0 learn the "
                 "long-range dependencies (error at most half that of the biases baseline).",
                 "Table 5", rule, comparisons, "no RNN results with NAG")


# ---------------------------------------------------------------------------------------------
# Section 2.1: quadratics.


def theorem_holds(results: pd.DataFrame) -> dict:
  """Theorem 2.1: NAG equals CM with momentum mu (1 - lambda eps) along each eigendirection."""
  rule = (f"From `mominit.quadratic.theorem_check` (float64, a rotated quadratic; constant and "
          f"scheduled mu and eps): PASS if max |NAG - CM(mu_eff)| / max |y| <= {THEOREM_TOL:g} "
          f"in every check AND CM with the plain mu differs from NAG by > 1e-3 relative (so the "
          f"check can tell the two apart); FAIL if the relative difference exceeds "
          f"{THEOREM_TOL:g}; INCONCLUSIVE if the check was not run, not in float64, or not "
          f"discriminating.")
  rows = _rows(results, "quadratic")
  rows = rows[rows["check"].isin(["constant", "scheduled"])] if "check" in rows else rows.iloc[:0]
  comparisons = []
  for _, row in rows.iterrows():
    entry = {"check": row["check"], "max_rel_diff": _num(row["max_rel_diff"]),
             "plain_cm_rel_diff": _num(row["plain_cm_rel_diff"]), "dtype": row["dtype"]}
    if row["max_rel_diff"] > THEOREM_TOL:
      entry.update(outcome=FAIL, why="NAG differs from CM(mu_eff)")
    elif row["dtype"] != "float64" or not row["plain_cm_rel_diff"] > 1e-3:
      entry.update(outcome=INCONCLUSIVE, why="not float64 or not discriminating")
    else:
      entry.update(outcome=PASS, why="identity holds to float64 rounding")
    comparisons.append(entry)
  return _result("theorem_holds", "Theorem 2.1 holds numerically: on a quadratic NAG acts along "
                 "eigendirection i like CM with momentum mu (1 - lambda_i eps).", "Section 2.1",
                 rule, comparisons, "quadratic experiment not run")


def nag_damps_oscillations(results: pd.DataFrame) -> dict:
  """On the oblong quadratic CM zig-zags along the steep axis and NAG does not (appendix)."""
  rule = ("On the 2-D oblong quadratic with the same eps and mu for both: count the sign changes "
          "of the steep coordinate beyond 1% of its start. PASS if CM's count exceeds twice "
          "NAG's; FAIL if it does not exceed NAG's; INCONCLUSIVE in between or if not run.")
  rows = _rows(results, "quadratic")
  rows = rows[rows["check"] == "oblong"] if "check" in rows else rows.iloc[:0]
  comparisons = []
  counts = {r: int(v) for r, v in zip(rows.get("rule", []), rows.get("oscillations", []))}
  if "cm" in counts and "nag" in counts:
    entry = {"oscillations": counts}
    if counts["cm"] > 2 * counts["nag"]:
      entry.update(outcome=PASS, why="CM oscillates, NAG hardly")
    elif counts["cm"] <= counts["nag"]:
      entry.update(outcome=FAIL, why="CM does not oscillate more than NAG")
    else:
      entry.update(outcome=INCONCLUSIVE, why="CM oscillates somewhat more")
    comparisons.append(entry)
  return _result("nag_damps_oscillations", "With the same eps and mu, CM oscillates along the "
                 "high-curvature direction of an oblong quadratic while NAG does not.",
                 "Section 2.1 / appendix figure", rule, comparisons, "quadratic experiment not run")


# ---------------------------------------------------------------------------------------------
# Section 6 (paper section 5): Hessian-free optimization and momentum.
#
# The HF study trains every method once from the same initial parameters on the same data, so its
# comparisons are paired (like the before/after comparisons above): a single run can resolve
# them, but only by a margin wider than the seed-to-seed spread of such runs (CURVES errors vary
# by a few percent between seeds; HF_CLOSE and HF_GAP are well outside that).


def _hf_errors(rows: pd.DataFrame, variant: str) -> dict:
  """{"evals": error at equal evaluations, "time": error at equal wall time} of one method (a
  NaN error, i.e. a diverged run, counts as +inf); empty if the method was not run."""
  row = rows[rows["variant"] == variant] if "variant" in rows.columns else rows.iloc[:0]
  if row.empty:
    return {}
  row = row.iloc[0]
  out = {}
  for axis, column in (("evals", "error_at_equal_evals"), ("time", "error_at_equal_time")):
    x = float(row[column])
    out[axis] = x if math.isfinite(x) else math.inf
  return out


def _hf_paired(results, candidate: str, reference: str, pass_below: float, fail_above: float,
               pass_why: str, fail_why: str, subject: str) -> tuple:
  """Compares a candidate method's error with a reference method's at equal evaluations and at
  equal wall time: PASS if candidate <= pass_below x reference; FAIL if candidate >= fail_above x
  reference and the better of the two got below TRAINED x baseline (a real comparison, not two
  runs still descending); INCONCLUSIVE otherwise, and when neither got below PLATEAU x
  baseline. Returns (rule text, comparisons)."""
  rule = (f"HF study on CURVES (one run per method, same initial parameters): {subject}, at "
          f"equal gradient + curvature evaluations and at equal wall time. Per budget: PASS if "
          f"the first's error <= {pass_below:g} x the second's; FAIL if >= {fail_above:g} x and "
          f"one of them got below {TRAINED} x the mean-image error; INCONCLUSIVE otherwise, and "
          f"when neither got below {PLATEAU} x the mean-image error.")
  rows = _rows(results, "hf")
  cand, ref = _hf_errors(rows, candidate), _hf_errors(rows, reference)
  base = _baseline(rows)
  comparisons = []
  if not cand or not ref or not math.isfinite(base):
    return rule, comparisons
  for axis in ("evals", "time"):
    a, b = cand[axis], ref[axis]
    entry = {"budget": "equal evaluations" if axis == "evals" else "equal wall time",
             candidate: _num(a), reference: _num(b), "baseline": base,
             "ratio": _num(a / b) if math.isfinite(a) and b > 0 else _num(math.inf)}
    if min(a, b) > PLATEAU * base:
      entry.update(outcome=INCONCLUSIVE, why="neither left the plateau (too few updates)")
    elif a <= pass_below * b:
      entry.update(outcome=PASS, why=pass_why)
    elif a >= fail_above * b and min(a, b) <= TRAINED * base:
      entry.update(outcome=FAIL, why=fail_why)
    else:
      entry.update(outcome=INCONCLUSIVE, why="between the PASS and FAIL margins")
    comparisons.append(entry)
  return rule, comparisons


def nag_comparable_to_hf(results: pd.DataFrame) -> dict:
  """NAG with the momentum schedule reaches errors comparable with HF's on CURVES."""
  rule, comparisons = _hf_paired(
      results, "nag", "hf", 1 + HF_CLOSE, HF_GAP, "NAG at most 10% behind HF, or ahead",
      "NAG far behind HF", "NAG (best learning rate of its grid) against HF")
  return _result("nag_comparable_to_hf", "NAG with the momentum schedule trains the CURVES "
                 "autoencoder to errors comparable with Hessian-free optimization's.",
                 "Abstract; Section 4 (Table 1, HF columns)", rule, comparisons,
                 "HF experiment not run")


def momentum_like_hf_works(results: pd.DataFrame) -> dict:
  """The more momentum-like HF (few CG steps per update) does as well as standard HF."""
  rule, comparisons = _hf_paired(
      results, "hf_momentum_like", "hf", 1 + HF_CLOSE, HF_GAP,
      "momentum-like HF as good as HF or better", "momentum-like HF far behind HF",
      "HF with a few CG steps per update (the warm-start decay acting as mu) against standard HF")
  return _result("momentum_like_hf_works", "Making HF more momentum-like (few CG steps per "
                 "update, the CG warm start carrying the momentum) works as well as standard HF.",
                 "Section 5 (Momentum and HF)", rule, comparisons, "HF experiment not run")


def hf_warm_start_helps(results: pd.DataFrame) -> dict:
  """HF's warm start (its momentum-like mechanism) helps: HF is better with it than without."""
  rule, comparisons = _hf_paired(
      results, "hf", "hf_no_warm_start", 1 - REL_TOL, 1 + REL_TOL,
      "the warm start lowers the error", "the warm start raises the error",
      "HF (CG started from 0.95 x the previous update) against HF with CG started from zero")
  return _result("hf_warm_start_helps", "HF derives part of its benefit from a momentum-like "
                 "mechanism: CG warm-started from the decayed previous update beats CG from "
                 "zero.", "Section 5 (Momentum and HF); Conclusion", rule, comparisons,
                 "HF experiment not run")


def cg_ahead_of_nag_on_hf_quadratic(results: pd.DataFrame) -> dict:
  """On a quadratic from the middle of an HF run, CG from zero is ahead of NAG from zero."""
  rule = (f"On the damped Gauss-Newton quadratic q of the middle update of the HF run (q(0) = 0, "
          f"q* = the lowest q any solver reached): plain CG from zero against NAG from zero with "
          f"the best mu of its grid (step 1/L) at each checkpoint (10 iterations and half the "
          f"iterations). PASS if CG's q is lower by more than {QUAD_TOL:g} |q*| at both; FAIL if "
          f"NAG's is lower by more than that at either; INCONCLUSIVE otherwise (e.g. both "
          f"converged). The paper adds that NAG is not far behind; the numbers show by how "
          f"much (fraction of q* reached).")
  rows = _rows(results, "hf_quadratic")
  comparisons = []
  cg = rows[rows["solver"] == "cg"] if "solver" in rows.columns else rows.iloc[:0]
  nag = rows[rows["solver"] == "nag"] if "solver" in rows.columns else rows.iloc[:0]
  if not cg.empty and not nag.empty:
    cg = cg.iloc[0]
    q_star = float(cg["q_reference"])
    for column, label in (("q_10", "10 iterations"), ("q_half", f"{int(cg['iterations']) // 2} "
                                                                "iterations")):
      best = nag.loc[nag[column].idxmin()]
      a, b = float(cg[column]), float(best[column])
      entry = {"checkpoint": label, "q_star": q_star, "cg": a, "nag": b,
               "nag_mu": float(best["mu"]), "cg_fraction_of_q_star": _num(a / q_star),
               "nag_fraction_of_q_star": _num(b / q_star)}
      if not (math.isfinite(a) and math.isfinite(b) and q_star < 0):
        entry.update(outcome=INCONCLUSIVE, why="no usable quadratic values")
      elif a < b - QUAD_TOL * abs(q_star):
        entry.update(outcome=PASS, why="CG ahead of the best NAG")
      elif b < a - QUAD_TOL * abs(q_star):
        entry.update(outcome=FAIL, why="NAG ahead of CG")
      else:
        entry.update(outcome=INCONCLUSIVE, why="CG and NAG level")
      comparisons.append(entry)
  return _result("cg_ahead_of_nag_on_hf_quadratic", "On a quadratic that HF builds in the middle "
                 "of a CURVES run, CG from zero converges faster than NAG from zero.",
                 "Section 5 (Momentum and HF); appendix figure", rule, comparisons,
                 "HF experiment not run")


CHECKS: tuple[Callable[[pd.DataFrame], dict], ...] = (
    nag_no_worse_than_cm, larger_mu_max_helps, final_phase_lowers_error, si_scale,
    gaussian_init_fails, momentum_helps_rnn, nag_benefits_more_from_mu0, rnn_beats_biases,
    theorem_holds, nag_damps_oscillations, nag_comparable_to_hf, momentum_like_hf_works,
    hf_warm_start_helps, cg_ahead_of_nag_on_hf_quadratic)


def check_all(results: pd.DataFrame) -> list:
  """Runs every checker of `CHECKS` on the results table; a checker that raises gives an
  INCONCLUSIVE entry naming the error (so one bad table column never hides the other claims)."""
  out = []
  for check in CHECKS:
    try:
      out.append(check(results))
    except Exception as e:  # pylint: disable=broad-except
      out.append({"id": check.__name__, "claim": (check.__doc__ or "").strip().splitlines()[0],
                  "source": "", "verdict": INCONCLUSIVE, "rule": "", "numbers": [],
                  "reason": f"checker failed: {type(e).__name__}: {e}"})
  return out


def to_json(claims: list) -> str:
  """The claims as JSON (inf/NaN written as strings)."""
  return json.dumps(claims, indent=2, default=_num)


def to_markdown(claims: list) -> str:
  """A summary table and, per claim, its rule and numbers."""
  lines = ["# Claims of the paper, checked on these results", "",
           report.markdown_table(["claim", "source", "verdict", "why"],
                                 [[c["claim"], c["source"], f"**{c['verdict']}**", c["reason"]]
                                  for c in claims], numeric=False), ""]
  for c in claims:
    lines += [f"## {c['id']}: {c['verdict']}", "", c["claim"], "", f"*Rule.* {c['rule']}", "",
              f"*Why.* {c['reason']}", ""]
    if c["numbers"]:
      lines += ["```json", json.dumps(c["numbers"], indent=1, default=_num), "```", ""]
  return "\n".join(lines)
