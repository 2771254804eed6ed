"""Lv, Jiang & Li (2017): meta-train RNNprop and DMoptimizer, then a paired study against tuned
Adam, RMSProp, SGD, CM and NAG.

    python -m experiments.lopt --config configs/lopt.py:quick --workdir runs/lopt [--data_dir D]

Writes to the workdir: report.md (tables, figures, claims, what data was used), results.csv
(one row per problem x family x learning rate x seed x horizon), claims.md / claims.json (the
paper's claims as PASS / FAIL / INCONCLUSIVE, `experiments.lopt_claims`), curves_<problem>.png
(loss against step per horizon), meta_training.png, and meta/<optimizer>/ (metrics.jsonl and
orbax checkpoints: rerunning with the same workdir resumes the meta-training).

Data: MNIST's training files from --data_dir when they are there; otherwise the MNIST test set
in ../shared/data/mnist (10,000 images) is the training pool, and the report says so. Every
metric is a training loss, so this is a stand-in for the authors' 55,000-image pool, not a
test-set evaluation. CIFAR-10 (the cifar_cnn problem) only from --data_dir.
"""
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments import claims as claims_lib
from experiments import host
from experiments import lopt_claims
from mominit.lopt import evaluate, meta, problems

SHARED_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
EVAL_SEED = 20_000


def load_mnist(data_dir=None):
  """(images [N, 784], labels [N], note): the training split from data_dir if present, else
  the shared test set as the pool."""
  from mominit.data import mnist  # pylint: disable=import-outside-toplevel
  from mominit.data._common import DataError  # pylint: disable=import-outside-toplevel
  if data_dir is not None:
    try:
      x, y = mnist.load_split(data_dir, "train")
      return x, y, f"MNIST training split (60,000 images) from {data_dir}"
    except DataError:
      pass
  x, y = mnist.load_split(data_dir if data_dir is not None else SHARED_MNIST, "test")
  return x, y, ("MNIST test set (10,000 images, t10k files) used as the training pool: no "
                "MNIST training files in --data_dir. All losses are training losses on it.")


def _problem(name, mnist, config, data_dir):
  needed = problems.needs_data(name)
  kwargs = {"batch_size": config.batch_size} if name != "quadratic" else {}
  if needed == "cifar":
    from mominit.data import cifar10  # pylint: disable=import-outside-toplevel
    return problems.make(name, cifar10.load_train(data_dir), **kwargs)
  return problems.make(name, mnist if needed == "mnist" else None, **kwargs)


def _training_problem(base, config, tricks: bool):
  p = base
  if tricks and config.scaling_r:
    p = problems.random_scaling(p, config.scaling_r)
  if tricks and config.combination_dim:
    p = problems.convex_combination(p, config.combination_dim, config.combination_r)
  return p


def meta_train(config, base, workdir, log=print) -> dict:
  """Meta-trains every optimizer of config.learned; {name: meta.train output}."""
  out = {}
  for name in config.learned:
    kind = name.removesuffix("_notricks")
    m = config.meta
    out[name] = meta.train(
        _training_problem(base, config, not name.endswith("_notricks")), base, kind,
        pathlib.Path(workdir) / "meta" / name, seed=config.seed, epochs=m.epochs,
        runs_per_epoch=m.runs_per_epoch, horizon=m.horizon, unroll=m.unroll, tasks=m.tasks,
        meta_learning_rate=m.meta_learning_rate or None, eval_seeds=m.eval_seeds,
        eval_steps=m.horizon, progress=config.progress, log=log)
  return out


def _keys(n):
  return jnp.stack([jax.random.PRNGKey(EVAL_SEED + i) for i in range(n)])


def run_study(problem, families, grids, learned_thetas, seeds, horizons):
  """The paired study on one problem: {family: {"grid": [G], "losses", "finals"}}."""
  hypers = {f: evaluate.learning_rate_grid(*grids[f]) for f in families}
  for name, theta in learned_thetas.items():
    hypers[name] = jax.tree.map(lambda a: a[None], theta)
  out = {}
  for name, grid in hypers.items():
    family = name.removesuffix("_notricks")
    res = evaluate.study(problem, {family: grid}, _keys(seeds), horizons)[family]
    res["grid"] = np.asarray(grid) if name in families else np.array([np.nan])
    out[name] = res
  return out


