"""Deep autoencoders: the paper's Table 1 (NAG vs CM vs SGD by mu_max) and Table 2 (the final
low-momentum phase), through the population engine.

`python -m experiments.autoencoders --workdir DIR --preset quick [--data_dir D]`, or one data
set: `--config configs/autoencoder.py:curves,quick`, with `--config.FIELD=VALUE` overrides
(`--preset quick` takes them too, for every data set).

Every data set of the plan is one population (seed x rule x mu_max x learning rate) trained by
`mominit.train.train_and_evaluate` in `DIR/table1/<dataset>`. MNIST and FACES need their files
in `--data_dir`; when they are missing the data set is skipped and the reason recorded. CURVES
uses the real `digs3pts_1.mat` if `--data_dir` holds it, else the built-in generated set.

Table 1: rows are data sets, columns SGD (mu_max 0) and NAG / CM at each mu_max; each cell is
the best learning rate of the grid, chosen on the mean over seeds of the final training error
(diverged = +inf), shown as mean ± std over seeds with the winning eps. Table 2: for NAG, the
training error when the final low-momentum phase starts and at the end.
"""
import argparse
import copy
import pathlib
import sys
import time
from typing import Optional

import pandas as pd

from configs import autoencoder as autoencoder_config
from configs import reproduce as reproduce_config
from experiments import argtypes
from experiments import cli
from experiments import host
from experiments import paper_values
from experiments import populations
from experiments import report
from experiments import report_notes
from mominit import branch

CELL = ("problem", "rule", "mu_max")
NAMES = {"curves": "CURVES", "mnist": "MNIST", "faces": "FACES"}
# Table 1's reference columns (experiments.paper_values), as the report heads them.
REFERENCE_COLUMNS = {"SGD_C": "SGD_C", "HF_dagger": "HF†", "HF_star": "HF*"}


def run(workdir, preset="quick", data_dir: Optional[str] = None, progress: bool = True,
        configs: Optional[dict] = None) -> dict:
  """Trains the Table 1 populations of a plan (and its final-phase twins) and builds Tables 1
  and 2.

  Args:
    workdir: output folder; each data set trains in `workdir/table1/<dataset>`.
    preset: a size name or a plan (configs/reproduce.py's ConfigDict or a dict); with
      `configs`, the plan whose `final_twins` also run (None: no twins).
    data_dir: folder with the MNIST / FACES (/ CURVES) files.
    progress: show the engine's progress bars.
    configs: {dataset: engine config} to train instead of the plan's data sets (the command
      line's `--config`).

  Returns:
    {"results": DataFrame (one row per member, columns experiment="table1" (or the label of
    a final-phase twin, e.g. "table2_control"), problem, init, baseline and the engine's),
    "skipped": {dataset: reason} (files absent), "unreadable": {dataset: reason} (files
    present but damaged or unreadable), "table1": markdown,
    "table2": markdown, "figures": [PNG paths], "seconds": wall time, "configs": {dataset:
    config dict}}.
  """
  t0 = time.perf_counter()
  section = reproduce_config.plan(preset)["autoencoders"] if preset is not None else {}
  given = configs or {d: reproduce_config.autoencoder_config(section, d, data_dir, progress)
                      for d in section["datasets"]}
  workdir = pathlib.Path(workdir)
  frames, skipped, configs, workdirs, twins = [], {}, {}, {}, []
  unreadable = {}
  for dataset, config in given.items():
    try:
      data = populations.autoencoder_data(dataset, config.num_train, config.num_test,
                                          data_dir or config.data_dir or None)
    except (ValueError, OSError) as e:  # DataError / MissingDataError: say why, go on.
      # An absent file skips its data set; one that is there but unreadable is a failure.
      (skipped if isinstance(e, FileNotFoundError) else unreadable)[dataset] = str(e)
      continue
    configs[dataset] = config.to_dict()
    workdirs[dataset] = workdir / "table1" / dataset
    base = populations.mean_image_error(data.train)
    frames.append(populations.run(config, workdirs[dataset], "table1", dataset, base,
                                  data=data, branch_at=_branch_points(section, config).values(),
                                  init="sparse"))
    twins += _twins(section, config, workdir, dataset, base, data)
    # Which data (claims that compare with the paper's own runs need the original files).
    source = ("generated" if dataset == "curves" and report_notes.curves_generated(data_dir)
              else "file")
    for frame in [frames[-1]] + twins:
      if "data" not in frame:
        frame["data"] = source
  results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
  figures = []
  if not results.empty:
    figures.append(plot(results, workdirs, workdir / "table1_curves.png"))
  everything = pd.concat([results] + twins, ignore_index=True) if twins else results
  return {"results": everything, "skipped": skipped, "unreadable": unreadable,
          "table1": table1(results),
          "table2": table2(results), "figures": figures,
          "seconds": time.perf_counter() - t0, "configs": configs}


