"""Glorot & Bengio (2010) study: activations, gradients and Jacobians across layers and training.

Two nets (docs/paper.md section 7):
- "mlp": 784 -> 5 hidden layers -> 10-way softmax on MNIST (the 10k test-set files split
  8,000 train / 2,000 test, or full MNIST when ``--data_dir`` holds the training files);
- "curves": the CURVES deep autoencoder (docs/paper.md section 4; a narrower one in ``tiny``).
Every hidden activation (sigmoid, tanh, softsign) is crossed with every initialization (standard
and normalized Glorot, sparse SI, the poorly scaled N(0, 0.01^2)); the initializations of one
activation train together as one vmapped population on the same minibatches, with plain
minibatch SGD with (optional) momentum from optax.

Every ``log_every`` steps ``mominit.diagnostics.layer_stats`` (no Jacobians) runs on a fixed
monitoring batch of held-out cases (300 as in Glorot & Bengio). At initialization and at the end
the Jacobian spectra and the raw per-layer values (for histograms) are taken too.

Writes to DIR: ``{task}_activations.png`` (mean and percentiles of each hidden layer over
training), ``{task}_saturation.png``, ``{task}_activation_hist_end.png``,
``{task}_backprop_hist_init.png``, ``{task}_jacobian_sv.png``, ``{task}_learning_curves.png``,
``glorot_results.json`` and ``glorot_report.md`` (summary table and findings computed from the
numbers).

Usage: ``python -m experiments.glorot --workdir DIR
[--config configs/glorot.py:tiny|quick|medium|paper] [--config.FIELD=VALUE ...] [--data_dir D]``
(``--preset NAME`` is the same as
``--config configs/glorot.py:NAME``), or ``train_and_evaluate(config, workdir)`` from a notebook.
"""
import argparse
import functools
import json
import pathlib
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import glorot as glorot_config
from experiments import argtypes
from experiments import cli
from experiments import host
from mominit import diagnostics
from mominit import losses
from mominit.data import curves
from mominit.data import mnist
from mominit.models import AUTOENCODER_SIZES, DeepAutoencoder, layer_inits

ACTIVATIONS = ("sigmoid", "tanh", "softsign")
# Every initialization of the paper's autoencoders (mominit.models.layer_inits, the one rule both
# use: SI's tanh conversion, the N(0, 0.01^2) baseline, Glorot's two).
INITS = ("glorot_standard", "glorot_normalized", "sparse", "gaussian")
BASELINE_LABELS = {"mlp": "always predicting the most frequent training class",
                   "curves": "reconstructing every image as the mean training image"}
INIT_LABELS = {"glorot_standard": "standard", "glorot_normalized": "normalized",
               "sparse": "sparse (SI)", "gaussian": "N(0, 0.01^2)"}

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
# XLA options for functions compiled to run once or twice: compile ~3x faster, run slower.
_RUN_ONCE = {"xla_backend_optimization_level": 0}


def _mlp(width: int, activation: str, init: str) -> diagnostics.MLP:
  sizes = (784,) + (width,) * MLP_DEPTH + (NUM_CLASSES,)
  acts = (activation,) * MLP_DEPTH + ("linear",)
  kernel_inits, bias_inits = layer_inits(init, acts)
  return diagnostics.MLP(sizes, activation=activation, output="linear",
                         kernel_init=kernel_inits, bias_init=bias_inits)


def _autoencoder(sizes: tuple[int, ...], activation: str, init: str) -> DeepAutoencoder:
  k = len(sizes) - 1
  acts = (activation,) * (k - 1) + ("linear",) + (activation,) * (k - 1) + ("logistic",)
  kernel_inits, bias_inits = layer_inits(init, acts)
  return DeepAutoencoder(encoder_sizes=sizes, activation=activation, output="logistic",
                         kernel_init=kernel_inits, bias_init=bias_inits)


# Losses take (model outputs, batch) with batch = (inputs, targets); both are means over cases.
def softmax_xent(logits, batch):
  return jnp.mean(optax.softmax_cross_entropy(logits, batch[1]))


def logistic_xent(logits, batch):
  return losses.sigmoid_cross_entropy(logits, batch[1])


