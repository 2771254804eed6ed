"""Claim rules on the RNN long-range-dependency problems (paper section 4, Tables 4-5).

Results rows: experiment "table5" (the Table 5 populations; `mu_max` holds mu_0; `baseline` the
biases error: a net that only learns its output biases, i.e. uses no memory), "rnn_input_scale"
(input-to-hidden scales swept around Table 4's), "rnn_center" (inputs and targets not centred)
and "rnn_radius" (spectral radii of W_hh, the RNN problem's `spectral_radius` sweep axis).
A diverged member is its own outcome (`experiments.verdicts`, policy "own"): a cell is scored on
its surviving members and is dead when more than half diverged. Tolerance: TOL_FRACTION of the
problem's biases error (the errors' units differ: fraction of sequences for add and mul, wrong
recall steps per sequence for mem-5 / mem-20). Nothing below the biases error minus the
tolerance is "not trained enough" (INCONCLUSIVE on a reduced preset, FAIL at 50,000 updates).
"""
import math

import numpy as np
import pandas as pd

from experiments import paper_values
from experiments import verdicts as v

TOL_FRACTION = 0.001  # differences below 0.1% of the biases error do not count
SOLVED = 0.5          # "learns the dependencies": error at most half the biases error
NONTRIVIAL = 0.9      # "non-trivial": error at most 0.9 x the biases error
KIND = "rnn"
CELL = ("experiment", "problem", "rule", "mu_max")


def _cells(rows, cell=CELL):
  cells = v.best_cells(rows, "zero_one", cell, "own", tie_break="test_loss"
                       if "test_loss" in rows else None)
  if "paper_unit_factor" in rows:  # for the paper's value and ratio in the JSON
    factors = dict(zip(rows["problem"], rows["paper_unit_factor"]))
    for c in cells:
      c.labels["paper_unit_factor"] = factors.get(c.labels["problem"])
  return cells


def _problems(rows):
  return list(dict.fromkeys(rows["problem"])) if "problem" in rows else []


def _numbers(c) -> dict:
  return {"rule": c.labels["rule"], "mu_0": c.labels["mu_max"], **c.numbers()}


def _pair(a, b, rows, base, names) -> dict:
  """"a lower than b" with the RNN tolerance and not-trained gate."""
  tol = TOL_FRACTION * base if math.isfinite(base) else 0.0
  live = [c.mean for c in (a, b) if math.isfinite(c.mean)]
  untrained = None
  if not math.isfinite(base) or not live or min(live) > base - tol:
    untrained = "neither beat the biases baseline"
  out = v.lower(a, b, tol, KIND, rows, untrained)
  return {names[0]: _numbers(a), names[1]: _numbers(b), "baseline": v.num(base), **out}


def momentum_helps_rnn(results: pd.DataFrame) -> dict:
  """Momentum (NAG with the largest mu_0) gives lower RNN errors than plain SGD (Table 5)."""
  rule = (f"Per RNN problem: NAG at the largest mu_0 run against SGD (mu_0 = 0), each at its "
          f"best learning rate (lowest mean zero-one error of the surviving members; ties by "
          f"test loss). PASS when NAG is resolvably lower (t test, tolerance {TOL_FRACTION:g} x "
          f"the biases error); FAIL when resolvably higher or a resolved tie at full length; "
          f"INCONCLUSIVE otherwise, with one learning rate per cell, the worse cell's best "
          f"learning rate at the edge of its grid, or when neither beat the biases baseline "
          f"(FAIL at the paper's 50,000 updates). All problems must pass.")
  rows = v.rows_of(results, "table5")
  cells = _cells(rows)
  comparisons = []
  for problem in _problems(rows):
    nag, sgd = v.select(cells, problem=problem, rule="nag"), v.select(cells, problem=problem,
                                                                      rule="sgd")
    if not nag or not sgd:
      continue
    base = v.baseline(rows[rows["problem"] == problem])
    top = max(nag, key=lambda c: c.labels["mu_max"])
    comparisons.append({"problem": problem, **_pair(top, sgd[0], rows, base, ("nag", "sgd"))})
  return v.result("momentum_helps_rnn", "Momentum (NAG with a large mu_0) greatly improves the "
                  "RNN results over plain SGD.", "Section 4, Table 5", rule, comparisons,
                  "no RNN results with NAG and SGD")


