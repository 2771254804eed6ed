"""Tests of the data loaders: CURVES generation, MNIST idx files, FACES .mat files.

References are independent: a float64 NumPy renderer of the CURVES model (polyfit + dense
sampling), raw-byte statistics of the MNIST files read with gzip + NumPy, and hand-made .mat and
idx fixtures.
"""
import gzip

import numpy as np
import pytest
import scipy.io

from mominit import data
from mominit.data import curves, faces, mnist

# Digits 0..9 in the MNIST 10k test set (a widely published count).
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------- registry


def test_unknown_name_lists_valid_ones():
  with pytest.raises(ValueError, match="curves.*mnist.*faces"):
    data.load("nope")


def test_missing_folder_says_where_to_put_files(tmp_path, monkeypatch):
  monkeypatch.delenv("MOMINIT_DATA_DIR", raising=False)
  with pytest.raises(data.MissingDataError, match="--data_dir"):
    data.load("mnist")
  with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*--data_dir"):
    data.load("mnist", tmp_path)
  with pytest.raises(data.DataError, match="newfaces_rot_single.mat"):
    data.load("faces", tmp_path)


# --------------------------------------------------------------------------------- CURVES


def _reference_render(params, num_points=2000):
  """Float64 CURVES model: parabola through the points (polyfit), densely sampled."""
  rows, cols = np.mgrid[0:28, 0:28]
  pix = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=-1)
  images = []
  for p in np.asarray(params, np.float64):
    pts = p.reshape(3, 2)
    d01, d12 = np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[1])
    u = min(max(d01 / (d01 + d12), 0.1), 0.9)  # chord-length parameter of the middle point
    s = np.linspace(0, 1, num_points)
    arc = np.stack([np.polyval(np.polyfit([0, u, 1], pts[:, c], 2), s) for c in range(2)], -1)
    dist = np.sqrt(((pix[:, None, :] - arc[None]) ** 2).sum(-1)).min(axis=1)
    images.append(np.clip(1.0 / 2 + 0.5 - dist, 0, 1))  # width 1 px, 1 px ramp
  return np.array(images)


@pytest.fixture(scope="module")
def small_curves(tmp_path_factory):
  folder = tmp_path_factory.mktemp("cache")
  images, params = curves.generate(40, 20, seed=3, cache_path=folder, return_params=True)
  return folder, images, params


def test_curves_shapes_range_and_parameters(small_curves):
  _, images, params = small_curves
  assert images.train.shape == (40, 784) and images.test.shape == (20, 784)
  assert params.train.shape == (40, 6) and params.test.shape == (20, 6)
  assert images.train.dtype == np.float32 and images.test.dtype == np.float32
  for split in images:
    assert split.min() >= 0 and split.max() <= 1
    # Every image has a stroke: each of its points lies within sqrt(2)/2 px of a pixel centre,
    # so its peak is above 1 - 0.71 (on 5,000 images the faintest peak was 0.73).
    assert np.all(split.max(axis=1) > 0.29)
  for split in params:
    assert split.min() >= 2 and split.max() <= 26  # the three points, inside the margin


def test_curves_come_from_their_six_parameters(small_curves):
  _, images, params = small_curves
  # Regenerated from the stored parameters: bit-identical.
  np.testing.assert_array_equal(curves.render(params.train), images.train)
  # Against the float64 reference of the same model (the 32-segment polyline is within 0.03 px).
  np.testing.assert_allclose(images.test[:10], _reference_render(params.test[:10]), atol=0.03)
  # The stroke passes through its three points: the pixel holding each point is inked
  # (centre within sqrt(2)/2 px of the curve, so intensity >= 1 - 0.71 > 0.25).
  for image, p in zip(images.train, params.train):
    for x, y in p.reshape(3, 2):
      assert image.reshape(28, 28)[int(y), int(x)] > 0.25


def test_curves_mean_image_error_near_the_originals():
  """Generator version 3: the mean-image error is about 16 per case, the value Table 3's failed
  scales imply for digs3pts_1.mat (version 2's 1.5-pixel stroke had 27.6)."""
  stats = curves.statistics(curves.generate(2000, 0, seed=1, cache=False).train)
  assert abs(stats["mean_image_error"] - curves.ORIGINAL_MEAN_IMAGE_ERROR) < 0.8
  # The closed-form cross-section of the stroke, (w - 1) + 2/3 for w >= 1, times the arc length
  # gives the ink's sum of squares; the mean image removes a little of it.
  x = curves.generate(2000, 0, seed=1, cache=False).train.astype(np.float64)
  assert stats["mean_image_error"] < np.mean(np.sum(x ** 2, 1))
  assert 0.04 < stats["inked_fraction"] < 0.1 and stats["half_inked_fraction"] < 0.05


