"""Shared test set-up.

Tests run on the CPU. Tests that need float64 use the `x64` fixture, which switches
`jax_enable_x64` on for that test only and restores it afterwards.
"""
import os
import pathlib

# One OpenBLAS thread (before numpy loads): see experiments/host.py.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Identical programs recur across tests (a population and its members run alone share one HLO,
# because hyper-parameters are traced), so a per-session persistent XLA cache saves most compiles.
# Set in the environment (before jax loads) so that the tests' subprocesses (the CLIs, the
# kill-and-resume scripts, the two-process run) share it too.
_CACHE = os.environ.get("MOMINIT_TEST_JAX_CACHE", "/tmp/mominit-test-jax-cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # pylint: disable=wrong-import-position
import pytest

# The test process keeps jax's own CPU device count (one, unless JAX_NUM_CPU_DEVICES or XLA_FLAGS
# say otherwise): an experiment's main() called by one test must not change it for the tests
# after it (experiments.host.set_defaults leaves a count set here alone).
if jax.config.jax_num_cpu_devices < 0 and (
    "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")):
  jax.config.update("jax_num_cpu_devices", 1)

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The MNIST test set for the tests that need real data (the `mnist_dir` fixture): the folder
# $MOMINIT_MNIST_DIR names, else shared/data/mnist beside the checkout (the project's shared
# folder, where it exists). Only the tests look there; the library and experiments read data
# from the data_dir they are given. Absent files skip those tests with the reason.
_SIBLING_MNIST = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_DIR = pathlib.Path(os.environ.get("MOMINIT_MNIST_DIR") or _SIBLING_MNIST)


@pytest.fixture
def x64():
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def mnist_dir():
  if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists() and not (
      MNIST_DIR / "t10k-images-idx3-ubyte").exists():
    pytest.skip(f"MNIST test files not found in {MNIST_DIR} (the shared/data/mnist folder beside "
                "the checkout, or set MOMINIT_MNIST_DIR)")
  return MNIST_DIR
