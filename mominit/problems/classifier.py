"""The MLP classifier of the Glorot & Bengio (2010) study (docs/paper.md section 7).

``config.depth`` hidden layers of ``config.width`` units with ``config.activation`` and a
linear output layer of ``config.num_classes`` logits (MNIST: 784 -> 5 x 1000 -> 10), trained on
the softmax cross-entropy of minibatches of ``config.batch_size`` cases. As for the
autoencoders, a member takes its minibatches in the order of a per-member, per-epoch
permutation of the training set drawn from ``fold_in(data_key, epoch)``
(``autoencoder.epoch_order``); the permutation is its data state. Members of one seed therefore
see the same minibatches.

The initialization is a sweep axis, ``config.sweep.init`` (names of
``models.AUTOENCODER_INITS``, the paper's rule ``models.layer_inits``): a categorical axis
(``CHOICES``), traced as its index, so every initialization of one net trains in one compiled
population. Members of one seed start from the same key (their weights are the same draws put
through different rules).

Errors (at the optimizer family's ``eval_params``) on the first ``config.eval_cases`` cases of
each split (0 = all): ``train_xent`` / ``test_xent`` (cross-entropy, nats per case) and
``train_error`` / ``test_error`` (classification error). With ``config.diagnostics_every`` > 0
the Glorot & Bengio layer statistics (``mominit.diagnostics.layer_stats``) of the first
``config.diagnostics_cases`` TEST cases (held out, as Glorot & Bengio monitor 300 test cases)
are written every that many updates.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mominit.models.autoencoder import AUTOENCODER_INITS
from mominit.problems.autoencoder import epoch_minibatch, epoch_order
from mominit.problems.base import Problem

AXES = ("init",)  # the problem's own sweep axes (per-member hyper-parameters)
CHOICES = {"init": AUTOENCODER_INITS}  # categorical axes: their valid values
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "softsign", "relu")


class LabeledData(NamedTuple):
  """A classification data set: inputs ``[N, D]`` float and integer labels ``[N]``."""
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray


def add_defaults(c: ml_collections.ConfigDict) -> None:
  """Glorot & Bengio's protocol (plain SGD, minibatches of 10) as the config's defaults."""
  c.steps = 30_000
  c.sweep.rule = ("cm",)        # with mu_max 0: plain SGD (reported as "sgd")
  c.sweep.mu_max = (0.0,)
  c.sweep.learning_rate = (0.05,)
  c.sweep.init = ("glorot_normalized",)
  c.momentum_schedule = "constant"
  c.data_dir = ""          # folder with the four MNIST idx files (unless data= is given)
  c.width = 1000
  c.depth = 5
  c.activation = "tanh"    # hidden units: sigmoid | tanh | softsign | relu
  c.num_classes = 10
  c.batch_size = 10
  c.eval_cases = 0         # errors on the first N cases of each split (0 = all)
  c.diagnostics_every = 0  # Glorot & Bengio layer statistics every N updates (0 = off)
  c.diagnostics_cases = 300  # test cases they are computed on


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field for a bad classifier setting."""
  for name in ("width", "depth", "num_classes", "diagnostics_cases"):
    value = config[name]
    if isinstance(value, bool) or int(value) != value or value < (2 if name == "num_classes"
                                                                   else 1):
      raise ValueError(f"config.{name} must be a positive integer"
                       f"{' >= 2' if name == 'num_classes' else ''}, got {value!r}")
  if int(config.eval_cases) != config.eval_cases or config.eval_cases < 0:
    raise ValueError(f"config.eval_cases must be >= 0 (0 = all), got {config.eval_cases!r}")
  if config.activation not in HIDDEN_ACTIVATIONS:
    raise ValueError(f"config.activation: unknown {config.activation!r}; valid: "
                     f"{list(HIDDEN_ACTIVATIONS)}")


