"""The reproduction pipeline: best-learning-rate tables on hand-made results, presets, and the
tiny preset end to end (report.md, PNGs, results.csv, claims.json)."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from configs import autoencoder as autoencoder_config
from configs import init_scale as init_scale_config
from configs import reproduce as reproduce_config
from configs import rnn as rnn_config
from experiments import autoencoders
from experiments import claims
from experiments import populations
from experiments import report
from experiments import reproduce
from experiments import rnn
from mominit import train
from mominit.data import curves


def members(cell_errors, **const):
  """Rows of a hand-made results table: {(rule, mu, lr): [error per seed or None=diverged]}."""
  rows = []
  for (rule, mu, lr), errors in cell_errors.items():
    for seed, e in enumerate(errors):
      rows.append({"problem": "curves", "rule": rule, "mu_max": mu, "learning_rate": lr,
                   "seed": seed, "train_error": float("nan") if e is None else e,
                   "error_before_final": 99.0, "diverged": e is None, "baseline": 27.6,
                   **const})
  return pd.DataFrame(rows)


HAND_MADE = members({
    # NAG 0.99: lr 0.05 has the lowest single error (1.0) but a diverged seed: +inf mean, so it
    # loses; lr 0.01 (mean 6) beats lr 0.001 (mean 8.5).
    ("nag", 0.99, 0.05): [1.0, None],
    ("nag", 0.99, 0.01): [5.0, 7.0],
    ("nag", 0.99, 0.001): [8.0, 9.0],
    # CM 0.99: a NaN error without the diverged flag also counts as +inf.
    ("cm", 0.99, 0.05): [2.0, float("nan")],
    ("cm", 0.99, 0.01): [10.0, 12.0],
    # SGD: every learning rate has a diverged seed: the cell is "diverged".
    ("sgd", 0.0, 0.05): [None, 20.0],
    ("sgd", 0.0, 0.01): [21.0, None],
})


def test_best_learning_rate_per_cell():
  best = report.best_learning_rates(HAND_MADE, "train_error").set_index(["rule", "mu_max"])
  nag = best.loc[("nag", 0.99)]
  assert nag["learning_rate"] == 0.01
  assert nag["mean"] == 6.0 and nag["min"] == 5.0 and nag["max"] == 7.0
  assert nag["std"] == pytest.approx(math.sqrt(2.0))  # sample std of (5, 7)
  assert nag["n_seeds"] == 2 and nag["n_diverged"] == 0
  assert json.loads(nag["candidates"]) == {"0.001": 8.5, "0.01": 6.0, "0.05": math.inf}
  cm = best.loc[("cm", 0.99)]
  assert cm["learning_rate"] == 0.01 and cm["mean"] == 11.0
  sgd = best.loc[("sgd", 0.0)]
  assert math.isinf(sgd["mean"]) and sgd["n_diverged"] == 1
  assert sgd["learning_rate"] == 0.01  # all inf: ties go to the smaller learning rate
  assert report.format_error(sgd["mean"], sgd["std"], sgd["n_diverged"], 2) == "diverged (1/2)"


def test_best_learning_rates_after_a_csv_round_trip(tmp_path):
  # results.csv mixes experiments: `diverged` is empty (NaN) on the quadratic rows, so pandas
  # reads it back as an object column; NaN must not count as diverged.
  quadratic = pd.DataFrame({"experiment": ["quadratic"], "check": ["constant"]})
  both = pd.concat([HAND_MADE.assign(experiment="table1"), quadratic], ignore_index=True)
  both.to_csv(tmp_path / "r.csv", index=False)
  back = pd.read_csv(tmp_path / "r.csv")
  back = back[back["experiment"] == "table1"]
  assert back["diverged"].dtype == object
  best = report.best_learning_rates(back, "train_error").set_index(["rule", "mu_max"])
  assert best.loc[("nag", 0.99), "mean"] == 6.0
  assert best.loc[("nag", 0.99), "learning_rate"] == 0.01
  nan_flag = pd.DataFrame({"diverged": [float("nan"), True, False, "True"]})
  assert report.diverged_flags(nan_flag).tolist() == [False, True, False, True]


def test_tie_break_column():
  table = pd.DataFrame({"problem": "add", "rule": "nag", "mu_max": 0.9, "seed": [0, 1, 0, 1],
                        "learning_rate": [1e-3, 1e-3, 1e-4, 1e-4], "zero_one": 0.0,
                        "test_loss": [0.2, 0.2, 0.1, 0.1], "diverged": False})
  assert report.best_learning_rates(table, "zero_one")["learning_rate"].item() == 1e-4
  table["test_loss"] = [0.1, 0.1, 0.2, 0.2]
  best = report.best_learning_rates(table, "zero_one", tie_break="test_loss")
  assert best["learning_rate"].item() == 1e-3


def test_best_learning_rates_names_missing_columns():
  with pytest.raises(ValueError, match="train_error"):
    report.best_learning_rates(HAND_MADE.drop(columns="train_error"), "train_error")


def test_table1_layout():
  text = autoencoders.table1(HAND_MADE)
  table, summary = text.split("\n\n")
  header, _, row = table.splitlines()
  assert header.split(" | ")[2:] == ["SGD", "NAG 0.99", "CM 0.99", "paper SGD_C", "paper HF†",
                                     "paper HF* |"]
  cells = row.strip("| ").split(" | ")
  assert cells[0] == "CURVES"
  # Without an `experiment` label the rows are not the paper's cells: no paper values.
  assert cells[2] == "diverged (1/2)<br>ε=0.01"
  assert cells[3] == "6.00 ± 1.4<br>ε=0.01"
  assert cells[4] == "11.0 ± 1.4<br>ε=0.01"
  assert cells[5:] == ["0.16", "0.058", "0.11"]  # Table 1's reference columns for Curves
  assert summary == "Table 1 vs the paper: no cell the paper also reports."


def test_table1_shows_the_papers_values_and_ratios():
  table = HAND_MADE.assign(experiment="table1")
  text = autoencoders.table1(table)
  cells = text.split("\n\n")[0].splitlines()[2].strip("| ").split(" | ")
  # NAG 0.99: mean 6.0 against the paper's 0.096 -> x62.5; CM 0.99: 11.0 / 0.10 = x110.
  assert cells[3] == "6.00 ± 1.4 (paper 0.096, x62.5)<br>ε=0.01"
  assert cells[4] == "11.0 ± 1.4 (paper 0.1, x110)<br>ε=0.01"
  assert cells[2] == "diverged (1/2) (paper 0.48, x∞)<br>ε=0.01"
  # Median of (62.5, 110) (the inf ratio is left out of the median) and the farthest cell.
  assert text.split("\n\n")[1] == ("Table 1 vs the paper: median ratio (ours / paper) x86.2 "
                                    "over 2 cells; farthest cell: CURVES SGD x∞.")
  best = report.best_learning_rates(table, "train_error")
  numbers = claims._cell_numbers(best[best["rule"] == "nag"].iloc[0])
  assert numbers["paper"] == 0.096 and numbers["ratio"] == pytest.approx(62.5)
  assert numbers["paper_table"] == 1


def test_table5_averages_seeds_at_the_best_learning_rate():
  table = pd.DataFrame({
      "problem": "add", "T": 80, "baseline": 0.9, "diverged": False,
      "rule": ["sgd"] * 4 + ["nag"] * 4, "mu_max": [0.0] * 4 + [0.995] * 4,
      "learning_rate": [1e-3, 1e-3, 1e-4, 1e-4] * 2, "seed": [0, 1] * 4,
      "zero_one": [0.5, 0.7, 0.8, 0.8, 0.1, 0.3, 0.02, 0.04], "test_loss": 0.1})
  row = rnn.table5(table).splitlines()[2].strip("| ").split(" | ")
  assert row[:3] == ["add T=80", "2", "0.900 (paper 0.82, x1.1)"]
  assert row[3] == "0.600 ± 0.141<br>ε=0.001"  # SGD: mean(0.5, 0.7) beats mean(0.8, 0.8)
  assert row[4] == "0.030 ± 0.014<br>ε=0.0001"


def test_table5_memorization_in_the_papers_unit():
  """mem-5 scored on its 5 recall steps: a fraction of 0.126 is 0.63 wrong steps per sequence,
  Table 5's 0.995N value exactly; the biases fraction 0.5 is the paper's 2.5."""
  table = pd.DataFrame({
      "experiment": "table5", "problem": "mem5", "T": 200, "baseline": 0.5, "diverged": False,
      "paper_unit_factor": 5.0, "rule": "nag", "mu_max": 0.995, "learning_rate": 1e-4,
      "seed": [0, 1], "zero_one": [0.120, 0.132], "test_loss": 0.1})
  text = rnn.table5(table)
  row = text.splitlines()[2].strip("| ").split(" | ")
  assert row[2] == "0.500 = 2.5/seq (paper 2.5, x1)"
  assert row[4] == "0.126 ± 0.008 = 0.63/seq (paper 0.63, x1)<br>ε=0.0001"
  assert text.endswith("median ratio (ours / paper) x1 over 1 cells; farthest cell: mem-5 "
                       "NAG 0.995 x1.")


def test_presets_produce_valid_configs():
  for name in reproduce_config.SIZES:
    p = reproduce_config.plan(name)
    for dataset in p["autoencoders"]["datasets"]:
      train.validate_config(autoencoder_config.get_config(f"{dataset},{name}"))
    for init in ("sparse", "gaussian"):
      train.validate_config(init_scale_config.get_config(f"{init},{name}"))
    for problem in p["rnn"]["problems"]:
      train.validate_config(rnn_config.get_config(f"{problem},{name}"))
  paper = reproduce_config.plan("paper")
  assert paper["autoencoders"]["steps"] == 750_000 and paper["rnn"]["steps"] == 50_000
  assert paper["rnn"]["seeds"] == tuple(range(4))  # Table 5: mean over 4 seeds
  assert paper["autoencoders"]["learning_rates"] == (0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001)
  with pytest.raises(ValueError, match="valid presets"):
    reproduce_config.plan("huge")


@pytest.mark.parametrize("name", ["quick", "medium"])
def test_reduced_schedules_reach_mu_max_before_the_final_phase(name):
  # mu_t = 1 - 1 / (2 (floor(t / period) + 1)) reaches mu_max at t = period * (ceil(1 / (2 (1 -
  # mu_max))) - 1); it must do so well before the final phase starts.
  section = reproduce_config.plan(name)["autoencoders"]
  mu = max(section["mu_max"])
  reach = section["momentum_period"] * (math.ceil(round(1 / (2 * (1 - mu)), 9)) - 1)
  assert reach < 0.5 * (section["steps"] - section["final_steps"])


def test_mean_image_error_closed_form():
  x = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 4.0]])  # mean (1, 2)
  # per case: (1 + 1), (0 + 1), (1 + 4) -> mean 8 / 3
  assert populations.mean_image_error(x) == pytest.approx(8 / 3)


def test_resuming_a_workdir_with_another_config_is_refused(tmp_path):
  config = rnn_config.get_config("add,tiny")
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  populations.check_workdir(config, tmp_path)  # same config: fine
  config.steps += 1
  with pytest.raises(ValueError, match="steps"):
    populations.check_workdir(config, tmp_path)
  # A field added to the engine since (None: off) is the same run; a set one is not.
  config.steps -= 1
  saved = json.loads(config.to_json_best_effort())
  (tmp_path / "config.json").write_text(json.dumps(saved))
  config.added_since = None
  populations.check_workdir(config, tmp_path)
  config.added_since = 3
  with pytest.raises(ValueError, match=r"\['added_since'\]"):
    populations.check_workdir(config, tmp_path)


def test_missing_or_failing_extras_are_reported(tmp_path, monkeypatch):
  import importlib
  real = importlib.import_module

  def fake(name, *args):
    if name == "experiments.hf":
      raise ModuleNotFoundError("No module named 'experiments.hf'")
    if name == "experiments.glorot":
      raise RuntimeError("glorot exploded")
    return real(name, *args)

  monkeypatch.setattr(importlib, "import_module", fake)
  status = reproduce.main(["--preset", "tiny", "--workdir", str(tmp_path), "--experiments",
                           "hf,glorot", "--no_progress"])
  assert status == 0  # extras never fail the run
  text = (tmp_path / "report.md").read_text()
  assert "module missing" in text and "glorot exploded" in text


def test_hf_study_reaches_results_and_claims(tmp_path):
  out = reproduce.run(tmp_path, "tiny", experiments=["hf"], progress=False)
  assert out["failed"] == {}
  results = pd.read_csv(tmp_path / "results.csv")
  rows = results[results["experiment"] == "hf"].set_index("variant")
  assert set(rows.index) == {"hf", "hf_no_warm_start", "hf_momentum_like", "hf_1cg", "nag"}
  # The baseline is the mean-image error of the generated training subset, recomputed here.
  x = curves.generate(2000, 0, 0).train.astype(np.float64)
  np.testing.assert_allclose(rows["baseline"], np.mean(np.sum((x - x.mean(0))**2, axis=1)),
                             rtol=1e-9)
  # The main HF run sets the budgets: its error at E is its final error, and every other
  # method ran until it had used E.
  hf_row = rows.loc["hf"]
  assert hf_row["error_at_equal_evals"] == hf_row["final_error"]
  assert (rows["evals"] >= hf_row["evals"]).all()
  quad = results[results["experiment"] == "hf_quadratic"].set_index("solver")
  # q(0) = 0 and CG decreases q at every iteration, so its q is negative and at or above q*
  # (float32: up to 1e-5 |q*| of rounding once CG has converged).
  cg = quad.loc["cg"]
  tol = 1e-5 * abs(cg["q_reference"])
  assert cg["q_final"] <= cg["q_half"] + tol and cg["q_half"] <= cg["q_10"] + tol
  assert cg["q_10"] < 0 and cg["q_final"] >= cg["q_reference"] - tol
  got = {c["id"]: c for c in json.loads((tmp_path / "claims.json").read_text())}
  for claim in ("nag_comparable_to_hf", "momentum_like_hf_works", "hf_warm_start_helps",
                "cg_ahead_of_nag_on_hf_quadratic"):
    assert got[claim]["numbers"], claim  # the HF rows were found and compared
  assert "Hessian-free" in (tmp_path / "report.md").read_text()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("tiny")
  out = reproduce.run(workdir, "tiny", experiments=reproduce.CORE, progress=False)
  return workdir, out


def test_tiny_preset_end_to_end(tiny_run):
  workdir, out = tiny_run
  assert out["failed"] == {}
  for name in ("report.md", "results.csv", "claims.json", "claims.md", "table1_curves.png",
               "table3_curves.png", "table5_curves.png", "quadratic/quadratic.png"):
    assert (workdir / name).stat().st_size > 0, name
  results = pd.read_csv(workdir / "results.csv")
  assert set(results["experiment"]) == {"table1", "table2_control", "table3", "gaussian",
                                        "table5", "quadratic", "quadratic_rates"}
  # One row per member: Table 1 2 seeds x (SGD + 2 rules x 2 mu_max) x 3 lr = 30; its control
  # twin (final_steps 0) 2 seeds x NAG at mu_max 0.99 x 3 lr = 6; five SI scales; two Gaussian
  # rules; Table 5 2 seeds x (SGD + 2 rules x 2 mu_0) x 3 lr = 30.
  counts = results["experiment"].value_counts()
  assert counts["table1"] == 30 and counts["table3"] == 5 and counts["gaussian"] == 2
  assert counts["table2_control"] == 6 and counts["table5"] == 30
  got = json.loads((workdir / "claims.json").read_text())
  assert [c["id"] for c in got] == [f.__name__ for f in claims.CHECKS]
  assert all(c["verdict"] in (claims.PASS, claims.FAIL, claims.INCONCLUSIVE) and c["rule"]
             for c in got)
  verdicts = {c["id"]: c["verdict"] for c in got}
  assert verdicts["theorem_holds"] == claims.PASS


def test_tiny_report_matches_the_results(tiny_run):
  workdir, _ = tiny_run
  results = pd.read_csv(workdir / "results.csv")
  text = (workdir / "report.md").read_text()
  for needed in ("Table 1", "Table 2", "Table 3", "Table 5", "Theorem 2.1", "jax",
                 "Wall time", "table1_curves.png", "Deviations"):
    assert needed in text, needed
  # The SGD cell of Table 1, recomputed here: the learning rate with the lowest mean over seeds.
  sgd = results[(results["experiment"] == "table1") & (results["rule"] == "sgd")]
  sgd = sgd.assign(e=np.where(sgd["diverged"].astype(str) == "True", np.inf, sgd["train_error"]))
  means = sgd.groupby("learning_rate")["e"].mean()
  lr = means.idxmin()
  assert f"{means.min():#.3g}".rstrip(".") + " ± " in text and f"ε={lr:g}" in text
  # The baseline is the mean-image error of the 200 generated training cases.
  from mominit.data import curves
  x = curves.generate(200, 50).train.astype(np.float64)
  base = np.mean(np.sum((x - x.mean(0)) ** 2, axis=1))
  assert results[results["experiment"] == "table1"]["baseline"].iloc[0] == pytest.approx(base)
  # MNIST/FACES files are absent (unless $MOMINIT_DATA_DIR has them): the report says why.
  if "mnist" not in set(results["problem"]):
    assert "MNIST skipped" in text


def test_rnn_studies_build_one_population_per_study(tmp_path, monkeypatch):
  """The medium preset's RNN studies: NAG at the largest mu_0, every learning rate and seed, with
  the swept axis set (input scales, spectral radii) or centring off; nothing trains here."""
  from experiments import rnn  # pylint: disable=import-outside-toplevel
  seen = []
  monkeypatch.setattr(populations, "run", lambda config, workdir, label, problem, *a, **k: (
      seen.append((label, problem, config)) or pd.DataFrame({"experiment": [label]})))
  section = reproduce_config.plan("medium")["rnn"]
  rnn._studies(section, {p: reproduce_config.rnn_config(section, p)
                         for p in section["problems"]}, tmp_path)
  by = {label: (problem, config) for label, problem, config in seen}
  assert set(by) == {"rnn_input_scale", "rnn_radius", "rnn_center"}
  problem, config = by["rnn_radius"]
  assert problem == "add" and list(config.sweep.spectral_radius) == [0.5, 1.1, 2.0]
  assert list(config.sweep.input_scale) == [0.0] and config.center
  for problem, config in by.values():
    assert list(config.sweep.rule) == ["nag"] and list(config.sweep.mu_max) == [0.995]
    assert list(config.sweep.learning_rate) == list(section["learning_rates"])
  assert list(by["rnn_input_scale"][1].sweep.input_scale) == [1e-4, 1e-3, 1e-2, 1e-1]
  assert not by["rnn_center"][1].center and by["rnn_center"][0] == "mul"