def nag_benefits_more_from_mu0(results: pd.DataFrame) -> dict:
  """Larger mu_0 gives better results with NAG but not with CM (Table 5)."""
  rule = ("Two parts, each cell at its best learning rate. NAG: on every RNN problem, NAG at the "
          "largest mu_0 must be resolvably lower than NAG at each smaller mu_0 > 0 (t test, as "
          "for momentum_helps_rnn; FAIL when resolvably higher). CM: on at least one problem, CM "
          "at some smaller mu_0 > 0 must be resolvably lower than CM at the largest (PASS); FAIL "
          "if on every problem CM at the largest mu_0 is resolvably lower than at every smaller "
          "one (CM benefits as NAG does); INCONCLUSIVE otherwise. Needs two or more mu_0 > 0 per "
          "rule. In the paper's Table 5 NAG's best mu_0 is 0.995 on all four problems, CM's is "
          "not on two.")
  rows = v.rows_of(results, "table5")
  cells = _cells(rows)
  comparisons, cm_parts = [], []
  for problem in _problems(rows):
    base = v.baseline(rows[rows["problem"] == problem])
    ladders = {r: sorted([c for c in v.select(cells, problem=problem, rule=r)
                          if c.labels["mu_max"] > 0], key=lambda c: c.labels["mu_max"])
               for r in ("nag", "cm")}
    if any(len(x) < 2 for x in ladders.values()):
      continue
    top = ladders["nag"][-1]
    for c in ladders["nag"][:-1]:
      comparisons.append({"problem": problem, "part": "NAG: largest mu_0 best",
                          **_pair(top, c, rows, base, ("largest", "smaller"))})
    cm_top = ladders["cm"][-1]
    cm_parts.append((problem, [_pair(c, cm_top, rows, base, ("smaller", "largest"))
                               for c in ladders["cm"][:-1]]))
  if cm_parts:
    beaten = [p for p, pairs in cm_parts if any(e["outcome"] == v.PASS for e in pairs)]
    everywhere = all(pairs and all(e["outcome"] == v.FAIL and e["why"] == "resolvably higher"
                                   for e in pairs) for _, pairs in cm_parts)
    entry = {"part": "CM: largest mu_0 not best somewhere",
             "problems_where_a_smaller_mu0_wins": beaten,
             "cm": {p: pairs for p, pairs in cm_parts}}
    if beaten:
      entry.update(outcome=v.PASS, why="CM does better with a smaller mu_0 on some problem")
    elif everywhere:
      entry.update(outcome=v.FAIL, why="CM's best mu_0 is the largest on every problem")
    else:
      entry.update(outcome=v.INCONCLUSIVE, why="CM's ladder not resolved")
    comparisons.append(entry)
  return v.result("nag_benefits_more_from_mu0", "Larger values of mu_0 achieve better results "
                  "with NAG but not with CM.", "Section 4, Table 5", rule, comparisons,
                  "no RNN results with two or more mu_0 > 0 for both NAG and CM")


def _upper(c) -> float:
  """One-sided 95% upper bound of a cell's mean (t, n - 1 degrees of freedom)."""
  if c.n_seeds < 2 or not v.finite(c.mean, c.std):
    return math.inf
  return c.mean + v.t_critical(c.n_seeds - 1, 0.90) * c.std / math.sqrt(c.n_seeds)


def _below(results, rule_pick, fraction, claim_id, claim, rule, empty) -> dict:
  rows = v.rows_of(results, "table5")
  cells = _cells(rows)
  comparisons = []
  for problem in _problems(rows):
    base = v.baseline(rows[rows["problem"] == problem])
    c = rule_pick(cells, problem)
    if c is None or not math.isfinite(base):
      continue
    up = _upper(c)
    entry = {"problem": problem, "baseline": base, "threshold": fraction * base,
             "cell": _numbers(c), "upper_95": v.num(up)}
    if up <= fraction * base:
      entry.update(outcome=v.PASS, why=f"below {fraction} x the biases error")
    elif c.dead or c.mean > fraction * base:
      outcome, why = v.not_trained(rows, KIND, f"not below {fraction} x the biases error")
      entry.update(outcome=outcome, why=why)
    else:
      entry.update(outcome=v.INCONCLUSIVE, why="fewer than 2 seeds or within the seed spread")
    comparisons.append(entry)
  return v.result(claim_id, claim, "Section 4, Table 5", rule, comparisons, empty)