def frame(study: dict, problem: str, horizons, experiment="lopt", **extra) -> pd.DataFrame:
  """One row per (family, learning rate, seed, horizon) with final_loss."""
  rows = []
  for family, res in study.items():
    for g, lr in enumerate(res["grid"]):
      for s in range(res["finals"].shape[1]):
        for k, h in enumerate(sorted(horizons)):
          value = float(res["finals"][g, s, k])
          rows.append({"experiment": experiment, "problem": problem, "family": family,
                       "learning_rate": float(lr), "seed": EVAL_SEED + s, "horizon": int(h),
                       "final_loss": value, "diverged": not np.isfinite(value), **extra})
  return pd.DataFrame(rows)


def _binned(losses, horizon, bins=60):
  """Log-spaced bins of steps 1..horizon: (centres, mean over seeds, standard error)."""
  edges = np.unique(np.geomspace(1, horizon + 1, bins).astype(int))
  per_seed = np.stack([losses[:, a - 1:b - 1].mean(1) for a, b in zip(edges[:-1], edges[1:])],
                      1)
  n = per_seed.shape[0]
  se = per_seed.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(per_seed.shape[1])
  return np.sqrt(edges[:-1] * np.maximum(edges[1:] - 1, edges[:-1])), per_seed.mean(0), se


def plot_curves(study: dict, results: pd.DataFrame, problem: str, horizons, path):
  """Minibatch training loss against step, one panel per horizon, each family at the rate
  tuned for that horizon; mean over seeds and a standard-error band; log-log axes."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  horizons = sorted(horizons)
  fig = Figure(figsize=(5.5 * len(horizons), 4.2), layout="constrained")
  colors = dict(zip(list(study), [f"C{i}" for i in range(10)]))
  for k, h in enumerate(horizons):
    ax = fig.add_subplot(1, len(horizons), k + 1)
    for family, res in study.items():
      c = lopt_claims.cell(results, family, problem, h)
      if c is None or not np.isfinite(c["mean"]):
        continue
      g = 0 if np.isnan(res["grid"]).all() else int(np.argmin(np.abs(res["grid"] - c["learning_rate"])))
      x, mean, se = _binned(np.asarray(res["losses"][g, :, :h], np.float64), h)
      label = evaluate.LABELS.get(family, family) + (
          "" if np.isnan(res["grid"]).all() else f" (2^{np.log2(c['learning_rate']):g})")
      learned = family not in evaluate.HAND_DESIGNED
      ax.plot(x, mean, color=colors[family], lw=2.2 if learned else 1.2,
              ls="-" if learned else "--", label=label)
      ax.fill_between(x, np.maximum(mean - se, 1e-6), mean + se, color=colors[family],
                      alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"{problem}: {h:,} steps (rates tuned for {h:,})")
    ax.set_xlabel("step")
    ax.set_ylabel("minibatch training loss")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=110)
  return path


def plot_meta(trained: dict, path):
  """Per learned optimizer: meta-loss and model-selection loss per epoch, Adam 2^-5 dashed."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  fig = Figure(figsize=(6.5, 4.2), layout="constrained")
  ax = fig.add_subplot(1, 1, 1)
  for i, (name, out) in enumerate(trained.items()):
    epochs = [h["epoch"] for h in out["history"]]
    ax.plot(epochs, [h["meta_loss"] for h in out["history"]], "o:", color=f"C{i}",
            label=f"{name}: meta-loss (training task)")
    ax.plot(epochs, [h["eval_loss"] for h in out["history"]], "o-", color=f"C{i}",
            label=f"{name}: base-task loss after the horizon")
    ax.axhline(out["adam_eval"], color="k", ls="--", lw=1)
  ax.axhline(np.nan, color="k", ls="--", lw=1, label="Adam 2^-5, same runs")
  ax.set_yscale("log")
  ax.set_xlabel("epoch")
  ax.set_ylabel("loss")
  ax.set_title("meta-training")
  ax.grid(True, which="both", alpha=0.25)
  ax.legend(fontsize=7)
  path = pathlib.Path(path)
  fig.savefig(path, dpi=110)
  return path


