"""The training engine: a whole sweep trains as one compiled, vmapped population.

A *population* is the cross product of the config's sweep axes (``seed``, ``rule``, ``mu_max``,
``learning_rate``, ``init_scale``, and for RNNs ``input_scale``). Members differ only in traced
values, so one ``jax.vmap`` covers them and one compilation serves the sweep: CM and NAG share
:func:`mominit.momentum_rule` with a traced 0/1 ``nesterov`` switch.

Training runs as jit-compiled chunks of at most ``config.chunk`` steps: a ``lax.fori_loop`` with
a traced trip count, so evaluation points that are not multiples of the chunk never trigger a
second compilation. Data stays on the device: autoencoder minibatches come from a per-member,
per-epoch permutation drawn from ``fold_in(data_key, epoch)``; RNN batches are sampled on the
device from ``fold_in(data_key, step)``. ``docs/performance.md`` has the throughput this reaches.

Between chunks the host evaluates the paper's error at ``mominit.theta`` (for NAG the stored
parameters are the look-ahead point), appends to ``metrics.jsonl``, updates a progress bar and
saves an orbax checkpoint; rerunning with the same ``workdir`` resumes from it and ends with the
same numbers as an uninterrupted run.

A member whose loss or parameters stop being finite is frozen at its last state with finite
parameters (its reported error may still be inf/NaN: those parameters can be large enough to
overflow the forward pass) and flagged with the step; the members are independent along the
population axis, so the others are not disturbed. With several devices the population axis is
sharded over a one-axis mesh; on a CPU split into several devices (one per core,
``JAX_NUM_CPU_DEVICES``), a population smaller than the device count either splits each
member's minibatch over the devices (RNNs) or uses fewer devices (:func:`_layout`).
"""
import contextlib
import dataclasses
import functools
import itertools
import json
import math
import pathlib
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mominit import losses
from mominit import momentum
from mominit import schedules

# Sweep axes and the per-member hyper-parameters they become. `rule` becomes the traced `nesterov`.
AXES = {
    "autoencoder": ("seed", "rule", "mu_max", "learning_rate", "init_scale"),
    "rnn": ("seed", "rule", "mu_max", "learning_rate", "input_scale"),
}
RULES = {"cm": 0.0, "nag": 1.0, "sgd": 0.0}


class MemberState(NamedTuple):
  """Training state of one member (a leading population axis is added by vmap).

  Attributes:
    params: model parameters (for NAG the look-ahead point phi_t).
    opt_state: the momentum transform's state.
    order: int32 [N] the current epoch's permutation of the training cases (autoencoders; a
      1-element placeholder for RNNs).
    alive: bool scalar, False once the member diverged.
    diverged_at: int32 scalar, the update count at which it diverged (-1 if it did not).
    loss: float scalar, the training loss of the last update it took.
  """
  params: Any
  opt_state: Any
  order: jax.Array
  alive: jax.Array
  diverged_at: jax.Array
  loss: jax.Array


# ---------------------------------------------------------------------------------------------
# Configuration: validation and the population.


