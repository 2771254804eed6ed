"""The benchmark's workloads: FLOP counts, timers, the engine, the RNN limit, the meta-gradient.

Each measurement is a `Timer`; ``experiments.benchmark`` runs them round-robin and builds the
table (the PyTorch peer loops are in ``experiments.bench_torch``). Every name here is also
importable from ``experiments.benchmark``.
"""
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

AE_BATCH, RNN_BATCH, RNN_HIDDEN, RNN_T = 200, 100, 100, 80


# ---------------------------------------------------------------------------------------------
# FLOP counts.


def autoencoder_layers(name: str) -> list[tuple[int, int]]:
  """(fan_in, fan_out) of every Dense layer of autoencoder ``name``, input to output."""
  from mominit import models  # pylint: disable=import-outside-toplevel
  sizes = models.AUTOENCODER_SIZES[name]
  units = tuple(sizes) + tuple(sizes[-2::-1])
  return list(zip(units[:-1], units[1:]))


def autoencoder_weights(name: str) -> int:
  """Number of weights (kernel entries, no biases) of autoencoder ``name``."""
  return sum(a * b for a, b in autoencoder_layers(name))


def autoencoder_flops(name: str, batch: int = AE_BATCH) -> int:
  """Model FLOPs of one update of one member: 6 x batch x weights (forward 2, backward 4)."""
  return 6 * batch * autoencoder_weights(name)


def autoencoder_executed_flops(name: str, batch: int = AE_BATCH) -> int:
  """FLOPs of the matmuls one update of one member actually executes: the model FLOPs less the
  input gradient of the first layer (2 x batch x fan_in x fan_out), which nothing needs."""
  fan_in, fan_out = autoencoder_layers(name)[0]
  return autoencoder_flops(name, batch) - 2 * batch * fan_in * fan_out


def rnn_weights(hidden: int = RNN_HIDDEN, inputs: int = 2, outputs: int = 1) -> int:
  """Weights of the tanh RNN per time step: W_xh [I, H] + W_hh [H, H] + W_hy [H, O]."""
  return inputs * hidden + hidden * hidden + hidden * outputs


def rnn_flops(length: int, batch: int = RNN_BATCH, hidden: int = RNN_HIDDEN, inputs: int = 2,
              outputs: int = 1) -> int:
  """Model FLOPs of one RNN update of one member: 6 x batch x length x weights."""
  return 6 * batch * length * rnn_weights(hidden, inputs, outputs)


def rnn_limit_flops(length: int, batch: int = RNN_BATCH, hidden: int = RNN_HIDDEN) -> int:
  """FLOPs of the limit scan for one member: 3 matmuls [B, H] x [H, H] per time step."""
  return 3 * 2 * batch * hidden * hidden * length


# ---------------------------------------------------------------------------------------------
# Timing. Every measurement is a `Timer` that runs one repeat at a time, and the repeats of all
# measurements that are compared with each other run round-robin (`interleave`): on a shared
# machine a burst of load then slows every measurement alike instead of one row of the table.


class Timer:
  """One measurement: ``once()`` runs one repeat (blocking) and does ``units`` of work.

  Attributes:
    units: work per repeat (FLOPs, updates, ...).
    seconds: wall time of every timed repeat so far.
    info: extra numbers for the JSON (compile time, chunk length, ...).
  """

  def __init__(self, once, units: float, **info):
    self.once, self.units, self.info, self.seconds = once, units, info, []

  def time_once(self) -> None:
    t0 = time.perf_counter()
    self.once()
    self.seconds.append(time.perf_counter() - t0)

  @property
  def rate(self) -> float:
    """Units per second over the median repeat."""
    return self.units / statistics.median(self.seconds)


def interleave(timers, repeats: int) -> None:
  """Times ``repeats`` rounds, each running every timer once, in order."""
  for _ in range(repeats):
    for timer in timers:
      timer.time_once()


def gemm_timer(n: int) -> Timer:
  """An [n, n] x [n, n] float32 GEMM through ``jax.jit``; units are FLOPs (2 n^3)."""
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  gemm = jax.jit(jnp.matmul)
  gemm(a, b).block_until_ready()
  return Timer(lambda: gemm(a, b).block_until_ready(), 2 * n ** 3, n=n)


def ceiling_ratio(matmul_flops_per_s: float, executed_flops: float,
                  peer_updates_per_s: float) -> float:
  """The ratio to a peer's updates/s that a loop would reach if every matmul it executes
  (``executed_flops`` per update) ran at ``matmul_flops_per_s`` with nothing in between."""
  return matmul_flops_per_s / executed_flops / peer_updates_per_s


def torch_gemm_timer(torch, n: int) -> Timer:
  """The same GEMM through ``torch.mm`` (PyTorch's own BLAS): the matmul rate its loop draws on."""
  gen = torch.Generator().manual_seed(0)
  a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
  torch.mm(a, b)
  return Timer(lambda: torch.mm(a, b), 2 * n ** 3, n=n)