def xent(logits: jax.Array, batch) -> jax.Array:
  """Mean softmax cross-entropy (nats per case) of logits [B, K] against ``batch[1]``, the
  integer labels [B]. The loss of training and of the diagnostics (``loss_fn(outputs, batch)``)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]))


def net(config, input_width: int = 784, init: str = ""):
  """The ``mominit.diagnostics.MLP`` of a config: input_width -> depth x width -> num_classes,
  initialized by ``models.layer_inits(init, ...)`` (no ``init``: flax's defaults, for ``apply``
  and ``diagnostics.layer_spec``)."""
  from mominit import diagnostics  # pylint: disable=import-outside-toplevel
  from mominit import models  # pylint: disable=import-outside-toplevel
  sizes = (input_width,) + (config.width,) * config.depth + (config.num_classes,)
  kwargs = {}
  if init:
    acts = (config.activation,) * config.depth + ("linear",)
    kwargs = dict(zip(("kernel_init", "bias_init"), models.layer_inits(init, acts)))
  return diagnostics.MLP(sizes, activation=config.activation, output="linear", **kwargs)


def _load(config) -> LabeledData:
  from mominit.data import mnist  # pylint: disable=import-outside-toplevel
  if not config.data_dir:
    raise ValueError("config.data_dir: the classifier needs the four MNIST idx files there "
                     "(or pass data=LabeledData(...))")
  (tx, ty), (vx, vy) = mnist.load_split(config.data_dir, "train"), mnist.load_split(
      config.data_dir, "test")
  return LabeledData(tx, ty, vx, vy)


def _check(data, config) -> LabeledData:
  data = LabeledData(*data)
  for split in ("train", "test"):
    x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
    if np.ndim(x) != 2 or np.ndim(y) != 1 or len(x) != len(y) or len(x) == 0:
      raise ValueError(f"classifier {split} data must be inputs [N, D] and labels [N] (N > 0), "
                       f"got shapes {np.shape(x)} and {np.shape(y)}")
    if not np.issubdtype(np.asarray(y).dtype, np.integer):
      raise ValueError(f"classifier {split} labels must be integers, got {np.asarray(y).dtype}")
    if np.any((np.asarray(y) < 0) | (np.asarray(y) >= config.num_classes)):
      raise ValueError(f"classifier {split} labels must lie in [0, config.num_classes="
                       f"{config.num_classes})")
  if np.shape(data.train_x)[1] != np.shape(data.test_x)[1]:
    raise ValueError(f"train and test inputs differ in width: {np.shape(data.train_x)} vs "
                     f"{np.shape(data.test_x)}")
  if config.batch_size > len(data.train_x):
    raise ValueError(f"config.batch_size={config.batch_size} is larger than the training set "
                     f"({len(data.train_x)} cases)")
  if config.diagnostics_every and config.diagnostics_cases > len(data.test_x):
    raise ValueError(f"config.diagnostics_cases={config.diagnostics_cases} exceeds the "
                     f"{len(data.test_x)} test cases")
  return data


def _block_size(n, limit=2000):
  """The largest divisor of n not above limit, so a split evaluates in equal blocks."""
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def make(config, data=None) -> Problem:
  """The classifier problem.

  Args:
    config: a classifier config (``default_config("classifier")``).
    data: a :class:`LabeledData` (or 4-tuple) to train on instead of loading MNIST from
      ``config.data_dir``; labels are integers in ``[0, config.num_classes)``.
  """
  from mominit import diagnostics as diag  # pylint: disable=import-outside-toplevel
  data = _check(_load(config) if data is None else data, config)
  dtype = jnp.result_type(float)  # the default float dtype (float64 under jax_enable_x64)
  arrays = {f"{split}_{part}": jnp.asarray(getattr(data, f"{split}_{part}"),
                                            dtype if part == "x" else jnp.int32)
            for split in ("train", "test") for part in ("x", "y")}
  n, batch_size = arrays["train_x"].shape[0], config.batch_size
  width = arrays["train_x"].shape[1]
  model = net(config, width)
  # Only the initializations the sweep names are compiled; a member's hp["init"] is its index.
  inits = tuple(dict.fromkeys(config.sweep.init))

  def init_params(key, hp, data):
    def one(name):
      return lambda k: net(config, width, name).init(k, data["train_x"][:1])["params"]
    return jax.lax.switch(jnp.asarray(hp["init"]).astype(jnp.int32), [one(i) for i in inits], key)

  def init_data(key, hp, data):
    del hp, data
    return epoch_order(key, 0, n)

  def batch(order, key, step, data):
    idx, order = epoch_minibatch(order, key, step, n, batch_size)
    return (data["train_x"][idx], data["train_y"][idx]), order

  def loss(params, batch):
    return xent(model.apply({"params": params}, batch[0]), batch)

  def split_errors(params, x, y):
    """Mean cross-entropy and classification error over the cases, in equal blocks."""
    block = _block_size(x.shape[0])

    def one(b):
      logits = model.apply({"params": params}, b[0])
      return (jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, b[1])),
              jnp.mean((jnp.argmax(logits, -1) != b[1]).astype(logits.dtype)))

    xents, errors = jax.lax.map(one, (x.reshape(-1, block, x.shape[-1]), y.reshape(-1, block)))
    return jnp.mean(xents), jnp.mean(errors)

  def evaluate(params, key, data, place):
    del key, place  # whole (or leading) splits, in blocks
    out = {}
    for split in ("train", "test"):
      total = data[f"{split}_x"].shape[0]
      m = min(config.eval_cases, total) if config.eval_cases else total
      out[f"{split}_xent"], out[f"{split}_error"] = split_errors(
          params, data[f"{split}_x"][:m], data[f"{split}_y"][:m])
    return out

  def diagnostics(params, data):
    cases = config.diagnostics_cases
    return diag.layer_stats(model, params, (data["test_x"][:cases], data["test_y"][:cases]), xent)

  every = config.diagnostics_every
  points = tuple(range(every, config.steps, every)) if every else ()
  return Problem(init_params, init_data, batch, loss, evaluate, arrays,
                 ("train_xent", "train_error", "test_xent", "test_error"), "test_error",
                 hp_names=AXES, hp_choices={"init": inits}, eval_points=points,
                 diagnostics=diagnostics if every else None, diagnostics_every=every)
