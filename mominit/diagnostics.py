"""Glorot & Bengio (2010) layer diagnostics: activations, back-propagated gradients, Jacobians.

The statistics of docs/paper.md section 7 for a feed-forward net made of dense layers, each
followed by an elementwise activation:

    z_i = a_{i-1} W_i + b_i      (pre-activation, [B, n_i]),   a_0 = x
    a_i = f_i(z_i)               (activation, [B, n_i])

Per layer ``i`` (hidden layers and the output layer, in order):

- activation mean, standard deviation and percentiles (2, 16, 50, 84, 98 by default, as the
  paper's figures) over all cases and units of ``a_i``;
- saturation fraction: entries of ``a_i`` within ``saturation_tol`` (0.01) of a bound of the
  activation (0 or 1 for sigmoid, -1 or 1 for tanh and softsign; 0 for unbounded ones);
- the variance of the back-propagated gradient ``delta_i = d loss_b / d z_i`` of the per-case
  loss, over cases and units;
- Frobenius norm and variance of the weight gradient ``d loss / d W_i``;
- the singular values of the layer Jacobian ``d a_i / d a_{i-1} = diag(f_i'(z_i)) W_i^T``
  ([n_i, n_{i-1}] for one case), sorted descending and averaged over the first few cases.

Gradients with respect to pre-activations use the standard trick: a zero "perturbation" array is
added to every ``z_i`` and the loss is differentiated with respect to those arrays.

The model is described by a ``spec``, a tuple of ``Layer(path, activation)`` naming each dense
sub-tree (holding ``kernel`` [n_in, n_out] and ``bias`` [n_out]) of the Flax parameters in the
order they are applied. ``layer_spec(model)`` derives it for ``MLP`` (below) and for
``mominit.models.DeepAutoencoder``; any other layered model can pass ``spec=`` explicitly. The
diagnostics recompute the forward pass from the parameters with the spec, so ``model.apply`` is
never called (tests check that both agree).

``layer_stats`` is one jit-compiled function returning a pytree; it is vmappable over a
population of parameters (``jax.vmap(lambda p: layer_stats(model, p, batch, loss_fn))(params)``).
It is not part of any training step: a training loop calls it every N steps between compiled
chunks, or never (the default), and its compiled step does not change. ``layer_values`` returns
the raw per-layer arrays behind the statistics (for histograms).
"""
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

# The traced computations live in mominit.layer_ops; the names below stay importable here.
from mominit.layer_ops import (  # pylint: disable=unused-import
    ACTIVATIONS, SATURATION_BOUNDS, _dense, _inputs, _layer_stats_jit, _layer_values_jit,
    _percentiles, _unwrap, forward_layers)

__all__ = [
    "ACTIVATIONS", "PERCENTILES", "SATURATION_BOUNDS", "Layer", "MLP", "forward_layers",
    "layer_spec", "layer_stats", "layer_values",
]

# Percentiles of the paper's activation figures (median, +-1 and +-2 standard deviations' worth).
PERCENTILES = (2.0, 16.0, 50.0, 84.0, 98.0)


class Layer(NamedTuple):
  """One dense layer of a feed-forward net.

  Attributes:
    path: keys leading from the Flax ``params`` dict to the layer's ``{"kernel", "bias"}`` dict,
      e.g. ``("dense_0",)`` or ``("encoder", "Dense_1")``.
    activation: name in ``ACTIVATIONS`` of the elementwise function applied to its output
      ("linear" for logits).
  """
  path: tuple[str, ...]
  activation: str


def _check_activation(name: Any, what: str) -> None:
  if name not in ACTIVATIONS:
    raise ValueError(f"{what} must be one of {sorted(ACTIVATIONS)}, got {name!r}")


