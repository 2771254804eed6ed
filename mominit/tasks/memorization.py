"""Noiseless memorization (mem-5, mem-20): recall a string after a long blank gap.

See `mominit.tasks` for the conventions every task follows.
"""
# `T` is the paper's name for the length parameter; keeping it makes the definitions readable.
# pylint: disable=invalid-name
import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from mominit.tasks.base import (
    INPUT_SCALE, Batch, _check_batch_size, _check_int, _dtype, _ints, _random_words,
    _softmax_bias,
)


@dataclasses.dataclass(frozen=True)
class Memorization:
  """Noiseless memorization (Sutskever's `raw_mem`): recall a string after a long blank gap.

  A sequence has exactly T steps (T is the total length, as in Sutskever's code, not the gap).
  Input symbols (one-hot, `char_size + 2` channels: the characters 0..char_size-1, then the
  trigger, then the blank): the `num_chars` characters at steps 0..num_chars-1, the trigger at
  step T - num_chars - 1, blanks everywhere else. Targets (one-hot, `char_size + 1` channels:
  the characters, then the blank): blank at every step except the last `num_chars`, which must
  reproduce the characters in order.

  Mask (which steps the loss and the zero-one error cover):
  - `recall_only=True`, Table 5's protocol (`configs/rnn.py` uses it): only the last
    `num_chars` steps (Sutskever's `only_predict_the_memory_bits` option). The zero-one error is
    then the fraction of recall steps wrong; times `num_chars` it is Table 5's unit, wrong recall
    steps per sequence, in which a biases-only net scores 5 x 1/2 = 2.5 (mem-5) and
    10 x 4/5 = 8.0 (mem-20), the paper's biases column.
  - `recall_only=False` (the default here; the paper's words "the fraction of timesteps
    computed incorrectly"): every step, blanks included; a biases-only net then outputs the
    blank everywhere and is wrong at every recall step, so its error is not Table 5's.

  mem-5: `Memorization(5, 2, 200)`; mem-20: `Memorization(10, 5, 80)`.

  Departure from Sutskever's code (`raw_mem`): there the inputs and the targets have
  `char_size` channels only, and the blank and the trigger are written into the last two of
  them (`V[:, -1]`, `V[:, -2]`, `O[:, -1]`), i.e. onto the channels of the last characters, so
  a blank and a character share a channel; here every symbol has its own channel (inputs:
  characters, trigger, blank; targets: characters, blank), which is what the task's text
  describes (distinct blank and trigger symbols).

  Attributes:
    num_chars: length of the string to remember.
    char_size: alphabet size.
    T: total sequence length.
    enumerate_all: instead of drawing strings at random, sequence b of a batch holds string
      number b mod char_size**num_chars (base-char_size digits, most significant first), so a
      batch of exactly char_size**num_chars (32 for mem-5) holds every string once. The batch
      size must then be a multiple of char_size**num_chars and the key is not used.
    recall_only: mask only the recall steps (Table 5's protocol; see above).
  """
  num_chars: int = 5
  char_size: int = 2
  T: int = 200
  enumerate_all: bool = False
  recall_only: bool = False

  readout: ClassVar[str] = "softmax"
  input_scale: ClassVar[float] = INPUT_SCALE

  def __post_init__(self):
    _check_int("num_chars", self.num_chars, 1)
    _check_int("char_size", self.char_size, 2)
    # Characters, at least one blank, the trigger, then the recall steps.
    _check_int(f"T (with num_chars={self.num_chars})", self.T, 2 * self.num_chars + 1)

  @property
  def name(self) -> str:
    tail = ", recall_only" if self.recall_only else ""
    return f"memorization({self.num_chars}, {self.char_size}, {self.T}{tail})"

  @property
  def scored_steps(self) -> int:
    """Masked steps per sequence: `num_chars` (recall only) or T."""
    return self.num_chars if self.recall_only else self.T

  @property
  def num_inputs(self) -> int:
    return self.char_size + 2

  @property
  def num_outputs(self) -> int:
    return self.char_size + 1

  @property
  def max_len(self) -> int:
    return self.T

  @property
  def trigger_step(self) -> int:
    return self.T - self.num_chars - 1

  @property
  def num_strings(self) -> int:
    return self.char_size ** self.num_chars

  @property
  def target_mean(self) -> np.ndarray:
    """[char_size + 1] frequency of each output symbol over the masked steps (all steps, or
    the recall steps only, where the blank is never a target)."""
    if self.recall_only:
      return np.array([1.0 / self.char_size] * self.char_size + [0.0])
    chars = self.num_chars / (self.T * self.char_size)
    return np.array([chars] * self.char_size + [(self.T - self.num_chars) / self.T])

  @property
  def output_bias(self) -> np.ndarray:
    return _softmax_bias(self.target_mean)

  def strings(self, key: jax.Array, batch_size: int) -> jax.Array:
    """The [B, num_chars] int32 strings a `sample` with the same arguments shows."""
    batch_size = _check_batch_size(batch_size)
    if self.enumerate_all:
      if batch_size % self.num_strings:
        raise ValueError(f"with enumerate_all, batch_size must be a multiple of "
                         f"{self.char_size}**{self.num_chars} = {self.num_strings}, got "
                         f"{batch_size}")
      index = np.arange(batch_size)[:, None] % self.num_strings
      place = self.char_size ** np.arange(self.num_chars - 1, -1, -1)[None, :]
      return jnp.asarray((index // place) % self.char_size, jnp.int32)
    return _ints(_random_words(key, batch_size, self.num_chars), 0, self.char_size)

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws `batch_size` sequences; pure and jit/vmap-able (batch_size static)."""
    chars = self.strings(key, batch_size)
    n, k, dt = self.num_chars, self.char_size, _dtype()
    trigger, blank = k, k + 1
    symbols = jnp.full((chars.shape[0], self.T), blank, jnp.int32)
    symbols = symbols.at[:, :n].set(chars).at[:, self.trigger_step].set(trigger)
    wanted = jnp.full((chars.shape[0], self.T), k, jnp.int32).at[:, self.T - n:].set(chars)
    mask = jnp.ones((chars.shape[0], self.T), dt)
    if self.recall_only:
      mask = (jnp.arange(self.T) >= self.T - n).astype(dt)[None, :] * mask
    return Batch(jax.nn.one_hot(symbols, k + 2, dtype=dt), jax.nn.one_hot(wanted, k + 1, dtype=dt),
                 mask)


def memorization(num_chars: int, char_size: int, T: int, enumerate_all: bool = False,
                 recall_only: bool = False) -> Memorization:
  """Noiseless memorization of `num_chars` characters from `char_size`, total length T."""
  return Memorization(num_chars, char_size, T, enumerate_all, recall_only)


def mem5(T: int = 200, enumerate_all: bool = False, recall_only: bool = False) -> Memorization:
  """mem-5: 5 binary characters, T = 200 in the paper (Table 5: `recall_only=True`)."""
  return Memorization(5, 2, T, enumerate_all, recall_only)


def mem20(T: int = 80, enumerate_all: bool = False, recall_only: bool = False) -> Memorization:
  """mem-20: 10 characters from an alphabet of 5, T = 80 in the paper (Table 5:
  `recall_only=True`)."""
  return Memorization(10, 5, T, enumerate_all, recall_only)
