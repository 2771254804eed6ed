"""The paper's hybrid HF-dagger schedules (appendix A.6; docs/paper.md section 9), runnable.

`experiments.hf.HYBRID_SCHEDULES` records the phases as the paper states them; `phases(config)`
turns one into `mominit.hf.Phase`s and `run(config, workdir)` executes them with
`mominit.hf.run_phases` (Martens' HF otherwise: damping from 45, LM rule, his preconditioner with
the weight cost, CG backtracking "walk", Armijo line search), on CURVES (built-in or
`digs3pts_1.mat`) or MNIST (`--config.data_dir` with the idx files), from the paper's SI
initialization, and writes `workdir/hf_hybrid.json` and `hf_hybrid.md` (error after every phase,
beside the paper's 0.058 / 0.81 / 0.69).

Our readings where the paper is silent (each a config field):
- Curves phase 2 (decay 0.999, eps = 500 / (t - 4000)) has no stated length: 250,000 CG steps
  (`curves_phase2_cg_steps`), as long as phase 1; eps there falls from 0.5 to 0.083.
- Curves phase 4 lowers L2 "from 2e-5 to near 0": log-linearly over the phase's CG steps, to
  `l2_final` = 2e-8 (1/1000 of the start).
- Mnist phase 3 does not state CG steps per update: 50, as in its phases 1-2
  (`mnist_phase3_cg_per_update`); curvature minibatches stay 1/20, the gradient is full-batch.
- eps = 1 and the phases' decays in the full-batch phases as `HYBRID_SCHEDULES` records them;
  eps formulas read t as the global HF update count (phase 1 ends at update 5,000 for Curves and
  500 for Mnist, where both formulas give 0.5).
- Each update runs exactly `cg_per_update` CG steps (Martens' relative-progress test off,
  `cg_eps` 0), so a phase's length in CG steps fixes its number of updates.
- Minibatches: consecutive blocks of per-epoch permutations; the curvature minibatch is the
  gradient minibatch (both 1/16 or 1/20) except in Mnist phase 3.

Reduced sizes: `length_scale` multiplies every phase's length in CG steps and `cg_scale` the
CG steps per update (paper: both 1); the eps formulas are read at the paper's update count
t / (length_scale / cg_scale), so eps follows the same curve over the phases.
"""
from __future__ import annotations

import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import populations
from mominit import hf
from mominit import losses
from mominit.data import curves
from mominit.models import autoencoder_from_sizes

LOSS = "sigmoid_cross_entropy"  # Curves and Mnist: logistic outputs, cross-entropy


def _fraction(value) -> float:
  return 1.0 if isinstance(value, str) else float(value)


def phases(config, schedules) -> list:
  """The `mominit.hf.Phase`s of `config.schedule` ("curves" or "mnist") from
  `schedules` (`experiments.hf.HYBRID_SCHEDULES`), with our readings and the config's scales.

  Raises:
    ValueError: unknown schedule, or scales outside (0, 1].
  """
  if config.schedule not in schedules:
    raise ValueError(f"config.schedule must be one of {sorted(schedules)}, got "
                     f"{config.schedule!r}")
  for name in ("length_scale", "cg_scale"):
    if not 0 < config[name] <= 1:
      raise ValueError(f"config.{name} must be in (0, 1], got {config[name]!r}")
  update_scale = config.length_scale / config.cg_scale  # our updates per paper update
  paper_t = lambda t: t / update_scale
  out = []
  for i, ph in enumerate(schedules[config.schedule]["phases"]):
    cg_per_update = ph["cg_per_update"]
    cg_steps = ph["cg_steps"]
    grad_fraction = curv_fraction = _fraction(ph["batch_fraction"])
    eps, l2 = ph["eps"], ph["l2"]
    if config.schedule == "curves" and i == 1:
      cg_steps = config.curves_phase2_cg_steps
      eps = lambda t: 500. / (paper_t(t) - 4000.)
    if config.schedule == "mnist" and i == 1:
      eps = lambda t: 250. / max(paper_t(t), 1.)
    if config.schedule == "mnist" and i == 2:
      cg_per_update = config.mnist_phase3_cg_per_update
      grad_fraction, curv_fraction = 1.0, 1 / 20
    length = max(1, round(cg_steps * config.length_scale))
    if isinstance(l2, str):  # Curves phase 4: 2e-5 lowered log-linearly to l2_final
      l2 = _log_linear(2e-5, config.l2_final, out, length, config.cg_scale, cg_per_update)
    out.append(hf.Phase(cg_steps=length,
                        cg_per_update=max(1, round(cg_per_update * config.cg_scale)),
                        grad_fraction=grad_fraction, curv_fraction=curv_fraction,
                        decay=float(ph["decay"]), eps=eps, l2=l2))
  return out


def _log_linear(first, last, before, length, cg_scale, cg_per_update):
  """l2 as a function of the global update count t, from `first` at the phase's first update
  to `last` at its last, log-linearly."""
  start = sum(math.ceil(p.cg_steps / p.cg_per_update) for p in before)
  updates = max(1, math.ceil(length / max(1, round(cg_per_update * cg_scale))))

  def l2(t):
    frac = min(max((t - start) / max(updates - 1, 1), 0.), 1.)
    return first * (last / first)**frac

  return l2


