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
- "NAG": `mominit.nag` with the paper's autoencoder schedule (mu_max 0.99), minibatches of 200,
  each learning rate of a small grid run separately, the best (lowest final error) reported.

Every HF variant shares one compiled step (decay and the CG cap are traced). The main "HF" run
does `steps` updates and fixes the two budgets: E, its number of gradient-and-curvature case
evaluations (cases in gradients + cases in GN-vector products + cases in the per-case gradients
of the preconditioner), and T, its optimizer wall time (compilation and evaluation excluded).
Every other method runs until it has used both E and T (or a cap of updates), and the table reads
each curve at E and at T. Forward-only loss evaluations (CG backtracking, line search) are not in
E; they are reported separately (and they are in the wall time). The error reported is the
paper's: the training-set squared reconstruction error (sum over pixels, mean over cases) at
theta, on the whole training subset.

The appendix experiment: the quadratic HF builds at update steps // 2 of the main run
(q(p) = g^T p + 1/2 p^T (G + lambda I) p, g on the gradient batch, G on the curvature batch, the
damping lambda of that update) is minimised from zero by CG (plain and with Martens'
preconditioner) and by NAG on the quadratic (step size 1/L, L the largest eigenvalue by power
iteration, constant mu from a grid); the figure shows q against iterations (one curvature-vector
product each; NAG's extra product to report q(x_t) is not counted).

Writes DIR/hf_table.md, DIR/hf_curves.png, DIR/hf_quadratic.png and DIR/hf.json.

Usage: python -m experiments.hf --workdir DIR [--config configs/hf.py:tiny|quick|medium|paper]
[--config.FIELD=VALUE ...] [--steps N] (`--preset NAME` is the same as `--config
configs/hf.py:NAME`), or `train_and_evaluate(config, workdir)` / `run(workdir, preset,
steps=None) -> dict` from a notebook. "tiny" (CI, under a minute on 2 CPU cores)
uses a narrower autoencoder (784-100-50-25-6) on 2,000 cases; "quick" (100 HF updates; 17 min on
2 CPU cores, measured) the paper's 784-400-200-100-50-25-6 on the 20,000 generated CURVES
training cases; "paper" (for GPUs) Martens' scale: full-batch gradients, up to 250 CG steps,
500 HF updates, NAG for 750,000 updates, every method compared at its final error.
`HYBRID_SCHEDULES` holds the paper's hybrid HF-dagger schedules (Curves, Mnist) as data. Rows
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
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from configs import hf as hf_config
from experiments import argtypes
from experiments import cli
from experiments import host
from experiments import populations
import mominit
from mominit import hf
from mominit import losses
from mominit import schedules
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
# cost, and the phase's length in CG steps. They record what the paper ran; `run` does not run
# them (mominit.hf has no step-size multiplier or L2 term yet), so they are not in `PRESETS`.
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


def _run_nag(lr, cfg, params0, data, nag_chunk_fn, evaluate, budget, rng):
  """Runs NAG with learning rate `lr` until both budgets are used; returns records."""
  n, b = cfg["num_train"], cfg["nag_batch"]
  evaluate_theta = jax.jit(lambda p, s: evaluate(mominit.theta(p, s)))
  opt = _nag(lr, cfg["nag_mu_max"])
  opt_state = opt.init(params0)
  params = params0
  err, ce = evaluate(params)
  rec = dict(updates=[0], evals=[0], loss_evals=[0], seconds=[0.], train_error=[float(err)],
             train_ce=[float(ce)], lr=lr)
  chunk = cfg["nag_chunk"]
  # compare="final": NAG runs its own length (`nag_steps`) instead of HF's budgets.
  max_updates = (cfg["nag_steps"] if budget is None
                 else int(np.ceil(budget[0] / b)) * cfg["max_updates_factor"])
  t = 0
  while t < max_updates:
    idx = jnp.asarray(np.stack([rng.permutation(n)[:b] for _ in range(chunk)]))
    start = time.perf_counter()
    params, opt_state = nag_chunk_fn(jnp.float32(lr), params, opt_state, data, idx)
    jax.block_until_ready(params)
    elapsed = time.perf_counter() - start
    t += chunk
    err, ce = evaluate_theta(params, opt_state)
    rec["updates"].append(t)
    rec["evals"].append(t * b)
    rec["loss_evals"].append(0)
    rec["seconds"].append(rec["seconds"][-1] + elapsed)
    rec["train_error"].append(float(err))
    rec["train_ce"].append(float(ce))
    if budget is not None and rec["evals"][-1] >= budget[0] and rec["seconds"][-1] >= budget[1]:
      break
  print(f"  NAG lr={lr}: {t} updates, error {rec['train_error'][-1]:.3f}, "
        f"{rec['seconds'][-1]:.1f} s", flush=True)
  return rec


def _nag(lr, mu_max):
  return mominit.nag(lr, schedules.sutskever_momentum(mu_max))


def _read_at(rec, axis, x):
  """Training error of the last record with rec[axis] <= x."""
  xs = np.asarray(rec[axis])
  i = int(np.searchsorted(xs, x, side="right")) - 1
  return rec["train_error"][max(i, 0)]


def _quadratic_experiment(cfg, apply_fn, data, captured):
  """CG (plain, preconditioned) and NAG from zero on the captured HF quadratic."""
  params, lam = captured["params"], captured["damping"]
  flat, unravel = ravel_pytree(params)
  flat_apply = lambda w, x: apply_fn(unravel(w), x)
  iters = cfg["quad_iters"]

  @jax.jit
  def build_and_solve(flat, lam, gx, cx):
    gbatch, cbatch = (gx, gx), (cx, cx)
    g = jax.grad(lambda w: hf.objective(flat_apply, LOSS, w, gbatch))(flat)
    gn = hf.gauss_newton_matvec(flat_apply, LOSS, flat, cbatch)
    a = lambda v: gn(v) + lam * v
    fisher = hf.empirical_fisher_diagonal(flat_apply, LOSS, flat, cbatch)
    precond = (fisher + lam)**0.75
    zero = jnp.zeros_like(flat)
    # Plain and preconditioned CG as one vmapped loop (M = 1 is plain CG): one compilation.
    phis = jax.vmap(lambda m: hf.pcg(a, g, zero, precond=m, max_iters=iters, eps=0.).phi)(
        jnp.stack([jnp.ones_like(precond), precond]))
    # Largest eigenvalue of A by power iteration, for NAG's step size 1/L.
    v0 = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)

    def power(v, _):
      w = a(v)
      return w / jnp.linalg.norm(w), None

    v, _ = jax.lax.scan(power, v0 / jnp.linalg.norm(v0), None, length=cfg["power_iters"])
    top = jnp.vdot(v, a(v))
    q = lambda x: 0.5 * jnp.vdot(x, a(x)) + jnp.vdot(g, x)

    def nag(mu):
      # v_{t+1} = mu v_t - eps grad q(x_t + mu v_t), x_{t+1} = x_t + v_{t+1} (docs/paper.md sec. 1).
      def body(carry, _):
        x, vel = carry
        vel = mu * vel - (a(x + mu * vel) + g) / top
        x = x + vel
        return (x, vel), q(x)
      _, qs = jax.lax.scan(body, (zero, zero), None, length=iters)
      return jnp.concatenate([jnp.zeros([1], qs.dtype), qs])

    nag_q = jax.lax.map(nag, jnp.asarray(cfg["quad_mus"], flat.dtype))
    return dict(cg=phis[0], pcg=phis[1], nag=nag_q, top=top)

  out = jax.device_get(build_and_solve(flat, lam, data[captured["gidx"]],
                                      data[captured["cidx"]]))
  # q*: the lowest value any solver reached (float32: differences below ~1e-6 |q*| are noise).
  q_ref = float(min(out["cg"].min(), out["pcg"].min(), out["nag"].min()))
  return dict(
      iterations=list(range(iters + 1)), damping=float(lam), top_eigenvalue=float(out["top"]),
      q_reference=q_ref, cg=out["cg"].tolist(), pcg=out["pcg"].tolist(),
      nag={str(mu): q.tolist() for mu, q in zip(cfg["quad_mus"], out["nag"])})


