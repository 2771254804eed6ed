"""The Glorot & Bengio study (experiments/glorot.py): `--config configs/glorot.py:quick`.

The argument is the size: tiny (CI, about 3 CPU-minutes), quick (minutes), medium
(= quick; the reproduce medium preset leaves the study out) or paper (= the study's `full`
preset; "full" is accepted too). The fields are the study's preset
(`experiments.glorot.PRESETS`); override any of them, e.g. `--config.ae_steps=100
--config.mlp_lr.tanh=0.02`. MNIST comes only from `--config.data_dir` (without it the MLP task
is skipped, with the reason in the report).
"""
from ml_collections import config_dict

# Config argument -> the study's own preset (paper as configs/reproduce.py has it; medium = quick).
SIZES = {"tiny": "tiny", "quick": "quick", "medium": "quick", "paper": "full", "full": "full"}


def get_config(arg: str = "quick"):
  from experiments import glorot  # pylint: disable=import-outside-toplevel
  arg = arg or "quick"
  if arg not in SIZES:
    raise ValueError(f"configs/glorot.py: unknown size {arg!r}; valid: {', '.join(SIZES)}")
  config = config_dict.ConfigDict()
  config.preset = SIZES[arg]
  config.data_dir = config_dict.placeholder(str)
  config.seed = 0
  for key, value in glorot.PRESETS[config.preset].items():
    config[key] = config_dict.placeholder(tuple) if value is None else value
  return config
