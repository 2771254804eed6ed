"""Temporal order and random permutation: one-hot symbol streams with a long-range target.

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
    DISTRACTOR_INPUT_SCALE, Batch, _MIN_T, _check_batch_size, _check_int, _dtype, _f, _ints,
    _random_words, _softmax_bias,
)


@dataclasses.dataclass(frozen=True)
class TemporalOrder:
  """The 2- or 3-symbol temporal order problem (Sutskever's `temporal2` / `temporal3`).

  Length L uniform in [T, floor(1.1 T)). Inputs are one-hot over 8 symbols: 0-3 random
  distractors at every step, 4 = X and 5 = Y the relevant symbols, 6 = the trigger at the last
  step L-1, 7 = the start symbol at step 0. The relevant symbols (X or Y, uniform) sit at one
  step drawn uniformly from each of the inclusive ranges [f(1), f(10)], [f(40), f(50)]
  (2 symbols) or [f(1), f(10)], [f(30), f(40)], [f(50), f(60)] (3 symbols), overwriting the start
  symbol if the first falls on step 0 (as in the original). Target at step L-1: the class
  sum_i bit_i 2^(n-1-i) (bit = 1 for Y, first symbol most significant), one of 4 or 8.

  Departures from Sutskever's code (`temporal2` / `temporal3`):
  - length: there the length n is drawn from [T, 1.1 T) but the target sits at index n, so a
    sequence has n + 1 steps (lengths T + 1 .. floor(1.1 T)); here, as in docs/paper.md, L is the
    number of steps and the target is at L-1, one step earlier relative to the ranges.
  - trigger: his 2-symbol version shows it at n - 1, one step before the target step; here both
    versions show it at the target step (as his 3-symbol version does).
  - class code: for 3 symbols his class is 4C + 2B + A (the last symbol most significant); here
    it is 4A + 2B + C, the first symbol most significant, as in his 2-symbol code 2A + B. It
    only relabels the 8 classes, so nothing about what a net can learn changes.
  - balance: his generator sets X/Y by the batch index (b % 2, b / 2 % 2, ...), so every batch
    holds each class equally often; here they are drawn at random per sequence.

  Attributes:
    T: the length parameter.
    num_symbols: 2 or 3 relevant symbols.
  """
  T: int = 80
  num_symbols: int = 2

  num_inputs: ClassVar[int] = 8
  readout: ClassVar[str] = "softmax"
  input_scale: ClassVar[float] = DISTRACTOR_INPUT_SCALE
  _RANGES: ClassVar[dict] = {2: ((1, 10), (40, 50)), 3: ((1, 10), (30, 40), (50, 60))}

  def __post_init__(self):
    if self.num_symbols not in self._RANGES:
      raise ValueError(f"num_symbols must be 2 or 3, got {self.num_symbols!r}")
    _check_int("T", self.T, _MIN_T)

  @property
  def name(self) -> str:
    return f"temporal_order{self.num_symbols}"

  @property
  def num_outputs(self) -> int:
    return 2 ** self.num_symbols

  @property
  def max_len(self) -> int:
    return _f(110, self.T) - 1

  @property
  def position_ranges(self) -> tuple:
    """Half-open [lo, hi) step ranges of the relevant symbols."""
    return tuple((_f(lo, self.T), _f(hi, self.T) + 1) for lo, hi in self._RANGES[self.num_symbols])

  @property
  def target_mean(self) -> np.ndarray:
    return np.full(self.num_outputs, 1.0 / self.num_outputs)

  @property
  def output_bias(self) -> np.ndarray:
    return _softmax_bias(self.target_mean)

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws `batch_size` sequences; pure and jit/vmap-able (batch_size static)."""
    batch_size = _check_batch_size(batch_size)
    dt, n = _dtype(), self.num_symbols
    ell = self.max_len
    words = _random_words(key, batch_size, ell + 1 + 2 * n)
    length = _ints(words[:, ell:ell + 1], self.T, _f(110, self.T))
    t = jnp.arange(ell)[None, :]
    symbols = jnp.where(t == 0, 7, _ints(words[:, :ell], 0, 4))
    bits = _ints(words[:, ell + 1:ell + 1 + n], 0, 2)
    for i, (lo, hi) in enumerate(self.position_ranges):  # n <= 3 symbols, not time steps.
      pos = _ints(words[:, ell + 1 + n + i:ell + 2 + n + i], lo, hi)
      symbols = jnp.where(t == pos, 4 + bits[:, i:i + 1], symbols)
    last = t == length - 1
    symbols = jnp.where(last, 6, symbols)
    inputs = jax.nn.one_hot(symbols, 8, dtype=dt) * (t < length)[..., None]
    label = jnp.sum(bits * 2 ** jnp.arange(n - 1, -1, -1), axis=1)
    targets = jax.nn.one_hot(label, self.num_outputs, dtype=dt)[:, None, :] * last[..., None]
    return Batch(inputs, targets, last.astype(dt))


@dataclasses.dataclass(frozen=True)
class RandomPermutation:
  """The random permutation problem (Sutskever's `perm_mem`).

  T steps, one-hot over `num_symbols` symbols. Step 0 shows symbol a, 0 or 1 (uniform); steps
  1..T-1 show symbols drawn uniformly from 2..num_symbols-1. The target at step t < T-1 is the
  next input (symbol at t + 1); at the last step, T-1, it is a.

  Departures from Sutskever's code (`perm_mem`): he sets a = b % 2 by the batch index, so the
  first symbol is balanced within every batch (exactly half 0, half 1); here a is drawn at
  random per sequence, so a batch is balanced only on average (its share of 0s is
  Binomial(B, 1/2) / B). His loss covers every step but his zero-one error only the
  last one. Since the next symbol at steps < T-1 is independent uniform noise (nothing but the
  output biases can learn it), the mask here covers only the last step by default;
  `predict_all=True` masks every step (his loss, but then the zero-one error counts all steps).

  Attributes:
    T: sequence length.
    num_symbols: alphabet size (100 in the original).
    predict_all: mask every step instead of only the last.
  """
  T: int = 80
  num_symbols: int = 100
  predict_all: bool = False

  readout: ClassVar[str] = "softmax"
  input_scale: ClassVar[float] = DISTRACTOR_INPUT_SCALE
  name: ClassVar[str] = "random_permutation"

  def __post_init__(self):
    _check_int("T", self.T, 2)
    _check_int("num_symbols", self.num_symbols, 3)

  @property
  def num_inputs(self) -> int:
    return self.num_symbols

  @property
  def num_outputs(self) -> int:
    return self.num_symbols

  @property
  def max_len(self) -> int:
    return self.T

  @property
  def target_mean(self) -> np.ndarray:
    """[num_symbols] frequency of each target symbol over masked steps."""
    freq = np.zeros(self.num_symbols)
    if self.predict_all:
      freq[:2] = 0.5 / self.T
      freq[2:] = (self.T - 1) / (self.T * (self.num_symbols - 2))
    else:
      freq[:2] = 0.5
    return freq

  @property
  def output_bias(self) -> np.ndarray:
    return _softmax_bias(self.target_mean)

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws `batch_size` sequences; pure and jit/vmap-able (batch_size static)."""
    batch_size = _check_batch_size(batch_size)
    dt, s = _dtype(), self.num_symbols
    words = _random_words(key, batch_size, self.T)
    first = _ints(words[:, :1], 0, 2)
    rest = _ints(words[:, 1:], 2, s)
    inputs = jax.nn.one_hot(jnp.concatenate([first, rest], axis=1), s, dtype=dt)
    targets = jax.nn.one_hot(jnp.concatenate([rest, first], axis=1), s, dtype=dt)
    if self.predict_all:
      mask = jnp.ones((batch_size, self.T), dt)
    else:
      mask = jnp.zeros((batch_size, self.T), dt).at[:, -1].set(1.0)
    return Batch(inputs, targets, mask)


def temporal_order(T: int = 80, num_symbols: int = 2) -> TemporalOrder:
  """The temporal order problem with 2 or 3 relevant symbols (see `TemporalOrder`)."""
  return TemporalOrder(T, num_symbols)


def random_permutation(T: int = 80, num_symbols: int = 100,
                       predict_all: bool = False) -> RandomPermutation:
  """The random permutation problem (see `RandomPermutation`)."""
  return RandomPermutation(T, num_symbols, predict_all)
