"""The claim rules, checked against the paper's own published tables and against hand numbers.

The principle (issue 15): every rule PASSes when fed the paper's tables (`experiments.
paper_values`, docs/paper.md section 9, turned into results tables with a few seeds at a 1% spread
around each published value and a small learning-rate grid whose middle value holds it) and
FAILs when fed the same tables with the claim reversed (e.g. the NAG and CM columns swapped).
Claims the paper states without numbers get the table its statement describes. The statistics
are checked against hand-computed values (t quantiles, paired and Welch t tests).
"""
import json
import math
import zlib

import numpy as np
import pandas as pd
import pytest

from experiments import claims
from experiments import paper_values as pv
from experiments import reproduce
from experiments import verdicts

AE_STEPS, RNN_STEPS = 750_000, 50_000
# The paper publishes no mean-image errors. CURVES: that of our generated training set
# (docs/reproduce.md); MNIST: measured on the MNIST test set (52.8); FACES: a stand-in above
# SGD's 36.4 / 0.9 (the rules only need the published errors to be below the plateau).
AE_BASE = {"curves": 27.6, "mnist": 52.8, "faces": 100.0}
AE_LRS = (0.01, 0.005, 0.001)   # the published value at 0.005, 1.5 x it at the others
RNN_LRS = (1e-3, 1e-4, 1e-5)


def cached(builder):
  """Memoizes a table builder on its keyword arguments (tables are rebuilt for many rules);
  every call gets its own copy."""
  memo = {}

  def build(*args, **kwargs):
    key = (args, tuple(sorted(kwargs.items())))
    if key not in memo:
      memo[key] = builder(*args, **kwargs)
    return memo[key].copy()

  return build


def _noise(key, seeds, spread):
  """Deterministic multiplicative noise in [1 - spread, 1 + spread], one value per seed."""
  rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
  return 1 + spread * rng.uniform(-1, 1, len(seeds))


def table(cells, experiment, error, base, steps, lrs, seeds=3, spread=0.01, extra=None):
  """Rows of a results table.

  Args:
    cells: {(problem, rule, mu, *more): value}; value "diverged" for a diverged cell.
    experiment: the experiment label.
    error: the error column ("train_error", "zero_one").
    base: {problem: baseline}.
    steps: updates of every member.
    lrs: learning-rate grid; the middle one holds the value, the others 1.5 x it.
    seeds: members per learning rate.
    spread: relative seed spread.
    extra: {column name: position in the cell key beyond mu} for more key columns, or callable
      (problem, rule, mu, value, seed) -> dict of more columns.
  """
  seeds = tuple(range(seeds))
  rows = []
  for key, value in cells.items():
    problem, rule, mu = key[:3]
    for j, lr in enumerate(lrs):
      factor = 1.0 if j == len(lrs) // 2 else 1.5
      noise = _noise((experiment, key, lr), seeds, spread)
      for s, z in zip(seeds, noise):
        dead = value == "diverged"
        err = math.nan if dead else value * factor * z
        row = {"experiment": experiment, "problem": problem, "rule": rule, "mu_max": mu,
               "learning_rate": lr, "seed": s, error: err, "diverged": dead, "steps": steps,
               "baseline": base[problem]}
        if error == "zero_one":
          row["test_loss"] = err
        if error == "train_error":
          row["test_error"] = err * 1.1 if not dead else math.nan
          row["error_before_final"] = err
        if isinstance(extra, dict):
          row.update({name: key[i] for name, i in extra.items()})
        elif extra:
          row.update(extra(problem, rule, mu, err, s))
        rows.append(row)
  return pd.DataFrame(rows)


def _table1_cells(swap_rules=False, reverse_mu=False, only=None):
  order = {0.9: 0.999, 0.99: 0.995, 0.995: 0.99, 0.999: 0.9}
  cells = {}
  for problem, row in pv.TABLE1.items():
    for (rule, mu), value in row.items():
      if only is None or problem in only:
        if swap_rules and rule != "sgd":
          rule = {"nag": "cm", "cm": "nag"}[rule]
        if reverse_mu and rule != "sgd":
          mu = order[mu]
      cells[(problem, rule, mu)] = value
  return cells


@cached
def table1(seeds=3, steps=AE_STEPS, **kw):
  return table(_table1_cells(**kw), "table1", "train_error", AE_BASE, steps, AE_LRS, seeds)


