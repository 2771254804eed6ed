"""Initialization scale: the paper's Table 3 (sparse init times 1/4 ... 4) and the poorly scaled
dense Gaussian N(0, 0.01^2) "bad initialization", through the population engine.

`python -m experiments.init_scale --workdir DIR --preset quick [--data_dir D]`, or one of the
two populations: `--config configs/init_scale.py:sparse,quick` (or `gaussian,quick`), with
`--config.FIELD=VALUE` overrides (`--preset quick` takes them too, for both).

Two populations on the plan's data set (CURVES): `DIR/table3/<dataset>` sweeps the SI scale
multiplier (a traced `init_scale`, so one compilation), `DIR/gaussian/<dataset>` trains the
Gaussian init (another compilation: the init kind is static) with momentum. Each cell is the
best learning rate (lowest mean final training error over seeds).
"""
import argparse
import pathlib
import sys
import time
from typing import Optional

import numpy as np
import pandas as pd

from configs import init_scale as init_scale_config
from configs import reproduce as reproduce_config
from experiments import argtypes
from experiments import autoencoders
from experiments import cli
from experiments import host
from experiments import paper_values
from experiments import populations
from experiments import report

SCALE_CELL = ("problem", "rule", "mu_max", "init_scale")


EXPERIMENTS = {"table3": "sparse", "gaussian": "gaussian"}  # experiment label -> init


def run(workdir, preset="quick", data_dir: Optional[str] = None, progress: bool = True,
        configs: Optional[dict] = None) -> dict:
  """Trains the Table 3 and Gaussian-init populations of a plan and builds Table 3.

  Args:
    workdir: output folder.
    preset: a size name, a plan (configs/reproduce.py's ConfigDict or a dict); None with
      `configs`.
    data_dir: folder with the data files (CURVES falls back to the generated set).
    progress: show the engine's progress bars.
    configs: {"table3" and / or "gaussian": engine config} to train instead of the plan's
      (the command line's `--config`); they must share one data set.

  Returns:
    {"results": DataFrame (experiment "table3" and "gaussian" rows), "skipped": {name:
    reason}, "table3": markdown, "figures": [PNG paths], "seconds": wall time, "configs":
    {name: config dict}}.
  """
  t0 = time.perf_counter()
  if configs is None:
    section = reproduce_config.plan(preset)["init_scale"]
    configs = {experiment: reproduce_config.init_scale_config(section, init, data_dir, progress)
               for experiment, init in EXPERIMENTS.items()}
  first = next(iter(configs.values()))
  dataset = first.dataset
  workdir = pathlib.Path(workdir)
  try:
    data = populations.autoencoder_data(dataset, first.num_train, first.num_test,
                                        data_dir or first.data_dir or None)
  except (ValueError, OSError) as e:  # absent: skipped; present but unreadable: a failure
    kind = "skipped" if isinstance(e, FileNotFoundError) else "unreadable"
    return {"results": pd.DataFrame(), "skipped": {}, "unreadable": {}, kind: {dataset: str(e)},
            "table3": "(skipped)", "figures": [], "seconds": time.perf_counter() - t0,
            "configs": {}}
  baseline = populations.mean_image_error(data.train)
  frames, workdirs = [], {}
  for experiment, config in configs.items():
    workdirs[experiment] = workdir / experiment / dataset
    frames.append(populations.run(config, workdirs[experiment], experiment, dataset, baseline,
                                  data=data, init=EXPERIMENTS[experiment]))
  results = pd.concat(frames, ignore_index=True)
  figures = [plot(results, workdirs, workdir / "table3_curves.png")] if len(workdirs) == 2 else []
  return {"results": results, "skipped": {}, "unreadable": {}, "table3": table3(results),
          "figures": figures, "seconds": time.perf_counter() - t0,
          "configs": {experiment: config.to_dict() for experiment, config in configs.items()}}


def table3(results: pd.DataFrame) -> str:
  """Table 3 (markdown): columns are SI scale multipliers, one row per (problem, rule, mu_max);
  then the poorly scaled Gaussian init, one row per (rule, mu_max)."""
  if results.empty:
    return "(no init-scale results)"
  sparse = results[results["experiment"] == "table3"]
  gauss = results[results["experiment"] == "gaussian"]
  scales = sorted(sparse["init_scale"].unique())
  lines = []
  if len(sparse):
    best = report.best_learning_rates(sparse, "train_error", SCALE_CELL)
    rows, ratios = [], {}
    for (problem, rule, mu), cells in best.groupby(["problem", "rule", "mu_max"]):
      row = [f"{autoencoders.NAMES.get(problem, problem)}, {report.RULE_LABELS[rule]} "
             f"μmax={mu:g}", f"{cells['n_seeds'].max()}"]
      for s in scales:
        c = cells[np.isclose(cells["init_scale"], s)]
        row.append(report.paper_cell_text(c.iloc[0], ratios, f"× {_fraction(s)}")
                   if len(c) else "–")
      rows.append(row)
    lines.append(report.markdown_table(
        ["SI scale multiplier", "seeds"] + [_fraction(s) for s in scales], rows))
    lines.append(paper_values.summary_line("Table 3", ratios) + " The paper's row is most "
                 "likely CURVES with NAG at μmax 0.999 (its ×1 value is Table 1's CURVES "
                 "0.999N; the paper does not say), so it is compared with every row here.")
  if len(gauss):
    best = report.best_learning_rates(gauss, "train_error", autoencoders.CELL)
    rows = [[f"{autoencoders.NAMES.get(c['problem'], c['problem'])}, dense N(0, 0.01²) init",
             report.RULE_LABELS[c["rule"]], f"{c['mu_max']:g}", f"{c['n_seeds']}",
             report.cell_text(c)] for _, c in best.iterrows()]
    lines.append(report.markdown_table(["poorly scaled Gaussian", "rule", "μmax", "seeds",
                                        "training error"], rows))
    lines.append("The poorly scaled Gaussian is our extension (the paper states the claim but "
                 "publishes no number for it).")
  base = results["baseline"].iloc[0]
  lines.append(f"Mean-image error (a net stuck on the plateau): {base:.3g}.")
  return "\n\n".join(lines)


