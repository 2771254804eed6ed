"""Deep autoencoders of Hinton & Salakhutdinov (2006) as set up in the paper (docs/paper.md sec. 4).

``DeepAutoencoder`` is a stack of ``nn.Dense`` layers: the encoder ``encoder_sizes[0] -> ... ->
encoder_sizes[-1]`` and the mirrored decoder back to ``encoder_sizes[0]``. Hidden units use the
``activation`` non-linearity, the code layer (last encoder layer) is linear, and the output layer
is ``logistic`` (``__call__`` returns the logits) or ``linear``.

Layer structure (for ``mominit.diagnostics``): with ``k = len(encoder_sizes) - 1`` there are
``2k`` layers, indexed ``i = 0 .. 2k-1`` in forward order. Layer ``i < k`` is the Dense submodule
``encoder_{i}``, layer ``i >= k`` is ``decoder_{i-k}``; layer ``k-1`` is the code layer, layer
``2k-1`` the output layer. Each layer sows, into the ``'intermediates'`` collection,
``preact_{i}`` (the Dense output, ``[B, fan_out]``) and ``act_{i}`` (the unit values after the
non-linearity; for a logistic output layer this is ``sigmoid(logits)``). Get them with
``model.apply(params, x, mutable=["intermediates"])``: the second result holds
``{"intermediates": {"preact_0": (array,), "act_0": (array,), ...}}``. The static per-layer facts
are the properties ``layer_names``, ``layer_sizes`` and ``layer_activations``.

``autoencoder(name, init, init_scale, activation)`` builds the CURVES, MNIST and FACES nets with
the paper's initializations (``autoencoder_from_sizes`` does the same for any layer sizes);
``init_scale`` may be a traced scalar, so a population with different scales is initialised under
one ``jax.vmap``.
"""
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mominit import initializers
from mominit.initializers import Initializer

__all__ = [
    "ACTIVATIONS", "AUTOENCODER_INITS", "AUTOENCODER_LOSSES", "AUTOENCODER_OUTPUTS",
    "AUTOENCODER_SIZES", "DeepAutoencoder", "OUTPUTS", "autoencoder", "autoencoder_from_sizes",
    "autoencoder_loss_type",
]

# Hidden-unit non-linearities (Glorot & Bengio 2010 compare these three).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softsign": jax.nn.soft_sign,
}
# Output kinds and the non-linearity whose pre-activation ``__call__`` returns.
OUTPUTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "logistic": jax.nn.sigmoid,
    "linear": lambda z: z,
}
# Every unit kind by name, as listed by ``DeepAutoencoder.layer_activations``.
_UNIT_FNS = {**ACTIVATIONS, **OUTPUTS}

# docs/paper.md section 4: encoder sizes (the decoder mirrors them) and output kind.
AUTOENCODER_SIZES: dict[str, tuple[int, ...]] = {
    "curves": (784, 400, 200, 100, 50, 25, 6),
    "mnist": (784, 1000, 500, 250, 30),
    "faces": (625, 2000, 1000, 500, 30),
}
AUTOENCODER_OUTPUTS: dict[str, str] = {
    "curves": "logistic",
    "mnist": "logistic",
    "faces": "linear",
}
# The training loss (a function name in ``mominit.losses``) that goes with each output kind.
AUTOENCODER_LOSSES: dict[str, str] = {
    "curves": "sigmoid_cross_entropy",
    "mnist": "sigmoid_cross_entropy",
    "faces": "squared_error",
}
AUTOENCODER_INITS = ("sparse", "gaussian", "glorot_standard", "glorot_normalized")

# The poorly scaled dense Gaussian baseline of docs/paper.md section 3.
_BAD_GAUSSIAN_STDDEV = 0.01
# Martens (2010) / docs/paper.md section 3: SI for tanh units mimics sigmoid units. Our reading of
# the text: the weights into tanh units x 0.25, their biases 0.5. Martens' HFDemo code
# (nnet_train_2.m) instead applies 0.5 per tanh side: x 0.5 if the layer's units are tanh and
# x 0.5 if the layer below is tanh (so 0.25 only between two tanh layers, 0.5 into the first
# tanh layer and into the linear code / output layers above a tanh layer); `tanh_si="hfdemo"`.
_TANH_SI_BIAS = 0.5
_TANH_SI_WEIGHT_FACTOR = 0.25
_HFDEMO_TANH_SIDE_FACTOR = 0.5
TANH_SI_VARIANTS = ("paper", "hfdemo")


