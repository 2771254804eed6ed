"""What a meta-gradient costs: its matmul FLOPs per inner step and a matmul-only limit scan.

The meta-gradient of one truncation (`mominit.lopt.meta.truncation_loss` under `jax.grad`, with
`jax.checkpoint` on the scan body) executes per inner step:

- the optimizee's gradient twice (the primal pass, and the backward pass's recomputation of the
  checkpointed body): 2 x (6 B W - 2 B I H_1) for an MLP with W weights, batch B, I inputs and
  H_1 first-layer units (the first layer's input gradient is never needed);
- the optimizer network's forward twice (primal and recomputation) and its backward once
  (input and weight gradients, 2 x forward): 4 N F - 2 N F_0, for N coordinates, F the network's
  matmul FLOPs per coordinate (`networks.matmul_flops`) and F_0 the first layer's (whose input,
  the features, needs no gradient);
- once per truncation, the meta-loss f(x_T) and its gradient in x: (6 B W - 2 B I H_1) / unroll
  per step.

`limit_fn` runs exactly these matmul shapes in a `lax.scan` with nothing else: the rate this
machine reaches on the meta-gradient's own matmuls, against which the benchmark reports the
meta-gradient's share (as the RNN row does with its limit scan).
"""
import math
from typing import Sequence

import jax
import jax.numpy as jnp


def layer_shapes(theta) -> list:
  """(fan_in, fan_out) of every matmul of the optimizer network, input to output."""
  layers = [theta["in"]] if "in" in theta else []
  layers += [theta[k] for k in sorted(k for k in theta if k.startswith("lstm_"))]
  layers.append(theta["out"])
  return [tuple(int(d) for d in layer["w"].shape) for layer in layers]


def flops_per_inner_step(net: Sequence[tuple], mlp: Sequence[tuple], batch: int,
                         unroll: int) -> float:
  """Matmul FLOPs per inner step of the checkpointed first-order meta-gradient.

  Args:
    net: (fan_in, fan_out) of the optimizer network's matmuls (`layer_shapes`).
    mlp: (fan_in, fan_out) of the optimizee MLP's layers.
    batch: optimizee minibatch B.
    unroll: inner steps per truncation.
  """
  n = sum(a * b + b for a, b in mlp)  # coordinates: weights and biases
  weights = sum(a * b for a, b in mlp)
  forward = sum(2 * a * b for a, b in net)
  first_in = 2 * net[0][0] * net[0][1]
  grad = 6 * batch * weights - 2 * batch * mlp[0][0] * mlp[0][1]
  return 2 * grad + n * (4 * forward - first_in) + grad / unroll


def limit_fn(net: Sequence[tuple], mlp: Sequence[tuple], batch: int, steps: int):
  """`fn(arrays) -> scalar`: `steps` iterations of the meta-gradient's matmuls per inner step
  (without the amortised meta-loss): per optimizer layer two forward [N, a] x [a, b], one
  input-gradient [N, b] x [b, a] (not the first layer) and one weight-gradient [a, N] x [N, b];
  per optimizee layer two forwards, two weight gradients and (but the first) two input
  gradients, [B, a] x [a, b] and so on. `arrays(key)` makes its inputs."""
  n = sum(a * b + b for a, b in mlp)

  def arrays(key):
    keys = iter(jax.random.split(key, 4 * (len(net) + len(mlp))))
    mk = lambda *s: jax.random.normal(next(keys), s, jnp.float32) / math.sqrt(s[-1])
    return ([(mk(n, a), mk(a, b), mk(n, b)) for a, b in net],
            [(mk(batch, a), mk(a, b), mk(batch, b)) for a, b in mlp])

  def fn(inputs):
    def body(acc, _):
      total = acc
      for k, (x, w, dy) in enumerate(inputs[0]):
        total += jnp.sum(x @ w) + jnp.sum((x + total * 1e-30) @ w)
        total += jnp.sum(x.T @ dy)
        if k:
          total += jnp.sum(dy @ w.T)
      for k, (x, w, dy) in enumerate(inputs[1]):
        for _ in range(2):
          total += jnp.sum((x + total * 1e-30) @ w) + jnp.sum(x.T @ dy)
          if k:
            total += jnp.sum(dy @ w.T)
      return total * 1e-30, None

    out, _ = jax.lax.scan(body, jnp.zeros([], jnp.float32), None, length=steps)
    return out

  return jax.jit(fn), arrays


def limit_flops_per_step(net: Sequence[tuple], mlp: Sequence[tuple], batch: int) -> float:
  """FLOPs of one iteration of `limit_fn` (the first bullet list of the module, without the
  amortised meta-loss)."""
  n = sum(a * b + b for a, b in mlp)
  net_f = sum(2 * a * b for a, b in net)
  first = 2 * net[0][0] * net[0][1]
  mlp_f = sum(2 * a * b for a, b in mlp)
  mlp_first = 2 * mlp[0][0] * mlp[0][1]
  return n * (4 * net_f - first) + 2 * (3 * batch * mlp_f - batch * mlp_first)
