"""What one member trains: the :class:`Problem` interface the engine vmaps."""
import dataclasses
from typing import Callable, Optional


def no_placement(batch):
  """The ``place`` of a problem traced on one device: the minibatch as it is."""
  return batch


@dataclasses.dataclass(frozen=True)
class Problem:
  """What one member trains, written for a single member (the engine vmaps it).

  Problems never see a device: the engine passes ``place``, a function the problem applies to
  every minibatch it builds inside ``evaluate`` (the engine applies it to ``batch``'s output), so
  a placement can split the minibatch's case axis over devices.

  Attributes:
    init_params: (key, hp, data) -> params.
    init_data: (key, hp, data) -> the member's data state (e.g. the epoch's permutation of the
      training cases; ``()`` when the problem has none). ``key`` is the member's data key.
    batch: (data_state, key, step, data) -> (minibatch, data_state): the minibatch of update
      ``step`` (``key`` is the member's data key), and the data state after it.
    loss: (params, minibatch) -> scalar training loss.
    evaluate: (params, key, data, place) -> dict of scalar errors at the given parameters.
    data: the arrays the functions read (a dict; empty for RNNs). They are passed to the jitted
      functions as arguments, not captured, so they are not baked into the compiled program.
    error_names: the keys ``evaluate`` returns.
    main_error: the error the progress bar shows.
    hp_names: per-member hyper-parameters the problem reads (its own sweep axes).
    hp_choices: the categorical ones among them: ``{name: values}``; a member's value enters
      ``hp`` as its index in ``values`` (e.g. the classifier's ``init``).
    eval_points: update counts, besides the regular ``eval_every`` ones, to evaluate after.
    marks: ``{column: (step, error)}``: the value of ``error`` at update ``step`` becomes a
      results column (e.g. the error when the final low-momentum phase starts).
    small_sequential_matmuls: whether one update is a chain of small matmuls (an RNN's time
      steps) rather than a few large ones. On CPUs such a problem runs member after member and
      a lone member splits its cases over the CPU devices (``mominit.placement``).
    diagnostics: optional (params, data) -> pytree of statistics, computed every
      ``diagnostics_every`` updates into ``diagnostics.jsonl``.
    diagnostics_every: see ``diagnostics`` (0 = off).
  """
  init_params: Callable
  init_data: Callable
  batch: Callable
  loss: Callable
  evaluate: Callable
  data: dict
  error_names: tuple
  main_error: str
  hp_names: tuple = ()
  hp_choices: dict = dataclasses.field(default_factory=dict)
  eval_points: tuple = ()
  marks: dict = dataclasses.field(default_factory=dict)
  small_sequential_matmuls: bool = False
  diagnostics: Optional[Callable] = None
  diagnostics_every: int = 0
