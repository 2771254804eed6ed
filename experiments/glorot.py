"""Glorot & Bengio (2010) study: activations, gradients and Jacobians across layers and training.

Two nets (docs/paper.md section 7):
- "mlp": 784 -> 5 hidden layers -> 10-way softmax on MNIST (the 10k test-set files split
  8,000 train / 2,000 test, or full MNIST when ``--data_dir`` holds the training files);
- "curves": the CURVES deep autoencoder (docs/paper.md section 4; a narrower one in ``tiny``).
Every hidden activation (sigmoid, tanh, softsign) is crossed with every initialization (standard
and normalized Glorot, sparse SI, the poorly scaled N(0, 0.01^2)). Training is the engine's
(``mominit.train.train_and_evaluate``): the MLP is problem kind ``classifier``, whose
initializations of one activation train as one vmapped population (``config.sweep.init``); the
autoencoder is kind ``autoencoder``, one run per initialization. All runs of a task share the
seed, hence the minibatches (a per-epoch permutation of the training set). The optimizer is the
momentum rule with a constant mu (plain SGD at mu = 0).

Every ``log_every`` updates ``mominit.diagnostics.layer_stats`` (no Jacobians) runs on a fixed
monitoring batch of held-out cases (300 as in Glorot & Bengio), through the engine's
diagnostics hook. At initialization and at the end the Jacobian spectra and the raw per-layer
values (for histograms) are taken too (the engine's ``snapshot``).

Writes to DIR: ``{task}_activations.png`` (mean and percentiles of each hidden layer over
training), ``{task}_saturation.png``, ``{task}_activation_hist_end.png``,
``{task}_backprop_hist_init.png``, ``{task}_jacobian_sv.png``, ``{task}_learning_curves.png``,
``glorot_results.json`` and ``glorot_report.md`` (summary table and findings computed from the
numbers; experiments/glorot_report.py).

Usage: ``python -m experiments.glorot --workdir DIR
[--config configs/glorot.py:tiny|quick|medium|paper] [--config.FIELD=VALUE ...] [--data_dir D]``
(``--preset NAME`` is the same as
``--config configs/glorot.py:NAME``), or ``train_and_evaluate(config, workdir)`` from a notebook.
"""
import argparse
import json
import pathlib
import sys
import time
import types
from typing import Any

import jax
import numpy as np

from configs import glorot as glorot_config
from experiments import argtypes
from experiments import cli
from experiments import host
from experiments import glorot_report as report
from experiments.glorot_report import (  # pylint: disable=unused-import
    BASELINE_LABELS, INIT_LABELS, INITS)
from mominit import diagnostics
from mominit import losses
from mominit import sweep
from mominit import train
from mominit.data import Dataset
from mominit.data import curves
from mominit.data import mnist
from mominit.models import AUTOENCODER_SIZES, autoencoder_from_sizes
from mominit.problems import classifier

ACTIVATIONS = ("sigmoid", "tanh", "softsign")

