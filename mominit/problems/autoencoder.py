"""The deep-autoencoder problems of docs/paper.md section 4 (CURVES, MNIST, FACES; Table 1).

A member trains on minibatches of ``config.batch_size`` cases taken in the order of a
per-member, per-epoch permutation of the training set drawn from ``fold_in(data_key, epoch)``;
the permutation is the member's data state. Its error is the paper's per-case squared
reconstruction error on the training and test sets.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mominit import losses
from mominit.problems.base import Problem

AXES = ("init_scale",)  # the problem's own sweep axes (per-member hyper-parameters)


def add_defaults(c: ml_collections.ConfigDict) -> None:
  """The paper's protocol (docs/paper.md sections 2 and 4) as the config's defaults."""
  c.steps = 750_000
  c.sweep.mu_max = (0.0, 0.9, 0.99, 0.995, 0.999)
  c.sweep.learning_rate = (0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001)
  c.sweep.init_scale = (1.0,)
  c.dataset = "curves"
  c.data_dir = ""        # folder with the real data files ("" = built-in / none)
  c.num_train = 0        # use only the first num_train training cases (0 = all)
  c.num_test = 0         # likewise for the test set
  c.init = "sparse"      # sparse | gaussian | glorot_standard | glorot_normalized
  c.activation = "sigmoid"
  # Encoder widths from the input to the code, e.g. (784, 100, 6) (the decoder mirrors them);
  # None = the paper's net for the dataset. A None default keeps older config.json files valid.
  c.encoder_sizes = ml_collections.config_dict.placeholder(tuple)
  c.batch_size = 200
  c.momentum_schedule = "sutskever"
  c.momentum_period = 250
  c.final_steps = 1000   # last updates with mu = final_mu (Table 2); 0 = off
  c.final_mu = 0.9
  c.diagnostics_every = 0     # Glorot & Bengio layer statistics every N updates (0 = off)
  c.diagnostics_cases = 500   # training cases they are computed on


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field for a bad autoencoder setting."""
  if int(config.diagnostics_cases) <= 0:
    raise ValueError(f"config.diagnostics_cases must be positive, got {config.diagnostics_cases}")
  if not 0 <= config.final_steps < config.steps:
    raise ValueError(f"config.final_steps must be in [0, steps={config.steps}), "
                     f"got {config.final_steps}")
  if not 0.0 <= config.final_mu < 1.0:
    raise ValueError(f"config.final_mu must be in [0, 1), got {config.final_mu}")
  for name in ("num_train", "num_test"):
    if int(config[name]) != config[name] or config[name] < 0:
      raise ValueError(f"config.{name} must be >= 0 (0 = all), got {config[name]!r}")
  for v in config.sweep.init_scale:
    if not (np.isfinite(float(v)) and float(v) > 0):  # the models require > 0
      raise ValueError(f"config.sweep.init_scale: must be finite and > 0 for an autoencoder, "
                       f"got {v!r}")
  sizes = config.get("encoder_sizes")
  if sizes is not None and (len(sizes) < 2 or not all(
      isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes)):
    raise ValueError(f"config.encoder_sizes must be None or at least two positive ints, got "
                     f"{sizes!r}")
  from mominit import data  # pylint: disable=import-outside-toplevel
  if config.dataset not in data.NAMES:
    raise ValueError(f"unknown dataset {config.dataset!r}; valid: {sorted(data.NAMES)}")


def epoch_order(data_key: jax.Array, epoch, num_train: int) -> jax.Array:
  """int32 [num_train]: the member's permutation of the training cases in ``epoch``."""
  return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_train).astype(jnp.int32)


