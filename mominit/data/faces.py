"""FACES: 25x25 face images from `newfaces_rot_single.mat`.

The file holds one variable, `newfaces_single`, a 625 x 165,600 matrix with one image per column
(single precision). As in Martens' (2010) code and docs/paper.md, the first 103,500 columns
(165,600 / 40 * 25) are the training set and the last 41,400 (165,600 / 40 * 10) the test set.
103,500 + 41,400 = 144,900 < 165,600: the 20,700 columns in between are used by neither.
Values are used as stored (the autoencoder has linear outputs and a squared-error loss).

The real file is large (about 414 MB); if it was saved as MATLAB v7.3 (HDF5), SciPy cannot read
it and `load` says how to re-save it in v7 format.
"""
import pathlib

import numpy as np

from mominit.data import _common
from mominit.data._common import Dataset

FILENAME = "newfaces_rot_single.mat"
VARIABLE = "newfaces_single"
IMAGE_SHAPE = (25, 25)
NUM_PIXELS = 625
NUM_CASES = 165_600
NUM_TRAIN = 103_500
NUM_TEST = 41_400


def read_mat(path, *, num_cases: int = NUM_CASES, num_train: int = NUM_TRAIN,
             num_test: int = NUM_TEST) -> Dataset:
  """Reads and splits a FACES .mat file.

  Args:
    path: the .mat file holding `newfaces_single` [625, num_cases].
    num_cases: required number of columns (images); the default is the real file's.
    num_train: the first `num_train` columns are the training set.
    num_test: the last `num_test` columns are the test set.

  Returns:
    `Dataset(train [num_train, 625], test [num_test, 625])`, float32, one image per row.

  Raises:
    ValueError: `num_train + num_test > num_cases` or a negative size.
    DataError: unreadable or v7.3 file, missing variable, or a shape other than
      625 x `num_cases`.
  """
  for name, value in (("num_cases", num_cases), ("num_train", num_train),
                      ("num_test", num_test)):
    if int(value) != value or value < 0:
      raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
  if num_train + num_test > num_cases:
    raise ValueError(f"num_train + num_test = {num_train + num_test:,} exceeds num_cases = "
                     f"{num_cases:,}")
  path = pathlib.Path(path)
  what = f"'{VARIABLE}', a {NUM_PIXELS} x {num_cases:,} matrix of 25x25 faces, one per column"
  matrix = _common.read_mat(path, (VARIABLE,), what)[VARIABLE]
  _common.check_matrix(matrix, (NUM_PIXELS, num_cases), VARIABLE, path, what)
  train = np.ascontiguousarray(matrix[:, :num_train].T, dtype=np.float32)
  test = np.ascontiguousarray(matrix[:, num_cases - num_test:].T, dtype=np.float32)
  return Dataset(train, test)


def load(data_dir=None, **kwargs) -> Dataset:
  """FACES from `data_dir/newfaces_rot_single.mat`.

  Args:
    data_dir: folder holding the file (None: `$MOMINIT_DATA_DIR`).
    **kwargs: `num_cases`, `num_train`, `num_test` for `read_mat` (tests use small files).

  Returns:
    `Dataset(train [103500, 625], test [41400, 625])` float32 by default.
  """
  what = f"'{VARIABLE}', {NUM_PIXELS} x {NUM_CASES:,} single-precision matrix, MATLAB v7 or older"
  return read_mat(_common.find_file(data_dir, (FILENAME,), what), **kwargs)