@cached
def table2(control=True, early=False, swap=False, seeds=3):
  """Table 1 with a final-phase twin: the control (final_steps = 0) scores Table 2's `before`
  ratio above the final phase (continuing at mu_max is taken to stay where the phase starts);
  the early twin (no published number) 1.3 x. `swap` exchanges the two."""
  cells = _table1_cells()
  ratio = {p: r["before"] / r["after"] for p, r in pv.TABLE2.items()}
  twin = {k: val * (ratio[k[0]] if control else 1.3) for k, val in cells.items()
          if k[1] == "nag" and k[2] > 0.9}
  if swap:
    cells.update(twin)
    twin = {k: val for k, val in _table1_cells().items() if k in twin}
  label = "table2_control" if control else "table2_early"
  return pd.concat([table(cells, "table1", "train_error", AE_BASE, AE_STEPS, AE_LRS, seeds),
                    table(twin, label, "train_error", AE_BASE, AE_STEPS, AE_LRS, seeds)],
                   ignore_index=True)


@cached
def overfitting(reverse=False, seeds=3):
  t = table1(seeds=seeds)
  if reverse:  # test errors in the opposite rank order of the training errors
    for problem in t["problem"].unique():
      mine = t[t["problem"] == problem]
      keys = sorted({(r, m) for r, m in zip(mine["rule"], mine["mu_max"])},
                    key=lambda k: pv.TABLE1[problem][("sgd" if k[1] == 0 else k[0], k[1])])
      for k, k_rev in zip(keys, reversed(keys)):
        value = pv.TABLE1[problem][("sgd" if k_rev[1] == 0 else k_rev[0], k_rev[1])]
        sel = (t["problem"] == problem) & (t["rule"] == k[0]) & (t["mu_max"] == k[1])
        t.loc[sel, "test_error"] = value * 1.1 * (1 + 0.01 * np.arange(sel.sum()) / sel.sum())
  return t


@cached
def hf_gap(reverse=False):
  cells = _table1_cells()
  if reverse:  # SGD and the best NAG cell exchanged
    for problem, row in pv.TABLE1.items():
      best = min(((r, m) for r, m in row if r == "nag"), key=lambda k: row[k])
      cells[(problem, "sgd", 0.0)], cells[(problem,) + best] = row[best], row[("sgd", 0.0)]
  return table(cells, "table1", "train_error", AE_BASE, AE_STEPS, AE_LRS)


@cached
def table3(reverse=False, seeds=3, steps=AE_STEPS):
  values = dict(pv.TABLE3)
  if reverse:
    values[0.25], values[1.0] = values[1.0], values[0.25]
    values[0.5], values[2.0] = values[2.0], values[0.5]
  cells = {(pv.TABLE3_TASK, pv.TABLE3_RULE, pv.TABLE3_MU, s): x for s, x in values.items()}
  return table(cells, "table3", "train_error", AE_BASE, steps, AE_LRS, seeds,
               extra={"init_scale": 3})


@cached
def gaussian(reverse=False, seeds=3):
  g = 0.074 if reverse else 16.0  # no published value: "cannot be trained", like SI x 1/4
  t = table({("curves", "nag", 0.999): g, ("curves", "cm", 0.999): g * 1.1}, "gaussian",
            "train_error", AE_BASE, AE_STEPS, AE_LRS, seeds)
  t["init_scale"] = 1.0
  return pd.concat([t, table3(seeds=seeds)], ignore_index=True)


def _table5_cells(swap_rules=False, swap_sgd_top=False, top_at_biases=False,
                  sgd_at_biases=False, only=None):
  cells = {}
  for problem, row in pv.TABLE5.items():
    mine = {k: x for k, x in row.items() if isinstance(k, tuple)}
    if only is None or problem in only:
      if swap_rules:
        mine = {(("cm" if r == "nag" else "nag" if r == "cm" else r), m): x
                for (r, m), x in mine.items()}
      if swap_sgd_top:
        mine[("sgd", 0.0)], mine[("nag", 0.995)] = mine[("nag", 0.995)], mine[("sgd", 0.0)]
      if top_at_biases:
        mine[("nag", 0.995)] = row["biases"]
      if sgd_at_biases:
        mine[("sgd", 0.0)] = row["biases"]
    cells.update({(problem, r, m): x for (r, m), x in mine.items()})
  return cells


RNN_BASE = {p: row["biases"] for p, row in pv.TABLE5.items()}


@cached
def table5(seeds=pv.TABLE5_SEEDS, steps=RNN_STEPS, **kw):
  return table(_table5_cells(**kw), "table5", "zero_one", RNN_BASE, steps, RNN_LRS, seeds)


@cached
def input_scale(reverse=False):
  # No published numbers: "too large -> poor local minimum, too small -> slow" (section 4).
  values = {1e-4: 0.5, 1e-3: 0.00025, 1e-2: 0.3, 1e-1: 0.8}
  if reverse:
    values[1e-3], values[1e-1] = values[1e-1], values[1e-3]
  cells = {("add", "nag", 0.995, s): x for s, x in values.items()}
  return table(cells, "rnn_input_scale", "zero_one", RNN_BASE, RNN_STEPS, RNN_LRS, 4,
               extra={"input_scale": 3})


