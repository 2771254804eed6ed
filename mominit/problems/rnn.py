"""The RNN long-range-dependency problems of docs/paper.md section 5 (Table 5).

Every update trains on ``config.batch_size`` fresh sequences sampled on the device from
``fold_in(data_key, step)``, so the problem has no data state. Its errors are the test loss and
the zero-one error on ``config.eval_sequences`` fresh sequences.
"""
import warnings

import jax
import jax.numpy as jnp
import ml_collections

from mominit import losses
from mominit.problems.base import Problem

AXES = ("input_scale", "spectral_radius")  # the problem's own sweep axes (per member)


def add_defaults(c: ml_collections.ConfigDict) -> None:
  """The paper's protocol (docs/paper.md sections 2 and 5) as the config's defaults."""
  c.steps = 50_000
  c.sweep.mu_max = (0.0, 0.9, 0.98, 0.995)
  c.sweep.learning_rate = (1e-3, 1e-4, 1e-5, 1e-6)
  c.sweep.input_scale = (0.0,)  # 0 = the task's Table 4 default
  c.sweep.spectral_radius = (0.0,)  # 0 = Table 4's 1.1 (the section 4 study sweeps it)
  c.recurrent_init = "sparse"  # Table 4's W_hh; "dense" is every entry N(0, 1) before the rescale
  c.task = "addition"
  c.task_kwargs = ml_collections.ConfigDict({"T": 80})
  c.center = True
  c.hidden = 100
  c.batch_size = 100
  c.momentum_schedule = "warm"
  c.warm_mu = 0.9        # mu for the first warm_steps updates (section 2)
  c.warm_steps = 1000
  c.eval_sequences = 1000  # fresh sequences for the zero-one error


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError for unknown task names or arguments, and for a run no longer than its
  warm phase with several mu_0 (every member would train at ``warm_mu`` throughout, so they
  would be the same run); warns for such a run with one mu_0."""
  from mominit import models  # pylint: disable=import-outside-toplevel
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  tasks.make(config.task, **dict(config.task_kwargs))
  if config.recurrent_init not in models.rnn.RECURRENT_INITS:
    raise ValueError(f"config.recurrent_init: unknown {config.recurrent_init!r}; valid: "
                     f"{sorted(models.rnn.RECURRENT_INITS)}")
  if config.momentum_schedule == "warm" and int(config.warm_steps) >= int(config.steps):
    mus = sorted({float(m) for m in config.sweep.mu_max if float(m) > 0})
    text = (f"config.warm_steps={config.warm_steps} >= config.steps={config.steps}: every "
            f"momentum member trains at warm_mu={config.warm_mu:g} for the whole run")
    if len(mus) > 1:
      raise ValueError(f"{text}, so the sweep's mu_0 values {mus} would all be the same run; "
                       "set config.warm_steps below config.steps (e.g. a tenth of it)")
    if mus:
      warnings.warn(f"{text}; mu_0={mus[0]:g} is never used", stacklevel=2)


def make(config, data=None) -> Problem:
  """The RNN problem ``config.task`` (``data`` must be None: the sequences are generated)."""
  if data is not None:
    raise ValueError("data= is for autoencoder configs; RNN tasks generate their sequences")
  from mominit import models  # pylint: disable=import-outside-toplevel
  from mominit import tasks  # pylint: disable=import-outside-toplevel
  task = tasks.make(config.task, center=config.center, **dict(config.task_kwargs))
  softmax = task.readout == "softmax"
  seq_loss = losses.masked_softmax_cross_entropy if softmax else losses.masked_squared_error
  zero_one = losses.symbol_zero_one if softmax else losses.real_zero_one

  def make_model(input_scale, spectral_radius):
    return models.TanhRNN(hidden=config.hidden, num_outputs=task.num_outputs,
                          readout=task.readout, input_scale=input_scale,
                          recurrent_init=config.recurrent_init,
                          spectral_radius=spectral_radius, output_bias=task.output_bias)

  apply_model = make_model(1.0, 1.0).apply  # the scales only matter at initialisation

  def init_params(key, hp, data):
    del data
    # 0 in the sweep means Table 4's value: the task's input scale, spectral radius 1.1.
    scale = jnp.where(hp["input_scale"] > 0, hp["input_scale"], task.input_scale)
    radius = jnp.where(hp["spectral_radius"] > 0, hp["spectral_radius"],
                       models.rnn.SPECTRAL_RADIUS)
    dummy = jnp.zeros((1, task.max_len, task.num_inputs), jnp.float32)
    return make_model(scale, radius).init(key, dummy)["params"]

  def init_data(key, hp, data):
    del key, hp, data
    return ()

  def batch(state, key, step, data):
    del data
    return task.sample(jax.random.fold_in(key, step), config.batch_size), state

  def loss(params, batch):
    return seq_loss(apply_model({"params": params}, batch.inputs), batch.targets, batch.mask)

  def evaluate(params, key, data, place):
    del data
    batch = place(task.sample(key, config.eval_sequences))
    out = apply_model({"params": params}, batch.inputs)
    return {"test_loss": seq_loss(out, batch.targets, batch.mask),
            "zero_one": zero_one(out, batch.targets, batch.mask)}

  return Problem(init_params, init_data, batch, loss, evaluate, {}, ("test_loss", "zero_one"),
                 "zero_one", hp_names=AXES, small_sequential_matmuls=True)
