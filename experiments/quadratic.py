"""CM vs NAG on quadratics: `python -m experiments.quadratic --workdir DIR`.

Reproduces the paper's 2-D oblong quadratic figure (appendix; section 2.1) and checks Theorem 2.1
numerically. Writes:
  DIR/quadratic.png          GD, CM and NAG with the same eps and mu on the oblong quadratic.
  DIR/theorem_check.json     `mominit.quadratic.theorem_check` results (constant mu and eps, and
                             the paper's momentum schedule with a stepped learning rate) and the
                             oscillation counts of the figure's runs.
and prints the theorem tables. From a notebook: `run(workdir)` returns the same numbers as a dict.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import optax
from matplotlib.figure import Figure  # No pyplot: leaves a notebook's backend alone; PNG via Agg.

from experiments import argtypes
from experiments import host
from mominit import quadratic
from mominit import schedules

_COLORS = {"gd": "tab:gray", "cm": "tab:red", "nag": "tab:blue"}
_LABELS = {"gd": "GD", "cm": "CM", "nag": "NAG"}


def plot_oblong(paths: dict, eigenvalues, learning_rate: float, momentum: float) -> Figure:
  """The oblong-quadratic figure.

  Args:
    paths: {"gd" | "cm" | "nag": [T + 1, 2] iterates theta_t}.
    eigenvalues: (lambda_x, lambda_y) of the axis-aligned quadratic (minimiser 0).
    learning_rate: eps (for the title).
    momentum: mu (for the title).

  Returns:
    A matplotlib `Figure`: trajectories on the contours (left), the steep coordinate y_t (top
    right) and f(theta_t) on a log scale (bottom right).
  """
  lam = np.asarray(eigenvalues, dtype=np.float64)
  fig = Figure(figsize=(12, 5.5), layout="constrained")
  grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1))
  ax = fig.add_subplot(grid[:, 0])
  everything = np.concatenate(list(paths.values()))
  x_lo, x_hi = everything[:, 0].min(), everything[:, 0].max()
  y_lim = 1.15 * np.abs(everything[:, 1]).max()
  pad = 0.05 * (x_hi - x_lo)
  gx, gy = np.meshgrid(np.linspace(x_lo - pad, x_hi + pad, 400), np.linspace(-y_lim, y_lim, 300))
  f = 0.5 * (lam[0] * gx**2 + lam[1] * gy**2)
  ax.contour(gx, gy, f, levels=np.geomspace(f.max() * 1e-4, f.max(), 14), colors="0.8",
             linewidths=0.8)
  for name, path in paths.items():
    # GD last and dashed: it shares the valley floor with NAG for its first few units of x.
    ax.plot(path[:, 0], path[:, 1], "--x" if name == "gd" else "-o", color=_COLORS[name],
            markersize=2.5, linewidth=1, label=_LABELS[name], zorder=3 if name == "gd" else 2)
  ax.plot([0], [0], "k*", markersize=10)
  ax.set_xlabel("x (low curvature, $\\lambda_x$ = %g)" % lam[0])
  ax.set_ylabel("y (high curvature, $\\lambda_y$ = %g)" % lam[1])
  ax.set_title(f"Oblong quadratic, same $\\epsilon$ = {learning_rate:g} and $\\mu$ = {momentum:g}:"
               " CM zig-zags along the steep axis, NAG does not")
  ax.legend(loc="upper right")

  ax_y = fig.add_subplot(grid[0, 1])
  ax_f = fig.add_subplot(grid[1, 1])
  for name, path in paths.items():
    steps = np.arange(len(path))
    ax_y.plot(steps, path[:, 1], color=_COLORS[name], label=_LABELS[name], linewidth=1)
    ax_f.semilogy(steps, 0.5 * (lam[0] * path[:, 0]**2 + lam[1] * path[:, 1]**2) + 1e-300,
                  color=_COLORS[name], label=_LABELS[name], linewidth=1)
  ax_y.axhline(0.0, color="k", linewidth=0.5)
  ax_y.set_ylabel("steep coordinate $y_t$")
  ax_y.legend(loc="upper right")
  ax_f.set_ylabel("$f(\\theta_t)$")
  ax_f.set_xlabel("update t")
  ax_f.set_ylim(bottom=max(1e-12, ax_f.get_ylim()[0]))
  return fig


def run(workdir, learning_rate: float = 0.8, momentum: float = 0.9, num_steps: int = 150,
        theorem_steps: int = 300, seed: int = 0, verbose: bool = True) -> dict:
  """Makes the figure and the theorem checks, writes them to `workdir`, returns the numbers.

  Args:
    workdir: output folder (created if missing).
    learning_rate: eps for the oblong figure.
    momentum: mu for the oblong figure.
    num_steps: updates drawn in the figure.
    theorem_steps: updates compared in the theorem checks.
    seed: seed of the theorem checks' random quadratic.
    verbose: print the tables.

  Returns:
    {"figure": path of the PNG, "oscillations": {method: sign changes of y_t beyond 1% of |y_0|},
     "final_value": {method: f(theta_T)}, "theorem": theorem_check dict (constant mu, eps),
     "theorem_scheduled": theorem_check dict (sutskever_momentum(0.99, period=25) with a final
     phase, and a stepped learning rate)}.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  eigenvalues = (0.002, 1.0)
  x0 = (-10.0, 1.0)
  paths = quadratic.oblong_trajectories(learning_rate, momentum, num_steps, x0, eigenvalues)
  tol = 0.01 * abs(x0[1])
  oscillations = {name: quadratic.sign_changes(path, axis=1, tol=tol)
                  for name, path in paths.items()}
  lam = np.asarray(eigenvalues)
  final_value = {name: float(0.5 * np.sum(lam * path[-1]**2)) for name, path in paths.items()}
  figure_path = workdir / "quadratic.png"
  plot_oblong(paths, eigenvalues, learning_rate, momentum).savefig(figure_path, dpi=110)

  theorem = quadratic.theorem_check(num_steps=theorem_steps, seed=seed)
  # The identity holds update by update, so also with the paper's schedules (mu_t, eps_t).
  scheduled = quadratic.theorem_check(
      learning_rate=optax.piecewise_constant_schedule(1.0, {theorem_steps // 3: 0.5}),
      momentum=schedules.final_phase(schedules.sutskever_momentum(0.99, period=25),
                                     theorem_steps, final_steps=theorem_steps // 5),
      num_steps=theorem_steps, seed=seed)
  results = {
      "figure": str(figure_path),
      "oscillations": oscillations,
      "final_value": final_value,
      "theorem": theorem,
      "theorem_scheduled": scheduled,
  }
  with open(workdir / "theorem_check.json", "w") as f:
    json.dump(results, f, indent=2)
  if verbose:
    print(quadratic.format_theorem_table(theorem))
    print("\nWith mu_t = final_phase(sutskever_momentum(0.99, period=25)) and a stepped eps_t "
          "(columns at t = 0):")
    print(quadratic.format_theorem_table(scheduled))
    print(f"\nOblong quadratic (eps = {learning_rate:g}, mu = {momentum:g}, {num_steps} updates): "
          "sign changes of y beyond 1% of |y_0|: "
          + ", ".join(f"{_LABELS[k]} {v}" for k, v in oscillations.items()))
    print(f"Figure: {figure_path}")
  return results


def main(argv=None) -> None:
  """Command-line entry point (argparse, so it does not clash with other modules' absl flags)."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Output folder.")
  parser.add_argument("--learning_rate", type=argtypes.positive_float, default=0.8,
                      help="eps of the figure.")
  parser.add_argument("--momentum", type=argtypes.momentum, default=0.9, help="mu of the figure.")
  parser.add_argument("--num_steps", type=argtypes.positive_int, default=150,
                      help="Updates in the figure.")
  parser.add_argument("--theorem_steps", type=argtypes.positive_int, default=300,
                      help="Updates checked.")
  parser.add_argument("--seed", type=argtypes.nonnegative_int, default=0,
                      help="Seed of the theorem check.")
  parser.add_argument("--data_dir", default=None,
                      help="Unused (the quadratics are built in); every experiment takes it.")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  run(args.workdir, args.learning_rate, args.momentum, args.num_steps, args.theorem_steps,
      args.seed)


if __name__ == "__main__":
  main()