def default_config(kind: str) -> ml_collections.ConfigDict:
  """Every field the engine reads, with the paper's protocol (PAPER.md sections 2, 4, 5) as
  defaults. ``configs/autoencoder.py`` and ``configs/rnn.py`` start from this.

  Args:
    kind: "autoencoder" or "rnn".
  """
  c = ml_collections.ConfigDict()
  c.kind = kind
  c.steps = 750_000 if kind == "autoencoder" else 50_000
  c.chunk = 500          # updates per compiled lax.scan call
  c.eval_every = 5_000   # updates between evaluations / checkpoints
  c.progress = True      # tqdm progress bar
  c.distributed = False  # call jax.distributed.initialize() (multi-host)
  c.checkpoint_every = 0  # updates between orbax checkpoints (0 = at every evaluation)
  # Sweep axes are tuples so the command line can override them (`--config.sweep.seed='(0, 1)'`);
  # assigning a list from Python works too (it becomes a tuple).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.seed = (0,)
  c.sweep.rule = ("nag", "cm")
  c.sweep.mu_max = (0.0, 0.9, 0.99, 0.995, 0.999) if kind == "autoencoder" else (
      0.0, 0.9, 0.98, 0.995)
  c.sweep.learning_rate = ((0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001) if kind == "autoencoder"
                           else (1e-3, 1e-4, 1e-5, 1e-6))
  if kind == "autoencoder":
    c.dataset = "curves"
    c.data_dir = ""        # folder with the real data files ("" = built-in / none)
    c.num_train = 0        # use only the first num_train training cases (0 = all)
    c.num_test = 0         # likewise for the test set
    c.init = "sparse"      # sparse | gaussian | glorot_standard | glorot_normalized
    c.activation = "sigmoid"
    c.batch_size = 200
    c.momentum_period = 250
    c.final_steps = 1000   # last updates with mu = final_mu (Table 2); 0 = off
    c.final_mu = 0.9
    c.sweep.init_scale = (1.0,)
    c.diagnostics_every = 0     # Glorot & Bengio layer statistics every N updates (0 = off)
    c.diagnostics_cases = 500   # training cases they are computed on
  else:
    c.task = "addition"
    c.task_kwargs = ml_collections.ConfigDict({"T": 80})
    c.center = True
    c.hidden = 100
    c.batch_size = 100
    c.warm_mu = 0.9        # mu for the first warm_steps updates (section 2)
    c.warm_steps = 1000
    c.eval_sequences = 1000  # fresh sequences for the zero-one error
    c.sweep.input_scale = (0.0,)  # 0 = the task's Table 4 default
  return c


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks a config before anything is built or compiled.

  Raises:
    ValueError: with a message naming the field, for unknown keys, empty axes, mu outside [0, 1),
      learning rates that are not finite and positive, non-positive step counts, unknown rules,
      datasets or tasks.
  """
  kind = config.get("kind")
  if kind not in AXES:
    raise ValueError(f"config.kind must be one of {sorted(AXES)}, got {kind!r}")
  reference = default_config(kind)
  _check_keys(config, reference, "config")
  for name in ("steps", "chunk", "eval_every", "batch_size"):
    if int(config[name]) <= 0:
      raise ValueError(f"config.{name} must be a positive integer, got {config[name]!r}")
  for name in ("checkpoint_every", "diagnostics_every"):
    if name in config and int(config[name]) < 0:
      raise ValueError(f"config.{name} must be >= 0 (0 = default behaviour), got "
                       f"{config[name]!r}")
  if kind == "autoencoder" and int(config.diagnostics_cases) <= 0:
    raise ValueError(f"config.diagnostics_cases must be positive, got {config.diagnostics_cases}")
  if kind == "autoencoder":
    if not 0 <= config.final_steps < config.steps:
      raise ValueError(f"config.final_steps must be in [0, steps={config.steps}), "
                       f"got {config.final_steps}")
    if not 0.0 <= config.final_mu < 1.0:
      raise ValueError(f"config.final_mu must be in [0, 1), got {config.final_mu}")
    from mominit import data  # pylint: disable=import-outside-toplevel
    if config.dataset not in data.NAMES:
      raise ValueError(f"unknown dataset {config.dataset!r}; valid: {sorted(data.NAMES)}")
  else:
    from mominit import tasks  # pylint: disable=import-outside-toplevel
    tasks.make(config.task, **dict(config.task_kwargs))  # raises for unknown names / arguments
  sweep = config.sweep
  for axis in AXES[kind]:
    values = list(sweep[axis])
    if not values:
      raise ValueError(f"config.sweep.{axis} is empty: every sweep axis needs at least one value")
    for v in values:
      if axis == "rule" and v not in RULES:
        raise ValueError(f"config.sweep.rule: unknown rule {v!r}; valid: {sorted(RULES)}")
      if axis == "mu_max" and not (0.0 <= float(v) < 1.0):
        raise ValueError(f"config.sweep.mu_max: momentum must be in [0, 1), got {v!r}")
      if axis == "learning_rate" and not (math.isfinite(float(v)) and float(v) > 0):
        raise ValueError(f"config.sweep.learning_rate: must be finite and > 0, got {v!r}")
      if axis in ("init_scale", "input_scale") and not (
          math.isfinite(float(v)) and float(v) >= 0):
        raise ValueError(f"config.sweep.{axis}: must be finite and >= 0, got {v!r}")
      if axis == "seed" and (int(v) != v or v < 0):
        raise ValueError(f"config.sweep.seed: seeds are non-negative integers, got {v!r}")


def _check_keys(config, reference, where):
  unknown = sorted(set(config.keys()) - set(reference.keys()))
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(reference.keys())}")
  for key in config.keys():
    if isinstance(reference[key], ml_collections.ConfigDict) and key != "task_kwargs":
      _check_keys(config[key], reference[key], f"{where}.{key}")


def population(config: ml_collections.ConfigDict) -> list[dict]:
  """The members of a sweep: the cross product of ``config.sweep``'s axes, in row-major order.

  A member with ``mu_max == 0`` is plain SGD whatever its rule, so its rule is reported as
  ``"sgd"`` and duplicates that differ only in rule are dropped.

  Returns:
    A list of dicts, one per member, with one entry per axis.
  """
  axes = AXES[config.kind]
  members, seen = [], set()
  for values in itertools.product(*(list(config.sweep[a]) for a in axes)):
    member = dict(zip(axes, values))
    if float(member["mu_max"]) == 0.0:
      member["rule"] = "sgd"
    key = tuple(member[a] for a in axes)
    if key not in seen:
      seen.add(key)
      members.append(member)
  return members


def _hparams(members: list[dict]) -> dict:
  """Member dicts -> a dict of [P] arrays, the traced hyper-parameters of the population."""
  out = {"seed": np.array([m["seed"] for m in members], np.uint32),
         "nesterov": np.array([RULES[m["rule"]] for m in members], np.float32)}
  for name in ("mu_max", "learning_rate", "init_scale", "input_scale"):
    if name in members[0]:
      out[name] = np.array([m[name] for m in members], np.float32)
  return out


# ---------------------------------------------------------------------------------------------
# The problem: model, data, loss and error, for one member.


@dataclasses.dataclass(frozen=True)
class Problem:
  """What one member trains, written for a single member (the engine vmaps it).

  Attributes:
    init_params: (key, hp, data) -> params.
    loss: (params, key, step, order, data) -> scalar training loss on the step's minibatch.
    evaluate: (params, key, data) -> dict of scalar errors, at the given parameters.
    momentum: (hp) -> optax schedule for mu_t.
    data: the arrays the functions read (a dict; empty for RNNs). They are passed to the jitted
      functions as arguments, not captured, so they are not baked into the compiled program.
    num_train: number of training cases (autoencoders; 0 for RNNs).
    error_names: the keys ``evaluate`` returns.
    batch_members_on_cpu: whether a population on a CPU device trains as one vmapped batch
      (True) or member after member inside the compiled step (False; with several CPU devices,
      each device runs its share of the members one after another). On GPUs and TPUs members
      are always vmapped.
    split_cases_on_cpu: whether, when a population has fewer members than there are CPU
      devices, each member's minibatch is split over all the devices (True; the loss must pass
      its minibatch through :func:`shard_cases`) or the population uses only as many devices as
      it has members (False).
  """
  init_params: Callable
  loss: Callable
  evaluate: Callable
  momentum: Callable
  data: dict
  num_train: int
  error_names: tuple
  batch_members_on_cpu: bool = True
  split_cases_on_cpu: bool = False


CASES = "cases"  # the mesh axis a minibatch is split over (see `shard_cases`)


def shard_cases(tree):
  """Splits the leading (case) axis of every leaf over the engine's ``"cases"`` mesh axis.

  The engine traces a problem under that mesh only when it splits each member's minibatch over
  several CPU devices (:class:`Engine`, ``layout == "cases"``); everywhere else, and for a leaf
  whose case count the devices do not divide, this returns its input unchanged. XLA propagates
  the split from the minibatch through the model, so each device computes its cases and the
  gradient is summed over devices.

  Args:
    tree: a pytree of arrays ``[B, ...]``, e.g. a ``mominit.tasks.Batch``.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if CASES not in mesh.axis_names:
    return tree
  n = mesh.shape[CASES]
  spec = jax.sharding.PartitionSpec(CASES)
  return jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(x, spec) if x.shape[0] % n == 0 else x, tree)