@cached
def centring(reverse=False):
  t5 = table5()
  raw = table({("mul", "nag", 0.995): 0.8}, "rnn_center", "zero_one", RNN_BASE, RNN_STEPS,
              RNN_LRS, 4)
  raw["center"] = False
  if reverse:
    sel = (t5["problem"] == "mul") & (t5["rule"] == "nag") & (t5["mu_max"] == 0.995)
    t5.loc[sel, ["zero_one", "test_loss"]] *= 0.8 / 0.0013
    raw[["zero_one", "test_loss"]] *= 0.0013 / 0.8
  return pd.concat([t5, raw], ignore_index=True)


@cached
def radius(reverse=False):
  values = {0.9: 0.8, 1.1: 0.00025, 3.0: 0.82}  # forgets, works, explodes (section 4)
  if reverse:
    values[0.9], values[1.1] = values[1.1], values[0.9]
  cells = {("add", "nag", 0.995, r): x for r, x in values.items()}
  return table(cells, "rnn_radius", "zero_one", RNN_BASE, RNN_STEPS, RNN_LRS, 4,
               extra={"spectral_radius": 3})


@cached
def quadratic_rows(reverse=False):
  rel = 1e-3 if reverse else 1e-15
  rows = [{"experiment": "quadratic", "check": c, "max_rel_diff": rel, "plain_cm_rel_diff": 0.3,
           "dtype": "float64"} for c in ("constant", "scheduled")]
  counts = {"gd": 0, "cm": 1 if reverse else 26, "nag": 26 if reverse else 1}
  rows += [{"experiment": "quadratic", "check": "oblong", "rule": r, "oscillations": n}
           for r, n in counts.items()]
  return pd.DataFrame(rows)


@cached
def rates_rows(reverse=False):
  """The quadratic claims' closed forms: GD R, CM sqrt R iterations; gaps 0.5/T and 0.5/T^2
  under bounds with L d^2 = 10; CM settles up to mu 0.9, NAG 0.999; CG 2x NAG's speed on the
  worst case, clustered CG in 5 iterations. `reverse` states the opposite."""
  rows = []
  for r in (10.0, 100.0, 1000.0, 10000.0):
    rows += [{"check": "sqrt_r", "R": r, "method": "gd", "iterations": 10 * r},
             {"check": "sqrt_r", "R": r, "method": "cm",
              "iterations": 10 * r if reverse else 10 * math.sqrt(r)}]
  for t in (16, 32, 64, 128):
    gd, nag = 0.5 / t, 0.5 / t**2
    if reverse:
      gd, nag = nag, gd
    rows += [{"check": "convex", "method": "gd", "T": t, "gap": gd, "bound": 10 / (2 * t)},
             {"check": "convex", "method": "nag", "T": t, "gap": nag, "bound": 20 / (t + 1)**2}]
  for eps in (0.2, 0.5, 0.8):
    cm, nag = (0.999, 0.9) if reverse else (0.9, 0.999)
    rows += [{"check": "mu_tolerance", "learning_rate": eps, "method": "cm", "largest_mu": cm},
             {"check": "mu_tolerance", "learning_rate": eps, "method": "nag",
              "largest_mu": nag}]
  for r in (100.0, 1000.0, 10000.0):
    cg = 5 * math.sqrt(r)
    rows += [{"check": "cg_vs_nag", "spectrum": "even", "R": r, "method": "cg",
              "iterations": 10 if reverse else cg},
             {"check": "cg_vs_nag", "spectrum": "even", "R": r, "method": "nag",
              "iterations": 2 * cg},
             {"check": "cg_vs_nag", "spectrum": "clustered", "R": r, "method": "cg",
              "iterations": 5},
             {"check": "cg_vs_nag", "spectrum": "clustered", "R": r, "method": "nag",
              "iterations": 2 * cg}]
  frame = pd.DataFrame(rows)
  frame.insert(0, "experiment", "quadratic_rates")
  return frame


def hf_rows(errors, baseline=27.6):
  """errors = {variant: (error at E, error at T) or "diverged"}."""
  rows = []
  for variant, value in errors.items():
    at_e, at_t = (math.nan,) * 2 if value == "diverged" else value
    rows.append({"experiment": "hf", "variant": variant, "method": variant,
                 "baseline": baseline, "error_at_equal_evals": at_e,
                 "error_at_equal_time": at_t, "final_error": at_e})
  return pd.DataFrame(rows)


HF_STAR = pv.reference("curves", "HF_star")  # Martens 2010, the HF our study implements
BEST_NAG = pv.TABLE1["curves"][("nag", 0.999)]


