"""Memory planning: how many members of a population fit on a device at once.

Before a population trains, ``plan_groups`` compiles the training chunk and the evaluation of
ONE member on one device and reads their sizes from XLA (``compiled.memory_analysis()``:
arguments + outputs + temporaries, minus buffers aliased in place). A group of G members needs
at most G times that member's bytes plus the data once (vmapped members each hold their own
temporaries; members run one after another share them, so this is an upper bound). The
population then trains in the fewest equal groups of at most ``budget // per-member`` members
(one after another on each device, all groups' states kept), and a member that alone does not
fit is refused with a message naming the sizes and the fields to change.

The budget is ``config.memory_budget`` bytes, or, when that is 0, a fraction
(``DEFAULT_FRACTION``) of the device's memory: an accelerator's ``bytes_limit``, a CPU's
physical memory or the cgroup limit of the process, whichever is smaller, divided by the
number of CPU devices (they share it).
"""
import dataclasses
import math
import os
import pathlib
from typing import Sequence

import jax
import numpy as np

# Of the device memory, what the planner lets a population use: the rest is for the runtime,
# the host's copies of the metrics, and fragmentation.
DEFAULT_FRACTION = 0.6


def compiled_bytes(compiled) -> int:
  """Bytes a compiled XLA program needs on its device while it runs: arguments + outputs +
  temporaries - aliased (donated) buffers (0 where the backend reports no analysis)."""
  m = compiled.memory_analysis()
  if m is None:
    return 0
  return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - m.alias_size_in_bytes)


def _host_memory() -> int:
  """Physical memory, or the process's cgroup limit when smaller (bytes)."""
  total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    try:
      text = pathlib.Path(path).read_text().strip()
    except OSError:
      continue
    if text.isdigit():
      total = min(total, int(text))
  return int(total)


def device_budget(devices: Sequence, fraction: float = DEFAULT_FRACTION) -> int:
  """The default memory budget of ONE of ``devices`` for a population (bytes)."""
  device = devices[0]
  stats = None
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except  (CPU devices may not implement it)
    stats = None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"] * fraction)
  cpus = max(1, sum(1 for d in jax.devices() if d.platform == "cpu"))
  return int(_host_memory() * fraction / cpus)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
  """How a population is split to fit the memory budget.

  Attributes:
    member_bytes: bytes one member needs while it trains or is evaluated (measured; 0 when
      the whole population fit and no member was measured alone).
    shared_bytes: bytes every group shares (the problem's data).
    budget: the budget per device (bytes).
    groups: the group sizes, in member order (one group: no split).
    population_bytes: what the whole population needs per device (measured).
  """
  member_bytes: int
  shared_bytes: int
  budget: int
  groups: tuple
  population_bytes: int = 0

  def __str__(self):
    mb = lambda b: f"{b / 1e6:,.1f} MB"
    if len(self.groups) == 1:
      return (f"Memory: {sum(self.groups)} member(s) need {mb(self.population_bytes)} per "
              f"device, budget {mb(self.budget)}: one group")
    return (f"Memory: the {sum(self.groups)} members would need {mb(self.population_bytes)} "
            f"per device, over the budget of {mb(self.budget)}; one member needs "
            f"{mb(self.member_bytes)} + {mb(self.shared_bytes)} of data: "
            f"{len(self.groups)} groups of {max(self.groups)}, trained one after another")


def equal_groups(num_members: int, most: int) -> tuple:
  """The fewest groups of at most ``most`` members, as equal as possible, in member order."""
  count = math.ceil(num_members / max(1, most))
  base, extra = divmod(num_members, count)
  return tuple(base + (1 if i < extra else 0) for i in range(count))


