"""Verdicts and the statistics behind them, shared by the claim rules (`experiments.claims`).

A rule compares *cells* (one configuration, e.g. NAG at mu_max 0.99 on CURVES, at its best
learning rate) and turns each comparison into an outcome; the claim's verdict aggregates them.

Cells (`best_cells`): per cell the learning rate with the lowest mean error over seeds wins.
Divergence is handled in one of two ways, named by `diverged`:
- "inf" (autoencoders, the paper's Table 1 rule): a diverged member counts as +inf, so one
  diverged seed disqualifies its learning rate;
- "own" (RNNs): a diverged member is its own outcome, not an error value: a learning rate is
  scored on its surviving members, and a cell where more than half the members diverged is
  *dead* (worse than any live cell). The entry reports how many diverged.

Comparisons (`compare`): a two-sided t test at 95%. When both cells ran the same >= 2 seeds the
test is paired by seed (the engine derives a member's initial parameters and data order from its
seed alone, so the seed effect is shared), with n - 1 degrees of freedom; otherwise Welch's test
with the Welch-Satterthwaite degrees of freedom. A difference is *resolved* when |diff| exceeds
t_{0.975, df} standard errors and the claim's tolerance. With 2 seeds the paired test has one
degree of freedom (t = 12.7): two seeds rarely decide anything, and that is the honest answer.

Learning-rate grid (`grid_issue`): a comparison between two cells counts only if both tried at
least two learning rates and the worse cell's best learning rate is not at an edge of its grid
(it might do better beyond it). A better cell at an edge only strengthens the result. An edge of
the paper's own full grid is the protocol's and counts.

Verdicts: PASS, FAIL, INCONCLUSIVE, and ERROR (the rule itself raised: a bug or a malformed
table, never a statement about the paper). Aggregation: any FAIL -> FAIL, all PASS -> PASS,
else INCONCLUSIVE. No non-finite number ever gives PASS.
"""
import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from experiments import paper_values
from experiments import report

PASS, FAIL, INCONCLUSIVE, ERROR = "PASS", "FAIL", "INCONCLUSIVE", "ERROR"
CONFIDENCE = 0.95
PAPER_STEPS = {"autoencoder": 750_000, "rnn": 50_000}
PAPER_GRIDS = {"autoencoder": (0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001),  # docs/paper.md sec. 4
               "rnn": (1e-3, 1e-4, 1e-5, 1e-6)}                            # docs/paper.md sec. 5


def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
  """The two-sided critical value of Student's t with `df` degrees of freedom (inf if df < 1)."""
  if not df >= 1:
    return math.inf
  return float(stats.t.ppf(1 - (1 - confidence) / 2, df))


def num(x):
  """JSON-friendly float (inf and NaN as strings)."""
  x = float(x)
  return x if math.isfinite(x) else str(x)


def finite(*xs) -> bool:
  """Whether every argument is a finite number."""
  try:
    return all(math.isfinite(float(x)) for x in xs)
  except (TypeError, ValueError):
    return False


@dataclasses.dataclass
class Cell:
  """One cell at its best learning rate.

  Attributes:
    labels: the cell's columns, e.g. {"problem": "curves", "rule": "nag", "mu_max": 0.99}.
    learning_rate: the winning learning rate (NaN if the cell has none).
    grid: every learning rate tried in the cell, ascending.
    values: {seed: error} of the winning learning rate's members that did not diverge.
    n_members: members at the winning learning rate.
    n_diverged: of those, how many diverged.
    mean: mean of `values` (+inf if a member diverged under the "inf" policy, or if the cell
      is dead under the "own" policy).
    std: standard deviation (ddof 1) of `values` (NaN with fewer than 2).
    extra: {column: {seed: value}} of more columns at the winning learning rate.
  """
  labels: dict
  learning_rate: float
  grid: tuple
  values: dict
  n_members: int
  n_diverged: int
  mean: float
  std: float
  extra: dict = dataclasses.field(default_factory=dict)

  @property
  def n_seeds(self) -> int:
    return len(self.values)

  @property
  def dead(self) -> bool:
    return math.isinf(self.mean)

  def __getitem__(self, key):  # so a Cell reads like the rows of report.best_learning_rates
    return getattr(self, key) if hasattr(self, key) else self.labels[key]

  def get(self, key, default=None):
    """A label or attribute (for `paper_values.best_row_comparison`), else `default`."""
    if key in self.labels:
      return self.labels[key]
    return getattr(self, key, default)

  def numbers(self) -> dict:
    """The cell for the claims' JSON; a cell of the paper's Tables 1, 3, 5 also gets the
    paper's value and ours / paper (`paper_values.best_row_comparison`)."""
    paper = {k: (num(x) if isinstance(x, float) else x)
             for k, x in paper_values.best_row_comparison(self).items()}
    return {"mean": num(self.mean), "std": num(self.std), "n_seeds": self.n_seeds,
            "n_diverged": self.n_diverged, "learning_rate": num(self.learning_rate),
            "grid": [float(x) for x in self.grid], **paper}


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
  return frame[column].to_numpy(np.float64) if column in frame else np.full(len(frame), np.nan)


