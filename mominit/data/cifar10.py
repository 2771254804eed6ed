"""CIFAR-10 from the python-pickle batches (`cifar-10-batches-py/data_batch_1..5`).

Each batch file is a pickled dict with b"data" ([10000, 3072] uint8, each row the 1024 red, then
green, then blue pixels of a 32x32 image, row-major) and b"labels" (10000 ints in 0..9). The
folder may be `data_dir` itself or `data_dir/cifar-10-batches-py`.
"""
import pathlib
import pickle

import numpy as np

from mominit.data import _common
from mominit.data._common import DataError, MissingDataError

TRAIN_FILES = tuple(f"data_batch_{k}" for k in range(1, 6))


def _folder(data_dir) -> pathlib.Path:
  folder = _common.resolve_data_dir(data_dir)
  if folder is None:
    raise MissingDataError("CIFAR-10 (cifar-10-batches-py) is needed but no data folder was "
                           f"given. {_common.where_to_put_it()}")
  for candidate in (folder, folder / "cifar-10-batches-py"):
    if (candidate / TRAIN_FILES[0]).is_file():
      return candidate
  raise MissingDataError(f"CIFAR-10 batch file {TRAIN_FILES[0]} (python pickle version) not "
                         f"found in {folder} or {folder / 'cifar-10-batches-py'}. "
                         f"{_common.where_to_put_it()}")


def load_train(data_dir=None):
  """The 50,000 CIFAR-10 training images.

  Returns:
    (images [N, 3072] float32 in [0, 1], NHWC row-major (32, 32, 3); labels [N] int32).

  Raises:
    MissingDataError: no batch files; DataError: a file is not a CIFAR-10 batch.
  """
  folder = _folder(data_dir)
  images, labels = [], []
  for name in TRAIN_FILES:
    path = folder / name
    if not path.is_file():
      raise MissingDataError(f"{path} (CIFAR-10 training batch) not found. "
                             f"{_common.where_to_put_it()}")
    try:
      with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
      data = np.asarray(batch[b"data"], np.uint8)
      lab = np.asarray(batch[b"labels"], np.int32)
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError) as e:
      raise DataError(f"{path}: not a CIFAR-10 python batch ({e}).") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(lab) != len(data):
      raise DataError(f"{path}: data {data.shape}, labels {lab.shape}; expected [N, 3072] and "
                      f"[N] (CIFAR-10 python batch).")
    images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(-1, 3072))
    labels.append(lab)
  return (np.concatenate(images).astype(np.float32) / np.float32(255),
          np.concatenate(labels))