def _block_size(n, limit=2000):
  """The largest divisor of n not above limit, so the data splits into equal evaluation blocks."""
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _dataset_error(predict, params, data):
  """Mean over cases of the per-case squared error, evaluated in equal blocks (bounded memory)."""
  block = _block_size(data.shape[0])
  blocks = data.reshape(-1, block, data.shape[-1])
  errs = jax.lax.map(lambda x: losses.squared_error(predict(params, x), x), blocks)
  return jnp.mean(errs)


def autoencoder_problem(config, data=None) -> Problem:
  """The deep-autoencoder problem of PAPER.md section 4 for ``config.dataset``.

  Args:
    config: an autoencoder config.
    data: a ``mominit.data.Dataset`` to train on instead of loading ``config.dataset`` (which
      still fixes the architecture); its arrays are ``[N, D]`` with D the net's input size.
  """
  from mominit import data as data_lib  # pylint: disable=import-outside-toplevel
  from mominit import models  # pylint: disable=import-outside-toplevel
  dataset = data if data is not None else data_lib.load(config.dataset, config.data_dir or None)
  width = models.AUTOENCODER_SIZES[config.dataset][0]
  for split, array in zip(("train", "test"), dataset):
    if np.ndim(array) != 2 or np.shape(array)[1] != width:
      raise ValueError(f"{config.dataset} {split} data must be [N, {width}], got shape "
                       f"{np.shape(array)}")
  train = dataset.train[:config.num_train] if config.num_train else dataset.train
  test = dataset.test[:config.num_test] if config.num_test else dataset.test
  train, test = jnp.asarray(train, jnp.float32), jnp.asarray(test, jnp.float32)
  n, batch = train.shape[0], config.batch_size
  if batch > n:
    raise ValueError(f"config.batch_size={batch} is larger than the training set ({n} cases)")
  steps_per_epoch = n // batch
  logistic = models.AUTOENCODER_OUTPUTS[config.dataset] == "logistic"
  apply_model = models.autoencoder(config.dataset, activation=config.activation).apply

  def init_params(key, hp, data):
    model = models.autoencoder(config.dataset, init=config.init, init_scale=hp["init_scale"],
                               activation=config.activation)
    return model.init(key, data["train"][:1])["params"]

  def predict(params, x):
    out = apply_model({"params": params}, x)
    return jax.nn.sigmoid(out) if logistic else out

  def loss(params, key, step, order, data):
    del key
    start = (step % steps_per_epoch) * batch
    x = data["train"][jax.lax.dynamic_slice_in_dim(order, start, batch)]
    out = apply_model({"params": params}, x)
    return losses.sigmoid_cross_entropy(out, x) if logistic else losses.squared_error(out, x)

  def evaluate(params, key, data):
    del key
    return {"train_error": _dataset_error(predict, params, data["train"]),
            "test_error": _dataset_error(predict, params, data["test"])}

  def mu_schedule(hp):
    base = schedules.sutskever_momentum(hp["mu_max"], period=config.momentum_period)
    if not config.final_steps:
      return base
    return schedules.final_phase(base, config.steps, config.final_steps, config.final_mu)

  return Problem(init_params, loss, evaluate, mu_schedule, {"train": train, "test": test}, n,
                 ("train_error", "test_error"))


