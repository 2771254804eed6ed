"""Where and how a population runs: one named :class:`Plan`, built by :func:`plan`.

A plan has a *layout* (which devices, and which mesh axis splits what) and a *strategy* (how a
device runs its members inside the compiled chunk):

| strategy           | when                                             | inside the chunk        |
|--------------------|--------------------------------------------------|-------------------------|
| ``unbatched``      | one member                                       | the member, no vmap     |
| ``cases``          | one member with small sequential matmuls, on     | the member, its         |
|                    | several CPU devices that divide its batch        | minibatch split over    |
|                    |                                                  | them (``"cases"`` axis) |
| ``member_by_member`` | CPU, small sequential matmuls, P > 1           | ``lax.map`` over members |
| ``groups``         | CPU, P > 1, more state than fits the cache budget | ``lax.map`` over groups |
|                    |                                                  | of vmapped members      |
| ``vmap``           | otherwise (always on GPUs and TPUs for P > 1)    | ``jax.vmap``            |

With several devices (and not ``cases``) the population axis is sharded over a one-axis mesh
``"population"``, padded to a multiple of the device count; on CPU devices each device runs its
own share (``shard_map``), and a population smaller than the device count uses only as many
devices as it has members.

Adding a strategy: name it in :data:`STRATEGIES` and choose it in :func:`plan` (here), and give
it its loop in ``mominit.engine.run_members`` (how a device runs its members is the engine's
half, so that the CLI, ``train``, ``engine`` and ``member`` are the whole path to the step).
"""
import contextlib
import dataclasses
import functools
from typing import Optional

import jax
import numpy as np


CASES = "cases"            # the mesh axis a minibatch is split over
POPULATION = "population"  # the mesh axis the members are sharded over
STRATEGIES = ("unbatched", "cases", "member_by_member", "groups", "vmap")

# Members of a CPU device train a chunk in groups of at most this many bytes of training state,
# and of at least two members. On 2 cores, 16 CURVES members (6.8 MB each) trained 214, 244,
# 264 and 238 member-updates/s in groups of 8, 4, 2 and 1 per device, 16 MNIST members
# (22.7 MB each) 67, 77 and 70 in groups of 8, 2 and 1 (docs/performance.md).
CPU_GROUP_BYTES = 16 << 20

# XLA:CPU options for the chunk: with region analysis, copy insertion sees that the loop-carried
# parameters and velocities can be updated in place, instead of copying them at every step.
CPU_CHUNK_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True}

# jax's CPU LAPACK kernels split a batch over the shared intra-op thread pool and block until it
# is done, so two CPU devices running batched LAPACK calls at once (the RNN's spectral-radius
# init, the diagnostics' SVDs) can hold every pool thread and wait forever. Seen with this
# jaxlib on 2 cores; tests/test_engine.py says when the workaround (`Plan.on_one_device`)
# can go.
LAPACK_DEADLOCK_JAXLIB = "0.10.2"


def group_size(members: int, member_bytes: int, budget: int = CPU_GROUP_BYTES) -> int:
  """How many of a CPU device's ``members`` train a chunk together (vmapped): the largest
  divisor of ``members`` that is at most ``max(2, budget // member_bytes)``."""
  most = max(2, budget // max(member_bytes, 1))
  return max(g for g in range(1, min(members, most) + 1) if members % g == 0)


@functools.lru_cache(maxsize=None)
def _cpu_options_supported() -> bool:
  try:
    jax.jit(lambda x: x + 1, compiler_options=CPU_CHUNK_OPTIONS).lower(np.float32(0)).compile()
  except Exception:  # pylint: disable=broad-except  (an XLA without this option: run without)
    return False
  return True


@dataclasses.dataclass(frozen=True)
class Plan:
  """How one population runs (see the module docstring).

  Attributes:
    strategy: one of :data:`STRATEGIES`.
    devices: the devices it runs on.
    axis: the mesh axis (``"population"``, ``"cases"``, or None on one device).
    members: the real number of members.
    padded: the number of members computed (a multiple of the device count when sharded;
      padding members copy member 0 and are thrown away).
    group: members per time-blocked group (``groups``; else the members of a device).
  """
  strategy: str
  devices: tuple
  axis: Optional[str]
  members: int
  padded: int
  group: int

  @property
  def platform(self) -> str:
    return self.devices[0].platform

  @property
  def multiprocess(self) -> bool:
    """Whether the devices belong to several processes (``mominit.distributed``)."""
    return len({d.process_index for d in self.devices}) > 1

  @property
  def layout(self) -> str:
    """``"single"`` (one device), ``"population"`` (members sharded) or ``"cases"``."""
    return {None: "single", POPULATION: "population", CASES: "cases"}[self.axis]

  @functools.cached_property
  def mesh(self) -> Optional[jax.sharding.Mesh]:
    """The one-axis mesh over ``devices`` (None on one device)."""
    return None if self.axis is None else jax.sharding.Mesh(np.array(self.devices), (self.axis,))

  @functools.cached_property
  def sharding(self):
    """Where arrays with a leading member axis go."""
    if self.axis is None:
      return jax.sharding.SingleDeviceSharding(self.devices[0])
    spec = jax.sharding.PartitionSpec(POPULATION) if self.axis == POPULATION else (
        jax.sharding.PartitionSpec())  # cases: every device holds every member
    return jax.sharding.NamedSharding(self.mesh, spec)

  @functools.cached_property
  def replicated(self):
    """Where the problem's data goes (every device holds all of it)."""
    if self.axis is None:
      return jax.sharding.SingleDeviceSharding(self.devices[0])
    return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())

  @property
  def compiler_options(self) -> Optional[dict]:
    """The chunk's compiler options (None where none apply or XLA does not know them)."""
    if self.platform != "cpu" or not _cpu_options_supported():
      return None
    return dict(CPU_CHUNK_OPTIONS)

  def place_batch(self, tree):
    """The batch constraint: in the ``cases`` strategy, splits the leading (case) axis of every
    leaf of a minibatch over the devices (XLA propagates the split through the model and sums
    the gradient over devices); a leaf the devices do not divide, and any batch in another
    strategy, is returned unchanged."""
    if self.axis != CASES:
      return tree
    n, spec = len(self.devices), jax.sharding.PartitionSpec(CASES)
    return jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, spec) if x.shape[0] % n == 0 else x, tree)

  def context(self):
    """The mesh the problem is traced under (only ``cases`` constrains against one)."""
    return jax.set_mesh(self.mesh) if self.axis == CASES else contextlib.nullcontext()

  def on_one_device(self, tree):
    """``tree`` on the first device when the plan uses several CPU devices (else as is), for
    functions that batch LAPACK calls over members (see ``LAPACK_DEADLOCK_JAXLIB``)."""
    if self.mesh is None or self.platform != "cpu" or self.multiprocess:
      return tree  # several processes: one CPU device each (see `plan`), nothing to serialise
    return jax.device_put(tree, jax.sharding.SingleDeviceSharding(self.devices[0]))

  def __str__(self):
    where = (f"{len(self.devices)} {self.platform} device(s)" +
             (f", mesh axis {self.axis!r}" if self.axis else ""))
    pad = f" (padded to {self.padded})" if self.padded != self.members else ""
    group = f", groups of {self.group}" if self.strategy == "groups" else ""
    return f"Plan: {self.members} member(s){pad}, {self.strategy}{group}, on {where}"


