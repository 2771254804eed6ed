"""What every data loader shares: the `Dataset` tuple, the errors, finding and reading files."""
import os
import pathlib
from typing import NamedTuple, Sequence

import numpy as np

# Environment variable consulted when no `data_dir` is passed.
DATA_DIR_ENV = "MOMINIT_DATA_DIR"

_WHERE = ("Put it in a folder and pass that folder as --data_dir (experiments) or "
          "data_dir=... (mominit.data.load), or set ${env}.").format(env=DATA_DIR_ENV)

# MATLAB v7.3 files are HDF5 containers: a 512-byte MATLAB text header, then the HDF5 signature.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class Dataset(NamedTuple):
  """A train/test pair of data matrices.

  Attributes:
    train: [N, D] float32 array, one case per row.
    test: [M, D] float32 array, one case per row.
  """
  train: np.ndarray
  test: np.ndarray


class DataError(ValueError):
  """A data file is missing, unreadable or not what it should be.

  The message names the file, what was expected of it, and where to put a good copy.
  """


class MissingDataError(DataError, FileNotFoundError):
  """A data file was not found (also a `FileNotFoundError`)."""


def where_to_put_it() -> str:
  """The sentence every missing-file message ends with."""
  return _WHERE


def resolve_data_dir(data_dir) -> pathlib.Path | None:
  """`data_dir`, else `$MOMINIT_DATA_DIR`, else None; as a `Path`.

  Raises:
    MissingDataError: the folder named does not exist (a typo must not silently fall back to
      the generated CURVES, or read as "file not found").
  """
  where = "data_dir"
  if data_dir is None:
    data_dir, where = os.environ.get(DATA_DIR_ENV) or None, f"${DATA_DIR_ENV}"
  if data_dir is None:
    return None
  folder = pathlib.Path(data_dir).expanduser()
  if not folder.is_dir():
    raise MissingDataError(f"{where} {str(data_dir)!r} is not an existing folder. "
                           f"{where_to_put_it()}")
  return folder


def find_file(data_dir, names: Sequence[str], what: str) -> pathlib.Path:
  """The first of `names` that exists in `data_dir`.

  Args:
    data_dir: folder to look in (None: `$MOMINIT_DATA_DIR`).
    names: acceptable file names, in order of preference.
    what: what the file holds, for the error message (e.g. "MNIST test images, 10,000 x 28 x 28").

  Returns:
    The path of the file found.

  Raises:
    MissingDataError: no data folder was given, or none of `names` is in it.
  """
  folder = resolve_data_dir(data_dir)
  if folder is None:
    raise MissingDataError(
        f"{names[0]} ({what}) is needed but no data folder was given. {where_to_put_it()}")
  for name in names:
    path = folder / name
    if path.is_file():
      return path
  tried = " or ".join(names)
  raise MissingDataError(f"{tried} ({what}) not found in {folder}. {where_to_put_it()}")


def read_mat(path: pathlib.Path, variables: Sequence[str], what: str) -> dict:
  """Reads `variables` from a MATLAB .mat file (versions 4 to 7.2) with SciPy.

  Args:
    path: the .mat file.
    variables: names of the variables to read; all must be present.
    what: what the file should hold, for error messages.

  Returns:
    Dict from variable name to NumPy array.

  Raises:
    DataError: the file is a MATLAB v7.3 (HDF5) file, which SciPy cannot read, is not a .mat
      file, or lacks one of `variables`.
  """
  with open(path, "rb") as f:
    head = f.read(520)
  if head[512:520] == _HDF5_SIGNATURE or b"MATLAB 7.3" in head[:128]:
    names = ", ".join(f"'{v}'" for v in variables)
    raise DataError(
        f"{path} is a MATLAB v7.3 (HDF5) file, which scipy.io cannot read (and h5py is not a "
        f"dependency of mominit). Re-save it in v7 format, e.g. in MATLAB or Octave: "
        f"load('{path.name}'); save('{path.name}', {names}, '-v7'). Expected: {what}.")
  try:
    import scipy.io  # Imported here: only the .mat datasets need it.
    contents = scipy.io.loadmat(str(path), variable_names=list(variables))
  except (ValueError, TypeError, OSError, NotImplementedError, EOFError,
          scipy.io.matlab.MatReadError) as e:  # MatReadError: e.g. a truncated file
    raise DataError(f"{path} could not be read as a MATLAB .mat file ({e}). Expected: {what}. "
                    f"{where_to_put_it()}") from e
  missing = [v for v in variables if v not in contents]
  if missing:
    raise DataError(f"{path} lacks the variable(s) {missing}. Expected: {what}. "
                    f"{where_to_put_it()}")
  return {v: contents[v] for v in variables}


def check_matrix(array: np.ndarray, shape: tuple, name: str, path, what: str) -> np.ndarray:
  """Checks a 2-D array's shape (None in `shape` matches any size) and returns it.

  Raises:
    DataError: the array is not 2-D or its shape differs from `shape`.
  """
  ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
  if not ok:
    want = " x ".join("any" if s is None else f"{s:,}" for s in shape)
    raise DataError(f"{path}: variable '{name}' has shape {array.shape}, expected {want} "
                    f"({what}). {where_to_put_it()}")
  return array