def _plot_curves(workdir, records, budget):
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


def _plot_quadratic(workdir, quad):
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
  model = autoencoder_from_sizes(cfg["sizes"], output="logistic", init="sparse")
  apply_fn = lambda p, x: model.apply(p, x)
  # Jitted: the sparse initializer run eagerly compiles hundreds of small ops.
  params0 = jax.jit(model.init)(jax.random.key(cfg["seed"]), data[:1])
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

  @jax.jit
  def nag_chunk(lr, params, opt_state, data, idx):
    opt = _nag(lr, cfg["nag_mu_max"])

    def body(carry, rows):
      params, opt_state = carry
      x = data[rows]
      grads = jax.grad(lambda p: losses.sigmoid_cross_entropy(apply_fn(p, x), x))(params)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(body, (params, opt_state), idx)
    return params, opt_state

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
  nag_state0 = _nag(0.01, cfg["nag_mu_max"]).init(params0)
  nag_compiled = nag_chunk.lower(jnp.float32(0.01), params0, nag_state0, data,
                                 jnp.zeros((cfg["nag_chunk"], cfg["nag_batch"]),
                                           jnp.int32)).compile()
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
  print("NAG runs:", flush=True)
  nag_runs = [_run_nag(lr, cfg, params0, data, nag_compiled, evaluate, None if final else budget,
                       np.random.default_rng(rng_seed)) for lr in cfg["nag_lrs"]]
  best = min(nag_runs, key=lambda r: (r["train_error"][-1] if final
                                      else _read_at(r, "evals", budget[0])))
  records[f"NAG (lr={best['lr']})"] = best

  phase("NAG runs")
  print("quadratic experiment:", flush=True)
  quad = _quadratic_experiment(cfg, apply_fn, data, captured)
  phase("quadratic experiment")

  rows = []
  for name, rec in records.items():
    rows.append(dict(
        method=name, variant=VARIANTS.get(name, "nag"), updates=rec["updates"][-1],
        evals=rec["evals"][-1], loss_evals=rec["loss_evals"][-1], seconds=rec["seconds"][-1],
        error_at_equal_evals=_read_at(rec, "evals", budget[0]),
        error_at_equal_time=_read_at(rec, "seconds", budget[1]),
        final_error=rec["train_error"][-1],
        mean_cg_iters=float(np.mean(rec["cg_iters"])) if "cg_iters" in rec else None,
        learning_rate=rec.get("lr"), compared_at="final" if final else "budget"))
  _write_table(workdir, cfg, preset, rows, budget, records, quad, baseline)
  _plot_curves(workdir, records, budget)
  _plot_quadratic(workdir, quad)
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


def _write_table(workdir, cfg, preset, rows, budget, records, quad, baseline):
  lines = [
      f"# HF vs NAG on CURVES ({preset} preset)", "",
      f"{cfg['num_train']} training cases, autoencoder {'-'.join(map(str, cfg['sizes']))} "
      f"(logistic output, cross-entropy), SI init. HF: gradient batch {cfg['grad_batch']}, "
      f"curvature batch {cfg['curv_batch']}, at most {cfg['max_cg']} CG steps "
      f"({cfg['momentum_like_cg']} for the momentum-like variant), CG backtracking "
      f"\"{BACKTRACK}\". NAG: batch "
      f"{cfg['nag_batch']}, mu_max {cfg['nag_mu_max']}, best of lr {list(cfg['nag_lrs'])}.",
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


def train_and_evaluate(config, workdir) -> dict:
  """Runs the study from a configs/hf.py config (what `run` returns)."""
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
    config.hf_steps = args.steps
  if args.data_dir is not None:
    config.data_dir = args.data_dir
  train_and_evaluate(config, args.workdir)


if __name__ == "__main__":
  main()
