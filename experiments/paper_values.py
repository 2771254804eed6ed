"""The paper's published numbers, as plain data, and helpers to hold our results against them.

Source: Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in
deep learning", ICML 2013, PMLR v28 (`sutskever13.pdf`), Tables 1-5, as transcribed in
`docs/paper.md` section 9 (two independent copies of the PDF agree). The local text extraction lost
every digit, so these numbers are the reference the reproduction is held against.

Names follow the rest of the project: tasks "curves", "mnist", "faces" (Tables 1-3) and "add",
"mul", "mem5", "mem20" (Table 5); rules "sgd", "nag", "cm"; `mu` is mu_max (autoencoders) or
mu_0 (RNNs); SGD is mu = 0 (any rule).

Units:
- Tables 1-3: training squared error per case (sum over pixels, no 1/2, whole training set).
- Table 5: add and mul, the fraction of sequences with |prediction - target| > 0.04;
  mem-5 and mem-20, wrong recall steps per sequence (the biases column, 2.5 and 8.0, is chance
  guessing of 5 binary characters and of 10 characters of 5: 5 x 1/2 and 10 x 4/5).

Lookups: `cell(table, task, rule, mu, ...)` returns the paper's value or None where the paper
has no such cell; `ratio(ours, paper)` is ours / paper; `summarize` gives a table's median
ratio and worst cell (largest |log ratio|).
"""
import math
from typing import Iterable, Optional

SOURCE = ("Sutskever, Martens, Dahl & Hinton, ICML 2013, PMLR v28 sutskever13.pdf "
          "(docs/paper.md section 9)")

# Table 1 (paper section 3): best learning rate per cell; includes the final low-momentum phase.
TABLE1 = {
    "curves": {("sgd", 0.0): 0.48,
               ("nag", 0.9): 0.16, ("nag", 0.99): 0.096, ("nag", 0.995): 0.091,
               ("nag", 0.999): 0.074,
               ("cm", 0.9): 0.15, ("cm", 0.99): 0.10, ("cm", 0.995): 0.10, ("cm", 0.999): 0.10},
    "mnist": {("sgd", 0.0): 2.1,
              ("nag", 0.9): 1.0, ("nag", 0.99): 0.73, ("nag", 0.995): 0.75, ("nag", 0.999): 0.80,
              ("cm", 0.9): 1.0, ("cm", 0.99): 0.77, ("cm", 0.995): 0.84, ("cm", 0.999): 0.90},
    "faces": {("sgd", 0.0): 36.4,
              ("nag", 0.9): 14.2, ("nag", 0.99): 8.5, ("nag", 0.995): 7.8, ("nag", 0.999): 7.7,
              ("cm", 0.9): 15.3, ("cm", 0.99): 8.7, ("cm", 0.995): 8.3, ("cm", 0.999): 9.3},
}

# Table 1's reference columns: SGD_C = Chapelle & Erhan 2011 (1.7M SGD steps, tanh nets; None:
# "NA" in the paper), HF_dagger = the paper's hybrid HF without L2 (appendix A.6),
# HF_star = Martens 2010.
TABLE1_REFERENCE = {
    "curves": {"SGD_C": 0.16, "HF_dagger": 0.058, "HF_star": 0.11},
    "mnist": {"SGD_C": 0.9, "HF_dagger": 0.69, "HF_star": 1.40},
    "faces": {"SGD_C": None, "HF_dagger": 7.5, "HF_star": 12.0},
}

# Table 2: NAG before -> after the final low-momentum phase, at the best NAG cell. The "after"
# values are Table 1's best NAG cells; `mu` is that cell's mu_max (inferred from Table 1).
TABLE2 = {
    "curves": {"mu": 0.999, "before": 0.096, "after": 0.074},
    "mnist": {"mu": 0.99, "before": 1.20, "after": 0.73},
    "faces": {"mu": 0.999, "before": 10.83, "after": 7.7},
}

# Table 3: SI scale multiplier -> error, one row. Its x1 value equals Curves 0.999N of Table 1,
# so it is most likely Curves with NAG at mu_max 0.999 (the paper does not say).
TABLE3_TASK, TABLE3_RULE, TABLE3_MU = "curves", "nag", 0.999
TABLE3 = {0.25: 16.0, 0.5: 16.0, 1.0: 0.074, 2.0: 0.083, 4.0: 0.35}

# Table 4: the RNN initialization (ESN-inspired).
TABLE4 = {
    "in_to_hid_scale": {"add": 0.001, "mul": 0.001, "mem5": 0.1, "mem20": 0.1},  # x N(0, 1)
    "hid_to_hid_fan_in": 15,
    "hid_to_hid_spectral_radius": 1.1,
    "hid_to_out_scale": 0.1,  # dense 0.1 N(0, 1)
    "hidden_bias": 0.0,
    "output_bias": "average of the outputs",
}

