"""Multi-process runs: one population sharded over the devices of several processes (hosts).

Every process runs the same ``train_and_evaluate(config, workdir)`` with
``config.distributed = True``; the population is sharded over all processes' devices, each
process trains its members, and process 0 alone writes ``config.json``, ``metrics.jsonl`` and
``results.csv`` (orbax writes the checkpoint: each process its shards, process 0 the rest).
``docs/distributed.md`` shows how to launch it.

:func:`initialize` connects the processes. It reads

- ``MOMINIT_COORDINATOR``: ``host:port`` of process 0's coordination service,
- ``MOMINIT_NUM_PROCESSES``: the number of processes,
- ``MOMINIT_PROCESS_ID``: this process's index, 0 .. N - 1,

and, when these are unset, leaves them to jax's cluster detection (SLURM, Open MPI, Kubernetes,
Cloud TPU; ``JAX_COORDINATOR_ADDRESS``). ``MOMINIT_DISTRIBUTED_TIMEOUT`` (seconds, default 300)
bounds the wait for the other processes. A loopback coordinator (``127.0.0.1:port``) binds only
to loopback.
"""
import ipaddress
import os
from typing import Optional

import jax
import numpy as np

COORDINATOR = "MOMINIT_COORDINATOR"
NUM_PROCESSES = "MOMINIT_NUM_PROCESSES"
PROCESS_ID = "MOMINIT_PROCESS_ID"
TIMEOUT = "MOMINIT_DISTRIBUTED_TIMEOUT"


def _env_int(name: str) -> Optional[int]:
  text = os.environ.get(name)
  if text is None or text == "":
    return None
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"${name} must be an integer, got {text!r}") from None


def settings() -> dict:
  """The keyword arguments :func:`initialize` passes to ``jax.distributed.initialize``, from the
  environment (checked: ValueError naming the variable)."""
  coordinator = os.environ.get(COORDINATOR) or None
  num, pid, timeout = _env_int(NUM_PROCESSES), _env_int(PROCESS_ID), _env_int(TIMEOUT)
  if num is not None and num < 1:
    raise ValueError(f"${NUM_PROCESSES} must be >= 1, got {num}")
  if pid is not None and num is not None and not 0 <= pid < num:
    raise ValueError(f"${PROCESS_ID} must be in [0, {num}) (${NUM_PROCESSES}={num}), got {pid}")
  if timeout is not None and timeout < 1:
    raise ValueError(f"${TIMEOUT} must be >= 1 (seconds), got {timeout}")
  kwargs = {"coordinator_address": coordinator, "num_processes": num, "process_id": pid,
            "initialization_timeout": timeout or 300}
  if coordinator is not None:
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
      raise ValueError(f"${COORDINATOR} must be host:port, got {coordinator!r}")
    try:
      loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
      loopback = host == "localhost"
    if loopback:  # jax would otherwise bind the service to every interface
      kwargs["coordinator_bind_address"] = coordinator
  return kwargs


def initialize() -> None:
  """Connects this process to the others (``jax.distributed.initialize``); a no-op when jax is
  already connected. Must run before anything touches a jax device."""
  if jax.distributed.is_initialized():
    return
  kwargs = {k: v for k, v in settings().items() if v is not None}
  jax.distributed.initialize(**kwargs)


def is_writer() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def to_host(x) -> np.ndarray:
  """A jax array as a NumPy array, also when it is sharded over several processes (then every
  process must call this, in the same order: it gathers)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def barrier(name: str) -> None:
  """Waits until every process reached ``barrier(name)`` (nothing with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    multihost_utils.sync_global_devices(name)
