"""Reproduces the paper: Tables 1, 2, 3 and 5, the quadratic figure, and a check of its claims.

`python -m experiments.reproduce --preset quick --workdir runs/quick [--data_dir D]`, or
`--config configs/reproduce.py:quick` with `--config.FIELD=VALUE` overrides of the plan
(`--preset quick` takes them too), e.g. `--config.autoencoders.steps=300`.

Runs the experiments of the size's plan (configs/reproduce.py, which lists the sizes): the
autoencoders (Tables 1 and 2), the
initialization scale (Table 3 and the poorly scaled Gaussian), the RNN problems (Table 5) and
the quadratic (Theorem 2.1 and the oblong figure), all through the population engine, plus the
Hessian-free and Glorot & Bengio studies when those modules exist. Writes to the workdir:

  report.md      the tables in the paper's layout, the figures, the machine, the versions, the
                 preset and the wall times; what was skipped or failed, and why.
  results.csv    every member of every experiment (an `experiment` column tells them apart).
  claims.md      each claim of the paper: PASS / FAIL / INCONCLUSIVE with its rule and numbers.
  claims.json    the same, machine-readable.
  *_curves.png   learning curves (median and min-max over seeds, log error axis).
  table1/ table3/ gaussian/ table5/ quadratic/ hf/ glorot/   each run's own files
                 (metrics.jsonl, checkpoints; rerunning with the same workdir resumes).
  reproduce.json the preset of this workdir: a rerun with another preset or other settings is
                 refused (exit status 2) before anything is written.

Every output is written atomically (a temporary file, then a rename). A failing rerun in a
workdir that holds a report writes report.failed.md, results.failed.csv, claims.failed.json
and claims.failed.md instead, leaving the previous outputs as they were. A data set the preset
asks for whose file is present but cannot be read fails the run, naming the file (absent
MNIST / FACES files only skip their data set).

Exits with status 1 if one of the core experiments failed or a claim checker raised (verdict
ERROR; the report says which and why).
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import shlex
import sys
import time
import traceback
from typing import Optional, Sequence

import pandas as pd

from configs import reproduce as reproduce_config
from experiments import argtypes
from experiments import claims as claims_lib
from experiments import cli
from experiments import host
from experiments import report
from experiments import report_notes
from experiments import workdirs

CORE = ("table1", "table3", "table5", "quadratic")
EXTRAS = ("hf", "glorot")
EXPERIMENTS = CORE + EXTRAS


def _quadratic(workdir, preset, data_dir, progress):
  """Runs experiments.quadratic and turns its numbers into results rows."""
  del data_dir, progress
  from experiments import quadratic  # pylint: disable=import-outside-toplevel
  from experiments import quadratic_rates  # pylint: disable=import-outside-toplevel
  t0 = time.perf_counter()
  kwargs = dict(reproduce_config.plan(preset)["quadratic"])
  rates = kwargs.pop("rates", "full")  # the convergence-rate claims: "full", "small" or None
  out = quadratic.run(pathlib.Path(workdir) / "quadratic", verbose=False, **kwargs)
  rows = []
  for check, key in (("constant", "theorem"), ("scheduled", "theorem_scheduled")):
    t = out[key]
    rows.append({"experiment": "quadratic", "problem": "quadratic", "check": check,
                 "max_abs_diff": t["max_abs_diff"], "max_rel_diff": t["max_rel_diff"],
                 "plain_cm_rel_diff": t["plain_cm_max_abs_diff"] / t["scale"],
                 "dtype": t["dtype"], "steps": t["num_steps"]})
  for rule, count in out["oscillations"].items():
    rows.append({"experiment": "quadratic", "problem": "oblong", "check": "oblong",
                 "rule": rule, "oscillations": count,
                 "final_value": out["final_value"][rule]})
  if rates:
    rows += quadratic_rates.rows(quadratic_rates.run_all(small=rates == "small"))
  from mominit import quadratic as q  # pylint: disable=import-outside-toplevel
  text = ["```", q.format_theorem_table(out["theorem"]), "", "With the paper's momentum "
          "schedule (sutskever_momentum(0.99, period 25) and a final phase) and a stepped "
          "learning rate:", q.format_theorem_table(out["theorem_scheduled"]), "```", "",
          "Oblong quadratic (same ε and μ for all): sign changes of the steep coordinate "
          "beyond 1% of its start: " + ", ".join(f"{k.upper()} {v}"
                                                  for k, v in out["oscillations"].items()) + "."]
  return {"results": pd.DataFrame(rows), "text": "\n".join(text),
          "figures": [out["figure"]], "seconds": time.perf_counter() - t0}


def _autoencoders(workdir, preset, data_dir, progress):
  from experiments import autoencoders  # pylint: disable=import-outside-toplevel
  out = autoencoders.run(workdir, preset, data_dir, progress)
  text = ["### Table 1: training error by rule and μmax", "", out["table1"], "",
          "Each cell: the best ε of the grid (lowest mean final training error over seeds; a "
          "diverged run counts as +∞), mean ± std over seeds, and that ε. Baseline: the error of "
          "outputting the mean training image.", "",
          "### Table 2: the final low-momentum phase", "", out["table2"], "",
          "Training error when the final phase (μ = 0.9, same ε) starts (*before*) and at the "
          "end (*after*), at each cell's best ε. *best NAG*: the paper's layout (the NAG cell "
          "with the lowest final error); the paper's Table 2 gives only that cell."]
  if len(out["results"]) and "curves" in set(out["results"]["problem"]):
    text += ["", report_notes.curves_note(out["results"], data_dir)]
  for dataset, reason in out["skipped"].items():
    text += ["", f"**{dataset.upper()} skipped:** {reason}"]
  return {**out, "text": "\n".join(text)}


def _init_scale(workdir, preset, data_dir, progress):
  from experiments import init_scale  # pylint: disable=import-outside-toplevel
  out = init_scale.run(workdir, preset, data_dir, progress)
  text = ["### Table 3: sparse-init scale multiplier", "", out["table3"], "",
          "Each cell: the best ε of the grid, mean ± std over seeds of the final training "
          "error."]
  if len(out["results"]) and "curves" in set(out["results"]["problem"]):
    text += ["", report_notes.curves_note(out["results"], data_dir)]
  for name, reason in out["skipped"].items():
    text += ["", f"**{name} skipped:** {reason}"]
  return {**out, "text": "\n".join(text)}


def _rnn(workdir, preset, data_dir, progress):
  from experiments import rnn  # pylint: disable=import-outside-toplevel
  out = rnn.run(workdir, preset, data_dir, progress)
  text = ["### Table 5: RNN zero-one errors", "", out["table5"], "",
          "Mean zero-one error over seeds (± std) on fresh sequences at the best ε of the grid "
          "(lowest mean zero-one error; ties broken by test loss). *biases*: a net that only "
          "learns its output biases. add / mul: the fraction of sequences wrong; mem-5 / mem-20: "
          "the fraction of recall steps wrong, then (= …/seq) the paper's unit, wrong recall "
          "steps per sequence, which the paper's values and ratios use. The paper's values are "
          "for T = 80 / 80 / 200 / 80, 50,000 updates and 4 seeds. μ0 = 0 is plain SGD "
          "throughout (see *Deviations*)."]
  return {**out, "text": "\n".join(text)}


def _extra(name: str, sub_preset: Optional[str]):
  """Runs experiments.hf or experiments.glorot (imported lazily) and embeds its report."""
  markdown = {"hf": "hf_table.md", "glorot": "glorot_report.md"}[name]

  def run(workdir, preset, data_dir, progress):
    del preset, progress
    import importlib  # pylint: disable=import-outside-toplevel
    t0 = time.perf_counter()
    module = importlib.import_module(f"experiments.{name}")
    folder = pathlib.Path(workdir) / name
    if name == "glorot":
      module.run(str(folder), sub_preset, data_dir=data_dir)
      results = pd.DataFrame()
    else:  # The HF study's rows go into results.csv, where its claims are checked.
      results = module.results_frame(module.run(str(folder), sub_preset, data_dir=data_dir))
    path = folder / markdown
    text = path.read_text() if path.exists() else f"({markdown} was not written)"
    # Demote its headings and point its relative links into the subfolder.
    text = re.sub(r"^(#+)", r"##\1", text, flags=re.M)
    text = re.sub(r"(!?\[[^\]]*\]\()(?!https?:|/)([^)]+\))", rf"\1{name}/\2", text)
    return {"results": results, "text": f"(`{name}` preset `{sub_preset}`)\n\n" + text,
            "figures": sorted(str(p) for p in folder.glob("*.png")),
            "seconds": time.perf_counter() - t0}

  return run


TITLES = {"table1": "Deep autoencoders (Tables 1 and 2, paper section 3)",
          "table3": "Initialization (Table 3, paper section 3)",
          "table5": "Recurrent networks (Table 5, paper section 4)",
          "quadratic": "Quadratics (Theorem 2.1, section 2, and the oblong figure)",
          "hf": "Hessian-free vs NAG (paper section 5)", "glorot": "Glorot & Bengio study"}


def run(workdir, preset="quick", data_dir: Optional[str] = None,
        experiments: Optional[Sequence[str]] = None, progress: bool = True,
        command: Optional[str] = None, preset_name: Optional[str] = None) -> dict:
  """Runs a preset's experiments and writes the report, results and claims (see the module
  docstring).

  Args:
    workdir: output folder (created).
    preset: a size name (configs/reproduce.py), its plan (the ConfigDict of
      `configs/reproduce.py:get_config`, overrides applied) or a dict of that shape.
    data_dir: folder with the MNIST / FACES (/ CURVES) files.
    experiments: subset of `EXPERIMENTS` to run (default: all; "hf" and "glorot" only when the
      preset names a sub-preset for them).
    progress: show the engine's progress bars.
    command: the command line, for the report.
    preset_name: the name the workdir records and the report shows (default: `preset` when
      it is a name, else "custom").

  Returns:
    {"report": path of report.md, "results": the combined DataFrame, "claims": list of claim
    dicts, "failed": {experiment: error text}, "skipped": {name: reason}, "seconds": wall time}.

  Raises:
    ValueError: unknown preset or experiment name.
    workdirs.WorkdirError: the workdir holds a run of another preset or other settings
      (raised before anything is written).
  """
  t0 = time.perf_counter()
  started = datetime.datetime.now().astimezone()
  spec = reproduce_config.plan(preset)
  preset_name = preset_name or (preset if isinstance(preset, str) else "custom")
  chosen = list(experiments) if experiments is not None else list(EXPERIMENTS)
  unknown = sorted(set(chosen) - set(EXPERIMENTS))
  if unknown:
    raise ValueError(f"unknown experiment(s) {unknown}; valid: {', '.join(EXPERIMENTS)}")
  workdir = pathlib.Path(workdir)
  # Before anything is written: a workdir of another preset is refused, never overwritten.
  workdirs.check_preset(workdir, preset_name, spec)
  workdir.mkdir(parents=True, exist_ok=True)
  workdirs.record_preset(workdir, preset_name, spec)
  machine = report.machine_info()
  runners = {"table1": _autoencoders, "table3": _init_scale, "table5": _rnn,
             "quadratic": _quadratic}
  outputs, failed, skipped = {}, {}, {}
  for name in EXPERIMENTS:
    if name not in chosen:
      skipped[name] = "not selected (--experiments)"
      continue
    if name in EXTRAS:
      if not spec.get(name):
        skipped[name] = f"not part of the {preset_name} preset"
        continue
      runner = _extra(name, spec[name])
    else:
      runner = runners[name]
    try:
      outputs[name] = runner(workdir, spec, data_dir, progress)
    except ModuleNotFoundError as e:
      failed[name] = f"module missing: {e}"
    except Exception as e:  # pylint: disable=broad-except
      # One failing experiment must not hide the others; the report and exit status say so.
      failed[name] = f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}"
      if _unreadable(e):
        failed[f"{name}/data"] = f"data could not be read: {e}"  # fails even an extra
  for name, out in outputs.items():
    for dataset, reason in out.get("skipped", {}).items():
      skipped[f"{name}/{dataset}"] = reason
    for dataset, reason in out.get("unreadable", {}).items():  # asked for, present, unreadable
      failed[f"{name}/{dataset}"] = f"data could not be read: {reason}"

  frames = [o["results"] for o in outputs.values() if len(o.get("results", ()))]
  results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
      columns=["experiment"])
  # A failing rerun writes report.failed.md etc. beside a previous report, never over it;
  # every file is written whole or not at all (temp file, then rename).
  paths = workdirs.output_paths(workdir, failing=any(_is_core(n) for n in failed))
  workdirs.write_csv(workdirs.tidy_dtypes(results), paths["results.csv"])  # bool / int columns
  claims = claims_lib.check_all(results)
  workdirs.write_text(paths["claims.json"], claims_lib.to_json(claims))
  workdirs.write_text(paths["claims.md"], claims_lib.to_markdown(claims))
  seconds = time.perf_counter() - t0
  machine["load_average_end"] = list(machine_load())
  text = _report(preset_name, spec, outputs, failed, skipped, claims, machine, started,
                 seconds, workdir, command, data_dir)
  path = paths["report.md"]
  if path.name != "report.md":
    text = (f"**This run failed; the previous report.md of this workdir was kept.** Outputs: "
            f"{', '.join(p.name for p in paths.values())}.\n\n" + text)
  workdirs.write_text(path, text)
  return {"report": path, "results": results, "claims": claims, "failed": failed,
          "skipped": skipped, "seconds": seconds}


def _unreadable(error: BaseException) -> bool:
  """A data file that is there but damaged or unreadable (an absent one only skips)."""
  from mominit.data import DataError  # pylint: disable=import-outside-toplevel
  return isinstance(error, (DataError, PermissionError)) and not isinstance(
      error, FileNotFoundError)


def _is_core(name: str) -> bool:
  """Whether a `failed` entry fails the run: a core experiment ("table1"), its unreadable data
  ("table1/mnist"), or an extra's unreadable data ("glorot/data")."""
  head, _, tail = name.partition("/")
  return head in CORE or tail == "data"