# Sizes of each preset. Learning rates (SGD step sizes) are per hidden activation: one rate did
# not suit all (quick preset, 1,000 updates: MLP tanh with SI diverged at 0.1, and the tanh
# autoencoder saturated every top-layer unit at 0.05 with momentum 0.9).
_MLP_LR = {"sigmoid": 0.1, "tanh": 0.05, "softsign": 0.05}
_AE_LR = {"sigmoid": 0.05, "tanh": 0.01, "softsign": 0.02}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        mlp_width=200, mlp_steps=300, mlp_lr=_MLP_LR, mlp_momentum=0.0, mlp_batch=10,
        ae_sizes=(784, 64, 16, 6), ae_steps=200, ae_lr=_AE_LR, ae_momentum=0.9, ae_batch=20,
        curves_train=1000, curves_test=300, activations=("sigmoid", "tanh"), inits=INITS,
        ae_activations=("sigmoid",), log_every=50, monitor_size=300, eval_size=500,
        jacobian_examples=2),
    "quick": dict(
        mlp_width=1000, mlp_steps=1000, mlp_lr=_MLP_LR, mlp_momentum=0.0, mlp_batch=10,
        ae_sizes=None, ae_steps=600, ae_lr=_AE_LR, ae_momentum=0.9, ae_batch=100,
        curves_train=5000, curves_test=1000, activations=ACTIVATIONS, inits=INITS,
        ae_activations=ACTIVATIONS, log_every=100, monitor_size=300, eval_size=500,
        jacobian_examples=1),
    "full": dict(
        mlp_width=1000, mlp_steps=30000, mlp_lr=_MLP_LR, mlp_momentum=0.0, mlp_batch=10,
        ae_sizes=None, ae_steps=20000, ae_lr=_AE_LR, ae_momentum=0.9, ae_batch=200,
        curves_train=20000, curves_test=10000, activations=ACTIVATIONS, inits=INITS,
        ae_activations=ACTIVATIONS, log_every=500, monitor_size=300, eval_size=5000,
        jacobian_examples=4),
}
MLP_DEPTH = 5
NUM_CLASSES = 10


def _mlp(width: int, activation: str, init: str) -> diagnostics.MLP:
  """The study's MLP (``classifier.net``), initialized by ``models.layer_inits(init, ...)``."""
  shape = types.SimpleNamespace(width=width, depth=MLP_DEPTH, activation=activation,
                                num_classes=NUM_CLASSES)
  return classifier.net(shape, 784, init)


def logistic_xent(logits, batch):
  """The autoencoder's loss, ``loss_fn(outputs, batch)`` with the batch its own target."""
  return losses.sigmoid_cross_entropy(logits, batch)


def _has(folder: pathlib.Path, name: str) -> bool:
  return any((folder / f"{name}{z}").is_file() for z in ("", ".gz"))


def _load_mnist(data_dir, rng: np.random.Generator):
  """(train_x, train_y, test_x, test_y, description): full MNIST, or the t10k files split.

  Only ``data_dir`` is looked in (nothing outside it is a default): all four files give
  60,000 / 10,000; only the t10k files are shuffled and split 8,000 train / 2,000 test.

  Raises:
    FileNotFoundError: no ``data_dir``, or it holds no MNIST files (the caller skips the task).
  """
  if data_dir is None:
    raise FileNotFoundError("no --data_dir given: the MLP task needs the MNIST idx files "
                            "(t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz])")
  folder = pathlib.Path(data_dir)
  if _has(folder, "train-images-idx3-ubyte"):
    (tx, ty), (vx, vy) = mnist.load_split(folder, "train"), mnist.load_split(folder, "test")
    return tx, ty, vx, vy, f"MNIST {folder} (60,000 train / 10,000 test)"
  x, y = mnist.load_split(folder, "test")
  order = rng.permutation(len(x))
  x, y = x[order], y[order]
  return x[:8000], y[:8000], x[8000:], y[8000:], (
      f"MNIST test files in {folder}, shuffled and split 8,000 train / 2,000 test")