def best_cells(rows: pd.DataFrame, error: str, cell: Sequence[str], diverged: str = "inf",
               tie_break: Optional[str] = None, also: Sequence[str] = ()) -> list:
  """Every cell of `rows` at its best learning rate (see the module docstring).

  Args:
    rows: one row per member with the `cell` columns, `learning_rate`, `seed`, `error` and
      optionally `diverged`.
    error: the column minimised.
    cell: the columns that define a cell.
    diverged: "inf" or "own" (module docstring).
    tie_break: a column whose mean breaks ties of the error (then the smaller learning rate).
    also: more columns to keep per seed in `Cell.extra`.

  Returns:
    A list of `Cell`, sorted by the cell columns.

  Raises:
    ValueError: a needed column is missing, or `diverged` is not "inf" or "own".
  """
  if diverged not in ("inf", "own"):
    raise ValueError(f"diverged must be 'inf' or 'own', got {diverged!r}")
  out = []
  if rows.empty:
    return out
  needed = list(cell) + ["learning_rate", "seed", error]
  missing = [c for c in needed if c not in rows.columns]
  if missing:
    raise ValueError(f"results table lacks column(s) {missing}")
  for key, group in rows.groupby(list(cell), sort=True, dropna=False):
    key = key if isinstance(key, tuple) else (key,)
    options = []
    grid = tuple(sorted(float(x) for x in group["learning_rate"].unique()))
    for lr, members in group.groupby("learning_rate", sort=True):
      err = _values(members, error)
      bad = report.diverged_flags(members) | ~np.isfinite(err)
      live = err[~bad]
      dead = (bad.any() if diverged == "inf" else 2 * bad.sum() > len(bad)) or not live.size
      ties = _values(members, tie_break)[~bad] if tie_break else np.zeros(1)
      tie = float(ties.mean()) if ties.size and np.all(np.isfinite(ties)) else math.inf
      score = math.inf if dead else float(live.mean())
      options.append((score, tie, float(lr), members, bad))
    score, _, lr, members, bad = min(options, key=lambda o: o[:3])
    err = _values(members, error)
    seeds = members["seed"].to_numpy()
    values = {int(s): float(v) for s, v, b in zip(seeds, err, bad) if not b}
    live = np.array(list(values.values()))
    extra = {c: {int(s): float(v) for s, v, b in zip(seeds, _values(members, c), bad) if not b}
             for c in also}
    out.append(Cell(labels=dict(zip(cell, key)), learning_rate=lr, grid=grid, values=values,
                    n_members=len(members), n_diverged=int(bad.sum()), mean=score,
                    std=float(np.std(live, ddof=1)) if live.size > 1 else math.nan,
                    extra=extra))
  return out


def select(cells: list, **labels) -> list:
  """The cells whose labels match every given value (floats compared with a tolerance)."""
  def match(c):
    for k, v in labels.items():
      x = c.labels.get(k)
      if isinstance(v, float) or isinstance(x, float):
        if x is None or not np.isclose(float(x), float(v)):
          return False
      elif x != v:
        return False
    return True
  return [c for c in cells if match(c)]


def _summary(x):
  """(mean, std, n, values or None) of a Cell or of a dict with mean / std / n_seeds."""
  if isinstance(x, Cell):
    return x.mean, x.std, x.n_seeds, x.values
  values = x.get("values") if isinstance(x, dict) else None
  return float(x["mean"]), float(x["std"]), int(x["n_seeds"]), values


