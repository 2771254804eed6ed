"""Training throughput against the machine's matmul rate and a plain PyTorch loop.

    python -m experiments.benchmark [--quick] [--out benchmark.json]

Measures, in one process and on the default JAX device:

- the machine's matmul rate: a large float32 GEMM through JAX (GFLOP/s, median of repeats);
- autoencoder training (CURVES and MNIST sizes, batch 200, NAG with the paper's momentum schedule)
  through the real engine (``mominit.train.Engine.run_chunk``) for populations of 1, 4 and 16:
  updates/s and achieved GFLOP/s, with the model FLOPs per update of one member counted as
  ``6 x batch x weights`` (forward 2, backward 4 FLOPs per weight and case; biases, non-linearities
  and the optimizer are not counted). The data is synthetic: uniform random pixels with the real
  training-set shape ([20000, 784] and [60000, 784]), which costs the same as the real images;
- RNN training (addition, T=80, batch 100, 100 tanh units) for populations of 1, 8 and 32, with
  ``6 x batch x length x weights`` FLOPs per update (length = the padded sequence length the
  engine computes, 87 for T=80), and that workload's own limit: a ``lax.scan`` doing only the
  RNN's sequential matmuls (forward h W, backward g W^T and h^T g), with no training around them;
- the same two trainings written as a plain PyTorch loop (``torch.optim.SGD(nesterov=True)``
  with the same momentum schedule, ``torch.set_flush_denormal(True)``, all CPU threads), the peer
  a user would otherwise pick; PyTorch is optional (``pip install -e ".[bench]"``), and without it
  those rows say so;
- the compile time of the engine's first chunk;
- PyTorch's own matmul rate (the same GEMM through ``torch.mm``), and for each autoencoder the
  ratio to PyTorch that a loop would reach with every executed matmul at the JAX GEMM rate and
  nothing else (``ceiling_ratio_at_matmul_rate``): the most any engine could show.

The engine runs on the devices ``experiments/`` gives jax: on a CPU one device per core
(``JAX_NUM_CPU_DEVICES``), with each population placed by ``Engine.layout`` (the ``devices``
column); the RNN limit scan is placed the same way.

Every rate is the median of repeats. The repeats of the numbers a row compares (the GEMM, the
engine at each population size, the RNN limit scans and the PyTorch loop of one workload) run
round-robin, so that a burst of load from other processes slows them alike. The benchmark prints
one table and writes every number to JSON with the machine, the library versions, the load
average around each workload, and the date. Timings on a shared machine are only meaningful
when the load average stays below the number of cores: the table shows it.
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from experiments import argtypes
from experiments import host

# Targets of issue 7 (checked and reported, never enforced by the benchmark).
TARGETS = {"autoencoder_fraction_of_matmul": 0.85, "autoencoder_vs_torch": 1.5,
           "rnn_fraction_of_limit": 0.70, "rnn_vs_torch": 2.0}

# Full and quick settings. `chunk` is the number of updates per timed engine call for a
# population of 1; larger populations use chunk / population (at least `min_chunk`).
FULL = {
    "gemm_size": 4096, "repeats": 5,
    "autoencoders": {"curves": (1, 4, 16), "mnist": (1, 4, 16)},
    "ae_train_cases": {"curves": 20_000, "mnist": 60_000},
    "ae_chunk": 100, "rnn_populations": (1, 8, 32), "rnn_chunk": 100, "min_chunk": 5,
    "torch_steps": {"autoencoder": 50, "rnn": 50},
    "meta_gradient": {"inputs": 784, "hidden": 20, "unroll": 20},
}
QUICK = {
    "gemm_size": 512, "repeats": 2,
    "autoencoders": {"curves": (1, 2)},
    "ae_train_cases": {"curves": 1_000, "mnist": 1_000},
    "ae_chunk": 4, "rnn_populations": (1, 2), "rnn_chunk": 4, "min_chunk": 2,
    "torch_steps": {"autoencoder": 3, "rnn": 3},
    "meta_gradient": {"inputs": 49, "hidden": 4, "unroll": 2},
}
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


# ---------------------------------------------------------------------------------------------
# The PyTorch peer.


def _torch():
  """The ``torch`` module set up for a fair CPU comparison, or None if it is not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  torch.set_flush_denormal(True)
  return torch


