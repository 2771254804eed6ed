"""Addition, multiplication and XOR: two marked values in a stream of distractors.

All three share Sutskever's `op_cls` layout (`_marked_pair`); see `mominit.tasks` for the
conventions every task follows.
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
    _random_words, _softmax_bias, _unit,
)


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


def addition(T: int = 80, center: bool = True) -> Arithmetic:
  """The addition problem with length parameter T (see `Arithmetic`)."""
  return Arithmetic("add", T, center)


def multiplication(T: int = 80, center: bool = True) -> Arithmetic:
  """The multiplication problem with length parameter T (see `Arithmetic`)."""
  return Arithmetic("mul", T, center)


def xor(T: int = 80, center: bool = True) -> Xor:
  """The XOR problem with length parameter T (see `Xor`)."""
  return Xor(T, center)