def rnn_problem(config) -> Problem:
  """An RNN long-range-dependency problem of PAPER.md section 5 (fresh sequences every step)."""
  from mominit import models  # pylint: disable=import-outside-toplevel
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, center=config.center, **dict(config.task_kwargs))
  softmax = task.readout == "softmax"
  seq_loss = losses.masked_softmax_cross_entropy if softmax else losses.masked_squared_error
  zero_one = losses.symbol_zero_one if softmax else losses.real_zero_one

  def make_model(input_scale):
    return models.TanhRNN(hidden=config.hidden, num_outputs=task.num_outputs,
                          readout=task.readout, input_scale=input_scale,
                          output_bias=task.output_bias)

  apply_model = make_model(1.0).apply  # the input scale only matters at initialisation

  def init_params(key, hp, data):
    del data
    # input_scale 0 in the sweep means "the task's Table 4 default".
    scale = jnp.where(hp["input_scale"] > 0, hp["input_scale"], task.input_scale)
    dummy = jnp.zeros((1, task.max_len, task.num_inputs), jnp.float32)
    return make_model(scale).init(key, dummy)["params"]

  def loss(params, key, step, order, data):
    del order, data
    batch = shard_cases(task.sample(jax.random.fold_in(key, step), config.batch_size))
    return seq_loss(apply_model({"params": params}, batch.inputs), batch.targets, batch.mask)

  def evaluate(params, key, data):
    del data
    batch = shard_cases(task.sample(key, config.eval_sequences))
    out = apply_model({"params": params}, batch.inputs)
    return {"test_loss": seq_loss(out, batch.targets, batch.mask),
            "zero_one": zero_one(out, batch.targets, batch.mask)}

  def mu_schedule(hp):
    warm = schedules.rnn_momentum(hp["mu_max"], warm_mu=config.warm_mu,
                                  warm_steps=config.warm_steps)
    # mu_0 = 0 is the SGD column of Table 5: no momentum at all, also during the warm phase.
    return lambda t: jnp.where(hp["mu_max"] > 0, warm(t), 0.0)

  # On a CPU, vmapping the RNN's time scan over members costs more than it saves: the stacked
  # [L, P, B, H] scan arrays must be transposed for every batched matmul around the scan, and
  # XLA:CPU runs a batched [P, 100, 100] matmul as P small ones anyway. One device runs its
  # scan's small matmuls on one core, so a member alone on a multi-core CPU splits its
  # sequences over the CPU devices instead (docs/performance.md).
  return Problem(init_params, loss, evaluate, mu_schedule, {}, 0, ("test_loss", "zero_one"),
                 batch_members_on_cpu=False, split_cases_on_cpu=True)


def make_problem(config, data=None) -> Problem:
  """The :class:`Problem` a config describes (``data`` overrides an autoencoder's dataset)."""
  if config.kind == "autoencoder":
    return autoencoder_problem(config, data)
  if data is not None:
    raise ValueError("data= is for autoencoder configs; RNN tasks generate their sequences")
  return rnn_problem(config)


# ---------------------------------------------------------------------------------------------
# The population engine.


def _all_finite(tree):
  """True when every entry of every leaf is finite.

  Written as a sum of ``x * 0`` (0 for finite x, NaN for inf or NaN) so that XLA fuses each leaf
  into one reduction pass, instead of materialising an ``isfinite`` mask and reducing it.
  """
  return jnp.isfinite(sum(jnp.sum(x * jnp.zeros((), x.dtype)) for x in jax.tree.leaves(tree)))


_NEVER = np.iinfo(np.int32).max  # `stop_at` of a member that is not stopped

# XLA:CPU options for the chunk: with region analysis, copy insertion sees that the loop-carried
# parameters and velocities can be updated in place, instead of copying them at every step.
_CPU_CHUNK_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}


@functools.lru_cache(maxsize=None)
def _cpu_options_supported() -> bool:
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_CHUNK_OPTIONS).lower(
        np.float32(0)).compile()
  except Exception:  # pylint: disable=broad-except  (an XLA without this option: run without)
    return False
  return True


def _chunk_compiler_options(devices) -> Optional[dict]:
  """The compiler options for the chunk on these devices (None where none apply or the
  installed XLA does not know them)."""
  if any(d.platform != "cpu" for d in devices) or not _cpu_options_supported():
    return None
  return dict(_CPU_CHUNK_OPTIONS)


# Members of a CPU device train a chunk in groups of at most this many bytes of training state,
# and of at least two members. On 2 cores, 16 CURVES members (6.8 MB each) trained 214, 244,
# 264 and 238 member-updates/s in groups of 8, 4, 2 and 1 per device, 16 MNIST members
# (22.7 MB each) 67, 77 and 70 in groups of 8, 2 and 1 (docs/performance.md).
_CPU_GROUP_BYTES = 16 << 20


def _member_bytes(state: MemberState) -> int:
  """Bytes of one member's training state (parameters, optimizer state, epoch order)."""
  leaves = jax.tree.leaves((state.params, state.opt_state, state.order))
  return sum(math.prod(x.shape[1:]) * x.dtype.itemsize for x in leaves)