def hf_quadratic_rows(reverse=False, q_star=-100.0, iterations=50):
  cg, nag = (-90.0, -99.9), (-60.0, -99.0)  # the appendix figure: CG ahead, NAG close behind
  if reverse:
    cg, nag = nag, cg
  rows = [{"experiment": "hf_quadratic", "solver": "cg", "mu": None, "iterations": iterations,
           "q_10": cg[0], "q_half": cg[1], "q_final": cg[1], "q_reference": q_star}]
  rows += [{"experiment": "hf_quadratic", "solver": "nag", "mu": mu, "iterations": iterations,
            "q_10": nag[0] * f, "q_half": nag[1] * f, "q_final": nag[1] * f,
            "q_reference": q_star} for mu, f in ((0.9, 0.9), (0.99, 1.0))]
  return pd.DataFrame(rows)


# (rule, the paper's table, the reversed table, judged on seeds?)
SELF_TESTS = {
    "nag_beats_cm": (table1, lambda **k: table1(swap_rules=True, **k), True),
    "larger_mu_max_helps": (table1, lambda **k: table1(reverse_mu=True, **k), True),
    "final_phase_lowers_error": (table2, lambda **k: table2(swap=True, **k), True),
    "lowering_mu_early_hurts": (lambda **k: table2(control=False, **k),
                                lambda **k: table2(control=False, swap=True, **k), True),
    "not_overfitting": (overfitting, lambda **k: overfitting(reverse=True, **k), True),
    "momentum_closes_gap_to_hf": (lambda **k: hf_gap(), lambda **k: hf_gap(True), False),
    "si_scale": (table3, lambda **k: table3(reverse=True, **k), True),
    "gaussian_init_fails": (gaussian, lambda **k: gaussian(reverse=True, **k), True),
    "momentum_helps_rnn": (table5, lambda **k: table5(swap_sgd_top=True, **k), True),
    "nag_benefits_more_from_mu0": (table5, lambda **k: table5(swap_rules=True, **k), True),
    "rnn_beats_biases": (table5, lambda **k: table5(top_at_biases=True, **k), True),
    "sgd_rnn_nontrivial": (table5, lambda **k: table5(sgd_at_biases=True, **k), True),
    "input_scale_matters": (lambda **k: input_scale(), lambda **k: input_scale(True), False),
    "centering_for_multiplication": (lambda **k: centring(), lambda **k: centring(True), False),
    "spectral_radius_matters": (lambda **k: radius(), lambda **k: radius(True), False),
    "theorem_holds": (lambda **k: quadratic_rows(), lambda **k: quadratic_rows(True), False),
    "nag_damps_oscillations": (lambda **k: quadratic_rows(),
                               lambda **k: quadratic_rows(True), False),
    "cm_sqrt_r_speedup": (lambda **k: rates_rows(), lambda **k: rates_rows(True), False),
    "nag_convex_rate": (lambda **k: rates_rows(), lambda **k: rates_rows(True), False),
    "nag_tolerates_larger_mu": (lambda **k: rates_rows(), lambda **k: rates_rows(True), False),
    "cg_no_faster_worst_case": (lambda **k: rates_rows(), lambda **k: rates_rows(True), False),
    "nag_comparable_to_hf": (
        lambda **k: hf_rows({"nag": (BEST_NAG,) * 2, "hf": (HF_STAR,) * 2}),
        lambda **k: hf_rows({"nag": (HF_STAR,) * 2, "hf": (BEST_NAG,) * 2}), False),
    "momentum_like_hf_works": (  # no published numbers: "as well as or better"
        lambda **k: hf_rows({"hf_momentum_like": (0.10, 0.10), "hf": (HF_STAR,) * 2}),
        lambda **k: hf_rows({"hf_momentum_like": (0.165, 0.165), "hf": (HF_STAR,) * 2}), False),
    "hf_warm_start_helps": (
        lambda **k: hf_rows({"hf": (HF_STAR,) * 2, "hf_no_warm_start": (0.13, 0.13)}),
        lambda **k: hf_rows({"hf": (0.13, 0.13), "hf_no_warm_start": (HF_STAR,) * 2}), False),
    "cg_ahead_of_nag_on_hf_quadratic": (lambda **k: hf_quadratic_rows(),
                                        lambda **k: hf_quadratic_rows(True), False),
}
CHECK = {c.__name__: c for c in claims.CHECKS}


def test_every_rule_has_a_self_test():
  assert set(SELF_TESTS) == set(CHECK)


@pytest.mark.parametrize("claim_id", sorted(SELF_TESTS))
def test_passes_on_the_papers_tables(claim_id):
  out = CHECK[claim_id](SELF_TESTS[claim_id][0]())
  assert out["verdict"] == claims.PASS, json.dumps(out["numbers"], default=str)[:2000]


@pytest.mark.parametrize("claim_id", sorted(SELF_TESTS))
def test_fails_on_the_reversed_tables(claim_id):
  out = CHECK[claim_id](SELF_TESTS[claim_id][1]())
  assert out["verdict"] == claims.FAIL, json.dumps(out["numbers"], default=str)[:2000]