def test_statistics_closed_form():
  x = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]])  # mean image (0.5, 1, 0.25)
  stats = curves.statistics(x)
  # per case: 0.25 + 0 + 0.0625 and 0.25 + 0 + 0.0625
  assert stats["mean_image_error"] == pytest.approx(0.3125)
  assert stats["inked_fraction"] == pytest.approx(4 / 6)
  assert stats["half_inked_fraction"] == pytest.approx(3 / 6)
  assert stats["ink_per_image"] == pytest.approx(1.75) and stats["cases"] == 2


def test_curves_deterministic_and_cached(small_curves):
  folder, images, _ = small_curves
  cached = list(folder.glob("*.npz"))
  assert len(cached) == 1
  again = curves.generate(40, 20, seed=3, cache_path=folder)
  fresh = curves.generate(40, 20, seed=3, cache=False)
  other = curves.generate(40, 20, seed=4, cache=False)
  for a, b, c in zip(images, again, fresh):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
  assert not np.array_equal(images.train, other.train)
  # A damaged cache file is regenerated, not trusted.
  cached[0].write_bytes(b"not an npz file")
  repaired = curves.generate(40, 20, seed=3, cache_path=folder)
  np.testing.assert_array_equal(repaired.train, images.train)


def test_curves_cache_folder(tmp_path, monkeypatch):
  monkeypatch.setenv("MOMINIT_CACHE", str(tmp_path / "a"))
  assert curves.cache_dir() == tmp_path / "a"
  assert curves.cache_dir(tmp_path / "b") == tmp_path / "b"
  monkeypatch.delenv("MOMINIT_CACHE")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert curves.cache_dir() == tmp_path / "xdg" / "mominit"


def test_curves_mat_file(tmp_path):
  rng = np.random.default_rng(0)
  bdata, bdatatest = rng.uniform(size=(50, 784)), rng.uniform(size=(20, 784))
  path = tmp_path / "digs3pts_1.mat"
  scipy.io.savemat(path, {"bdata": bdata, "bdatatest": bdatatest})
  ds = curves.read_mat(path, num_train=50, num_test=20)
  np.testing.assert_allclose(ds.train, bdata, rtol=1e-7)
  np.testing.assert_allclose(ds.test, bdatatest, rtol=1e-7)
  assert ds.train.dtype == np.float32
  # load() uses the file when it is there, and checks the real sizes.
  with pytest.raises(data.DataError, match="20000"):
    data.load("curves", tmp_path)
  scipy.io.savemat(path, {"bdata": bdata * 2, "bdatatest": bdatatest})
  with pytest.raises(data.DataError, match=r"\[0, 1\]"):
    curves.read_mat(path, num_train=50, num_test=20)


def test_curves_bad_arguments():
  with pytest.raises(ValueError, match="num_train"):
    curves.generate(-1, 10, cache=False)
  with pytest.raises(ValueError, match="shape"):
    curves.render(np.zeros((3, 4)))


# ---------------------------------------------------------------------------------- MNIST


def _raw(path):
  raw = path.read_bytes()
  return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _mnist_file(folder, name):
  for candidate in (folder / name, folder / (name + ".gz")):
    if candidate.exists():
      return candidate
  pytest.skip(f"{name} not in {folder}")


def test_mnist_test_set_matches_raw_bytes(mnist_dir):
  images, labels = mnist.load_split(mnist_dir, "test")
  raw_images = np.frombuffer(_raw(_mnist_file(mnist_dir, "t10k-images-idx3-ubyte")), np.uint8)
  raw_labels = np.frombuffer(_raw(_mnist_file(mnist_dir, "t10k-labels-idx1-ubyte")), np.uint8)
  assert images.shape == (10_000, 784) and images.dtype == np.float32
  assert labels.shape == (10_000,)
  pixels = raw_images[16:].astype(np.float64)  # 16-byte header: magic, count, rows, cols
  assert images.mean() == pytest.approx(pixels.mean() / 255, rel=1e-6)
  assert abs(images.mean() - 0.1325) < 5e-4
  assert images.min() == 0 and images.max() == 1
  np.testing.assert_allclose(images[:2].ravel(), pixels[:2 * 784] / 255, rtol=1e-6)
  np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                np.bincount(raw_labels[8:], minlength=10))
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), MNIST_TEST_COUNTS)


def test_mnist_damaged_files(mnist_dir, tmp_path):
  raw = _raw(_mnist_file(mnist_dir, "t10k-images-idx3-ubyte"))
  truncated_gz = tmp_path / "truncated.gz"
  truncated_gz.write_bytes(gzip.compress(raw, compresslevel=1)[:-5000])
  with pytest.raises(data.DataError, match="truncated.gz"):
    mnist.read_images(truncated_gz)
  truncated = tmp_path / "truncated"
  truncated.write_bytes(raw[:-784])
  with pytest.raises(data.DataError, match="truncated or damaged"):
    mnist.read_images(truncated)
  wrong_magic = tmp_path / "wrong-magic"
  wrong_magic.write_bytes(raw[:3] + b"\x01" + raw[4:])
  with pytest.raises(data.DataError, match="magic number 2049, expected 2051"):
    mnist.read_images(wrong_magic)
  labels = _mnist_file(mnist_dir, "t10k-labels-idx1-ubyte")
  with pytest.raises(data.DataError, match="expected 2051"):
    mnist.read_images(labels)