def compare(a, b, tol: float) -> dict:
  """Compares two cells' means (a minus b) with the t test of the module docstring.

  Args:
    a, b: `Cell`s, or dicts with `mean`, `std`, `n_seeds` (and optionally `values`: {seed:
      value}); a mean of +inf is a diverged (dead) cell.
    tol: the smallest difference that counts (absolute, in error units).

  Returns:
    {"diff": a - b, "se": its standard error, "df": degrees of freedom, "t_crit", "test":
    "paired t" | "Welch t" | "diverged" | "too few seeds", "low"/"high": the 95% interval of the
    difference, "resolved": bool, "sign": -1 if a is resolvably lower, +1 if higher, else 0,
    "equivalent": the interval lies within (-tol, tol) (a resolved tie)}. A dead cell against
    a live one is resolved when each has >= 2 members.
  """
  ma, sa, na, va = _summary(a)
  mb, sb, nb, vb = _summary(b)
  out = {"diff": math.nan, "se": math.nan, "df": math.nan, "t_crit": math.nan,
         "test": "too few seeds", "low": math.nan, "high": math.nan, "resolved": False,
         "sign": 0, "equivalent": False}
  if math.isnan(ma) or math.isnan(mb):
    return out
  if math.isinf(ma) or math.isinf(mb):
    out["test"] = "diverged"
    if math.isinf(ma) and math.isinf(mb):
      return out
    sign = 1 if math.isinf(ma) else -1
    members = (a.n_members if isinstance(a, Cell) else na, b.n_members if isinstance(b, Cell)
               else nb)
    enough = min(members) >= 2
    out.update(diff=sign * math.inf, resolved=enough, sign=sign if enough else 0)
    return out
  out["diff"] = diff = ma - mb
  if va is not None and vb is not None and len(va) >= 2 and set(va) == set(vb):
    d = np.array([va[s] - vb[s] for s in sorted(va)])
    se, df, test = float(np.std(d, ddof=1) / math.sqrt(len(d))), len(d) - 1, "paired t"
  elif na >= 2 and nb >= 2 and finite(sa, sb):
    qa, qb = sa**2 / na, sb**2 / nb
    se, test = math.sqrt(qa + qb), "Welch t"
    df = (qa + qb)**2 / (qa**2 / (na - 1) + qb**2 / (nb - 1)) if qa + qb > 0 else na + nb - 2
  else:
    return out
  t = t_critical(df)
  half = t * se
  resolved = abs(diff) > half and abs(diff) > tol
  out.update(se=se, df=float(df), t_crit=t, test=test, low=diff - half, high=diff + half,
             resolved=bool(resolved), sign=int(np.sign(diff)) if resolved else 0,
             equivalent=bool(-tol < diff - half and diff + half < tol))
  return out


def comparison_numbers(c: dict) -> dict:
  """The statistics of `compare` for the claims' JSON."""
  return {k: (num(c[k]) if isinstance(c[k], float) else c[k])
          for k in ("diff", "se", "df", "t_crit", "test", "low", "high")}


def lower(a: Cell, b: Cell, tol: float, kind: str, rows: pd.DataFrame,
          untrained: Optional[str] = None, tie_fails: bool = True) -> dict:
  """The outcome of "cell a is lower than cell b", with the statistics.

  PASS: a resolvably lower; FAIL: a resolvably higher, or (with `tie_fails`, at the paper's
  full length) a resolved tie (the 95% interval inside +-tol); INCONCLUSIVE otherwise, when the
  grids cannot tell (`grid_issue`), or when `untrained` names why neither cell has learnt
  enough (FAIL instead at the full length, see `not_trained`).

  Returns:
    {"outcome", "why", and the `compare` statistics}.
  """
  c = compare(a, b, tol)
  out = comparison_numbers(c)
  issue = grid_issue(a, b, c, kind)
  if untrained:
    outcome, why = not_trained(rows, kind, untrained)
  elif issue:
    outcome, why = INCONCLUSIVE, issue
  elif c["sign"] < 0:
    outcome, why = PASS, "resolvably lower"
  elif c["sign"] > 0:
    outcome, why = FAIL, "resolvably higher"
  elif c["equivalent"] and tie_fails and not short(rows, kind):
    outcome, why = FAIL, "a tie (95% interval within the tolerance) after the full protocol"
  elif c["test"] == "too few seeds":
    outcome, why = INCONCLUSIVE, "fewer than 2 seeds"
  else:
    outcome, why = INCONCLUSIVE, "difference within the seed spread"
  return {"outcome": outcome, "why": why, **out}