ERROR_COLUMNS = ("train_error", "test_error", "error_before_final", "zero_one", "test_loss",
                 "max_rel_diff", "plain_cm_rel_diff", "oscillations", "iterations", "gap",
                 "largest_mu", "error_at_equal_evals", "error_at_equal_time", "q_10", "q_half",
                 "q_reference", "baseline")


@pytest.mark.parametrize("claim_id", sorted(SELF_TESTS))
def test_nan_never_passes(claim_id):
  nan = SELF_TESTS[claim_id][0]()
  for column in ERROR_COLUMNS:
    if column in nan:
      nan[column] = math.nan
  assert CHECK[claim_id](nan)["verdict"] != claims.PASS


@pytest.mark.parametrize("claim_id, column", [
    ("nag_beats_cm", "train_error"), ("si_scale", "baseline"), ("momentum_helps_rnn", "zero_one"),
    ("rnn_beats_biases", "baseline"), ("theorem_holds", "max_rel_diff"),
    ("nag_damps_oscillations", "oscillations"), ("cm_sqrt_r_speedup", "iterations"),
    ("nag_convex_rate", "gap"), ("nag_comparable_to_hf", "error_at_equal_evals"),
    ("cg_ahead_of_nag_on_hf_quadratic", "q_half")])
def test_nan_in_the_judged_number_never_passes(claim_id, column):
  nan = SELF_TESTS[claim_id][0]()
  nan[column] = math.nan
  assert CHECK[claim_id](nan)["verdict"] != claims.PASS


# Rules whose verdict rests on comparing two cells (a t test); the others compare a cell's mean
# with fixed thresholds (e.g. half the biases error after the full protocol).
COMPARISONS = ("nag_beats_cm", "larger_mu_max_helps", "final_phase_lowers_error",
               "lowering_mu_early_hurts", "momentum_helps_rnn", "nag_benefits_more_from_mu0")


@pytest.mark.parametrize("claim_id", sorted(k for k, v in SELF_TESTS.items() if v[2]))
def test_one_seed(claim_id):
  paper, reversed_ = SELF_TESTS[claim_id][:2]
  on_paper, on_reversed = (CHECK[claim_id](f(seeds=1))["verdict"] for f in (paper, reversed_))
  assert on_paper != claims.FAIL and on_reversed != claims.PASS
  if claim_id in COMPARISONS:  # one seed never resolves a comparison of two cells
    assert on_paper == on_reversed == claims.INCONCLUSIVE


@pytest.mark.parametrize("claim_id", sorted(k for k, v in SELF_TESTS.items() if v[2]))
def test_two_seeds_never_contradict_the_table(claim_id):
  # Paired t with one degree of freedom (t = 12.7): two seeds may resolve little, but never
  # the wrong way.
  paper, reversed_ = SELF_TESTS[claim_id][:2]
  assert CHECK[claim_id](paper(seeds=2))["verdict"] in (claims.PASS, claims.INCONCLUSIVE)
  assert CHECK[claim_id](reversed_(seeds=2))["verdict"] in (claims.FAIL, claims.INCONCLUSIVE)


class TestSeveralProblems:

  def test_one_reversed_autoencoder_problem_fails_the_claim(self):
    out = claims.nag_beats_cm(table1(swap_rules=True, only=("faces",)))
    assert out["verdict"] == claims.FAIL
    by = {}
    for c in out["numbers"]:
      if "problem" in c:  # the "usually" entry covers the whole table
        by.setdefault(c["problem"], []).append(c["outcome"])
    assert set(by) == {"curves", "mnist", "faces"}
    assert claims.FAIL not in by["curves"] + by["mnist"] and claims.FAIL in by["faces"]

  def test_one_reversed_rnn_problem_fails_the_claim(self):
    out = claims.momentum_helps_rnn(table5(swap_sgd_top=True, only=("mem5",)))
    assert out["verdict"] == claims.FAIL
    assert {c["problem"]: c["outcome"] for c in out["numbers"]} == {
        "add": claims.PASS, "mul": claims.PASS, "mem5": claims.FAIL, "mem20": claims.PASS}

  def test_cm_needs_only_one_problem_where_a_smaller_mu0_wins(self):
    # The paper's CM ladder: the largest mu_0 is best on add and mem-5, not on mul and mem-20.
    out = claims.nag_benefits_more_from_mu0(table5())
    (cm,) = [c for c in out["numbers"] if c["part"].startswith("CM")]
    assert sorted(cm["problems_where_a_smaller_mu0_wins"]) == ["mem20", "mul"]