def split(num_members: int, member_bytes: int, shared_bytes: int, budget: int,
          devices: int = 1, what: str = "member", population_bytes: int = 0) -> MemoryPlan:
  """Chooses the groups (see the module docstring).

  A group's bytes per device are modelled as fixed + per-member x members, through the two
  measured points: one member alone (``member_bytes + shared_bytes``) and the whole population
  (``population_bytes`` for its members per device), or, without the latter, as
  ``shared_bytes + members x member_bytes``.

  Args:
    num_members: the population size P.
    member_bytes: one member's bytes alone (measured), without the data.
    shared_bytes: the bytes all members share on a device (the data).
    budget: bytes available per device.
    devices: how many devices share a group's members.
    what: how the message names a member (e.g. "rnn member (112 in its population)").
    population_bytes: what the whole population needs per device (measured; 0: unknown).

  Raises:
    MemoryError: one member alone does not fit, naming both sizes and what to change.
  """
  one = member_bytes + shared_bytes
  if one > budget:
    raise MemoryError(
        f"one {what} needs {member_bytes / 1e6:,.1f} MB (+ {shared_bytes / 1e6:,.1f} MB of "
        f"data), more than the memory budget of {budget / 1e6:,.1f} MB per device: lower "
        "config.batch_size (or, for RNNs, config.eval_sequences / the task length), use a "
        "larger device, or raise config.memory_budget (bytes) if the machine has more memory")
  local = math.ceil(num_members / max(1, devices))
  if population_bytes and local > 1:
    per = max((population_bytes - one) / (local - 1), 1.0)
    fixed = one - per
  else:
    per, fixed = float(max(member_bytes, 1)), float(shared_bytes)
  most = max(1, int((budget - fixed) // per))
  if population_bytes > budget:
    most = min(most, local - 1)  # the whole population was measured not to fit
  return MemoryPlan(int(member_bytes), int(shared_bytes), int(budget),
                    equal_groups(num_members, min(most, local) * max(1, devices)),
                    int(population_bytes))


def tree_bytes(tree) -> int:
  """Bytes of the arrays of a pytree."""
  return int(sum(np.prod(np.shape(x)) * np.dtype(getattr(x, "dtype", np.float32)).itemsize
                 for x in jax.tree.leaves(tree)))


def budget_from(config, devices) -> int:
  """``config.memory_budget`` when set (> 0), else ``device_budget(devices)``."""
  value = int(config.get("memory_budget", 0) or 0)
  return value if value > 0 else device_budget(devices)


def planned_engines(config, problem, members: list, devices=None, say=print, init=None):
  """Engines that fit the memory budget, with their initial states and compiled programs.

  Each optimizer family's population is compiled as one engine (``Engine.compile``, ahead of
  training) and its memory read from XLA; when that is over the budget
  (``budget_from``: ``config.memory_budget`` bytes, default a share of the
  device's memory), the family trains in the fewest equal groups that fit, each its own engine
  (``split``, measured from a one-member engine), one after another per chunk.

  Args:
    init: optional ``(member indices, engine) -> state`` giving an engine's starting state
      instead of ``engine.init()`` (a run that starts from a branch: nothing to initialize).

  Returns:
    ``([(member indices, engine)], [initial state per engine], [MemoryPlan per family])``;
    ``say`` gets the plan's one-line description when a family is split.

  Raises:
    MemoryError: one member alone does not fit (the message names the sizes and the fields).
  """
  from mominit import sweep  # pylint: disable=import-outside-toplevel
  from mominit.engine import Engine  # pylint: disable=import-outside-toplevel
  devices = list(devices if devices is not None else jax.devices())
  init = init or (lambda idx, engine: engine.init())
  budget = budget_from(config, devices)
  data_bytes = tree_bytes(problem.data)
  parts, states, plans = [], [], []
  for idx in sweep.family_groups(members).values():
    engine = Engine(config, problem, [members[i] for i in idx], devices)
    state = init(idx, engine)
    needed = max(engine.compile(state).values())
    if needed <= budget:
      parts.append((idx, engine))
      states.append(state)
      plans.append(MemoryPlan(0, data_bytes, budget, (len(idx),), needed))
      continue
    probe = Engine(config, problem, [members[idx[0]]], devices[:1])
    one = max(max(probe.compile(probe.init()).values()) - data_bytes, 1)
    what = f"{config.kind} member ({len(idx)} in its population)"
    plan = split(len(idx), one, data_bytes, budget, len(engine.devices), what, needed)
    while True:  # the model is an estimate: check each group's compiled program
      built, start = [], 0
      for size in plan.groups:
        group = idx[start:start + size]
        start += size
        engine = Engine(config, problem, [members[i] for i in group], devices)
        state = init(group, engine)
        built.append((group, engine, state, max(engine.compile(state).values())))
      if max(b[3] for b in built) <= budget or max(plan.groups) == 1:
        break
      plan = dataclasses.replace(plan, groups=equal_groups(len(idx), max(plan.groups) // 2))
    say(str(plan))
    plans.append(plan)
    parts += [(group, engine) for group, engine, _, _ in built]
    states += [state for _, _, state, _ in built]
  return parts, states, plans


__all__ = ["planned_engines", "MemoryPlan", "split", "equal_groups", "compiled_bytes",
           "device_budget", "budget_from", "tree_bytes", "DEFAULT_FRACTION"]
