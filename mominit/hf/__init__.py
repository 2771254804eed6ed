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

Step size and weight cost (the paper's hybrid HF-dagger runs, section 9): `hessian_free(...,
eps=, l2=)` scales the step taken by eps (a number or a schedule of the update count; CG, its
warm start and the damping are unchanged) and adds the L2 weight cost l2/2 |theta|^2 to the
objective and l2 I to the curvature, as Martens' code does. `run_phases` runs a sequence of
`Phase`s (CG steps per update, minibatch fractions, decay, eps, l2, length in CG steps), the
form of those schedules.

Modules: `mominit.hf.curvature` (losses, objective, GN products, Fisher diagonal),
`mominit.hf.cg` (CG, its stopping test, backtracking), `mominit.hf.damping` (rho, damping, line
search, the NAG-like step), `mominit.hf.optimizer` (`hessian_free`, `momentum_like_hf`),
`mominit.hf.phases` (multi-phase runs). Every public name is importable from `mominit.hf`.

Units: parameters and updates are flat or pytree-shaped like `params`; losses are in the units of
`objective` (sum over outputs, mean over cases); lambda is in the units of G (loss / param^2).
Every scalar hyper-parameter may be a traced array (build the optimizer inside the function you
`jit`/`vmap`), so a population of HF runs is one `vmap` over (state, params[, hyper-parameters]).
"""
from mominit.hf.cg import BACKTRACK_MODES, CGResult, backtrack, pcg, save_iterations
from mominit.hf.curvature import (LOSSES, dense_fisher_diagonal, empirical_fisher_diagonal,
                                  gauss_newton_matvec, objective, output_hessian_vp,
                                  per_position_loss)
from mominit.hf.damping import (armijo_line_search, nag_like_step, reduction_ratio,
                                update_damping)
from mominit.hf.optimizer import (PRECONDITIONERS, HessianFree, HFInfo, HFState, hessian_free,
                                  momentum_like_hf)
from mominit.hf.phases import Phase, check_phases, run_phases

__all__ = [
    "LOSSES", "BACKTRACK_MODES", "PRECONDITIONERS", "per_position_loss", "output_hessian_vp",
    "objective", "gauss_newton_matvec", "empirical_fisher_diagonal", "dense_fisher_diagonal",
    "save_iterations", "CGResult", "pcg", "backtrack", "reduction_ratio", "update_damping",
    "armijo_line_search", "nag_like_step", "HFState", "HFInfo", "HessianFree", "hessian_free",
    "momentum_like_hf", "Phase", "check_phases", "run_phases",
]
