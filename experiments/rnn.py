"""RNN long-range-dependency problems: the paper's Table 5, through the population engine.

`python -m experiments.rnn --workdir DIR --preset quick`, or one problem:
`--config configs/rnn.py:add,quick`, with `--config.FIELD=VALUE` overrides (`--preset quick`
takes them too, for every problem).

Every problem of the plan (add, mul, mem5, mem20) is one population (seed x rule x mu_0 x
learning rate) in `DIR/table5/<problem>`: mu = 0.9 for the warm phase, then mu_0 (mu_0 = 0 is
plain SGD, also during the warm phase). The reported error is the zero-one error on fresh
sequences; per (problem, rule, mu_0) the learning rate with the lowest mean zero-one error over
seeds wins (ties: lower mean test loss; diverged = +inf). The "biases" column is the error of a
net that only learns its output biases (`mominit.tasks.biases_baseline`).
"""
import argparse
import copy
import math
import pathlib
import sys
import time
from typing import Optional

import pandas as pd

from configs import reproduce as reproduce_config
from configs import rnn as rnn_config
from experiments import cli
from experiments import host
from experiments import paper_values
from experiments import populations
from experiments import report

CELL = ("problem", "rule", "mu_max")
NAMES = {"add": "add", "mul": "mul", "mem5": "mem-5", "mem20": "mem-20"}


def baseline(config) -> float:
  """The biases baseline (zero-one error) of a config's task."""
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, center=config.center, **dict(config.task_kwargs))
  return tasks.biases_baseline(task).zero_one


def run(workdir, preset="quick", data_dir=None, progress: bool = True,
        configs: Optional[dict] = None) -> dict:
  """Trains the Table 5 populations of a plan, its RNN studies, and builds Table 5.

  Args:
    workdir: output folder; each problem trains in `workdir/table5/<problem>`.
    preset: a size name or a plan (configs/reproduce.py's ConfigDict or a dict); with
      `configs`, the plan whose studies of those problems also run (None: no study).
    data_dir: unused (the sequences are generated); kept so every experiment has the same
      signature.
    progress: show the engine's progress bars.
    configs: {problem: engine config} to train instead of the plan's problems (the command
      line's `--config`).

  Returns:
    {"results": DataFrame (experiment "table5"; `mu_max` holds mu_0; `baseline` the biases
    zero-one error; `T` the task length; `paper_unit_factor`, see that function),
    "table5": markdown, "figures": [PNG paths],
    "seconds": wall time, "configs": {problem: config dict}}.
  """
  del data_dir
  t0 = time.perf_counter()
  section = reproduce_config.plan(preset)["rnn"] if preset is not None else {}
  if configs is None:
    configs = {problem: reproduce_config.rnn_config(section, problem, progress)
               for problem in section["problems"]}
  bases = copy.deepcopy(configs)  # the studies' starting points, as given
  workdir = pathlib.Path(workdir)
  frames, workdirs = [], {}
  for problem, config in configs.items():
    workdirs[problem] = workdir / "table5" / problem
    frame = populations.run(config, workdirs[problem], "table5", problem, baseline(config),
                            task=config.task)
    frame["T"] = _length(config)
    frame["paper_unit_factor"] = paper_unit_factor(config)
    frames.append(frame)
  results = pd.concat(frames, ignore_index=True)
  studies = _studies(section, bases, workdir)
  everything = pd.concat([results] + studies, ignore_index=True) if studies else results
  return {"results": everything, "table5": table5(results),
          "figures": [plot(results, workdirs, workdir / "table5_curves.png")],
          "seconds": time.perf_counter() - t0,
          "configs": {problem: config.to_dict() for problem, config in bases.items()}}