class TestStatistics:

  def test_t_quantiles(self):
    # Student's t table: t_{0.975} with 1, 3 and many degrees of freedom.
    assert verdicts.t_critical(1) == pytest.approx(12.706, abs=1e-3)
    assert verdicts.t_critical(3) == pytest.approx(3.182, abs=1e-3)
    assert verdicts.t_critical(1e7) == pytest.approx(1.960, abs=1e-3)
    assert verdicts.t_critical(0) == math.inf

  def test_paired_by_seed(self):
    a = {"mean": 1.1, "std": 0.1, "n_seeds": 3, "values": {0: 1.0, 1: 1.2, 2: 1.1}}
    b = {"mean": 2.1, "std": 0.17, "n_seeds": 3, "values": {0: 2.0, 1: 2.3, 2: 2.0}}
    out = verdicts.compare(a, b, tol=0.05)
    # d = -1.0, -1.1, -0.9: mean -1, sd 0.1, se 0.1 / sqrt 3, 2 degrees of freedom.
    assert out["test"] == "paired t" and out["df"] == 2
    assert out["se"] == pytest.approx(0.1 / math.sqrt(3))
    assert out["diff"] == pytest.approx(-1.0) and out["sign"] == -1
    assert out["high"] == pytest.approx(-1.0 + 4.3027 * 0.1 / math.sqrt(3), abs=1e-4)

  def test_welch_degrees_of_freedom(self):
    a = {"mean": 1.0, "std": 0.1, "n_seeds": 4}
    b = {"mean": 2.0, "std": 0.2, "n_seeds": 3}
    out = verdicts.compare(a, b, tol=0.0)
    qa, qb = 0.01 / 4, 0.04 / 3
    assert out["test"] == "Welch t" and out["se"] == pytest.approx(math.sqrt(qa + qb))
    assert out["df"] == pytest.approx((qa + qb)**2 / (qa**2 / 3 + qb**2 / 2))
    assert out["df"] == pytest.approx(2.7557, abs=1e-3)

  def test_two_seeds_need_a_large_margin(self):
    # 1.0 vs 1.3, paired differences -0.2 and -0.4: se 0.1, df 1, 12.7 x 0.1 > 0.3.
    a = {"mean": 1.0, "std": 0.1, "n_seeds": 2, "values": {0: 0.9, 1: 1.1}}
    b = {"mean": 1.3, "std": 0.3, "n_seeds": 2, "values": {0: 1.1, 1: 1.5}}
    out = verdicts.compare(a, b, tol=0.01)
    assert out["df"] == 1 and not out["resolved"]

  def test_one_seed_never_resolves_and_dead_cells(self):
    one = {"mean": 1.0, "std": math.nan, "n_seeds": 1}
    assert not verdicts.compare(one, {"mean": 9.0, "std": 0.1, "n_seeds": 4}, 0.0)["resolved"]
    dead = {"mean": math.inf, "std": math.nan, "n_seeds": 3}
    out = verdicts.compare(dead, {"mean": 9.0, "std": 0.1, "n_seeds": 3}, 0.0)
    assert out["resolved"] and out["sign"] == 1
    assert not verdicts.compare({"mean": math.nan, "std": 0.1, "n_seeds": 3},
                                {"mean": 9.0, "std": 0.1, "n_seeds": 3}, 0.0)["resolved"]

  def test_a_diverged_member_is_its_own_outcome_in_rnn_cells(self):
    # 9 of 10 seeds solve the task, the 10th diverges at every learning rate: still solved.
    t = table({("add", "nag", 0.995): 0.01}, "table5", "zero_one", RNN_BASE, RNN_STEPS,
              RNN_LRS, seeds=10)
    t.loc[t["seed"] == 9, ["zero_one", "test_loss", "diverged"]] = [math.nan, math.nan, True]
    out = claims.rnn_beats_biases(t)
    assert out["verdict"] == claims.PASS
    assert out["numbers"][0]["cell"]["n_diverged"] == 1
    assert out["numbers"][0]["cell"]["n_seeds"] == 9
    # Six of ten diverged: the cell is dead (worse than anything), FAIL at full length.
    t.loc[t["seed"] >= 4, ["zero_one", "test_loss", "diverged"]] = [math.nan, math.nan, True]
    assert claims.rnn_beats_biases(t)["verdict"] == claims.FAIL

  def test_an_autoencoder_learning_rate_with_a_diverged_seed_loses(self):
    t = table({("curves", "nag", 0.99): 1.0}, "table1", "train_error", AE_BASE, AE_STEPS,
              AE_LRS)
    t.loc[(t["learning_rate"] == 0.005) & (t["seed"] == 0), "diverged"] = True
    (cell,) = verdicts.best_cells(t, "train_error", ("problem", "rule", "mu_max"))
    assert cell.learning_rate != 0.005 and cell.mean == pytest.approx(1.5, rel=0.02)