# --- training through the engine ---------------------------------------------------------------
def _base_config(kind: str, cfg, steps: int, seed: int, lr: float, momentum: float, batch: int):
  """An engine config of the study's protocol: one seed, constant-mu momentum (SGD at 0),
  evaluations and diagnostics every ``log_every`` updates, no progress bar."""
  c = sweep.default_config(kind)
  c.steps = (steps // cfg["log_every"]) * cfg["log_every"]  # whole monitoring periods
  if c.steps <= 0:
    raise ValueError(f"steps ({steps}) must be at least log_every ({cfg['log_every']})")
  c.eval_every = c.diagnostics_every = cfg["log_every"]
  c.chunk = min(c.chunk, cfg["log_every"])
  c.progress = False
  c.momentum_schedule = "constant"
  c.batch_size = batch
  c.sweep.seed, c.sweep.rule = (seed,), ("cm",)
  c.sweep.mu_max, c.sweep.learning_rate = (float(momentum),), (float(lr),)
  return c


def _snapshot(model, monitor, loss_fn, k: int):
  """The engine's ``snapshot``: raw activations and deltas and the Jacobian spectra."""
  def snapshot(params, data):
    v = diagnostics.layer_values(model, params, monitor(data), loss_fn, jacobian_examples=k)
    return {key: v[key] for key in ("acts", "deltas", "jacobian_sv") if key in v}
  return snapshot


def _engine_run(config, data, **hooks) -> list[dict]:
  """``train.train_and_evaluate`` without files; returns the record of every evaluation."""
  records = []
  train.train_and_evaluate(config, None, callback=lambda step, r: records.append(r), data=data,
                           **hooks)
  return records


def _timing(records, log_every) -> dict[str, float]:
  """Median seconds per update, per diagnostics call and per evaluation (first calls left out:
  the diagnostics compile on their first call)."""
  steady = records[2:] or records[1:]
  med = lambda key: float(np.median([r["timing"][key] for r in steady])) if steady else np.nan
  return {"step": med("chunks") / log_every, "diagnostics": med("diagnostics"),
          "evaluation": med("evaluation")}


def _stack(trees):
  return jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *trees)


def _train_mlp(cfg, act, data, seed) -> dict[str, Any]:
  """One population (the inits) of MLPs with hidden activation ``act``: the run's arrays."""
  c = _base_config("classifier", cfg, cfg["mlp_steps"], seed, cfg["mlp_lr"][act],
                   cfg["mlp_momentum"], cfg["mlp_batch"])
  c.width, c.depth, c.activation, c.num_classes = cfg["mlp_width"], MLP_DEPTH, act, NUM_CLASSES
  c.sweep.init = tuple(cfg["inits"])
  c.eval_cases, c.diagnostics_cases = cfg["eval_size"], cfg["monitor_size"]
  m = cfg["monitor_size"]
  snapshot = _snapshot(_mlp(cfg["mlp_width"], act, ""),
                       lambda d: (d["test_x"][:m], d["test_y"][:m]), classifier.xent,
                       cfg["jacobian_examples"])
  records = _engine_run(c, data, snapshot=snapshot)
  per = lambda split: {"loss": np.stack([r[f"{split}_xent"] for r in records]),
                       "error": np.stack([r[f"{split}_error"] for r in records])}
  return dict(steps=np.array([r["step"] for r in records]),
              stats=_stack([r["diagnostics"] for r in records]), train=per("train"),
              test=per("test"), init=jax.tree.map(np.asarray, records[0]["snapshot"]),
              end=jax.tree.map(np.asarray, records[-1]["snapshot"]),
              seconds=_timing(records, cfg["log_every"]))


