"""The curvature HF uses: losses and their output Hessians, the objective, Gauss-Newton-vector
products and the empirical Fisher diagonal of Martens' preconditioner (see `mominit.hf`)."""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from mominit.hf._common import ApplyFn, Array, PyTree, _check_int, _total, _unpack

LOSSES = ("sigmoid_cross_entropy", "squared_error", "softmax_cross_entropy")


def _check_loss(loss):
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; valid losses: {', '.join(LOSSES)}")



# ---------------------------------------------------------------------------------------------
# Losses and their output Hessians.


def per_position_loss(loss: str, outputs: Array, targets: Array) -> Array:
  """Loss of every position, summed over the output axis.

  Args:
    loss: one of `LOSSES`. "squared_error": sum_o (z - y)^2 (no 1/2), linear outputs z;
      "sigmoid_cross_entropy": z are logits of logistic outputs, targets in [0, 1];
      "softmax_cross_entropy": z are logits of a softmax, targets are probabilities (one-hot).
    outputs: [B, ..., O] model outputs (logits for the cross-entropies).
    targets: [B, ..., O].

  Returns:
    [B, ...] losses (nats or squared units).
  """
  _check_loss(loss)
  if loss == "squared_error":
    return jnp.sum(jnp.square(outputs - targets), axis=-1)
  if loss == "sigmoid_cross_entropy":
    # -y log s(z) - (1 - y) log(1 - s(z)) = softplus(z) - y z, stable for large |z|.
    return jnp.sum(jnp.logaddexp(0., outputs) - targets * outputs, axis=-1)
  return -jnp.sum(targets * jax.nn.log_softmax(outputs, axis=-1), axis=-1)


def output_hessian_vp(loss: str, outputs: Array, targets: Array, u: Array) -> Array:
  """Hessian of `per_position_loss` w.r.t. the outputs, times u, per position (closed form).

  Args:
    loss: one of `LOSSES`.
    outputs: [B, ..., O] outputs at which the Hessian is taken.
    targets: [B, ..., O] (only the softmax Hessian uses them, through the target mass sum_o y_o).
    u: [B, ..., O] vectors, one per position.

  Returns:
    [B, ..., O]: 2 u (squared error); s (1 - s) u (logistic, s = sigmoid(z));
    t (p u - p (p . u)) with p = softmax(z), t = sum_o y_o (softmax).
  """
  _check_loss(loss)
  if loss == "squared_error":
    return 2. * u
  if loss == "sigmoid_cross_entropy":
    s = jax.nn.sigmoid(outputs)
    return s * (1. - s) * u
  p = jax.nn.softmax(outputs, axis=-1)
  mass = jnp.sum(targets, axis=-1, keepdims=True)
  return mass * (p * u - p * jnp.sum(p * u, axis=-1, keepdims=True))


def objective(apply_fn: ApplyFn, loss: str, params: PyTree, batch) -> Array:
  """The objective HF minimises: per-position loss weighted by the mask, mean over positions.

  Args:
    apply_fn: `apply_fn(params, inputs [B, ...]) -> outputs [B, ..., O]`.
    loss: one of `LOSSES`.
    params: parameter pytree.
    batch: (inputs, targets [B, ..., O]) or (inputs, targets, mask [B, ...]); without a mask the
      mean is over every position, i.e. over cases for [B, O] outputs.

  Returns:
    Scalar: sum_pos mask * loss / sum_pos mask (0 for an all-zero mask).
  """
  inputs, targets, weights = _unpack(batch)
  outputs = apply_fn(params, inputs)
  return jnp.sum(weights * per_position_loss(loss, outputs, targets)) / _total(weights)



