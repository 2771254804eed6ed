"""The paper's claims, checked on a results table: PASS, FAIL, INCONCLUSIVE or ERROR, with numbers.

Every checker is a pure function `check(results: pandas.DataFrame) -> dict` of the combined
results table that `experiments.reproduce` writes to `results.csv` (one row per trained member,
with an `experiment` column: "table1", "table2_control", "table2_early" (autoencoders), "table3"
(sparse-init scale), "gaussian" (poorly scaled dense Gaussian init), "table5", "rnn_input_scale",
"rnn_center" (RNNs), "quadratic", "quadratic_rates" (quadratics), "hf" and "hf_quadratic" (the
Hessian-free study, `experiments.hf.results_frame`)). So each can be tested on hand-made tables,
and on the paper's own published tables (tests/test_claims.py: every rule PASSes on them and
FAILs on them with the claim reversed). The returned dict has:
  id, claim (the statement, as the paper makes it), source (where in the paper), verdict,
  rule (how the verdict was reached, in words), reason (one line: why this verdict), numbers
  (the values compared).

The rules live in `claims_autoencoders`, `claims_rnn`, `claims_quadratic` and `claims_hf`; the
statistics and verdicts they share (best learning rate per cell, t tests paired by seed, the
learning-rate grid and "not trained enough" gates, aggregation) in `experiments.verdicts`.
A claim no preset can judge (or that needs an experiment the run did not include) is
INCONCLUSIVE with the reason; a checker that raises gives ERROR (and `experiments.reproduce`
exits non-zero).
"""
import json
import math
from typing import Callable

import pandas as pd

from experiments import claims_autoencoders
from experiments import claims_hf
from experiments import claims_quadratic
from experiments import claims_rnn
from experiments import paper_values
from experiments import report
from experiments import verdicts as v
# The rules, re-exported so that `claims.<rule>(results)` works as before.
from experiments.claims_autoencoders import (  # pylint: disable=unused-import
    final_phase_lowers_error, gaussian_init_fails, larger_mu_max_helps,
    lowering_mu_early_hurts, momentum_closes_gap_to_hf, nag_beats_cm, not_overfitting, si_scale)
from experiments.claims_hf import (  # pylint: disable=unused-import
    cg_ahead_of_nag_on_hf_quadratic, hf_warm_start_helps, momentum_like_hf_works,
    nag_comparable_to_hf)
from experiments.claims_quadratic import (  # pylint: disable=unused-import
    cg_no_faster_worst_case, cm_sqrt_r_speedup, nag_convex_rate, nag_damps_oscillations,
    nag_tolerates_larger_mu, theorem_holds)
from experiments.claims_rnn import (  # pylint: disable=unused-import
    centering_for_multiplication, input_scale_matters, momentum_helps_rnn,
    nag_benefits_more_from_mu0, rnn_beats_biases, sgd_rnn_nontrivial, spectral_radius_matters)

PASS, FAIL, INCONCLUSIVE, ERROR = v.PASS, v.FAIL, v.INCONCLUSIVE, v.ERROR
compare = v.compare  # the t test of two cells (experiments.verdicts)
t_critical = v.t_critical


def _cell_numbers(row) -> dict:
  """A cell's numbers; a cell of the paper's Tables 1, 3, 5 also gets the paper's value and
  ours / paper (`paper_values.best_row_comparison`: `paper_table`, `paper`, `ours`, `ratio`)."""
  paper = {k: (_num(v) if isinstance(v, float) else v)
           for k, v in paper_values.best_row_comparison(row).items()}
  return {"mean": _num(row["mean"]), "std": _num(row["std"]), "n_seeds": int(row["n_seeds"]),
          "learning_rate": float(row["learning_rate"]), **paper}


def _num(x):
  """JSON-friendly float (inf and NaN as strings)."""
  x = float(x)
  return x if math.isfinite(x) else str(x)


CHECKS: tuple[Callable[[pd.DataFrame], dict], ...] = (
    claims_autoencoders.CHECKS + claims_rnn.CHECKS + claims_quadratic.CHECKS + claims_hf.CHECKS)


def check_all(results: pd.DataFrame) -> list:
  """Runs every checker of `CHECKS` on the results table; a checker that raises gives an ERROR
  entry naming the exception (so one bad table column never hides the other claims, and the
  failure is not mistaken for a statement about the paper)."""
  out = []
  for check in CHECKS:
    try:
      out.append(check(results))
    except Exception as e:  # pylint: disable=broad-except
      out.append({"id": check.__name__, "claim": (check.__doc__ or "").strip().splitlines()[0],
                  "source": "", "verdict": ERROR, "rule": "", "numbers": [],
                  "reason": f"checker failed: {type(e).__name__}: {e}"})
  return out


def errors(claims: list) -> list:
  """The ids of the claims whose checker raised (verdict ERROR)."""
  return [c["id"] for c in claims if c["verdict"] == ERROR]


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