# ---------------------------------------------------------------------------------------------
# The engine.


def _members(population: int, kind: str) -> dict:
  """Sweep axes for ``population`` NAG members that differ only in their seed."""
  if kind == "autoencoder":
    return {"seed": list(range(population)), "rule": ["nag"], "mu_max": [0.99],
            "learning_rate": [0.005], "init_scale": [1.0]}
  return {"seed": list(range(population)), "rule": ["nag"], "mu_max": [0.995],
          "learning_rate": [1e-4], "input_scale": [0.0]}


def engine_timer(config, population: int, chunk: int, data=None) -> Timer:
  """``Engine.run_chunk`` of ``chunk`` updates for a population of seeds of ``config``.

  Builds the engine and runs (and times) the first, compiling chunk; each ``once()`` then runs
  the next chunk. Units are member-updates (population x chunk).

  Args:
    config: an engine config (``mominit.train.default_config``); its sweep is replaced.
    population: number of members.
    chunk: updates per timed ``run_chunk`` call.
    data: ``mominit.data.Dataset`` for autoencoders.

  Returns:
    A :class:`Timer` whose ``info`` holds ``population``, ``chunk``, ``first_chunk_s`` (trace +
    compile + one chunk) and the ``engine`` and its ``state`` (a one-element list).
  """
  from mominit import train  # pylint: disable=import-outside-toplevel
  config = config.copy_and_resolve_references()
  config.chunk, config.progress = chunk, False
  for axis, values in _members(population, config.kind).items():
    config.sweep[axis] = tuple(values)
  train.validate_config(config)
  engine = train.Engine(config, train.make_problem(config, data=data),
                        train.population(config))
  state = jax.block_until_ready(engine.init())
  t0 = time.perf_counter()
  state, _ = jax.block_until_ready(engine.run_chunk(state, 0, chunk))
  first = time.perf_counter() - t0
  holder = {"state": state, "start": chunk}

  def once():
    holder["state"], _ = jax.block_until_ready(
        engine.run_chunk(holder["state"], holder["start"], chunk))
    holder["start"] += chunk

  return Timer(once, population * chunk, population=population, chunk=chunk,
               first_chunk_s=first, engine=engine, holder=holder)


def _engine_row(timer: Timer) -> dict:
  """The JSON numbers of an engine timer."""
  info, median = timer.info, statistics.median(timer.seconds)
  p, chunk = info["population"], info["chunk"]
  return {"population": p, "chunk": chunk, "steps_per_s": chunk / median,
          "member_updates_per_s": p * chunk / median, "first_chunk_s": info["first_chunk_s"],
          "compile_s": max(info["first_chunk_s"] - median, 0.0), "seconds": timer.seconds,
          "alive": int(np.sum(np.asarray(info["holder"]["state"].alive)[:p])),
          "layout": info["engine"].layout, "devices": len(info["engine"].devices),
          "compilations": dict(info["engine"].trace_counts)}


def synthetic_dataset(num_train: int, num_test: int = 200, width: int = 784, seed: int = 0):
  """Uniform random pixels in [0, 1) of the real data's shape (``mominit.data.Dataset``)."""
  from mominit.data import Dataset  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  return Dataset(rng.random((num_train, width), dtype=np.float32),
                 rng.random((num_test, width), dtype=np.float32))


def rnn_limit_fn(length: int, layout: str = "single", mesh=None):
  """The RNN's own sequential matmuls with no training around them, vmapped over members.

  ``fn(w [P, H, H], h [P, B, H], g [P, B, H]) -> (g_0 [P, B, H], dw [P, H, H])``: a forward
  ``lax.scan`` of ``h <- h W`` over ``length`` steps that keeps every h (as autodiff does), then
  a reverse scan of ``dW <- dW + h_t^T g`` and ``g <- g W^T``: the [B, H] x [H, H] shapes the
  training step's recurrence computes, three matmuls per time step.

  It runs in the engine's layout (``mominit.train.Engine.layout``) so that it is the limit of
  the same placement: ``"cases"`` splits B over the devices of ``mesh`` (each device scans its
  cases; dW is summed over them at the end), ``"population"`` shards P over them.
  """

  def one(w, h, g):
    def forward(h, _):
      h = h @ w
      return h, h

    _, hs = jax.lax.scan(forward, h, None, length=length)

    def backward(carry, h):
      g, dw = carry
      return (g @ w.T, dw + h.T @ g), None

    (g, dw), _ = jax.lax.scan(backward, (g, jnp.zeros_like(w)), hs, reverse=True)
    return g, dw

  members = jax.vmap(one)
  if layout != "cases":
    return jax.jit(members)
  spec = jax.sharding.PartitionSpec
  cases = spec(None, "cases")

  def split(w, h, g):
    g, dw = members(w, h, g)
    return g, jax.lax.psum(dw, "cases")

  return jax.jit(jax.shard_map(split, mesh=mesh, in_specs=(spec(), cases, cases),
                               out_specs=(cases, spec()), check_vma=False))


