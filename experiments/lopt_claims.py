"""Lv, Jiang & Li (2017)'s claims, checked on the learned-optimizer study's results table.

Every checker is a pure function `check(results: DataFrame) -> dict` in the ledger format of
`experiments.claims` (id, claim, source, verdict, rule, reason, numbers), so the two papers'
claims read alike. `results` has one row per (problem, family, learning rate, seed, horizon)
with `final_loss` (the loss of the final iterate on the whole training pool; +inf diverged),
`experiment` "lopt" (the study) or "lopt_calibration" (tuned Adam on the authors' base MLP),
and `train_horizon` (the meta-training horizon).

Shared conventions:
- A family's cell at (problem, horizon) is its best learning rate: the lowest mean final loss
  over seeds (a diverged seed makes the mean +inf). Learned optimizers have one "rate" (theta).
- The strongest tuned baseline at (problem, horizon) is the hand-designed family (Adam,
  RMSProp, SGD, CM and NAG with constant mu and with the paper's schedule) with the lowest
  tuned mean.
- Every family ran the same seeds (same x_0, same minibatches), so comparisons are paired t
  tests (`experiments.claims.compare`); a difference counts when resolved at 95% and larger
  than REL_TOL of the reference's mean.
- A win over a baseline whose best rate sits at the edge of its grid is INCONCLUSIVE (it might
  do better beyond it).
- Aggregation: any FAIL -> FAIL, all PASS -> PASS, else INCONCLUSIVE (also when not run).
"""
import math

import numpy as np
import pandas as pd

from experiments import claims
from mominit.lopt import evaluate

PASS, FAIL, INCONCLUSIVE = claims.PASS, claims.FAIL, claims.INCONCLUSIVE
REL_TOL = 0.05
SOURCE = "Lv, Jiang & Li, ICML 2017"
# The authors' best Adam learning rates on the base MLP (LEARNED_OPTIMIZER.md), log2.
AUTHORS_ADAM_LOG2 = {100: -5.0, 2000: -6.0, 10000: -7.0}


def _num(x):
  x = float(x)
  return x if math.isfinite(x) else str(x)


def cell(rows: pd.DataFrame, family: str, problem: str, horizon: int):
  """A family's tuned cell: {mean, std, n_seeds, values {seed: loss}, learning_rate, grid,
  edge} (edge: the winning rate is the grid's smallest or largest), or None if not run."""
  mine = rows[(rows["family"] == family) & (rows["problem"] == problem)
              & (rows["horizon"] == horizon)]
  if mine.empty:
    return None
  options = []
  for lr, group in mine.groupby("learning_rate", dropna=False):
    values = group["final_loss"].to_numpy(np.float64)
    values = np.where(np.isfinite(values), values, np.inf)
    options.append((float(np.mean(values)), lr, group))
  mean, lr, group = min(options, key=lambda o: (o[0], o[1]))
  grid = sorted(o[1] for o in options)
  vals = {int(s): float(v) for s, v in zip(group["seed"], group["final_loss"])}
  finite = np.isfinite(list(vals.values()))
  std = float(np.std(list(vals.values()), ddof=1)) if len(vals) > 1 and finite.all() else math.nan
  return {"family": family, "mean": mean, "std": std, "n_seeds": len(vals), "values": vals,
          "learning_rate": float(lr), "grid": [float(g) for g in grid],
          "edge": len(grid) > 1 and lr in (grid[0], grid[-1])}


def best_baseline(rows, problem, horizon):
  """The strongest tuned hand-designed cell at (problem, horizon), or None."""
  cells = [c for c in (cell(rows, f, problem, horizon) for f in evaluate.HAND_DESIGNED) if c]
  return min(cells, key=lambda c: c["mean"]) if cells else None


def _brief(c):
  return {"family": c["family"], "mean": _num(c["mean"]), "std": _num(c["std"]),
          "n_seeds": c["n_seeds"], "learning_rate": _num(c["learning_rate"]),
          "edge": bool(c["edge"])}