def machine_load() -> tuple:
  """The 1, 5 and 15-minute load averages (empty where the platform has none)."""
  return tuple(round(x, 2) for x in os.getloadavg()) if hasattr(os, "getloadavg") else ()


def _relative(path, workdir) -> str:
  path = pathlib.Path(path)
  try:
    return str(path.resolve().relative_to(pathlib.Path(workdir).resolve()))
  except ValueError:
    return str(path)


def _report(preset_name, spec, outputs, failed, skipped, claims, machine, started, seconds,
            workdir, command, data_dir=None) -> str:
  lines = [f"# Reproduction report: preset `{preset_name}`", "",
           f"{spec.get('description', '')}", "",
           f"- Started: {started:%Y-%m-%d %H:%M:%S %Z}",
           f"- Wall time: {seconds:.0f} s ({seconds / 60:.1f} min) for everything below, "
           "including data generation and compilation",
           f"- Command: `{command or 'experiments.reproduce.run(...)'}`",
           f"- Machine: {machine['platform']}, {machine['processor']}, "
           f"{machine['cpu_count']} CPUs ({machine['usable_cpus']} usable), load average "
           f"{machine['load_average']} at the start and {machine['load_average_end']} at the end",
           f"- JAX backend `{machine['jax_backend']}`, devices: "
           f"{', '.join(machine['jax_devices'])}",
           "- Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
           + f", Python {machine['python']}", ""]
  summaries = report_notes.summary_lines(o.get("text", "") for o in outputs.values())
  lines += ["## Against the paper", "", report_notes.protocol_note(preset_name, data_dir), ""]
  lines += [f"- {line}" for line in summaries] or ["- (no table of the paper was run)"]
  lines += ["", "Every cell of Tables 1, 2, 3 and 5 below reads `ours (paper P, xR)`, R = ours / "
            "P; the paper's values: `experiments.paper_values` (PMLR v28).", ""]
  lines += ["## Claims", "",
            report.markdown_table(["claim", "source", "verdict", "why"],
                                  [[c["claim"], c["source"], f"**{c['verdict']}**", c["reason"]]
                                   for c in claims], numeric=False),
            "", "Rules and numbers: [claims.md](claims.md) ([claims.json](claims.json)). A "
            "reduced preset is too short for several claims; INCONCLUSIVE says so rather than "
            "guessing.", ""]
  if failed:
    lines += ["## Failed experiments", ""]
    for name, error in failed.items():
      lines += [f"### {name}", "", "```", error.strip(), "```", ""]
  for name in EXPERIMENTS:
    lines += [f"## {TITLES[name]}", ""]
    if name in outputs:
      out = outputs[name]
      lines += [out["text"], ""]
      for fig in out.get("figures", []):
        rel = _relative(fig, workdir)
        if f"({rel})" not in out["text"]:  # an embedded report may already show it
          lines += [f"![{pathlib.Path(fig).stem}]({rel})", ""]
      lines += [f"Wall time: {out['seconds']:.0f} s.", ""]
    elif name in failed:
      lines += [f"Failed: {failed[name].splitlines()[0]} (see *Failed experiments*).", ""]
    else:
      lines += [f"Skipped: {skipped.get(name, 'not run')}.", ""]
  lines += ["## Deviations from the paper's protocol", ""]
  lines += report_notes.deviations(spec, preset_name, data_dir,
                                   spec.get("hf") if "hf" in outputs else None,
                                   spec.get("glorot") if "glorot" in outputs else None)
  if skipped:
    lines += ["", "## Skipped", ""]
    lines += [f"- **{k}**: {v}" for k, v in skipped.items()]
  lines += ["", f"## Preset `{preset_name}`", ""]
  for section, values in spec.items():
    if isinstance(values, dict):
      values = ", ".join(f"{k}={json.dumps(v, default=list)}" for k, v in values.items()
                         if k != "deviations")
    lines.append(f"- **{section}**: {values}")
  lines += ["", "Per-population engine configs: `*/<problem>/config.json`; every member's "
            "numbers: [results.csv](results.csv).", ""]
  return "\n".join(lines)


