"""The HF study's appendix experiment: CG and NAG from zero on a quadratic HF builds mid-run.

The quadratic HF builds at update steps // 2 of the main run (q(p) = g^T p + 1/2 p^T (G +
lambda I) p, g on the gradient batch, G on the curvature batch, the damping lambda of that
update) is minimised from zero by CG (plain and with Martens' preconditioner) and by NAG on the
quadratic (step size 1/L, L the largest eigenvalue by power iteration, constant mu from a grid).
"""
from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp

from mominit import hf

LOSS = "sigmoid_cross_entropy"


def quadratic_experiment(cfg, apply_fn, data, captured):
  """CG (plain, preconditioned) and NAG from zero on the captured HF quadratic."""
  params, lam = captured["params"], captured["damping"]
  flat, unravel = ravel_pytree(params)
  flat_apply = lambda w, x: apply_fn(unravel(w), x)
  iters = cfg["quad_iters"]

  @jax.jit
  def build_and_solve(flat, lam, gx, cx):
    gbatch, cbatch = (gx, gx), (cx, cx)
    g = jax.grad(lambda w: hf.objective(flat_apply, LOSS, w, gbatch))(flat)
    gn = hf.gauss_newton_matvec(flat_apply, LOSS, flat, cbatch)
    a = lambda v: gn(v) + lam * v
    fisher = hf.empirical_fisher_diagonal(flat_apply, LOSS, flat, cbatch)
    precond = (fisher + lam)**0.75
    zero = jnp.zeros_like(flat)
    # Plain and preconditioned CG as one vmapped loop (M = 1 is plain CG): one compilation.
    phis = jax.vmap(lambda m: hf.pcg(a, g, zero, precond=m, max_iters=iters, eps=0.).phi)(
        jnp.stack([jnp.ones_like(precond), precond]))
    # Largest eigenvalue of A by power iteration, for NAG's step size 1/L.
    v0 = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)

    def power(v, _):
      w = a(v)
      return w / jnp.linalg.norm(w), None

    v, _ = jax.lax.scan(power, v0 / jnp.linalg.norm(v0), None, length=cfg["power_iters"])
    top = jnp.vdot(v, a(v))
    q = lambda x: 0.5 * jnp.vdot(x, a(x)) + jnp.vdot(g, x)

    def nag(mu):
      # v_{t+1} = mu v_t - eps grad q(x_t + mu v_t), x_{t+1} = x_t + v_{t+1} (docs/paper.md sec. 1).
      def body(carry, _):
        x, vel = carry
        vel = mu * vel - (a(x + mu * vel) + g) / top
        x = x + vel
        return (x, vel), q(x)
      _, qs = jax.lax.scan(body, (zero, zero), None, length=iters)
      return jnp.concatenate([jnp.zeros([1], qs.dtype), qs])

    nag_q = jax.lax.map(nag, jnp.asarray(cfg["quad_mus"], flat.dtype))
    return dict(cg=phis[0], pcg=phis[1], nag=nag_q, top=top)

  out = jax.device_get(build_and_solve(flat, lam, data[captured["gidx"]],
                                      data[captured["cidx"]]))
  # q*: the lowest value any solver reached (float32: differences below ~1e-6 |q*| are noise).
  q_ref = float(min(out["cg"].min(), out["pcg"].min(), out["nag"].min()))
  return dict(
      iterations=list(range(iters + 1)), damping=float(lam), top_eigenvalue=float(out["top"]),
      q_reference=q_ref, cg=out["cg"].tolist(), pcg=out["pcg"].tolist(),
      nag={str(mu): q.tolist() for mu, q in zip(cfg["quad_mus"], out["nag"])})
