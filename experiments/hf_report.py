"""The HF study's outputs: the table (hf_table.md), the two figures and the rows
`experiments.claims` checks (`results_frame`), from the dict `experiments.hf.run` returns."""
from __future__ import annotations

import numpy as np
import pandas as pd


def read_at(rec, axis, x):
  """Training error of the last record with rec[axis] <= x."""
  xs = np.asarray(rec[axis])
  i = int(np.searchsorted(xs, x, side="right")) - 1
  return rec["train_error"][max(i, 0)]


def plot_curves(workdir, records, budget):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  for name, rec in records.items():
    for ax, key, scale in ((axes[0], "evals", 1e-6), (axes[1], "seconds", 1.)):
      ax.plot(np.asarray(rec[key]) * scale, rec["train_error"], label=name,
              marker="o" if len(rec[key]) < 30 else None, markersize=3)
  axes[0].axvline(budget[0] * 1e-6, color="gray", ls=":", lw=1)
  axes[1].axvline(budget[1], color="gray", ls=":", lw=1)
  axes[0].set_xlabel("gradient + curvature case-evaluations (millions)")
  axes[1].set_xlabel("optimizer wall time (s)")
  for ax in axes:
    ax.set_ylabel("train squared error")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  axes[0].set_title("CURVES: equal gradient + curvature evaluations")
  axes[1].set_title("CURVES: equal wall time")
  fig.tight_layout()
  fig.savefig(workdir / "hf_curves.png", dpi=110)
  plt.close(fig)


def plot_quadratic(workdir, quad):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  it = quad["iterations"]
  curves_ = {"CG": quad["cg"], "CG, Martens preconditioner": quad["pcg"]}
  curves_.update({f"NAG, mu={mu}": q for mu, q in quad["nag"].items()})
  ref = quad["q_reference"]
  for name, q in curves_.items():
    style = "-" if name.startswith("CG") else "--"
    axes[0].plot(it, q, style, label=name)
    gap = np.maximum(np.asarray(q) - ref, 1e-7 * abs(ref))
    axes[1].plot(it, gap, style, label=name)
  axes[0].set_ylabel("q(p) (quadratic model, q(0) = 0)")
  axes[1].set_ylabel("q(p) - q*  (q*: lowest q reached; floor 1e-7 |q*|)")
  axes[1].set_yscale("log")
  for ax in axes:
    ax.set_xlabel("iteration (from p = 0)")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.suptitle(f"HF quadratic from the middle of a CURVES run (lambda = {quad['damping']:.3g})")
  fig.tight_layout()
  fig.savefig(workdir / "hf_quadratic.png", dpi=110)
  plt.close(fig)


