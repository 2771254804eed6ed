"""Problems the engine trains: a model, its data and batching, its loss and its errors.

Adding a problem (one place, this package): write a module with ``AXES`` (its own sweep axes),
``add_defaults(config)``, ``validate(config)`` and ``make(config, data=None) -> Problem`` (and
``CHOICES``, ``{axis: valid values}``, for categorical axes), and add
it to :data:`KINDS` under the ``config.kind`` that selects it.
"""
from mominit.problems import autoencoder
from mominit.problems import classifier
from mominit.problems import rnn
from mominit.problems.base import Problem, no_placement

KINDS = {"autoencoder": autoencoder, "classifier": classifier, "rnn": rnn}


def module(kind: str):
  """The module of problem kind ``kind`` (ValueError naming ``config.kind`` if unknown)."""
  if kind not in KINDS:
    raise ValueError(f"config.kind must be one of {sorted(KINDS)}, got {kind!r}")
  return KINDS[kind]


def make(config, data=None) -> Problem:
  """The :class:`Problem` a config describes (``data`` overrides an autoencoder's dataset)."""
  return module(config.kind).make(config, data)


__all__ = ["Problem", "KINDS", "make", "module", "no_placement", "autoencoder", "classifier",
           "rnn"]
