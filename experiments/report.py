"""Tables, learning curves and machine notes shared by the reproduction experiments.

The experiments (`autoencoders`, `init_scale`, `rnn`) produce one results table each: a pandas
DataFrame with one row per trained member, as returned by `mominit.train.train_and_evaluate`,
plus the columns `experiment`, `problem` and `baseline`. This module turns such tables into the
paper's tables (best learning rate per cell) and their runs' `metrics.jsonl` into learning-curve
figures. Everything here is a pure function of its arguments except the plotting (writes a PNG).

Best-learning-rate rule (Tables 1, 3, 5 of the paper; docs/paper.md sections 4, 5): within a cell
(e.g. dataset, rule, mu_max) the learning rate with the lowest MEAN over seeds of the final error
wins; a diverged member (or a non-finite error) counts as +inf, so one diverged seed disqualifies
its learning rate. Ties go to the smaller mean of the tie-break column (if given), then to the
smaller learning rate. The cell reports mean, standard deviation (ddof 1), min and max over the
seeds at the winning learning rate.
"""
import json
import math
import os
import pathlib
import platform
import textwrap
import warnings
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure  # No pyplot: leaves a notebook's backend alone.

# Line styles shared by every figure, so NAG and CM look the same everywhere: NAG in blues,
# CM in reds, SGD in black; darker = larger mu_max.
MU_LEVELS = (0.9, 0.98, 0.99, 0.995, 0.999)
_RULE_MAPS = {"nag": ("#9ecae1", "#08306b"), "cm": ("#fcae91", "#67000d")}
_RULE_DASHES = {"nag": "-", "cm": "--", "sgd": ":"}
RULE_LABELS = {"nag": "NAG", "cm": "CM", "sgd": "SGD"}
# Per-cell constants that `best_learning_rates` carries into its rows when the table has them:
# which of the paper's tables a row belongs to, and the factor that turns a Table 5 zero-one
# fraction into the paper's unit (`experiments.paper_values.best_row_comparison`).
LABELS = ("experiment", "paper_unit_factor")


def diverged_flags(frame: pd.DataFrame) -> np.ndarray:
  """The `diverged` column as a bool array (False where absent or missing).

  A table read back from results.csv holds Python bools and NaN (rows of other experiments)
  in an object column, where a plain `astype(bool)` would turn NaN into True.
  """
  if "diverged" not in frame:
    return np.zeros(len(frame), bool)
  return np.array([str(v).strip().lower() in ("true", "1", "1.0") for v in frame["diverged"]],
                  bool)


def _error_values(frame: pd.DataFrame, error: str) -> np.ndarray:
  """Errors as float with diverged members and non-finite values mapped to +inf."""
  values = frame[error].to_numpy(np.float64).copy()
  values[diverged_flags(frame)] = np.inf
  values[~np.isfinite(values)] = np.inf
  return values


def best_learning_rates(results: pd.DataFrame, error: str,
                        cell: Sequence[str] = ("problem", "rule", "mu_max"),
                        tie_break: Optional[str] = None,
                        also: Iterable[str] = ()) -> pd.DataFrame:
  """Picks the best learning rate of every cell (see the module docstring for the rule).

  Args:
    results: one row per member with the columns in `cell`, `learning_rate`, `seed`, `error`
      and (optionally) `diverged`.
    error: the column minimised (e.g. "train_error", "zero_one").
    cell: the columns that define a cell; every other axis but `learning_rate` and `seed` must
      be constant within a cell.
    tie_break: a column whose mean over seeds breaks ties of `error` (e.g. "test_loss" for the
      zero-one error, which ties often); None: ties go to the smaller learning rate.
    also: more columns to summarise (mean and std over the seeds of the winning learning rate,
      as `<name>_mean`, `<name>_std`), e.g. "error_before_final".

  Returns:
    One row per cell (sorted by the cell columns): the cell values; `learning_rate` (the
    winner); `mean`, `std` (NaN with one seed), `min`, `max` of `error` over its seeds (inf
    where a seed diverged); `n_seeds`; `n_diverged`; `candidates` (JSON {lr: mean} of every
    learning rate tried, for the record); the `also` summaries; and the `LABELS` columns the
    table has (their value at the winning learning rate), which name the paper's cell.

  Raises:
    ValueError: if a needed column is missing.
  """
  cell = list(cell)
  needed = cell + ["learning_rate", "seed", error] + ([tie_break] if tie_break else []) + list(also)
  missing = [c for c in needed if c not in results.columns]
  if missing:
    raise ValueError(f"results table lacks column(s) {missing}; it has {list(results.columns)}")
  rows = []
  for key, group in results.groupby(cell, sort=True, dropna=False):
    key = key if isinstance(key, tuple) else (key,)
    options = []
    for lr, members in group.groupby("learning_rate", sort=True):
      values = _error_values(members, error)
      tie = _error_values(members, tie_break).mean() if tie_break else 0.0
      options.append((values.mean(), tie, lr, members, values))
    mean, _, lr, members, values = min(options, key=lambda o: o[:3])
    row = dict(zip(cell, key))
    row.update(
        learning_rate=lr, mean=float(mean),
        std=float(np.std(values, ddof=1)) if len(values) > 1 and np.all(np.isfinite(values))
        else (float("nan") if len(values) < 2 else float("inf")),
        min=float(values.min()), max=float(values.max()), n_seeds=int(len(values)),
        n_diverged=int(np.sum(~np.isfinite(values))),
        candidates=json.dumps({f"{o[2]:g}": float(o[0]) for o in options}))
    for name in LABELS:  # constant labels a cell's paper comparison needs
      if name in members.columns and name not in row:
        row[name] = members[name].iloc[0]
    for name in also:
      extra = _error_values(members, name)
      row[f"{name}_mean"] = float(extra.mean())
      row[f"{name}_std"] = float(np.std(extra, ddof=1)) if len(extra) > 1 else float("nan")
    rows.append(row)
  return pd.DataFrame(rows)


