"""Shared test set-up.

Tests run on the CPU. Tests that need float64 use the `x64` fixture, which switches
`jax_enable_x64` on for that test only and restores it afterwards.
"""
import os
import pathlib

import jax
import pytest

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
MNIST_DIR = pathlib.Path(os.environ.get("MOMINIT_MNIST_DIR", SHARED / "data" / "mnist"))


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