def epoch_minibatch(order, data_key, step, num_train: int, batch_size: int):
  """(int32 [batch_size] case indices of update ``step``, the epoch's order): the next slice of
  the epoch's permutation, drawn anew (``epoch_order``) when an epoch starts. ``step`` is the
  same for every member (unbatched), so under vmap the redraw stays a cond."""
  steps_per_epoch = num_train // batch_size
  order = jax.lax.cond(step % steps_per_epoch == 0,
                       lambda: epoch_order(data_key, step // steps_per_epoch, num_train),
                       lambda: order)
  start = (step % steps_per_epoch) * batch_size
  return jax.lax.dynamic_slice_in_dim(order, start, batch_size), order


def _block_size(n, limit=2000):
  """The largest divisor of n not above limit, so the data splits into equal evaluation blocks."""
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _dataset_error(predict, params, data):
  """Mean over cases of the per-case squared error, evaluated in equal blocks (bounded memory)."""
  block = _block_size(data.shape[0])
  blocks = data.reshape(-1, block, data.shape[-1])
  errs = jax.lax.map(lambda x: losses.squared_error(predict(params, x), x), blocks)
  return jnp.mean(errs)


def make(config, data=None) -> Problem:
  """The deep-autoencoder problem for ``config.dataset``.

  Args:
    config: an autoencoder config.
    data: a ``mominit.data.Dataset`` to train on instead of loading ``config.dataset`` (which
      still fixes the architecture); its arrays are ``[N, D]`` with D the net's input size.
  """
  from mominit import data as data_lib  # pylint: disable=import-outside-toplevel
  from mominit import models  # pylint: disable=import-outside-toplevel
  dataset = data if data is not None else data_lib.load(config.dataset, config.data_dir or None)
  sizes = tuple(config.get("encoder_sizes") or models.AUTOENCODER_SIZES[config.dataset])
  output = models.AUTOENCODER_OUTPUTS[config.dataset]
  width = sizes[0]
  for split, array in zip(("train", "test"), dataset):
    if np.ndim(array) != 2 or np.shape(array)[1] != width:
      raise ValueError(f"{config.dataset} {split} data must be [N, {width}], got shape "
                       f"{np.shape(array)}")
  for name, split, array in (("num_train", "training", dataset.train),
                             ("num_test", "test", dataset.test)):
    if config[name] > len(array):
      raise ValueError(f"config.{name}={config[name]} exceeds the {len(array)} {split} cases")
  train = dataset.train[:config.num_train] if config.num_train else dataset.train
  test = dataset.test[:config.num_test] if config.num_test else dataset.test
  dtype = jnp.result_type(float)  # the default float dtype (float64 under jax_enable_x64)
  train, test = jnp.asarray(train, dtype), jnp.asarray(test, dtype)
  n, batch_size = train.shape[0], config.batch_size
  if batch_size > n:
    raise ValueError(f"config.batch_size={batch_size} is larger than the training set ({n} cases)")
  logistic = models.AUTOENCODER_OUTPUTS[config.dataset] == "logistic"
  loss_fn = losses.sigmoid_cross_entropy if logistic else losses.squared_error
  model = models.autoencoder_from_sizes(sizes, output, activation=config.activation)

  def init_params(key, hp, data):
    init_model = models.autoencoder_from_sizes(sizes, output, init=config.init,
                                               init_scale=hp["init_scale"],
                                               activation=config.activation)
    return init_model.init(key, data["train"][:1])["params"]

  def init_data(key, hp, data):
    del hp, data
    return epoch_order(key, 0, n)

  def batch(order, key, step, data):
    idx, order = epoch_minibatch(order, key, step, n, batch_size)
    return data["train"][idx], order

  def loss(params, x):
    return loss_fn(model.apply({"params": params}, x), x)

  def predict(params, x):
    out = model.apply({"params": params}, x)
    return jax.nn.sigmoid(out) if logistic else out

  def evaluate(params, key, data, place):
    del key, place  # whole data sets, in blocks
    return {"train_error": _dataset_error(predict, params, data["train"]),
            "test_error": _dataset_error(predict, params, data["test"])}

  def diagnostics(params, data):
    from mominit import diagnostics as diag  # pylint: disable=import-outside-toplevel
    return diag.layer_stats(model, params, data["train"][:config.diagnostics_cases], loss_fn)

  steps, every = config.steps, config.diagnostics_every
  points = set(range(every, steps, every)) if every else set()
  final_start = steps - config.final_steps if config.final_steps else None  # None: NaN column
  if final_start is not None:
    points.add(final_start)
  marks = {"error_before_final": (final_start, "train_error")}
  return Problem(init_params, init_data, batch, loss, evaluate, {"train": train, "test": test},
                 ("train_error", "test_error"), "train_error", hp_names=AXES,
                 eval_points=tuple(sorted(points)), marks=marks,
                 diagnostics=diagnostics if every else None, diagnostics_every=every)