def torch_autoencoder(torch, name: str, num_train: int, momentum_fn,
                      learning_rate: float = 0.005, batch: int = AE_BATCH, seed: int = 0):
  """A plain PyTorch training loop of autoencoder ``name``: returns the training objects.

  The net mirrors ``mominit.models.autoencoder``: logistic hidden units, a linear code layer
  and logistic outputs trained with the summed-over-pixels cross-entropy, averaged over cases.
  Minibatches come from a per-epoch ``torch.randperm`` of the training set.

  Args:
    torch: the ``torch`` module (see ``_torch``).
    name: "curves" or "mnist" (the layer sizes of ``mominit.models.AUTOENCODER_SIZES``).
    num_train: training cases (uniform random pixels).
    momentum_fn: ``t -> mu_t`` as a Python float (set on the optimizer before every update).
    learning_rate: eps.
    batch: minibatch size.
    seed: ``torch.manual_seed`` for the initial weights and the data.

  Returns:
    dict with ``model``, ``optimizer``, ``data`` ([N, D] tensor), ``state`` (``t`` and the
    epoch's ``order``) and ``step()`` (one update; returns the loss).
  """
  nn = torch.nn
  torch.manual_seed(seed)
  layers = autoencoder_layers(name)
  code = len(layers) // 2 - 1
  modules = []
  for i, (fan_in, fan_out) in enumerate(layers):
    modules.append(nn.Linear(fan_in, fan_out))
    if i != code and i != len(layers) - 1:
      modules.append(nn.Sigmoid())
  model = nn.Sequential(*modules)
  data = torch.rand(num_train, layers[0][0], generator=torch.Generator().manual_seed(seed))
  optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate,
                              momentum=float(momentum_fn(0)), nesterov=True)
  loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
  steps_per_epoch = num_train // batch
  state = {"t": 0, "order": None}

  def step():
    t = state["t"]
    if t % steps_per_epoch == 0:
      state["order"] = torch.randperm(num_train)
    idx = state["order"][(t % steps_per_epoch) * batch:(t % steps_per_epoch + 1) * batch]
    x = data[idx]
    for group in optimizer.param_groups:
      group["momentum"] = float(momentum_fn(t))
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), x) / batch
    loss.backward()
    optimizer.step()
    state["t"] = t + 1
    return loss.detach()

  return {"model": model, "optimizer": optimizer, "data": data, "state": state, "step": step}