def _fraction(s: float) -> str:
  return {0.25: "1/4", 0.5: "1/2"}.get(float(s), f"{s:g}")


def _scale_style(values):
  scale = float(values["init_scale"])
  color = {0.25: "#d95f02", 0.5: "#e6ab02", 1.0: "#1b9e77", 2.0: "#7570b3", 4.0: "#e7298a"}
  return {"color": color.get(scale, "0.4"), "linestyle": "-",
          "label": f"SI × {_fraction(scale)} ({report.RULE_LABELS[values['rule']]} "
                   f"μmax={values['mu_max']:g})"}


def plot(results: pd.DataFrame, workdirs: dict, path) -> pathlib.Path:
  """Learning curves: SI scales (left) and the Gaussian init next to SI scale 1 (right)."""
  panels = {}
  sparse = results[results["experiment"] == "table3"]
  best = report.best_learning_rates(sparse, "train_error", SCALE_CELL)
  curves = report.read_curves(workdirs["table3"], ["train_error"])
  curves.insert(0, "problem", sparse["problem"].iloc[0])
  sparse_curves = report.best_members(curves, best, SCALE_CELL)
  panels["sparse init (SI) × scale"] = sparse_curves
  gauss = results[results["experiment"] == "gaussian"]
  gbest = report.best_learning_rates(gauss, "train_error", autoencoders.CELL)
  gcurves = report.read_curves(workdirs["gaussian"], ["train_error"])
  gcurves.insert(0, "problem", gauss["problem"].iloc[0])
  gcurves = report.best_members(gcurves, gbest, autoencoders.CELL)
  gcurves["init_scale"] = -1.0  # marks the Gaussian curves for the style below
  reference = sparse_curves[np.isclose(sparse_curves["init_scale"], 1.0)]
  panels["dense N(0, 0.01²) vs SI × 1"] = pd.concat([gcurves, reference], ignore_index=True)

  def style(values):
    if values["init_scale"] < 0:
      kw = report.line_style(values["rule"], values["mu_max"])
      return {**kw, "label": "N(0, 0.01²) " + kw["label"]}
    return _scale_style(values)

  base = float(results["baseline"].iloc[0])
  return report.plot_curves(panels, "train_error", path,
                            group=("init_scale", "rule", "mu_max"), style=style,
                            baselines={k: base for k in panels},
                            phases={k: report.phases_of(workdirs["table3"]) for k in panels},
                            ylabel="training squared error",
                            title="Initialization (Table 3): best ε per curve; median and "
                                  "min-max over seeds; dash-dot: mean-image error")


def main(argv=None) -> int:
  """Command-line entry point; returns the exit status (1: a data file could not be read)."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--config", default=None,
                      help="configs/init_scale.py:INIT,SIZE (INIT sparse or gaussian): one "
                           "population.")
  parser.add_argument("--preset", default=None, choices=sorted(reproduce_config.SIZES),
                      help="Both populations of that size (default quick).")
  parser.add_argument("--data_dir", default=None, type=argtypes.existing_dir,
                      help="Folder with the data files.")
  overrides, rest = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(rest)
  if args.config and args.preset:
    cli.fail("give --config or --preset, not both")
  specs = [args.config] if args.config else [
      f"{init_scale_config.__file__}:{init},{args.preset or 'quick'}"
      for init in EXPERIMENTS.values()]
  labels = {init: experiment for experiment, init in EXPERIMENTS.items()}
  configs = {}
  for spec in specs:
    try:
      config = cli.load_config(spec, overrides)
    except ValueError as e:
      cli.fail(e)
    if config.init not in labels:
      cli.fail(f"--config {spec}: init must be 'sparse' or 'gaussian', got {config.init!r}")
    config.data_dir = args.data_dir or config.data_dir
    config.progress = True
    configs[labels[config.init]] = config
  out = run(args.workdir, None, args.data_dir, configs=configs)
  print("Table 3\n" + out["table3"])
  for dataset, reason in out["unreadable"].items():
    print(f"error: {dataset} could not be read: {reason}", file=sys.stderr)
  return 1 if out["unreadable"] else 0


if __name__ == "__main__":
  sys.exit(main())