def _studies(section, configs, workdir) -> list:
  """The input-scale (`section["input_scales"]`: {problem: scales}), spectral-radius
  (`section["spectral_radii"]`: {problem: radii}) and centring (`section["uncentred"]`:
  problems) studies of `experiments.claims_rnn` for the problems of `configs` ({problem:
  its Table 5 engine config}): NAG at the config's largest mu_0, every learning rate and seed,
  as experiments "rnn_input_scale" (an `input_scale` sweep), "rnn_radius" (a `spectral_radius`
  sweep of W_hh) and "rnn_center" (inputs and targets not centred, `center` False)."""
  frames = []
  jobs = [("rnn_input_scale", p, {"input_scale": list(s)})
          for p, s in section.get("input_scales", {}).items()]
  jobs += [("rnn_radius", p, {"spectral_radius": list(r)})
           for p, r in section.get("spectral_radii", {}).items()]
  jobs += [("rnn_center", p, {"center": False}) for p in section.get("uncentred", ())]
  for label, problem, change in jobs:
    if problem not in section["problems"]:
      raise ValueError(f"{label}: problem {problem!r} is not one of the plan's problems "
                       f"{sorted(section['problems'])}")
    if problem not in configs:
      continue  # the command line trains other problems
    config = copy.deepcopy(configs[problem])
    config.sweep.rule, config.sweep.mu_max = ["nag"], [max(config.sweep.mu_max)]
    for axis in ("input_scale", "spectral_radius"):
      if axis in change:
        setattr(config.sweep, axis, change[axis])
    if "center" in change:
      config.center = change["center"]
    frame = populations.run(config, workdir / label / problem, label, problem, baseline(config),
                            task=config.task)
    frame["T"] = _length(config)
    frame["center"] = bool(config.center)
    frames.append(frame)
  return frames


def paper_unit_factor(config) -> float:
  """What turns a config's zero-one fraction into Table 5's unit.

  add / mul (one scored step per sequence): 1, the fraction of sequences wrong. Memorization
  scored on its recall steps: `num_chars`, wrong recall steps per sequence. Memorization scored
  at every step (`recall_only=False`): NaN, no factor gives the paper's unit.
  """
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, center=config.center, **dict(config.task_kwargs))
  if isinstance(task, tasks.Memorization):
    return float(task.num_chars) if task.recall_only else float("nan")
  return 1.0


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
  rows, ratios = [], {}
  for problem in results["problem"].unique():
    mine = results[results["problem"] == problem]
    name = NAMES.get(problem, problem)
    row = [f"{name} T={int(mine['T'].iloc[0])}", f"{mine['seed'].nunique()}",
           _biases_text(problem, mine)]
    for r, m in columns:
      c = best[(best["problem"] == problem) & (best["rule"] == r) & (best["mu_max"] == m)]
      label = f"{name} " + ("SGD" if r == "sgd" else f"{report.RULE_LABELS[r]} {m:g}")
      row.append(report.paper_cell_text(c.iloc[0], ratios, label, fixed=True) if len(c)
                 else "–")
    rows.append(row)
  return "\n\n".join([report.markdown_table(header, rows),
                       paper_values.summary_line("Table 5", ratios)])


def _biases_text(problem: str, rows: pd.DataFrame) -> str:
  """The biases column: our fraction, in the paper's unit where it differs, and the paper's."""
  base = float(rows["baseline"].iloc[0])
  factor = (float(rows["paper_unit_factor"].iloc[0]) if "paper_unit_factor" in rows
            else 1.0)
  text = f"{base:.3f}"
  ours = base * factor
  if factor != 1.0:
    text += f" = {ours:.3g}/seq" if math.isfinite(ours) else " (not the paper's unit)"
  paper = paper_values.cell(5, problem, "biases")
  return paper_values.format_pair(text, paper, paper_values.ratio(ours, paper))


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
  phases = {name: report.phases_of(workdirs[p]) for name, p in zip(panels, workdirs)}
  return report.plot_curves(panels, "zero_one", path, baselines=baselines, floor=1e-3,
                            phases=phases,
                            style=lambda v: report.line_style(v["rule"], v["mu_max"], "μ0"),
                            ylabel="zero-one error (fresh sequences)",
                            title="RNNs (Table 5): best ε per (rule, μ0); median and min-max "
                                  "over seeds; dash-dot: biases baseline")


def main(argv=None) -> None:
  """Command-line entry point."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--config", default=None,
                      help="configs/rnn.py:PROBLEM,SIZE: one problem (with SIZE, the plan's "
                           "studies of that problem too).")
  parser.add_argument("--preset", default=None, choices=sorted(reproduce_config.SIZES),
                      help="Every problem of that size (default quick).")
  parser.add_argument("--data_dir", default=None, help="Unused (RNN data are generated).")
  overrides, rest = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(rest)
  problems = reproduce_config.plan(args.preset or "quick")["rnn"]["problems"]
  size, configs = cli.population_configs(args.config, args.preset, rnn_config.__file__,
                                         problems, "add", overrides)
  for config in configs.values():
    config.progress = True
  print("Table 5\n" + run(args.workdir, size or None, configs=configs)["table5"])


if __name__ == "__main__":
  main()