def _group_size(members: int, member_bytes: int, budget: int = _CPU_GROUP_BYTES) -> int:
  """How many of a CPU device's ``members`` train a chunk together (vmapped): the largest
  divisor of ``members`` that is at most ``max(2, budget // member_bytes)``."""
  most = max(2, budget // max(member_bytes, 1))
  return max(g for g in range(1, min(members, most) + 1) if members % g == 0)


def _chunk_loop(step_all, all_finite, state, hparams, stop_at, data, start, num_steps):
  """The chunk's ``lax.fori_loop`` of ``step_all`` over a batch of members (or one member,
  unbatched). Returns the state, the mean loss and each member's first bad update count."""

  def record(first_bad, bad, step):
    return jnp.where(bad & (first_bad < 0), step, first_bad)

  def body(i, carry):
    state, total, first_bad, was_active = carry
    step = start + i
    active = state.alive & (step < stop_at)
    state, loss_bad, params_bad = step_all(state, hparams, data, step, stop_at)
    # The parameters this update started from were written by update step - 1.
    first_bad = record(first_bad, was_active & params_bad, step - 1)
    first_bad = record(first_bad, loss_bad, step)
    return state, total + state.loss, first_bad, active

  zero = jnp.zeros(state.alive.shape, jnp.float32)
  none = jnp.full(state.alive.shape, -1, jnp.int32)
  idle = jnp.zeros(state.alive.shape, bool)
  state, total, first_bad, was_active = jax.lax.fori_loop(
      0, num_steps, body, (state, zero, none, idle))
  first_bad = record(first_bad, was_active & ~all_finite(state.params), start + num_steps - 1)
  return state, total / jnp.maximum(num_steps, 1), first_bad


def _layout(problem: Problem, config, num_members: int, devices: list):
  """How a population of ``num_members`` is placed on ``devices``: returns (layout, devices).

  - ``"single"``: one device.
  - ``"population"``: the members are sharded over the devices (padded to a multiple of them).
  - ``"cases"``: on CPU devices, a population smaller than the device count whose problem has
    ``split_cases_on_cpu`` keeps every member on every device and splits each minibatch over
    them (:func:`shard_cases`). XLA:CPU runs one device's program one operation at a time, and
    an RNN's small sequential matmuls each on one core, so this is how a lone RNN uses a
    multi-core CPU (one CPU device per core: ``JAX_NUM_CPU_DEVICES``, see docs/performance.md).
    Other problems use only as many CPU devices as they have members: an autoencoder's matmuls
    already use every core of one device.
  """
  if not devices:
    raise ValueError("devices must not be empty")
  cpu = all(d.platform == "cpu" for d in devices)
  if cpu and num_members < len(devices):
    if problem.split_cases_on_cpu and config.batch_size % len(devices) == 0:
      return "cases", devices
    devices = devices[:num_members]
  return ("single" if len(devices) == 1 else "population"), devices


class Engine:
  """Compiled init / chunk / evaluate functions for one population of one problem.

  A chunk is a ``lax.fori_loop`` whose trip count is traced, so every chunk length shares one
  compilation. Members are vmapped, except that a population of one runs unbatched and, on CPU
  devices, a problem with ``batch_members_on_cpu=False`` runs its members one after another
  (``lax.map``) inside the step, each device its own share (``shard_map``), and a vmapped
  population on a CPU device trains each chunk in groups of members, one group after another
  (:func:`_group_size`), which keeps a group's state in cache. Divergence isolation costs no extra
  pass over the parameters in the common case: a member's update is masked by flags known before
  the step (``alive``, ``step < stop_at``), which XLA fuses into the optimizer's update, and the
  finiteness of the loss and of the new parameters is only recorded (``first_bad``). When a member
  went bad during a chunk, :meth:`run_chunk` reruns the chunk from its starting state with that
  member stopped at its first bad step: the rerun is the same compiled program on the same inputs,
  so the other members repeat bit for bit and the bad one ends frozen at its last finite state.

  Attributes:
    problem: the :class:`Problem`.
    layout: "single", "population" or "cases" (see :func:`_layout`).
    devices: the devices it runs on (a prefix of those it was given when the population is
      smaller than their number and its minibatches are not split).
    mesh: the one-axis ``jax.sharding.Mesh`` over ``devices`` (None for one device).
    hparams: dict of [P] arrays (P padded to a multiple of the device count in the population
      layout).
    num_members: the real population size (padding excluded).
    trace_counts: how often each function was traced (each trace is a compilation).
    reruns: how many chunks were rerun because a member diverged in them.
  """

  def __init__(self, config, problem: Problem, members: list[dict], devices=None):
    self.config, self.problem = config, problem
    self.num_members = len(members)
    self.layout, devices = _layout(problem, config, len(members),
                                   list(devices if devices is not None else jax.devices()))
    self.devices = devices
    pad = (-len(members)) % len(devices) if self.layout == "population" else 0
    # Padding members copy member 0; they are computed and thrown away.
    self.hparams = _hparams(members + [members[0]] * pad)
    self.trace_counts = {"init": 0, "chunk": 0, "evaluate": 0}
    self.reruns = 0
    spec = jax.sharding.PartitionSpec
    if self.layout == "single":
      self.mesh = None
      self.sharding = replicated = jax.sharding.SingleDeviceSharding(devices[0])
    else:
      axis = "population" if self.layout == "population" else CASES
      self.mesh = jax.sharding.Mesh(np.array(devices), (axis,))
      replicated = jax.sharding.NamedSharding(self.mesh, spec())
      # Members are sharded over the devices, or (cases) every device holds every member.
      self.sharding = (jax.sharding.NamedSharding(self.mesh, spec("population"))
                       if self.layout == "population" else replicated)
    self.hparams = jax.device_put(self.hparams, self.sharding)
    self.data = jax.device_put(problem.data, replicated)
    self._never = jax.device_put(np.full(len(self.hparams["seed"]), _NEVER, np.int32),
                                 self.sharding)
    self._map_members = not problem.batch_members_on_cpu and devices[0].platform == "cpu"
    self._jit_init = jax.jit(self._init)
    self._jit_chunk = jax.jit(self._run_chunk, compiler_options=_chunk_compiler_options(devices))
    self._jit_evaluate = jax.jit(self._evaluate)

  def _context(self):
    """The mesh the problem is traced under: only the cases layout needs one (`shard_cases`)."""
    return jax.set_mesh(self.mesh) if self.layout == "cases" else contextlib.nullcontext()

  def init(self) -> MemberState:
    """The population's initial state (leading axis P)."""
    return jax.device_put(self._jit_init(*self.on_one_device((self.hparams, self.data))),
                          self.sharding)

  def on_one_device(self, tree):
    """``tree`` on the first device when the engine runs on several CPU devices (else as is).

    For functions that batch LAPACK calls over members (the RNN's spectral-radius init, the
    diagnostics' SVDs): jax's CPU LAPACK kernels split a batch over the shared intra-op thread
    pool and block until it is done, so two CPU devices doing that at once can hold every pool
    thread and wait forever (seen with jaxlib 0.10.2 on 2 cores). One device is safe.
    """
    if self.mesh is None or self.devices[0].platform != "cpu":
      return tree
    return jax.device_put(tree, jax.sharding.SingleDeviceSharding(self.devices[0]))

  def run_chunk(self, state: MemberState, start: int, num_steps: int):
    """Runs ``num_steps <= config.chunk`` updates from update count ``start`` (one compilation
    serves every start and length). Returns the new state and the per-member mean training loss
    over the chunk ([P]).

    Waits for the chunk to finish (it reads back which members went bad, if any); a chunk in
    which a member diverged runs twice (see the class docstring).
    """
    start, num_steps = jnp.int32(start), jnp.int32(num_steps)
    with self._context():
      new, mean_loss, first_bad = self._jit_chunk(state, self.hparams, self.data, start,
                                                  num_steps, self._never)
      first_bad = np.asarray(first_bad)
      if (first_bad >= 0).any():
        self.reruns += 1
        stop_at = jax.device_put(np.where(first_bad >= 0, first_bad, _NEVER).astype(np.int32),
                                 self.sharding)
        new, mean_loss, _ = self._jit_chunk(state, self.hparams, self.data, start, num_steps,
                                            stop_at)
    return new, mean_loss

  def evaluate(self, state: MemberState) -> dict:
    """The problem's errors of every member at theta (dict of [P] arrays)."""
    with self._context():
      return self._jit_evaluate(state, self.hparams, self.data)

  # Per-member functions ------------------------------------------------------------------------

  def _optimizer(self, hp):
    return momentum.momentum_rule(hp["learning_rate"], self.problem.momentum(hp),
                                  nesterov=hp["nesterov"])

  def _keys(self, hp):
    key = jax.random.PRNGKey(hp["seed"])
    return {"init": jax.random.fold_in(key, 0), "data": jax.random.fold_in(key, 1),
            "eval": jax.random.fold_in(key, 2)}

  def _epoch_order(self, hp, epoch):
    n = self.problem.num_train
    if not n:  # RNNs sample their data; a 1-element placeholder (orbax cannot save empty arrays)
      return jnp.zeros((1,), jnp.int32)
    key = jax.random.fold_in(self._keys(hp)["data"], epoch)
    return jax.random.permutation(key, n).astype(jnp.int32)

  def _init_member(self, hp, data):
    params = self.problem.init_params(self._keys(hp)["init"], hp, data)
    return MemberState(params=params, opt_state=self._optimizer(hp).init(params),
                       order=self._epoch_order(hp, 0), alive=jnp.array(True),
                       diverged_at=jnp.array(-1, jnp.int32), loss=jnp.array(jnp.nan, jnp.float32))

  def _step_member(self, state: MemberState, hp, data, step, stop_at):
    """One update of one member.

    The member is updated when it is alive and ``step < stop_at``; at ``step == stop_at`` it is
    frozen and flagged as diverged at ``step`` (the rerun of :meth:`run_chunk`).

    Returns:
      The new state, whether this update's loss is not finite, and whether the parameters the
      update started from are not finite (that is, whether the previous update went bad: a
      non-finite parameter stays non-finite under ``params + updates``, so checking each update's
      input, which is already in memory, finds the first bad update without a pass over the
      freshly written parameters).
    """
    n, batch = self.problem.num_train, self.config.batch_size
    if n:
      steps_per_epoch = n // batch
      # The predicate is the same for every member (unbatched), so under vmap this stays a cond.
      order = jax.lax.cond(step % steps_per_epoch == 0,
                           lambda: self._epoch_order(hp, step // steps_per_epoch),
                           lambda: state.order)
    else:
      order = state.order
    params_bad = ~_all_finite(state.params)
    loss, grads = jax.value_and_grad(self.problem.loss)(state.params, self._keys(hp)["data"],
                                                         step, order, data)
    updates, opt_state = self._optimizer(hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    active = state.alive & (step < stop_at)
    stopped = state.alive & (step == stop_at)
    kept = state._replace(alive=state.alive & ~stopped,
                          diverged_at=jnp.where(stopped, step, state.diverged_at))
    new = MemberState(params, opt_state, order, state.alive, state.diverged_at, loss)
    # `active` is known before the update, so this select fuses into the update itself.
    new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, kept)
    return new, active & ~jnp.isfinite(loss), params_bad

  # Population functions (jitted) ---------------------------------------------------------------

  def _init(self, hparams, data):
    self.trace_counts["init"] += 1
    return jax.vmap(self._init_member, in_axes=(0, None))(hparams, data)

  def _run_chunk(self, state, hparams, data, start, num_steps, stop_at):
    """``num_steps`` updates; returns the state, the mean loss ([P]) and each member's first bad
    update count in this chunk (-1 if none): the first update whose loss or whose new parameters
    are not finite."""
    self.trace_counts["chunk"] += 1
    if state.alive.shape[0] == 1:
      # A lone member runs unbatched: under vmap XLA drops the size-1 population axis too late
      # to fold the transposes JAX's dot_general VJP emits, so the weight gradients would come
      # out transposed and every optimizer update would read them with a strided access. The
      # axis is dropped outside the loop: with bitcasts to and from [1, ...] on the
      # loop-carried parameters, copy insertion copied them at every step.
      squeeze = lambda tree: jax.tree.map(lambda x: x[0], tree)
      out = _chunk_loop(self._step_member, _all_finite, *squeeze((state, hparams, stop_at)),
                        data, start, num_steps)
      return jax.tree.map(lambda x: x[None], out)
    cpu = self.devices[0].platform == "cpu"
    all_finite = jax.vmap(_all_finite)

    def local(state, hparams, stop_at, data, start, num_steps):
      """The chunk for one device's members (for all members off the CPU)."""
      if self._map_members:
        step = lambda s, hp, d, t, stop: jax.lax.map(
            lambda m: self._step_member(m[0], m[1], d, t, m[2]), (s, hp, stop))
        return _chunk_loop(step, all_finite, state, hparams, stop_at, data, start, num_steps)
      step = jax.vmap(self._step_member, in_axes=(0, 0, None, None, 0))
      run = lambda s, hp, stop: _chunk_loop(step, all_finite, s, hp, stop, data, start,
                                            num_steps)
      members = state.alive.shape[0]
      group = _group_size(members, _member_bytes(state)) if cpu else members
      if group == members:
        return run(state, hparams, stop_at)
      # Time-blocking: a group of members runs the whole chunk before the next group starts,
      # so a group's parameters and velocities stay in the CPU's caches from one update to the
      # next instead of the whole population's streaming through memory at every update.
      # Members are independent, so only the order of the work changes.
      split = lambda tree: jax.tree.map(lambda x: x.reshape((-1, group) + x.shape[1:]), tree)
      out = jax.lax.map(lambda g: run(*g), split((state, hparams, stop_at)))
      return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out)

    if self.layout == "population" and cpu:
      # Each device runs its own members (a lax.map over a sharded axis would gather the
      # population onto every device). No collectives inside, so the varying-axis checks (which
      # scans in the models would trip over) are not needed.
      spec = jax.sharding.PartitionSpec
      members = spec("population")
      local = jax.shard_map(local, mesh=self.mesh, out_specs=members, check_vma=False,
                            in_specs=(members, members, members, spec(), spec(), spec()))
    return local(state, hparams, stop_at, data, start, num_steps)

  def _evaluate(self, state, hparams, data):
    self.trace_counts["evaluate"] += 1

    def one(s, hp):
      params = momentum.theta(s.params, s.opt_state)
      return self.problem.evaluate(params, self._keys(hp)["eval"], data)

    return jax.vmap(one)(state, hparams)


# ---------------------------------------------------------------------------------------------
# Checkpoints.


def _checkpoint_manager(workdir):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() / "checkpoints", options=options)


