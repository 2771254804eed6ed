"""Runnable experiments: `python -m experiments.<name>`.

jax's CPU linear algebra (the SVDs and eigenvalues of the diagnostics and the RNN init) calls
OpenBLAS through scipy. With OpenBLAS's own thread pool on top of XLA's, the 2-core machines we
target ran those 50-80x slower, so unless the user chose otherwise OpenBLAS gets one thread. This
must happen before numpy is imported, which is why it lives in the package's __init__.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
