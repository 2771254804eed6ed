"""Optimizer families: what the engine trains a member with.

A *family* is one compiled program: every member of a family shares one ``make``, and members
differ only in traced hyper-parameters, so a sweep of a family is one ``jax.vmap``. A sweep that
names several families (``--config.sweep.optimizer='("nag","cm","adam")'``) trains one population
per family, side by side (``mominit.train``).

A member's optimizer is named in ``config.sweep.rule`` (or ``config.sweep.optimizer``, which
replaces it when not empty). :data:`NAMES` maps a name to its family and the hyper-parameters
the name fixes: ``cm``, ``nag`` and ``sgd`` are one family, the momentum rule of Sutskever et al.
(2013) (``mominit.momentum_rule`` with a traced 0/1 ``nesterov``; ``sgd`` is ``mu_max = 0``), so
CM and NAG members compile once. ``adam``, ``rmsprop``, ``adagrad`` and ``optax_sgd`` are the
optax transforms of those names with a constant learning rate.

Adding a family (one place, this file):

1. write ``def my_family(config) -> Family`` with ``make(hp) -> optax.GradientTransformation``
   that reads ``hp[name]`` for each name in ``hp_names`` (scalars or any pytree with the member
   axis removed: ``make`` runs inside ``vmap``), ``defaults`` for the names a sweep axis does not
   set, and ``eval_params`` if the parameters it stores are not the point to evaluate;
2. add it to :data:`FAMILIES` and its member names to :data:`NAMES`.

A hyper-parameter need not be a scalar: ``Family.member_hp`` turns one member's values into its
hyper-parameter pytree (default: scalars of ``hp_names`` in the default float dtype, float32 or
float64 under ``jax_enable_x64``), and the engine stacks those
with a leading member axis, shards and vmaps them like any other. A learned optimizer (Lv et al.
2017) is a family whose ``member_hp`` adds ``{"meta": meta_params}`` (a pytree of arrays) and whose
``make(hp)`` builds the transform that applies ``hp["meta"]``; ``sweep.hparams`` does the rest.
"""
import dataclasses
import math
from typing import Callable, Optional

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mominit import momentum
from mominit import schedules


def _identity(params, opt_state):
  del opt_state
  return params


@dataclasses.dataclass(frozen=True)
class Family:
  """One optimizer family: members of a family share one compiled program.

  Attributes:
    name: the family's name (a key of :data:`FAMILIES`).
    hp_names: the per-member hyper-parameters ``make`` reads (besides ``seed``).
    make: (hp) -> ``optax.GradientTransformation``, for one member; ``hp`` is a dict of traced
      values (scalars, or pytrees from ``member_hp``).
    eval_params: (params, opt_state) -> the parameters whose error is reported (the paper's
      theta for the momentum rule, which stores NAG's look-ahead point; identity otherwise).
    defaults: values for the names of ``hp_names`` that no sweep axis sets (Python floats).
    rename: optional (name, values) -> the name a member is reported under (e.g. momentum at
      mu_max = 0 is "sgd").
    member_hp: optional (values) -> dict, one member's hyper-parameters from its axis values,
      defaults and name overrides (default: scalars of ``hp_names`` in the default float
      dtype, ``jnp.result_type(float)``).
  """
  name: str
  hp_names: tuple
  make: Callable[[dict], optax.GradientTransformation]
  eval_params: Callable = _identity
  defaults: dict = dataclasses.field(default_factory=dict)
  rename: Optional[Callable[[str, dict], str]] = None
  member_hp: Optional[Callable[[dict], dict]] = None

  def hp(self, values: dict) -> dict:
    """One member's hyper-parameters (without ``seed``) from ``{**defaults, **axis values}``."""
    values = {**self.defaults, **values}
    if self.member_hp is not None:
      return self.member_hp(values)
    dtype = jnp.result_type(float)  # float64 under jax_enable_x64
    return {name: np.asarray(values[name], dtype) for name in self.hp_names}


# ---------------------------------------------------------------------------------------------
# The momentum rule of the paper: CM, NAG and SGD in one family.

# Momentum schedules mu_t of the member's mu_max (config.momentum_schedule), docs/paper.md sec. 2.


def _sutskever(hp, config):
  base = schedules.sutskever_momentum(hp["mu_max"], period=config.get("momentum_period", 250))
  final_steps = config.get("final_steps", 0)
  if not final_steps:
    return base
  return schedules.final_phase(base, config.steps, final_steps, config.get("final_mu", 0.9))


def _warm(hp, config):
  warm = schedules.rnn_momentum(hp["mu_max"], warm_mu=config.get("warm_mu", 0.9),
                                warm_steps=config.get("warm_steps", 1000))
  # mu_0 = 0 is the SGD column of Table 5: no momentum at all, also during the warm phase.
  return lambda t: jnp.where(hp["mu_max"] > 0, warm(t), 0.0)


