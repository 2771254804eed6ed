"""The HF study's NAG arm, trained by the engine (`mominit.train.train_and_evaluate`).

The arm is one engine population: NAG (`rule` "nag", the paper's momentum schedule of section 2
with mu_max `nag_mu_max`, no final low-momentum phase) for every learning rate of `nag_lrs`, on
the study's training subset, with the study's autoencoder widths (`config.encoder_sizes`). Its
minibatches are the engine's (per-epoch permutations of the training subset, docs/paper.md
section 4), its error the engine's train error at theta, evaluated every `nag_chunk` updates.

Every method of the study starts from the same parameters: `initial_params` is the engine
member's own initialization (`mominit.member.keys(seed)["init"]` through the problem's
`init_params`), and the HF arms start from it too.

The budget is fixed before the run, as the engine config's `steps` (`budget_steps`): at least
the updates that use the main HF run's E gradient + curvature case-evaluations, ceil(E / batch),
and, to cover its optimizer wall time T too, ceil(T / s) with s one member's measured seconds
per update (a timed gradient of one minibatch, x 1.2 for the optimizer's own work), at most
`max_updates_factor` x ceil(E / batch), rounded up to whole evaluation intervals. NAG's wall time
axis is the population's wall time between its evaluations (read in the engine's callback),
less the timed cost of those evaluations, divided by the number of members (each member's
share of a vmapped population).
"""
from __future__ import annotations

import math
import time

import jax
import numpy as np

from mominit import member as member_lib
from mominit import problems
from mominit import sweep
from mominit import train
from mominit.data import Dataset

# Test cases the engine also evaluates (it reports a test error; the study does not use it).
_TEST_CASES = 200


def engine_config(cfg: dict, steps: int):
  """The engine's autoencoder config of the NAG arm for the study's settings `cfg`."""
  c = sweep.default_config("autoencoder")
  c.dataset = "curves"  # logistic outputs, cross-entropy training loss
  c.encoder_sizes = tuple(int(s) for s in cfg["sizes"])
  c.init = "sparse"
  c.steps = int(steps)
  c.batch_size = int(cfg["nag_batch"])
  c.chunk = c.eval_every = int(cfg["nag_chunk"])
  c.final_steps = 0
  c.momentum_schedule = "sutskever"
  c.momentum_period = 250
  c.sweep.seed = (int(cfg["seed"]),)
  c.sweep.rule = ("nag",)
  c.sweep.mu_max = (float(cfg["nag_mu_max"]),)
  c.sweep.learning_rate = tuple(float(lr) for lr in cfg["nag_lrs"])
  c.sweep.init_scale = (1.0,)
  c.progress = False
  c.checkpoint_minutes = 0.0
  return c


def dataset(data_np: np.ndarray) -> Dataset:
  """The study's training subset as the engine's `data` (a few test cases, unused)."""
  return Dataset(train=data_np, test=data_np[:min(_TEST_CASES, len(data_np))])


def initial_params(cfg: dict, data_np: np.ndarray):
  """(params, problem): the engine member's initial parameters (the "params" collection of the
  study's autoencoder) and the engine problem, for `cfg["seed"]`."""
  problem = problems.make(engine_config(cfg, 1), dataset(data_np))
  key = member_lib.keys({"seed": int(cfg["seed"])})["init"]
  params = jax.jit(lambda k, d: problem.init_params(k, {"init_scale": 1.0}, d))(key, problem.data)
  return params, problem


def seconds_per_update(problem, params, data_np: np.ndarray, batch: int, repeats: int = 3) -> float:
  """One member's seconds per NAG update, estimated as 1.2 x a timed gradient of one minibatch
  (compilation excluded; the median of `repeats`)."""
  grad = jax.jit(jax.grad(problem.loss))
  x = jax.numpy.asarray(data_np[:batch])
  jax.block_until_ready(grad(params, x))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(grad(params, x))
    times.append(time.perf_counter() - t0)
  return 1.2 * float(np.median(times))


def budget_steps(cfg: dict, budget, update_seconds: float) -> int:
  """The arm's `steps`: NAG's own length (`nag_steps`) without a budget; with budget (E, T),
  max(ceil(E / batch), ceil(T / update_seconds)), at most `max_updates_factor` x ceil(E / batch),
  rounded up to a multiple of `nag_chunk` (see the module docstring)."""
  if budget is None:
    return int(cfg["nag_steps"])
  for_evals = math.ceil(budget[0] / cfg["nag_batch"])
  for_time = math.ceil(budget[1] / max(update_seconds, 1e-9))
  steps = min(max(for_evals, for_time), for_evals * cfg["max_updates_factor"])
  chunk = cfg["nag_chunk"]
  return max(chunk, -(-steps // chunk) * chunk)


def run(cfg: dict, data_np: np.ndarray, steps: int, eval_seconds: float = 0.0) -> list[dict]:
  """Trains the arm through the engine; one record per learning rate.

  Args:
    cfg: the study's settings (`experiments.hf.PRESETS` entries).
    data_np: [N, D] training subset.
    steps: NAG updates (the engine config's `steps`, from `budget_steps`).
    eval_seconds: the timed cost of one member's evaluation, taken off the time axis.

  Returns:
    A list of dicts (order of `nag_lrs`): `updates`, `evals` (updates x batch), `loss_evals`
    (0), `seconds` (the member's optimizer time), `train_error` (at theta, whole subset) per
    evaluation, and `lr`.
  """
  config = engine_config(cfg, steps)
  lrs = list(config.sweep.learning_rate)
  stamps, errors, steps_seen = [], [], []

  def callback(step, record):
    stamps.append(time.perf_counter())
    steps_seen.append(int(step))
    errors.append(np.asarray(record["train_error"], np.float64))

  frame = train.train_and_evaluate(config, None, callback=callback, data=dataset(data_np))
  members = len(lrs)
  # Each evaluation's own cost comes off the clock (all members, train and test cases).
  eval_cost = eval_seconds * members * (1 + min(_TEST_CASES, len(data_np)) / len(data_np))
  seconds = [max(0.0, (t - stamps[0]) - k * eval_cost) / members for k, t in enumerate(stamps)]
  by_lr = {float(lr): i for i, lr in enumerate(frame["learning_rate"])}
  out = []
  for lr in lrs:
    i = by_lr[float(lr)]
    rec = dict(updates=list(steps_seen), evals=[s * cfg["nag_batch"] for s in steps_seen],
               loss_evals=[0] * len(steps_seen), seconds=seconds,
               train_error=[float(e[i]) for e in errors], lr=float(lr),
               diverged=bool(frame["diverged"][i]))
    print(f"  NAG lr={lr}: {rec['updates'][-1]} updates, error {rec['train_error'][-1]:.3f}, "
          f"{rec['seconds'][-1]:.1f} s", flush=True)
    out.append(rec)
  return out
