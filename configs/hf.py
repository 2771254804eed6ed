"""Hessian-free vs NAG on CURVES (experiments/hf.py, paper sec. 5): `--config configs/hf.py:tiny`.

The argument is the size: tiny (CI, under a minute on 2 CPU cores), quick, medium (= quick; the
reproduce medium preset leaves the study out) or paper (Martens' scale, meant for GPUs). The
fields are the study's preset (`experiments.hf.PRESETS`); override any of them, e.g.
`--config.hf_steps=10 --config.nag_lrs='(0.01,)'`. `--config.data_dir` may name a folder with
the original CURVES `digs3pts_1.mat` (default: generated CURVES).
"""
from ml_collections import config_dict

# Config argument -> the study's own preset (medium = quick).
SIZES = {"tiny": "tiny", "quick": "quick", "medium": "quick", "paper": "paper"}


def get_config(arg: str = "tiny"):
  from experiments import hf  # pylint: disable=import-outside-toplevel
  arg = arg or "tiny"
  if arg not in SIZES:
    raise ValueError(f"configs/hf.py: unknown size {arg!r}; valid: {', '.join(SIZES)}")
  config = config_dict.ConfigDict()
  config.preset = SIZES[arg]
  config.data_dir = config_dict.placeholder(str)
  for key, value in hf.PRESETS[config.preset].items():
    config[key] = value
  return config
