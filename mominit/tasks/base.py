"""The shared pieces of the RNN problems: `Batch`, `Baseline`, constants, samplers' helpers.

Random quantities come from `_random_words` (one `jax.random.bits` draw per batch); position
ranges use `_f` (floor(x T / 100), as in Sutskever's code). `biases_baseline` scores the best
constant output of any task. See `mominit.tasks` for the conventions every task follows.
"""
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

REAL_TOLERANCE = 0.04  # A real-valued output is wrong if it is off by more than this.
DISTRACTOR_INPUT_SCALE = 0.001
INPUT_SCALE = 0.1
_MIN_FREQUENCY = 1e-4
_MIN_T = 10  # Smallest T for which every position range below is non-empty and disjoint.


class Batch(NamedTuple):
  """A batch of padded sequences.

  Attributes:
    inputs: [B, L, I] inputs, L = task.max_len.
    targets: [B, L, O] targets (real values, or one-hot for a softmax readout).
    mask: [B, L] 1.0 where the loss and the zero-one error are computed, else 0.0.
  """
  inputs: jax.Array
  targets: jax.Array
  mask: jax.Array


class Baseline(NamedTuple):
  """Errors of the best constant output (see `biases_baseline`).

  Attributes:
    zero_one: fraction of masked steps predicted wrongly.
    loss: mean over masked steps of the squared error (summed over outputs) or cross-entropy.
  """
  zero_one: float
  loss: float


def _f(percent: int, t: int) -> int:
  """floor(percent * t / 100) in integer arithmetic (Sutskever's `int(x * factor)`)."""
  return (percent * t) // 100


def _check_int(name: str, value, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _check_batch_size(batch_size) -> int:
  return _check_int("batch_size (a Python int: it fixes a shape)", batch_size, 1)


def _dtype():
  return jnp.result_type(float)


def _random_words(key, batch_size: int, width: int) -> jax.Array:
  """[B, width] uniform uint32 words: every random quantity of a batch comes from one draw.

  One `jax.random.bits` call instead of one `randint` per quantity: each separate draw adds
  a threefry kernel and a quarter of a second of XLA compilation on a CPU. Drawn flat and
  reshaped because XLA:CPU compiles some 2-D shapes (e.g. [2000, 10]) five times slower.
  """
  return jax.random.bits(key, (batch_size * width,), jnp.uint32).reshape(batch_size, width)


def _ints(words, lo: int, hi: int) -> jax.Array:
  """Integers uniform in [lo, hi) from uint32 words (modulo bias below (hi - lo) / 2^32)."""
  return lo + (words % jnp.uint32(hi - lo)).astype(jnp.int32)


def _unit(words, dtype) -> jax.Array:
  """Floats uniform in [0, 1) on a 2^-24 grid, from uint32 words."""
  return (words >> 8).astype(dtype) * (2.0 ** -24)


def _softmax_bias(freq: np.ndarray) -> np.ndarray:
  return np.log(np.maximum(freq, _MIN_FREQUENCY))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample_jit(task, key, batch_size):
  # Tasks are hashable, so equal tasks share one compilation.
  return task.sample(key, batch_size)


def biases_baseline(task, key=None, num_samples: int = 10_000, chunk: int = 1000) -> Baseline:
  """Errors of a net that learns only its output biases (no memory), on fresh samples.

  Such a net outputs the same thing at every step (its hidden-to-output contribution is
  ignored, as in the paper's "biases" column), so the best it can do is the best constant:
  - linear readout, squared error: the mean target over masked steps (`task.target_mean`);
  - softmax readout, cross-entropy: the global frequency of each target symbol over masked
    steps (`task.target_mean`), not per-step frequencies, since a bias cannot depend on time.
    Its zero-one error is that of always predicting the most frequent symbol.

  Args:
    task: a task object from this module.
    key: PRNG key for the samples (default `jax.random.PRNGKey(0)`).
    num_samples: number of sequences evaluated.
    chunk: sequences drawn per call (bounds memory).

  Returns:
    `Baseline(zero_one, loss)`: zero-one error (fraction of masked steps wrong; for real
    targets, |error| > 0.04) and mean loss per masked step (squared error summed over outputs,
    or cross-entropy in nats).
  """
  num_samples = _check_int("num_samples", num_samples, 1)
  chunk = _check_int("chunk", chunk, 1)
  if getattr(task, "enumerate_all", False):  # Whole enumerations only.
    m = task.num_strings
    chunk = m * max(1, chunk // m)
    num_samples = m * -(-num_samples // m)
  key = jax.random.PRNGKey(0) if key is None else key
  mean = task.target_mean
  wrong = loss = count = 0.0
  for i, start in enumerate(range(0, num_samples, chunk)):  # Chunks of data, not time steps.
    size = min(chunk, num_samples - start)
    batch = jax.tree.map(lambda x: np.asarray(x, np.float64),
                         _sample_jit(task, jax.random.fold_in(key, i), size))
    mask = batch.mask
    if task.readout == "linear":
      err = mean[None, None, :] - batch.targets
      loss += np.sum(np.sum(err ** 2, axis=-1) * mask)
      wrong += np.sum(np.any(np.abs(err) > REAL_TOLERANCE, axis=-1) * mask)
    else:
      log_p = np.log(np.where(mean > 0, mean, 1.0))
      # Symbols with frequency 0 never are targets: 0 * log 0 counts as 0.
      loss -= np.sum(np.sum(batch.targets * log_p, axis=-1) * mask)
      wrong += np.sum((np.argmax(batch.targets, axis=-1) != np.argmax(mean)) * mask)
    count += np.sum(mask)
  return Baseline(float(wrong / count), float(loss / count))