def torch_rnn(torch, task, momentum_fn, learning_rate: float = 1e-4, batch: int = RNN_BATCH,
              hidden: int = RNN_HIDDEN, seed: int = 0, pool: int = 8):
  """A plain PyTorch training loop of the tanh RNN (``torch.nn.RNN`` + a linear readout).

  Minibatches are drawn beforehand from ``task.sample`` (a pool of ``pool`` batches used in
  turn), so data generation is not timed for PyTorch (the JAX engine samples on the device
  inside its timed step). The loss is the masked squared error of ``mominit.losses``.

  Args:
    torch: the ``torch`` module.
    task: a ``mominit.tasks`` problem with a linear readout (e.g. addition).
    momentum_fn, learning_rate, batch, seed: as for ``torch_autoencoder``.
    hidden: tanh units.
    pool: number of pre-drawn minibatches.

  Returns:
    dict with ``model`` (``(rnn, readout)``), ``optimizer``, ``batches`` (the pool, as
    ``(inputs, targets, mask)`` tensors) and ``step()``.
  """
  nn = torch.nn
  torch.manual_seed(seed)
  rnn = nn.RNN(task.num_inputs, hidden, nonlinearity="tanh", batch_first=True)
  readout = nn.Linear(hidden, task.num_outputs)
  params = list(rnn.parameters()) + list(readout.parameters())
  optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=float(momentum_fn(0)),
                              nesterov=True)
  keys = jax.random.split(jax.random.PRNGKey(seed), pool)
  batches = []
  for key in keys:
    b = task.sample(key, batch)
    batches.append(tuple(torch.from_numpy(np.array(x, np.float32)) for x in b))
  state = {"t": 0}

  def step():
    t = state["t"]
    inputs, targets, mask = batches[t % pool]
    for group in optimizer.param_groups:
      group["momentum"] = float(momentum_fn(t))
    optimizer.zero_grad(set_to_none=True)
    hs, _ = rnn(inputs)
    out = readout(hs)
    loss = (((out - targets) ** 2).sum(-1) * mask).sum() / mask.sum()
    loss.backward()
    optimizer.step()
    state["t"] = t + 1
    return loss.detach()

  return {"model": (rnn, readout), "optimizer": optimizer, "batches": batches, "step": step}


def schedule_table(schedule, steps: int):
  """A JAX momentum schedule as a host-side lookup ``t -> float`` for the PyTorch loops (so
  they do not dispatch a JAX computation at every update); constant after ``steps``."""
  values = np.asarray(schedule(jnp.arange(steps + 1)), np.float64).tolist()
  return lambda t: values[min(t, steps)]


def torch_timer(step, steps: int) -> Timer:
  """``steps`` updates of a PyTorch loop per repeat (after 3 warm-up updates); units are
  updates."""
  for _ in range(3):  # allocator, thread pool
    step()

  def once():
    for _ in range(steps):
      step()

  return Timer(once, steps, steps=steps)


# ---------------------------------------------------------------------------------------------
# The benchmark.


