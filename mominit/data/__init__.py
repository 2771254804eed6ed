"""The autoencoder data sets: CURVES, MNIST and FACES as float32 [N, D] matrices.

`load(name, data_dir)` returns `Dataset(train, test)`. CURVES needs no files (a generated,
cached re-creation is used unless `data_dir` holds `digs3pts_1.mat`); MNIST needs the four idx
files and FACES `newfaces_rot_single.mat` in `data_dir` (or `$MOMINIT_DATA_DIR`).
"""
from mominit.data import curves, faces, mnist
from mominit.data._common import DataError, Dataset, MissingDataError

_LOADERS = {"curves": curves.load, "mnist": mnist.load, "faces": faces.load}
NAMES = tuple(_LOADERS)


def load(name: str, data_dir=None) -> Dataset:
  """Loads an autoencoder data set.

  Args:
    name: "curves", "mnist" or "faces".
    data_dir: folder holding the data files (None: `$MOMINIT_DATA_DIR` if set). CURVES falls
      back to the generated set when the folder lacks `digs3pts_1.mat`.

  Returns:
    `Dataset(train [N, D], test [M, D])`, float32: CURVES 20000/10000 x 784 in [0, 1], MNIST
    60000/10000 x 784 in [0, 1], FACES 103500/41400 x 625.

  Raises:
    ValueError: unknown name (the message lists the valid ones).
    MissingDataError: a needed file is absent (also a FileNotFoundError).
    DataError: a file is damaged or has the wrong shape.
  """
  if name not in _LOADERS:
    raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(NAMES)}")
  return _LOADERS[name](data_dir)


__all__ = ["load", "Dataset", "DataError", "MissingDataError", "NAMES", "curves", "mnist",
           "faces"]
