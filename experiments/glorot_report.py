"""Figures and the markdown report of the Glorot & Bengio study (experiments/glorot.py).

``plot_task`` draws a task's six figures from its runs (one per hidden activation: the
statistics every ``log_every`` updates and the snapshots at initialization and at the end);
``summarize`` turns a run into the summary rows; ``findings`` writes sentences computed from
the rows; ``write_report`` assembles ``glorot_report.md``.
"""
import pathlib
from typing import Any

import numpy as np

from mominit import diagnostics

# The initializations in the order of the report (every init of mominit.models.layer_inits, the
# one rule of the paper's nets: SI's tanh conversion, the N(0, 0.01^2) baseline, Glorot's two).
INITS = ("glorot_standard", "glorot_normalized", "sparse", "gaussian")

BASELINE_LABELS = {"mlp": "always predicting the most frequent training class",
                   "curves": "reconstructing every image as the mean training image"}
INIT_LABELS = {"glorot_standard": "standard", "glorot_normalized": "normalized",
               "sparse": "sparse (SI)", "gaussian": "N(0, 0.01^2)"}


def _bounded_layers(spec) -> list[int]:
  """Indices of the hidden layers with a bounded activation (what the figures show)."""
  return [i for i, layer in enumerate(spec) if layer.activation in diagnostics.SATURATION_BOUNDS]


def _layer_names(task: str, spec) -> list[str]:
  if task == "mlp":
    return [f"layer {i + 1}" for i in range(len(spec))]
  return [layer.path[0] for layer in spec]


def summarize(task, activation, inits, run, spec) -> list[dict[str, Any]]:
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


def plot_task(task, runs, inits, spec_of, workdir) -> list[str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  acts = list(runs)
  cols = [INIT_LABELS[i] for i in inits]
  files = []
  q = list(diagnostics.PERCENTILES)
  lo2, lo16, hi84, hi98 = q.index(2.0), q.index(16.0), q.index(84.0), q.index(98.0)

  def rows():  # per activation (a row of panels): its run, bounded layers and layer names
    for r, act in enumerate(acts):
      yield r, act, runs[act], _bounded_layers(spec_of[act]), _layer_names(task, spec_of[act])

  def save(fig, name, title):
    fig.suptitle(title, fontsize=10)
    path = workdir / f"{task}_{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files.append(str(path))

  # 1. Mean (line), 16-84 percentile band and 2/98 percentiles (dotted) of each hidden layer.
  fig, axes = _grid(plt, acts, cols)
  for r, act, run, hidden, names in rows():
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
  for r, act, run, hidden, names in rows():
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
    for r, act, run, hidden, names in rows():
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
  for r, act, run, hidden, names in rows():
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


def findings(rows, baselines) -> list[str]:
  """Sentences computed from the summary rows (each states the numbers it rests on).

  Args:
    rows: ``summarize`` rows.
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


def write_report(path: pathlib.Path, cfg: dict[str, Any], *, preset, seed, seconds, platform,
                 mlp_depth, rows, sentences, notes, skipped, timing, figures) -> None:
  """Writes ``glorot_report.md`` (protocol, summary table, findings, diagnostics cost, figures)
  from the study's sizes ``cfg`` and what ``experiments.glorot.run`` computed."""
  timing_lines = [
      f"- {k}: {v['step'] * 1e3:.2f} ms per training step of the population; one diagnostics "
      f"call (layer_stats on {cfg['monitor_size']} cases, no Jacobians) "
      f"{v['diagnostics'] * 1e3:.1f} ms = {v['diagnostics'] / v['step']:.0f} steps, i.e. "
      f"{v['diagnostics'] / (v['step'] * cfg['log_every']):.0%} overhead every {cfg['log_every']} "
      f"steps; evaluation {v['evaluation'] * 1e3:.1f} ms" for k, v in timing.items()]
  path.write_text("\n".join([
      f"# Glorot & Bengio (2010) study, preset `{preset}`",
      "",
      f"Seed {seed}; {seconds:.0f} s on {platform}. Trained by the engine "
      "(`mominit.train.train_and_evaluate`): the MLP as problem kind `classifier`, the "
      "initializations of one activation as one vmapped population on the same minibatches; "
      "the autoencoder as kind `autoencoder`, one run per initialization on the same minibatches "
      "(same seed). Minibatches follow a per-epoch permutation of the training set. "
      f"MLP: 784-{'-'.join([str(cfg['mlp_width'])] * mlp_depth)}-10, {cfg['mlp_steps']} SGD "
      f"updates (learning rate {_lrs(cfg['mlp_lr'], cfg['activations'])}, momentum "
      f"{cfg['mlp_momentum']}, batch {cfg['mlp_batch']}). CURVES autoencoder: {cfg['ae_steps']} "
      f"updates (learning rate {_lrs(cfg['ae_lr'], cfg['ae_activations'])}, momentum "
      f"{cfg['ae_momentum']}, batch {cfg['ae_batch']}). Statistics every {cfg['log_every']} "
      f"updates on {cfg['monitor_size']} held-out (test) cases; the 'top' layer is the last "
      "hidden layer with a bounded activation (for the autoencoder: the last decoder hidden "
      "layer); 'bottom' the first. Training loss: cross-entropy on the first "
      f"{cfg['eval_size']} training cases. Test error: classification error on the first "
      f"{cfg['eval_size']} test cases (mlp) or per-case squared reconstruction error on the "
      "whole test set (curves).",
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
      *[f"- {s}" for s in sentences],
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