def _versions(torch) -> dict:
  import flax  # pylint: disable=import-outside-toplevel
  import jaxlib  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  return {"python": platform.python_version(), "jax": jax.__version__,
          "jaxlib": jaxlib.__version__, "flax": flax.__version__, "optax": optax.__version__,
          "numpy": np.__version__, "torch": torch.__version__ if torch is not None else None}


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _machine() -> dict:
  return {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
          "jax_backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()],
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _load() -> Optional[list[float]]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return None


def run(quick: bool = False, log=print) -> dict:
  """Runs every measurement and returns the results (the JSON document) as a dict.

  Args:
    quick: small sizes and few repeats (a smoke test of every code path, seconds long; its
      numbers mean nothing).
    log: called with progress lines.
  """
  from mominit import schedules  # pylint: disable=import-outside-toplevel
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  from mominit import train  # pylint: disable=import-outside-toplevel
  settings = QUICK if quick else FULL
  torch = _torch()
  result: dict[str, Any] = {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "quick": quick, "machine": _machine(), "versions": _versions(torch),
      "load_average": {"before": _load()}, "targets": dict(TARGETS),
      "notes": [
          "Autoencoder data is synthetic (uniform random pixels of the real training-set "
          "shape); training cost does not depend on the pixel values.",
          "Model FLOPs per update: autoencoders 6 x batch x weights, RNN 6 x batch x length x "
          "weights (biases, non-linearities and the optimizer not counted).",
          "updates/s is population updates per second; member-updates/s multiplies it by the "
          "population; GFLOP/s counts every member.",
          "Ratios to PyTorch compare member-updates/s with one PyTorch training loop.",
          "load_average: the 1-, 5- and 15-minute load averages before and after each "
          "measurement; with more runnable processes than cores the timings mean little.",
      ]}
  repeats = settings["repeats"]
  skipped = {"skipped": "PyTorch is not installed (pip install -e \".[bench]\")"}
  log(f"matmul rate: {settings['gemm_size']}^3 float32 GEMM ...")
  gemm = gemm_timer(settings["gemm_size"])
  torch_gemm = torch_gemm_timer(torch, settings["gemm_size"]) if torch is not None else None
  rows, peers, limits = [], {}, {}
  result["flops_per_update"] = {}

  def measure(group, timers, peer):
    """Round-robin repeats of the GEMM, a group's engine timers, its limit timers and its
    PyTorch peer; records the load average around them."""
    log(f"timing {group}: {repeats} interleaved rounds ...")
    load = _load()
    everything = [gemm] + timers + list(limits.get(group, {}).values()) + (
        [peer, torch_gemm] if peer else [])
    interleave(everything, repeats)
    after = _load()
    for timer in timers:
      rows.append({"workload": group, **_engine_row(timer), "load_average": [load, after]})
    peers[group] = skipped if peer is None else {
        "updates_per_s": peer.rate, "steps": peer.info["steps"], "seconds": peer.seconds,
        "load_average": [load, after]}

  for name, populations in settings["autoencoders"].items():
    flops = autoencoder_flops(name)
    result["flops_per_update"][name] = {
        "formula": "6 x batch x weights", "batch": AE_BATCH,
        "weights": autoencoder_weights(name), "layers": autoencoder_layers(name),
        "flops": flops, "executed_flops": autoencoder_executed_flops(name)}
    config = train.default_config("autoencoder")
    config.dataset = name
    data = synthetic_dataset(settings["ae_train_cases"][name])
    timers = []
    for p in populations:
      chunk = max(settings["min_chunk"], settings["ae_chunk"] // p)
      log(f"engine: {name} autoencoder, population {p}, chunks of {chunk} (compiling) ...")
      timers.append(engine_timer(config, p, chunk, data=data))
    peer = None
    if torch is not None:
      steps = settings["torch_steps"]["autoencoder"]
      mu = schedules.final_phase(schedules.sutskever_momentum(0.99, period=250),
                                 config.steps, config.final_steps, config.final_mu)
      peer = torch_timer(torch_autoencoder(
          torch, name, settings["ae_train_cases"][name],
          schedule_table(mu, 3 + steps * repeats))["step"], steps)
    measure(name, timers, peer)
    del timers, data

  config = train.default_config("rnn")
  config.task_kwargs = {"T": RNN_T}
  config.hidden, config.batch_size = RNN_HIDDEN, RNN_BATCH
  task = tasks.make(config.task, center=config.center, T=RNN_T)
  length = task.max_len
  flops = rnn_flops(length, inputs=task.num_inputs, outputs=task.num_outputs)
  result["flops_per_update"]["rnn"] = {
      "formula": "6 x batch x length x weights", "batch": RNN_BATCH, "length": length,
      "weights": rnn_weights(RNN_HIDDEN, task.num_inputs, task.num_outputs), "flops": flops,
      "limit_flops": rnn_limit_flops(length)}
  timers, limits["rnn"] = [], {}
  for p in settings["rnn_populations"]:
    chunk = max(settings["min_chunk"], settings["rnn_chunk"] // p)
    log(f"engine: RNN addition T={RNN_T}, population {p}, chunks of {chunk} (compiling) ...")
    timers.append(engine_timer(config, p, chunk))
    limits["rnn"][p] = rnn_limit_timer(p, length, engine=timers[-1].info["engine"])
  peer = None
  if torch is not None:
    steps = settings["torch_steps"]["rnn"]
    mu = schedules.rnn_momentum(0.995, warm_mu=config.warm_mu, warm_steps=config.warm_steps)
    peer = torch_timer(torch_rnn(torch, task, schedule_table(mu, 3 + steps * repeats))["step"],
                       steps)
  measure("rnn", timers, peer)
  del timers

  mg = settings["meta_gradient"]
  log(f"meta-gradient: RNNprop through {mg['unroll']}-step truncations of a "
      f"{mg['inputs']}-{mg['hidden']}-10 MLP (compiling) ...")
  meta_timer, meta_limit = meta_gradient_timers(**mg)
  load = _load()
  interleave([gemm, meta_timer, meta_limit], repeats)
  meta_load = [load, _load()]

  peak = gemm.rate / 1e9
  result["meta_gradient"] = meta_gradient_row(meta_timer, meta_limit, peak, meta_load)
  result["matmul"] = {"n": gemm.info["n"], "flops": gemm.units, "gflops": peak,
                      "seconds": gemm.seconds}
  if torch_gemm is not None:
    result["torch_matmul"] = {"n": torch_gemm.info["n"], "gflops": torch_gemm.rate / 1e9,
                              "seconds": torch_gemm.seconds}
  result["rnn_limit"] = [{"population": p, "flops": t.units, "gflops": t.rate / 1e9,
                          "layout": t.info["layout"], "seconds": t.seconds}
                         for p, t in limits["rnn"].items()]
  limit_of = {p: t.rate / 1e9 for p, t in limits["rnn"].items()}
  for row in rows:
    row["flops_per_update"] = result["flops_per_update"][row["workload"]]["flops"]
    row["kind"] = "rnn" if row["workload"] == "rnn" else "autoencoder"
    row["gflops"] = row["member_updates_per_s"] * row["flops_per_update"] / 1e9
    row["limit_gflops"] = limit_of[row["population"]] if row["kind"] == "rnn" else peak
  for name, peer in peers.items():
    if "updates_per_s" in peer:
      counts = result["flops_per_update"][name]
      peer["gflops"] = peer["updates_per_s"] * counts["flops"] / 1e9
      if "executed_flops" in counts:
        peer["ceiling_ratio_at_matmul_rate"] = ceiling_ratio(
            gemm.rate, counts["executed_flops"], peer["updates_per_s"])
  result["torch"] = {"available": torch is not None, **peers}
  if torch is not None:
    result["torch"]["threads"] = torch.get_num_threads()

  for row in rows:
    row["fraction_of_matmul"] = row["gflops"] / peak
    row["fraction_of_limit"] = row["gflops"] / row["limit_gflops"]
    peer = result["torch"][row["workload"]]
    row["torch_ratio"] = (row["member_updates_per_s"] / peer["updates_per_s"]
                          if "updates_per_s" in peer else None)
  result["rows"] = rows
  result["checks"] = _checks(rows, result["torch"]["available"])
  result["load_average"]["after"] = _load()
  return result


def _checks(rows, have_torch: bool) -> dict:
  """The issue's targets against the measured rows (True / False / None = not measurable)."""
  by = {(r["workload"], r["population"]): r for r in rows}
  out = {}
  for name in ("curves", "mnist"):
    r = by.get((name, 1))
    if r is not None:
      out[f"{name}_p1_fraction_of_matmul>=0.85"] = r["fraction_of_matmul"] >= 0.85
      out[f"{name}_p1_vs_torch>=1.5"] = (r["torch_ratio"] >= 1.5 if have_torch else None)
  rnn = sorted((r for r in rows if r["workload"] == "rnn"), key=lambda r: r["population"])
  if rnn:
    one, big = rnn[0], rnn[-1]
    out["rnn_p1_fraction_of_limit>=0.70"] = one["fraction_of_limit"] >= 0.70
    out["rnn_p1_vs_torch>=2"] = one["torch_ratio"] >= 2.0 if have_torch else None
    out[f"rnn_p{big['population']}_per_member>=p1"] = (
        big["member_updates_per_s"] / big["population"] >= one["member_updates_per_s"])
  return out


def _load_text(pair) -> str:
  """The larger 1-minute load average of a measurement's start and end, as text."""
  if not pair or None in pair:
    return "?"
  return f"{max(p[0] for p in pair):.1f}"


def table(result: dict) -> str:
  """The results as one fixed-width text table."""
  head = (f"{'workload':10s} {'pop':>4s} {'devices':>9s} {'updates/s':>10s} {'member-upd/s':>12s} "
          f"{'GFLOP/s':>8s} {'of matmul':>9s} {'of limit':>8s} {'vs PyTorch':>10s} "
          f"{'compile s':>9s} {'load':>5s}")
  lines = [head, "-" * len(head)]
  for r in result["rows"]:
    ratio = "n/a" if r["torch_ratio"] is None else f"{r['torch_ratio']:.2f}x"
    limit = "" if r["kind"] == "autoencoder" else f"{100 * r['fraction_of_limit']:.0f}%"
    placed = "1" if r["layout"] == "single" else f"{r['devices']} {r['layout'][:5]}"
    lines.append(
        f"{r['workload']:10s} {r['population']:4d} {placed:>9s} {r['steps_per_s']:10.1f} "
        f"{r['member_updates_per_s']:12.1f} {r['gflops']:8.1f} "
        f"{100 * r['fraction_of_matmul']:8.0f}% {limit:>8s} {ratio:>10s} {r['compile_s']:9.1f} "
        f"{_load_text(r.get('load_average')):>5s}")
  for name, t in result["torch"].items():
    if not isinstance(t, dict):
      continue
    if "skipped" in t:
      lines.append(f"{'torch ' + name:15s} skipped: {t['skipped']}")
    else:
      ceiling = t.get("ceiling_ratio_at_matmul_rate")
      ceiling = "" if ceiling is None else (
          f"   (every matmul at the JAX GEMM rate, nothing else: {ceiling:.2f}x)")
      lines.append(f"{'torch ' + name:15s} {t['updates_per_s']:10.1f} updates/s "
                   f"{t['gflops']:8.1f} GFLOP/s   load {_load_text(t.get('load_average'))}"
                   f"{ceiling}")
  m = result["matmul"]
  lines.append(f"matmul rate: {m['gflops']:.1f} GFLOP/s ({m['n']}^3 float32 GEMM, median)")
  if "torch_matmul" in result:
    lines.append(f"PyTorch's matmul rate: {result['torch_matmul']['gflops']:.1f} GFLOP/s "
                 f"(the same GEMM through torch.mm)")
  m = result.get("meta_gradient")
  if m:
    lines.append(f"meta-gradient ({m['problem']}, unroll {m['unroll']}): "
                 f"{m['inner_steps_per_s']:.1f} inner steps/s, {m['gflops']:.1f} GFLOP/s = "
                 f"{100 * m['fraction_of_limit']:.0f}% of its own matmul limit "
                 f"({m['limit_gflops']:.1f} GFLOP/s), compile {m['compile_s']:.1f} s, "
                 f"load {_load_text(m['load_average'])}")
  for limit in result["rnn_limit"]:
    lines.append(f"RNN limit (matmul scan), population {limit['population']} "
                 f"({limit['layout']}): {limit['gflops']:.1f} GFLOP/s")
  for name, f in result["flops_per_update"].items():
    lines.append(f"FLOPs/update {name}: {f['flops']:,} = {f['formula']} "
                 f"({f['weights']:,} weights)")
  lines.append(f"load average before {result['load_average']['before']}, "
               f"after {result['load_average']['after']}; {result['machine']['cpu']}, "
               f"{result['machine']['cpu_count']} CPUs")
  return "\n".join(lines)


def main(argv=None) -> dict:
  """Command-line entry point; returns the results dict."""
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="small sizes, few repeats: checks that everything runs")
  parser.add_argument("--out", default="benchmark.json", type=argtypes.output_file,
                      help="JSON output path")
  args = parser.parse_args(argv)
  t0 = time.perf_counter()
  result = run(quick=args.quick, log=lambda s: print(s, file=sys.stderr, flush=True))
  result["wall_s"] = time.perf_counter() - t0
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1, default=float) + "\n")
  print(table(result))
  print(f"wrote {out}")
  return result


if __name__ == "__main__":
  main()