def _data(config):
  if config.schedule == "mnist":
    from mominit import data  # pylint: disable=import-outside-toplevel
    if not config.data_dir:
      raise ValueError("config.data_dir: the Mnist schedule needs the MNIST idx files")
    train = data.load("mnist", config.data_dir).train
    return train[:config.num_train] if config.num_train else train
  if config.data_dir and (pathlib.Path(config.data_dir) / curves.FILENAME).is_file():
    return populations.autoencoder_data("curves", config.num_train, 1, config.data_dir).train
  return curves.generate(config.num_train, 0, config.seed).train


def run(config, workdir, schedules) -> dict:
  """Runs the hybrid schedule of a configs/hf.py hybrid config; writes hf_hybrid.json/.md.

  Returns:
    dict: config, the phases (lengths, CG steps per update, fractions, decays), per-phase
    ends (updates, CG steps, training squared error, seconds), the error curve, the paper's
    errors, the mean-image baseline.
  """
  todo = phases(config, schedules)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  data_np = np.asarray(_data(config), np.float32)
  sizes = tuple(config.sizes)
  if data_np.shape[1] != sizes[0]:
    raise ValueError(f"config.sizes[0] = {sizes[0]} but the data has {data_np.shape[1]} pixels")
  model = autoencoder_from_sizes(sizes, output="logistic")
  init = autoencoder_from_sizes(sizes, output="logistic", init="sparse")
  data = jnp.asarray(data_np)
  params = jax.jit(init.init)(jax.random.key(config.seed), data[:1])["params"]
  apply_fn = lambda p, x: model.apply({"params": p}, x)

  @jax.jit
  def error_of(p, data):  # the paper's training squared error, whole set, blocks <= 2000 cases
    n = data.shape[0]
    block = max(d for d in range(1, min(n, 2000) + 1) if n % d == 0)
    chunks = data.reshape(n // block, block, -1)
    return jnp.mean(jax.lax.map(lambda x: losses.squared_error(
        jax.nn.sigmoid(apply_fn(p, x)), x), chunks))

  error = lambda p: error_of(p, data)
  t0 = time.perf_counter()
  _, rec = hf.run_phases(
      apply_fn, LOSS, params, data, todo, seed=config.seed, evaluate=error,
      eval_every=config.eval_every, say=lambda s: print(s, flush=True),
      hf_kwargs=dict(init_damping=config.init_damping, cg_eps=config.cg_eps,
                     backtrack_mode=config.backtrack))
  paper = schedules[config.schedule]
  result = dict(
      config=config.to_dict(), seconds=time.perf_counter() - t0,
      baseline=populations.mean_image_error(data_np),
      phases=[dict(cg_steps=p.cg_steps, cg_per_update=p.cg_per_update,
                   grad_fraction=p.grad_fraction, curv_fraction=p.curv_fraction,
                   decay=p.decay) for p in todo],
      phase_ends=rec["phase_ends"], curve=dict(updates=rec["updates"], error=rec["error"],
                                               cg_steps=rec["cg_steps"]),
      paper=dict(final_error=paper["final_error"],
                 error_after=[p.get("error_after") for p in paper["phases"]]))
  (workdir / "hf_hybrid.json").write_text(json.dumps(result, indent=1))
  (workdir / "hf_hybrid.md").write_text(_markdown(config, result))
  print(f"wrote {workdir}/hf_hybrid.md, hf_hybrid.json ({result['seconds']:.0f} s)", flush=True)
  return result


def _markdown(config, result) -> str:
  lines = [f"# Hybrid HF-dagger schedule: {config.schedule}", "",
           f"{len(np.asarray(result['curve']['error']))} evaluations; "
           f"{config.num_train or 'all'} training cases, autoencoder "
           f"{'-'.join(map(str, config.sizes))}; phase lengths x {config.length_scale:g}, "
           f"CG steps per update x {config.cg_scale:g} (paper: 1 and 1). Error = training "
           f"squared reconstruction error; the mean image scores {result['baseline']:.3f}.", "",
           "| phase | CG steps | CG / update | grad batch | curv batch | decay | updates "
           "(cumulative) | error after | paper |", "|---|---|---|---|---|---|---|---|---|"]
  paper = result["paper"]
  for i, (ph, end) in enumerate(zip(result["phases"], result["phase_ends"])):
    last = i == len(result["phases"]) - 1
    want = paper["final_error"] if last else paper["error_after"][i]
    lines.append(f"| {i + 1} | {ph['cg_steps']} | {ph['cg_per_update']} | "
                 f"{ph['grad_fraction']:.4g} | {ph['curv_fraction']:.4g} | {ph['decay']} | "
                 f"{end['updates']} | {end['error']:.4g} | "
                 f"{'' if want is None else want} |")
  return "\n".join(lines) + "\n"