def format_error(mean: float, std: float = float("nan"), n_diverged: int = 0,
                 n_seeds: int = 1, digits: int = 3, fixed: bool = False) -> str:
  """A table cell: "mean ± std" (std only with 2+ seeds); "diverged" when the mean is inf.

  Args:
    mean: mean over seeds.
    std: standard deviation over seeds (NaN: not shown).
    n_diverged: seeds that diverged (inf mean).
    n_seeds: seeds in the cell.
    digits: significant digits (or decimals if `fixed`).
    fixed: fixed-point format (for zero-one errors in [0, 1]).
  """
  if not math.isfinite(mean):
    return f"diverged ({n_diverged}/{n_seeds})" if n_diverged else "n/a"
  if fixed:
    text, spread = f"{mean:.{digits}f}", f"{std:.{digits}f}"
  else:  # '#' keeps trailing zeros (27.0, not 27); the spread gets 2 significant digits.
    text, spread = f"{mean:#.{digits}g}".rstrip("."), f"{std:#.2g}".rstrip(".")
  if math.isfinite(std) and n_seeds > 1:
    return f"{text} ± {spread}"
  return text


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                   numeric: bool = True) -> str:
  """A GitHub-markdown table: first column left-aligned, the others right-aligned (numbers)
  or, with `numeric=False`, left-aligned (text)."""
  align = "---:" if numeric else ":---"
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join([":---"] + [align] * (len(header) - 1)) + "|"]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def cell_text(best_row: pd.Series, fixed: bool = False, digits: int = 3) -> str:
  """Formats one row of `best_learning_rates` as "mean ± std<br>eps=lr"."""
  text = format_error(best_row["mean"], best_row["std"], best_row["n_diverged"],
                      best_row["n_seeds"], digits=digits, fixed=fixed)
  return f"{text}<br>ε={best_row['learning_rate']:g}"


def paper_cell_text(best_row, ratios: Optional[dict] = None, name: str = "",
                    fixed: bool = False, digits: int = 3) -> str:
  """`cell_text` with the paper's value and our ratio to it, where the paper has the cell:
  "0.081 ± 0.002 (paper 0.074, x1.09)<br>ε=0.01"; a Table 5 cell whose unit differs from the
  paper's (memorization: wrong recall steps per sequence) shows both: "0.126 = 0.63/seq (...)".

  Args:
    best_row: a row of `best_learning_rates` (with its `LABELS` columns).
    ratios: if given, `ratios[name]` is set to the ratio (for `paper_values.summary_line`).
    name: the cell's name in `ratios`.
    fixed, digits: as for `format_error`.
  """
  from experiments import paper_values  # pylint: disable=import-outside-toplevel
  text = format_error(best_row["mean"], best_row["std"], best_row["n_diverged"],
                      best_row["n_seeds"], digits=digits, fixed=fixed)
  comparison = paper_values.best_row_comparison(best_row)
  if comparison:
    ours, mean = comparison["ours"], float(best_row["mean"])
    if math.isfinite(mean) and not math.isclose(ours, mean, rel_tol=1e-12, abs_tol=0.0):
      text += f" = {ours:.3g}/seq" if math.isfinite(ours) else " (not the paper's unit)"
    text = paper_values.format_pair(text, comparison["paper"], comparison["ratio"])
    if ratios is not None:
      ratios[name] = comparison["ratio"]
  return f"{text}<br>ε={best_row['learning_rate']:g}"


# ---------------------------------------------------------------------------------------------
# Learning curves.