def _train_autoencoders(cfg, act, sizes, images, seed) -> dict[str, Any]:
  """One autoencoder run per init (the init rule is not a traced axis of that problem),
  hidden activation ``act``; the runs' arrays with the inits stacked as members."""
  model = autoencoder_from_sizes(sizes, "logistic", activation=act)
  m, e = cfg["monitor_size"], cfg["eval_size"]

  def stats(params, data):
    # Held-out monitoring (the problem's own hook uses training cases), and the training loss.
    out = diagnostics.layer_stats(model, params, data["test"][:m], logistic_xent)
    x = data["train"][:e]
    return {**out, "train_xent": logistic_xent(model.apply({"params": params}, x), x)}

  snapshot = _snapshot(model, lambda d: d["test"][:m], logistic_xent, cfg["jacobian_examples"])
  runs = []
  for init in cfg["inits"]:
    c = _base_config("autoencoder", cfg, cfg["ae_steps"], seed, cfg["ae_lr"][act],
                     cfg["ae_momentum"], cfg["ae_batch"])
    c.dataset, c.init, c.activation, c.final_steps = "curves", init, act, 0
    c.encoder_sizes = tuple(sizes)
    runs.append(_engine_run(c, images, diagnostics=stats, snapshot=snapshot))
  cat = lambda trees: jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *trees)
  # [T, M, ...]: evaluation t of every init's run.
  at = [cat([run[t]["diagnostics"] for run in runs]) for t in range(len(runs[0]))]
  diag = _stack(at)
  errors = lambda key: np.stack([np.concatenate([run[t][key] for run in runs])
                                 for t in range(len(runs[0]))])
  timings = [_timing(run, cfg["log_every"]) for run in runs]
  return dict(steps=np.array([r["step"] for r in runs[0]]),
              stats={k: v for k, v in diag.items() if k != "train_xent"},
              train={"loss": diag["train_xent"], "error": errors("train_error")},
              test={"loss": diag["loss"], "error": errors("test_error")},
              init=cat([run[0]["snapshot"] for run in runs]),
              end=cat([run[-1]["snapshot"] for run in runs]),
              # The inits train one after another: a step of the four costs their sum.
              seconds={k: float(sum(t[k] for t in timings)) for k in timings[0]})


# --- the study -------------------------------------------------------------------------------
def run(workdir, preset: str = "quick", data_dir=None, seed: int = 0,
        sizes: dict[str, Any] | None = None) -> dict[str, Any]:
  """Runs the study and writes figures, ``glorot_results.json`` and ``glorot_report.md``.

  Args:
    workdir: output folder (created).
    preset: "tiny" (CI: about 3 CPU-minutes with the MLP task, mostly compilation), "quick"
      (minutes) or "full".
    data_dir: folder with the MNIST idx files (all four: full MNIST; only t10k: the 8,000 /
      2,000 split) and possibly ``digs3pts_1.mat`` (else CURVES is generated). Without MNIST
      files there the MLP task is skipped, with the reason in the report.
    seed: seed for data order, initialization and minibatches.
    sizes: values replacing the preset's (keys of ``PRESETS[preset]``), e.g. from
      configs/glorot.py's overrides.

  Returns:
    Dict with "rows" (summary numbers per task/activation/init), "findings" (sentences),
    "baselines" (test error of the trivial predictor per task),
    "figures" (paths), "report" (path), "timing" (median seconds per training step, per
    diagnostics call and per evaluation, per task and activation) and "skipped" (tasks left
    out, with the reason).

  Raises:
    ValueError: unknown preset, bad seed or a key of ``sizes`` the preset does not have.
  """
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid: {sorted(PRESETS)}")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be an int >= 0, got {seed!r}")
  unknown = sorted(set(sizes or {}) - set(PRESETS[preset]))
  if unknown:
    raise ValueError(f"unknown field(s) {unknown}; valid: {sorted(PRESETS[preset])}")
  cfg = {**PRESETS[preset], **(sizes or {})}
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  rows, figures, timing, skipped, notes, baselines = [], [], {}, {}, [], {}
  t_start = time.perf_counter()

  # MLP classification.
  try:
    tx, ty, vx, vy, source = _load_mnist(data_dir, rng)
  except (FileNotFoundError, ValueError) as e:  # DataError is a ValueError
    skipped["mlp"] = str(e)
  else:
    notes.append(f"mlp data: {source}")
    data = classifier.LabeledData(tx, ty, vx, vy)
    baselines["mlp"] = float(np.mean(vy[:cfg["eval_size"]] != np.bincount(ty).argmax()))
    runs, specs = {}, {}
    for act in cfg["activations"]:
      runs[act] = _train_mlp(cfg, act, data, seed)
      specs[act] = diagnostics.layer_spec(_mlp(cfg["mlp_width"], act, ""))
      rows += report.summarize("mlp", act, cfg["inits"], runs[act], specs[act])
      timing[f"mlp/{act}"] = runs[act]["seconds"]
    figures += report.plot_task("mlp", runs, cfg["inits"], specs, workdir)

  # CURVES autoencoder.
  sizes = tuple(cfg["ae_sizes"] or AUTOENCODER_SIZES["curves"])
  mat = pathlib.Path(data_dir) / curves.FILENAME if data_dir else None
  if mat is not None and mat.is_file():
    images = curves.read_mat(mat)
    images = type(images)(images.train[:cfg["curves_train"]], images.test[:cfg["curves_test"]])
    source = f"{mat} (first {len(images.train)} train / {len(images.test)} test)"
  else:
    images = curves.generate(cfg["curves_train"], cfg["curves_test"], seed)
    source = (f"generated CURVES-like images, {cfg['curves_train']} train / "
              f"{cfg['curves_test']} test")
  notes.append(f"curves data: {source}, encoder {sizes}")
  images = Dataset(np.asarray(images.train), np.asarray(images.test))
  baselines["curves"] = float(np.mean(np.sum((images.test - images.train.mean(0)) ** 2, axis=1)))
  runs, specs = {}, {}
  for act in cfg["ae_activations"]:
    runs[act] = _train_autoencoders(cfg, act, sizes, images, seed)
    specs[act] = diagnostics.layer_spec(autoencoder_from_sizes(sizes, "logistic", activation=act))
    rows += report.summarize("curves", act, cfg["inits"], runs[act], specs[act])
    timing[f"curves/{act}"] = runs[act]["seconds"]
  figures += report.plot_task("curves", runs, cfg["inits"], specs, workdir)

  sentences = report.findings(rows, baselines)
  seconds = time.perf_counter() - t_start
  path = workdir / "glorot_report.md"
  report.write_report(path, cfg, preset=preset, seed=seed, seconds=seconds,
                      platform=jax.devices()[0].platform, mlp_depth=MLP_DEPTH, rows=rows,
                      sentences=sentences, notes=notes, skipped=skipped, timing=timing,
                      figures=figures)
  result = dict(rows=rows, findings=sentences, figures=figures, report=str(path), timing=timing,
                skipped=skipped, seconds=seconds, preset=preset, baselines=baselines)
  (workdir / "glorot_results.json").write_text(json.dumps(result, indent=1))
  return result