def rnn_beats_biases(results: pd.DataFrame) -> dict:
  """With NAG and a large mu_0 the RNNs learn the long-range dependencies."""
  rule = (f"Per RNN problem: NAG at the largest mu_0 (best learning rate). PASS if the 95% upper "
          f"bound of its mean (one-sided t, n - 1 degrees of freedom) is <= {SOLVED} x the "
          f"biases error (a memoryless net's error at least halved); FAIL if its mean is above "
          f"that (or the cell died) after the paper's 50,000 updates; INCONCLUSIVE otherwise.")
  return _below(results, lambda cells, p: max(v.select(cells, problem=p, rule="nag"),
                                              key=lambda c: c.labels["mu_max"], default=None),
                SOLVED, "rnn_beats_biases", "RNNs trained with NAG and a large mu_0 learn the "
                "long-range dependencies (error at most half that of the biases baseline).",
                rule, "no RNN results with NAG")


def sgd_rnn_nontrivial(results: pd.DataFrame) -> dict:
  """Plain SGD gets non-trivial results, provided the learning rate is low enough."""
  rule = (f"Per RNN problem: SGD (mu_0 = 0) at its best learning rate. PASS if the 95% upper "
          f"bound of its mean is <= {NONTRIVIAL} x the biases error; FAIL if the mean is above "
          f"that after the paper's 50,000 updates; INCONCLUSIVE otherwise. The winning "
          f"learning rate and the grid are reported (the 'low enough' part: the paper gives no "
          f"learning rates per cell, so it is not judged).")
  return _below(results, lambda cells, p: next(iter(v.select(cells, problem=p, rule="sgd")),
                                               None),
                NONTRIVIAL, "sgd_rnn_nontrivial", "Plain SGD obtains non-trivial RNN results, "
                "provided the learning rate is set low enough.", rule, "no RNN results with SGD")


def _study(results, experiment, column, judge, claim_id, claim, rule, source, empty):
  rows = v.rows_of(results, experiment)
  comparisons = []
  if not rows.empty and column in rows:
    cells = _cells(rows, CELL + (column,))
    for problem in _problems(rows):
      base = v.baseline(rows[rows["problem"] == problem])
      comparisons += judge(problem, v.select(cells, problem=problem), rows, base, results)
  return v.result(claim_id, claim, source, rule, comparisons, empty)


def input_scale_matters(results: pd.DataFrame) -> dict:
  """With distractors, a too large input scale gives a poor local minimum; a too small one is
  slow (section 4)."""
  rule = ("Experiment rnn_input_scale (NAG, the largest mu_0, input-to-hidden scales around Table "
          "4's for the problem): Table 4's scale against the largest scale >= 10 x it and the "
          "smallest <= 1/10 of it, each at its best learning rate. PASS if Table 4's scale is "
          "resolvably lower than both (t test as in momentum_helps_rnn); FAIL if either is "
          "resolvably lower than it; INCONCLUSIVE otherwise or when not run (the medium and paper "
          "presets run it).")

  def judge(problem, cells, rows, base, _):
    default = paper_values.TABLE4["in_to_hid_scale"].get(problem)
    by = {float(c.labels["input_scale"]): c for c in cells}
    if default is None or not any(np.isclose(s, default) for s in by):
      return [{"problem": problem, "outcome": v.INCONCLUSIVE,
               "why": "Table 4's input scale not run"}]
    ref = next(c for s, c in by.items() if np.isclose(s, default))
    out = []
    for label, pick in (("too large", [s for s in by if s >= 10 * default]),
                        ("too small", [s for s in by if s <= default / 10])):
      if not pick:
        out.append({"problem": problem, "part": label, "outcome": v.INCONCLUSIVE,
                    "why": f"no {label} scale run"})
        continue
      s = max(pick) if label == "too large" else min(pick)
      out.append({"problem": problem, "part": label, "scale": s, "table4_scale": default,
                  **_pair(ref, by[s], rows, base, ("table4", "other"))})
    return out

  return _study(results, "rnn_input_scale", "input_scale", judge, "input_scale_matters",
                "With many distractor inputs, a too large input-to-hidden scale leads to a poor "
                "local minimum and a too small one to much slower learning.", rule,
                "Section 4 (Table 4)", "input-scale study not run (medium and paper presets)")


