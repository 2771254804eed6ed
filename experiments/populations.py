"""Running one population through the engine and labelling its rows (shared by the experiments).

Every experiment goes through `mominit.train.train_and_evaluate`; this module adds what the
reports need around it: the data an autoencoder population trains on (built-in CURVES generated
at the preset's size, or the real files from `--data_dir`), the problem's baseline error, a
guard against resuming a workdir that holds a different config, and the `experiment`, `problem`
and `baseline` columns of the combined results table.
"""
import json
import pathlib
from typing import Optional

import numpy as np
import pandas as pd

from mominit import train


def autoencoder_data(dataset: str, num_train: int, num_test: int,
                     data_dir: Optional[str] = None):
  """The data a preset's autoencoder population trains on.

  CURVES: the real `digs3pts_1.mat` when `data_dir` has it, else the built-in generator run at
  the preset's size only (generating all 30,000 images for a 1,000-case run wastes minutes).
  MNIST and FACES: the files in `data_dir` (or `$MOMINIT_DATA_DIR`).

  Args:
    dataset: "curves", "mnist" or "faces".
    num_train: training cases used (0: all).
    num_test: test cases used (0: all).
    data_dir: folder with the data files, or None.

  Returns:
    A `mominit.data.Dataset` cut to [num_train] / [num_test] cases.

  Raises:
    mominit.data.DataError (a ValueError) or MissingDataError (also a FileNotFoundError),
    naming the missing file and where to put it.
  """
  from mominit import data  # pylint: disable=import-outside-toplevel
  from mominit.data import curves  # pylint: disable=import-outside-toplevel
  if dataset == "curves" and not (data_dir and (pathlib.Path(data_dir) / curves.FILENAME).exists()):
    full = data.Dataset(*curves.generate(num_train or curves.NUM_TRAIN,
                                         num_test or curves.NUM_TEST))
  else:
    full = data.load(dataset, data_dir or None)
  train_set = full.train[:num_train] if num_train else full.train
  test_set = full.test[:num_test] if num_test else full.test
  return data.Dataset(train_set, test_set)


def mean_image_error(images) -> float:
  """The error of always outputting the mean image: mean over cases of sum_pixels (x - mean)^2.

  This is the error of an autoencoder stuck on its initial plateau (it has learnt only the
  output biases), the reference for "trained" in `experiments.claims`.

  Args:
    images: [N, D] training cases.
  """
  x = np.asarray(images, np.float64)
  return float(np.mean(np.sum((x - x.mean(0)) ** 2, axis=1)))


def check_workdir(config, workdir) -> None:
  """Refuses to resume a run whose saved config differs from `config`.

  The engine resumes from any checkpoint in its workdir; a different population would fail
  deep inside orbax, so we stop early with a clear message instead.

  Raises:
    ValueError: the workdir holds a run of another config.
  """
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    return
  old = json.loads(path.read_text())
  new = json.loads(config.to_json_best_effort())
  keys = ("progress", "checkpoint_minutes", "memory_budget")  # they do not change the run
  # A field the saved config lacks and the new one leaves None (added to the engine since, off
  # by default) is the same run: compare with absent == None, as mominit.runlog does.
  changed = sorted(k for k in set(old) | set(new)
                   if k not in keys and old.get(k) != new.get(k))
  if changed:
    raise ValueError(f"{workdir} holds a run of a different config (fields {changed} differ); "
                     "use a new --workdir or delete that folder")


def run(config, workdir, experiment: str, problem: str, baseline: float,
        data=None, branch_at=(), start_from=None, **labels) -> pd.DataFrame:
  """Trains one population (resuming from `workdir` if it holds the same config).

  Args:
    config: the engine config.
    workdir: the population's folder (metrics.jsonl, results.csv, checkpoints).
    experiment: the `experiment` label ("table1", "table3", "gaussian", "table5").
    problem: the `problem` label (data set or RNN problem name).
    baseline: the problem's baseline error (see `experiments.claims`).
    data: optional `Dataset` for autoencoders.
    branch_at, start_from: passed to `train.train_and_evaluate` (`mominit.branch`).
    **labels: more constant columns (e.g. init="sparse").

  Returns:
    The engine's per-member DataFrame with the label columns in front.
  """
  check_workdir(config, workdir)
  frame = train.train_and_evaluate(config, workdir=str(workdir), data=data,
                                   branch_at=tuple(branch_at), start_from=start_from)
  front = {"experiment": experiment, "problem": problem, **labels, "baseline": baseline}
  for i, (name, value) in enumerate(front.items()):
    frame.insert(i, name, value)
  return frame
