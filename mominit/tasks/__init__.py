"""The RNN long-term dependency problems (Hochreiter & Schmidhuber 1997; Martens & Sutskever 2011).

Each problem is a frozen dataclass with the sizes an RNN needs (`num_inputs`, `num_outputs`,
`max_len`, `readout`), its initialization constants (`input_scale`, `output_bias`) and a pure
`sample(key, batch_size) -> Batch` that draws fresh sequences with `jax.random` only, with static
shapes (every sequence is padded to `max_len`), so it can be jitted, vmapped and called on device
at every training step. `batch_size` must be a Python int (it fixes a shape); so must the task's
own sizes.

`Batch.mask` marks the time steps where the loss and the zero-one error are computed; the
padding after a sequence's end is zero in `inputs`, `targets` and `mask`.

The definitions follow Sutskever's own generators (`opt/d/seq` in the public HF-RNN code), read
to understand them; docs/paper.md section 5 restates them with 0-based positions and half-open
ranges.
All position ranges are written as f(x) = floor(x T / 100), as in that code. Where this module
departs from that code, the class docstring says so.

Input scale (Table 4 of the paper: sigma of the input-to-hidden weights): 0.001 for problems with
many irrelevant distractor inputs (every problem here with random inputs at every step:
addition, multiplication, XOR, temporal order, random permutation), 0.1 for the noiseless
memorization problems, whose inputs are blanks apart from the characters and the trigger.

Output bias (Table 4: "the average of the targets"): for a real-valued readout, the mean target
over masked steps (in the task's units, i.e. 0 when targets are centred). For a softmax readout
there is no single "mean output" in logit space; we use log of the mean target frequency over
masked steps (the softmax of these logits is exactly that frequency), with frequencies below
1e-4 (symbols that are never a target) floored at 1e-4 to keep the logits finite.
"""
import inspect

from mominit.tasks.arithmetic import Arithmetic, Xor, addition, multiplication, xor
from mominit.tasks.base import (
    DISTRACTOR_INPUT_SCALE, INPUT_SCALE, REAL_TOLERANCE, Baseline, Batch, biases_baseline,
)
from mominit.tasks.memorization import Memorization, mem5, mem20, memorization
from mominit.tasks.symbolic import (
    RandomPermutation, TemporalOrder, random_permutation, temporal_order,
)


_MAKERS = {
    "addition": addition,
    "multiplication": multiplication,
    "mem5": mem5,
    "mem20": mem20,
    "memorization": memorization,
    "xor": xor,
    "temporal_order": temporal_order,
    "random_permutation": random_permutation,
}
NAMES = tuple(_MAKERS)


def make(name: str, **kwargs):
  """Builds a task from its name.

  Args:
    name: one of `NAMES`: "addition", "multiplication", "mem5", "mem20", "memorization",
      "xor", "temporal_order", "random_permutation".
    **kwargs: the keyword arguments of the function of that name (e.g. `T=80`).

  Returns:
    The task object.

  `center` is accepted for every task so that one config key serves them all; it only acts on
  the tasks with real-valued channels (addition, multiplication, XOR) and is dropped for the
  one-hot tasks, which the paper calls "already centered".

  Raises:
    ValueError: unknown name (the message lists the valid ones) or bad arguments.
  """
  if name not in _MAKERS:
    raise ValueError(f"unknown task {name!r}; valid names: {', '.join(NAMES)}")
  factory = _MAKERS[name]
  if "center" not in inspect.signature(factory).parameters:
    kwargs.pop("center", None)
  try:
    return factory(**kwargs)
  except TypeError as e:  # Unknown or missing keyword: report it as bad input.
    raise ValueError(f"bad arguments for task {name!r}: {e}") from e


__all__ = [
    "Arithmetic", "Baseline", "Batch", "DISTRACTOR_INPUT_SCALE", "INPUT_SCALE", "Memorization",
    "NAMES", "REAL_TOLERANCE", "RandomPermutation", "TemporalOrder", "Xor", "addition",
    "biases_baseline", "make", "mem20", "mem5", "memorization", "multiplication",
    "random_permutation", "temporal_order", "xor",
]
