"""The HF optimizer: `hessian_free` and `momentum_like_hf` (see `mominit.hf` for the algorithm)."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import optax

from mominit.hf._common import (ApplyFn, Array, PyTree, _check_int, _check_range,
                                _is_python_number, _unpack)
from mominit.hf.cg import BACKTRACK_MODES, backtrack, pcg
from mominit.hf.curvature import (_check_loss, empirical_fisher_diagonal, gauss_newton_matvec,
                                  objective)
from mominit.hf.damping import armijo_line_search, reduction_ratio, update_damping

PRECONDITIONERS = ("martens", "none")


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
    loss: f(theta) on the gradient minibatch (with the L2 term when l2 > 0).
    new_loss: f(theta_new) on the gradient minibatch.
    rho: reduction ratio at the backtracked step (before the line search).
    damping: lambda used for this update (the state holds the next one).
    cg_iters: CG iterations.
    chosen_iter: CG iteration of the backtracked iterate.
    rate: line-search rate (0: update rejected).
    model_decrease: q(p) - q(0) of the undamped GN model at the backtracked p.
    grad_norm: ||g||.
    num_gnvp: GN-vector products on the curvature batch (CG plus its initial residual).
    num_loss_evals: forward-only objective evaluations on the gradient batch (backtracking,
      line search, and f(theta_new) when eps is not 1).
    eps: the step-size multiplier of this update (theta_new = theta + eps rate p).
    l2: the L2 weight cost of this update's objective.
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
  eps: Array
  l2: Array


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
                 rho_high: float | Array = 0.75,
                 eps: optax.ScalarOrSchedule = 1.0,
                 l2: optax.ScalarOrSchedule = 0.0) -> HessianFree:
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
    eps: step-size multiplier (> 0), a number or a schedule of the update count: the update
      applied is eps x rate x p. CG, its warm start (decay x the previous final iterate, not the
      applied step), backtracking, rho, the damping and the line search are those of eps = 1;
      only the step taken is scaled (the hybrid HF-dagger schedules' "eps", docs/paper.md sec. 9).
    l2: L2 weight cost (>= 0), a number or a schedule of the update count: HF minimises
      f(theta) + l2/2 |theta|^2 over every parameter (biases too, as Martens' code does), so the
      gradient gains l2 theta, the curvature G + l2 I (in CG, in rho's undamped model and, as
      in his code, in the preconditioner (fisher + lambda + l2)^(3/4)).

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
  if not callable(eps):
    _check_range("eps", eps, lo=0., lo_open=True)
  if not callable(l2):
    _check_range("l2", l2, lo=0.)
  # Python eps = 1 and l2 = 0 leave the program as it was (no extra terms or evaluations).
  scaled = callable(eps) or not (_is_python_number(eps) and float(eps) == 1.)
  weighted = callable(l2) or not (_is_python_number(l2) and float(l2) == 0.)
  eps_fn = eps if callable(eps) else (lambda _: eps)
  l2_fn = l2 if callable(l2) else (lambda _: l2)
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
    wd = jnp.asarray(l2_fn(state.count), dtype)
    step_size = jnp.asarray(eps_fn(state.count), dtype)
    data_f = lambda w: objective(flat_apply, loss, w, batch_grad)
    f = (lambda w: data_f(w) + 0.5 * wd * jnp.vdot(w, w)) if weighted else data_f
    f0, g = jax.value_and_grad(f)(flat)
    lam = state.damping.astype(dtype)
    gn = gauss_newton_matvec(flat_apply, loss, flat, batch_curv)
    # CG's matrix: G (+ l2 I, the weight cost's curvature) + lambda I.
    shift = lam + wd if weighted else lam
    damped = lambda v: gn(v) + shift * v
    if preconditioner == "martens":
      fisher = empirical_fisher_diagonal(flat_apply, loss, flat, batch_curv, fisher_chunk_size)
      precond = (fisher + shift)**precond_exponent
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
    if scaled:  # theta + eps rate p, and f there (one more forward pass)
      new_flat = flat + step_size * rate * p
      f_new, n_ls = f(new_flat), n_ls + 1
    else:
      new_flat = flat + rate * p
    new_params = unravel(new_flat)
    new_state = HFState(count=state.count + 1, prev_update=unravel(res.x), damping=new_lam)
    info = HFInfo(loss=f0, new_loss=f_new, rho=rho, damping=lam, cg_iters=res.num_iters,
                  chosen_iter=res.saved_iters[slot], rate=rate, model_decrease=model_decrease,
                  grad_norm=jnp.linalg.norm(g), num_gnvp=res.num_iters + 1,
                  num_loss_evals=n_bt + n_ls, eps=step_size, l2=wd)
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