def gauss_newton_matvec(apply_fn: ApplyFn, loss: str, params: PyTree,
                        batch) -> Callable[[PyTree], PyTree]:
  """Builds v -> G v, the Gauss-Newton matrix of `objective` on `batch` times v.

  G = J^T H J / sum(mask), J the Jacobian of all outputs w.r.t. the parameters and H the
  block-diagonal (per position, weighted by the mask) Hessian of `per_position_loss` w.r.t. the
  outputs. The forward pass is done once here (`jax.linearize`); each product then costs one
  forward-mode pass and one transposed pass.

  Args:
    apply_fn: `apply_fn(params, inputs) -> outputs [B, ..., O]`.
    loss: one of `LOSSES` (must match the model's output nonlinearity: logits for the
      cross-entropies, linear outputs for the squared error).
    params: parameter pytree (or a flat vector, if apply_fn takes one).
    batch: the curvature minibatch, (inputs, targets) or (inputs, targets, mask).

  Returns:
    A function mapping a pytree like `params` to G v (same structure).
  """
  _check_loss(loss)
  inputs, targets, weights = _unpack(batch)
  outputs, jvp_fn = jax.linearize(lambda p: apply_fn(p, inputs), params)
  vjp_fn = jax.linear_transpose(jvp_fn, params)
  scale = (weights / _total(weights))[..., None]

  def matvec(v):
    ju = jvp_fn(v)
    return vjp_fn(scale * output_hessian_vp(loss, outputs, targets, ju))[0]

  return matvec


def empirical_fisher_diagonal(apply_fn: ApplyFn, loss: str, params: PyTree, batch,
                              chunk_size: int = 32) -> PyTree:
  """Mean over cases of the squared per-case gradients (Martens' preconditioner statistic).

  Writes the objective as f = (1/B) sum_i l_i with l_i = B sum_{pos in case i} mask * loss /
  sum(mask) (so l_i is case i's loss when there is no mask) and returns (1/B) sum_i (grad l_i)^2,
  elementwise: the empirical Fisher diagonal, in the units of G.

  When `apply_fn` is a stack of distinct Flax `nn.Dense` layers, each applied once to [B, in]
  inputs (the autoencoders), the per-case gradient of a kernel is the outer product a_i d_i^T of
  the layer's input and output gradient, so sum_i (a_i d_i^T)^2 = (a^2)^T (d^2): one matmul per
  layer instead of B materialised gradients (130x faster for the CURVES net on a CPU; see
  `dense_fisher_diagonal`). Anything else (the RNN's shared weights over time) takes the generic
  path below, per-case gradients in chunks.

  Args:
    apply_fn: `apply_fn(params, inputs) -> outputs`; it must accept a batch of one case.
    loss: one of `LOSSES`.
    params: parameter pytree.
    batch: (inputs, targets) or (inputs, targets, mask); B cases.
    chunk_size: cases whose gradients are materialised at once (memory: chunk_size x params).

  Returns:
    A pytree like `params` (loss units / param^2).
  """
  _check_loss(loss)
  _check_int("chunk_size", chunk_size, 1)
  fast = dense_fisher_diagonal(apply_fn, loss, params, batch)
  if fast is not None:
    return fast
  inputs, targets, weights = _unpack(batch)
  num_cases = inputs.shape[0]
  total = _total(weights)
  chunk = min(chunk_size, num_cases)
  pad = (-num_cases) % chunk

  def padded(a):  # zero-weight padding cases contribute zero gradients
    return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(
        (-1, chunk) + a.shape[1:])

  def case_loss(p, x, y, w):
    out = apply_fn(p, x[None])[0]
    return num_cases * jnp.sum(w * per_position_loss(loss, out, y)) / total

  grad_fn = jax.vmap(jax.grad(case_loss), in_axes=(None, 0, 0, 0))

  def body(acc, xs):
    grads = grad_fn(params, *xs)
    return jax.tree.map(lambda a, g: a + jnp.sum(jnp.square(g), axis=0), acc, grads), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  acc, _ = lax.scan(body, zeros, (padded(inputs), padded(targets), padded(weights)))
  return jax.tree.map(lambda a: a / num_cases, acc)


