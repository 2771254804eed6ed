"""Configs and populations: defaults, validation, the members of a sweep, their hyper-parameters.

A *population* is the cross product of the config's sweep axes: ``seed``, ``rule`` (the
optimizer: a name of ``mominit.optimizers.NAMES``; ``sweep.optimizer`` replaces it when not
empty), ``mu_max``, ``learning_rate``, and the problem's own axes (``init_scale`` for
autoencoders, ``input_scale`` for RNNs). Members of one optimizer family differ only in traced
values, so one ``jax.vmap`` covers them and one compilation serves them.
"""
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mominit import optimizers
from mominit import problems

COMMON_AXES = ("seed", "rule", "mu_max", "learning_rate")


def axes(kind: str) -> tuple:
  """The sweep axes of a problem kind, in the order of the cross product."""
  return COMMON_AXES + problems.module(kind).AXES


def default_config(kind: str) -> ml_collections.ConfigDict:
  """Every field the engine reads, with the paper's protocol (docs/paper.md sections 2, 4, 5) as
  defaults (the problem's module sets its own). ``configs/autoencoder.py`` and
  ``configs/rnn.py`` start from this.

  Args:
    kind: "autoencoder" or "rnn".
  """
  module = problems.module(kind)
  c = ml_collections.ConfigDict()
  c.kind = kind
  c.chunk = 500          # updates per compiled lax.fori_loop call
  c.eval_every = 5_000   # updates between evaluations / checkpoints
  c.progress = True      # tqdm progress bar
  c.distributed = False  # connect several processes first (mominit.distributed)
  c.checkpoint_every = 0  # updates between orbax checkpoints (0 = at every evaluation)
  # Also a checkpoint between evaluations once this many minutes passed since the last (0 =
  # off), so a long stretch between evaluations is not lost to a stop (one process only).
  c.checkpoint_minutes = 5.0
  # Bytes a population may use per device; a larger one trains in groups (mominit.memory).
  # 0 = a share of the device's memory.
  c.memory_budget = 0
  # A member is "blown up" once every chunk's mean loss of an evaluation window is above this
  # multiple of its starting loss (finite but exploded; mominit.outcomes). 0 = off.
  c.blowup_factor = 10.0
  # Sweep axes are tuples so the command line can override them (`--config.sweep.seed='(0, 1)'`);
  # assigning a list from Python works too (it becomes a tuple).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.seed = (0,)
  c.sweep.rule = ("nag", "cm")
  # Optimizer names (mominit.optimizers.NAMES); when not empty, this replaces sweep.rule, e.g.
  # `--config.sweep.optimizer='("nag","cm","adam")'` trains one population per family.
  c.sweep.optimizer = ()
  c.optax = optimizers.default_settings()  # fixed settings of the optax families
  module.add_defaults(c)
  return c


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks a config before anything is built or compiled.

  Raises:
    ValueError: with a message naming the field, for unknown keys, empty axes, mu outside [0, 1),
      learning rates that are not finite and positive, non-positive step counts, unknown
      optimizers, schedules, datasets or tasks.
  """
  module = problems.module(config.get("kind"))
  _check_keys(config, default_config(config.kind), "config")
  for name in ("steps", "chunk", "eval_every", "batch_size"):
    if int(config[name]) <= 0:
      raise ValueError(f"config.{name} must be a positive integer, got {config[name]!r}")
  for name in ("checkpoint_every", "diagnostics_every", "memory_budget"):
    if name in config and int(config[name]) < 0:
      raise ValueError(f"config.{name} must be >= 0 (0 = default behaviour), got "
                       f"{config[name]!r}")
  if not (math.isfinite(float(config.checkpoint_minutes)) and config.checkpoint_minutes >= 0):
    raise ValueError(f"config.checkpoint_minutes must be a finite number >= 0 (0 = off), got "
                     f"{config.checkpoint_minutes!r}")
  if not (math.isfinite(float(config.blowup_factor)) and (
      config.blowup_factor == 0 or config.blowup_factor > 1)):
    raise ValueError(f"config.blowup_factor must be 0 (off) or a finite number > 1, got "
                     f"{config.blowup_factor!r}")
  module.validate(config)
  optimizers.validate(config)
  for v in config.sweep.optimizer:
    if v not in optimizers.NAMES:
      raise ValueError(f"config.sweep.optimizer: unknown optimizer {v!r}; valid: "
                       f"{sorted(optimizers.NAMES)}")
  choices = getattr(module, "CHOICES", {})  # the problem's categorical axes
  for axis in axes(config.kind):
    values = list(_axis(config, axis))
    if not values:
      raise ValueError(f"config.sweep.{axis} is empty: every sweep axis needs at least one value")
    for v in values:
      if axis in choices:
        if v not in choices[axis]:
          raise ValueError(f"config.sweep.{axis}: unknown {v!r}; valid: {list(choices[axis])}")
        continue
      if axis == "rule" and v not in optimizers.NAMES:
        raise ValueError(f"config.sweep.rule: unknown rule {v!r}; valid: "
                         f"{sorted(optimizers.NAMES)}")
      if axis == "mu_max" and not (0.0 <= float(v) < 1.0):
        raise ValueError(f"config.sweep.mu_max: momentum must be in [0, 1), got {v!r}")
      if axis == "learning_rate" and not (math.isfinite(float(v)) and float(v) > 0):
        raise ValueError(f"config.sweep.learning_rate: must be finite and > 0, got {v!r}")
      if axis in problems.module(config.kind).AXES and not (
          math.isfinite(float(v)) and float(v) >= 0):
        raise ValueError(f"config.sweep.{axis}: must be finite and >= 0, got {v!r}")
      if axis == "seed" and (int(v) != v or v < 0):
        raise ValueError(f"config.sweep.seed: seeds are non-negative integers, got {v!r}")
      if axis not in ("seed", "rule"):
        _check_fits(axis, v)


def _check_fits(axis, value):
  """A value must stay finite in the dtype the members use (float32 unless jax_enable_x64):
  1e39 would train as inf."""
  dtype = np.dtype(jnp.result_type(float))
  with np.errstate(over="ignore"):
    fits = np.isfinite(np.asarray(value, dtype))
  if not fits:
    raise ValueError(f"config.sweep.{axis}: {value!r} overflows {dtype.name}, the members' dtype "
                     f"(largest {np.finfo(dtype).max:.4g}; enable jax_enable_x64 for float64)")


def _axis(config, axis):
  if axis == "rule" and config.sweep.get("optimizer"):
    return config.sweep.optimizer
  return config.sweep[axis]


def _check_keys(config, reference, where):
  unknown = sorted(set(config.keys()) - set(reference.keys()))
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(reference.keys())}")
  for key in config.keys():
    if isinstance(reference[key], ml_collections.ConfigDict) and key != "task_kwargs":
      _check_keys(config[key], reference[key], f"{where}.{key}")


def population(config: ml_collections.ConfigDict) -> list[dict]:
  """The members of a sweep: the cross product of ``config.sweep``'s axes, in row-major order.

  Each member is reported under its optimizer family's name for it: a momentum member with
  ``mu_max == 0`` is plain SGD whatever its rule (``"sgd"``), and ``"sgd"`` has ``mu_max`` 0. Axes
  an optimizer does not read are NaN (Adam has no ``mu_max``). Duplicates are dropped.

  Returns:
    A list of dicts, one per member, with one entry per axis.
  """
  names = axes(config.kind)
  members, seen = [], set()
  families = {}
  for values in itertools.product(*(list(_axis(config, a)) for a in names)):
    member = dict(zip(names, values))
    rule = member["rule"]
    family = families.setdefault(optimizers.family_of(rule), optimizers.make(rule, config))
    member["rule"], rest = optimizers.resolve(rule, member, family)
    member.update({k: v for k, v in rest.items() if k != "rule"})
    key = tuple(None if isinstance(member[a], float) and math.isnan(member[a]) else member[a]
                for a in names)
    if key not in seen:
      seen.add(key)
      members.append(member)
  return members


def _hp_value(problem, name, value):
  """A member's value of a problem axis as ``hp`` holds it: a categorical one as its index."""
  choices = problem.hp_choices.get(name)
  return value if choices is None else list(choices).index(value)


def family_groups(members: list[dict]) -> dict:
  """``{family name: [member indices]}``, families in order of first appearance."""
  groups = {}
  for i, m in enumerate(members):
    groups.setdefault(optimizers.family_of(m["rule"]), []).append(i)
  return groups


def hparams(members: list[dict], family, problem) -> dict:
  """The traced hyper-parameters of a population of one family: ``seed`` (uint32 [P]), the
  family's (``optimizers.member_hp``: [P] in the default float dtype, or pytrees with a leading
  axis P) and the problem's own (``problem.hp_names``, [P] in the default float dtype: float32,
  float64 under ``jax_enable_x64``; a categorical axis, ``problem.hp_choices``, as the
  index of its value)."""
  dtype = jnp.result_type(float)
  per_member = [{"seed": np.uint32(m["seed"]),
                 **optimizers.member_hp(m["rule"], m, family),
                 **{name: np.asarray(_hp_value(problem, name, m[name]), dtype)
                    for name in problem.hp_names}}
                for m in members]
  return jax.tree.map(lambda *xs: np.stack(xs), *per_member)