class TestLearningRateGrid:

  def cells(self, lrs_nag, lrs_sgd):
    t = pd.concat([
        table({("curves", "nag", 0.99): 5.0}, "table1", "train_error", AE_BASE, 1000, lrs_nag),
        table({("curves", "sgd", 0.0): 20.0}, "table1", "train_error", AE_BASE, 1000,
              lrs_sgd)])
    return claims.larger_mu_max_helps(t)

  def test_one_learning_rate_per_cell_is_inconclusive(self):
    out = self.cells((0.01,), (0.01,))
    assert out["verdict"] == claims.INCONCLUSIVE and "one learning rate" in out["reason"]

  def test_the_worse_cell_at_the_edge_of_its_grid_is_inconclusive(self):
    # SGD's middle value is 20, the ends 30: move its best to the edge by a two-value grid.
    out = self.cells((0.01, 0.005, 0.001), (0.05, 0.01))
    assert out["verdict"] == claims.INCONCLUSIVE and "edge" in out["reason"]

  def test_interior_winners_decide(self):
    assert self.cells((0.01, 0.005, 0.001), (0.05, 0.01, 0.005))["verdict"] == claims.PASS

  def test_an_edge_of_the_papers_grid_counts(self):
    grid = verdicts.PAPER_GRIDS["autoencoder"]
    t = pd.concat([
        table({("curves", "nag", 0.99): 5.0}, "table1", "train_error", AE_BASE, 1000, grid),
        table({("curves", "sgd", 0.0): 20.0}, "table1", "train_error", AE_BASE, 1000, grid)])
    t.loc[(t["rule"] == "sgd") & (t["learning_rate"] == 0.05), "train_error"] = 15.0
    assert claims.larger_mu_max_helps(t)["verdict"] == claims.PASS


class TestNotTrainedEnough:

  def plateau(self, steps):
    return table({("curves", "nag", 0.99): 26.0, ("curves", "cm", 0.99): 26.5,
                  ("curves", "nag", 0.995): 26.0, ("curves", "cm", 0.995): 26.5,
                  ("curves", "sgd", 0.0): 27.0}, "table1", "train_error", AE_BASE, steps,
                 AE_LRS)

  @pytest.mark.parametrize("check", [claims.nag_beats_cm, claims.larger_mu_max_helps,
                                     claims.not_overfitting])
  def test_inconclusive_when_short_fail_at_the_papers_length(self, check):
    short = check(self.plateau(1000))
    assert short["verdict"] == claims.INCONCLUSIVE and "too few updates" in short["reason"]
    assert check(self.plateau(AE_STEPS))["verdict"] == claims.FAIL

  def test_rnn(self):
    cells = {("add", "sgd", 0.0): 0.85, ("add", "nag", 0.995): 0.86}  # biases error 0.82
    short = table(cells, "table5", "zero_one", RNN_BASE, 2000, RNN_LRS, 4)
    assert claims.momentum_helps_rnn(short)["verdict"] == claims.INCONCLUSIVE
    full = table(cells, "table5", "zero_one", RNN_BASE, RNN_STEPS, RNN_LRS, 4)
    assert claims.momentum_helps_rnn(full)["verdict"] == claims.FAIL

  def test_si_scale_short(self):
    out = claims.si_scale(table3(steps=1000).assign(
        train_error=lambda t: np.where(t["init_scale"] >= 1, 20.0, 27.5)))
    assert out["verdict"] == claims.INCONCLUSIVE


def test_hf_gap_on_generated_curves_is_inconclusive():
  """The paper's HF ran on digs3pts_1.mat: generated CURVES rows cannot be held against it,
  while MNIST (files) still is."""
  rows = hf_gap().copy()
  assert claims.momentum_closes_gap_to_hf(rows)["verdict"] == claims.PASS
  rows["data"] = np.where(rows["problem"] == "curves", "generated", "file")
  out = claims.momentum_closes_gap_to_hf(rows)
  by = {c["problem"]: c for c in out["numbers"]}
  assert by["curves"]["outcome"] == claims.INCONCLUSIVE and "digs3pts_1.mat" in by["curves"]["why"]
  assert by["mnist"]["outcome"] == claims.PASS


