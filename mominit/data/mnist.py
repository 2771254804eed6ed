"""MNIST from the four standard idx files (gzipped or not).

File format (big-endian): a 4-byte magic number (0, 0, type 0x08 = unsigned byte, number of
dimensions), one 4-byte size per dimension, then the data. Images: magic 2051, sizes
(N, 28, 28); labels: magic 2049, size (N,). Pixels are scaled by 1/255 to [0, 1].
"""
import gzip
import pathlib
import zlib

import numpy as np

from mominit.data import _common
from mominit.data._common import DataError, Dataset

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SHAPE = (28, 28)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
COUNTS = {"train": 60_000, "test": 10_000}


def _read_bytes(path: pathlib.Path, what: str) -> bytes:
  """The file's bytes, decompressed if it is gzipped (by content, not by name)."""
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == b"\x1f\x8b":
    try:
      return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
      raise DataError(f"{path}: damaged gzip file ({e}); expected {what}. "
                      f"{_common.where_to_put_it()}") from e
  return raw


def _read_idx(path, magic: int, what: str) -> np.ndarray:
  """Reads an unsigned-byte idx file and checks its magic number and length.

  Returns:
    uint8 array with the shape given in the file's header.
  """
  path = pathlib.Path(path)
  data = _read_bytes(path, what)
  ndim = magic & 0xFF
  header_len = 4 * (1 + ndim)
  if len(data) < header_len:
    raise DataError(f"{path}: {len(data)} bytes, too short for an idx header "
                    f"(expected {what}). {_common.where_to_put_it()}")
  found = int.from_bytes(data[:4], "big")
  if found != magic:
    raise DataError(f"{path}: magic number {found}, expected {magic} ({what}). "
                    f"{_common.where_to_put_it()}")
  shape = tuple(int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(ndim))
  expected_len = header_len + int(np.prod(shape))
  if len(data) != expected_len:
    raise DataError(f"{path}: {len(data):,} bytes, but its header (shape {shape}) implies "
                    f"{expected_len:,} (expected {what}; truncated or damaged file). "
                    f"{_common.where_to_put_it()}")
  return np.frombuffer(data, np.uint8, offset=header_len).reshape(shape)


def read_images(path) -> np.ndarray:
  """Reads an idx3 image file (`*-images-idx3-ubyte[.gz]`).

  Args:
    path: the file, gzipped or not.

  Returns:
    [N, 784] float32 pixels / 255, in [0, 1], row-major 28x28.

  Raises:
    DataError: wrong magic number, image size other than 28x28, or length not matching the
      header.
  """
  what = "MNIST images: idx magic 2051, N x 28 x 28 unsigned bytes"
  images = _read_idx(path, IMAGE_MAGIC, what)
  if images.shape[1:] != IMAGE_SHAPE:
    raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28 "
                    f"({what}). {_common.where_to_put_it()}")
  return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255)


def read_labels(path) -> np.ndarray:
  """Reads an idx1 label file (`*-labels-idx1-ubyte[.gz]`).

  Args:
    path: the file, gzipped or not.

  Returns:
    [N] int32 labels in 0..9.

  Raises:
    DataError: wrong magic number, length not matching the header, or labels above 9.
  """
  what = "MNIST labels: idx magic 2049, N unsigned bytes in 0..9"
  labels = _read_idx(path, LABEL_MAGIC, what)
  if labels.size and labels.max() > 9:
    raise DataError(f"{path}: label {labels.max()} found, expected 0..9 ({what}).")
  return labels.astype(np.int32)


def _find(data_dir, name: str, what: str) -> pathlib.Path:
  return _common.find_file(data_dir, (name, name + ".gz"), what)


def load_split(data_dir, split: str, check_count: bool = True):
  """Images and labels of one MNIST split.

  Args:
    data_dir: folder holding the idx files (None: `$MOMINIT_DATA_DIR`).
    split: "train" (60,000 cases) or "test" (10,000 cases, the t10k files).
    check_count: require the standard number of cases.

  Returns:
    `(images [N, 784] float32 in [0, 1], labels [N] int32)`.

  Raises:
    ValueError: unknown split.
    MissingDataError: a file is not in `data_dir`.
    DataError: a file is damaged, or the counts are wrong or differ between the two files.
  """
  if split not in FILES:
    raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
  count = COUNTS[split]
  image_name, label_name = FILES[split]
  image_path = _find(data_dir, image_name, f"MNIST {split} images, {count:,} x 28 x 28, idx")
  label_path = _find(data_dir, label_name, f"MNIST {split} labels, {count:,}, idx")
  images, labels = read_images(image_path), read_labels(label_path)
  if check_count and len(images) != count:
    raise DataError(f"{image_path}: {len(images):,} images, expected {count:,} for the MNIST "
                    f"{split} set. {_common.where_to_put_it()}")
  if len(images) != len(labels):
    raise DataError(f"{image_path} has {len(images):,} images but {label_path} has "
                    f"{len(labels):,} labels.")
  return images, labels


def load(data_dir=None) -> Dataset:
  """MNIST for the autoencoder: the 60,000 training and 10,000 test images.

  Args:
    data_dir: folder holding the four idx files, optionally gzipped (None: `$MOMINIT_DATA_DIR`).

  Returns:
    `Dataset(train [60000, 784], test [10000, 784])`, float32 pixels / 255.
  """
  train, _ = load_split(data_dir, "train")
  test, _ = load_split(data_dir, "test")
  return Dataset(train, test)