def _versus(a, b, label: dict, lower_passes: bool = True) -> dict:
  """One comparison entry: a against b, PASS when a is resolvably lower (if lower_passes)."""
  c = claims.compare(a, b, REL_TOL * abs(b["mean"]) if math.isfinite(b["mean"]) else 0.0)
  entry = {**label, "a": _brief(a), "b": _brief(b), "diff": _num(c["diff"]),
           "ratio": _num(a["mean"] / b["mean"]) if b["mean"] else "nan",
           "test": c.get("test", "")}
  good, bad = (-1, 1) if lower_passes else (1, -1)
  if c["sign"] == good:
    if b["edge"] and b["family"] in evaluate.HAND_DESIGNED:
      entry.update(outcome=INCONCLUSIVE, why=f"{b['family']}'s best rate is at its grid's edge")
    else:
      entry.update(outcome=PASS, why=f"{a['family']} resolvably lower than {b['family']}")
  elif c["sign"] == bad:
    entry.update(outcome=FAIL, why=f"{a['family']} resolvably higher than {b['family']}")
  else:
    entry.update(outcome=INCONCLUSIVE, why="difference within the seed spread or tolerance")
  return entry


def _result(claim_id, claim, rule, comparisons, reason_if_empty):
  outcomes = [c["outcome"] for c in comparisons]
  if not outcomes:
    verdict, reason = INCONCLUSIVE, reason_if_empty
  else:
    verdict = FAIL if FAIL in outcomes else (PASS if all(o == PASS for o in outcomes)
                                             else INCONCLUSIVE)
    counts = {v: outcomes.count(v) for v in (PASS, FAIL, INCONCLUSIVE) if outcomes.count(v)}
    reason = "; ".join(f"{k}: {v}" for k, v in counts.items()) + " comparison(s)"
    notes = sorted({c["why"] for c in comparisons if c["outcome"] == verdict})
    reason += (" — " + "; ".join(notes)) if notes else ""
  return {"id": claim_id, "claim": claim, "source": SOURCE, "verdict": verdict, "rule": rule,
          "reason": reason, "numbers": comparisons}


def _study(results):
  if "experiment" not in results.columns:
    return results.iloc[0:0]
  return results[results["experiment"] == "lopt"]


def _base(rows):
  """(base problem, training horizon, horizons) of the study rows."""
  base = rows["base_problem"].iloc[0]
  return base, int(rows["train_horizon"].iloc[0]), sorted(int(h) for h in rows["horizon"].unique())