def _save(manager, step, tree):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  manager.save(step, args=ocp.args.StandardSave(tree))
  manager.wait_until_finished()


def _restore(manager, step, like):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      like)
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))


# ---------------------------------------------------------------------------------------------
# The driver.


def _boundaries(config):
  """Update counts after which the host evaluates: eval points, diagnostics points, the start of
  the final low-momentum phase, and the end."""
  points = set(range(config.eval_every, config.steps, config.eval_every)) | {config.steps}
  if config.kind == "autoencoder" and config.final_steps:
    points.add(config.steps - config.final_steps)
  if config.kind == "autoencoder" and config.diagnostics_every:
    points |= set(range(config.diagnostics_every, config.steps, config.diagnostics_every))
  return sorted(points)


def _diagnostics_fn(config, problem):
  """Glorot & Bengio layer statistics of every member at theta on the first
  ``config.diagnostics_cases`` training cases: a jitted (state, data) -> pytree of [P, ...].

  It is a separate compiled function called between chunks, so the training step is the same
  program whether diagnostics are on or off.
  """
  from mominit import diagnostics  # pylint: disable=import-outside-toplevel
  from mominit import models  # pylint: disable=import-outside-toplevel
  model = models.autoencoder(config.dataset, activation=config.activation)
  logistic = models.AUTOENCODER_OUTPUTS[config.dataset] == "logistic"
  loss_fn = losses.sigmoid_cross_entropy if logistic else losses.squared_error
  cases = config.diagnostics_cases

  def one(s, x):
    return diagnostics.layer_stats(model, momentum.theta(s.params, s.opt_state), x, loss_fn)

  return jax.jit(lambda state, data: jax.vmap(one, in_axes=(0, None))(
      state, data["train"][:cases]))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: Optional[str] = None,
                       callback: Optional[Callable[[int, dict], None]] = None,
                       devices=None, data=None):
  """Trains every member of the config's sweep as one population and evaluates it.

  The population is evaluated at update 0, every ``config.eval_every`` updates, when the final
  low-momentum phase starts, and at the end. With ``config.diagnostics_every > 0`` (autoencoders)
  the Glorot & Bengio layer statistics of every member are also written to
  ``diagnostics.jsonl`` every that many updates.

  Args:
    config: an autoencoder or RNN config (``configs/autoencoder.py``, ``configs/rnn.py``).
    workdir: folder for ``config.json``, ``metrics.jsonl``, ``results.csv`` and checkpoints.
      When it holds a checkpoint of this config, training resumes from it (a checkpoint of a
      different config is refused). ``None`` trains without writing files.
    callback: called on the host after every evaluation as ``callback(step, record)``, where
      ``record`` holds the [P] arrays of that evaluation; an exception raised there stops
      training (the last checkpoint stays).
    devices: the devices to run on (default: all of ``jax.devices()``): the population is
      sharded over them, or on CPU devices a smaller population splits its minibatches over
      them or uses fewer (``Engine.layout``).
    data: optional ``mominit.data.Dataset`` to train an autoencoder on instead of loading
      ``config.dataset`` (e.g. your own images, or a small subset).

  Returns:
    A ``pandas.DataFrame`` with one row per member: its axis values, the final errors (for
    autoencoders ``train_error`` and ``test_error``, the paper's per-case squared reconstruction
    error at theta; for RNNs ``zero_one`` and ``test_loss`` on fresh sequences),
    ``error_before_final`` (autoencoders: train error when the final low-momentum phase starts),
    ``diverged``, ``diverged_at``, ``steps`` and ``seconds`` (wall time of the whole run).
  """
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel
  validate_config(config)
  if config.distributed:
    jax.distributed.initialize()
  members = population(config)
  problem = make_problem(config, data)
  engine = Engine(config, problem, members, devices)
  p = engine.num_members
  diagnose = _diagnostics_fn(config, problem) if (
      config.kind == "autoencoder" and config.diagnostics_every) else None

  state = engine.init()
  step, seconds, saved_at = 0, 0.0, 0
  before_final = np.full(len(members), np.nan)
  manager = None
  if workdir is not None:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    manager = _checkpoint_manager(workdir)
    if manager.latest_step() is not None:
      _check_same_config(config, workdir)
      saved = _restore(manager, manager.latest_step(),
                       {"state": state, "before_final": before_final, "seconds": np.float64(0)})
      state, before_final = saved["state"], np.asarray(saved["before_final"])
      step, seconds = int(manager.latest_step()), float(saved["seconds"])
      saved_at = step
    _write_config(config, workdir)
    for name in ("metrics.jsonl", "diagnostics.jsonl"):
      _truncate_metrics(workdir / name, step)

  def evaluate():
    return jax.tree.map(lambda x: np.asarray(x)[:p], engine.evaluate(state))

  def observe(step, errors, chunk_losses, rate):
    """Logs and reports the evaluation after `step` updates; returns its record."""
    alive = np.asarray(state.alive)[:p]
    record = {"step": step, "train_loss": (np.mean(chunk_losses, axis=0) if chunk_losses
                                           else np.full(p, np.nan)),
              **errors, "alive": alive, "diverged_at": np.asarray(state.diverged_at)[:p]}
    main_error = errors["zero_one" if config.kind == "rnn" else "train_error"]
    finite = main_error[alive & np.isfinite(main_error)]
    bar.set_postfix({"alive": f"{alive.sum()}/{p}",
                     "best": f"{finite.min():.4g}" if finite.size else "-",
                     "upd/s": f"{rate:.0f}"})
    if workdir is not None:
      _append_metrics(workdir / "metrics.jsonl", record, members)
      if diagnose is not None and step % config.diagnostics_every == 0:
        stats = jax.tree.map(lambda x: np.asarray(x)[:p],
                             diagnose(*engine.on_one_device((state, engine.data))))
        _append_metrics(workdir / "diagnostics.jsonl", {"step": step, **stats}, members)
    if callback is not None:
      callback(step, record)
    return record

  bar = tqdm(total=config.steps, initial=step, disable=not config.progress, unit="upd",
             dynamic_ncols=True)
  record = None
  if step == 0:
    record = observe(0, evaluate(), [], 0.0)
  for boundary in [b for b in _boundaries(config) if b > step]:
    t0 = time.perf_counter()
    chunk_losses, done = [], boundary - step
    while step < boundary:
      n = min(config.chunk, boundary - step)
      state, mean_loss = engine.run_chunk(state, step, n)
      chunk_losses.append(np.asarray(mean_loss)[:p])
      step += n
      bar.update(n)
    errors = evaluate()
    if config.kind == "autoencoder" and config.final_steps and (
        step == config.steps - config.final_steps):
      before_final = errors["train_error"].copy()
    elapsed = time.perf_counter() - t0
    seconds += elapsed
    checkpoint = workdir is not None and (
        step - saved_at >= config.checkpoint_every or step == config.steps)
    if checkpoint:  # before `observe`, so a callback that stops the run finds it saved
      _save(manager, step, {"state": state, "before_final": before_final,
                            "seconds": np.float64(seconds)})
      saved_at = step
    record = observe(step, errors, chunk_losses, done / max(elapsed, 1e-9))
  bar.close()

  if record is None:  # resumed from a finished run: nothing was trained or logged
    record = {**evaluate(), "alive": np.asarray(state.alive)[:p],
              "diverged_at": np.asarray(state.diverged_at)[:p]}
  rows = []
  for i, member in enumerate(members):
    row = dict(member)
    for name in problem.error_names:
      row[name] = float(record[name][i])
    if config.kind == "autoencoder":
      row["error_before_final"] = float(before_final[i])
    row.update(diverged=not bool(record["alive"][i]), diverged_at=int(record["diverged_at"][i]),
               steps=config.steps, seconds=seconds)
    rows.append(row)
  frame = pd.DataFrame(rows)
  if workdir is not None:
    frame.to_csv(workdir / "results.csv", index=False)
  return frame


