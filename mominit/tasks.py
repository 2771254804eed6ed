"""The RNN long-term dependency problems (Hochreiter & Schmidhuber 1997; Martens & Sutskever 2011).

Each problem is a frozen dataclass with the sizes an RNN needs (`num_inputs`, `num_outputs`,
`max_len`, `readout`), its initialization constants (`input_scale`, `output_bias`) and a pure
`sample(key, batch_size) -> Batch` that draws fresh sequences with `jax.random` only, with static
shapes (every sequence is padded to `max_len`), so it can be jitted, vmapped and called on device
at every training step. `batch_size` must be a Python int (it fixes a shape); so must the task's
own sizes.

`Batch.mask` marks the time steps where the loss and the zero-one error are computed; the
padding after a sequence's end is zero in `inputs`, `targets` and `mask`.

The definitions follow Sutskever's own generators (`opt/d/seq` in the public HF-RNN code), read
to understand them; docs/paper.md section 5 restates them with 0-based positions and half-open
ranges.
All position ranges are written as f(x) = floor(x T / 100), as in that code. Where this module
departs from that code, the class docstring says so.

Input scale (Table 4 of the paper: sigma of the input-to-hidden weights): 0.001 for problems with
many irrelevant distractor inputs (every problem here with random inputs at every step:
addition, multiplication, XOR, temporal order, random permutation), 0.1 for the noiseless
memorization problems, whose inputs are blanks apart from the characters and the trigger.

Output bias (Table 4: "the average of the targets"): for a real-valued readout, the mean target
over masked steps (in the task's units, i.e. 0 when targets are centred). For a softmax readout
there is no single "mean output" in logit space; we use log of the mean target frequency over
masked steps (the softmax of these logits is exactly that frequency), with frequencies below
1e-4 (symbols that are never a target) floored at 1e-4 to keep the logits finite.
"""
# `T` is the paper's name for the length parameter; keeping it makes the definitions readable.
# pylint: disable=invalid-name
import dataclasses
import functools
import inspect
from typing import ClassVar, NamedTuple

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


def _marked_pair(key, batch_size, t_param, max_len, first, second, bits: bool):
  """The shared layout of addition, multiplication and XOR (Sutskever's `op_cls`).

  Returns:
    (values [B, L], marker [B, L], valid [B, L] bool, last [B, L] bool (step L-1),
     a [B], b [B]): a and b are the values at the two marked steps.
  """
  dt = _dtype()
  words = _random_words(key, batch_size, max_len + 3)
  length = _ints(words[:, -3:-2], t_param, _f(110, t_param))
  pos_a = _ints(words[:, -2:-1], *first)
  pos_b = _ints(words[:, -1:], *second)
  if bits:
    values = (words[:, :max_len] >> 31).astype(dt)
  else:
    values = _unit(words[:, :max_len], dt)
  t = jnp.arange(max_len)[None, :]
  valid = t < length
  # Same precedence as the original: the +1 marks overwrite the start marker at step 0 (possible
  # when floor(0.01 T) = 0, i.e. T < 100); step L-3 never meets a mark for T >= 10.
  marker = jnp.where(t == length - 3, -1.0,
                     jnp.where((t == pos_a) | (t == pos_b), 1.0,
                               jnp.where(t == 0, -1.0, 0.0))).astype(dt)
  a = jnp.take_along_axis(values, pos_a, axis=1)[:, 0]
  b = jnp.take_along_axis(values, pos_b, axis=1)[:, 0]
  return values, marker * valid, valid, t == length - 1, a, b