# Table 5 (paper section 4): RNN zero-one errors, mean over 4 seeds, 50,000 updates, best eps
# of {1e-3, 1e-4, 1e-5, 1e-6} per cell. T: the problem's length parameter.
TABLE5_SEEDS = 4
TABLE5_T = {"add": 80, "mul": 80, "mem5": 200, "mem20": 80}
TABLE5 = {
    "add": {"biases": 0.82, ("sgd", 0.0): 0.39,
            ("nag", 0.9): 0.02, ("nag", 0.98): 0.21, ("nag", 0.995): 0.00025,
            ("cm", 0.9): 0.43, ("cm", 0.98): 0.62, ("cm", 0.995): 0.036},
    "mul": {"biases": 0.84, ("sgd", 0.0): 0.48,
            ("nag", 0.9): 0.36, ("nag", 0.98): 0.22, ("nag", 0.995): 0.0013,
            ("cm", 0.9): 0.029, ("cm", 0.98): 0.025, ("cm", 0.995): 0.37},
    "mem5": {"biases": 2.5, ("sgd", 0.0): 1.27,
             ("nag", 0.9): 1.02, ("nag", 0.98): 0.96, ("nag", 0.995): 0.63,
             ("cm", 0.9): 1.12, ("cm", 0.98): 1.09, ("cm", 0.995): 0.92},
    "mem20": {"biases": 8.0, ("sgd", 0.0): 5.37,
              ("nag", 0.9): 2.77, ("nag", 0.98): 0.0144, ("nag", 0.995): 0.00005,
              ("cm", 0.9): 1.75, ("cm", 0.98): 0.0017, ("cm", 0.995): 0.053},
}
# Table 5's unit per problem (see the module docstring).
TABLE5_UNITS = {"add": "fraction of sequences", "mul": "fraction of sequences",
                "mem5": "wrong recall steps per sequence",
                "mem20": "wrong recall steps per sequence"}

TABLES = {1: TABLE1, 2: TABLE2, 3: TABLE3, 5: TABLE5}


def _close(a: float, b: float) -> bool:
  return abs(float(a) - float(b)) < 1e-9


def cell(table: int, task: str, rule: Optional[str] = None, mu: Optional[float] = None, *,
         scale: Optional[float] = None, phase: str = "after") -> Optional[float]:
  """The paper's value of one cell, or None where the paper has no such cell.

  Args:
    table: 1, 2, 3 or 5.
    task: "curves", "mnist", "faces" (Tables 1-3) or "add", "mul", "mem5", "mem20" (Table 5).
    rule: "sgd", "nag", "cm"; or "biases" (Table 5's baseline column). mu == 0 means SGD
      whatever the rule.
    mu: mu_max (Tables 1-3) or mu_0 (Table 5). Table 2 and 3: must match the paper's cell
      (Table 2's best NAG mu_max; Table 3's 0.999) or be None (any).
    scale: Table 3's SI scale multiplier.
    phase: Table 2's "before" or "after".

  Raises:
    ValueError: unknown table number.
  """
  if table == 1 or table == 5:
    rows = TABLE1 if table == 1 else TABLE5
    if task not in rows:
      return None
    if rule == "biases":
      return rows[task].get("biases")
    if mu is None or rule is None:
      return None
    if _close(mu, 0.0):
      rule = "sgd"
    for key, value in rows[task].items():
      if isinstance(key, tuple) and key[0] == rule and _close(key[1], mu):
        return value
    return None
  if table == 2:
    row = TABLE2.get(task)
    if row is None or rule not in (None, "nag") or (mu is not None and not _close(mu, row["mu"])):
      return None
    return row.get(phase)
  if table == 3:
    if task != TABLE3_TASK or rule not in (None, TABLE3_RULE) or scale is None:
      return None
    if mu is not None and not _close(mu, TABLE3_MU):
      return None
    for s, value in TABLE3.items():
      if _close(s, scale):
        return value
    return None
  raise ValueError(f"table must be one of {sorted(TABLES)}, got {table!r}")


def reference(task: str, column: str) -> Optional[float]:
  """Table 1's reference column ("SGD_C", "HF_dagger", "HF_star") for a task, or None."""
  return TABLE1_REFERENCE.get(task, {}).get(column)


def ratio(ours: float, paper: Optional[float]) -> float:
  """ours / paper; NaN when either is missing or not finite, or paper is 0; inf when ours is
  inf (a diverged cell)."""
  if paper is None or ours is None:
    return float("nan")
  ours, paper = float(ours), float(paper)
  if not math.isfinite(paper) or paper == 0 or math.isnan(ours):
    return float("nan")
  return ours / paper