SCHEDULES = {
    "sutskever": _sutskever,                          # min(1 - 2^(-1 - log2(t/250 + 1)), mu_max)
    "warm": _warm,                                    # 0.9 for warm_steps updates, then mu_max
    "constant": lambda hp, config: hp["mu_max"],
    # 1 - 3 / (t + 5) whatever mu_max, except that mu_max = 0 (SGD) stays SGD.
    "nesterov_convex": lambda hp, config: (
        lambda t: jnp.where(hp["mu_max"] > 0, schedules.nesterov_convex()(t), 0.0)),
}


def momentum_family(config: ml_collections.ConfigDict) -> Family:
  """CM / NAG / SGD (``mominit.momentum_rule``), mu_t from ``config.momentum_schedule``."""
  schedule = SCHEDULES[config.momentum_schedule]

  def make(hp):
    return momentum.momentum_rule(hp["learning_rate"], schedule(hp, config),
                                  nesterov=hp["nesterov"])

  def rename(name, values):
    return "sgd" if float(values["mu_max"]) == 0.0 else name

  return Family("momentum", ("learning_rate", "mu_max", "nesterov"), make,
                eval_params=momentum.theta, rename=rename)


# ---------------------------------------------------------------------------------------------
# optax families, constant learning rate; their other settings come from config.optax.<name>.


def _optax_family(name, transform):
  def build(config):
    settings = dict(config.optax[name]) if name in config.get("optax", {}) else {}
    names = ("learning_rate",) + tuple(settings)
    return Family(name, names, lambda hp: transform(**{k: hp[k] for k in names}),
                  defaults=settings)
  return build


FAMILIES = {
    "momentum": momentum_family,
    "adam": _optax_family("adam", optax.adam),
    "rmsprop": _optax_family("rmsprop", optax.rmsprop),
    "adagrad": _optax_family("adagrad", optax.adagrad),
    "optax_sgd": _optax_family("optax_sgd", optax.sgd),
}

# Member name -> (family, the hyper-parameters the name fixes).
NAMES = {
    "cm": ("momentum", {"nesterov": 0.0}),
    "nag": ("momentum", {"nesterov": 1.0}),
    "sgd": ("momentum", {"nesterov": 0.0, "mu_max": 0.0}),
    "adam": ("adam", {}),
    "rmsprop": ("rmsprop", {}),
    "adagrad": ("adagrad", {}),
    "optax_sgd": ("optax_sgd", {}),
}


def default_settings() -> ml_collections.ConfigDict:
  """``config.optax``: the fixed settings of the optax families (optax's own defaults)."""
  return ml_collections.ConfigDict({
      "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
      "rmsprop": {"decay": 0.9, "eps": 1e-8},
      "adagrad": {"initial_accumulator_value": 0.1, "eps": 1e-7},
  })


def family_of(name: str) -> str:
  """The family of a member name (``"nag"`` -> ``"momentum"``)."""
  if name not in NAMES:
    raise ValueError(f"unknown optimizer {name!r}; valid: {sorted(NAMES)}")
  return NAMES[name][0]


def make(name: str, config: ml_collections.ConfigDict) -> Family:
  """The :class:`Family` of member name ``name`` under ``config``."""
  return FAMILIES[family_of(name)](config)


OPTIMIZER_AXES = ("mu_max", "learning_rate")  # the sweep axes of optimizer hyper-parameters


def resolve(name: str, values: dict, family: Family) -> tuple[str, dict]:
  """A member's reported name and axis values: the name's overrides applied (``sgd``: mu_max 0),
  the family's renaming (momentum at mu_max 0: ``sgd``), and NaN for the optimizer axes the
  family does not read (so members that differ only there deduplicate)."""
  values = {**values, **{k: v for k, v in NAMES[name][1].items() if k in values}}
  if family.rename is not None:
    name = family.rename(name, {**family.defaults, **values})
  return name, {k: (math.nan if k in OPTIMIZER_AXES and k not in family.hp_names else v)
                for k, v in values.items()}


def member_hp(name: str, values: dict, family: Family) -> dict:
  """One member's hyper-parameters for ``family.make`` (``seed`` excluded)."""
  return family.hp({**values, **NAMES[name][1]})


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks ``config.momentum_schedule`` and ``config.optax`` (ValueError naming the field)."""
  if config.momentum_schedule not in SCHEDULES:
    raise ValueError(f"config.momentum_schedule: unknown schedule {config.momentum_schedule!r}; "
                     f"valid: {sorted(SCHEDULES)}")
  for family, settings in config.optax.items():
    for key, value in settings.items():
      if not (math.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(f"config.optax.{family}.{key}: must be finite and >= 0, got {value!r}")