def plan(num_members: int, devices, *, batch_size: int, small_sequential_matmuls: bool = False,
         member_bytes: int = 0) -> Plan:
  """The :class:`Plan` for a population of ``num_members`` on ``devices``.

  Args:
    num_members: the population size P.
    devices: the devices to use (a prefix may be used).
    batch_size: the minibatch size (the ``cases`` split needs the devices to divide it).
    small_sequential_matmuls: the problem's trait (``Problem.small_sequential_matmuls``).
    member_bytes: bytes of one member's training state (``member.member_bytes``), for the
      time-blocked groups.
  """
  devices = tuple(devices)
  if not devices:
    raise ValueError("devices must not be empty")
  if len({d.process_index for d in devices}) > 1:
    return _multiprocess_plan(num_members, devices, small_sequential_matmuls, member_bytes)
  if devices[0].platform != "cpu":
    # GPUs and TPUs: members vmapped (a lone member unbatched), the population sharded over
    # every device and padded to a multiple of them; no groups, no cases split.
    padded = num_members + (-num_members) % len(devices)
    axis = POPULATION if len(devices) > 1 else None
    return Plan("unbatched" if padded == 1 else "vmap", devices, axis, num_members, padded, padded)
  # CPUs: XLA:CPU runs one device's program one operation at a time, a small matmul on one
  # core, so jax gets one CPU device per core (JAX_NUM_CPU_DEVICES, docs/performance.md).
  if num_members < len(devices):
    if num_members == 1 and small_sequential_matmuls and batch_size % len(devices) == 0:
      return Plan("cases", devices, CASES, 1, 1, 1)
    devices = devices[:num_members]  # an autoencoder's matmuls already use every core
  padded = num_members + (-num_members) % len(devices)
  axis = POPULATION if len(devices) > 1 else None
  local = padded // len(devices)
  if padded == 1:
    return Plan("unbatched", devices, axis, num_members, 1, 1)
  if small_sequential_matmuls:
    # Vmapping an RNN's time scan costs more than it saves on a CPU: the stacked [L, P, B, H]
    # scan arrays are transposed for every batched matmul, and XLA:CPU runs a batched
    # [P, 100, 100] matmul as P small ones anyway.
    return Plan("member_by_member", devices, axis, num_members, padded, 1)
  group = group_size(local, member_bytes)
  return Plan("groups" if group < local else "vmap", devices, axis, num_members, padded, group)


def _multiprocess_plan(num_members, devices, small_sequential_matmuls, member_bytes) -> Plan:
  """Devices of several processes: the members are sharded over all of them (padded), whatever
  the population size, so every process runs its share of the one program."""
  if devices[0].platform == "cpu":
    local = [d for d in devices if d.process_index == devices[0].process_index]
    if len(local) > 1:
      # Batched LAPACK calls on two CPU devices of one process can deadlock
      # (LAPACK_DEADLOCK_JAXLIB), and a multi-process run cannot serialise them on one device.
      raise ValueError(f"a multi-process CPU run needs one CPU device per process, process 0 has "
                       f"{len(local)}: set JAX_NUM_CPU_DEVICES=1 (docs/distributed.md)")
  padded = num_members + (-num_members) % len(devices)
  local = padded // len(devices)
  if devices[0].platform != "cpu":
    return Plan("vmap", devices, POPULATION, num_members, padded, padded)
  if small_sequential_matmuls and local > 1:
    return Plan("member_by_member", devices, POPULATION, num_members, padded, 1)
  group = group_size(local, member_bytes)
  return Plan("groups" if group < local else "vmap", devices, POPULATION, num_members, padded,
              group)


__all__ = ["Plan", "plan", "group_size", "CASES", "POPULATION", "STRATEGIES",
           "LAPACK_DEADLOCK_JAXLIB"]