def final_table(results: pd.DataFrame, problem: str, horizons) -> str:
  """Markdown: per family and horizon the tuned mean final loss ± standard error, its rate,
  and its ratio to the strongest tuned baseline."""
  horizons = sorted(horizons)
  head = "| optimizer | " + " | ".join(f"{h:,} steps: loss ± se (rate) | ratio" for h in horizons)
  lines = [head + " |", "|" + "---|" * (1 + 2 * len(horizons))]
  best = {h: lopt_claims.best_baseline(results, problem, h) for h in horizons}
  for family in results[results["problem"] == problem]["family"].unique():
    row = [evaluate.LABELS.get(family.removesuffix("_notricks"), family)
           + (" (no tricks)" if family.endswith("_notricks") else "")]
    for h in horizons:
      c = lopt_claims.cell(results, family, problem, h)
      if c is None:
        row += ["–", "–"]
        continue
      se = c["std"] / np.sqrt(c["n_seeds"]) if np.isfinite(c["std"]) else float("nan")
      rate = "" if np.isnan(c["learning_rate"]) else f" (2^{np.log2(c['learning_rate']):g}" + (
          ", edge)" if c["edge"] else ")")
      mark = "**" if best[h] and family == best[h]["family"] else ""
      row.append(f"{mark}{c['mean']:.4g} ± {se:.2g}{mark}{rate}")
      row.append(f"{c['mean'] / best[h]['mean']:.3f}" if best[h] else "–")
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def validate(config) -> None:
  """Raises ValueError naming the config field that is wrong, before anything compiles."""
  learned = ("rnnprop", "dm_lv2017", "dm_deepmind")
  for name in config.learned:
    if name.removesuffix("_notricks") not in learned:
      raise ValueError(f"config.learned: {name!r} is not one of {learned} (optionally with "
                       f"'_notricks')")
  for field, names in (("problem", [config.problem]), ("eval.problems", config.eval.problems),
                       ("calibration.problem", [config.calibration.problem])):
    for name in names:
      if name not in problems.TEST_LIST:
        raise ValueError(f"config.{field}: {name!r} is not in mominit.lopt.problems.TEST_LIST")
  for family in config.eval.families:
    if family not in evaluate.HAND_DESIGNED:
      raise ValueError(f"config.eval.families: {family!r} is not one of "
                       f"{evaluate.HAND_DESIGNED}")
    if family not in config.eval.grids:
      raise ValueError(f"config.eval.grids has no learning-rate range for {family!r}")
    low, high = config.eval.grids[family]
    if not low <= high:
      raise ValueError(f"config.eval.grids[{family!r}]: low {low} > high {high} (log2 rates)")
  for field, values in (("eval.horizons", config.eval.horizons),
                        ("calibration.horizons", config.calibration.horizons)):
    if any(int(h) != h or h < 1 for h in values):
      raise ValueError(f"config.{field} must be positive whole step counts, got {values}")
  m = config.meta
  if m.unroll < 1 or m.horizon % m.unroll:
    raise ValueError(f"config.meta.horizon ({m.horizon}) must be a positive multiple of "
                     f"config.meta.unroll ({m.unroll})")
  for field in ("epochs", "runs_per_epoch", "tasks", "eval_seeds"):
    if m[field] < 1:
      raise ValueError(f"config.meta.{field} must be >= 1, got {m[field]}")
  if config.eval.seeds < 1:
    raise ValueError(f"config.eval.seeds must be >= 1, got {config.eval.seeds}")


def train_and_evaluate(config, workdir) -> dict:
  """Meta-trains, runs the paired study and writes the report (see the module docstring).

  Args:
    config: `configs/lopt.py` config.
    workdir: output folder (resumes meta-training from its checkpoints).

  Returns:
    {"results": DataFrame, "claims": list, "report": path, "figures": [paths], "trained":
    {name: meta.train output}, "seconds": {...}}.
  """
  validate(config)
  t0 = time.perf_counter()
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  data_dir = config.get("data_dir", None)
  needs_mnist = any(problems.needs_data(p) == "mnist" for p in
                    (config.problem, *config.eval.problems, config.calibration.problem))
  x, y, note = load_mnist(data_dir) if needs_mnist else (None, None, "no MNIST needed")
  mnist = (x, y)
  base = _problem(config.problem, mnist, config, data_dir)
  # Every problem (and its data) before any training, so a missing file fails first.
  tests = {name: base if name == config.problem else _problem(name, mnist, config, data_dir)
           for name in config.eval.problems}
  seconds = {}
  trained = meta_train(config, base, workdir)
  seconds["meta_training"] = time.perf_counter() - t0
  thetas = {name: out["theta"] for name, out in trained.items()}
  frames, figures, studies = [], [], {}
  t1 = time.perf_counter()
  for name, problem in tests.items():
    studies[name] = run_study(problem, config.eval.families, config.eval.grids, thetas,
                              config.eval.seeds, config.eval.horizons)
    frames.append(frame(studies[name], name, config.eval.horizons,
                        base_problem=config.problem, train_horizon=config.meta.horizon))
  seconds["study"] = time.perf_counter() - t1
  cal = config.calibration
  if cal.horizons:
    t1 = time.perf_counter()
    problem = _problem(cal.problem, mnist, config, data_dir)
    cstudy = run_study(problem, ("adam",), {"adam": tuple(cal.grid)}, {}, cal.seeds,
                       cal.horizons)
    frames.append(frame(cstudy, cal.problem, cal.horizons, "lopt_calibration",
                        base_problem=config.problem, train_horizon=config.meta.horizon))
    seconds["calibration"] = time.perf_counter() - t1
  results = pd.concat(frames, ignore_index=True)
  results.to_csv(workdir / "results.csv", index=False)
  study_rows = results[results["experiment"] == "lopt"]
  for name, st in studies.items():
    figures.append(plot_curves(st, study_rows, name, config.eval.horizons,
                               workdir / f"curves_{name}.png"))
  figures.append(plot_meta(trained, workdir / "meta_training.png"))
  checked = lopt_claims.check_all(results)
  (workdir / "claims.json").write_text(claims_lib.to_json(checked))
  (workdir / "claims.md").write_text(claims_lib.to_markdown(checked))
  seconds["total"] = time.perf_counter() - t0
  report = _report(config, note, results, trained, checked, figures, seconds)
  (workdir / "report.md").write_text(report)
  return {"results": results, "claims": checked, "report": workdir / "report.md",
          "figures": figures, "trained": trained, "seconds": seconds}


