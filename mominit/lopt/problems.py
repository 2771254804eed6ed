"""Optimizees of Lv et al.'s test list as pure JAX problems, and the two training tricks.

A `Problem` is a bundle of pure functions and its data (device arrays):

  params, consts = problem.init(key)             # x_0 and the run's fixed draws (c, a, ...)
  batch = problem.sample(problem.data, key)      # one minibatch (data stay on the device)
  loss = problem.loss(params, consts, batch)     # scalar training loss
  batch = problem.full(problem.data)             # the evaluation batch (whole pool / big batch)

Everything is a function of explicit keys, so two optimizers started from the same key see the
same x_0 and, with the same per-step keys, the same minibatches (a paired study). `data` is
passed to jitted functions as an argument, never baked into the program as a constant.

Minibatches are drawn with replacement (`jax.random.randint`), a documented simplification of
the authors' epoch shuffling. The sizes in `TEST_LIST` are ours where the paper's code did not
pin them (CNN channels, the sine task's split into inputs and target): see each builder.
"""
import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "elu": jax.nn.elu,
               "tanh": jnp.tanh}
INIT_STD = 0.1


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
  """An optimizee: `init(key) -> (params, consts)`, `loss(params, consts, batch) -> scalar`,
  `sample(data, key) -> batch`, `full(data) -> batch`, and its `data` (pytree of arrays)."""
  name: str
  init: Callable
  loss: Callable
  sample: Callable
  full: Callable
  data: Any = ()


def _normal_tree(key, shapes: dict, std: float) -> dict:
  keys = jax.random.split(key, len(shapes))
  return {name: std * jax.random.normal(k, shape, jnp.float32)
          for k, (name, shape) in zip(keys, shapes.items())}


def _cross_entropy(logits, labels):
  return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(
      logits, labels[:, None], -1)[:, 0])


def _classification(name, images, labels, batch_size, init, forward):
  data = {"x": jnp.asarray(images), "y": jnp.asarray(labels, jnp.int32)}

  def sample(d, key):
    idx = jax.random.randint(key, (batch_size,), 0, d["x"].shape[0])
    return d["x"][idx], d["y"][idx]

  def loss(params, consts, batch):
    del consts
    return _cross_entropy(forward(params, batch[0]), batch[1])

  return Problem(name, init, loss, sample, lambda d: (d["x"], d["y"]), data)


def pool_images(images: np.ndarray, factor: int, side: int = 28) -> np.ndarray:
  """Average-pools [N, side*side] images by `factor` (4: 28x28 -> 7x7): [N, (side/factor)^2]."""
  if factor == 1:
    return np.asarray(images, np.float32)
  n, s = len(images), side // factor
  x = np.asarray(images, np.float32).reshape(n, s, factor, s, factor)
  return x.mean(axis=(2, 4)).reshape(n, s * s)


def mlp(images, labels, hidden: Sequence[int] = (20,), activation: str = "sigmoid",
        batch_size: int = 128, pool: int = 1, num_classes: int = 10, name: str = "mlp"):
  """An MLP classifier, softmax cross-entropy; every weight and bias ~ N(0, 0.1^2).

  Args:
    images: [N, 784] pixels in [0, 1]; labels: [N] ints.
    hidden: hidden layer widths ((20,) = the authors' 784-20-10 base task).
    activation: "sigmoid", "relu", "elu" or "tanh".
    batch_size: minibatch size (128).
    pool: average-pool the 28x28 images by this factor first (4 gives 49 inputs).

  Returns:
    A `Problem`; its params are {"layer_k": {"w" [in, out], "b" [out]}}.
  """
  if activation not in ACTIVATIONS:
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
  x = pool_images(images, pool)
  sizes = [x.shape[1], *hidden, num_classes]
  act = ACTIVATIONS[activation]

  def init(key):
    keys = jax.random.split(key, len(sizes) - 1)
    return {f"layer_{k}": _normal_tree(keys[k], {"w": (a, b), "b": (b,)}, INIT_STD)
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}, ()

  def forward(params, h):
    for k in range(len(sizes) - 1):
      h = h @ params[f"layer_{k}"]["w"] + params[f"layer_{k}"]["b"]
      if k < len(sizes) - 2:
        h = act(h)
    return h

  return _classification(name, x, labels, batch_size, init, forward)


