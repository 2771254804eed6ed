"""Losses and zero-one errors of the paper (docs/paper.md sections 4 and 5).

All functions return scalars. "Mean over cases" is the mean over the batch axis; the masked
(sequence) versions average over the positions where ``mask`` is non-zero, so a sequence with
targets only at its last step counts once. An all-zero mask gives 0, not NaN. The sums over the
output axis follow the paper: the squared error is ``sum (y - x)^2`` with no 1/2.

Shapes are checked eagerly (they are static even for traced arrays) and mismatches raise
``ValueError``.
"""
from typing import Any

import jax
import jax.numpy as jnp

from mominit import initializers

__all__ = [
    "masked_softmax_cross_entropy", "masked_squared_error", "real_zero_one",
    "sigmoid_cross_entropy", "squared_error", "symbol_zero_one",
]


def _check_same_shape(fn: str, a: jax.Array, b: jax.Array, names=("pred", "target")) -> None:
  if jnp.shape(a) != jnp.shape(b):
    raise ValueError(f"{fn}: {names[0]} and {names[1]} must have the same shape, got "
                     f"{jnp.shape(a)} and {jnp.shape(b)}")


def _check_sequence(fn: str, x: jax.Array, target: jax.Array, mask: jax.Array) -> None:
  _check_same_shape(fn, x, target)
  if jnp.ndim(x) != 3 or jnp.shape(mask) != jnp.shape(x)[:2]:
    raise ValueError(f"{fn}: expected pred/target [B, L, O] and mask [B, L], got "
                     f"{jnp.shape(x)} and mask {jnp.shape(mask)}")


def _masked_mean(per_position: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of ``per_position [B, L]`` over positions weighted by ``mask [B, L]`` (0 if empty)."""
  mask = jnp.asarray(mask, per_position.dtype)
  total = jnp.sum(mask)
  # Guarding the denominator (not the quotient) keeps the gradient finite too.
  return jnp.sum(per_position * mask) / jnp.where(total > 0, total, 1)


def squared_error(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Squared reconstruction error: per case sum over outputs of (pred - target)^2, mean over cases.

  Args:
    pred: ``[B, D]`` predictions (e.g. reconstructed pixels).
    target: ``[B, D]`` targets.

  Returns:
    Scalar, in squared target units per case (no 1/2).
  """
  _check_same_shape("squared_error", pred, target)
  per_case = jnp.sum(jnp.square(pred - target).reshape(jnp.shape(pred)[0], -1), axis=-1)
  return jnp.mean(per_case)


def _sigmoid_xent(logits: jax.Array, target: jax.Array) -> jax.Array:
  # -[t log s(z) + (1 - t) log(1 - s(z))] = softplus(z) - t z, written stably for large |z|.
  return jnp.maximum(logits, 0) - target * logits + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def sigmoid_cross_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Bernoulli cross-entropy of logistic outputs: sum over outputs, mean over cases.

  Args:
    logits: ``[B, D]`` output pre-activations (the prediction is ``sigmoid(logits)``).
    target: ``[B, D]`` targets in [0, 1] (e.g. pixel intensities).

  Returns:
    Scalar, in nats per case. Numerically stable for any finite logits.
  """
  _check_same_shape("sigmoid_cross_entropy", logits, target, ("logits", "target"))
  per_elem = _sigmoid_xent(logits, target)
  return jnp.mean(jnp.sum(per_elem.reshape(jnp.shape(logits)[0], -1), axis=-1))


def masked_squared_error(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Squared error of sequence outputs: sum over outputs, mean over masked positions.

  Args:
    pred: ``[B, L, O]`` predictions.
    target: ``[B, L, O]`` targets.
    mask: ``[B, L]``, 1 where a target exists, 0 elsewhere.

  Returns:
    Scalar, squared target units per masked position (0 for an all-zero mask).
  """
  _check_sequence("masked_squared_error", pred, target, mask)
  return _masked_mean(jnp.sum(jnp.square(pred - target), axis=-1), mask)


def masked_softmax_cross_entropy(logits: jax.Array, target_onehot: jax.Array,
                                 mask: jax.Array) -> jax.Array:
  """Softmax cross-entropy of sequence outputs: mean over masked positions.

  Args:
    logits: ``[B, L, O]`` softmax pre-activations.
    target_onehot: ``[B, L, O]`` one-hot (or any probability vector) targets.
    mask: ``[B, L]``, 1 where a target exists, 0 elsewhere.

  Returns:
    Scalar, nats per masked position (0 for an all-zero mask).
  """
  _check_sequence("masked_softmax_cross_entropy", logits, target_onehot, mask)
  per_position = -jnp.sum(target_onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)
  return _masked_mean(per_position, mask)


def real_zero_one(pred: jax.Array, target: jax.Array, mask: jax.Array,
                  tol: Any = 0.04) -> jax.Array:
  """Fraction of masked positions where some output misses its target by more than ``tol``.

  Args:
    pred: ``[B, L, O]`` predictions.
    target: ``[B, L, O]`` real targets.
    mask: ``[B, L]``, 1 where a target exists.
    tol: absolute tolerance (0.04 in the paper's addition/multiplication problems); may be traced.

  Returns:
    Scalar in [0, 1] (0 for an all-zero mask).
  """
  _check_sequence("real_zero_one", pred, target, mask)
  initializers.check_scalar("tol", tol)
  wrong = jnp.any(jnp.abs(pred - target) > tol, axis=-1)
  return _masked_mean(wrong.astype(jnp.result_type(pred, float)), mask)


def symbol_zero_one(logits: jax.Array, target_onehot: jax.Array, mask: jax.Array) -> jax.Array:
  """Fraction of masked positions whose most likely symbol is not the target symbol.

  Args:
    logits: ``[B, L, O]`` softmax pre-activations (or probabilities).
    target_onehot: ``[B, L, O]`` one-hot targets.
    mask: ``[B, L]``, 1 where a target exists.

  Returns:
    Scalar in [0, 1] (0 for an all-zero mask).
  """
  _check_sequence("symbol_zero_one", logits, target_onehot, mask)
  wrong = jnp.argmax(logits, axis=-1) != jnp.argmax(target_onehot, axis=-1)
  return _masked_mean(wrong.astype(jnp.result_type(logits, float)), mask)
