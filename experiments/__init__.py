"""Runnable experiments: `python -m experiments.<name>`.

Two environment defaults are set here, before numpy and jax are imported (so they live in the
package's __init__); a value the user set is kept:

- jax's CPU linear algebra (the SVDs and eigenvalues of the diagnostics and the RNN init) calls
  OpenBLAS through scipy. With OpenBLAS's own thread pool on top of XLA's, the 2-core machines we
  target ran those 50-80x slower, so OpenBLAS gets one thread.
- ``JAX_NUM_CPU_DEVICES``: one jax CPU device per core. XLA:CPU runs one device's program one
  operation at a time and a small matmul on one core, so a lone RNN run left the other cores
  idle; with a device per core the training engine splits a lone RNN's minibatch over them and
  shards larger populations member-wise (``mominit.train.Engine``, docs/performance.md). Plain
  ``jax.jit`` code still runs on the first device and uses every core there. Set it to 1 to get
  the single-device behaviour back.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault(
    "JAX_NUM_CPU_DEVICES",
    str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