def beats_best_tuned(results: pd.DataFrame) -> dict:
  """RNNprop beats the best hand-tuned optimizer on the base task."""
  rule = ("On the base (meta-training) task at the meta-training horizon: RNNprop against the "
          "strongest tuned baseline (paired t test, 95%, > 5%). PASS: RNNprop resolvably lower; "
          "FAIL: resolvably higher; INCONCLUSIVE otherwise.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, h, _ = _base(rows)
    a, b = cell(rows, "rnnprop", base, h), best_baseline(rows, base, h)
    if a and b:
      comps.append(_versus(a, b, {"problem": base, "horizon": h}))
  return _result("rnnprop_beats_best_tuned", "RNNprop outperforms the best hand-tuned "
                 "optimizer (including tuned CM and NAG) on the task it was trained on.", rule,
                 comps, "no RNNprop and baseline results on the base task")


def beats_dmoptimizer(results: pd.DataFrame) -> dict:
  """RNNprop beats DMoptimizer on the base task."""
  rule = ("On the base task at every horizon run: RNNprop against DMoptimizer (Lv et al.'s "
          "variant, else DeepMind's), paired. PASS: RNNprop resolvably lower at every horizon.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, _, horizons = _base(rows)
    for h in horizons:
      a = cell(rows, "rnnprop", base, h)
      b = cell(rows, "dm_lv2017", base, h) or cell(rows, "dm_deepmind", base, h)
      if a and b:
        comps.append(_versus(a, b, {"problem": base, "horizon": h}))
  return _result("rnnprop_beats_dmoptimizer", "RNNprop outperforms DMoptimizer on the base "
                 "task.", rule, comps, "no RNNprop and DMoptimizer results")


def longer_horizons(results: pd.DataFrame) -> dict:
  """RNNprop keeps improving over horizons far longer than it was trained on."""
  rule = ("On the base task, at each horizon H longer than the meta-training horizon T: "
          "(a) RNNprop's loss at H resolvably below its loss at T (it keeps improving), and "
          "(b) RNNprop against the strongest tuned baseline at H. PASS: every comparison "
          "passes; FAIL: RNNprop's loss rose or it is resolvably worse than the baseline.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, t, horizons = _base(rows)
    short = cell(rows, "rnnprop", base, t)
    for h in (h for h in horizons if h > t):
      a, b = cell(rows, "rnnprop", base, h), best_baseline(rows, base, h)
      if a and short:
        comps.append(_versus(a, {**short, "family": f"rnnprop@{t}"},
                             {"problem": base, "horizon": h, "part": "keeps improving"}))
      if a and b:
        comps.append(_versus(a, b, {"problem": base, "horizon": h, "part": "vs best tuned"}))
  return _result("rnnprop_longer_horizons", "RNNprop keeps improving over horizons 20 and 100 "
                 "times longer than it was trained on, and stays ahead of tuned optimizers.",
                 rule, comps, "no horizon longer than the meta-training horizon was run")


def dm_degrades(results: pd.DataFrame) -> dict:
  """DMoptimizer degrades at long horizons where RNNprop does not."""
  rule = ("On the base task at each horizon H longer than the meta-training horizon T: "
          "(a) RNNprop against DMoptimizer at H, paired (PASS: RNNprop resolvably lower); "
          "(b) DMoptimizer degrades: its ratio to the strongest tuned baseline at H exceeds "
          "its ratio at T by more than 5% (PASS), falls by more than 5% (FAIL: it improved "
          "relative to the baselines), else INCONCLUSIVE. All parts must pass.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, t, horizons = _base(rows)
    dm = lambda h: cell(rows, "dm_lv2017", base, h) or cell(rows, "dm_deepmind", base, h)
    for h in (h for h in horizons if h > t):
      a, b = cell(rows, "rnnprop", base, h), dm(h)
      if a and b:
        comps.append(_versus(a, b, {"problem": base, "horizon": h, "part": "RNNprop vs DM"}))
      short, best_t, best_h = dm(t), best_baseline(rows, base, t), best_baseline(rows, base, h)
      if b and short and best_t and best_h:
        r_t, r_h = short["mean"] / best_t["mean"], b["mean"] / best_h["mean"]
        entry = {"problem": base, "horizon": h, "part": "DM degrades", "ratio_at_T": _num(r_t),
                 "ratio_at_H": _num(r_h), "baseline_at_T": best_t["family"],
                 "baseline_at_H": best_h["family"]}
        if r_h > r_t * (1 + REL_TOL):
          entry.update(outcome=PASS, why="DM's ratio to the best baseline grew")
        elif r_h < r_t / (1 + REL_TOL):
          entry.update(outcome=FAIL, why="DM's ratio to the best baseline shrank (it did not "
                                         "degrade)")
        else:
          entry.update(outcome=INCONCLUSIVE, why="DM's ratio to the best baseline unchanged")
        comps.append(entry)
  return _result("dmoptimizer_degrades_long", "Over long horizons DMoptimizer degrades while "
                 "RNNprop does not.", rule, comps, "no long-horizon RNNprop and DM results")


def generalises(results: pd.DataFrame) -> dict:
  """RNNprop generalises to other activations, depths, CNNs and LSTMs."""
  rule = ("On every test problem other than the base task, at every horizon run: RNNprop "
          "against the strongest tuned baseline, paired. PASS: RNNprop resolvably lower on all.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, _, horizons = _base(rows)
    for problem in sorted(p for p in rows["problem"].unique() if p != base):
      for h in horizons:
        a, b = cell(rows, "rnnprop", problem, h), best_baseline(rows, problem, h)
        if a and b:
          comps.append(_versus(a, b, {"problem": problem, "horizon": h}))
  return _result("rnnprop_generalises", "RNNprop trained on one MLP outperforms tuned "
                 "optimizers on other activations, depths, CNNs and LSTMs.", rule, comps,
                 "no test problem other than the base task was run")


def tricks_help(results: pd.DataFrame) -> dict:
  """The random-scaling and convex-combination tricks help."""
  rule = ("On the base task at every horizon: RNNprop meta-trained with both tricks against "
          "RNNprop meta-trained without them ('rnnprop_notricks'), paired. PASS: with tricks "
          "resolvably lower everywhere.")
  rows, comps = _study(results), []
  if not rows.empty:
    base, _, horizons = _base(rows)
    for h in horizons:
      a, b = cell(rows, "rnnprop", base, h), cell(rows, "rnnprop_notricks", base, h)
      if a and b:
        comps.append(_versus(a, b, {"problem": base, "horizon": h}))
  return _result("tricks_help", "Training with the random-scaling and convex-combination "
                 "tricks gives a better optimizer.", rule, comps,
                 "the ablation without tricks was not run (paper preset only)")


def adam_rates_match(results: pd.DataFrame) -> dict:
  """Tuned Adam rates on the base MLP land within one sqrt(2) step of the authors'."""
  rule = ("Calibration of the baselines: tuned Adam's best learning rate on the authors' "
          "784-20-10 sigmoid MLP at each horizon H in {100, 2000, 10000} run. PASS: "
          "|log2(ours) - log2(authors')| <= 0.5 (one grid step; the authors: 2^-5, 2^-6, 2^-7); "
          "FAIL: farther; INCONCLUSIVE: best rate at the grid's edge.")
  rows = results[results["experiment"] == "lopt_calibration"] if (
      "experiment" in results.columns) else results.iloc[0:0]
  comps = []
  for problem in rows["problem"].unique() if not rows.empty else []:
    for h in sorted(int(h) for h in rows["horizon"].unique()):
      c = cell(rows, "adam", problem, h)
      if c is None or h not in AUTHORS_ADAM_LOG2:
        continue
      ours = math.log2(c["learning_rate"])
      entry = {"problem": problem, "horizon": h, "ours_log2": ours,
               "authors_log2": AUTHORS_ADAM_LOG2[h], "adam": _brief(c)}
      if abs(ours - AUTHORS_ADAM_LOG2[h]) <= 0.5 + 1e-9:
        entry.update(outcome=PASS, why="within one sqrt(2) step")
      elif c["edge"]:
        entry.update(outcome=INCONCLUSIVE, why="best rate at the grid's edge")
      else:
        entry.update(outcome=FAIL, why="more than one sqrt(2) step from the authors' rate")
      comps.append(entry)
  return _result("adam_rates_match_authors", "Tuned Adam's best rates on the base MLP match "
                 "the authors' (2^-5 at 100 steps, 2^-6 at 2,000, 2^-7 at 10,000).", rule,
                 comps, "the Adam calibration was not run")


CHECKS = (beats_best_tuned, beats_dmoptimizer, longer_horizons, dm_degrades, generalises,
          tricks_help, adam_rates_match)


def check_all(results: pd.DataFrame) -> list:
  """Every checker of `CHECKS`; one that raises gives an ERROR entry naming the exception."""
  out = []
  for check in CHECKS:
    try:
      out.append(check(results))
    except Exception as e:  # pylint: disable=broad-except
      out.append({"id": check.__name__, "claim": (check.__doc__ or "").strip(), "source": SOURCE,
                  "verdict": "ERROR", "rule": "", "numbers": [],
                  "reason": f"checker failed: {type(e).__name__}: {e}"})
  return out