def on_paper_grid(grid: Sequence[float], kind: str) -> bool:
  """Whether a cell's learning-rate grid includes the paper's whole grid for that kind."""
  return all(any(np.isclose(g, p) for g in grid) for p in PAPER_GRIDS[kind])


def grid_issue(a: Cell, b: Cell, c: dict, kind: str) -> Optional[str]:
  """Why a comparison of cells a and b cannot count because of their learning-rate grids, or None.

  Both cells need >= 2 learning rates; the resolvably worse one (if any) must have its best
  learning rate inside its grid unless the grid is the paper's full grid (module docstring).
  """
  for cell in (a, b):
    if len(cell.grid) < 2:
      return "one learning rate per cell (the grid cannot tell a better step size from momentum)"
  worse = a if c["sign"] > 0 else b if c["sign"] < 0 else None
  if worse is None or worse.dead or on_paper_grid(worse.grid, kind):
    return None
  if worse.learning_rate in (min(worse.grid), max(worse.grid)):
    return (f"the worse cell's best learning rate {worse.learning_rate:g} is at the edge of its "
            f"grid {list(worse.grid)}")
  return None


def short(rows: pd.DataFrame, kind: str) -> bool:
  """Whether these runs are shorter than the paper's protocol (True when unknown)."""
  if "steps" not in rows.columns or rows.empty:
    return True
  steps = rows["steps"].to_numpy(np.float64)
  steps = steps[np.isfinite(steps)]
  return not steps.size or steps.max() < PAPER_STEPS[kind]


def not_trained(rows: pd.DataFrame, kind: str, what: str) -> tuple:
  """(outcome, why) for "not trained enough to judge": INCONCLUSIVE for runs shorter than the
  paper's protocol, FAIL at its full length (then not having learnt is a result)."""
  if short(rows, kind):
    return INCONCLUSIVE, f"{what} (too few updates)"
  return FAIL, f"{what} after the paper's full {PAPER_STEPS[kind]:,} updates"


def aggregate(outcomes: list) -> str:
  """Strict aggregation: any ERROR -> ERROR, any FAIL -> FAIL, all PASS -> PASS, else
  INCONCLUSIVE (also when there are no outcomes)."""
  if not outcomes:
    return INCONCLUSIVE
  for v in (ERROR, FAIL):
    if v in outcomes:
      return v
  return PASS if all(o == PASS for o in outcomes) else INCONCLUSIVE


def result(claim_id: str, claim: str, source: str, rule: str, comparisons: list,
           reason_if_empty: str = "experiment not run", verdict: Optional[str] = None) -> dict:
  """A claim's dict: id, claim, source, verdict, rule, reason and numbers (the comparisons,
  each with an `outcome` and a `why`). `verdict` overrides the aggregation (e.g. "at least one
  of" claims)."""
  outcomes = [c["outcome"] for c in comparisons]
  verdict = verdict or aggregate(outcomes)
  if not comparisons:
    reason = reason_if_empty
  else:
    counts = {v: outcomes.count(v) for v in (PASS, FAIL, INCONCLUSIVE, ERROR)
              if outcomes.count(v)}
    reason = "; ".join(f"{k}: {v}" for k, v in counts.items()) + " comparison(s)"
    notes = sorted({c["why"] for c in comparisons if c["outcome"] == verdict and c.get("why")})
    if notes:
      reason += " — " + "; ".join(notes)
  return {"id": claim_id, "claim": claim, "source": source, "verdict": verdict, "rule": rule,
          "reason": reason, "numbers": comparisons}


def rows_of(results: pd.DataFrame, experiment: str) -> pd.DataFrame:
  """The rows of one experiment (none if the table has no `experiment` column)."""
  if "experiment" not in results.columns:
    return results.iloc[0:0]
  return results[results["experiment"] == experiment]


def baseline(rows: pd.DataFrame) -> float:
  """The first finite `baseline` of the rows (NaN if none)."""
  if "baseline" not in rows.columns or rows.empty:
    return math.nan
  values = rows["baseline"].to_numpy(np.float64)
  values = values[np.isfinite(values)]
  return float(values[0]) if values.size else math.nan
