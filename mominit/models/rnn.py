"""The tanh RNN of the long-term dependency problems (docs/paper.md section 5, Table 4).

    h_0 = 0
    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)
    y_t = h_t W_hy + b_y

with 100 hidden units by default, an output at every time step (linear for real targets, softmax
logits for symbols) and the ESN-inspired initialization of Table 4 (``W_hh``: 15 non-zero
Gaussian inputs per unit, rescaled to spectral radius 1.1). Parameters (row-vector
convention, kernels ``[fan_in, fan_out]``): ``W_xh [I, H]``, ``W_hh [H, H]``, ``b_h [H]``,
``W_hy [H, O]``, ``b_y [O]``. The hidden states ``[B, L, H]`` are sown as
``'intermediates'/'hidden'`` for diagnostics.

The recurrence is :func:`tanh_recurrence`, a ``jax.lax.scan`` over time with a custom JVP whose
tangent scan does one small ``[B, H] x [H, H]`` matmul per step; the rest of the model is
time-major so that no ``[B, L, H]`` array is transposed.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mominit import initializers
from mominit.initializers import Initializer

__all__ = ["READOUTS", "RECURRENT_CONNECTIONS", "RECURRENT_INITS", "SPECTRAL_RADIUS", "TanhRNN",
           "tanh_recurrence"]

READOUTS = ("linear", "softmax")
# W_hh initializers by name. "sparse" is Table 4's: 15 non-zero N(0, 1) incoming weights per
# unit at distinct rows, then the whole matrix rescaled to spectral radius 1.1. "dense": every
# entry N(0, 1) before the same rescale (this model's default before Table 4's digits were known).
SPECTRAL_RADIUS = 1.1  # Table 4
# Non-zero incoming weights per unit of each named W_hh init before the rescale (None: dense).
RECURRENT_CONNECTIONS = {"sparse": 15, "dense": None}
RECURRENT_INITS = {name: initializers.spectral_radius(SPECTRAL_RADIUS, num_connections=n)
                   for name, n in RECURRENT_CONNECTIONS.items()}


def _scan_tanh(w_hh: jax.Array, drive: jax.Array) -> jax.Array:
  """The plain recurrence: ``hs[t] = tanh(drive[t] + hs[t-1] w_hh)`` from ``hs[-1] = 0``."""
  def step(h, d):
    h = jnp.tanh(d + h @ w_hh)
    return h, h

  return jax.lax.scan(step, jnp.zeros(drive.shape[1:], drive.dtype), drive)[1]


@jax.custom_jvp
def tanh_recurrence(w_hh: jax.Array, drive: jax.Array) -> jax.Array:
  """Hidden states of ``h_t = tanh(drive_t + h_{t-1} w_hh)`` from ``h = 0``, time-major.

  Differentiating the plain scan gives a tangent step with two matmuls (``dh w_hh`` and
  ``h d_w_hh``) and, in reverse mode, a backward scan that also accumulates ``d_w_hh`` one
  ``[H, B] x [B, H]`` product per step. The custom JVP moves ``h_{t-1} d_w_hh`` for all steps
  into one GEMM before its scan, so reverse mode (JAX transposes this JVP) runs one
  ``[B, H] x [H, H]`` matmul per step and gets ``d_w_hh`` as one ``[H, L B] x [L B, H]`` GEMM.
  It is a JVP rather than a VJP so that forward mode (``jax.linearize`` in ``mominit.hf``) and
  higher derivatives keep working.

  Args:
    w_hh: ``[H, H]`` recurrent weights (row-vector convention).
    drive: ``[L, B, H]`` input drive ``x_t W_xh + b_h`` of every step.

  Returns:
    ``[L, B, H]`` hidden states ``h_1 ... h_L``.
  """
  return _scan_tanh(w_hh, drive)


@tanh_recurrence.defjvp
def _tanh_recurrence_jvp(primals, tangents):
  """dh_t = (1 - h_t^2) (u_t + dh_{t-1} w_hh) with u = d_drive + h_{t-1} d_w_hh as one GEMM."""
  w_hh, drive = primals
  d_w_hh, d_drive = tangents
  hs = _scan_tanh(w_hh, drive)
  h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], axis=0)
  u = d_drive + h_prev @ d_w_hh
  slope = 1 - hs * hs

  def step(dh, x):
    u_t, slope_t = x
    dh = slope_t * (u_t + dh @ w_hh)
    return dh, dh

  _, d_hs = jax.lax.scan(step, jnp.zeros_like(hs[0]), (u, slope))
  return hs, d_hs


class TanhRNN(nn.Module):
  """Single-layer tanh RNN with a per-step readout.

  Attributes:
    num_outputs: O, the output width (number of real targets or of symbols).
    hidden: H, the number of tanh units (100 in the paper).
    readout: "linear" (squared error on real targets) or "softmax" (``__call__`` returns logits).
    input_scale: sigma of the N(0, sigma^2) input-to-hidden weights (Table 4: 0.001 with many
      distractor inputs, 0.1 otherwise); may be traced. Used when ``input_init`` is None.
    input_init: initializer of ``W_xh``; None means ``gaussian(input_scale)``.
    recurrent_init: initializer of ``W_hh``, or a name of ``RECURRENT_INITS``: "sparse"
      (default, Table 4: 15 inputs per unit, then rescaled to ``spectral_radius``) or "dense".
    spectral_radius: the radius a named ``recurrent_init`` rescales ``W_hh`` to (Table 4: 1.1;
      the section 4 study sweeps it); may be traced. Ignored for an initializer.
    output_init: initializer of ``W_hy`` (N(0, 0.1^2) by default).
    output_bias: initial ``b_y``, a scalar or an ``[O]`` array (the mean of the targets); may be
      traced.
    param_dtype: parameter dtype; ``None`` means ``jnp.result_type(float)``.
  """
  num_outputs: int
  hidden: int = 100
  readout: str = "linear"
  input_scale: Any = 0.001
  input_init: Initializer | None = None
  recurrent_init: Initializer | str = "sparse"
  spectral_radius: Any = SPECTRAL_RADIUS
  output_init: Initializer = initializers.gaussian(0.1)
  output_bias: Any = 0.0
  param_dtype: Any = None

  def __post_init__(self):
    for name in ("num_outputs", "hidden"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if self.readout not in READOUTS:
      raise ValueError(f"unknown readout {self.readout!r}; valid: {list(READOUTS)}")
    if self.input_init is None:
      initializers.check_scalar("input_scale", self.input_scale)
    if isinstance(self.recurrent_init, str) and self.recurrent_init not in RECURRENT_INITS:
      raise ValueError(f"unknown recurrent_init {self.recurrent_init!r}; valid: "
                       f"{sorted(RECURRENT_INITS)} or an initializer")
    bias_shape = tuple(jnp.shape(self.output_bias))
    if bias_shape not in ((), (self.num_outputs,)):
      raise ValueError(f"output_bias must be a scalar or have shape ({self.num_outputs},), got "
                       f"shape {bias_shape}")
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    """Runs the RNN from a zero state over whole sequences.

    Args:
      inputs: ``[B, L, I]`` input sequences (time along axis 1).

    Returns:
      ``[B, L, O]`` outputs at every step: predictions (linear readout) or logits (softmax).
    """
    if inputs.ndim != 3:
      raise ValueError(f"expected inputs [B, L, I], got shape {inputs.shape}")
    dtype = jnp.result_type(float) if self.param_dtype is None else self.param_dtype
    _, _, num_inputs = inputs.shape
    input_init = (initializers.gaussian(self.input_scale) if self.input_init is None
                  else self.input_init)
    w_xh = self.param("W_xh", input_init, (num_inputs, self.hidden), dtype)
    recurrent_init = self.recurrent_init
    if isinstance(recurrent_init, str):
      recurrent_init = initializers.spectral_radius(
          self.spectral_radius, num_connections=RECURRENT_CONNECTIONS[recurrent_init])
    w_hh = self.param("W_hh", recurrent_init, (self.hidden, self.hidden), dtype)
    b_h = self.param("b_h", nn.initializers.zeros_init(), (self.hidden,), dtype)
    w_hy = self.param("W_hy", self.output_init, (self.hidden, self.num_outputs), dtype)
    b_y = self.param("b_y", initializers.constant(self.output_bias), (self.num_outputs,), dtype)

    # Time-major throughout: only the narrow [B, L, I] inputs and [L, B, O] outputs are
    # transposed. The input drive of all steps is one matmul; only h_{t-1} W_hh is sequential.
    drive = jnp.swapaxes(inputs, 0, 1) @ w_xh + b_h  # [L, B, H]
    hs = tanh_recurrence(w_hh, drive)
    self.sow("intermediates", "hidden", jnp.swapaxes(hs, 0, 1))  # [B, L, H]
    return jnp.swapaxes(hs @ w_hy + b_y, 0, 1)
