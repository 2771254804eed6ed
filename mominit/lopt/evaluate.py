"""The paired evaluation: learned and tuned hand-designed optimizers on the same runs.

Every optimizer ("family") is a function of one hyper-parameter pytree: a learning rate for the
hand-designed ones, theta for the learned ones. A run is a pure function
`(hyper, key, data) -> (losses [H], finals [len(horizons)])`: x_0 from fold_in(key, 0), the
minibatch of step t from fold_in(key, t) (so every family sees the same starts and batches), the
minibatch loss before each update, and at every horizon the loss of the current iterate on the
problem's evaluation batch (`problem.full`: the whole training pool for MNIST). For NAG the
iterate is the paper's theta_t (`mominit.theta`), not the look-ahead point held in the params.

`study` vmaps runs over seeds and over a grid of hyper-parameters (a leading axis of the hyper
pytree) in one compiled program per family. Horizons share one run: no family here depends on
the run's length (the momentum schedule has no final phase), so the loss after 100 steps of a
10,000-step run is that of a 100-step run.

This is a self-contained loop, not `mominit.train`'s engine; see docs/learned_optimizer.md for
how it maps onto an engine that takes optimizer families with parameter pytrees.
"""
import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from mominit import momentum, schedules
from mominit.lopt import transforms

CONSTANT_MU = 0.9
SCHEDULE_MU_MAX = 0.99


def _hand(name: str) -> Callable:
  return {
      "adam": optax.adam,
      "rmsprop": optax.rmsprop,
      "sgd": optax.sgd,
      "cm": lambda lr: momentum.cm(lr, CONSTANT_MU),
      "nag": lambda lr: momentum.nag(lr, CONSTANT_MU),
      "cm_schedule": lambda lr: momentum.cm(lr, schedules.sutskever_momentum(SCHEDULE_MU_MAX)),
      "nag_schedule": lambda lr: momentum.nag(lr, schedules.sutskever_momentum(SCHEDULE_MU_MAX)),
  }[name]


HAND_DESIGNED = ("adam", "rmsprop", "sgd", "cm", "nag", "cm_schedule", "nag_schedule")
LEARNED = ("rnnprop", "dm_lv2017", "dm_deepmind")
LABELS = {"adam": "Adam", "rmsprop": "RMSProp", "sgd": "SGD", "cm": f"CM μ={CONSTANT_MU}",
          "nag": f"NAG μ={CONSTANT_MU}", "cm_schedule": f"CM sched. μmax={SCHEDULE_MU_MAX}",
          "nag_schedule": f"NAG sched. μmax={SCHEDULE_MU_MAX}", "rnnprop": "RNNprop",
          "dm_lv2017": "DMoptimizer (Lv)", "dm_deepmind": "DMoptimizer (DeepMind)"}


def optimizer(family: str, hyper) -> optax.GradientTransformation:
  """The transform of `family` at `hyper` (a learning rate, or theta for a learned family).

  Hand-designed: "adam", "rmsprop", "sgd" (optax), "cm"/"nag" (mominit.momentum, constant mu
  0.9), "cm_schedule"/"nag_schedule" (the paper's mu_t = min(1 - 2^(-1 - log2(t/250 + 1)), 0.99)).
  Learned: "rnnprop", "dm_lv2017", "dm_deepmind".
  """
  if family in HAND_DESIGNED:
    return _hand(family)(hyper)
  if family == "rnnprop":
    return transforms.rnnprop(hyper)
  if family in ("dm_lv2017", "dm_deepmind"):
    return transforms.dm_lstm(hyper, family[3:])
  raise ValueError(f"family must be one of {HAND_DESIGNED + LEARNED}, got {family!r}")


def run_fn(problem, family: str, horizons: Sequence[int]) -> Callable:
  """The pure run `(hyper, key, data) -> (losses [max(horizons)], finals [len(horizons)])`.

  A non-finite final loss is returned as +inf (diverged).
  """
  horizons = tuple(sorted(int(h) for h in horizons))

  def run(hyper, key, data):
    tx = optimizer(family, hyper)
    params, consts = problem.init(jax.random.fold_in(key, 0))
    carry = (params, tx.init(params), jnp.zeros([], jnp.int32))

    def body(carry, _):
      params, opt_state, step = carry
      batch = problem.sample(data, jax.random.fold_in(key, step))
      loss, grads = jax.value_and_grad(problem.loss)(params, consts, batch)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, step + 1), loss

    losses, finals, done = [], [], 0
    for h in horizons:
      carry, seg = jax.lax.scan(body, carry, None, length=h - done)
      losses.append(seg)
      done = h
      point = momentum.theta(carry[0], carry[1]) if family.startswith("nag") else carry[0]
      final = problem.loss(point, consts, problem.full(data))
      finals.append(jnp.where(jnp.isfinite(final), final, jnp.inf))
    return jnp.concatenate(losses), jnp.stack(finals)

  return run


@functools.lru_cache(maxsize=None)
def _study_fn(problem, family: str, horizons: tuple) -> Callable:
  run = run_fn(problem, family, horizons)
  over_seeds = jax.vmap(run, in_axes=(None, 0, None))
  return jax.jit(jax.vmap(over_seeds, in_axes=(0, None, None)))


def study_fn(problem, family: str, horizons: Sequence[int]) -> Callable:
  """Jitted `(hypers [G, ...], keys [S], data) -> (losses [G, S, H], finals [G, S, n_h])`.

  One function per (problem, family, horizons), cached, so model selection and the study share
  their compiled programs when their shapes agree."""
  return _study_fn(problem, family, tuple(sorted(int(h) for h in horizons)))


def study(problem, hypers: dict, keys, horizons: Sequence[int]) -> dict:
  """Runs every family of `hypers` ({family: hyper pytree with a leading grid axis G}).

  Returns:
    {family: {"losses": [G, S, H] NumPy, "finals": [G, S, n_h] NumPy}}.
  """
  out = {}
  for family, grid in hypers.items():
    losses, finals = jax.device_get(study_fn(problem, family, horizons)(grid, keys, problem.data))
    out[family] = {"losses": losses, "finals": finals}
  return out


def make_final_loss(problem, steps: int) -> Callable:
  """`f(family, hyper, keys [S], data) -> finals [S]` after `steps` (for model selection); one
  compiled program per family, shared by every hyper value."""
  def final(family, hyper, keys, data):
    grid = jax.tree.map(lambda a: jnp.asarray(a)[None], hyper)
    return study_fn(problem, family, (steps,))(grid, keys, data)[1][0, :, 0]

  return final


def learning_rate_grid(low_log2: float, high_log2: float) -> jnp.ndarray:
  """The sqrt(2)-spaced grid 2^low, 2^(low + 1/2), ..., 2^high (float32)."""
  n = int(round(2 * (high_log2 - low_log2))) + 1
  return jnp.asarray([2.0 ** (low_log2 + k / 2) for k in range(n)], jnp.float32)


__all__ = ["optimizer", "run_fn", "study_fn", "study", "make_final_loss", "learning_rate_grid",
           "HAND_DESIGNED", "LEARNED", "LABELS"]
