"""Process-wide defaults every experiment's `main()` sets first: `set_defaults()`.

They live in `main()`, not in an import, so that importing `experiments` from a notebook or a
test leaves the process as it was. A value the user set (environment variable, or
``jax.config.update`` before `main()`) is kept:

- ``OPENBLAS_NUM_THREADS=1``: jax's CPU linear algebra (the SVDs and eigenvalues of the
  diagnostics and the RNN init) calls OpenBLAS through scipy. With OpenBLAS's own thread pool on
  top of XLA's, the 2-core machines we target ran those 50-80x slower. jax loads scipy's OpenBLAS
  on the first linear-algebra operation, so setting the variable in `main()` is early enough for it
  (numpy's own OpenBLAS, loaded on import, keeps its pool; the experiments' hot paths do not use
  it).
- ``JAX_NUM_CPU_DEVICES``: one jax CPU device per core. XLA:CPU runs one device's program one
  operation at a time and a small matmul on one core, so a lone RNN run left the other cores idle;
  with a device per core the engine splits a lone RNN's minibatch over them and shards larger
  populations member-wise (`mominit.placement`, docs/performance.md). Plain ``jax.jit`` code still
  runs on the first device and uses every core there. Set it to 1 for the single-device
  behaviour. jax reads the variable when it is imported, which is before `main()`, so the value
  also goes to ``jax.config`` (which takes it until the first jax operation starts a backend).
"""
import os
import sys


def cpu_cores() -> int:
  """The number of cores this process may run on (its affinity mask where the OS has one)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def set_defaults() -> None:
  """Sets ``OPENBLAS_NUM_THREADS`` and ``JAX_NUM_CPU_DEVICES`` unless the user chose them.

  Call it first thing in a `main()`, before any jax operation. When a backend is already running
  (a notebook or a test that used jax before calling `main()`), jax's device count stays as it is.
  """
  os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
  forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
  user_set = "JAX_NUM_CPU_DEVICES" in os.environ or forced
  os.environ.setdefault("JAX_NUM_CPU_DEVICES", str(cpu_cores()))
  if "jax" not in sys.modules or user_set:
    return  # an unimported jax reads the variable itself; the user's own choice stands
  import jax  # pylint: disable=import-outside-toplevel
  if jax.config.jax_num_cpu_devices >= 0:
    return  # set with jax.config.update before main()
  try:
    jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))
  except RuntimeError:
    pass  # a backend is running already: its devices cannot change any more
