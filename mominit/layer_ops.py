"""The traced per-layer computations behind ``mominit.diagnostics`` (Glorot & Bengio 2010).

For a chain of dense layers ``z_i = a_{i-1} W_i + b_i``, ``a_i = f_i(z_i)``: the forward pass, the
per-case back-propagated gradients ``delta_i = d loss_b / d z_i`` (through zero perturbations
added to every ``z_i``), percentiles by an integer-key sort, saturation fractions, and the
singular values of the layer Jacobians ``diag(f_i'(z_i)) W_i^T``. A ``spec`` is a tuple of
layers with ``.path`` (keys to the ``{"kernel", "bias"}`` dict in the Flax parameters) and
``.activation`` (a name in ``ACTIVATIONS``). The public, validated entry points are
``mominit.diagnostics.layer_stats`` and ``layer_values``.
"""
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softsign": jax.nn.soft_sign,
    "relu": jax.nn.relu,
    "linear": lambda z: z,
}

# (lower, upper) asymptotes of the bounded activations; the others never count as saturated.
SATURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}


def _unwrap(params: Any) -> Any:
  # Accept both the variables dict {"params": ...} that model.init returns and its "params" entry.
  if isinstance(params, Mapping) and "params" in params and len(params) == 1:
    return params["params"]
  return params


def _dense(params: Any, path: tuple[str, ...]) -> tuple[jax.Array, jax.Array]:
  node = params
  for key in path:
    if not isinstance(node, Mapping) or key not in node:
      raise ValueError(f"layer path {path} not found in the parameters (failed at {key!r}; "
                       f"available: {list(node) if isinstance(node, Mapping) else type(node)})")
    node = node[key]
  if not isinstance(node, Mapping) or "kernel" not in node or "bias" not in node:
    raise ValueError(f"parameters at {path} are not a dense layer with 'kernel' and 'bias'")
  return node["kernel"], node["bias"]


def _inputs(batch: Any) -> jax.Array:
  if isinstance(batch, Mapping):
    if "inputs" not in batch:
      raise ValueError(f"a batch dict needs an 'inputs' entry, has {list(batch)}")
    return batch["inputs"]
  if isinstance(batch, (tuple, list)):
    return batch[0]
  return batch


def forward_layers(
    dense: Sequence[tuple[jax.Array, jax.Array]],
    activations: Sequence[str],
    x: jax.Array,
    perturbations: Sequence[jax.Array] | None = None,
) -> tuple[list[jax.Array], list[jax.Array]]:
  """Pure forward pass of a chain of dense layers.

  Args:
    dense: per layer ``(kernel [n_in, n_out], bias [n_out])``.
    activations: per layer, a name in ``ACTIVATIONS``.
    x: inputs [B, n_0].
    perturbations: optional per-layer arrays [B, n_i] added to the pre-activations (zeros when
      differentiating with respect to them).

  Returns:
    ``(preacts, acts)``: lists of [B, n_i] arrays, ``acts[-1]`` being the net's output.
  """
  preacts, acts = [], []
  a = x
  for i, ((w, b), name) in enumerate(zip(dense, activations)):
    z = a @ w + b
    if perturbations is not None:
      z = z + perturbations[i]
    a = ACTIVATIONS[name](z)
    preacts.append(z)
    acts.append(a)
  return preacts, acts


def _values(params, batch, loss_fn, spec):
  """Forward pass, per-case deltas and weight gradients (traced helper)."""
  params = _unwrap(params)
  dense = [_dense(params, layer.path) for layer in spec]
  names = [layer.activation for layer in spec]
  x = _inputs(batch)
  zeros = [jnp.zeros((x.shape[0], w.shape[1]), jnp.result_type(w, x)) for w, _ in dense]

  def loss(dense, perturbations):
    preacts, acts = forward_layers(dense, names, x, perturbations)
    return loss_fn(acts[-1], batch), (preacts, acts)

  (value, (preacts, acts)), (dense_grads, delta_sums) = jax.value_and_grad(
      loss, argnums=(0, 1), has_aux=True)(dense, zeros)
  # loss_fn is a mean over the B cases, so B * d loss / d z_i[b] is case b's own gradient.
  deltas = [x.shape[0] * d for d in delta_sums]
  return dict(
      loss=value, inputs=x, dense=dense, preacts=preacts, acts=acts, deltas=deltas,
      kernel_grads=[g[0] for g in dense_grads], bias_grads=[g[1] for g in dense_grads])