class MLP(nn.Module):
  """Fully connected net: ``len(sizes) - 1`` dense layers with an activation after each.

  Attributes:
    sizes: (input, hidden_1, ..., hidden_k, output) layer widths, e.g. (784, 1000, ..., 10).
    activation: hidden activation, a name in ``ACTIVATIONS``.
    output: activation of the last layer; "linear" returns logits (softmax/sigmoid losses).
    kernel_init: initializer of every kernel [n_in, n_out], or a sequence of one per layer.
    bias_init: initializer of every bias [n_out], or a sequence of one per layer.
  """
  sizes: Sequence[int]
  activation: str = "tanh"
  output: str = "linear"
  kernel_init: Callable[..., jax.Array] | Sequence[Callable[..., jax.Array]] = (
      nn.initializers.lecun_normal())
  bias_init: Callable[..., jax.Array] | Sequence[Callable[..., jax.Array]] = (
      nn.initializers.zeros)

  def layer_spec(self) -> tuple[Layer, ...]:
    """The ``Layer`` tuple of this net (see ``layer_spec``); validates the attributes."""
    sizes = tuple(self.sizes)
    if len(sizes) < 2 or any(
        isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
      raise ValueError(f"MLP sizes must be >= 2 positive ints (input, ..., output), got {sizes}")
    _check_activation(self.activation, "MLP activation")
    _check_activation(self.output, "MLP output")
    n = len(sizes) - 1
    for what, init in (("kernel_init", self.kernel_init), ("bias_init", self.bias_init)):
      if not callable(init) and (len(init) != n or not all(callable(f) for f in init)):
        raise ValueError(f"MLP {what} must be an initializer or {n} of them (one per layer)")
    return tuple(Layer((f"dense_{i}",), self.activation if i < n - 1 else self.output)
                 for i in range(n))

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the net.

    Args:
      x: inputs [B, sizes[0]].

    Returns:
      Outputs [B, sizes[-1]] (logits when ``output`` is "linear").
    """
    spec = self.layer_spec()
    if x.shape[-1] != self.sizes[0]:
      raise ValueError(f"MLP expects inputs [B, {self.sizes[0]}], got {x.shape}")
    per_layer = lambda f: (f,) * len(spec) if callable(f) else tuple(f)
    for layer, width, kernel_init, bias_init in zip(
        spec, self.sizes[1:], per_layer(self.kernel_init), per_layer(self.bias_init)):
      x = nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init, name=layer.path[0])(x)
      x = ACTIVATIONS[layer.activation](x)
    return x


def layer_spec(model: nn.Module) -> tuple[Layer, ...]:
  """The dense layers of ``model`` in the order they are applied.

  Knows ``MLP`` (and any module with a ``layer_spec()`` method) and
  ``mominit.models.DeepAutoencoder``.

  Args:
    model: a Flax Linen module.

  Returns:
    Tuple of ``Layer(path, activation)``.

  Raises:
    ValueError: the model's layer structure is unknown (pass ``spec=`` to the statistics).
  """
  if hasattr(model, "layer_spec") and callable(model.layer_spec):
    return tuple(model.layer_spec())
  if type(model).__name__ == "DeepAutoencoder":
    return _autoencoder_spec(model)
  raise ValueError(f"cannot derive the dense layers of {type(model).__name__}; pass "
                   "spec=(Layer(path, activation), ...) listing them in order")


def _autoencoder_spec(model: nn.Module) -> tuple[Layer, ...]:
  """Spec of ``mominit.models.DeepAutoencoder`` from its ``layer_names``/``layer_activations``.

  ``__call__`` returns the output layer's pre-activation (logits for a logistic output), so the
  last layer is "linear" here: the loss receives exactly what ``model.apply`` returns.
  """
  names = tuple(model.layer_names)
  acts = tuple(model.layer_activations)[:-1] + ("linear",)
  return tuple(Layer((n,), a) for n, a in zip(names, acts))


def _check_batch(params, batch, spec):
  """The inputs must be [B, n_0], n_0 the first layer's input width (checked on the shapes, so
  before tracing; also under vmap, which strips the member axis)."""
  x = _inputs(batch)
  width = np.shape(_dense(_unwrap(params), spec[0].path)[0])[0]
  if np.ndim(x) != 2 or np.shape(x)[1] != width:
    raise ValueError(f"batch inputs must be [B, {width}] (the first layer's input width), got "
                     f"shape {np.shape(x)}")


def _validate(model, spec, percentiles, jacobian_examples, loss_fn, saturation_tol=0.01):
  spec = layer_spec(model) if spec is None else tuple(Layer(tuple(p), a) for p, a in spec)
  if not spec:
    raise ValueError("spec must list at least one layer")
  for layer in spec:
    _check_activation(layer.activation, f"activation of layer {layer.path}")
  if not callable(loss_fn):
    raise ValueError(f"loss_fn must be callable as loss_fn(outputs, batch), got {loss_fn!r}")
  percentiles = tuple(float(q) for q in percentiles)
  if any(not 0.0 <= q <= 100.0 for q in percentiles):
    raise ValueError(f"percentiles must lie in [0, 100], got {percentiles}")
  if isinstance(jacobian_examples, bool) or not isinstance(
      jacobian_examples, (int, np.integer)) or jacobian_examples < 0:
    raise ValueError(f"jacobian_examples must be a Python int >= 0, got {jacobian_examples!r}")
  if not isinstance(saturation_tol, jax.core.Tracer) and not (
      np.ndim(saturation_tol) == 0 and 0.0 <= float(saturation_tol) < np.inf):
    raise ValueError(f"saturation_tol must be a finite scalar >= 0, got {saturation_tol!r}")
  return spec, percentiles, int(jacobian_examples)


def layer_values(model: nn.Module, params: Any, batch: Any,
                 loss_fn: Callable[[jax.Array, Any], jax.Array], *,
                 jacobian_examples: int = 0,
                 spec: Sequence[Layer] | None = None) -> dict[str, Any]:
  """Raw per-layer arrays (for histograms): the quantities ``layer_stats`` summarizes.

  Jit-compiled and vmappable over ``params`` like ``layer_stats``.

  Args:
    model: Flax module whose dense layers ``layer_spec`` knows (or any, with ``spec``).
    params: its parameters, ``{"params": ...}`` or the inner dict.
    batch: an array of inputs [B, D], a tuple ``(inputs, ...)`` or a dict with "inputs".
    loss_fn: ``loss_fn(outputs [B, n_L], batch) -> scalar``, a MEAN over the B cases.
    jacobian_examples: K > 0 adds "jacobian_sv" as in ``layer_stats``.
    spec: optional explicit ``Layer`` tuple.

  Returns:
    Dict with "loss" (scalar), and per-layer lists "preacts", "acts", "deltas" (per-case
    d loss_b / d z_i, all [B, n_i]), "kernel_grads" ([n_in, n_out], of the batch loss) and
    "bias_grads" ([n_out]); with K > 0 also "jacobian_sv" (see ``layer_stats``).
  """
  spec, _, k = _validate(model, spec, PERCENTILES, jacobian_examples, loss_fn)
  _check_batch(params, batch, spec)
  return _layer_values_jit(params, batch, loss_fn, spec, k)


def layer_stats(model: nn.Module, params: Any, batch: Any,
                loss_fn: Callable[[jax.Array, Any], jax.Array], *,
                percentiles: Sequence[float] = PERCENTILES,
                jacobian_examples: int = 0,
                saturation_tol: Any = 0.01,
                spec: Sequence[Layer] | None = None) -> dict[str, Any]:
  """Glorot & Bengio layer statistics of ``model`` at ``params`` on ``batch``; jit-compiled.

  Vmappable over ``params`` (a population), ``batch`` and ``saturation_tol`` (which may be a
  traced scalar). Nothing here touches a training step: call it between compiled training
  chunks every N steps, e.g.

      stats = jax.vmap(lambda p: layer_stats(model, p, batch, loss_fn))(population_params)

  or not at all. Cost without Jacobians: about one forward/backward pass on ``batch`` plus a
  sort of each layer's activations. The Jacobian SVDs cost O(K n^3) per layer and dominate for
  wide layers (K = 4, n = 1000: seconds on a CPU), hence ``jacobian_examples=0`` by default.

  Args:
    model: Flax module whose dense layers ``layer_spec`` knows (``MLP``, ``DeepAutoencoder``),
      or any module together with ``spec``. Only its layer structure is used, so a model rebuilt
      on every call does not re-trace.
    params: its parameters, ``{"params": ...}`` or the inner dict.
    batch: an array of inputs [B, D], a tuple ``(inputs, ...)`` or a dict with "inputs".
    loss_fn: ``loss_fn(outputs [B, n_L], batch) -> scalar``, a MEAN over the B cases (so that
      B times the batch gradient is each case's own gradient). A static argument: pass the same
      function object every time (a fresh lambda per call re-traces).
    percentiles: Python floats in [0, 100] (linear interpolation, as ``np.percentile``).
    jacobian_examples: K, number of leading cases whose Jacobian spectra are averaged; 0 (the
      default) skips them. Must be <= B.
    saturation_tol: distance (activation units) to an asymptote counted as saturated.
    spec: optional explicit ``Layer`` tuple (overrides ``layer_spec(model)``).

  Returns:
    Dict (a pytree), with L the number of layers and P of percentiles:
      "loss": scalar, the batch loss;
      "act_mean", "act_std": [L], over cases and units of a_i;
      "act_percentiles": [L, P];
      "saturation": [L], fraction of entries of a_i within saturation_tol of an asymptote
        (0 for unbounded activations);
      "preact_std": [L], standard deviation of z_i;
      "backprop_var": [L], variance of the per-case gradients d loss_b / d z_i;
      "weight_grad_norm", "weight_grad_var": [L], Frobenius norm and entry variance of
        d loss / d W_i;
      "jacobian_sv": tuple of L arrays [min(n_{i-1}, n_i)], the singular values of
        d a_i / d a_{i-1}, sorted descending, averaged over the first K cases (absent if K = 0).

  Raises:
    ValueError: unknown model layout or activation, bad percentiles, jacobian_examples or
      Python saturation_tol, or (at trace time) K larger than the batch.
  """
  spec, percentiles, k = _validate(model, spec, percentiles, jacobian_examples, loss_fn,
                                  saturation_tol)
  _check_batch(params, batch, spec)
  return _layer_stats_jit(params, batch, loss_fn, saturation_tol, spec, percentiles, k)