def _branch_points(section, config) -> dict:
  """{twin label: k}: a twin repeats the Table 1 population's first k updates (k = one before
  the earlier of their final phases, `mominit.branch`), so it starts from the population's
  state there instead of from update 0."""
  starts = lambda final: config.steps - final if final else config.steps
  return {label: min(starts(config.final_steps), starts(int(final))) - 1
          for label, final in section.get("final_twins", {}).items()
          if min(starts(config.final_steps), starts(int(final))) > 1}


def _twins(section, config, workdir, dataset, base, data) -> list:
  """The twin populations of `section["final_twins"]` ({experiment label: final_steps}): NAG at
  every mu_max above the final mu, same seeds and learning rates, another final phase (0: none,
  continuing at mu_max to the end; the control of the "final phase helps" claim). Each starts
  from the Table 1 population's branch before the first update where they differ, when the
  population saved it (a workdir trained before branches were saved trains from update 0)."""
  frames = []
  points = _branch_points(section, config)
  for label, final_steps in section.get("final_twins", {}).items():
    twin = copy.deepcopy(config)
    twin.final_steps = int(final_steps)
    twin.sweep.rule = ["nag"]
    twin.sweep.mu_max = [m for m in config.sweep.mu_max if m > config.final_mu]
    if not twin.sweep.mu_max or "nag" not in config.sweep.rule:
      continue
    fork = branch.path(workdir / "table1" / dataset, points.get(label, 0))
    start = fork if fork.exists() and not config.get("distributed") else None
    frame = populations.run(twin, workdir / label / dataset, label, dataset, base, data=data,
                            start_from=start, init="sparse")
    frame["final_steps"] = int(final_steps)
    frames.append(frame)
  return frames


def table1(results: pd.DataFrame) -> str:
  """Table 1 in the paper's layout (markdown); see the module docstring."""
  if results.empty:
    return "(no autoencoder results)"
  best = report.best_learning_rates(results, "train_error", CELL)
  mus = sorted(m for m in best["mu_max"].unique() if m > 0)
  columns = [("sgd", 0.0)] + [(r, m) for m in mus for r in ("nag", "cm")]
  header = ["problem", "baseline"] + [
      "SGD" if r == "sgd" else f"{report.RULE_LABELS[r]} {m:g}" for r, m in columns] + [
          f"paper {c}" for c in REFERENCE_COLUMNS.values()]
  rows, ratios = [], {}
  for problem in _ordered(best["problem"].unique()):
    base = results[results["problem"] == problem]["baseline"].iloc[0]
    name = NAMES.get(problem, problem)
    row = [name, f"{base:.3g}"]
    for r, m in columns:
      cell = best[(best["problem"] == problem) & (best["rule"] == r) & (best["mu_max"] == m)]
      label = f"{name} " + ("SGD" if r == "sgd" else f"{report.RULE_LABELS[r]} {m:g}")
      row.append(report.paper_cell_text(cell.iloc[0], ratios, label) if len(cell) else "–")
    for column in REFERENCE_COLUMNS:
      value = paper_values.reference(problem, column)
      row.append("NA" if value is None else f"{value:g}")
    rows.append(row)
  return "\n\n".join([report.markdown_table(header, rows),
                       paper_values.summary_line("Table 1", ratios)])