# The model itself is not an argument of the jitted functions: the hashable spec holds all the
# pass needs, so a model rebuilt per call (new initializer closures) does not re-trace.
@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _layer_values_jit(params, batch, loss_fn, spec, k):
  v = _values(params, batch, loss_fn, spec)
  out = {key: v[key] for key in ("loss", "preacts", "acts", "deltas", "kernel_grads",
                                 "bias_grads")}
  if k:
    out["jacobian_sv"] = _jacobians(v, spec, k)
  return out


def _flip(bits: jax.Array) -> jax.Array:
  """Maps float bit patterns to integers ordered like the floats, and back (an involution)."""
  # Negative floats order in reverse of their bit patterns: flip all bits but the sign.
  return jnp.where(bits < 0, bits ^ jnp.array(jnp.iinfo(bits.dtype).max, bits.dtype), bits)


def _percentiles(a: jax.Array, q: tuple[float, ...]) -> jax.Array:
  """``np.percentile(a, q)`` (linear interpolation) over all entries; q static. Returns [P].

  Sorts integer keys: XLA's CPU sort of integers is several times faster than of floats (whose
  comparator must order NaNs), and the sort dominates the cost of the statistics.
  """
  flat = a.ravel()
  itype = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[flat.dtype.itemsize]
  keys = jax.lax.sort(_flip(jax.lax.bitcast_convert_type(flat, itype)), is_stable=False)
  ordered = jax.lax.bitcast_convert_type(_flip(keys), flat.dtype)
  pos = np.asarray(q, np.float64) / 100.0 * (flat.size - 1)
  lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
  below, above = ordered[lo], ordered[hi]
  out = below + jnp.asarray(pos - lo, flat.dtype) * (above - below)
  return jnp.where(jnp.any(jnp.isnan(flat)), jnp.nan, out)


def _saturation(a: jax.Array, activation: str, tol: Any) -> jax.Array:
  if activation not in SATURATION_BOUNDS:
    return jnp.zeros((), a.dtype)
  lo, hi = SATURATION_BOUNDS[activation]
  saturated = (a - lo <= tol) | (hi - a <= tol)
  return jnp.mean(saturated.astype(a.dtype))


def _jacobian_sv(w: jax.Array, z: jax.Array, activation: str) -> jax.Array:
  """Mean over cases of the sorted singular values of diag(f'(z_b)) W^T; z: [K, n_out]."""
  f = ACTIVATIONS[activation]
  # f is elementwise, so its JVP with a ones tangent is f'(z).
  _, slope = jax.jvp(f, (z,), (jnp.ones_like(z),))
  jac = slope[:, :, None] * w.T[None]  # [K, n_out, n_in]
  return jnp.mean(jnp.linalg.svd(jac, compute_uv=False), axis=0)


def _jacobians(v, spec, k):
  if k > v["inputs"].shape[0]:
    raise ValueError(f"jacobian_examples={k} exceeds the batch size {v['inputs'].shape[0]}")
  return tuple(_jacobian_sv(w, z[:k], layer.activation)
               for (w, _), z, layer in zip(v["dense"], v["preacts"], spec))


@functools.partial(jax.jit, static_argnums=(2, 4, 5, 6))
def _layer_stats_jit(params, batch, loss_fn, saturation_tol, spec, percentiles, k):
  v = _values(params, batch, loss_fn, spec)
  stats = dict(
      loss=v["loss"],
      act_mean=jnp.stack([jnp.mean(a) for a in v["acts"]]),
      act_std=jnp.stack([jnp.std(a) for a in v["acts"]]),
      act_percentiles=jnp.stack([_percentiles(a, percentiles) for a in v["acts"]]),
      saturation=jnp.stack([_saturation(a, layer.activation, saturation_tol)
                            for a, layer in zip(v["acts"], spec)]),
      preact_std=jnp.stack([jnp.std(z) for z in v["preacts"]]),
      backprop_var=jnp.stack([jnp.var(d) for d in v["deltas"]]),
      weight_grad_norm=jnp.stack([jnp.linalg.norm(g) for g in v["kernel_grads"]]),
      weight_grad_var=jnp.stack([jnp.var(g) for g in v["kernel_grads"]]),
  )
  if k:
    stats["jacobian_sv"] = _jacobians(v, spec, k)
  return stats