def _flat(tree, prefix=""):
  """{"a": {"b": 1}} -> {"a.b": 1}."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def _check_same_config(config, workdir):
  """Refuses to resume a checkpoint written by a different config."""
  path = workdir / "config.json"
  if not path.exists():
    return
  old, new = _flat(json.loads(path.read_text())), _flat(json.loads(config.to_json_best_effort()))
  ignore = {"progress"}  # display only
  differ = sorted(k for k in set(old) | set(new) if k not in ignore and old.get(k) != new.get(k))
  if differ:
    raise ValueError(
        f"{workdir} holds a checkpoint of a different config (fields {differ} differ); resume "
        f"with the same config or use a new --workdir")


def _jsonable(x):
  x = np.asarray(x)
  return x.tolist() if x.dtype != bool else [bool(v) for v in x.ravel()]


def _append_metrics(path, record, members):
  line = {"step": record["step"], "members": [m for m in members]}
  line.update({k: _jsonable(v) for k, v in record.items() if k != "step"})
  with open(path, "a") as f:
    f.write(json.dumps(line, default=float) + "\n")


def _truncate_metrics(path, step):
  """Keeps only the metrics written up to the checkpoint we resume from."""
  if not path.exists():
    return
  keep = [l for l in path.read_text().splitlines() if l and json.loads(l)["step"] <= step]
  path.write_text("".join(l + "\n" for l in keep))


def _write_config(config, workdir):
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))


def read_metrics(workdir) -> list[dict]:
  """The records of ``metrics.jsonl`` in a workdir, one dict per evaluation."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  return [json.loads(l) for l in path.read_text().splitlines() if l]