def _mlp_metrics(logits, batch):
  return {"loss": softmax_xent(logits, batch),
          "error": jnp.mean(jnp.argmax(logits, -1) != jnp.argmax(batch[1], -1))}


def _ae_metrics(logits, batch):
  # The paper's reported error: per-case sum of squared pixel errors of sigmoid(logits).
  return {"loss": logistic_xent(logits, batch),
          "error": losses.squared_error(jax.nn.sigmoid(logits), batch[1])}


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


def _train_population(models, loss_fn, metrics_fn, data, *, steps, lr, momentum, batch_size,
                      log_every, monitor_size, eval_size, jacobian_examples, key):
  """Trains the models (same architecture, different inits) as one vmapped population.

  Returns a dict of NumPy arrays: "steps" [T], "stats" (layer_stats pytree [T, M, ...]),
  "train"/"test" metrics [T, M], "init"/"end" (layer_values with Jacobian spectra, [M, ...]),
  and timings.
  """
  train_x, train_y, test_x, test_y = data
  model = models[0]  # all share the layout; only the initializers differ
  key, init_key = jax.random.split(key)
  # One compiled call for all members; it runs once, so XLA's backend optimizations (most of
  # the compile time of the unrolled random-number generators) are not worth it.
  params = jax.jit(lambda keys, x: jax.tree.map(lambda *a: jnp.stack(a), *[
      m.init(k, x) for m, k in zip(models, keys)]), compiler_options=_RUN_ONCE)(
          jax.random.split(init_key, len(models)), train_x[:1])
  opt = optax.sgd(lr, momentum=momentum if momentum else None)
  opt_state = jax.vmap(opt.init)(params)
  train_x, train_y = jnp.asarray(train_x), jnp.asarray(train_y)
  monitor = (jnp.asarray(test_x[:monitor_size]), jnp.asarray(test_y[:monitor_size]))
  train_eval = (train_x[:eval_size], train_y[:eval_size])
  test_eval = (jnp.asarray(test_x[:eval_size]), jnp.asarray(test_y[:eval_size]))

  # Data enter the compiled functions as arguments (closed-over arrays would be baked into the
  # programs as constants). Minibatches are drawn with replacement, the same for every member.
  def grad_step(carry, step_key, train):
    params, opt_state = carry
    idx = jax.random.randint(step_key, (batch_size,), 0, train[0].shape[0])
    batch = (train[0][idx], train[1][idx])
    grads = jax.vmap(jax.grad(lambda p: loss_fn(model.apply(p, batch[0]), batch)))(params)
    updates, opt_state = jax.vmap(opt.update)(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  @jax.jit
  def chunk(params, opt_state, chunk_key, train):
    (params, opt_state), _ = jax.lax.scan(functools.partial(grad_step, train=train),
                                          (params, opt_state),
                                          jax.random.split(chunk_key, log_every))
    return params, opt_state

  # The diagnostics and the evaluation compile separately so their costs can be reported.
  diagnose = jax.jit(jax.vmap(
      lambda p, batch: diagnostics.layer_stats(model, p, batch, loss_fn, jacobian_examples=0),
      in_axes=(0, None)))

  @jax.jit
  def evaluate(params, train_eval, test_eval):
    return jax.vmap(lambda p: (metrics_fn(model.apply(p, train_eval[0]), train_eval),
                               metrics_fn(model.apply(p, test_eval[0]), test_eval)))(params)

  @functools.partial(jax.jit, compiler_options=_RUN_ONCE)
  def snapshot(params, batch):
    return jax.vmap(lambda p: diagnostics.layer_values(
        model, p, batch, loss_fn, jacobian_examples=jacobian_examples))(params)

  to_np = lambda tree: jax.tree.map(np.asarray, tree)
  train = (train_x, train_y)
  init_snapshot = to_np(snapshot(params, monitor))
  records = [(to_np(diagnose(params, monitor)), *to_np(evaluate(params, train_eval, test_eval)))]
  # Timings skip the first (compiling) calls so that they are steady-state.
  seconds = {"step": [], "diagnostics": [], "evaluation": []}
  num_chunks = steps // log_every
  for c in range(num_chunks):
    key, chunk_key = jax.random.split(key)
    t0 = time.perf_counter()
    params, opt_state = jax.block_until_ready(chunk(params, opt_state, chunk_key, train))
    t1 = time.perf_counter()
    stats = to_np(jax.block_until_ready(diagnose(params, monitor)))
    t2 = time.perf_counter()
    records.append((stats, *to_np(evaluate(params, train_eval, test_eval))))
    t3 = time.perf_counter()
    if c:
      seconds["step"].append((t1 - t0) / log_every)
      seconds["diagnostics"].append(t2 - t1)
      seconds["evaluation"].append(t3 - t2)
  end_snapshot = to_np(snapshot(params, monitor))
  stack = lambda trees: jax.tree.map(lambda *a: np.stack(a), *trees)
  stats, train_metrics, test_metrics = stack(records)
  return dict(steps=np.arange(num_chunks + 1) * log_every, stats=stats, train=train_metrics,
              test=test_metrics, init=init_snapshot, end=end_snapshot,
              seconds={k: float(np.median(v)) if v else float("nan") for k, v in seconds.items()})


def _bounded_layers(spec) -> list[int]:
  """Indices of the hidden layers with a bounded activation (what the figures show)."""
  return [i for i, layer in enumerate(spec) if layer.activation in diagnostics.SATURATION_BOUNDS]


def _layer_names(task: str, spec) -> list[str]:
  if task == "mlp":
    return [f"layer {i + 1}" for i in range(len(spec))]
  return [layer.path[0] for layer in spec]


def _summarize(task, activation, inits, run, spec) -> list[dict[str, Any]]:
  """One row per init: the numbers the table and the findings use."""
  hidden = _bounded_layers(spec)
  top, bottom = hidden[-1], hidden[0]
  stats, steps = run["stats"], run["steps"]
  rows = []
  for m, init in enumerate(inits):
    top_mean = stats["act_mean"][:, m, top]
    top_sat = stats["saturation"][:, m, top]
    delta_var = stats["backprop_var"][0, m]
    wgrad_var = stats["weight_grad_var"][0, m]
    sv_init = [run["init"]["jacobian_sv"][i][m] for i in hidden]
    sv_end = [run["end"]["jacobian_sv"][i][m] for i in hidden]
    rows.append(dict(
        task=task, activation=activation, init=init,
        train_loss_init=float(run["train"]["loss"][0, m]),
        train_loss_final=float(run["train"]["loss"][-1, m]),
        test_error_final=float(run["test"]["error"][-1, m]),
        top_mean_init=float(top_mean[0]), top_mean_final=float(top_mean[-1]),
        top_mean_min=float(top_mean.min()), top_mean_min_step=int(steps[int(top_mean.argmin())]),
        top_saturation_init=float(top_sat[0]),
        top_saturation_max=float(top_sat.max()),
        top_saturation_max_step=int(steps[int(top_sat.argmax())]),
        top_saturation_final=float(top_sat[-1]),
        # Variance of back-propagated gradients, lowest / top hidden layer, at initialization.
        backprop_var_ratio_init=float(delta_var[bottom] / delta_var[top]),
        weight_grad_var_ratio_init=float(wgrad_var[bottom] / wgrad_var[top]),
        jacobian_sv_mean_init=float(np.mean([s.mean() for s in sv_init])),
        jacobian_sv_mean_end=float(np.mean([s.mean() for s in sv_end])),
        # Spread: largest / median singular value, averaged over hidden layers.
        jacobian_sv_spread_init=float(np.mean([s[0] / np.median(s) for s in sv_init])),
    ))
  return rows


# --- figures ---------------------------------------------------------------------------------
def _grid(plt, rows, cols, scale=(3.2, 2.4), sharex=True):
  fig, axes = plt.subplots(len(rows), len(cols), figsize=(scale[0] * len(cols),
                                                          scale[1] * len(rows) + 0.6),
                           squeeze=False, sharex=sharex)
  # Fixed margins: tight_layout cost seconds per figure on busy CPUs.
  fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=1 - 0.5 / fig.get_figheight(),
                      wspace=0.3, hspace=0.3)
  for r, row in enumerate(rows):
    axes[r, 0].set_ylabel(row)
  for c, col in enumerate(cols):
    axes[0, c].set_title(col, fontsize=9)
  return fig, axes


