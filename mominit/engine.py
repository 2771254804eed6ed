"""The population engine: one problem, one optimizer family, compiled and placed.

:class:`Engine` wraps the pure per-member functions of ``mominit.member`` in ``jax.jit`` over a
population (leading member axis), placed on devices as a ``mominit.placement.Plan`` says and
batched by :func:`run_members`, the loop of each of the plan's strategies. ``mominit.train``
drives one engine per optimizer family of a sweep: the CLI, ``train``, this file and ``member``
are the whole path to the compiled step.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mominit import member as member_lib
from mominit import optimizers
from mominit import placement
from mominit import sweep


class Engine:
  """Compiled init / chunk / evaluate functions for one population of one problem and family.

  A chunk is a ``lax.fori_loop`` whose trip count is traced, so every chunk length shares one
  compilation. How the members are batched inside it (vmapped, unbatched, member by member,
  in time-blocked groups, or one member with its minibatch split over devices) is the
  ``plan``'s strategy (``mominit.placement``). Divergence isolation costs no extra pass over the
  parameters in the common case: a member's update is masked by flags known before the step
  (``alive``, ``step < stop_at``), which XLA fuses into the optimizer's update, and the
  finiteness of the loss and of the new parameters is only recorded (``first_bad``). When a
  member went bad during a chunk, :meth:`run_chunk` reruns the chunk from its starting state with
  that member stopped at its first bad step: the rerun is the same compiled program on the same
  inputs, so the other members repeat bit for bit and the bad one ends frozen at its last finite
  state.

  Attributes:
    problem: the ``mominit.problems.Problem``.
    family: the ``mominit.optimizers.Family`` every member trains with.
    plan: the ``mominit.placement.Plan`` (print it to see where and how the members run).
    layout: ``plan.layout``: "single", "population" or "cases".
    devices: the devices it runs on (a prefix of those it was given when the population is
      smaller than their number and its minibatches are not split).
    mesh: the one-axis ``jax.sharding.Mesh`` over ``devices`` (None for one device).
    hparams: the population's hyper-parameters, a dict of arrays with a leading member axis
      (padded to ``plan.padded`` members).
    num_members: the real population size (padding excluded).
    trace_counts: how often each function was traced (each trace is a compilation).
    reruns: how many chunks were rerun because a member diverged in them.
  """

  def __init__(self, config, problem, members: list[dict], devices=None, family=None):
    self.config, self.problem = config, problem
    self.num_members = len(members)
    families = sorted({optimizers.family_of(m["rule"]) for m in members})
    if len(families) != 1:
      raise ValueError(f"an Engine trains one optimizer family, got {families}")
    self.family = family if family is not None else optimizers.make(members[0]["rule"], config)
    devices = list(devices if devices is not None else jax.devices())
    probe = member_lib.make_member(problem, self.family)
    one = jax.eval_shape(jax.vmap(probe.init, in_axes=(0, None)),
                         sweep.hparams(members[:1], self.family, problem), problem.data)
    self._one = one  # one member's state shapes ([1, ...]), for `place`
    self.plan = placement.plan(len(members), devices, batch_size=config.batch_size,
                               small_sequential_matmuls=problem.small_sequential_matmuls,
                               member_bytes=member_lib.member_bytes(one))
    self.layout, self.devices, self.mesh = self.plan.layout, list(self.plan.devices), self.plan.mesh
    self.sharding = self.plan.sharding
    self.member = member_lib.make_member(problem, self.family, self.plan.place_batch)
    # Padding members copy member 0; they are computed and thrown away.
    padded = members + [members[0]] * (self.plan.padded - len(members))
    self.hparams = jax.device_put(sweep.hparams(padded, self.family, problem), self.sharding)
    self.data = jax.device_put(problem.data, self.plan.replicated)
    self._never = jax.device_put(np.full(self.plan.padded, member_lib.NEVER, np.int32),
                                 self.sharding)
    self.trace_counts = {"init": 0, "chunk": 0, "evaluate": 0}
    self.reruns = 0
    self._jit_init = jax.jit(self._init)
    self._jit_chunk = jax.jit(self._run_chunk, compiler_options=self.plan.compiler_options)
    self._jit_evaluate = jax.jit(self._evaluate)
    self._jit_probes = {}  # diagnostics functions -> their compiled population function
    self._compiled = {}  # ahead-of-time executables (`compile`), used instead of the jits

  def compile(self, state: member_lib.MemberState) -> dict:
    """Compiles the chunk and the evaluation for ``state`` now and keeps the executables (the
    later calls use them: no second compilation).

    Returns:
      {"chunk": bytes, "evaluate": bytes}: what each program needs on one device while it runs
      (XLA's memory analysis: arguments + outputs + temporaries - aliased buffers).
    """
    from mominit import memory  # pylint: disable=import-outside-toplevel
    with self._context():
      self._compiled = {
          "chunk": self._jit_chunk.lower(state, self.hparams, self.data, jnp.int32(0),
                                         jnp.int32(1), self._never).compile(),
          "evaluate": self._jit_evaluate.lower(state, self.hparams, self.data).compile()}
    return {name: memory.compiled_bytes(c) for name, c in self._compiled.items()}

  def _context(self):
    """The mesh the problem is traced under (``plan.context``)."""
    return self.plan.context()

  def on_one_device(self, tree):
    """``tree`` on the first device on several CPU devices (``Plan.on_one_device``)."""
    return self.plan.on_one_device(tree)

  def init(self) -> member_lib.MemberState:
    """The population's initial state (leading axis P). On one device: the RNN's init batches
    LAPACK calls over members (``placement.LAPACK_DEADLOCK_JAXLIB``)."""
    return jax.device_put(self._jit_init(*self.on_one_device((self.hparams, self.data))),
                          self.sharding)

  def place(self, tree) -> member_lib.MemberState:
    """A population state from host arrays (each leaf [plan.padded, ...], e.g. a branch's),
    placed as ``init`` places it; checked against the state ``init`` would give (ValueError
    naming the leaf that differs in shape or dtype), without tracing or compiling the init."""
    got_leaves = jax.tree.leaves(tree)
    like = jax.tree_util.tree_leaves_with_path(self._one)
    if len(got_leaves) != len(like):
      raise ValueError(f"{len(got_leaves)} state leaves, this engine's state has {len(like)}")
    for (where, want), got in zip(like, got_leaves):
      shape = (self.plan.padded,) + tuple(want.shape[1:])
      if tuple(np.shape(got)) != shape or np.asarray(got).dtype != want.dtype:
        raise ValueError(f"state leaf {jax.tree_util.keystr(where)}: {np.shape(got)} "
                         f"{np.asarray(got).dtype}, this engine's is {shape} {want.dtype}")
    return jax.device_put(jax.tree.unflatten(jax.tree.structure(self._one), got_leaves),
                          self.sharding)

  def run_chunk(self, state: member_lib.MemberState, start: int, num_steps: int):
    """Runs ``num_steps <= config.chunk`` updates from update count ``start`` (one compilation
    serves every start and length). Returns the new state and the per-member mean training loss
    over the chunk ([P]).

    Waits for the chunk to finish (it reads back which members went bad, if any); a chunk in
    which a member diverged runs twice (see the class docstring).
    """
    start, num_steps = jnp.int32(start), jnp.int32(num_steps)
    chunk = self._compiled.get("chunk", self._jit_chunk)
    with self._context():
      try:
        new, mean_loss, first_bad = chunk(state, self.hparams, self.data, start, num_steps,
                                          self._never)
      except (TypeError, ValueError):
        if chunk is self._jit_chunk:
          raise
        # A state placed otherwise than the one compiled for (e.g. a caller's own): the jit
        # compiles for it.
        chunk = self._jit_chunk
        self._compiled.pop("chunk")
        new, mean_loss, first_bad = chunk(state, self.hparams, self.data, start, num_steps,
                                          self._never)
      first_bad = np.asarray(first_bad)
      if (first_bad >= 0).any():
        self.reruns += 1
        stop_at = np.where(first_bad >= 0, first_bad, member_lib.NEVER).astype(np.int32)
        new, mean_loss, _ = chunk(state, self.hparams, self.data, start, num_steps,
                                  jax.device_put(stop_at, self.sharding))
    return new, mean_loss

  def evaluate(self, state: member_lib.MemberState) -> dict:
    """The problem's errors of every member at the family's ``eval_params`` ([P] arrays)."""
    with self._context():
      if "evaluate" in self._compiled:
        try:
          return self._compiled["evaluate"](state, self.hparams, self.data)
        except (TypeError, ValueError):  # placed otherwise than compiled for: see run_chunk
          self._compiled.pop("evaluate")
      return self._jit_evaluate(state, self.hparams, self.data)

  def diagnose(self, state: member_lib.MemberState, fn=None):
    """The problem's diagnostics of every member (pytree of [P, ...]), on one device (batched
    SVDs: ``placement.LAPACK_DEADLOCK_JAXLIB``). It is its own compiled function, so the training
    chunk is the same program whether diagnostics are on or off.

    Args:
      state: the population's state.
      fn: ``(params, data) -> pytree`` to compute instead of ``problem.diagnostics`` (at the
        family's ``eval_params``; compiled once per function).
    """
    fn = self.problem.diagnostics if fn is None else fn
    if fn not in self._jit_probes:
      self._jit_probes[fn] = jax.jit(lambda state, data: self._diagnose(state, data, fn))
    return self._jit_probes[fn](*self.on_one_device((state, self.data)))

  # Population functions (jitted) ---------------------------------------------------------------

  def _init(self, hparams, data):
    self.trace_counts["init"] += 1
    return jax.vmap(self.member.init, in_axes=(0, None))(hparams, data)

  def _run_chunk(self, state, hparams, data, start, num_steps, stop_at):
    self.trace_counts["chunk"] += 1
    return run_members(self.plan, self.member.step, state, hparams, stop_at, data,
                                 start, num_steps)

  def _evaluate(self, state, hparams, data):
    self.trace_counts["evaluate"] += 1
    if self.plan.strategy != "member_by_member":
      return jax.vmap(self.member.evaluate, in_axes=(0, 0, None))(state, hparams, data)
    # Members one after another, as they train: a vmapped RNN evaluation holds every member's
    # activations for all its evaluation sequences at once (106 MB per member for addition
    # T=80 and 1,000 sequences: 30 GB for Table 5's 280 members); this holds one member's.
    def local(state, hparams, data):
      return jax.lax.map(lambda m: self.member.evaluate(m[0], m[1], data), (state, hparams))

    if self.plan.axis == placement.POPULATION:
      spec = jax.sharding.PartitionSpec
      local = jax.shard_map(local, mesh=self.plan.mesh, check_vma=False,
                            in_specs=(spec(placement.POPULATION), spec(placement.POPULATION),
                                      spec()), out_specs=spec(placement.POPULATION))
    return local(state, hparams, data)

  def _diagnose(self, state, data, fn):
    return jax.vmap(lambda s: fn(self.member.eval_params(s), data))(state)


def run_members(p: placement.Plan, step: Callable, state, hp, stop_at, data, start, num_steps):
  """The chunk of a population under plan ``p`` (``mominit.placement``): ``member.chunk_loop``
  of one member's ``step`` batched as the plan's strategy says, on each device its own members.
  Arguments and results are those of ``member.chunk_loop`` with a leading member axis."""
  loop = member_lib.chunk_loop
  if p.strategy in ("unbatched", "cases"):
    # A lone member runs unbatched: under vmap XLA drops the size-1 population axis too late
    # to fold the transposes JAX's dot_general VJP emits, so the weight gradients would come
    # out transposed and every optimizer update would read them with a strided access. The
    # axis is dropped outside the loop: with bitcasts to and from [1, ...] on the
    # loop-carried parameters, copy insertion copied them at every step.
    squeeze = lambda tree: jax.tree.map(lambda x: x[0], tree)
    out = loop(step, member_lib.all_finite, *squeeze((state, hp, stop_at)), data, start,
               num_steps)
    return jax.tree.map(lambda x: x[None], out)
  finite = jax.vmap(member_lib.all_finite)

  def local(state, hp, stop_at, data, start, num_steps):
    """The chunk for one device's members (for all members off the CPU)."""
    if p.strategy == "member_by_member":
      each = lambda s, h, d, t, stop: jax.lax.map(
          lambda m: step(m[0], m[1], d, t, m[2]), (s, h, stop))
      return loop(each, finite, state, hp, stop_at, data, start, num_steps)
    batched = jax.vmap(step, in_axes=(0, 0, None, None, 0))
    run = lambda s, h, stop: loop(batched, finite, s, h, stop, data, start, num_steps)
    if p.strategy == "vmap":
      return run(state, hp, stop_at)
    # Time-blocking: a group of members runs the whole chunk before the next group starts,
    # so a group's parameters and velocities stay in the CPU's caches from one update to the
    # next instead of the whole population's streaming through memory at every update.
    # Members are independent, so only the order of the work changes.
    split = lambda tree: jax.tree.map(lambda x: x.reshape((-1, p.group) + x.shape[1:]), tree)
    out = jax.lax.map(lambda g: run(*g), split((state, hp, stop_at)))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), out)

  if p.axis == placement.POPULATION and p.platform == "cpu":
    # Each device runs its own members (a lax.map over a sharded axis would gather the
    # population onto every device). No collectives inside, so the varying-axis checks (which
    # scans in the models would trip over) are not needed.
    spec = jax.sharding.PartitionSpec
    members = spec(placement.POPULATION)
    local = jax.shard_map(local, mesh=p.mesh, out_specs=members, check_vma=False,
                          in_specs=(members, members, members, spec(), spec(), spec()))
  out = local(state, hp, stop_at, data, start, num_steps)
  if p.multiprocess:
    # The host reads the mean losses and first bad updates back after every chunk: replicated,
    # every process holds all of them (a gather of 2P numbers).
    everywhere = jax.sharding.NamedSharding(p.mesh, jax.sharding.PartitionSpec())
    out = (out[0], *(jax.lax.with_sharding_constraint(x, everywhere) for x in out[1:]))
  return out