def results_frame(result: dict) -> pd.DataFrame:
  """The rows `experiments.claims` checks, from the dict `run` returns (or hf.json).

  Returns:
    A DataFrame with one row per method (experiment "hf": variant "hf", "hf_no_warm_start",
    "hf_momentum_like", "hf_1cg" or "nag"; errors at equal evaluations E, at equal wall time T
    and at the end; `compared_at`: "budget" or "final", which of them the preset compares; the
    mean-image error of the training subset as `baseline`) and one row per
    solver of the appendix quadratic (experiment "hf_quadratic": solver "cg", "pcg" or "nag",
    NAG's mu, q after 10 iterations, after half and after all of them, and q*).
  """
  common = dict(preset=result["preset"], baseline=result["baseline"],
                initial_error=result["initial_error"], steps=result["config"]["hf_steps"])
  rows = [dict(experiment="hf", **common, **{k: r[k] for k in (
      "method", "variant", "updates", "evals", "seconds", "mean_cg_iters", "learning_rate",
      "error_at_equal_evals", "error_at_equal_time", "final_error")},
                compared_at=r.get("compared_at", "budget"))
          for r in result["table"]]
  quad = result["quadratic"]
  it = len(quad["cg"]) - 1
  solvers = [("cg", None, quad["cg"]), ("pcg", None, quad["pcg"])] + [
      ("nag", float(mu), q) for mu, q in quad["nag"].items()]
  for solver, mu, q in solvers:
    rows.append(dict(experiment="hf_quadratic", preset=result["preset"], solver=solver, mu=mu,
                     iterations=it, q_10=q[min(10, it)], q_half=q[it // 2], q_final=q[it],
                     q_reference=quad["q_reference"]))
  return pd.DataFrame(rows)


def write_table(workdir, cfg, preset, rows, budget, records, quad, baseline, backtrack):
  """Writes workdir/hf_table.md: the methods' table and the appendix quadratic's."""
  lines = [
      f"# HF vs NAG on CURVES ({preset} preset)", "",
      f"{cfg['num_train']} training cases, autoencoder {'-'.join(map(str, cfg['sizes']))} "
      f"(logistic output, cross-entropy), SI init. HF: gradient batch {cfg['grad_batch']}, "
      f"curvature batch {cfg['curv_batch']}, at most {cfg['max_cg']} CG steps "
      f"({cfg['momentum_like_cg']} for the momentum-like variant), CG backtracking "
      f"\"{backtrack}\". NAG (trained by the engine, `mominit.train`): batch "
      f"{cfg['nag_batch']}, mu_max {cfg['nag_mu_max']}, best of lr {list(cfg['nag_lrs'])}; "
      "its wall time is its share of the population's optimizer time.",
      "",
      ("Compared at final errors: every method ran its own full length (HF "
       f"{cfg['hf_steps']} updates, NAG {cfg.get('nag_steps')} updates); the budgets below are "
       "for the record. " if cfg.get("compare") == "final" else "") +
      f"Budgets set by the main HF run ({records['HF']['updates'][-1]} updates): "
      f"E = {budget[0] / 1e6:.3f} M gradient + curvature case-evaluations, "
      f"T = {budget[1]:.2f} s optimizer wall time. Error = training squared reconstruction "
      "error (sum over pixels, mean over cases) at theta; outputting the mean training image "
      f"scores {baseline:.3f}.", "",
      "| method | updates | grad+curv evals (M) | loss-only evals (M) | wall (s) | mean CG iters "
      "| error at E | error at T | final error |",
      "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    cg = "" if r["mean_cg_iters"] is None else f"{r['mean_cg_iters']:.1f}"
    lines.append(
        f"| {r['method']} | {r['updates']} | {r['evals'] / 1e6:.3f} | "
        f"{r['loss_evals'] / 1e6:.3f} | {r['seconds']:.2f} | {cg} | "
        f"{r['error_at_equal_evals']:.3f} | {r['error_at_equal_time']:.3f} | "
        f"{r['final_error']:.3f} |")
  it = len(quad["cg"]) - 1
  nag_final = {mu: q[-1] for mu, q in quad["nag"].items()}
  best_mu = min(nag_final, key=nag_final.get)
  lines += [
      "", f"## CG vs NAG on the HF quadratic of update {cfg['hf_steps'] // 2}", "",
      f"lambda = {quad['damping']:.4g}, largest eigenvalue of G + lambda I = "
      f"{quad['top_eigenvalue']:.4g} (NAG step 1/L). q after {it} iterations from zero "
      f"(q* ~ {quad['q_reference']:.5g}):", "",
      "| solver | q after 10 | q after " + str(it // 2) + f" | q after {it} |", "|---|---|---|---|"]
  solvers = {"CG": quad["cg"], "CG, Martens preconditioner": quad["pcg"]}
  solvers.update({f"NAG, mu={mu}" + (" (best)" if mu == best_mu else ""): q
                  for mu, q in quad["nag"].items()})
  for name, q in solvers.items():
    lines.append(f"| {name} | {q[min(10, it)]:.5g} | {q[it // 2]:.5g} | {q[it]:.5g} |")
  (workdir / "hf_table.md").write_text("\n".join(lines) + "\n")