def _is_dense_call(context) -> bool:
  return isinstance(context.module, nn.Dense) and context.method_name == "__call__"


def dense_fisher_diagonal(apply_fn: ApplyFn, loss: str, params: PyTree, batch) -> PyTree | None:
  """`empirical_fisher_diagonal` for a stack of Flax `nn.Dense` layers, or None if not one.

  Case i's gradient of a Dense kernel is a_i d_i^T (a_i the layer's input, d_i the gradient of
  l_i w.r.t. the layer's output), so (1/B) sum_i (grad l_i)^2 = (a^2)^T (d^2) / B for the kernel
  and sum_i d_i^2 / B for the bias. Three traced passes, found with `flax.linen.intercept_methods`:
  (1) which Dense layers run, on what shapes; (2) a forward pass that records every layer's input
  and adds a zero perturbation to its output, whose gradient is d; (3) the gradient w.r.t. the
  params of sum_k <kernel_k, C_k> + <bias_k, c_k>, which puts each constant C_k, c_k where that
  layer's parameters sit in `params`, whatever its structure (a pytree, or the flat vector `hf`
  ravels it into). XLA drops the unused work of pass (3).

  The shortcut is exact only when every parameter belongs to a Dense layer that runs once on
  [B, in] inputs (no shared weights, no positions within a case, no coupling between cases);
  otherwise this returns None. The check is at trace time: the Dense layers must be distinct
  modules, each called once on 2-D inputs with B rows, and together hold every parameter.

  Args:
    apply_fn, loss, params, batch: as for `empirical_fisher_diagonal`.

  Returns:
    A pytree like `params` (loss units / param^2), or None.
  """
  inputs, targets, weights = _unpack(batch)
  num_cases = inputs.shape[0]
  calls = []

  def survey(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if _is_dense_call(context):
      calls.append((context.module.path, jnp.shape(args[0]), jnp.shape(out),
                    context.module.use_bias))
    return out

  with nn.intercept_methods(survey):  # A fresh lambda: eval_shape caches traces per function.
    jax.eval_shape(lambda p, x: apply_fn(p, x), params, inputs)
  num_params = sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(params))
  in_dense = sum(a[-1] * o[-1] + o[-1] * bias for _, a, o, bias in calls)
  if (not calls or len({c[0] for c in calls}) != len(calls)
      or any(len(a) != 2 or a[0] != num_cases for _, a, _, _ in calls) or in_dense != num_params):
    return None

  def summed_loss(perturbations):  # B x the objective: sum_i l_i
    layer_inputs = []

    def perturb(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if _is_dense_call(context):
        out = out + perturbations[len(layer_inputs)]
        layer_inputs.append(args[0])
      return out

    with nn.intercept_methods(perturb):
      outputs = apply_fn(params, inputs)
    per_case = jnp.sum(weights * per_position_loss(loss, outputs, targets)) / _total(weights)
    return num_cases * per_case, layer_inputs

  zeros = [jnp.zeros(o, jnp.result_type(inputs)) for _, _, o, _ in calls]
  deltas, layer_inputs = jax.grad(summed_loss, has_aux=True)(zeros)
  consts = [(jnp.square(a).T @ jnp.square(d) / num_cases, jnp.sum(jnp.square(d), 0) / num_cases)
            for a, d in zip(layer_inputs, deltas)]

  def placed(p):
    terms = []

    def tap(next_fun, args, kwargs, context):
      if _is_dense_call(context):
        kernel_c, bias_c = consts[len(terms)]
        variables = context.module.variables["params"]
        terms.append(jnp.vdot(variables["kernel"], kernel_c)
                     + (jnp.vdot(variables["bias"], bias_c) if "bias" in variables else 0.))
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(tap):
      apply_fn(p, inputs)
    return sum(terms)

  return jax.grad(placed)(params)


