"""The benchmark's PyTorch peer: plain PyTorch training loops of the autoencoder and the RNN.

Every name here is also importable from ``experiments.benchmark``.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench_workloads import AE_BATCH, RNN_BATCH, RNN_HIDDEN, Timer, autoencoder_layers


# ---------------------------------------------------------------------------------------------
# The PyTorch peer.


def _torch():
  """The ``torch`` module set up for a fair CPU comparison, or None if it is not installed."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  torch.set_flush_denormal(True)
  return torch


def torch_autoencoder(torch, name: str, num_train: int, momentum_fn,
                      learning_rate: float = 0.005, batch: int = AE_BATCH, seed: int = 0):
  """A plain PyTorch training loop of autoencoder ``name``: returns the training objects.

  The net mirrors ``mominit.models.autoencoder``: logistic hidden units, a linear code layer
  and logistic outputs trained with the summed-over-pixels cross-entropy, averaged over cases.
  Minibatches come from a per-epoch ``torch.randperm`` of the training set.

  Args:
    torch: the ``torch`` module (see ``_torch``).
    name: "curves" or "mnist" (the layer sizes of ``mominit.models.AUTOENCODER_SIZES``).
    num_train: training cases (uniform random pixels).
    momentum_fn: ``t -> mu_t`` as a Python float (set on the optimizer before every update).
    learning_rate: eps.
    batch: minibatch size.
    seed: ``torch.manual_seed`` for the initial weights and the data.

  Returns:
    dict with ``model``, ``optimizer``, ``data`` ([N, D] tensor), ``state`` (``t`` and the
    epoch's ``order``) and ``step()`` (one update; returns the loss).
  """
  nn = torch.nn
  torch.manual_seed(seed)
  layers = autoencoder_layers(name)
  code = len(layers) // 2 - 1
  modules = []
  for i, (fan_in, fan_out) in enumerate(layers):
    modules.append(nn.Linear(fan_in, fan_out))
    if i != code and i != len(layers) - 1:
      modules.append(nn.Sigmoid())
  model = nn.Sequential(*modules)
  data = torch.rand(num_train, layers[0][0], generator=torch.Generator().manual_seed(seed))
  optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate,
                              momentum=float(momentum_fn(0)), nesterov=True)
  loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
  steps_per_epoch = num_train // batch
  state = {"t": 0, "order": None}

  def step():
    t = state["t"]
    if t % steps_per_epoch == 0:
      state["order"] = torch.randperm(num_train)
    idx = state["order"][(t % steps_per_epoch) * batch:(t % steps_per_epoch + 1) * batch]
    x = data[idx]
    for group in optimizer.param_groups:
      group["momentum"] = float(momentum_fn(t))
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), x) / batch
    loss.backward()
    optimizer.step()
    state["t"] = t + 1
    return loss.detach()

  return {"model": model, "optimizer": optimizer, "data": data, "state": state, "step": step}


def torch_rnn(torch, task, momentum_fn, learning_rate: float = 1e-4, batch: int = RNN_BATCH,
              hidden: int = RNN_HIDDEN, seed: int = 0, pool: int = 8):
  """A plain PyTorch training loop of the tanh RNN (``torch.nn.RNN`` + a linear readout).

  Minibatches are drawn beforehand from ``task.sample`` (a pool of ``pool`` batches used in
  turn), so data generation is not timed for PyTorch (the JAX engine samples on the device
  inside its timed step). The loss is the masked squared error of ``mominit.losses``.

  Args:
    torch: the ``torch`` module.
    task: a ``mominit.tasks`` problem with a linear readout (e.g. addition).
    momentum_fn, learning_rate, batch, seed: as for ``torch_autoencoder``.
    hidden: tanh units.
    pool: number of pre-drawn minibatches.

  Returns:
    dict with ``model`` (``(rnn, readout)``), ``optimizer``, ``batches`` (the pool, as
    ``(inputs, targets, mask)`` tensors) and ``step()``.
  """
  nn = torch.nn
  torch.manual_seed(seed)
  rnn = nn.RNN(task.num_inputs, hidden, nonlinearity="tanh", batch_first=True)
  readout = nn.Linear(hidden, task.num_outputs)
  params = list(rnn.parameters()) + list(readout.parameters())
  optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=float(momentum_fn(0)),
                              nesterov=True)
  keys = jax.random.split(jax.random.PRNGKey(seed), pool)
  batches = []
  for key in keys:
    b = task.sample(key, batch)
    batches.append(tuple(torch.from_numpy(np.array(x, np.float32)) for x in b))
  state = {"t": 0}

  def step():
    t = state["t"]
    inputs, targets, mask = batches[t % pool]
    for group in optimizer.param_groups:
      group["momentum"] = float(momentum_fn(t))
    optimizer.zero_grad(set_to_none=True)
    hs, _ = rnn(inputs)
    out = readout(hs)
    loss = (((out - targets) ** 2).sum(-1) * mask).sum() / mask.sum()
    loss.backward()
    optimizer.step()
    state["t"] = t + 1
    return loss.detach()

  return {"model": (rnn, readout), "optimizer": optimizer, "batches": batches, "step": step}


def schedule_table(schedule, steps: int):
  """A JAX momentum schedule as a host-side lookup ``t -> float`` for the PyTorch loops (so
  they do not dispatch a JAX computation at every update); constant after ``steps``."""
  values = np.asarray(schedule(jnp.arange(steps + 1)), np.float64).tolist()
  return lambda t: values[min(t, steps)]


def torch_timer(step, steps: int) -> Timer:
  """``steps`` updates of a PyTorch loop per repeat (after 3 warm-up updates); units are
  updates."""
  for _ in range(3):  # allocator, thread pool
    step()

  def once():
    for _ in range(steps):
      step()

  return Timer(once, steps, steps=steps)
