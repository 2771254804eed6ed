"""RNN long-range-dependency problems: the paper's Table 5, through the population engine.

`python -m experiments.rnn --workdir DIR --preset quick`

Every problem of the preset (add, mul, mem5, mem20) is one population (seed x rule x mu_0 x
learning rate) in `DIR/table5/<problem>`: mu = 0.9 for the warm phase, then mu_0 (mu_0 = 0 is
plain SGD, also during the warm phase). The reported error is the zero-one error on fresh
sequences; per (problem, rule, mu_0) the learning rate with the lowest mean zero-one error over
seeds wins (ties: lower mean test loss; diverged = +inf). The "biases" column is the error of a
net that only learns its output biases (`mominit.tasks.biases_baseline`).
"""
import argparse
import pathlib
import sys
import time

import pandas as pd

from experiments import populations
from experiments import presets
from experiments import report

CELL = ("problem", "rule", "mu_max")
NAMES = {"add": "add", "mul": "mul", "mem5": "mem-5", "mem20": "mem-20"}


def baseline(config) -> float:
  """The biases baseline (zero-one error) of a config's task."""
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, center=config.center, **dict(config.task_kwargs))
  return tasks.biases_baseline(task).zero_one


def run(workdir, preset="quick", data_dir=None, progress: bool = True) -> dict:
  """Trains the Table 5 populations of a preset and builds Table 5.

  Args:
    workdir: output folder; each problem trains in `workdir/table5/<problem>`.
    preset: preset name or dict (`experiments.presets`).
    data_dir: unused (the sequences are generated); kept so every experiment has the same
      signature.
    progress: show the engine's progress bars.

  Returns:
    {"results": DataFrame (experiment "table5"; `mu_max` holds mu_0; `baseline` the biases
    zero-one error; `T` the task length), "table5": markdown, "figures": [PNG paths],
    "seconds": wall time, "configs": {problem: config dict}}.
  """
  del data_dir
  t0 = time.perf_counter()
  section = presets.get(preset)["rnn"]
  workdir = pathlib.Path(workdir)
  frames, configs, workdirs = [], {}, {}
  for problem in section["problems"]:
    config = presets.rnn_config(preset, problem, progress)
    configs[problem] = config.to_dict()
    workdirs[problem] = workdir / "table5" / problem
    frame = populations.run(config, workdirs[problem], "table5", problem, baseline(config),
                            task=config.task)
    frame["T"] = _length(config)
    frames.append(frame)
  results = pd.concat(frames, ignore_index=True)
  return {"results": results, "table5": table5(results),
          "figures": [plot(results, workdirs, workdir / "table5_curves.png")],
          "seconds": time.perf_counter() - t0, "configs": configs}


def _length(config) -> int:
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, **dict(config.task_kwargs))
  return int(dict(config.task_kwargs).get("T", getattr(task, "T", task.max_len)))


def table5(results: pd.DataFrame) -> str:
  """Table 5 in the paper's layout (markdown): rows are problems, columns the biases baseline,
  SGD, NAG at each mu_0, CM at each mu_0; cells are mean zero-one errors over seeds (± std) at
  the best learning rate."""
  if results.empty:
    return "(no RNN results)"
  best = report.best_learning_rates(results, "zero_one", CELL, tie_break="test_loss")
  mus = sorted(m for m in best["mu_max"].unique() if m > 0)
  columns = [("sgd", 0.0)] + [("nag", m) for m in mus] + [("cm", m) for m in mus]
  header = ["problem", "seeds", "biases"] + [
      "SGD" if r == "sgd" else f"{report.RULE_LABELS[r]} {m:g}" for r, m in columns]
  rows = []
  for problem in results["problem"].unique():
    mine = results[results["problem"] == problem]
    row = [f"{NAMES.get(problem, problem)} T={int(mine['T'].iloc[0])}",
           f"{mine['seed'].nunique()}", f"{mine['baseline'].iloc[0]:.3f}"]
    for r, m in columns:
      c = best[(best["problem"] == problem) & (best["rule"] == r) & (best["mu_max"] == m)]
      row.append(report.cell_text(c.iloc[0], fixed=True) if len(c) else "–")
    rows.append(row)
  return report.markdown_table(header, rows)


def plot(results: pd.DataFrame, workdirs: dict, path) -> pathlib.Path:
  """Zero-one error curves: per problem, the best learning rate of every (rule, mu_0), median
  and min-max over seeds, the biases baseline as a line (log axis; 0 drawn at 1e-3)."""
  best = report.best_learning_rates(results, "zero_one", CELL, tie_break="test_loss")
  panels, baselines = {}, {}
  for problem, folder in workdirs.items():
    curves = report.read_curves(folder, ["zero_one"])
    curves.insert(0, "problem", problem)
    mine = results[results["problem"] == problem]
    name = f"{NAMES.get(problem, problem)} T={int(mine['T'].iloc[0])}"
    panels[name] = report.best_members(curves, best, CELL)
    baselines[name] = float(mine["baseline"].iloc[0])
  return report.plot_curves(panels, "zero_one", path, baselines=baselines, floor=1e-3,
                            style=lambda v: report.line_style(v["rule"], v["mu_max"], "μ0"),
                            ylabel="zero-one error (fresh sequences)",
                            title="RNNs (Table 5): best ε per (rule, μ0); median and min-max "
                                  "over seeds; dash-dot: biases baseline")


def main(argv=None) -> None:
  """Command-line entry point."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--preset", default="quick", choices=sorted(presets.PRESETS))
  parser.add_argument("--data_dir", default=None, help="Unused (RNN data are generated).")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  print("Table 5\n" + run(args.workdir, args.preset)["table5"])


if __name__ == "__main__":
  main()