def centering_for_multiplication(results: pd.DataFrame) -> dict:
  """Centring inputs and targets is needed for the multiplication problem (section 4)."""
  rule = ("Experiment rnn_center (the Table 5 cell of NAG at the largest mu_0 on mul, trained with "
          "inputs and targets not centred) against the same cell of Table 5 (centred), each at "
          "its best learning rate. PASS if centred is resolvably lower (t test as in "
          "momentum_helps_rnn); FAIL if not centred is resolvably lower or a resolved tie at "
          "full length; INCONCLUSIVE otherwise or when not run (the medium and paper presets "
          "run it).")

  def judge(problem, cells, rows, base, results):
    if not problem.startswith("mul"):
      return []
    table5 = v.rows_of(results, "table5")
    centred = v.select(_cells(table5), problem=problem, rule="nag")
    if not cells or not centred:
      return [{"problem": problem, "outcome": v.INCONCLUSIVE, "why": "no centred reference"}]
    raw = max(cells, key=lambda c: c.labels["mu_max"])
    ref = [c for c in centred if np.isclose(c.labels["mu_max"], raw.labels["mu_max"])]
    if not ref:
      return [{"problem": problem, "outcome": v.INCONCLUSIVE,
               "why": "no centred cell with the same mu_0"}]
    return [{"problem": problem, **_pair(ref[0], raw, pd.concat([rows, table5]), base,
                                         ("centred", "not_centred"))}]

  return _study(results, "rnn_center", "center", judge, "centering_for_multiplication",
                "Centring the inputs and targets matters for the multiplication problem.", rule,
                "Section 4", "centring study not run (medium and paper presets)")


def spectral_radius_matters(results: pd.DataFrame) -> dict:
  """Spectral radius below 1 forgets, well above 1 explodes, 1.1 works (section 4)."""
  rule = ("Experiment rnn_radius (NAG, the largest mu_0, W_hh rescaled to several spectral "
          "radii): radius 1.1 against the largest radius < 1 and the smallest >= 2, each at its "
          "best learning rate. PASS if 1.1 is resolvably lower than both; FAIL if either is "
          "resolvably lower than 1.1; INCONCLUSIVE otherwise (a preset's rnn.spectral_radii).")

  def judge(problem, cells, rows, base, _):
    by = {float(c.labels["spectral_radius"]): c for c in cells}
    ref = [c for s, c in by.items() if np.isclose(s, 1.1)]
    if not ref:
      return [{"problem": problem, "outcome": v.INCONCLUSIVE, "why": "radius 1.1 not run"}]
    out = []
    for label, pick in (("forgets (< 1)", [s for s in by if s < 1]),
                        ("explodes (>= 2)", [s for s in by if s >= 2])):
      if not pick:
        out.append({"problem": problem, "part": label, "outcome": v.INCONCLUSIVE,
                    "why": f"no radius that {label.split()[0]} run"})
        continue
      s = max(pick) if label.startswith("forgets") else min(pick)
      out.append({"problem": problem, "part": label, "radius": s,
                  **_pair(ref[0], by[s], rows, base, ("radius_1.1", "other"))})
    return out

  return _study(results, "rnn_radius", "spectral_radius", judge, "spectral_radius_matters",
                "A spectral radius of W_hh below 1 forgets, one much larger than 1 explodes, "
                "1.1 works on all tasks.", rule, "Section 4 (Table 4)",
                "spectral-radius study not run (medium and paper presets)")


CHECKS = (momentum_helps_rnn, nag_benefits_more_from_mu0, rnn_beats_biases, sgd_rnn_nontrivial,
          input_scale_matters, centering_for_multiplication, spectral_radius_matters)