def main(argv=None) -> int:
  """Command-line entry point; returns the exit status."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--preset", default=None, choices=sorted(reproduce_config.SIZES),
                      help="The size to run (default quick); configs/reproduce.py lists them.")
  parser.add_argument("--config", default=None,
                      help="configs/reproduce.py:SIZE (instead of --preset SIZE).")
  parser.add_argument("--data_dir", default=None, type=argtypes.existing_dir,
                      help="Folder with MNIST (idx) / FACES (newfaces_rot_single.mat) / CURVES "
                           "(digs3pts_1.mat) files.")
  parser.add_argument("--experiments", default=",".join(EXPERIMENTS),
                      type=argtypes.names(EXPERIMENTS),
                      help="Comma-separated subset of " + ",".join(EXPERIMENTS))
  parser.add_argument("--no_progress", action="store_true", help="No progress bars.")
  argv = sys.argv[1:] if argv is None else argv
  overrides, rest = cli.split_overrides(argv)
  args = parser.parse_args(rest)
  if args.config and args.preset:
    cli.fail("give --config or --preset, not both")
  size = args.preset or "quick"
  spec = args.config or f"{reproduce_config.__file__}:{size}"
  try:
    plan = cli.load_config(spec, overrides)
  except ValueError as e:
    cli.fail(e)
  name = (args.config.partition(":")[2] or "quick") if args.config else size
  try:
    out = run(args.workdir, plan, args.data_dir,
              args.experiments, not args.no_progress,
              command="python -m experiments.reproduce " + shlex.join(argv), preset_name=name)
  except workdirs.WorkdirError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"Wrote {out['report']} ({out['seconds']:.0f} s)")
  for c in out["claims"]:
    print(f"  {c['verdict']:<12} {c['id']}: {c['reason']}")
  for name, error in out["failed"].items():
    print(f"FAILED {name}: {error.splitlines()[0]}", file=sys.stderr)
  return exit_status(out)


def exit_status(out: dict) -> int:
  """1 if a core experiment failed or a claim checker raised (verdict ERROR), else 0."""
  for claim_id in claims_lib.errors(out["claims"]):
    print(f"CLAIM CHECKER FAILED {claim_id}", file=sys.stderr)
  failed = any(_is_core(name) for name in out["failed"]) or claims_lib.errors(out["claims"])
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