def rnn_limit_timer(population: int, length: int, batch: int = RNN_BATCH,
                    hidden: int = RNN_HIDDEN, engine=None) -> Timer:
  """:func:`rnn_limit_fn` for ``population`` members, placed like ``engine`` (a
  ``mominit.train.Engine``; None = one device); units are FLOPs. W is orthogonal so the values
  neither blow up nor become denormal."""
  key = jax.random.PRNGKey(0)
  w = jnp.linalg.qr(jax.random.normal(key, (population, hidden, hidden), jnp.float32))[0]
  h0 = jax.random.normal(jax.random.fold_in(key, 1), (population, batch, hidden), jnp.float32)
  g0 = jax.random.normal(jax.random.fold_in(key, 2), (population, batch, hidden), jnp.float32)
  layout = "single" if engine is None else engine.layout
  mesh = None if engine is None else engine.mesh
  if layout == "population":
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("population"))
    w, h0, g0 = jax.device_put((w, h0, g0), sharding)
  elif layout == "cases":
    spec = jax.sharding.PartitionSpec
    w = jax.device_put(w, jax.sharding.NamedSharding(mesh, spec()))
    h0, g0 = jax.device_put((h0, g0), jax.sharding.NamedSharding(mesh, spec(None, "cases")))
  fn = rnn_limit_fn(length, layout, mesh)
  jax.block_until_ready(fn(w, h0, g0))
  return Timer(lambda: jax.block_until_ready(fn(w, h0, g0)),
               population * rnn_limit_flops(length, batch, hidden), population=population,
               layout=layout)


def meta_gradient_timers(inputs: int, hidden: int, unroll: int, batch: int = 128):
  """The learned optimizer's meta-gradient and its own matmul limit, as two timers.

  The first runs ``mominit.lopt.meta.make_meta_step`` (RNNprop, first-order, ``jax.checkpoint``
  on the body, one task) on an ``inputs``-``hidden``-10 sigmoid MLP (synthetic data, batch
  ``batch``); units are inner steps (``unroll`` per call). The second runs
  ``mominit.lopt.cost.limit_fn``: the same matmul shapes and nothing else; units are FLOPs.
  """
  import optax  # pylint: disable=import-outside-toplevel
  from mominit.lopt import cost, meta, networks, problems  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  problem = problems.mlp(rng.random((2048, inputs), dtype=np.float32),
                         rng.integers(0, 10, 2048).astype(np.int32), hidden=(hidden,),
                         batch_size=batch)
  theta = networks.init_rnnprop(jax.random.PRNGKey(0))
  opt = optax.adam(1e-4)
  step = meta.make_meta_step(problem, "rnnprop", unroll, "last", opt)
  runs = jax.vmap(lambda k: meta.init_run(problem, "rnnprop", theta, k))(
      jax.random.split(jax.random.PRNGKey(1), 1))
  state = [theta, opt.init(theta), runs]
  t0 = time.perf_counter()
  state[:] = jax.block_until_ready(step(*state, problem.data))[:3]
  first = time.perf_counter() - t0

  def once():
    state[:] = jax.block_until_ready(step(*state, problem.data))[:3]

  net, mlp_layers = cost.layer_shapes(theta), [(inputs, hidden), (hidden, 10)]
  flops = cost.flops_per_inner_step(net, mlp_layers, batch, unroll)
  timer = Timer(once, unroll, first_call_s=first, flops_per_inner_step=flops, unroll=unroll,
                problem=f"{inputs}-{hidden}-10 MLP ({problems.size(problem):,} coordinates)")
  fn, arrays = cost.limit_fn(net, mlp_layers, batch, unroll)
  x = arrays(jax.random.PRNGKey(2))
  jax.block_until_ready(fn(x))
  limit = Timer(lambda: jax.block_until_ready(fn(x)),
                unroll * cost.limit_flops_per_step(net, mlp_layers, batch))
  return timer, limit


def meta_gradient_row(timer: Timer, limit: Timer, peak_gflops: float, load) -> dict:
  """The meta-gradient's JSON numbers: inner steps/s, GFLOP/s (matmul FLOPs of
  ``mominit.lopt.cost.flops_per_inner_step``), its share of its own limit and of the GEMM."""
  info = timer.info
  gflops = timer.rate * info["flops_per_inner_step"] / 1e9
  return {"problem": info["problem"], "unroll": info["unroll"],
          "inner_steps_per_s": timer.rate, "flops_per_inner_step": info["flops_per_inner_step"],
          "gflops": gflops, "limit_gflops": limit.rate / 1e9,
          "fraction_of_limit": gflops / (limit.rate / 1e9),
          "fraction_of_matmul": gflops / peak_gflops,
          "compile_s": max(info["first_call_s"] - statistics.median(timer.seconds), 0.0),
          "seconds": timer.seconds, "limit_seconds": limit.seconds, "load_average": load}