def train_and_evaluate(config, workdir) -> dict[str, Any]:
  """Runs the study from a configs/glorot.py config (what `run` returns)."""
  sizes = config.to_dict()
  preset, data_dir, seed = sizes.pop("preset"), sizes.pop("data_dir"), sizes.pop("seed")
  return run(workdir, preset, data_dir, seed, sizes=sizes)


def main(argv=None):
  host.set_defaults()  # before jax starts a backend
  overrides, argv = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="output folder")
  parser.add_argument("--config", default=None,
                      help="config file and size, e.g. configs/glorot.py:quick (the default); "
                           "--config.<field>=value overrides a field")
  parser.add_argument("--preset", default=None, choices=sorted(glorot_config.SIZES),
                      help="the same as --config configs/glorot.py:PRESET")
  parser.add_argument("--data_dir", default=None, type=argtypes.existing_dir,
                      help="folder with the MNIST idx files (sets --config.data_dir)")
  parser.add_argument("--seed", type=argtypes.nonnegative_int, default=None,
                      help="sets --config.seed")
  args = parser.parse_args(argv)
  if args.config and args.preset:
    parser.error("give --config or --preset, not both")
  spec = args.config or f"{glorot_config.__file__}:{args.preset or 'quick'}"
  try:
    config = cli.load_config(spec, overrides)
  except ValueError as e:
    cli.fail(e)
  for key in ("data_dir", "seed"):
    if getattr(args, key) is not None:
      config[key] = getattr(args, key)
  result = train_and_evaluate(config, args.workdir)
  print(pathlib.Path(result["report"]).read_text())


if __name__ == "__main__":
  main()