def test_mnist_only_test_files_is_a_clear_error(mnist_dir):
  if (mnist_dir / "train-images-idx3-ubyte.gz").exists() or (
      mnist_dir / "train-images-idx3-ubyte").exists():
    pytest.skip("the training files are present here")
  with pytest.raises(data.MissingDataError, match="train-images-idx3-ubyte.*60,000"):
    data.load("mnist", mnist_dir)


def _write_idx(path, magic, array, compress=False):
  header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
  body = header + np.ascontiguousarray(array, np.uint8).tobytes()
  path.write_bytes(gzip.compress(body) if compress else body)


def test_mnist_synthetic_files(tmp_path):
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
  _write_idx(tmp_path / "t10k-images-idx3-ubyte", 2051, pixels)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, np.array([7, 0, 9]), compress=True)
  images, labels = mnist.load_split(tmp_path, "test", check_count=False)
  np.testing.assert_array_equal(images, pixels.reshape(3, 784) / np.float32(255))
  np.testing.assert_array_equal(labels, [7, 0, 9])
  with pytest.raises(data.DataError, match="3 images, expected 10,000"):
    mnist.load_split(tmp_path, "test")
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, np.array([7, 0]), compress=True)
  with pytest.raises(data.DataError, match="2 labels"):
    mnist.load_split(tmp_path, "test", check_count=False)
  _write_idx(tmp_path / "small", 2051, np.zeros((2, 20, 20)))
  with pytest.raises(data.DataError, match="20x20, expected 28x28"):
    mnist.read_images(tmp_path / "small")
  _write_idx(tmp_path / "labels", 2049, np.array([3, 12]))
  with pytest.raises(data.DataError, match="label 12"):
    mnist.read_labels(tmp_path / "labels")
  with pytest.raises(ValueError, match="split"):
    mnist.load_split(tmp_path, "validation")


# ---------------------------------------------------------------------------------- FACES


def test_faces_split_sizes_from_paper():
  assert faces.NUM_TRAIN == 103_500 and faces.NUM_TEST == 41_400
  assert faces.NUM_CASES == 165_600 and faces.NUM_PIXELS == 25 * 25


def test_faces_round_trip_and_split(tmp_path):
  # Column j of the fixture holds 625 * j + (0..624): every image is recognisable.
  matrix = np.arange(625 * 50, dtype=np.float32).reshape(50, 625).T
  scipy.io.savemat(tmp_path / "newfaces_rot_single.mat", {"newfaces_single": matrix})
  ds = faces.load(tmp_path, num_cases=50, num_train=30, num_test=12)
  assert ds.train.shape == (30, 625) and ds.test.shape == (12, 625)
  assert ds.train.dtype == np.float32 and ds.train.flags.c_contiguous
  np.testing.assert_array_equal(ds.train[:, 0], 625 * np.arange(30))  # first 30 columns
  np.testing.assert_array_equal(ds.test[:, 0], 625 * np.arange(38, 50))  # last 12 columns
  np.testing.assert_array_equal(ds.train[4], np.arange(625 * 4, 625 * 5))
  # The default insists on the real 625 x 165,600 matrix.
  with pytest.raises(data.DataError, match="165,600"):
    data.load("faces", tmp_path)
  with pytest.raises(ValueError, match="exceeds"):
    faces.load(tmp_path, num_cases=50, num_train=40, num_test=12)


def test_faces_shape_and_format_errors(tmp_path):
  path = tmp_path / "newfaces_rot_single.mat"
  scipy.io.savemat(path, {"newfaces_single": np.zeros((600, 10))})
  with pytest.raises(data.DataError, match=r"\(600, 10\)"):
    faces.read_mat(path, num_cases=10, num_train=5, num_test=5)
  scipy.io.savemat(path, {"faces": np.zeros((625, 10))})
  with pytest.raises(data.DataError, match="lacks"):
    faces.read_mat(path, num_cases=10, num_train=5, num_test=5)
  path.write_bytes(b"this is not a mat file at all" * 10)
  with pytest.raises(data.DataError, match="could not be read"):
    faces.read_mat(path)
  # A MATLAB v7.3 file: text header padded to 512 bytes, then an HDF5 superblock.
  header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
  path.write_bytes(header.ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + bytes(100))
  with pytest.raises(data.DataError, match="-v7"):
    faces.read_mat(path)


def test_show_data_draws_mnist(mnist_dir, tmp_path):
  import matplotlib.image  # pylint: disable=import-outside-toplevel
  from experiments import show_data  # pylint: disable=import-outside-toplevel
  out = tmp_path / "mnist.png"
  show_data.main(["--name", "mnist", "--data_dir", str(mnist_dir), "--num", "8",
                  "--out", str(out)])
  image = matplotlib.image.imread(out)
  assert image.shape[0] > 80 and image.shape[1] > 400  # one row of 8 digits
  assert image[..., :3].std() > 0.05