@dataclasses.dataclass(frozen=True)
class Arithmetic:
  """The addition or multiplication problem (real-valued, squared error).

  Length L uniform in [T, floor(1.1 T)). Inputs (value, marker): values U[0, 1] at every step;
  marker -1 at step 0 and at step L-3, +1 at two steps, the first uniform in [f(1), f(10)), the
  second in [f(10), f(50)). The only target is at the last step, L-1: the sum or the product of
  the two marked values. Error: |prediction - target| > 0.04.

  Centring (`center=True`, Table 4): the value channel has mean exactly 1/2 (U[0, 1]) and 1/2 is
  subtracted from it at valid steps; the marker channel is already centred (two -1 and two +1
  per sequence: its sum over a sequence is 0 unless a mark falls on step 0); targets have mean
  E[a + b] = 1 and E[a b] = 1/4 (independent U[0, 1] values), which is subtracted. Centring
  shifts target and prediction alike, so the zero-one error is the same on either scale.

  Departure from Sutskever's code: there, with n drawn from [T, 1.1 T), the -1 marker is at
  index n - 3 but the target at index n, so a sequence has n + 1 steps, lengths run over
  [T + 1, 1.1 T] and the marker is 4 steps before the end; here, as in docs/paper.md, L is the
  number of steps, the target is at L-1 and the marker 3 steps before the end.

  Attributes:
    op: "add" or "mul".
    T: the length parameter (T=80 in the paper).
    center: subtract the means above from the value channel and from the targets.
  """
  op: str = "add"
  T: int = 80
  center: bool = True

  num_inputs: ClassVar[int] = 2
  num_outputs: ClassVar[int] = 1
  readout: ClassVar[str] = "linear"
  input_scale: ClassVar[float] = DISTRACTOR_INPUT_SCALE
  _MEANS: ClassVar[dict] = {"add": 1.0, "mul": 0.25}

  def __post_init__(self):
    if self.op not in self._MEANS:
      raise ValueError(f"op must be 'add' or 'mul', got {self.op!r}")
    _check_int("T", self.T, _MIN_T)

  @property
  def name(self) -> str:
    return {"add": "addition", "mul": "multiplication"}[self.op]

  @property
  def max_len(self) -> int:
    return _f(110, self.T) - 1

  @property
  def target_mean(self) -> np.ndarray:
    """[1] mean target at masked steps, in the task's (centred or not) units."""
    return np.array([0.0 if self.center else self._MEANS[self.op]])

  @property
  def output_bias(self) -> np.ndarray:
    """[1] the RNN output-bias initialization: the mean target."""
    return self.target_mean

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws `batch_size` sequences; pure and jit/vmap-able (batch_size static)."""
    batch_size = _check_batch_size(batch_size)
    t = self.T
    values, marker, valid, last, a, b = _marked_pair(
        key, batch_size, t, self.max_len, (_f(1, t), _f(10, t)), (_f(10, t), _f(50, t)),
        bits=False)
    target = a + b if self.op == "add" else a * b
    if self.center:
      values = values - 0.5
      target = target - self._MEANS[self.op]
    inputs = jnp.stack([values * valid, marker], axis=-1)
    targets = jnp.where(last, target[:, None], 0.0)[..., None].astype(inputs.dtype)
    return Batch(inputs, targets, last.astype(inputs.dtype))


@dataclasses.dataclass(frozen=True)
class Xor:
  """The XOR problem: the layout of addition with random bits, target a XOR b.

  Length L uniform in [T, floor(1.1 T)); inputs (bit, marker), bits Bernoulli(1/2) at every
  step; marker -1 at step 0 and L-3, +1 at two steps, the first in [f(2), f(20)), the second in
  [f(30), f(50)) (Sutskever's ranges, rescaled: his XOR used length f(50) of a global T and
  positions f(1)..f(10), f(15)..f(25) of that global T). Target at step L-1: a XOR b.

  Departure from Sutskever's code: a softmax over 2 classes instead of one logistic output (the
  same model class, since a 2-way softmax depends only on the difference of its logits), so that
  every symbolic task here has a softmax readout. `center=True` subtracts the bit mean 1/2.

  Attributes:
    T: the length parameter.
    center: subtract 1/2 from the bit channel at valid steps.
  """
  T: int = 80
  center: bool = True

  num_inputs: ClassVar[int] = 2
  num_outputs: ClassVar[int] = 2
  readout: ClassVar[str] = "softmax"
  input_scale: ClassVar[float] = DISTRACTOR_INPUT_SCALE
  name: ClassVar[str] = "xor"

  def __post_init__(self):
    _check_int("T", self.T, _MIN_T)

  @property
  def max_len(self) -> int:
    return _f(110, self.T) - 1

  @property
  def target_mean(self) -> np.ndarray:
    """[2] frequency of each class at masked steps: 1/2 each."""
    return np.full(2, 0.5)

  @property
  def output_bias(self) -> np.ndarray:
    return _softmax_bias(self.target_mean)

  def sample(self, key: jax.Array, batch_size: int) -> Batch:
    """Draws `batch_size` sequences; pure and jit/vmap-able (batch_size static)."""
    batch_size = _check_batch_size(batch_size)
    t = self.T
    values, marker, valid, last, a, b = _marked_pair(
        key, batch_size, t, self.max_len, (_f(2, t), _f(20, t)), (_f(30, t), _f(50, t)),
        bits=True)
    if self.center:
      values = values - 0.5
    inputs = jnp.stack([values * valid, marker], axis=-1)
    label = (a != b).astype(jnp.int32)
    targets = jax.nn.one_hot(label, 2, dtype=inputs.dtype)[:, None, :] * last[..., None]
    return Batch(inputs, targets, last.astype(inputs.dtype))


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


def addition(T: int = 80, center: bool = True) -> Arithmetic:
  """The addition problem with length parameter T (see `Arithmetic`)."""
  return Arithmetic("add", T, center)


def multiplication(T: int = 80, center: bool = True) -> Arithmetic:
  """The multiplication problem with length parameter T (see `Arithmetic`)."""
  return Arithmetic("mul", T, center)


def xor(T: int = 80, center: bool = True) -> Xor:
  """The XOR problem with length parameter T (see `Xor`)."""
  return Xor(T, center)


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


def temporal_order(T: int = 80, num_symbols: int = 2) -> TemporalOrder:
  """The temporal order problem with 2 or 3 relevant symbols (see `TemporalOrder`)."""
  return TemporalOrder(T, num_symbols)


def random_permutation(T: int = 80, num_symbols: int = 100,
                       predict_all: bool = False) -> RandomPermutation:
  """The random permutation problem (see `RandomPermutation`)."""
  return RandomPermutation(T, num_symbols, predict_all)


_MAKERS = {
    "addition": addition,
    "multiplication": multiplication,
    "mem5": mem5,
    "mem20": mem20,
    "memorization": memorization,
    "xor": xor,
    "temporal_order": temporal_order,
    "random_permutation": random_permutation,
}
NAMES = tuple(_MAKERS)


def make(name: str, **kwargs):
  """Builds a task from its name.

  Args:
    name: one of `NAMES`: "addition", "multiplication", "mem5", "mem20", "memorization",
      "xor", "temporal_order", "random_permutation".
    **kwargs: the keyword arguments of the function of that name (e.g. `T=80`).

  Returns:
    The task object.

  `center` is accepted for every task so that one config key serves them all; it only acts on
  the tasks with real-valued channels (addition, multiplication, XOR) and is dropped for the
  one-hot tasks, which the paper calls "already centered".

  Raises:
    ValueError: unknown name (the message lists the valid ones) or bad arguments.
  """
  if name not in _MAKERS:
    raise ValueError(f"unknown task {name!r}; valid names: {', '.join(NAMES)}")
  factory = _MAKERS[name]
  if "center" not in inspect.signature(factory).parameters:
    kwargs.pop("center", None)
  try:
    return factory(**kwargs)
  except TypeError as e:  # Unknown or missing keyword: report it as bad input.
    raise ValueError(f"bad arguments for task {name!r}: {e}") from e


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
