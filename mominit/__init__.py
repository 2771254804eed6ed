"""mominit: initialization and momentum in deep learning (Sutskever et al., ICML 2013), in JAX.

The momentum rules are importable from the top level; the rest lives in submodules that are
imported on first use (``mominit.models``, ``mominit.data`` ...), so ``import mominit`` stays cheap.
"""
import importlib

from mominit.momentum import cm, momentum_rule, nag, theta, MomentumState
from mominit import schedules

__version__ = "0.1.0"

_SUBMODULES = (
    "data", "diagnostics", "engine", "hf", "initializers", "losses", "member", "models",
    "optimizers", "placement", "problems", "quadratic", "runlog", "schedules", "sweep", "tasks",
    "train",
)


def __getattr__(name):
  # Lazy submodules: `mominit.train` pulls in orbax, which a notebook using only `cm` never needs.
  if name in _SUBMODULES:
    return importlib.import_module(f"mominit.{name}")
  raise AttributeError(f"module 'mominit' has no attribute {name!r}")


__all__ = ["cm", "nag", "momentum_rule", "theta", "MomentumState", "schedules", *_SUBMODULES]
