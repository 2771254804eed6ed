"""Hessian-free optimization vs NAG on CURVES, and CG vs NAG on an HF quadratic (paper sec. 5).

Runs, on a subset of CURVES (logistic outputs, cross-entropy training loss, SI initialization,
the same initial parameters for every method):

- "HF": Martens (2010) HF (`mominit.hf.hessian_free`: warm start decay 0.95, LM damping from 45,
  Martens preconditioner, CG backtracking walking back from the last iterate as in his code,
  line search), gradient on a large minibatch, curvature on a small one; at most `max_cg` CG
  steps (Martens: 250; the presets use fewer to stay cheap on a CPU);
- "HF, no warm start": the same with decay 0 (CG from zero every update);
- "HF, momentum-like": only a few CG steps per update (the warm-start decay acts as mu);
- "HF, 1 CG step": the NAG-like limit (`mominit.hf.nag_like_step` plus the line search);
- "NAG": the engine (`mominit.train.train_and_evaluate`, `experiments.hf_nag`): NAG with the
  paper's autoencoder schedule (mu_max 0.99), minibatches of 200 from per-epoch permutations,
  one population over a small grid of learning rates, the best (lowest error) reported.

Every HF variant shares one compiled step (decay and the CG cap are traced). The main "HF" run
does `steps` updates and fixes the two budgets: E, its number of gradient-and-curvature case
evaluations (cases in gradients + cases in GN-vector products + cases in the per-case gradients
of the preconditioner), and T, its optimizer wall time (compilation and evaluation excluded).
Every other HF variant runs until it has used both E and T (or a cap of updates); the NAG arm's
length is fixed before its run to cover both (`experiments.hf_nag.budget_steps`); the table
reads each curve at E and at T. Forward-only loss evaluations (CG backtracking, line search) are not in
E; they are reported separately (and they are in the wall time). The error reported is the
paper's: the training-set squared reconstruction error (sum over pixels, mean over cases) at
theta, on the whole training subset.

The appendix experiment (`experiments.hf_quadratic`): the quadratic HF builds at update
steps // 2 of the main run is minimised from zero by CG (plain and with Martens'
preconditioner) and by NAG on the quadratic; the figure shows q against iterations (one
curvature-vector product each; NAG's extra product to report q(x_t) is not counted). Tables
and figures: `experiments.hf_report`.

Writes DIR/hf_table.md, DIR/hf_curves.png, DIR/hf_quadratic.png and DIR/hf.json.

Usage: python -m experiments.hf --workdir DIR [--config configs/hf.py:tiny|quick|medium|paper]
[--config.FIELD=VALUE ...] [--steps N] (`--preset NAME` is the same as `--config
configs/hf.py:NAME`), or `train_and_evaluate(config, workdir)` / `run(workdir, preset,
steps=None) -> dict` from a notebook. "tiny" (CI, under a minute on 2 CPU cores)
uses a narrower autoencoder (784-100-50-25-6) on 2,000 cases; "quick" (100 HF updates; 17 min on
2 CPU cores, measured) the paper's 784-400-200-100-50-25-6 on the 20,000 generated CURVES
training cases; "paper" (for GPUs) Martens' scale: full-batch gradients, up to 250 CG steps,
500 HF updates, NAG for 750,000 updates, every method compared at its final error.
`HYBRID_SCHEDULES` holds the paper's hybrid HF-dagger schedules (Curves, Mnist) as data;
`--config configs/hf.py:hybrid_curves` (or hybrid_tiny, hybrid_mnist, ..._paper) runs one
(`experiments.hf_hybrid`). Rows
carry `compared_at` ("budget" or "final"). `results_frame` turns the returned dict into the
rows `experiments.claims` checks (`experiments.reproduce` adds them to results.csv).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from configs import hf as hf_config
from experiments import argtypes
from experiments import cli
from experiments import hf_nag
from experiments import hf_report
from experiments import host
from experiments import populations
from experiments.hf_quadratic import quadratic_experiment
from experiments.hf_report import read_at, results_frame  # pylint: disable=unused-import
from mominit import hf
from mominit import losses
from mominit.data import curves
from mominit.models import AUTOENCODER_SIZES, autoencoder_from_sizes

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        num_train=2000, sizes=(784, 100, 50, 25, 6), hf_steps=4, grad_batch=500,
        curv_batch=100, max_cg=15, momentum_like_cg=3, nag_batch=200, nag_lrs=(0.01, 0.003),
        nag_mu_max=0.99, nag_chunk=20, max_updates_factor=20, quad_iters=30, quad_mus=(0.9, 0.99),
        power_iters=20, seed=0),
    "quick": dict(
        num_train=20000, sizes=AUTOENCODER_SIZES["curves"], hf_steps=100, grad_batch=2000,
        curv_batch=500, max_cg=50, momentum_like_cg=5, nag_batch=200, nag_lrs=(0.01, 0.003),
        nag_mu_max=0.99, nag_chunk=100, max_updates_factor=20, quad_iters=100,
        quad_mus=(0.9, 0.99, 0.995), power_iters=50, seed=0),
    # The paper's scale (meant for GPUs): Martens' CURVES setup (HFDemo: full-batch gradients,
    # curvature on 1/4 of the cases, up to 250 CG steps, 500 updates); every method runs its
    # full length and the methods are compared at their final errors (`compare="final"`), NAG
    # with the paper's autoencoder protocol length (750,000 updates, Table 1's best CURVES
    # cell mu_max 0.999).
    "paper": dict(
        num_train=20000, sizes=AUTOENCODER_SIZES["curves"], hf_steps=500, grad_batch=20000,
        curv_batch=5000, max_cg=250, momentum_like_cg=5, nag_batch=200,
        nag_lrs=(0.05, 0.01, 0.005), nag_mu_max=0.999, nag_chunk=1000, nag_steps=750_000,
        max_updates_factor=1, quad_iters=250, quad_mus=(0.9, 0.99, 0.995, 0.999),
        power_iters=100, seed=0, compare="final"),
}

# The paper's hybrid HF-dagger runs (appendix A.6, docs/paper.md section 9) as phase lists: CG steps
# per update, the fraction of the training set in each minibatch ("full": the whole set),
# warm-start decay, step size eps (a number, or a formula of the update count t), L2 weight
# cost, and the phase's length in CG steps, as the paper states them (None: not stated).
# `experiments.hf_hybrid` runs them (configs/hf.py:hybrid_*), with its readings of the gaps.
HYBRID_SCHEDULES = {
    "curves": dict(final_error=0.058, phases=(
        dict(cg_per_update=50, batch_fraction=1 / 16, decay=0.95, eps=1.0, l2=2e-5,
             cg_steps=250_000),
        dict(cg_per_update=50, batch_fraction=1 / 16, decay=0.999, eps="500 / (t - 4000)",
             l2=2e-5, cg_steps=None),  # length not stated in the paper
        dict(cg_per_update=200, batch_fraction="full", decay=0.995, eps=1.0, l2=2e-5,
             cg_steps=100_000),
        dict(cg_per_update=200, batch_fraction="full", decay=0.995, eps=1.0,
             l2="2e-5 lowered to near 0", cg_steps=500_000),
    )),
    "mnist": dict(final_error=0.69, phases=(
        dict(cg_per_update=50, batch_fraction=1 / 20, decay=0.95, eps=1.0, l2=1e-5,
             cg_steps=25_000),
        dict(cg_per_update=50, batch_fraction=1 / 20, decay=0.995, eps="250 / t", l2=1e-5,
             cg_steps=225_000, error_after=0.81),
        dict(cg_per_update=None, batch_fraction="full gradient, 1/20 curvature", decay=0.995,
             eps=1.0, l2=1e-5, cg_steps=125_000),
    )),
}
LOSS = "sigmoid_cross_entropy"
# Martens' code walks back from the last CG iterate while the objective improves: 2-3 forward
# passes per update instead of one per stored iterate ("best"), usually the same choice.
BACKTRACK = "walk"
EVAL_CHUNK = 2000


# Display name -> the `variant` key of the results rows that `experiments.claims` reads.
VARIANTS = {"HF": "hf", "HF, no warm start": "hf_no_warm_start",
            "HF, momentum-like": "hf_momentum_like", "HF, 1 CG step": "hf_1cg"}


def _hf_variants(cfg):
  return {
      "HF": dict(decay=0.95, max_cg=cfg["max_cg"]),
      "HF, no warm start": dict(decay=0.0, max_cg=cfg["max_cg"]),
      "HF, momentum-like": dict(decay=0.95, max_cg=cfg["momentum_like_cg"]),
      "HF, 1 CG step": dict(decay=0.95, max_cg=1),
  }


def _train_error_fn(apply_fn, data):
  """Jitted params -> (squared reconstruction error, cross-entropy) on the whole `data`."""
  n = data.shape[0]
  chunk = min(EVAL_CHUNK, n)
  if n % chunk:
    raise ValueError(f"num_train ({n}) must be a multiple of {chunk}")
  chunks = data.reshape(n // chunk, chunk, -1)

  @jax.jit
  def evaluate(params):
    def one(x):
      logits = apply_fn(params, x)
      return (losses.squared_error(jax.nn.sigmoid(logits), x),
              losses.sigmoid_cross_entropy(logits, x))
    sq, ce = jax.lax.map(one, chunks)
    return jnp.mean(sq), jnp.mean(ce)

  return evaluate


def _run_hf(name, hp, cfg, params0, data, compiled, evaluate, budget, rng, capture=None):
  """Runs one HF variant; returns its records (and the captured mid-run quadratic)."""
  hpa = dict(decay=jnp.float32(hp["decay"]), max_cg=jnp.int32(hp["max_cg"]))
  state = compiled["init"](hpa, params0)
  params = params0
  gb, cb, n = cfg["grad_batch"], cfg["curv_batch"], cfg["num_train"]
  err, ce = evaluate(params)
  rec = dict(updates=[0], evals=[0], loss_evals=[0], seconds=[0.], train_error=[float(err)],
             train_ce=[float(ce)], cg_iters=[], rho=[], damping=[], rate=[], chosen_iter=[])
  max_updates = cfg["hf_steps"] if budget is None else cfg["hf_steps"] * cfg["max_updates_factor"]
  captured = None
  evals = loss_evals = seconds = 0.
  next_eval = (0., 0.)  # Budgeted runs: evaluate every 1% of E or of T, not every update.

  def record(updates):
    err, ce = evaluate(params)
    for key, value in (("updates", updates), ("evals", evals), ("loss_evals", loss_evals),
                       ("seconds", seconds), ("train_error", float(err)), ("train_ce", float(ce))):
      rec[key].append(value)

  for t in range(max_updates):
    gidx = jnp.asarray(rng.permutation(n)[:gb] if gb < n else np.arange(n))
    cidx = jnp.asarray(rng.permutation(n)[:cb])
    if capture is not None and t == capture:
      captured = dict(params=params, damping=state.damping, gidx=gidx, cidx=cidx)
    start = time.perf_counter()
    params, state, info = compiled["step"](hpa, state, params, data, gidx, cidx)
    jax.block_until_ready(params)
    elapsed = time.perf_counter() - start
    # Cases in the gradient, in every GN-vector product, and in the preconditioner statistic
    # (one pass over the curvature batch); forward-only loss evaluations are counted apart.
    evals += gb + int(info.num_gnvp) * cb + cb
    loss_evals += int(info.num_loss_evals) * gb
    seconds += elapsed
    for key in ("cg_iters", "rho", "damping", "rate", "chosen_iter"):
      rec[key].append(float(getattr(info, key)))
    done = budget is not None and evals >= budget[0] and seconds >= budget[1]
    if budget is None or done or evals >= next_eval[0] or seconds >= next_eval[1]:
      record(t + 1)
      if budget is not None:
        next_eval = (evals + budget[0] / 100, seconds + budget[1] / 100)
    if done:
      break
  if rec["updates"][-1] != t + 1:  # Hit the update cap between two evaluations.
    record(t + 1)
  print(f"  {name}: {t + 1} updates, error {rec['train_error'][-1]:.3f}, "
        f"{rec['seconds'][-1]:.1f} s, mean CG iters {np.mean(rec['cg_iters']):.1f}", flush=True)
  return rec, captured


def run(workdir, preset: str = "tiny", steps: int | None = None,
        data_dir: str | None = None, sizes: dict[str, Any] | None = None) -> dict:
  """Runs the HF experiment and writes the table, the two figures and hf.json to `workdir`.

  Args:
    workdir: output folder (created).
    preset: "tiny" or "quick" (see `PRESETS`).
    steps: number of updates of the main HF run (default: the preset's `hf_steps`).
    data_dir: a folder holding the original CURVES `digs3pts_1.mat` (its first `num_train`
      cases are used); default (or without that file): the generated CURVES.
    sizes: values replacing the preset's (keys of ``PRESETS[preset]``), e.g. from configs/hf.py's
      overrides.

  Returns:
    The dict written to hf.json: config, per-method records, table rows, quadratic results.

  Raises:
    ValueError: unknown preset, steps < 2 or a key of ``sizes`` the preset does not have.
  """
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
  unknown = sorted(set(sizes or {}) - set(PRESETS[preset]))
  if unknown:
    raise ValueError(f"unknown field(s) {unknown}; valid: {sorted(PRESETS[preset])}")
  cfg = {**PRESETS[preset], **(sizes or {})}
  if steps is not None:
    if not isinstance(steps, int) or steps < 2:
      raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    cfg["hf_steps"] = steps
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  wall_start = time.perf_counter()
  phases = {}
  tick = [time.perf_counter()]

  def phase(name):  # Seconds per phase of this script, for the record.
    now = time.perf_counter()
    phases[name] = phases.get(name, 0.) + now - tick[0]
    tick[0] = now

  if data_dir and (pathlib.Path(data_dir) / curves.FILENAME).is_file():
    data_np = populations.autoencoder_data("curves", cfg["num_train"], 1, data_dir).train
  else:
    data_np = curves.generate(cfg["num_train"], 0, cfg["seed"]).train
  data = jnp.asarray(data_np)
  baseline = populations.mean_image_error(data_np)
  model = autoencoder_from_sizes(cfg["sizes"], output="logistic")
  apply_fn = lambda p, x: model.apply({"params": p}, x)
  # Every method starts from the engine NAG member's initial parameters (hf_nag).
  params0, nag_problem = hf_nag.initial_params(cfg, data_np)
  evaluate = _train_error_fn(apply_fn, data)
  # The objective HF minimises is the project's training loss.
  check = jax.jit(lambda p, x: (hf.objective(apply_fn, LOSS, p, (x, x)),
                                losses.sigmoid_cross_entropy(apply_fn(p, x), x)))(
                                    params0, data[:100])
  np.testing.assert_allclose(*check, rtol=1e-5)
  phase("data and init")

  def make(hp):
    return hf.hessian_free(apply_fn, LOSS, decay=hp["decay"], max_cg_iters=hp["max_cg"],
                           cg_iters_bound=cfg["max_cg"], backtrack_mode=BACKTRACK)

  @jax.jit
  def hf_step(hp, state, params, data, gidx, cidx):
    return make(hp).step(state, params, (data[gidx],) * 2, (data[cidx],) * 2)

  @jax.jit
  def hf_init(hp, params):
    return make(hp).init(params)

  # Compile up front so the timed loops measure optimization only.
  t0 = time.perf_counter()
  variants = _hf_variants(cfg)
  hp0 = dict(decay=jnp.float32(0.95), max_cg=jnp.int32(cfg["max_cg"]))
  n = cfg["num_train"]
  gidx0 = jnp.arange(min(cfg["grad_batch"], n))
  cidx0 = jnp.arange(cfg["curv_batch"])
  compiled = dict(init=hf_init,
                  step=hf_step.lower(hp0, hf_init(hp0, params0), params0, data, gidx0,
                                     cidx0).compile())
  compile_seconds = time.perf_counter() - t0
  phase("compile")
  print(f"compiled in {compile_seconds:.1f} s", flush=True)

  records, rng_seed = {}, cfg["seed"] + 1
  print("HF runs:", flush=True)
  main, captured = _run_hf("HF", variants["HF"], cfg, params0, data, compiled, evaluate, None,
                           np.random.default_rng(rng_seed), capture=cfg["hf_steps"] // 2)
  records["HF"] = main
  budget = (main["evals"][-1], main["seconds"][-1])
  # "budget": the others run until they have used the main run's E and T; "final": every
  # method runs its own full length and is compared at its final error.
  final = cfg.get("compare", "budget") == "final"
  for name, hp in variants.items():
    if name != "HF":
      records[name], _ = _run_hf(name, hp, cfg, params0, data, compiled, evaluate,
                                 None if final else budget, np.random.default_rng(rng_seed))
  phase("HF runs")
  print("NAG runs (the engine):", flush=True)
  nag_steps = hf_nag.budget_steps(cfg, None if final else budget, hf_nag.seconds_per_update(
      nag_problem, params0, data_np, cfg["nag_batch"]))
  nag_runs = hf_nag.run(cfg, data_np, nag_steps, eval_seconds=_timed(evaluate, params0))
  best = min(nag_runs, key=lambda r: (r["train_error"][-1] if final
                                      else read_at(r, "evals", budget[0])))
  records[f"NAG (lr={best['lr']})"] = best

  phase("NAG runs")
  print("quadratic experiment:", flush=True)
  quad = quadratic_experiment(cfg, apply_fn, data, captured)
  phase("quadratic experiment")

  rows = []
  for name, rec in records.items():
    rows.append(dict(
        method=name, variant=VARIANTS.get(name, "nag"), updates=rec["updates"][-1],
        evals=rec["evals"][-1], loss_evals=rec["loss_evals"][-1], seconds=rec["seconds"][-1],
        error_at_equal_evals=read_at(rec, "evals", budget[0]),
        error_at_equal_time=read_at(rec, "seconds", budget[1]),
        final_error=rec["train_error"][-1],
        mean_cg_iters=float(np.mean(rec["cg_iters"])) if "cg_iters" in rec else None,
        learning_rate=rec.get("lr"), compared_at="final" if final else "budget"))
  hf_report.write_table(workdir, cfg, preset, rows, budget, records, quad, baseline, BACKTRACK)
  hf_report.plot_curves(workdir, records, budget)
  hf_report.plot_quadratic(workdir, quad)
  phase("table and plots")
  result = dict(
      preset=preset, config={k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
      budget=dict(evals=budget[0], seconds=budget[1]), compile_seconds=compile_seconds,
      baseline=baseline, initial_error=records["HF"]["train_error"][0],
      table=rows, records=records, nag_all={str(r["lr"]): r for r in nag_runs},
      quadratic=quad, phase_seconds=phases, total_seconds=time.perf_counter() - wall_start)
  with open(workdir / "hf.json", "w") as f:
    json.dump(result, f, indent=1)
  print(f"wrote {workdir}/hf_table.md, hf_curves.png, hf_quadratic.png, hf.json "
        f"({result['total_seconds']:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()) + ")", flush=True)
  return result


def _timed(fn, *args, repeats=3) -> float:
  """Median seconds of fn(*args) (compiled already), for the NAG arm's evaluation cost."""
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def train_and_evaluate(config, workdir) -> dict:
  """Runs the study from a configs/hf.py config (what `run` returns), or, for a hybrid config
  (`configs/hf.py:hybrid_*`), the hybrid HF-dagger schedule (`experiments.hf_hybrid.run`)."""
  if config.get("study") == "hybrid":
    from experiments import hf_hybrid  # pylint: disable=import-outside-toplevel
    return hf_hybrid.run(config, workdir, HYBRID_SCHEDULES)
  sizes = config.to_dict()
  preset, data_dir, steps = sizes.pop("preset"), sizes.pop("data_dir"), sizes.pop("hf_steps")
  return run(workdir, preset, steps, data_dir, sizes=sizes)


def main(argv=None):
  host.set_defaults()  # before jax starts a backend
  overrides, argv = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--config", default=None,
                      help="config file and size, e.g. configs/hf.py:tiny (the default); "
                           "--config.<field>=value overrides a field")
  parser.add_argument("--steps", type=argtypes.positive_int, default=None,
                      help="updates of the main HF run (sets --config.hf_steps and the budgets)")
  parser.add_argument("--preset", default=None, choices=sorted(hf_config.SIZES),
                      help="the same as --config configs/hf.py:PRESET")
  parser.add_argument("--data_dir", default=None,
                      help="folder with the original CURVES digs3pts_1.mat (default: generated)")
  args = parser.parse_args(argv)
  if args.config and args.preset:
    parser.error("give --config or --preset, not both")
  spec = args.config or f"{hf_config.__file__}:{args.preset or 'tiny'}"
  try:
    config = cli.load_config(spec, overrides)
  except ValueError as e:
    cli.fail(e)
  if args.steps is not None:
    if config.get("study") == "hybrid":
      cli.fail(ValueError("--steps: a hybrid config's lengths are its phases' "
                          "(--config.length_scale)"))
    config.hf_steps = args.steps
  if args.data_dir is not None:
    config.data_dir = args.data_dir
  train_and_evaluate(config, args.workdir)


if __name__ == "__main__":
  main()