def _plot_task(task, runs, inits, spec_of, workdir) -> list[str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  acts = list(runs)
  cols = [INIT_LABELS[i] for i in inits]
  files = []
  q = list(diagnostics.PERCENTILES)
  lo2, lo16, hi84, hi98 = q.index(2.0), q.index(16.0), q.index(84.0), q.index(98.0)

  def save(fig, name, title):
    fig.suptitle(title, fontsize=10)
    path = workdir / f"{task}_{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files.append(str(path))

  # 1. Mean (line), 16-84 percentile band and 2/98 percentiles (dotted) of each hidden layer.
  fig, axes = _grid(plt, acts, cols)
  for r, act in enumerate(acts):
    run, spec = runs[act], spec_of[act]
    hidden = _bounded_layers(spec)
    names = _layer_names(task, spec)
    for c in range(len(inits)):
      ax = axes[r, c]
      for j, i in enumerate(hidden):
        color = plt.cm.viridis(j / max(len(hidden) - 1, 1))
        pct = run["stats"]["act_percentiles"][:, c, i]
        ax.plot(run["steps"], run["stats"]["act_mean"][:, c, i], color=color, lw=1.2,
                label=names[i])
        ax.fill_between(run["steps"], pct[:, lo16], pct[:, hi84], color=color, alpha=0.12)
        ax.plot(run["steps"], pct[:, lo2], ":", color=color, lw=0.7)
        ax.plot(run["steps"], pct[:, hi98], ":", color=color, lw=0.7)
  for ax in axes[-1]:
    ax.set_xlabel("update")
  axes[0, -1].legend(fontsize=6, loc="best")
  save(fig, "activations", f"{task}: activation mean (line), 16-84% band, 2/98% (dotted) "
       "per hidden layer during training")

  # 2. Saturation fraction of each hidden layer during training.
  fig, axes = _grid(plt, acts, cols)
  for r, act in enumerate(acts):
    run, spec = runs[act], spec_of[act]
    hidden = _bounded_layers(spec)
    names = _layer_names(task, spec)
    for c in range(len(inits)):
      for j, i in enumerate(hidden):
        axes[r, c].plot(run["steps"], run["stats"]["saturation"][:, c, i],
                        color=plt.cm.viridis(j / max(len(hidden) - 1, 1)), label=names[i])
      axes[r, c].set_ylim(-0.02, 1.02)
  for ax in axes[-1]:
    ax.set_xlabel("update")
  axes[0, -1].legend(fontsize=6, loc="best")
  save(fig, "saturation", f"{task}: fraction of saturated units (within 0.01 of an asymptote)")

  # 3. Activation histograms at the end; 4. back-propagated gradient histograms at init, of
  # log10 |delta|: the layers' gradients differ by orders of magnitude, which a linear axis hides.
  for name, when, key, title in (
      ("activation_hist_end", "end", "acts",
       "activation values at the end of training (normalized histograms, log density)"),
      ("backprop_hist_init", "init", "deltas",
       "log10 |d loss_b / d z| per layer at initialization (normalized histograms of the "
       "non-zero values)")):
    fig, axes = _grid(plt, acts, cols, sharex=False)
    for r, act in enumerate(acts):
      run, spec = runs[act], spec_of[act]
      hidden = _bounded_layers(spec)
      names = _layer_names(task, spec)
      for c in range(len(inits)):
        values = [run[when][key][i][c].ravel().astype(np.float64) for i in hidden]
        if key == "acts":
          lo, hi = diagnostics.SATURATION_BOUNDS[act]
        else:
          # Exact zeros (e.g. SI units with no outgoing connection) have no logarithm: count them.
          zeros = [f"{names[i]}: {np.mean(v == 0):.0%}" for i, v in zip(hidden, values)
                   if np.mean(v == 0) > 0.005]
          if zeros:
            axes[r, c].text(0.02, 0.97, "zeros " + ", ".join(zeros), fontsize=6, va="top",
                            transform=axes[r, c].transAxes)
          values = [np.log10(np.abs(v[v != 0])) if np.any(v != 0) else np.zeros(1)
                    for v in values]
          lo = min(float(np.percentile(v, 1)) for v in values)
          hi = max(float(np.percentile(v, 99.9)) for v in values)
        for j, (i, v) in enumerate(zip(hidden, values)):
          density, edges = np.histogram(v, bins=60, range=(lo, hi), density=True)
          axes[r, c].stairs(density, edges, color=plt.cm.viridis(j / max(len(hidden) - 1, 1)),
                            label=names[i])
        if key == "acts":
          axes[r, c].set_yscale("log")
    axes[0, -1].legend(fontsize=6, loc="best")
    save(fig, name, f"{task}: {title}")

  # 5. Jacobian singular values per layer at initialization (solid) and the end (dashed).
  fig, axes = _grid(plt, acts, cols)
  for r, act in enumerate(acts):
    run, spec = runs[act], spec_of[act]
    hidden = _bounded_layers(spec)
    names = _layer_names(task, spec)
    for c in range(len(inits)):
      ax = axes[r, c]
      for j, i in enumerate(hidden):
        color = plt.cm.viridis(j / max(len(hidden) - 1, 1))
        for when, style in (("init", "-"), ("end", "--")):
          sv = run[when]["jacobian_sv"][i][c]
          ax.plot(np.linspace(0, 1, len(sv)), np.maximum(sv, 1e-8), style, color=color, lw=1,
                  label=names[i] if when == "init" else None)
      ax.axhline(1.0, color="k", lw=0.5)
      ax.set_yscale("log")
  for ax in axes[-1]:
    ax.set_xlabel("singular value rank (fraction)")
  axes[0, -1].legend(fontsize=6, loc="best")
  save(fig, "jacobian_sv", f"{task}: singular values of d a_i / d a_(i-1), init (solid) and end "
       "(dashed)")

  # 6. Learning curves.
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
  fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
  styles = ["-", "--", ":", "-."]
  for r, act in enumerate(acts):
    run = runs[act]
    for c, init in enumerate(inits):
      kw = dict(color=f"C{r}", ls=styles[c % 4], label=f"{act} / {INIT_LABELS[init]}")
      axes[0, 0].plot(run["steps"], run["train"]["loss"][:, c], **kw)
      axes[0, 1].plot(run["steps"], run["test"]["error"][:, c], **kw)
  axes[0, 0].set_ylabel("training loss (nats per case)")
  axes[0, 1].set_ylabel("test classification error" if task == "mlp"
                        else "test squared reconstruction error")
  for ax in axes[0]:
    ax.set_xlabel("update")
  axes[0, 1].legend(fontsize=6, ncol=2)
  save(fig, "learning_curves", f"{task}: learning curves")
  return files


# --- report ------------------------------------------------------------------------------------
def _fmt(x, digits=3):
  return f"{x:.{digits}g}"


def _table(rows) -> str:
  head = ("| task | act | init | train loss init -> end | test error | top layer mean init / "
          "min (update) / end | top saturated init / max / end | backprop var bottom/top | "
          "W-grad var bottom/top | mean Jacobian SV init -> end | SV max/median |")
  lines = [head, "|" + "---|" * 11]
  for r in rows:
    lines.append(
        f"| {r['task']} | {r['activation']} | {INIT_LABELS[r['init']]} | "
        f"{_fmt(r['train_loss_init'])} -> {_fmt(r['train_loss_final'])} | "
        f"{_fmt(r['test_error_final'])} | {r['top_mean_init']:.2f} / {r['top_mean_min']:.2f} "
        f"({r['top_mean_min_step']}) / {r['top_mean_final']:.2f} | "
        f"{r['top_saturation_init']:.0%} / {r['top_saturation_max']:.0%} / "
        f"{r['top_saturation_final']:.0%} | "
        f"{_fmt(r['backprop_var_ratio_init'])} | {_fmt(r['weight_grad_var_ratio_init'])} | "
        f"{_fmt(r['jacobian_sv_mean_init'])} -> {_fmt(r['jacobian_sv_mean_end'])} | "
        f"{_fmt(r['jacobian_sv_spread_init'])} |")
  return "\n".join(lines)


def _sigmoid_sentence(task: str, r: dict[str, Any]) -> str:
  """The top sigmoid layer's trajectory (Glorot & Bengio: driven towards 0, then recovering)."""
  text = (f"{task}, sigmoid, {INIT_LABELS[r['init']]} init: the top hidden layer's mean activation "
          f"went from {r['top_mean_init']:.2f} to a minimum of {r['top_mean_min']:.2f} at update "
          f"{r['top_mean_min_step']} and was {r['top_mean_final']:.2f} at the end; "
          f"{r['top_saturation_max']:.0%} of its values were at most 0.01 from an asymptote at "
          f"the peak and {r['top_saturation_final']:.0%} at the end")
  # A mean below 0.1 means most units sit far out on the lower tail of the sigmoid.
  if r["top_mean_min"] < 0.1 or r["top_saturation_max"] > 0.5:
    leaving = []
    if r["top_mean_final"] > r["top_mean_min"] + 0.02:
      leaving.append("its mean has risen since its minimum")
    if r["top_saturation_final"] < r["top_saturation_max"] - 0.1:
      leaving.append("its saturated fraction has fallen since its peak")
    text += (". The layer was driven towards saturation at 0"
             + (f", and units are leaving it again ({' and '.join(leaving)})." if leaving else
                "; it had not left it by the end of the run."))
  else:
    text += "; it was not driven towards saturation in this run."
  return text


def _findings(rows, baselines) -> list[str]:
  """Sentences computed from the summary rows (each states the numbers it rests on).

  Args:
    rows: ``_summarize`` rows.
    baselines: task -> test error of the trivial predictor (``BASELINE_LABELS``).
  """
  out = []
  by = {(r["task"], r["activation"], r["init"]): r for r in rows}
  for task in sorted({r["task"] for r in rows}):
    task_rows = [r for r in rows if r["task"] == task]
    # Saturation of the top hidden layer with sigmoid units, and the other activations.
    for init in INITS:
      if (task, "sigmoid", init) in by:
        out.append(_sigmoid_sentence(task, by[(task, "sigmoid", init)]))
    sig = by.get((task, "sigmoid", "glorot_standard"))
    for act in ("tanh", "softsign"):
      r = by.get((task, act, "glorot_standard"))
      if r and sig:
        out.append(
            f"{task}, {act}, standard init: at most {r['top_saturation_max']:.0%} of the top "
            f"layer's values were saturated (sigmoid: {sig['top_saturation_max']:.0%}); its mean "
            f"activation stayed between {min(r['top_mean_init'], r['top_mean_min']):.2f} and "
            f"{max(r['top_mean_init'], r['top_mean_final']):.2f}.")
    # Back-propagated and weight gradients across layers at init, standard vs normalized.
    for act in sorted({r["activation"] for r in task_rows}):
      s, n = by.get((task, act, "glorot_standard")), by.get((task, act, "glorot_normalized"))
      if not (s and n):
        continue
      closer = (abs(np.log(n["backprop_var_ratio_init"]))
                < abs(np.log(s["backprop_var_ratio_init"])))
      out.append(
          f"{task}, {act}: at initialization the back-propagated gradient variance of the lowest "
          f"hidden layer is {_fmt(s['backprop_var_ratio_init'])} times that of the top hidden "
          f"layer with standard init and {_fmt(n['backprop_var_ratio_init'])} times with "
          f"normalized init, so normalized init keeps it "
          + ("closer to uniform across layers" if closer else "no more uniform here")
          + f"; for the weight gradients the ratios are {_fmt(s['weight_grad_var_ratio_init'])} "
          f"and {_fmt(n['weight_grad_var_ratio_init'])}. The mean Jacobian singular value is "
          f"{_fmt(s['jacobian_sv_mean_init'])} (standard) vs "
          f"{_fmt(n['jacobian_sv_mean_init'])} (normalized)"
          + (", the latter nearer 1." if abs(n["jacobian_sv_mean_init"] - 1)
             < abs(s["jacobian_sv_mean_init"] - 1) else "."))
    # Learning: divergence, the trivial baseline, best and worst, the poorly scaled Gaussian.
    diverged = [r for r in task_rows if r["train_loss_final"] > 1.1 * r["train_loss_init"]]
    if diverged:
      out.append(f"{task}: training loss rose (diverged at this learning rate) for " + ", ".join(
          f"{r['activation']} / {INIT_LABELS[r['init']]} ({_fmt(r['train_loss_init'])} -> "
          f"{_fmt(r['train_loss_final'])})" for r in diverged) + ".")
    base = baselines.get(task)
    at_base = [] if base is None else [
        r for r in task_rows if r["test_error_final"] >= 0.98 * base]
    if at_base:
      out.append(
          f"{task}: {len(at_base)} of {len(task_rows)} runs ended no better than the trivial "
          f"baseline (test error {_fmt(base)}, {BASELINE_LABELS[task]}): "
          + ", ".join(f"{r['activation']} / {INIT_LABELS[r['init']]}" for r in at_base) + ".")
    best = min(task_rows, key=lambda r: r["test_error_final"])
    worst = max(task_rows, key=lambda r: r["test_error_final"])
    if len(at_base) == len(task_rows):
      pass  # the baseline sentence already says it all
    elif worst["test_error_final"] <= 1.02 * best["test_error_final"]:
      out.append(
          f"{task}: every run ended within 2% of the same test error "
          f"({_fmt(best['test_error_final'])} to {_fmt(worst['test_error_final'])}): all sit on "
          "the same plateau at this length of training.")
    else:
      out.append(
          f"{task}: lowest final test error {_fmt(best['test_error_final'])} with "
          f"{best['activation']} / {INIT_LABELS[best['init']]}; highest "
          f"{_fmt(worst['test_error_final'])} with {worst['activation']} / "
          f"{INIT_LABELS[worst['init']]}.")
    for r in task_rows:
      if r["init"] != "gaussian":
        continue
      peers = [p for p in task_rows if p["activation"] == r["activation"] and p is not r]
      if not peers:
        continue
      lead = min(peers, key=lambda p: p["train_loss_final"])
      stuck = (r["train_loss_final"] > 0.9 * r["train_loss_init"]
               and r["train_loss_final"] > 1.1 * lead["train_loss_final"])
      out.append(
          f"{task}, {r['activation']}, N(0, 0.01^2): training loss "
          f"{_fmt(r['train_loss_init'])} -> {_fmt(r['train_loss_final'])}, against "
          f"{_fmt(lead['train_loss_final'])} for {INIT_LABELS[lead['init']]}"
          + ("; it did not train, as the paper says of poorly scaled initializations." if stuck
             else "."))
  return out


def _lrs(rates: dict[str, float], activations) -> str:
  return ", ".join(f"{rates[a]} ({a})" for a in activations)


def run(workdir, preset: str = "quick", data_dir=None, seed: int = 0,
        sizes: dict[str, Any] | None = None) -> dict[str, Any]:
  """Runs the study and writes figures, ``glorot_results.json`` and ``glorot_report.md``.

  Args:
    workdir: output folder (created).
    preset: "tiny" (CI, well under a minute on 2 CPU cores), "quick" (minutes) or "full".
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
  key = jax.random.key(seed)
  rows, figures, timing, skipped, notes, baselines = [], [], {}, {}, [], {}
  monitoring = {k: cfg[k] for k in ("log_every", "monitor_size", "eval_size",
                                    "jacobian_examples")}
  t_start = time.perf_counter()

  # MLP classification.
  try:
    tx, ty, vx, vy, source = _load_mnist(data_dir, rng)
  except (FileNotFoundError, ValueError) as e:  # DataError is a ValueError
    skipped["mlp"] = str(e)
  else:
    notes.append(f"mlp data: {source}")
    onehot = lambda y: np.eye(NUM_CLASSES, dtype=np.float32)[y]
    data = (tx, onehot(ty), vx, onehot(vy))
    baselines["mlp"] = float(np.mean(vy[:cfg["eval_size"]] != np.bincount(ty).argmax()))
    runs, specs = {}, {}
    for act in cfg["activations"]:
      models = [_mlp(cfg["mlp_width"], act, init) for init in cfg["inits"]]
      key, sub = jax.random.split(key)
      runs[act] = _train_population(
          models, softmax_xent, _mlp_metrics, data, steps=cfg["mlp_steps"],
          lr=cfg["mlp_lr"][act], momentum=cfg["mlp_momentum"], batch_size=cfg["mlp_batch"],
          key=sub, **monitoring)
      specs[act] = diagnostics.layer_spec(models[0])
      rows += _summarize("mlp", act, cfg["inits"], runs[act], specs[act])
      timing[f"mlp/{act}"] = runs[act]["seconds"]
    figures += _plot_task("mlp", runs, cfg["inits"], specs, workdir)

  # CURVES autoencoder.
  sizes = cfg["ae_sizes"] or AUTOENCODER_SIZES["curves"]
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
  data = (images.train, images.train, images.test, images.test)
  test_eval = images.test[:cfg["eval_size"]]
  baselines["curves"] = float(np.mean(np.sum((test_eval - images.train.mean(0)) ** 2, axis=1)))
  runs, specs = {}, {}
  for act in cfg["ae_activations"]:
    models = [_autoencoder(tuple(sizes), act, init) for init in cfg["inits"]]
    key, sub = jax.random.split(key)
    runs[act] = _train_population(
        models, logistic_xent, _ae_metrics, data, steps=cfg["ae_steps"],
        lr=cfg["ae_lr"][act], momentum=cfg["ae_momentum"], batch_size=cfg["ae_batch"], key=sub,
        **monitoring)
    specs[act] = diagnostics.layer_spec(models[0])
    rows += _summarize("curves", act, cfg["inits"], runs[act], specs[act])
    timing[f"curves/{act}"] = runs[act]["seconds"]
  figures += _plot_task("curves", runs, cfg["inits"], specs, workdir)

  findings = _findings(rows, baselines)
  seconds = time.perf_counter() - t_start
  report = workdir / "glorot_report.md"
  timing_lines = [
      f"- {k}: {v['step'] * 1e3:.2f} ms per training step of the population; one diagnostics "
      f"call (layer_stats on {cfg['monitor_size']} cases, no Jacobians) "
      f"{v['diagnostics'] * 1e3:.1f} ms = {v['diagnostics'] / v['step']:.0f} steps, i.e. "
      f"{v['diagnostics'] / (v['step'] * cfg['log_every']):.0%} overhead every {cfg['log_every']} "
      f"steps; evaluation {v['evaluation'] * 1e3:.1f} ms" for k, v in timing.items()]
  report.write_text("\n".join([
      f"# Glorot & Bengio (2010) study, preset `{preset}`",
      "",
      f"Seed {seed}; {seconds:.0f} s on {jax.devices()[0].platform}. "
      f"Initializations per activation train as one vmapped population on the same minibatches. "
      f"MLP: 784-{'-'.join([str(cfg['mlp_width'])] * MLP_DEPTH)}-10, {cfg['mlp_steps']} SGD "
      f"updates (learning rate {_lrs(cfg['mlp_lr'], cfg['activations'])}, momentum "
      f"{cfg['mlp_momentum']}, batch {cfg['mlp_batch']}). CURVES autoencoder: {cfg['ae_steps']} "
      f"updates (learning rate {_lrs(cfg['ae_lr'], cfg['ae_activations'])}, momentum "
      f"{cfg['ae_momentum']}, batch {cfg['ae_batch']}). Statistics every {cfg['log_every']} "
      f"updates on {cfg['monitor_size']} held-out cases; the 'top' layer is the last hidden "
      "layer with a bounded activation (for the autoencoder: the last decoder hidden layer); "
      "'bottom' the first. Test error: classification error (mlp) or per-case squared "
      "reconstruction error (curves).",
      "",
      *[f"- {n}" for n in notes],
      *[f"- skipped {k}: {v}" for k, v in skipped.items()],
      "",
      "## Summary",
      "",
      _table(rows),
      "",
      "## Findings (generated from the numbers above)",
      "",
      *[f"- {s}" for s in findings],
      "",
      "## Cost of the diagnostics",
      "",
      *timing_lines,
      "",
      "## Figures",
      "",
      *[f"- ![{pathlib.Path(f).stem}]({pathlib.Path(f).name})" for f in figures],
      "",
  ]))
  result = dict(rows=rows, findings=findings, figures=figures, report=str(report), timing=timing,
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