class TestHessianFreeGates:
  # BASE 27.6: "trained" below 13.8. Both methods between 0.5 and 0.9 x BASE: neither PASS
  # nor FAIL (the gates are symmetric).

  @pytest.mark.parametrize("nag, verdict", [(16.0, claims.INCONCLUSIVE),
                                            (24.0, claims.INCONCLUSIVE),
                                            (10.0, claims.PASS), (13.5, claims.FAIL)])
  def test_symmetric(self, nag, verdict):
    hf = 10.0 if verdict != claims.INCONCLUSIVE else 17.0
    out = claims.nag_comparable_to_hf(hf_rows({"nag": (nag, nag), "hf": (hf, hf)}))
    assert out["verdict"] == verdict

  @pytest.mark.parametrize("nag, verdict", [
      (10.5, claims.INCONCLUSIVE),  # ratio 1.05: within 1.10 but not by the spread 0.08
      (10.2, claims.PASS),          # 1.02 + 0.08 <= 1.10
      (13.0, claims.INCONCLUSIVE),  # 1.30: past 1.25 but not by the spread
      (13.3, claims.FAIL)])         # 1.33 - 0.08 >= 1.25
  def test_a_margin_counts_only_beyond_the_measured_seed_spread(self, nag, verdict):
    from experiments import claims_hf  # pylint: disable=import-outside-toplevel
    assert claims_hf.SEED_SPREAD["nag_comparable_to_hf"] == 0.08
    out = claims.nag_comparable_to_hf(hf_rows({"nag": (nag, nag), "hf": (10.0, 10.0)}))
    assert out["verdict"] == verdict

  def test_diverged_nag_fails(self):
    out = claims.nag_comparable_to_hf(hf_rows({"nag": "diverged", "hf": (10.0, 10.0)}))
    assert out["verdict"] == claims.FAIL

  def test_paper_scale_rows_are_judged_at_their_final_errors(self):
    """compared_at "final" (the paper preset): only the final errors count, whatever the
    budget columns say."""
    rows = hf_rows({"nag": (30.0, 30.0), "hf": (HF_STAR,) * 2})
    rows["compared_at"] = "final"
    rows["final_error"] = [BEST_NAG, HF_STAR]
    out = claims.nag_comparable_to_hf(rows)
    assert out["verdict"] == claims.PASS
    assert [c["budget"] for c in out["numbers"]] == [
        "final errors (each method its full length)"]
    rows["final_error"] = [HF_STAR * 2, HF_STAR]
    assert claims.nag_comparable_to_hf(rows)["verdict"] == claims.FAIL

  def test_not_run(self):
    for check in claims_hf_checks():
      out = check(table1())
      assert out["verdict"] == claims.INCONCLUSIVE and out["reason"] == "HF experiment not run"


def claims_hf_checks():
  from experiments import claims_hf  # pylint: disable=import-outside-toplevel
  return claims_hf.CHECKS


def test_final_phase_needs_the_control_twin():
  out = claims.final_phase_lowers_error(table1())
  assert out["verdict"] == claims.INCONCLUSIVE and "table2_control" in out["reason"]


def test_theorem_nan_is_not_a_pass():
  rows = quadratic_rows()
  rows.loc[rows["check"] == "constant", "max_rel_diff"] = math.nan
  assert claims.theorem_holds(rows)["verdict"] == claims.INCONCLUSIVE


def test_quadratic_rate_experiments_support_their_claims():
  from experiments import quadratic_rates  # pylint: disable=import-outside-toplevel
  out = {"sqrt_r": quadratic_rates.sqrt_r_speedup((10.0, 100.0, 1000.0), n=4),
         "convex": quadratic_rates.convex_rates(200, (8, 16, 32, 64)),
         "mu_tolerance": quadratic_rates.mu_tolerance((0.8,), mus=(0.5, 0.9, 0.99)),
         "cg_vs_nag": quadratic_rates.cg_vs_nag((100.0, 1000.0), n=400)}
  rows = pd.DataFrame(quadratic_rates.rows(out))
  for check in (claims.cm_sqrt_r_speedup, claims.nag_convex_rate,
                claims.nag_tolerates_larger_mu, claims.cg_no_faster_worst_case):
    result = check(rows)
    assert result["verdict"] == claims.PASS, (result["id"], result["numbers"])


def test_every_claim_is_inconclusive_without_results():
  out = claims.check_all(pd.DataFrame(columns=["experiment"]))
  assert [c["id"] for c in out] == [f.__name__ for f in claims.CHECKS]
  assert {c["verdict"] for c in out} == {claims.INCONCLUSIVE}
  assert all(c["rule"] and c["source"] and c["reason"] for c in out)


def test_a_broken_table_gives_error_and_a_nonzero_exit():
  broken = pd.DataFrame({"experiment": ["table1"], "problem": ["curves"]})  # no error columns
  out = {c["id"]: c for c in claims.check_all(broken)}
  assert out["nag_beats_cm"]["verdict"] == claims.ERROR
  assert "checker failed" in out["nag_beats_cm"]["reason"]
  assert reproduce.exit_status({"failed": {}, "claims": list(out.values())}) == 1
  fine = claims.check_all(pd.DataFrame(columns=["experiment"]))
  assert reproduce.exit_status({"failed": {}, "claims": fine}) == 0


def test_markdown_and_json_carry_every_verdict():
  out = claims.check_all(pd.concat([table1(), table5(), quadratic_rows()], ignore_index=True))
  text = claims.to_markdown(out)
  for c in out:
    assert f"## {c['id']}: {c['verdict']}" in text
  assert [c["verdict"] for c in json.loads(claims.to_json(out))] == [c["verdict"] for c in out]
  (nag,) = [c for c in out if c["id"] == "nag_beats_cm"]
  cell = [e for e in nag["numbers"] if "nag" in e][0]["nag"]
  assert cell["paper"] == pv.cell(1, "curves", "nag", 0.995)  # the paper's value per cell