def read_curves(workdir, errors: Sequence[str]) -> pd.DataFrame:
  """The learning curves of one population run, from its `metrics.jsonl`.

  Args:
    workdir: the run's workdir (as given to `train_and_evaluate`).
    errors: the per-member error names to keep (e.g. ["train_error"]).

  Returns:
    A long DataFrame, one row per (evaluation, member): `step`, the member's axis values,
    the errors, and `alive`. A member's errors after it diverged are NaN (its frozen state is
    not a result).
  """
  from mominit import train  # pylint: disable=import-outside-toplevel
  rows = []
  for record in train.read_metrics(workdir):
    for i, member in enumerate(record["members"]):
      row = {"step": record["step"], **member, "alive": bool(record["alive"][i])}
      at = record["diverged_at"][i]
      dead = at >= 0 and record["step"] > at
      for name in errors:
        row[name] = float("nan") if dead else float(record[name][i])
      rows.append(row)
  return pd.DataFrame(rows)


def line_style(rule: str, mu_max: float, mu_name: str = "μmax") -> dict:
  """Matplotlib keyword arguments for a (rule, mu_max) curve, the same in every figure.

  Args:
    rule: "nag", "cm" or "sgd".
    mu_max: the momentum cap (mu_0 for the RNNs).
    mu_name: how the label names it ("μmax", or "μ0" for the RNNs).
  """
  if rule == "sgd" or mu_max == 0:
    return {"color": "black", "linestyle": _RULE_DASHES["sgd"], "label": "SGD"}
  levels = np.asarray(MU_LEVELS)
  pos = float(np.interp(mu_max, levels, np.linspace(0.0, 1.0, len(levels))))
  light, dark = (np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
                 for c in _RULE_MAPS[rule])
  color = tuple(light + (dark - light) * (0.35 + 0.65 * pos))
  return {"color": color, "linestyle": _RULE_DASHES[rule],
          "label": f"{RULE_LABELS[rule]} {mu_name}={mu_max:g}"}


def _median_band(curves: pd.DataFrame, error: str):
  """Per step: the median and min/max over the members in `curves` (NaNs ignored)."""
  table = curves.pivot_table(index="step", columns="seed", values=error, aggfunc="first",
                             dropna=False).sort_index()
  values = table.to_numpy(np.float64)
  with warnings.catch_warnings():  # All-NaN steps (every seed diverged) give NaN, quietly.
    warnings.simplefilter("ignore", RuntimeWarning)
    return (table.index.to_numpy(), np.nanmedian(values, 1), np.nanmin(values, 1),
            np.nanmax(values, 1))


