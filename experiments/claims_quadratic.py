"""Claim rules on quadratics (paper section 2, 2.1 and 5): Theorem 2.1, the oblong figure and
the convergence-rate claims (`experiments.quadratic_rates`). See `experiments.verdicts` for the
verdicts; every rule here is deterministic (float64, no seeds), so no t test is involved.
"""
import math

import numpy as np
import pandas as pd

from experiments import verdicts as v

THEOREM_TOL = 1e-9      # float64 relative difference allowed for Theorem 2.1
SQRT_R_BAND = (0.35, 0.65)  # slope of log(GD / CM iterations) against log R: "about sqrt(R)"
SQRT_R_FAIL = (0.2, 0.8)
RATE_GAIN = 0.3         # NAG's gap must fall faster than GD's by >= T^0.3 (FAIL below 0.1)
CG_EVEN_SLOPE = 0.15    # CG's advantage over NAG grows no faster than R^0.15 on the worst case
CG_EVEN_FAIL = 0.3


def _slope(x, y) -> float:
  """Least-squares slope of log y against log x (NaN if any value is not finite and > 0)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 2 or not (np.all(np.isfinite(x) & (x > 0)) and np.all(np.isfinite(y) & (y > 0))):
    return math.nan
  return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _check_rows(results, experiment, check) -> pd.DataFrame:
  rows = v.rows_of(results, experiment)
  return rows[rows["check"] == check] if "check" in rows.columns else rows.iloc[:0]


def theorem_holds(results: pd.DataFrame) -> dict:
  """Theorem 2.1: NAG equals CM with momentum mu (1 - lambda eps) along each eigendirection."""
  rule = (f"From `mominit.quadratic.theorem_check` (float64, a rotated quadratic; constant and "
          f"scheduled mu and eps): PASS if max |NAG - CM(mu_eff)| / max |y| <= {THEOREM_TOL:g} "
          f"in every check AND CM with the plain mu differs from NAG by > 1e-3 relative (so the "
          f"check can tell the two apart); FAIL if the relative difference exceeds "
          f"{THEOREM_TOL:g}; INCONCLUSIVE if the check was not run, not in float64, not "
          f"discriminating, or a number is not finite.")
  rows = _check_rows(results, "quadratic", "constant")
  rows = pd.concat([rows, _check_rows(results, "quadratic", "scheduled")])
  comparisons = []
  for _, row in rows.iterrows():
    rel, plain = row.get("max_rel_diff"), row.get("plain_cm_rel_diff")
    entry = {"check": row["check"], "max_rel_diff": v.num(rel),
             "plain_cm_rel_diff": v.num(plain), "dtype": row.get("dtype")}
    if not v.finite(rel, plain):
      entry.update(outcome=v.INCONCLUSIVE, why="a non-finite difference")
    elif rel > THEOREM_TOL:
      entry.update(outcome=v.FAIL, why="NAG differs from CM(mu_eff)")
    elif row.get("dtype") != "float64" or not plain > 1e-3:
      entry.update(outcome=v.INCONCLUSIVE, why="not float64 or not discriminating")
    else:
      entry.update(outcome=v.PASS, why="identity holds to float64 rounding")
    comparisons.append(entry)
  return v.result("theorem_holds", "Theorem 2.1 holds numerically: on a quadratic NAG acts "
                  "along eigendirection i like CM with momentum mu (1 - lambda_i eps).",
                  "Section 2.1", rule, comparisons, "quadratic experiment not run")


def nag_damps_oscillations(results: pd.DataFrame) -> dict:
  """On the oblong quadratic CM zig-zags along the steep axis and NAG does not (appendix)."""
  rule = ("On the 2-D oblong quadratic with the same eps and mu for both: count the sign changes "
          "of the steep coordinate beyond 1% of its start. PASS if CM's count exceeds twice "
          "NAG's; FAIL if it does not exceed NAG's; INCONCLUSIVE in between, if a count is "
          "missing or not finite, or if not run.")
  rows = _check_rows(results, "quadratic", "oblong")
  comparisons = []
  counts = {r: n for r, n in zip(rows.get("rule", []), rows.get("oscillations", []))}
  if "cm" in counts and "nag" in counts:
    cm, nag = counts["cm"], counts["nag"]
    entry = {"oscillations": {k: v.num(x) for k, x in counts.items()}}
    if not v.finite(cm, nag):
      entry.update(outcome=v.INCONCLUSIVE, why="a count is not finite")
    elif cm > 2 * nag:
      entry.update(outcome=v.PASS, why="CM oscillates, NAG hardly")
    elif cm <= nag:
      entry.update(outcome=v.FAIL, why="CM does not oscillate more than NAG")
    else:
      entry.update(outcome=v.INCONCLUSIVE, why="CM oscillates somewhat more")
    comparisons.append(entry)
  return v.result("nag_damps_oscillations", "With the same eps and mu, CM oscillates along the "
                  "high-curvature direction of an oblong quadratic while NAG does not.",
                  "Section 2.1 / appendix figure", rule, comparisons,
                  "quadratic experiment not run")


def _by(rows, key, method, column):
  mine = rows[rows["method"] == method]
  return {float(k): float(x) for k, x in zip(mine[key], mine[column])}


def cm_sqrt_r_speedup(results: pd.DataFrame) -> dict:
  """CM with mu = (sqrt R - 1)/(sqrt R + 1) needs about sqrt(R) times fewer iterations than GD."""
  rule = (f"`quadratic_rates.sqrt_r_speedup`: quadratics with condition number R (eigenvalues "
          f"evenly spaced in [1/R, 1]), GD and CM with mu = (sqrt R - 1)/(sqrt R + 1), both "
          f"eps = 1/L, iterations until f stays below 1e-8 f(x_0). With >= 3 values of R: the "
          f"slope s of log(GD iterations / CM iterations) against log R. PASS if s is in "
          f"{list(SQRT_R_BAND)} (about sqrt R) and every ratio is within a factor 4 of sqrt R; "
          f"FAIL if s is outside {list(SQRT_R_FAIL)}; INCONCLUSIVE otherwise, with fewer R, or "
          f"when a method did not reach the target (NaN).")
  rows = _check_rows(results, "quadratic_rates", "sqrt_r")
  comparisons = []
  if not rows.empty:
    gd, cm = _by(rows, "R", "gd", "iterations"), _by(rows, "R", "cm", "iterations")
    rs = sorted(set(gd) & set(cm))
    ratios = {r: gd[r] / cm[r] if v.finite(gd[r], cm[r]) and cm[r] > 0 else math.nan
              for r in rs}
    s = _slope(rs, [ratios[r] for r in rs])
    entry = {"R": rs, "gd_iterations": [v.num(gd[r]) for r in rs],
             "cm_iterations": [v.num(cm[r]) for r in rs],
             "ratio_over_sqrt_r": [v.num(ratios[r] / math.sqrt(r)) for r in rs],
             "slope": v.num(s)}
    within = all(v.finite(ratios[r]) and 0.25 <= ratios[r] / math.sqrt(r) <= 4 for r in rs)
    if len(rs) < 3 or not math.isfinite(s):
      entry.update(outcome=v.INCONCLUSIVE, why="fewer than 3 conditions or a target not reached")
    elif SQRT_R_BAND[0] <= s <= SQRT_R_BAND[1] and within:
      entry.update(outcome=v.PASS, why=f"GD / CM iterations grow like R^{s:.2f}")
    elif not SQRT_R_FAIL[0] <= s <= SQRT_R_FAIL[1]:
      entry.update(outcome=v.FAIL, why=f"GD / CM iterations grow like R^{s:.2f}, not sqrt R")
    else:
      entry.update(outcome=v.INCONCLUSIVE, why=f"slope {s:.2f} between the margins")
    comparisons.append(entry)
  return v.result("cm_sqrt_r_speedup", "CM with mu = (sqrt R - 1)/(sqrt R + 1) needs about "
                  "sqrt(R) times fewer iterations than gradient descent to reach the same "
                  "accuracy (R: condition number).", "Section 2 (Polyak 1964)", rule,
                  comparisons, "quadratic rate experiment not run")


def nag_convex_rate(results: pd.DataFrame) -> dict:
  """NAG converges at O(1/T^2), GD at O(1/T), on smooth convex functions."""
  rule = (f"`quadratic_rates.convex_rates`: Nesterov's worst-case smooth convex quadratic "
          f"(tridiagonal, T below its dimension), GD (eps = 1/L) and NAG (eps = 1/L, mu_t = "
          f"1 - 3/(t + 5)) from 0; f(x_T) - f* at several T. PASS if every gap is within its "
          f"bound (GD: L d^2 / (2T), NAG: 2 L d^2 / (T + 1)^2, d = |x_0 - x*|) and GD's gap / "
          f"NAG's grows with T at least like T^{RATE_GAIN} (least-squares slope; on this "
          f"function the two rates are T^-1/2 and T^-1, so the bounds' T^1 gain is not reached "
          f"but the power gap is); FAIL if a bound is broken or the slope is below 0.1; "
          f"INCONCLUSIVE otherwise or with fewer than 3 horizons or non-finite gaps.")
  rows = _check_rows(results, "quadratic_rates", "convex")
  comparisons = []
  if not rows.empty:
    gd, nag = _by(rows, "T", "gd", "gap"), _by(rows, "T", "nag", "gap")
    gd_bound, nag_bound = _by(rows, "T", "gd", "bound"), _by(rows, "T", "nag", "bound")
    ts = sorted(set(gd) & set(nag))
    ratio = [gd[t] / nag[t] if v.finite(gd[t], nag[t]) and nag[t] > 0 else math.nan for t in ts]
    s = _slope(ts, ratio)
    broken = [t for t in ts if not (gd[t] <= gd_bound[t] * (1 + 1e-9)
                                    and nag[t] <= nag_bound[t] * (1 + 1e-9))]
    entry = {"T": ts, "gd_gap": [v.num(gd[t]) for t in ts], "nag_gap": [v.num(nag[t]) for t in ts],
             "gd_over_nag_slope": v.num(s), "bound_broken_at": broken}
    if len(ts) < 3 or not math.isfinite(s):
      entry.update(outcome=v.INCONCLUSIVE, why="fewer than 3 horizons or a non-finite gap")
    elif broken:
      entry.update(outcome=v.FAIL, why="a convergence bound is broken")
    elif s >= RATE_GAIN:
      entry.update(outcome=v.PASS, why=f"NAG's advantage grows like T^{s:.2f}")
    elif s < 0.1:
      entry.update(outcome=v.FAIL, why=f"NAG's advantage grows like T^{s:.2f} (no faster rate)")
    else:
      entry.update(outcome=v.INCONCLUSIVE, why=f"slope {s:.2f} between the margins")
    comparisons.append(entry)
  return v.result("nag_convex_rate", "On smooth convex functions NAG converges at O(1/T^2), "
                  "gradient descent at O(1/T).", "Section 2 (Nesterov 1983)", rule, comparisons,
                  "quadratic rate experiment not run")


def nag_tolerates_larger_mu(results: pd.DataFrame) -> dict:
  """NAG tolerates a larger mu than CM at a given eps (section 2.1)."""
  rule = ("`quadratic_rates.mu_tolerance`: on the oblong quadratic, for each eps (eps lambda_max "
          "<= 1), the largest mu of a grid (0.5 ... 0.999) with which the steep coordinate "
          "settles (stays within 1% of its start after 100 updates). PASS if NAG's is larger "
          "than CM's at every eps; FAIL if it is smaller at any; INCONCLUSIVE if equal "
          "everywhere or not run. The exact divergence boundaries are reported too: CM is "
          "stable while eps lambda < 2 (1 + mu), NAG while eps lambda < (2 + 2 mu)/(1 + 2 mu); "
          "for eps lambda above 4/3 NAG can diverge where CM does not, so the paper's "
          "'tolerance' is NAG's damping of the high-curvature directions (Theorem 2.1), which is "
          "what the rule measures, not a wider region of stability.")
  rows = _check_rows(results, "quadratic_rates", "mu_tolerance")
  comparisons = []
  if not rows.empty:
    cm = _by(rows, "learning_rate", "cm", "largest_mu")
    nag = _by(rows, "learning_rate", "nag", "largest_mu")
    for eps in sorted(set(cm) & set(nag)):
      entry = {"learning_rate": eps, "cm_largest_mu": v.num(cm[eps]),
               "nag_largest_mu": v.num(nag[eps])}
      if not v.finite(cm[eps], nag[eps]):
        entry.update(outcome=v.INCONCLUSIVE, why="a non-finite value")
      elif nag[eps] > cm[eps]:
        entry.update(outcome=v.PASS, why="NAG settles with larger mu")
      elif nag[eps] < cm[eps]:
        entry.update(outcome=v.FAIL, why="CM settles with larger mu")
      else:
        entry.update(outcome=v.INCONCLUSIVE, why="the same largest mu")
      comparisons.append(entry)
  return v.result("nag_tolerates_larger_mu", "At a given eps, NAG tolerates larger values of mu "
                  "than CM (its effective momentum mu (1 - lambda eps) damps the high-curvature "
                  "directions).", "Section 2.1", rule, comparisons,
                  "quadratic rate experiment not run")


def cg_no_faster_worst_case(results: pd.DataFrame) -> dict:
  """In the worst case (evenly spread eigenvalues) CG is asymptotically no faster than NAG."""
  rule = (f"`quadratic_rates.cg_vs_nag`: iterations of CG and of NAG (eps = 1/L, mu = (sqrt R - "
          f"1)/(sqrt R + 1)) from zero to 1e-6 of the initial gap, for several condition numbers "
          f"R. On the evenly spread spectrum (Chebyshev nodes of [1/R, 1]) CG's advantage "
          f"(NAG / CG iterations) must stay a constant factor: PASS if its slope against log R "
          f"is <= {CG_EVEN_SLOPE} and every ratio <= 4, while on the clustered spectrum (the "
          f"control) the slope is >= {CG_EVEN_FAIL} (the experiment can tell the two apart); "
          f"FAIL if the even spectrum's slope is >= {CG_EVEN_FAIL}; INCONCLUSIVE otherwise or "
          f"with fewer than 2 R or non-finite counts.")
  rows = _check_rows(results, "quadratic_rates", "cg_vs_nag")
  comparisons = []
  if not rows.empty:
    slopes, entry = {}, {}
    for spectrum in ("even", "clustered"):
      mine = rows[rows["spectrum"] == spectrum]
      cg, nag = _by(mine, "R", "cg", "iterations"), _by(mine, "R", "nag", "iterations")
      rs = sorted(set(cg) & set(nag))
      ratios = [nag[r] / cg[r] if v.finite(cg[r], nag[r]) and cg[r] > 0 else math.nan
                for r in rs]
      slopes[spectrum] = _slope(rs, ratios) if len(rs) >= 2 else math.nan
      entry[spectrum] = {"R": rs, "nag_over_cg": [v.num(x) for x in ratios],
                         "slope": v.num(slopes[spectrum])}
      if spectrum == "even":
        even_ratios = ratios
    s, control = slopes["even"], slopes["clustered"]
    if not math.isfinite(s):
      entry.update(outcome=v.INCONCLUSIVE, why="fewer than 2 conditions or a non-finite count")
    elif s >= CG_EVEN_FAIL:
      entry.update(outcome=v.FAIL, why=f"CG's advantage grows like R^{s:.2f} on the worst case")
    elif s <= CG_EVEN_SLOPE and max(even_ratios) <= 4 and control >= CG_EVEN_FAIL:
      entry.update(outcome=v.PASS, why="a constant factor on the worst case, growing on "
                   "clustered eigenvalues")
    else:
      entry.update(outcome=v.INCONCLUSIVE, why="between the margins or the control does not "
                   "discriminate")
    comparisons.append(entry)
  return v.result("cg_no_faster_worst_case", "In the worst case (very evenly distributed "
                  "eigenvalues) CG converges asymptotically no faster than NAG.",
                  "Section 5 (Momentum and HF)", rule, comparisons,
                  "quadratic rate experiment not run")


CHECKS = (theorem_holds, nag_damps_oscillations, cm_sqrt_r_speedup, nag_convex_rate,
          nag_tolerates_larger_mu, cg_no_faster_worst_case)
