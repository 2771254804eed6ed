"""Shared pieces of `mominit.hf`: types, the validation of Python hyper-parameters, batches."""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PyTree = Any
ApplyFn = Callable[[PyTree, Array], Array]

# ---------------------------------------------------------------------------------------------
# Validation helpers (Python values only; traced values cannot be checked).


def _is_python_number(x) -> bool:
  return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _check_range(name, value, lo=None, hi=None, lo_open=False, hi_open=False):
  """Raises ValueError for a Python number outside [lo, hi] (open ends when asked)."""
  if not _is_python_number(value):
    return
  v = float(value)
  if not math.isfinite(v):
    raise ValueError(f"{name} must be finite, got {value!r}")
  if lo is not None and (v <= lo if lo_open else v < lo):
    raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
  if hi is not None and (v >= hi if hi_open else v > hi):
    raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")



def _check_int(name, value, lo):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{name} must be a Python int, got {value!r}")
  if value < lo:
    raise ValueError(f"{name} must be >= {lo}, got {value}")


def _unpack(batch):
  """Returns (inputs, targets, weights) from (inputs, targets) or (inputs, targets, mask).

  Raises:
    ValueError: for anything else, or when leading shapes disagree.
  """
  if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
    raise ValueError("a batch must be a tuple (inputs, targets) or (inputs, targets, mask), got "
                     f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                   if isinstance(batch, (tuple, list)) else ""))
  inputs, targets = batch[0], batch[1]
  if jnp.ndim(targets) < 2:
    raise ValueError(f"targets must have shape [B, ..., O], got {jnp.shape(targets)}")
  if jnp.shape(inputs)[0] != jnp.shape(targets)[0]:
    raise ValueError(f"inputs and targets disagree on the number of cases: "
                     f"{jnp.shape(inputs)[0]} vs {jnp.shape(targets)[0]}")
  if len(batch) == 3:
    weights = batch[2]
    if jnp.shape(weights) != jnp.shape(targets)[:-1]:
      raise ValueError(f"mask must have shape targets.shape[:-1] = {jnp.shape(targets)[:-1]}, "
                       f"got {jnp.shape(weights)}")
  else:
    weights = jnp.ones(jnp.shape(targets)[:-1], jnp.result_type(targets))
  return inputs, targets, weights



def _total(weights):
  # An all-zero mask gives a zero objective (as in mominit.losses), not NaN.
  total = jnp.sum(weights)
  return jnp.where(total > 0, total, 1)