def _check_name(name: str) -> None:
  if name not in AUTOENCODER_SIZES:
    raise ValueError(f"unknown autoencoder {name!r}; valid names: {sorted(AUTOENCODER_SIZES)}")


def _layer_activations(num_encoder_layers: int, activation: str, output: str) -> tuple[str, ...]:
  hidden = (activation,) * (num_encoder_layers - 1)
  return hidden + ("linear",) + hidden + (output,)


def _per_layer(what: str, value: Any, num_layers: int) -> tuple[Any, ...]:
  if callable(value):
    return (value,) * num_layers
  value = tuple(value)
  if len(value) != num_layers or not all(callable(v) for v in value):
    raise ValueError(f"{what} must be an initializer or a sequence of {num_layers} initializers "
                     f"(one per layer), got {len(value)} items")
  return value


class DeepAutoencoder(nn.Module):
  """Deep autoencoder with a linear code layer and a mirrored decoder.

  Attributes:
    encoder_sizes: layer widths from the input to the code, e.g. ``(784, 400, 200, 100, 50, 25,
      6)``; the decoder mirrors them back to ``encoder_sizes[0]``.
    activation: hidden non-linearity, one of ``ACTIVATIONS`` ("sigmoid", "tanh", "softsign").
    output: "logistic" (``__call__`` returns logits) or "linear".
    kernel_init: one initializer for every kernel, or a sequence of ``2k`` (one per layer in
      forward order; see the module docstring).
    bias_init: the same for the biases.
    param_dtype: parameter dtype; ``None`` means ``jnp.result_type(float)``.
  """
  encoder_sizes: Sequence[int]
  activation: str = "sigmoid"
  output: str = "logistic"
  kernel_init: Initializer | Sequence[Initializer] = initializers.sparse()
  bias_init: Initializer | Sequence[Initializer] = nn.initializers.zeros_init()
  param_dtype: Any = None

  def __post_init__(self):
    sizes = tuple(self.encoder_sizes)
    if len(sizes) < 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes):
      raise ValueError(f"encoder_sizes must be at least two positive ints, got {sizes!r}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; valid: {sorted(ACTIVATIONS)}")
    if self.output not in OUTPUTS:
      raise ValueError(f"unknown output {self.output!r}; valid: {sorted(OUTPUTS)}")
    num_layers = 2 * (len(sizes) - 1)
    _per_layer("kernel_init", self.kernel_init, num_layers)
    _per_layer("bias_init", self.bias_init, num_layers)
    super().__post_init__()

  @property
  def layer_sizes(self) -> tuple[int, ...]:
    """Widths of all ``2k + 1`` unit layers, input to output, e.g. (784, 400, ..., 6, ..., 784)."""
    sizes = tuple(self.encoder_sizes)
    return sizes + sizes[-2::-1]

  @property
  def layer_names(self) -> tuple[str, ...]:
    """Names of the ``2k`` Dense submodules in forward order."""
    k = len(self.encoder_sizes) - 1
    return tuple(f"encoder_{i}" for i in range(k)) + tuple(f"decoder_{i}" for i in range(k))

  @property
  def layer_activations(self) -> tuple[str, ...]:
    """Non-linearity of each layer: ``activation``, "linear" at the code, then ``output``."""
    return _layer_activations(len(self.encoder_sizes) - 1, self.activation, self.output)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Reconstructs ``x``.

    Args:
      x: inputs ``[B, D]`` with ``D = encoder_sizes[0]`` (pixels, e.g. in [0, 1]).

    Returns:
      ``[B, D]``: logits for a logistic output (the reconstruction is ``sigmoid`` of them), the
      reconstruction itself for a linear output.
    """
    if x.ndim != 2 or x.shape[-1] != self.encoder_sizes[0]:
      raise ValueError(f"expected inputs [B, {self.encoder_sizes[0]}], got shape {x.shape}")
    param_dtype = jnp.result_type(float) if self.param_dtype is None else self.param_dtype
    num_layers = 2 * (len(self.encoder_sizes) - 1)
    kernel_inits = _per_layer("kernel_init", self.kernel_init, num_layers)
    bias_inits = _per_layer("bias_init", self.bias_init, num_layers)
    h = x
    for i, (name, width, act) in enumerate(
        zip(self.layer_names, self.layer_sizes[1:], self.layer_activations)):
      z = nn.Dense(width, kernel_init=kernel_inits[i], bias_init=bias_inits[i],
                   param_dtype=param_dtype, name=name)(h)
      h = _UNIT_FNS[act](z)
      self.sow("intermediates", f"preact_{i}", z)
      self.sow("intermediates", f"act_{i}", h)
    return z  # Output pre-activation: logits (logistic) or the reconstruction (linear).


def autoencoder_loss_type(name: str) -> str:
  """The training loss of autoencoder ``name``: a function name in ``mominit.losses``.

  Args:
    name: "curves", "mnist" or "faces".

  Returns:
    "sigmoid_cross_entropy" (logistic output; the model returns logits) or "squared_error"
    (linear output).
  """
  _check_name(name)
  return AUTOENCODER_LOSSES[name]


def layer_inits(init: str, layer_activations: Sequence[str], init_scale: Any = 1.0, *,
                num_connections: int = 15,
                tanh_si: str = "paper") -> tuple[tuple[Initializer, ...], tuple[Initializer, ...]]:
  """Kernel and bias initializers, one per dense layer, for one of the paper's initializations.

  The one rule behind every net of the paper's initializations (the autoencoders here, the
  Glorot & Bengio study's MLP in experiments/glorot.py); see ``autoencoder_from_sizes`` for the
  initializations and the tanh conversion of SI (docs/paper.md section 3).

  Args:
    init: one of ``AUTOENCODER_INITS``.
    layer_activations: the units each layer feeds, in forward order ("tanh" layers get the SI
      conversion; the others, including "linear" and the output kinds, plain SI).
    init_scale: weight multiplier (> 0); may be a traced scalar.
    num_connections: SI connections per unit (Python int).
    tanh_si: "paper" or "hfdemo".

  Returns:
    ``(kernel_inits, bias_inits)``, tuples of ``len(layer_activations)`` initializers.

  Raises:
    ValueError: unknown ``init`` or ``tanh_si``.
  """
  if init not in AUTOENCODER_INITS:
    raise ValueError(f"unknown init {init!r}; valid: {list(AUTOENCODER_INITS)}")
  if tanh_si not in TANH_SI_VARIANTS:
    raise ValueError(f"unknown tanh_si {tanh_si!r}; valid: {list(TANH_SI_VARIANTS)}")
  layer_activations = tuple(layer_activations)
  zeros = nn.initializers.zeros_init()
  kernel_inits, bias_inits = [], []
  for i, act in enumerate(layer_activations):
    if init == "sparse":
      tanh_units = act == "tanh"
      if tanh_si == "hfdemo":
        below_tanh = i > 0 and layer_activations[i - 1] == "tanh"
        factor = _HFDEMO_TANH_SIDE_FACTOR ** (int(tanh_units) + int(below_tanh))
      else:
        factor = _TANH_SI_WEIGHT_FACTOR if tanh_units else 1.0
      kernel_inits.append(initializers.sparse(num_connections, factor * init_scale))
      bias_inits.append(initializers.constant(_TANH_SI_BIAS) if tanh_units else zeros)
    else:
      if init == "gaussian":
        kernel = initializers.gaussian(_BAD_GAUSSIAN_STDDEV * init_scale)
      elif init == "glorot_standard":
        kernel = initializers.scaled(initializers.glorot_standard(), init_scale)
      else:
        kernel = initializers.scaled(initializers.glorot_normalized(), init_scale)
      kernel_inits.append(kernel)
      bias_inits.append(zeros)
  return tuple(kernel_inits), tuple(bias_inits)


def autoencoder(name: str, init: str = "sparse", init_scale: Any = 1.0,
                activation: str = "sigmoid", *, num_connections: int = 15,
                param_dtype: Any = None) -> DeepAutoencoder:
  """Builds the paper's CURVES, MNIST or FACES autoencoder (docs/paper.md section 4).

  Same as ``autoencoder_from_sizes(AUTOENCODER_SIZES[name], AUTOENCODER_OUTPUTS[name], ...)``;
  see there for the initializations.

  Args:
    name: "curves", "mnist" or "faces".
    init: one of ``AUTOENCODER_INITS``.
    init_scale: weight multiplier (> 0); may be a traced scalar (build the module inside the
      vmapped function).
    activation: hidden non-linearity, one of ``ACTIVATIONS``.
    num_connections: SI connections per unit (Python int).
    param_dtype: parameter dtype; ``None`` means ``jnp.result_type(float)``.

  Returns:
    A ``DeepAutoencoder``; its ``output`` attribute is "logistic" or "linear"
    (see also ``autoencoder_loss_type``).

  Raises:
    ValueError: unknown ``name``, ``init`` or ``activation``, or a bad Python ``init_scale``.
  """
  _check_name(name)
  return autoencoder_from_sizes(
      AUTOENCODER_SIZES[name], AUTOENCODER_OUTPUTS[name], init=init, init_scale=init_scale,
      activation=activation, num_connections=num_connections, param_dtype=param_dtype)


def autoencoder_from_sizes(encoder_sizes: Sequence[int], output: str = "logistic",
                           init: str = "sparse", init_scale: Any = 1.0,
                           activation: str = "sigmoid", *, num_connections: int = 15,
                           tanh_si: str = "paper",
                           param_dtype: Any = None) -> DeepAutoencoder:
  """Builds a ``DeepAutoencoder`` of any sizes with one of the paper's initializations.

  Initializations (biases 0 unless noted):
    - "sparse": SI, ``num_connections`` N(0, init_scale^2) incoming weights per unit. For tanh
      hidden units the paper's conversion to mimic sigmoid units applies to the layers feeding
      tanh units: weights x 0.25 and biases 0.5 (the linear code layer and the output layer keep
      plain SI). ``tanh_si="hfdemo"``: Martens' HFDemo code instead, x 0.5 per tanh side (the
      layer's units, the layer below), biases 0.5 for tanh units.
    - "gaussian": the poorly scaled dense baseline N(0, (0.01 init_scale)^2).
    - "glorot_standard", "glorot_normalized": Glorot & Bengio uniform, times ``init_scale``.

  Args:
    encoder_sizes: widths from the input to the code (the decoder mirrors them).
    output: "logistic" or "linear".
    init: one of ``AUTOENCODER_INITS``.
    init_scale: weight multiplier (> 0); may be a traced scalar.
    activation: hidden non-linearity, one of ``ACTIVATIONS``.
    num_connections: SI connections per unit (Python int).
    tanh_si: "paper" (our reading of the text) or "hfdemo" (Martens' code), see above.
    param_dtype: parameter dtype; ``None`` means ``jnp.result_type(float)``.

  Returns:
    A ``DeepAutoencoder`` with one kernel and one bias initializer per layer.

  Raises:
    ValueError: unknown ``init``, ``activation`` or ``output``, bad sizes, or a bad Python
      ``init_scale``.
  """
  if init not in AUTOENCODER_INITS:
    raise ValueError(f"unknown init {init!r}; valid: {list(AUTOENCODER_INITS)}")
  if activation not in ACTIVATIONS:
    raise ValueError(f"unknown activation {activation!r}; valid: {sorted(ACTIVATIONS)}")
  if output not in OUTPUTS:
    raise ValueError(f"unknown output {output!r}; valid: {sorted(OUTPUTS)}")
  if tanh_si not in TANH_SI_VARIANTS:
    raise ValueError(f"unknown tanh_si {tanh_si!r}; valid: {list(TANH_SI_VARIANTS)}")
  initializers.check_scalar("init_scale", init_scale)
  layer_acts = _layer_activations(max(len(tuple(encoder_sizes)) - 1, 1), activation, output)
  kernel_inits, bias_inits = layer_inits(init, layer_acts, init_scale,
                                         num_connections=num_connections, tanh_si=tanh_si)
  return DeepAutoencoder(encoder_sizes=tuple(encoder_sizes), activation=activation,
                         output=output, kernel_init=tuple(kernel_inits),
                         bias_init=tuple(bias_inits), param_dtype=param_dtype)