def table2(results: pd.DataFrame) -> str:
  """Table 2 (markdown): NAG's training error before and after the final low-momentum phase.

  For every data set, the paper's layout (the best NAG cell: the mu_max and eps with the lowest
  final error) and then every NAG and CM cell with mu_max above the final-phase mu (where the
  phase changes mu), each at its best learning rate.
  """
  if results.empty or "error_before_final" not in results:
    return "(no autoencoder results)"
  best = report.best_learning_rates(results, "train_error", CELL, also=("error_before_final",))
  best = best[best["rule"] != "sgd"]
  rows, ratios = [], {}
  for problem in _ordered(best["problem"].unique()):
    cells = best[best["problem"] == problem].sort_values(["rule", "mu_max"],
                                                          ascending=[False, True])
    nag = cells[cells["rule"] == "nag"]
    for tag, group in (("best NAG", nag.loc[[nag["mean"].idxmin()]] if len(nag) else nag),
                       ("", cells)):
      for _, c in group.iterrows():
        before = report.format_error(c["error_before_final_mean"], c["error_before_final_std"],
                                     0, c["n_seeds"])
        after = report.format_error(c["mean"], c["std"], c["n_diverged"], c["n_seeds"])
        if tag:  # the paper's Table 2 cell: its best NAG cell, whatever its mu_max
          name = NAMES.get(problem, problem)
          pairs = []
          for phase, ours in (("before", c["error_before_final_mean"]), ("after", c["mean"])):
            paper = paper_values.cell(2, problem, "nag", phase=phase)
            r = paper_values.ratio(ours, paper)
            ratios[f"{name} {phase}"] = r
            pairs.append(paper_values.format_pair(before if phase == "before" else after,
                                                  paper, r))
          before, after = pairs
        rows.append([NAMES.get(problem, problem), tag or report.RULE_LABELS[c["rule"]],
                     f"{c['mu_max']:g}", f"{c['learning_rate']:g}", before, after])
  return "\n\n".join([
      report.markdown_table(["problem", "cell", "μmax", "ε", "before", "after"], rows),
      paper_values.summary_line("Table 2 (best NAG cell)", ratios)])


def _ordered(problems):
  order = list(NAMES)
  return sorted(problems, key=lambda p: (order.index(p) if p in order else len(order), p))


def plot(results: pd.DataFrame, workdirs: dict, path) -> pathlib.Path:
  """Learning curves of Table 1: per data set, the best learning rate of every (rule, mu_max),
  median and min-max over seeds of the training error (log axis)."""
  best = report.best_learning_rates(results, "train_error", CELL)
  panels, baselines = {}, {}
  for problem, folder in workdirs.items():
    curves = report.read_curves(folder, ["train_error"])
    curves.insert(0, "problem", problem)
    name = NAMES.get(problem, problem)
    panels[name] = report.best_members(curves, best, CELL)
    baselines[name] = float(results[results["problem"] == problem]["baseline"].iloc[0])
  phases = {NAMES.get(p, p): report.phases_of(folder) for p, folder in workdirs.items()}
  return report.plot_curves(panels, "train_error", path, baselines=baselines, phases=phases,
                            ylabel="training squared error",
                            title="Deep autoencoders (Table 1): best ε per (rule, μmax); "
                                  "median and min-max over seeds; dash-dot: mean-image error")


def main(argv=None) -> int:
  """Command-line entry point; returns the exit status (1: a data file could not be read)."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--config", default=None,
                      help="configs/autoencoder.py:DATASET,SIZE: one data set (with SIZE, its "
                           "final-phase twins of the plan too).")
  parser.add_argument("--preset", default=None, choices=sorted(reproduce_config.SIZES),
                      help="Every data set of that size (default quick).")
  parser.add_argument("--data_dir", default=None, type=argtypes.existing_dir,
                      help="Folder with MNIST / FACES files.")
  overrides, rest = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(rest)
  datasets = reproduce_config.plan(args.preset or "quick")["autoencoders"]["datasets"]
  size, configs = cli.population_configs(args.config, args.preset, autoencoder_config.__file__,
                                         datasets, "curves", overrides)
  for config in configs.values():
    config.data_dir = args.data_dir or config.data_dir
    config.progress = True
  out = run(args.workdir, size or None, args.data_dir, configs=configs)
  print("Table 1\n" + out["table1"] + "\n\nTable 2\n" + out["table2"])
  for dataset, reason in out["skipped"].items():
    print(f"skipped {dataset}: {reason}")
  for dataset, reason in out["unreadable"].items():
    print(f"error: {dataset} could not be read: {reason}", file=sys.stderr)
  return 1 if out["unreadable"] else 0


if __name__ == "__main__":
  sys.exit(main())