def plot_curves(panels: dict, error: str, path, *, group: Sequence[str] = ("rule", "mu_max"),
                style=None, ylabel: str = "error", title: str = "",
                baselines: Optional[dict] = None, floor: Optional[float] = None,
                xlabel: str = "update", phases: Optional[dict] = None) -> pathlib.Path:
  """One panel per problem; per curve the median over seeds and the min-max band; log y axis.

  The y axis spans the trained range (every evaluation after update 0, and the baseline), not
  the error at update 0, which is often 10x larger and would squash the range that matters;
  values above the axis are named in the panel. Ticks are plain numbers, several per panel.

  Args:
    panels: {panel title: long curves DataFrame (`read_curves`) already restricted to the
      members to draw (e.g. the best learning rate of each cell)}.
    error: the column plotted.
    path: PNG path to write.
    group: columns whose values make one curve (seeds are aggregated).
    style: function(values dict of `group`) -> plot kwargs with a "label"; default
      `line_style(rule, mu_max)`.
    ylabel: y-axis label.
    title: figure title.
    baselines: {panel title: value} drawn as a grey horizontal line (e.g. the biases baseline).
    floor: values below it are drawn at it (for zero-one errors that reach 0 on a log axis).
    xlabel: x-axis label.
    phases: {panel title: [(first update, last update, label)]} drawn as shaded spans with
      their label (e.g. the autoencoders' final low-momentum phase).

  Returns:
    The path written.
  """
  style = style or (lambda v: line_style(v["rule"], v["mu_max"]))
  n = max(len(panels), 1)
  cols = min(n, 3)
  rows = -(-n // cols)
  fig = Figure(figsize=(5.2 * cols, 3.9 * rows), layout="constrained")
  for k, (name, curves) in enumerate(panels.items()):
    ax = fig.add_subplot(rows, cols, k + 1)
    if curves.empty:
      ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
      continue
    trained, start = [], []
    for values, members in curves.groupby(list(group), sort=True):
      values = dict(zip(group, values if isinstance(values, tuple) else (values,)))
      steps, median, low, high = _median_band(members, error)
      if floor is not None:
        median, low, high = (np.maximum(a, floor) for a in (median, low, high))
      trained += [low[steps > 0], high[steps > 0]]
      start.append(high[steps == 0])
      kw = dict(style(values))
      ax.plot(steps, median, linewidth=1.4, **kw)
      if members["seed"].nunique() > 1:
        ax.fill_between(steps, low, high, color=kw["color"], alpha=0.15, linewidth=0)
    baseline = None
    if baselines and name in baselines and np.isfinite(baselines[name]):
      baseline = max(baselines[name], floor or 0)
      ax.axhline(baseline, color="0.5", linewidth=1, linestyle="-.", label="baseline")
    for first, last, label in (phases or {}).get(name, ()):
      ax.axvspan(first, last, color="0.85", alpha=0.5, linewidth=0, zorder=0)
      ax.text(first, 0.98, f" {label}", transform=ax.get_xaxis_transform(), fontsize=7,
              va="top", ha="left", color="0.25",
              bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1})
    ax.set_yscale("log")
    limits = _trained_limits(trained, baseline)
    if limits is not None:
      ax.set_ylim(*limits)
      first = np.concatenate(start) if start else np.array([])
      first = first[np.isfinite(first) & (first > limits[1])]
      if first.size:
        ax.text(0.01, 0.01, f"update 0: {first.max():.3g} (above the axis)",
                transform=ax.transAxes, fontsize=7, color="0.3")
    _label_log_axis(ax)
    ax.set_title(name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
  if title:
    fig.suptitle(textwrap.fill(title, width=int(95 * cols / 3 + 40)), fontsize=10)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  return path


def phases_of(workdir) -> list:
  """The momentum phases of a population run worth marking on its learning curves, from its
  `config.json`: an autoencoder's final low-momentum phase, an RNN's warm-up at warm_mu.

  Returns:
    [(first update, last update, label)] (empty when the run has neither, or no config.json).
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    return []
  config = json.loads(path.read_text())
  steps = int(config.get("steps", 0))
  if int(config.get("final_steps") or 0) > 0:
    return [(steps - int(config["final_steps"]), steps,
             f"final phase μ={config.get('final_mu', 0.9):g}")]
  if int(config.get("warm_steps") or 0) > 0:
    return [(0, min(int(config["warm_steps"]), steps), f"μ={config.get('warm_mu', 0.9):g}")]
  return []


def _trained_limits(trained: list, baseline: Optional[float]) -> Optional[tuple]:
  """Log-axis limits around the finite positive values of `trained` and the baseline, with a
  margin of 6% of the span on each side (None when there are no such values)."""
  values = np.concatenate(trained) if trained else np.array([])
  values = values[np.isfinite(values) & (values > 0)]
  if baseline is not None and baseline > 0:
    values = np.append(values, baseline)
  if not values.size:
    return None
  low, high = np.log10(values.min()), np.log10(values.max())
  pad = max(0.06 * (high - low), 0.02)
  return 10 ** (low - pad), 10 ** (high + pad)


def _label_log_axis(ax) -> None:
  """Plain-number ticks on a log y axis: within less than a decade and a half, 4-7 evenly
  spaced round values (the default would label none, or only one power of ten); wider, the
  powers of ten and the 2s and 5s between them."""
  low, high = ax.get_ylim()
  plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
  if low > 0 and high / low < 30:
    ticks = ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    ax.yaxis.set_major_locator(ticker.FixedLocator([t for t in ticks if low <= t <= high]))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
  else:
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10))
    ax.yaxis.set_minor_locator(ticker.LogLocator(base=10, subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(plain)
    ax.tick_params(axis="y", which="minor", labelsize=7)
  ax.yaxis.set_major_formatter(plain)


def best_members(curves: pd.DataFrame, best: pd.DataFrame, cell: Sequence[str]) -> pd.DataFrame:
  """The rows of `curves` whose learning rate won their cell in `best`."""
  keys = list(cell) + ["learning_rate"]
  return curves.merge(best[keys], on=keys, how="inner")


# ---------------------------------------------------------------------------------------------
# Machine and versions.


def machine_info() -> dict:
  """Platform, CPU count, load average, JAX devices and package versions (strings)."""
  import jax  # pylint: disable=import-outside-toplevel
  import importlib.metadata as md  # pylint: disable=import-outside-toplevel
  import mominit  # pylint: disable=import-outside-toplevel

  def version(name):
    try:
      return md.version(name)
    except md.PackageNotFoundError:
      return "not installed"

  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  return {
      "platform": platform.platform(),
      "processor": platform.processor() or platform.machine(),
      "python": platform.python_version(),
      "cpu_count": os.cpu_count(),
      "usable_cpus": usable,
      "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
      "jax_backend": jax.default_backend(),
      "jax_devices": [str(d) for d in jax.devices()],
      "versions": {"jax": jax.__version__, "jaxlib": version("jaxlib"), "optax": version("optax"),
                   "flax": version("flax"), "numpy": np.__version__, "pandas": pd.__version__,
                   "mominit": mominit.__version__},
  }
