"""Optimizees of the learned-optimizer test list and the two training tricks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit.lopt import problems


@pytest.fixture(scope="module")
def fake_mnist():
  rng = np.random.default_rng(0)
  return rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64).astype(np.int32)


# Hand counts: a dense layer has fan_in * fan_out + fan_out numbers; an LSTM layer
# 4H (I + H) + 4H; a 3x3 conv 9 C_in C_out + C_out.
SIZES = {
    "mlp": 784 * 20 + 20 + 20 * 10 + 10,                       # 15,910 (the authors' base task)
    "mlp_pooled": 49 * 20 + 20 + 210,                         # 1,210
    "mlp_tanh": 15_910,
    "mlp_2layers": 15_910 + 20 * 20 + 20,
    "mlp_10layers": 15_910 + 9 * 420,
    "mnist_cnn": (9 * 16 + 16) + (9 * 16 * 16 + 16) + (14 * 14 * 16 * 10 + 10),
    "cifar_cnn": (9 * 3 * 16 + 16) + 3 * (9 * 256 + 16) + (8 * 8 * 16 * 32 + 32) + 330,
    "sine_lstm1": 4 * 20 * 21 + 80 + 21,
    "sine_lstm2": 4 * 20 * 21 + 80 + 4 * 20 * 40 + 80 + 21,
    "quadratic": 20,
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_optimizee_sizes(name, fake_mnist):
  data = {"mnist": fake_mnist, "cifar": (np.zeros((4, 3072), np.float32), np.zeros(4, np.int32)),
          None: None}[problems.needs_data(name)]
  assert problems.size(problems.make(name, data)) == SIZES[name]
  assert SIZES["mlp"] == 15_910 and SIZES["mlp_pooled"] == 1_210


def test_mlp_loss_is_softmax_cross_entropy_float64(fake_mnist):
  images, labels = fake_mnist
  problem = problems.mlp(images, labels, hidden=(5,), activation="tanh", batch_size=64)
  params, _ = problem.init(jax.random.PRNGKey(0))
  batch = problem.full(problem.data)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  h = np.tanh(images.astype(np.float64) @ p["layer_0"]["w"] + p["layer_0"]["b"])
  logits = h @ p["layer_1"]["w"] + p["layer_1"]["b"]
  logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
  expected = np.mean(logz - logits[np.arange(64), labels])
  np.testing.assert_allclose(problem.loss(params, (), batch), expected, rtol=1e-5)
  leaves = jax.tree.leaves(problems.mlp(images, labels, hidden=(200,)).init(
      jax.random.PRNGKey(1))[0])
  assert 0.098 < float(np.std(np.concatenate([np.ravel(x) for x in leaves]))) < 0.102
  assert all(np.all(np.asarray(x) != 0) for x in leaves)  # N(0, 0.1^2), biases too


def test_pooling_averages_4x4_blocks():
  x = np.arange(2 * 784, dtype=np.float32).reshape(2, 784)
  pooled = problems.pool_images(x, 4)
  assert pooled.shape == (2, 49)
  block = x[0].reshape(28, 28)[4:8, 8:12]
  np.testing.assert_allclose(pooled[0, 1 * 7 + 2], block.mean())


@pytest.mark.parametrize("name", ["mlp", "sine_lstm1", "quadratic"])
def test_random_scaling_starts_at_the_same_loss(name, fake_mnist):
  """f_c(x_0 / c) = f(x_0), and f_c(y) = f(c * y) along any path."""
  base = problems.make(name, fake_mnist if problems.needs_data(name) else None)
  scaled = problems.random_scaling(base, 3.0)
  key = jax.random.PRNGKey(4)
  y0, consts = scaled.init(key)
  x0, base_consts = base.init(jax.random.split(key)[0])
  batch = base.sample(base.data, jax.random.PRNGKey(5))
  np.testing.assert_allclose(scaled.loss(y0, consts, batch), base.loss(x0, base_consts, batch),
                             rtol=1e-5)
  c = jax.tree.leaves(consts["c"])
  assert all(float(jnp.min(s)) >= np.exp(-3) and float(jnp.max(s)) <= np.exp(3) for s in c)
  assert max(float(jnp.max(s)) for s in c) > 2.0 or name == "quadratic"  # a real spread
  y = jax.tree.map(lambda a: a + 0.01, y0)
  x = jax.tree.map(lambda a, s: a * s, y, consts["c"])
  np.testing.assert_allclose(scaled.loss(y, consts, batch), base.loss(x, base_consts, batch),
                             rtol=1e-5)


def test_convex_combination_adds_the_clipped_quadratic(fake_mnist):
  base = problems.make("mlp_pooled", fake_mnist)
  combined = problems.convex_combination(base, dim=20, r=1.0)
  key = jax.random.PRNGKey(6)
  params, consts = combined.init(key)
  assert params["combination"].shape == (20,) and np.all(np.asarray(params["combination"]) == 0)
  batch = base.sample(base.data, jax.random.PRNGKey(7))
  a = np.asarray(consts["combination"]["inner"], np.float64)
  assert np.all(np.abs(a) <= 1.0)
  x0, _ = base.init(jax.random.split(key)[0])
  # At y_0 = 0 the quadratic is mean(a^2) (all below the clip at 10).
  np.testing.assert_allclose(combined.loss(params, consts, batch),
                             float(base.loss(x0, (), batch)) + np.mean(a**2), rtol=1e-5)
  far = {**params, "combination": params["combination"] + 100.0}
  extra = float(combined.loss(far, consts, batch)) - float(base.loss(x0, (), batch))
  np.testing.assert_allclose(extra, 10.0, rtol=1e-5)  # clipped at 10


def test_sine_task_draws_match_their_definition():
  problem = problems.sine_lstm(noise=0.0, batch_size=256)
  inputs, target = problem.sample((), jax.random.PRNGKey(0))
  assert inputs.shape == (256, 9) and target.shape == (256,)
  assert float(jnp.max(jnp.abs(inputs))) <= 10.0
  # Noise-free sines obey x_{k+1} + x_{k-1} = 2 cos(w) x_k.
  x = np.concatenate([np.asarray(inputs), np.asarray(target)[:, None]], 1).astype(np.float64)
  ratio = (x[:, 2:] + x[:, :-2]) / (2 * x[:, 1:-1])
  ok = np.abs(x[:, 1:-1]) > 1e-1
  rows = ok.any(1)  # sequences with at least one well-conditioned ratio
  masked = np.where(ok, ratio, np.nan)[rows]
  spread = np.nanmax(masked, 1) - np.nanmin(masked, 1)
  assert rows.sum() > 200 and np.max(spread) < 1e-3


def test_make_rejects_unknown_names_and_missing_data():
  with pytest.raises(ValueError, match="problem must be one of"):
    problems.make("resnet")
  with pytest.raises(ValueError, match="needs the mnist"):
    problems.make("mlp")
  with pytest.raises(ValueError, match="activation"):
    problems.mlp(np.zeros((2, 784)), np.zeros(2), activation="swish")


def test_cifar10_batches_are_read_as_nhwc(tmp_path):
  import pickle
  from mominit.data import cifar10
  from mominit.data._common import MissingDataError
  with pytest.raises(MissingDataError, match="data_batch_1"):
    cifar10.load_train(tmp_path)
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  rng = np.random.default_rng(0)
  raw = [rng.integers(0, 256, (3, 3072), dtype=np.uint8) for _ in range(5)]
  for k, data in enumerate(raw, start=1):
    with open(folder / f"data_batch_{k}", "wb") as f:
      pickle.dump({b"data": data, b"labels": [k, k, k]}, f)
  images, labels = cifar10.load_train(tmp_path)
  assert images.shape == (15, 3072) and list(labels[:3]) == [1, 1, 1]
  # Pixel (row 2, column 5) of image 0, channel c, is raw[c * 1024 + 2 * 32 + 5].
  nhwc = images[0].reshape(32, 32, 3)
  for c in range(3):
    assert nhwc[2, 5, c] == pytest.approx(raw[0][0, c * 1024 + 2 * 32 + 5] / 255)