def cnn(images, labels, spec: str = "ccpf", channels: int = 16, dense: int = 32,
        shape=(28, 28, 1), activation: str = "relu", batch_size: int = 128, name: str = "cnn"):
  """A small VGG-style CNN: `spec` letters c (3x3 conv, same padding, + activation), p (2x2
  max-pool), f (dense; the last f outputs the 10 classes, earlier ones `dense` units).

  The authors' MNIST net is c-c-p-f and their CIFAR-10 net c-c-p-c-c-p-f-f; the channel count
  (16) and the hidden dense width (32) are our choices. Every weight and bias ~ N(0, 0.1^2).

  Args:
    images: [N, H*W*C] floats (NHWC row-major); labels: [N] ints.
  """
  act = ACTIVATIONS[activation]
  layers, (h, w, c) = [], shape
  n_dense = spec.count("f")
  for letter in spec:
    if letter == "c":
      layers.append(("c", {"w": (3, 3, c, channels), "b": (channels,)}))
      c = channels
    elif letter == "p":
      layers.append(("p", None))
      h, w = h // 2, w // 2
    elif letter == "f":
      n_dense -= 1
      out = 10 if n_dense == 0 else dense
      layers.append(("f", {"w": (h * w * c, out), "b": (out,)}))
      h, w, c = 1, 1, out
    else:
      raise ValueError(f"spec letters must be c, p or f, got {spec!r}")

  def init(key):
    keys = jax.random.split(key, len(layers))
    return {f"layer_{k}": _normal_tree(keys[k], shapes, INIT_STD)
            for k, (kind, shapes) in enumerate(layers) if shapes is not None}, ()

  def forward(params, x):
    x = x.reshape((-1,) + tuple(shape))
    last = max(k for k, (kind, _) in enumerate(layers) if kind == "f")
    for k, (kind, _) in enumerate(layers):
      if kind == "c":
        p = params[f"layer_{k}"]
        x = act(jax.lax.conv_general_dilated(x, p["w"], (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"])
      elif kind == "p":
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
      else:
        p = params[f"layer_{k}"]
        x = x.reshape(x.shape[0], -1) @ p["w"] + p["b"]
        x = x if k == last else act(x)
    return x

  return _classification(name, images, labels, batch_size, init, forward)


def sine_lstm(layers: int = 1, hidden: int = 20, noise: float = 0.1, batch_size: int = 128,
              length: int = 10, eval_size: int = 4096, name: str = "sine_lstm"):
  """LSTM regression on noisy sines: x_k = A sin(k w + phi) + noise N(0, 1), k = 1..length, with
  phi ~ U(0, 2 pi), w ~ U(0, pi/2), A ~ U(0, 10); the LSTM reads x_1..x_{length-1} and a linear
  read-out of its last state predicts x_length (squared error). Our reading of "length-10
  sequences, predict step 10". All parameters ~ N(0, 0.1^2); forget bias 1 (as the RNNprop
  network). Data are sampled on the device; `full` is a fixed batch of `eval_size`.
  """
  from mominit.lopt import networks  # pylint: disable=import-outside-toplevel

  def draw(key, n):
    kp, kw, ka, kn = jax.random.split(key, 4)
    phi = jax.random.uniform(kp, (n, 1), minval=0.0, maxval=2 * math.pi)
    omega = jax.random.uniform(kw, (n, 1), minval=0.0, maxval=math.pi / 2)
    amp = jax.random.uniform(ka, (n, 1), minval=0.0, maxval=10.0)
    k = jnp.arange(1, length + 1, dtype=jnp.float32)
    x = amp * jnp.sin(k * omega + phi) + noise * jax.random.normal(kn, (n, length))
    return x[:, :-1], x[:, -1]

  def init(key):
    keys = jax.random.split(key, layers + 1)
    params = {"out": _normal_tree(keys[-1], {"w": (hidden, 1), "b": (1,)}, INIT_STD)}
    for l in range(layers):
      fan_in = 1 if l == 0 else hidden
      params[f"lstm_{l}"] = _normal_tree(keys[l], {"w": (fan_in + hidden, 4 * hidden),
                                                   "b": (4 * hidden,)}, INIT_STD)
    return params, ()

  def loss(params, consts, batch):
    del consts
    inputs, target = batch
    n = inputs.shape[0]
    state = [(jnp.zeros((n, hidden)), jnp.zeros((n, hidden))) for _ in range(layers)]

    def step(state, x):
      h = x[:, None]
      new = []
      for l in range(layers):
        h, c = networks.lstm_cell(params[f"lstm_{l}"], h, *state[l])
        new.append((h, c))
      return new, None

    state, _ = jax.lax.scan(step, state, inputs.T)
    pred = (state[-1][0] @ params["out"]["w"] + params["out"]["b"])[:, 0]
    return jnp.mean((pred - target) ** 2)

  return Problem(name, init, loss, lambda d, key: draw(key, batch_size),
                 lambda d: draw(jax.random.PRNGKey(20170806), eval_size))


def quadratic(dim: int = 20, clip: float = 10.0, name: str = "quadratic"):
  """The clipped quadratic: mean_j clip((y_j - a_j)^2, 0, clip), a ~ U(-1, 1)^dim drawn per run
  (the run's consts), y_0 = 0. Deterministic (the batch is ignored)."""
  def init(key):
    return jnp.zeros((dim,), jnp.float32), jax.random.uniform(key, (dim,), minval=-1.0,
                                                              maxval=1.0)

  def loss(params, consts, batch):
    del batch
    return jnp.mean(jnp.clip((params - consts) ** 2, 0.0, clip))

  return Problem(name, init, loss, lambda d, key: (), lambda d: ())


def random_scaling(problem: Problem, r: float) -> Problem:
  """The random-scaling trick: per run c = exp(U(-r, r)) per coordinate; optimise
  f_c(y) = f(c * y) from y_0 = x_0 / c, so f_c(y_0) = f(x_0) and the path's losses are f's.

  The key of `init` is split in two: the first half initialises `problem`, the second draws c.
  """
  def init(key):
    kp, kc = jax.random.split(key)
    params, consts = problem.init(kp)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(kc, len(leaves))
    c = jax.tree.unflatten(treedef, [jnp.exp(jax.random.uniform(k, x.shape, minval=-r, maxval=r))
                                     for k, x in zip(keys, leaves)])
    return jax.tree.map(lambda x, s: x / s, params, c), {"inner": consts, "c": c}

  def loss(params, consts, batch):
    return problem.loss(jax.tree.map(lambda y, s: y * s, params, consts["c"]), consts["inner"],
                        batch)

  return dataclasses.replace(problem, name=f"{problem.name}+scaling{r:g}", init=init, loss=loss)


def convex_combination(problem: Problem, dim: int = 20, r: float = 1.0) -> Problem:
  """The convex-combination trick: append `dim` coordinates y with the clipped quadratic loss
  (`quadratic`, its own a per run, y_0 = 0, its own random scaling with range r); the losses add.

  Params become {"problem": problem's params, "combination": y}. The key of `init` is split in
  two: the first initialises `problem`, the second the appended quadratic.
  """
  extra = random_scaling(quadratic(dim), r) if r else quadratic(dim)

  def init(key):
    kp, kq = jax.random.split(key)
    (p, cp), (q, cq) = problem.init(kp), extra.init(kq)
    return {"problem": p, "combination": q}, {"problem": cp, "combination": cq}

  def loss(params, consts, batch):
    return (problem.loss(params["problem"], consts["problem"], batch)
            + extra.loss(params["combination"], consts["combination"], ()))

  return dataclasses.replace(problem, name=f"{problem.name}+combination", init=init, loss=loss)


# The authors' test list (LEARNED_OPTIMIZER.md), name -> (builder, kwargs). MNIST problems need
# (images, labels); "cifar_cnn" needs CIFAR-10 as [N, 3072] NHWC floats from --data_dir.
TEST_LIST = {
    "mlp": ("mlp", {}),
    "mlp_pooled": ("mlp", {"pool": 4}),
    "mlp_relu": ("mlp", {"activation": "relu"}),
    "mlp_elu": ("mlp", {"activation": "elu"}),
    "mlp_tanh": ("mlp", {"activation": "tanh"}),
    **{f"mlp_{k}layers": ("mlp", {"hidden": (20,) * k}) for k in range(2, 11)},
    "mnist_cnn": ("cnn", {"spec": "ccpf"}),
    "cifar_cnn": ("cnn", {"spec": "ccpccpff", "shape": (32, 32, 3)}),
    "sine_lstm1": ("sine_lstm", {"layers": 1, "noise": 0.1}),
    "sine_lstm1_lownoise": ("sine_lstm", {"layers": 1, "noise": 0.01}),
    "sine_lstm2": ("sine_lstm", {"layers": 2, "noise": 0.1}),
    "quadratic": ("quadratic", {}),
}
_BUILDERS = {"mlp": mlp, "cnn": cnn, "sine_lstm": sine_lstm, "quadratic": quadratic}


def needs_data(name: str) -> str | None:
  """"mnist", "cifar" or None: the data set a test-list problem trains on."""
  builder, kwargs = TEST_LIST[name]
  if builder in ("mlp", "cnn"):
    return "cifar" if kwargs.get("shape", (28, 28, 1))[-1] == 3 else "mnist"
  return None


def make(name: str, data=None, **overrides) -> Problem:
  """A problem of `TEST_LIST` by name.

  Args:
    name: a key of `TEST_LIST`.
    data: (images, labels) for MNIST/CIFAR problems (see `needs_data`), else None.
    **overrides: builder arguments that replace the list's (e.g. batch_size=...).

  Raises:
    ValueError: unknown name, or a data set is needed and not given.
  """
  if name not in TEST_LIST:
    raise ValueError(f"problem must be one of {sorted(TEST_LIST)}, got {name!r}")
  builder, kwargs = TEST_LIST[name]
  kwargs = {**kwargs, **overrides, "name": name}
  needed = needs_data(name)
  if needed is None:
    return _BUILDERS[builder](**kwargs)
  if data is None:
    raise ValueError(f"problem {name!r} needs the {needed} data set (images, labels)")
  return _BUILDERS[builder](*data, **kwargs)


def size(problem: Problem) -> int:
  """Number of optimizee parameters (coordinates) of a problem."""
  params = jax.eval_shape(lambda k: problem.init(k)[0], jax.random.PRNGKey(0))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


__all__ = ["Problem", "mlp", "cnn", "sine_lstm", "quadratic", "random_scaling",
           "convex_combination", "TEST_LIST", "make", "needs_data", "size", "pool_images"]
