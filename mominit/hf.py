"""Hessian-free optimization (Martens 2010) and its link to NAG (Sutskever et al. 2013, sec. 5).

HF minimises, at every update, the damped Gauss-Newton (GN) quadratic model of the objective

    phi(p) = g^T p + 1/2 p^T (G + lambda I) p,     G = J^T H J,

with preconditioned conjugate gradient (CG), where g is the gradient on a gradient minibatch, J the
Jacobian of the model outputs on a (usually smaller) curvature minibatch and H the Hessian of the
loss with respect to the outputs. The pieces, all pure, jit-compiled and `vmap`-able:

- `gauss_newton_matvec`: v -> G v through `jax.linearize` of the model (one forward pass is
  stored, then each product is one forward-mode and one transposed pass) and the closed-form
  loss Hessian H: `2 I` for the squared error (the project's loss is sum (y - x)^2 without 1/2),
  `diag(s (1 - s))` for logistic outputs with cross-entropy, `diag(p) - p p^T` (times the target
  mass, 1 for one-hot targets) for softmax with cross-entropy. Losses are summed over the output
  axis and averaged over cases (or masked positions), exactly as `objective` computes them.
- `pcg`: preconditioned CG as a `lax.while_loop`, with Martens' relative-progress stopping test
  (stop at iteration i > k when (phi_i - phi_{i-k}) / phi_i < k eps, k = max(10, ceil(0.1 i)),
  eps = 5e-4, only once phi_{i-k} < 0), at most 250 iterations, and the iterates at iterations
  ceil(1.3^j) (plus the last one) kept in a fixed-size buffer for CG backtracking.
- `empirical_fisher_diagonal`: Martens' preconditioner uses the diagonal
  (sum_i grad_i^2 / B + lambda)^(3/4); grad_i is the gradient of case i's loss (the objective is
  the mean of these over the B cases), so sum_i grad_i^2 / B is the empirical Fisher diagonal, in
  the same units as G and lambda. We compute it on the *curvature* minibatch (Martens used the
  gradient minibatch). For a stack of Flax Dense layers (the autoencoders) it is one matmul per
  layer, (a^2)^T (d^2) (`dense_fisher_diagonal`); otherwise per-case gradients in chunks, which
  cost O(B x num_params) memory traffic, so the smaller batch keeps the preconditioner cheap.
- `backtrack`: evaluates the objective (gradient minibatch) at the stored CG iterates and returns
  the best one ("best", the default), or walks back from the last iterate while the objective
  keeps decreasing ("walk", what Martens' released code does; cheaper, usually the same answer).
- `update_damping`: Levenberg-Marquardt rule: lambda x 3/2 when rho < 1/4, x 2/3 when rho > 3/4,
  with rho = (f(theta + p) - f(theta)) / (q(p) - q(0)) and q the *undamped* GN model (Martens &
  Sutskever 2012, sec. 8.5); rho is taken at the backtracked p, before the line search; a NaN
  rho counts as a failure (boost). f is evaluated on the gradient minibatch, where the model's
  linear term comes from (Martens' code evaluates f for rho on the curvature minibatch). Our
  guards (not in Martens' description): rho is NaN when the model predicts no decrease
  (q(p) >= q(0), possible after a few CG steps from a warm start), and a step the line search
  rejects (rate 0) counts as a failure; without them HF with a few CG steps per update drove
  lambda to 1e-12 on CURVES and then stalled with every step rejected.
- `armijo_line_search`: largest rate 0.8^k (k < 60) with
  f(theta + rate p) <= f(theta) + 1e-2 rate g^T p on the gradient minibatch, else rate 0.
- `hessian_free(apply_fn, loss, ...)` ties them together into an optimizer object with
  `init(params) -> HFState` and `step(state, params, batch_grad, batch_curv) ->
  (params, state, HFInfo)`. The warm start of CG is `decay * ` the previous *final* CG iterate
  (not the backtracked or line-searched step; as in Martens' code), decay 0.95.

HF as a momentum method (Sutskever et al. 2013, sec. 5). With x0 = mu p_prev (mu = decay), one
step of preconditioned CG from the warm start gives (`nag_like_step`)

    r0 = g + B x0,  y0 = M^-1 r0,  alpha = r0^T y0 / y0^T B y0,
    p = x0 - alpha y0 = mu p_prev - alpha M^-1 (g + B mu p_prev),

with B = G + lambda I the damped curvature (M = I without preconditioner: alpha =
r0^T r0 / r0^T B r0). Because g + B (mu p_prev) is the gradient of the quadratic model at
theta + mu p_prev, it is a first-order (Taylor) approximation of grad f(theta + mu p_prev), the
look-ahead gradient of NAG (docs/paper.md sec. 1): with v = p, the update is NAG's
v_{t+1} = mu v_t - eps_t grad f(theta_t + mu v_t) with the step size eps_t = alpha chosen by the
curvature along r0 instead of fixed. Running more CG steps per update moves HF from this NAG-like
end towards an exact second-order method; `momentum_like_hf` is the few-CG-steps end of that dial
(the paper's appendix with its exact settings is not in our copy of the text; our settings are
documented there).

Units: parameters and updates are flat or pytree-shaped like `params`; losses are in the units of
`objective` (sum over outputs, mean over cases); lambda is in the units of G (loss / param^2).
Every scalar hyper-parameter may be a traced array (build the optimizer inside the function you
`jit`/`vmap`), so a population of HF runs is one `vmap` over (state, params[, hyper-parameters]).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
from jax import lax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array
PyTree = Any
ApplyFn = Callable[[PyTree, Array], Array]

LOSSES = ("sigmoid_cross_entropy", "squared_error", "softmax_cross_entropy")
BACKTRACK_MODES = ("best", "walk", "none")
PRECONDITIONERS = ("martens", "none")

# ---------------------------------------------------------------------------------------------
# Validation helpers (Python values only; traced values cannot be checked).


def _is_python_number(x) -> bool:
  return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _check_range(name, value, lo=None, hi=None, lo_open=False, hi_open=False):
  """Raises ValueError for a Python number outside [lo, hi] (open ends when asked)."""
  if not _is_python_number(value):
    return
  v = float(value)
  if not math.isfinite(v):
    raise ValueError(f"{name} must be finite, got {value!r}")
  if lo is not None and (v <= lo if lo_open else v < lo):
    raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
  if hi is not None and (v >= hi if hi_open else v > hi):
    raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")


def _check_loss(loss):
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; valid losses: {', '.join(LOSSES)}")


def _check_int(name, value, lo):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{name} must be a Python int, got {value!r}")
  if value < lo:
    raise ValueError(f"{name} must be >= {lo}, got {value}")


def _unpack(batch):
  """Returns (inputs, targets, weights) from (inputs, targets) or (inputs, targets, mask).

  Raises:
    ValueError: for anything else, or when leading shapes disagree.
  """
  if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
    raise ValueError("a batch must be a tuple (inputs, targets) or (inputs, targets, mask), got "
                     f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                   if isinstance(batch, (tuple, list)) else ""))
  inputs, targets = batch[0], batch[1]
  if jnp.ndim(targets) < 2:
    raise ValueError(f"targets must have shape [B, ..., O], got {jnp.shape(targets)}")
  if jnp.shape(inputs)[0] != jnp.shape(targets)[0]:
    raise ValueError(f"inputs and targets disagree on the number of cases: "
                     f"{jnp.shape(inputs)[0]} vs {jnp.shape(targets)[0]}")
  if len(batch) == 3:
    weights = batch[2]
    if jnp.shape(weights) != jnp.shape(targets)[:-1]:
      raise ValueError(f"mask must have shape targets.shape[:-1] = {jnp.shape(targets)[:-1]}, "
                       f"got {jnp.shape(weights)}")
  else:
    weights = jnp.ones(jnp.shape(targets)[:-1], jnp.result_type(targets))
  return inputs, targets, weights


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


def _total(weights):
  # An all-zero mask gives a zero objective (as in mominit.losses), not NaN.
  total = jnp.sum(weights)
  return jnp.where(total > 0, total, 1)


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


# ---------------------------------------------------------------------------------------------
# Conjugate gradient with Martens' stopping test and backtracking buffer.


def save_iterations(max_iters: int, ratio: float = 1.3) -> tuple[int, ...]:
  """The distinct CG iterations ceil(ratio^j) <= max_iters, j = 0, 1, ... (Martens 2010).

  Args:
    max_iters: largest iteration to keep (Python int >= 1).
    ratio: geometric ratio (> 1).

  Returns:
    Increasing tuple, e.g. (1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 24, ...) for ratio 1.3.
  """
  _check_int("max_iters", max_iters, 1)
  if not ratio > 1:
    raise ValueError(f"ratio must be > 1, got {ratio!r}")
  out, j = [], 0
  while True:
    it = math.ceil(ratio**j)
    if it > max_iters:
      return tuple(out)
    if not out or it != out[-1]:
      out.append(it)
    j += 1


class CGResult(NamedTuple):
  """Output of `pcg` (S = number of save iterations; slots hold flat [P] iterates).

  Attributes:
    x: [P] final iterate.
    num_iters: int32 scalar, CG iterations run (matrix-vector products minus the initial one).
    saved: [S + 1, P] stored iterates; slots 0..last_slot are valid, the last one is `x`.
    saved_iters: [S + 1] int32 iteration of each slot (0 for unwritten slots).
    saved_phi: [S + 1] phi at each slot.
    last_slot: int32 scalar, slot of the final iterate.
    phi: [bound + 1] phi after each iteration (phi[0] at x0; entries past num_iters are 0).
  """
  x: Array
  num_iters: Array
  saved: Array
  saved_iters: Array
  saved_phi: Array
  last_slot: Array
  phi: Array


def pcg(matvec: Callable[[Array], Array], grad: Array, x0: Array, *,
        precond: Array | None = None, max_iters: int | Array = 250,
        iters_bound: int | None = None, eps: float | Array = 5e-4,
        min_gap: int | Array = 10, gap_ratio: float | Array = 0.1,
        save_ratio: float = 1.3) -> CGResult:
  """Preconditioned CG on phi(x) = 1/2 x^T A x + grad^T x, i.e. it solves A x = -grad.

  Stops after `max_iters` iterations, when p^T A p <= 0 (exact convergence), or at the first
  iteration i > k with phi_{i-k} < 0 and (phi_i - phi_{i-k}) / phi_i < k * eps,
  k = max(min_gap, ceil(gap_ratio * i)) (Martens 2010; eps = 0 disables the test). phi is tracked
  without extra products: phi = 1/2 x^T (r + grad) with the residual r = A x + grad. Iterates
  are kept at iterations ceil(save_ratio^j) as in Martens (2010); his released code keeps them
  at ceil(5 * 1.3^j) instead.

  Args:
    matvec: x [P] -> A x [P], A symmetric positive definite (e.g. G + lambda I).
    grad: [P] linear term.
    x0: [P] initial iterate (HF: decay * previous solution).
    precond: [P] positive diagonal M (CG uses M^-1 r), or None.
    max_iters: iteration cap; may be traced (then it is clipped to `iters_bound`).
    iters_bound: static bound on iterations (sizes the phi history and the save buffer);
      defaults to `max_iters` when that is a Python int, else 250.
    eps: relative-progress tolerance (5e-4).
    min_gap: smallest k of the test (10).
    gap_ratio: k grows as gap_ratio * i (0.1).
    save_ratio: iterates at iterations ceil(save_ratio^j) are kept (static, 1.3).

  Returns:
    A `CGResult`.
  """
  if iters_bound is None:
    iters_bound = int(max_iters) if _is_python_number(max_iters) else 250
  _check_int("iters_bound", iters_bound, 1)
  if _is_python_number(max_iters):
    _check_int("max_iters", max_iters, 1)
  _check_range("eps", eps, lo=0.)
  _check_range("gap_ratio", gap_ratio, lo=0.)
  _check_range("min_gap", min_gap, lo=1.)
  table = jnp.asarray(save_iterations(iters_bound, save_ratio), jnp.int32)
  num_save = table.shape[0]
  dtype = grad.dtype
  inv_m = None if precond is None else 1. / precond
  apply_inv = (lambda r: r) if inv_m is None else (lambda r: inv_m * r)
  limit = jnp.minimum(jnp.asarray(max_iters, jnp.int32), iters_bound)

  r = matvec(x0) + grad
  y = apply_inv(r)
  phi0 = 0.5 * jnp.vdot(x0, r + grad)
  init = dict(
      i=jnp.zeros([], jnp.int32), x=x0, r=r, p=-y, ry=jnp.vdot(r, y), done=jnp.zeros([], bool),
      phi=jnp.zeros([iters_bound + 1], dtype).at[0].set(phi0),
      saved=jnp.zeros((num_save + 1,) + x0.shape, dtype),
      saved_iters=jnp.zeros([num_save + 1], jnp.int32),
      saved_phi=jnp.zeros([num_save + 1], dtype),
      ptr=jnp.zeros([], jnp.int32), last=jnp.zeros([], jnp.int32))

  def cond(c):
    return (c["i"] < limit) & ~c["done"]

  def body(c):
    ap = matvec(c["p"])
    pap = jnp.vdot(c["p"], ap)
    # Guards only matter once CG has converged exactly (r = 0); they keep the iterate fixed.
    alpha = jnp.where(pap > 0, c["ry"] / jnp.where(pap > 0, pap, 1.), 0.)
    x = c["x"] + alpha * c["p"]
    r = c["r"] + alpha * ap
    y = apply_inv(r)
    ry = jnp.vdot(r, y)
    beta = jnp.where(c["ry"] > 0, ry / jnp.where(c["ry"] > 0, c["ry"], 1.), 0.)
    p = -y + beta * c["p"]
    i = c["i"] + 1
    phi_i = 0.5 * jnp.vdot(x, r + grad)
    phi = c["phi"].at[i].set(phi_i)
    # k = max(min_gap, ceil(gap_ratio i)); the 1e-3 keeps 0.1 * 110 = 11.000000000000002 at 11.
    k = jnp.maximum(jnp.asarray(min_gap, jnp.int32),
                    jnp.ceil(gap_ratio * i.astype(dtype) - 1e-3).astype(jnp.int32))
    prev = phi[jnp.maximum(i - k, 0)]
    # As in Martens' code the test needs phi_{i-k} < 0 (then phi_i < 0 too, CG being monotone).
    done = (eps > 0) & (i > k) & (prev < 0) & (phi_i < 0) & (
        (phi_i - prev) / jnp.where(phi_i < 0, phi_i, -1.) < k.astype(dtype) * eps)
    # No positive curvature along p: converged exactly (p = 0) or A is not positive definite.
    done = done | ~(pap > 0)
    # The current iterate always goes to slot ptr; the slot is frozen (ptr advances) when i is a
    # save iteration, so slots 0..last hold the save iterations reached plus the final iterate.
    ptr = c["ptr"]
    freeze = (ptr < num_save) & (i == table[jnp.minimum(ptr, num_save - 1)])
    return dict(
        i=i, x=x, r=r, p=p, ry=ry, done=done, phi=phi,
        saved=c["saved"].at[ptr].set(x), saved_iters=c["saved_iters"].at[ptr].set(i),
        saved_phi=c["saved_phi"].at[ptr].set(phi_i), ptr=ptr + freeze.astype(jnp.int32),
        last=ptr)

  c = lax.while_loop(cond, body, init)
  return CGResult(x=c["x"], num_iters=c["i"], saved=c["saved"], saved_iters=c["saved_iters"],
                  saved_phi=c["saved_phi"], last_slot=c["last"], phi=c["phi"])


def backtrack(objective_fn: Callable[[Array], Array], candidates: Array, last_slot: Array,
              mode: str = "best") -> tuple[Array, Array, Array]:
  """CG backtracking: picks a stored iterate by the objective.

  Args:
    objective_fn: candidate [P] -> scalar objective of theta + candidate (gradient minibatch).
    candidates: [S, P] stored iterates; slots 0..last_slot are valid (ordered by iteration).
    last_slot: int scalar, the final iterate's slot.
    mode: "best": the valid slot with the lowest objective (ties: the later iterate);
      "walk": start at the last slot and go back while the objective strictly decreases
      (Martens' code); "none": the last slot.

  Returns:
    (slot int32, its objective value, number of objective evaluations int32).
  """
  if mode not in BACKTRACK_MODES:
    raise ValueError(f"unknown backtrack mode {mode!r}; valid: {', '.join(BACKTRACK_MODES)}")
  last_slot = jnp.asarray(last_slot, jnp.int32)
  value = objective_fn(candidates[last_slot])
  if mode == "none":
    return last_slot, value, jnp.ones([], jnp.int32)

  def cond(c):
    j, _, _, go, _ = c
    return (j >= 0) & go

  def body(c):
    j, best_j, best_v, _, n = c
    v = objective_fn(candidates[j])
    better = v < best_v
    go = better if mode == "walk" else jnp.ones([], bool)
    return (j - 1, jnp.where(better, j, best_j), jnp.where(better, v, best_v), go, n + 1)

  _, best_j, best_v, _, n = lax.while_loop(
      cond, body, (last_slot - 1, last_slot, value, jnp.ones([], bool), jnp.ones([], jnp.int32)))
  return best_j, best_v, n


def reduction_ratio(actual_change: Array, model_change: Array) -> Array:
  """rho = actual / predicted change of the objective, NaN unless the model predicts a decrease.

  rho is a ratio of reductions; when the model predicts none (model_change >= 0, which a few CG
  steps from a warm start can leave) the ratio of two increases would read as "the model is
  accurate" and lower the damping, so it is NaN instead, which `update_damping` treats as a
  failure.

  Args:
    actual_change: f(theta + p) - f(theta) (loss units).
    model_change: q(p) - q(0) of the undamped model (loss units).

  Returns:
    The scalar rho, or NaN.
  """
  safe = jnp.where(model_change < 0, model_change, -1.)
  return jnp.where(model_change < 0, actual_change / safe, jnp.nan)


def update_damping(damping: Array, rho: Array, *, boost: float | Array = 1.5,
                   drop: float | Array = 2. / 3., low: float | Array = 0.25,
                   high: float | Array = 0.75) -> Array:
  """Levenberg-Marquardt rule: damping x boost if rho < low, x drop if rho > high.

  Args:
    damping: scalar lambda (loss / param^2).
    rho: scalar reduction ratio (f(theta + p) - f(theta)) / (q(p) - q(0)); NaN counts as a
      failure (boost).
    boost, drop, low, high: Martens' 3/2, 2/3, 1/4, 3/4.

  Returns:
    The new damping (scalar).
  """
  rho = jnp.where(jnp.isnan(rho), -jnp.inf, rho)
  return jnp.where(rho < low, damping * boost, jnp.where(rho > high, damping * drop, damping))


def armijo_line_search(objective_fn: Callable[[Array], Array], f0: Array, slope: Array,
                       f1: Array, *, c: float | Array = 1e-2, shrink: float | Array = 0.8,
                       max_steps: int = 60) -> tuple[Array, Array, Array]:
  """Backtracking line search along p: largest rate = shrink^k with the Armijo condition.

  f(theta + rate p) <= f(theta) + c rate g^T p, k = 0 .. max_steps - 1; rate 0 if none passes.

  Args:
    objective_fn: rate (scalar) -> f(theta + rate p) on the gradient minibatch.
    f0: f(theta).
    slope: g^T p (negative for a descent direction).
    f1: f(theta + p), already known from backtracking.
    c: Armijo constant (1e-2).
    shrink: rate factor (0.8).
    max_steps: rates tried (static int; 60 as in Martens' code).

  Returns:
    (rate, f(theta + rate p), number of new objective evaluations int32).
  """
  _check_int("max_steps", max_steps, 1)
  dtype = jnp.result_type(f0)
  ok = lambda rate, v: v <= f0 + c * rate * slope

  def cond(st):
    k, rate, v, n = st
    return ~ok(rate, v) & (k < max_steps - 1)

  def body(st):
    k, rate, _, n = st
    rate = rate * shrink
    return k + 1, rate, objective_fn(rate), n + 1

  one = jnp.ones([], dtype)
  k, rate, v, n = lax.while_loop(cond, body, (jnp.zeros([], jnp.int32), one, f1,
                                              jnp.zeros([], jnp.int32)))
  accepted = ok(rate, v)
  return jnp.where(accepted, rate, 0.), jnp.where(accepted, v, f0), n


def nag_like_step(grad: Array, matvec: Callable[[Array], Array], prev_update: Array,
                  decay: float | Array, precond: Array | None = None) -> tuple[Array, Array, Array]:
  """One (preconditioned) CG step from the warm start decay * prev_update, in closed form.

  p = mu p_prev - alpha M^-1 (g + B mu p_prev), alpha = r0^T M^-1 r0 / (M^-1 r0)^T B (M^-1 r0),
  r0 = g + B mu p_prev (mu = decay, B = damped curvature, M = I when precond is None). This is
  NAG with v = p, momentum mu, step size alpha and the look-ahead gradient
  grad f(theta + mu p_prev) replaced by the quadratic model's gradient r0 (see module docstring).

  Args:
    grad: [P] gradient g at theta.
    matvec: x [P] -> B x [P].
    prev_update: [P] previous HF solution p_prev.
    decay: scalar mu.
    precond: [P] positive diagonal M, or None.

  Returns:
    (p [P], alpha scalar, r0 [P] the model's look-ahead gradient).
  """
  x0 = decay * prev_update
  r0 = grad + matvec(x0)
  y0 = r0 if precond is None else r0 / precond
  alpha = jnp.vdot(r0, y0) / jnp.vdot(y0, matvec(y0))
  return x0 - alpha * y0, alpha, r0


# ---------------------------------------------------------------------------------------------
# The optimizer.


class HFState(NamedTuple):
  """HF state (a pytree; stack it along a leading axis for a `vmap`ped population).

  Attributes:
    count: int32 scalar, updates done.
    prev_update: pytree like params, the previous final CG iterate (warm start base).
    damping: scalar lambda.
  """
  count: Array
  prev_update: PyTree
  damping: Array


class HFInfo(NamedTuple):
  """Diagnostics of one HF update (all scalars).

  Attributes:
    loss: f(theta) on the gradient minibatch.
    new_loss: f(theta_new) on the gradient minibatch.
    rho: reduction ratio at the backtracked step (before the line search).
    damping: lambda used for this update (the state holds the next one).
    cg_iters: CG iterations.
    chosen_iter: CG iteration of the backtracked iterate.
    rate: line-search rate (0: update rejected).
    model_decrease: q(p) - q(0) of the undamped GN model at the backtracked p.
    grad_norm: ||g||.
    num_gnvp: GN-vector products on the curvature batch (CG plus its initial residual).
    num_loss_evals: forward-only objective evaluations on the gradient batch (backtracking and
      line search).
  """
  loss: Array
  new_loss: Array
  rho: Array
  damping: Array
  cg_iters: Array
  chosen_iter: Array
  rate: Array
  model_decrease: Array
  grad_norm: Array
  num_gnvp: Array
  num_loss_evals: Array


class HessianFree(NamedTuple):
  """An HF optimizer: `init(params) -> HFState`; `step(state, params, batch_grad, batch_curv)
  -> (new_params, new_state, HFInfo)`. Both are pure; wrap `step` in `jax.jit`."""
  init: Callable[[PyTree], HFState]
  step: Callable[..., tuple[PyTree, HFState, HFInfo]]


def hessian_free(apply_fn: ApplyFn, loss: str, *,
                 decay: optax.ScalarOrSchedule = 0.95,
                 init_damping: float | Array = 45.,
                 max_cg_iters: int | Array = 250,
                 cg_iters_bound: int | None = None,
                 cg_eps: float | Array = 5e-4,
                 cg_min_gap: int | Array = 10,
                 cg_gap_ratio: float | Array = 0.1,
                 save_ratio: float = 1.3,
                 preconditioner: str = "martens",
                 precond_exponent: float | Array = 0.75,
                 fisher_chunk_size: int = 32,
                 backtrack_mode: str = "best",
                 line_search: bool = True,
                 armijo_c: float | Array = 1e-2,
                 ls_shrink: float | Array = 0.8,
                 ls_max_steps: int = 60,
                 damping_boost: float | Array = 1.5,
                 damping_drop: float | Array = 2. / 3.,
                 rho_low: float | Array = 0.25,
                 rho_high: float | Array = 0.75) -> HessianFree:
  """Hessian-free optimizer (Martens 2010), see the module docstring for the algorithm.

  Args:
    apply_fn: `apply_fn(params, inputs [B, ...]) -> outputs [B, ..., O]` (logits for the
      cross-entropies, linear outputs for the squared error).
    loss: one of `LOSSES`; the objective is `objective(apply_fn, loss, params, batch)`.
    decay: warm-start decay mu (0.95; 0 = CG from zero), or a schedule of the update count.
    init_damping: initial lambda (45).
    max_cg_iters: CG iteration cap (250); may be traced if `cg_iters_bound` bounds it.
    cg_iters_bound: static bound on CG iterations (default: max_cg_iters if a Python int, else
      250).
    cg_eps, cg_min_gap, cg_gap_ratio: Martens' stopping test (5e-4, 10, 0.1); cg_eps = 0 turns it
      off.
    save_ratio: backtracking iterates at ceil(save_ratio^j) (static, 1.3).
    preconditioner: "martens" ((fisher_diag + lambda)^precond_exponent, see
      `empirical_fisher_diagonal`, on the curvature batch) or "none".
    precond_exponent: 3/4.
    fisher_chunk_size: cases per chunk of per-case gradients (static).
    backtrack_mode: "best", "walk" or "none" (see `backtrack`).
    line_search: whether to run the Armijo line search (static); without it rate = 1.
    armijo_c, ls_shrink, ls_max_steps: 1e-2, 0.8, 60.
    damping_boost, damping_drop, rho_low, rho_high: 3/2, 2/3, 1/4, 3/4.

  Returns:
    A `HessianFree` (init, step). `step(state, params, batch_grad, batch_curv)`: batches are
    (inputs, targets) or (inputs, targets, mask) tuples; the gradient, rho, backtracking and line
    search use batch_grad, the curvature (GN products, preconditioner) batch_curv.

  Raises:
    ValueError: for invalid Python hyper-parameters or names.
  """
  _check_loss(loss)
  if preconditioner not in PRECONDITIONERS:
    raise ValueError(f"unknown preconditioner {preconditioner!r}; valid: "
                     f"{', '.join(PRECONDITIONERS)}")
  if backtrack_mode not in BACKTRACK_MODES:
    raise ValueError(f"unknown backtrack_mode {backtrack_mode!r}; valid: "
                     f"{', '.join(BACKTRACK_MODES)}")
  if _is_python_number(max_cg_iters):
    _check_int("max_cg_iters", max_cg_iters, 1)
  if cg_iters_bound is None:
    cg_iters_bound = int(max_cg_iters) if _is_python_number(max_cg_iters) else 250
  _check_int("cg_iters_bound", cg_iters_bound, 1)
  _check_int("fisher_chunk_size", fisher_chunk_size, 1)
  _check_int("ls_max_steps", ls_max_steps, 1)
  if not callable(decay):
    _check_range("decay", decay, 0., 1.)
  _check_range("init_damping", init_damping, lo=0., lo_open=True)
  _check_range("cg_eps", cg_eps, lo=0.)
  _check_range("cg_min_gap", cg_min_gap, lo=1.)
  _check_range("cg_gap_ratio", cg_gap_ratio, lo=0.)
  _check_range("precond_exponent", precond_exponent, lo=0.)
  _check_range("armijo_c", armijo_c, 0., 1., hi_open=True)
  _check_range("ls_shrink", ls_shrink, 0., 1., lo_open=True, hi_open=True)
  _check_range("damping_boost", damping_boost, lo=1.)
  _check_range("damping_drop", damping_drop, 0., 1., lo_open=True)
  _check_range("rho_low", rho_low)
  _check_range("rho_high", rho_high)
  if not 1. < save_ratio:
    raise ValueError(f"save_ratio must be > 1, got {save_ratio!r}")
  decay_fn = decay if callable(decay) else (lambda _: decay)

  def init(params):
    flat, _ = ravel_pytree(params)
    return HFState(count=jnp.zeros([], jnp.int32),
                   prev_update=jax.tree.map(jnp.zeros_like, params),
                   damping=jnp.asarray(init_damping, flat.dtype))

  def step(state: HFState, params, batch_grad, batch_curv):
    _unpack(batch_grad)
    _unpack(batch_curv)
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    flat_apply = lambda w, x: apply_fn(unravel(w), x)
    f = lambda w: objective(flat_apply, loss, w, batch_grad)
    f0, g = jax.value_and_grad(f)(flat)
    lam = state.damping.astype(dtype)
    gn = gauss_newton_matvec(flat_apply, loss, flat, batch_curv)
    damped = lambda v: gn(v) + lam * v
    if preconditioner == "martens":
      fisher = empirical_fisher_diagonal(flat_apply, loss, flat, batch_curv, fisher_chunk_size)
      precond = (fisher + lam)**precond_exponent
    else:
      precond = None
    mu = jnp.asarray(decay_fn(state.count), dtype)
    x0 = mu * ravel_pytree(state.prev_update)[0].astype(dtype)
    res = pcg(damped, g, x0, precond=precond, max_iters=max_cg_iters,
              iters_bound=cg_iters_bound, eps=cg_eps, min_gap=cg_min_gap,
              gap_ratio=cg_gap_ratio, save_ratio=save_ratio)
    slot, f_p, n_bt = backtrack(lambda p: f(flat + p), res.saved, res.last_slot, backtrack_mode)
    p = res.saved[slot]
    # Undamped model change q(p) - q(0) = phi(p) - lambda/2 |p|^2, from CG's stored phi.
    model_decrease = res.saved_phi[slot] - 0.5 * lam * jnp.vdot(p, p)
    rho = reduction_ratio(f_p - f0, model_decrease)
    if line_search:
      rate, f_new, n_ls = armijo_line_search(lambda a: f(flat + a * p), f0, jnp.vdot(g, p), f_p,
                                             c=armijo_c, shrink=ls_shrink,
                                             max_steps=ls_max_steps)
    else:
      rate, f_new, n_ls = jnp.ones([], dtype), f_p, jnp.zeros([], jnp.int32)
    # A step the line search rejects (rate 0) is a failure too. Without these two guards, HF
    # with a few CG steps per update drives lambda to ~1e-12 (rho stays near 1 on tiny model
    # changes), and then its steps are rejected for good (measured on CURVES, `experiments.hf`).
    new_lam = update_damping(lam, jnp.where(rate > 0, rho, jnp.nan), boost=damping_boost,
                             drop=damping_drop, low=rho_low, high=rho_high)
    new_params = unravel(flat + rate * p)
    new_state = HFState(count=state.count + 1, prev_update=unravel(res.x), damping=new_lam)
    info = HFInfo(loss=f0, new_loss=f_new, rho=rho, damping=lam, cg_iters=res.num_iters,
                  chosen_iter=res.saved_iters[slot], rate=rate, model_decrease=model_decrease,
                  grad_norm=jnp.linalg.norm(g), num_gnvp=res.num_iters + 1,
                  num_loss_evals=n_bt + n_ls)
    return new_params, new_state, info

  return HessianFree(init=init, step=step)


def momentum_like_hf(apply_fn: ApplyFn, loss: str, *, cg_iters: int | Array = 1,
                     decay: optax.ScalarOrSchedule = 0.95, **kwargs) -> HessianFree:
  """HF at the momentum end of the dial: a few CG steps per update, no CG backtracking.

  With cg_iters = 1 each update is `nag_like_step` (then the line search): NAG whose step size
  comes from the curvature and whose momentum is the warm-start decay. Sutskever et al. (2013,
  sec. 5 and appendix) made HF "more like NAG"; the appendix's exact settings are not in our copy
  of the paper, so this keeps everything else at Martens' settings (damping, preconditioner,
  line search) and only shortens CG.

  Args:
    apply_fn, loss: as for `hessian_free`.
    cg_iters: CG steps per update; may be traced, up to `cg_iters_bound` (pass it in kwargs;
      default 250 for traced values, cg_iters itself for a Python int).
    decay: warm-start decay, the momentum mu.
    **kwargs: other `hessian_free` arguments (backtrack_mode defaults to "none").

  Returns:
    A `HessianFree`.
  """
  kwargs.setdefault("backtrack_mode", "none")
  return hessian_free(apply_fn, loss, decay=decay, max_cg_iters=cg_iters, **kwargs)