def _report(config, note, results, trained, checked, figures, seconds) -> str:
  study = results[results["experiment"] == "lopt"]
  lines = [f"# Learned optimizers (Lv, Jiang & Li 2017): preset `{config.preset}`", "",
           f"*Data.* {note}", "",
           f"*Meta-training.* {', '.join(config.learned)} on `{config.problem}` "
           f"(tricks: scaling r={config.scaling_r:g}, convex combination of "
           f"{config.combination_dim} coordinates), {config.meta.epochs} epochs of "
           f"{config.meta.runs_per_epoch} runs of {config.meta.horizon} steps in truncations of "
           f"{config.meta.unroll}, {config.meta.tasks} task(s) per meta-step; model selection "
           f"per epoch on `{config.problem}` over {config.meta.eval_seeds} runs.", ""]
  lines += ["| optimizer | epochs | best epoch | best base-task loss | Adam 2^-5 | skipped | "
            "seconds |", "|---|---|---|---|---|---|---|"]
  for name, out in trained.items():
    lines.append(f"| {name} | {len(out['history'])} | {out['best_epoch']} | "
                 f"{min((h['eval_loss'] for h in out['history']), default=float('nan')):.4g} | "
                 f"{out['adam_eval']:.4g} | {out['skipped']} | {out['seconds']:.0f} |")
  lines += ["", "![meta-training](meta_training.png)", ""]
  for name in config.eval.problems:
    lines += [f"## `{name}`: final training loss (whole pool), tuned per horizon", "",
              f"{config.eval.seeds} paired runs (same x_0, same minibatches); ratio = mean / "
              "the strongest tuned baseline's (bold).", "",
              final_table(study, name, config.eval.horizons), "",
              f"![curves](curves_{name}.png)", ""]
  cal = results[results["experiment"] == "lopt_calibration"]
  if not cal.empty:
    lines += [f"## Calibration: tuned Adam on `{config.calibration.problem}`", "",
              final_table(cal, config.calibration.problem, config.calibration.horizons), "",
              "Authors' best Adam rates: 2^-5 (100 steps), 2^-6 (2,000), 2^-7 (10,000).", ""]
  lines += ["## Claims", "", "| claim | verdict | why |", "|---|---|---|"]
  lines += [f"| {c['claim']} | **{c['verdict']}** | {c['reason']} |" for c in checked]
  lines += ["", "Rules and numbers: claims.md.", "",
            "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), "",
            "Config:", "```", json.dumps(config.to_dict(), indent=1, default=str), "```"]
  return "\n".join(lines) + "\n"


def main(argv):
  host.set_defaults()  # before jax starts a backend
  del argv
  from absl import flags  # pylint: disable=import-outside-toplevel
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  config = flags.FLAGS.config
  if flags.FLAGS.data_dir:
    config.unlock()
    config.data_dir = flags.FLAGS.data_dir
  out = train_and_evaluate(config, flags.FLAGS.workdir)
  for c in out["claims"]:
    print(f"{c['verdict']:>12s}  {c['id']}: {c['reason']}")
  print(f"wrote {out['report']}")


if __name__ == "__main__":
  from absl import app  # pylint: disable=ungrouped-imports
  from absl import flags as _flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "configs/lopt.py:tiny|quick|medium|paper")
  _flags.DEFINE_string("workdir", None, "Output folder (resumes from its checkpoints).")
  _flags.DEFINE_string("data_dir", None, "Folder with MNIST training files (and CIFAR-10).")
  _flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