def format_pair(text: str, paper: Optional[float], r: float) -> str:
  """Our cell text followed by the paper's value and the ratio: "0.081 (paper 0.074, x1.09)".

  With no paper value the text is returned unchanged.
  """
  if paper is None:
    return text
  return f"{text} (paper {paper:g}, {format_ratio(r)})"


def format_ratio(r: float) -> str:
  """A ratio as the report writes it: "x1.09" (3 significant digits), "x∞", "x?" (NaN)."""
  if math.isnan(r):
    return "x?"
  return f"x{r:.3g}" if math.isfinite(r) else "x∞"


def summarize(ratios: dict) -> dict:
  """A table's summary of {cell name: ratio}.

  Returns:
    {"n": number of finite positive ratios, "median": their median (NaN if none), "worst":
    the cell name farthest from the paper (largest |log ratio|; a zero or infinite ratio is
    farthest of all), "worst_ratio": its ratio}. Missing (NaN) ratios are left out.
  """
  items = [(k, float(v)) for k, v in ratios.items() if v is not None and not math.isnan(v)]
  finite = sorted(v for _, v in items if 0 < v < float("inf"))
  n = len(finite)
  median = (float("nan") if n == 0 else
            finite[n // 2] if n % 2 else 0.5 * (finite[n // 2 - 1] + finite[n // 2]))

  def distance(v):
    return float("inf") if v <= 0 or v == float("inf") else abs(math.log(v))

  worst = max(items, key=lambda kv: distance(kv[1]), default=(None, float("nan")))
  return {"n": n, "median": median, "worst": worst[0], "worst_ratio": worst[1]}


def summary_line(name: str, ratios: dict) -> str:
  """One line for the report: "Table 1 vs the paper: median ratio x1.23 over 9 cells; worst:
  CURVES NAG 0.999 x4.1"."""
  s = summarize(ratios)
  if s["worst"] is None:
    return f"{name} vs the paper: no cell the paper also reports."
  median = format_ratio(s["median"]) if math.isfinite(s["median"]) else "n/a"
  return (f"{name} vs the paper: median ratio (ours / paper) {median} over {s['n']} cells; "
          f"farthest cell: {s['worst']} {format_ratio(s['worst_ratio'])}.")


def table_cells(table: int) -> Iterable[tuple]:
  """Every published cell of a table as (task, rule, mu, scale_or_phase, value)."""
  if table in (1, 5):
    for task, row in (TABLE1 if table == 1 else TABLE5).items():
      for key, value in row.items():
        if isinstance(key, tuple):
          yield task, key[0], key[1], None, value
        else:
          yield task, key, None, None, value
  elif table == 2:
    for task, row in TABLE2.items():
      for phase in ("before", "after"):
        yield task, "nag", row["mu"], phase, row[phase]
  elif table == 3:
    for s, value in TABLE3.items():
      yield TABLE3_TASK, TABLE3_RULE, TABLE3_MU, s, value
  else:
    raise ValueError(f"table must be one of {sorted(TABLES)}, got {table!r}")


def _finite_or_nan(x) -> float:
  try:
    x = float(x)
  except (TypeError, ValueError):
    return float("nan")
  return x


def best_row_comparison(row) -> dict:
  """The paper's value for one row of `experiments.report.best_learning_rates`, and our ratio.

  The row names its table by its `experiment` label ("table1", "table3", "table5"; other
  experiments, e.g. the Gaussian-init extension, have no paper cell). Table 3 is compared
  whatever our mu_max (the paper does not state its Table 3 protocol). Table 5 errors are turned
  into the paper's unit with the row's `paper_unit_factor` (zero-one fraction x scored steps
  per sequence; NaN where our mask is not the paper's, e.g. memorization scored at every step).

  Args:
    row: a mapping (dict or pandas Series) with `experiment`, `problem`, `rule`, `mu_max`,
      `mean`, and (Table 3) `init_scale`, (Table 5) `paper_unit_factor`.

  Returns:
    {} when the paper has no such cell; else {"paper_table": 1 | 3 | 5, "paper": value,
    "ours": our mean in the paper's unit, "ratio": ours / paper}.
  """
  get = row.get
  experiment, problem, rule = get("experiment"), get("problem"), get("rule")
  mu = _finite_or_nan(get("mu_max"))
  ours = _finite_or_nan(get("mean"))
  if experiment == "table1":
    table, paper = 1, cell(1, problem, rule, mu)
  elif experiment == "table3":
    table, paper = 3, cell(3, problem, rule, None, scale=_finite_or_nan(get("init_scale")))
  elif experiment == "table5":
    table, paper = 5, cell(5, problem, rule, mu)
    factor = get("paper_unit_factor")
    ours = ours * (1.0 if factor is None else _finite_or_nan(factor))
  else:
    return {}
  if paper is None:
    return {}
  return {"paper_table": table, "paper": paper, "ours": ours, "ratio": ratio(ours, paper)}
