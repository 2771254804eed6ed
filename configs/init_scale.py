"""Initialization scale (docs/paper.md, Table 3): `--config configs/init_scale.py:sparse,quick`.

The argument is init,size. init: sparse (Table 3: the sparse init times each of the plan's
`scales`, a traced `init_scale` sweep) or gaussian (the poorly scaled dense N(0, 0.01^2) init at
scale 1, trained with the plan's `gaussian_rules` x `gaussian_mu_max`). size: a reproduction
size of configs/reproduce.py (tiny, quick, medium, paper; default paper), whose `init_scale`
section gives the data set and the rest. Override any field, e.g. `--config.steps=300`.
"""
from configs import autoencoder
from configs import reproduce

INITS = ("sparse", "gaussian")


def get_config(arg: str = "sparse,paper"):
  init, _, size = (arg or "sparse").partition(",")
  return from_plan(reproduce.plan(size or "paper")["init_scale"], init)


def from_plan(section: dict, init: str = "sparse", data_dir: str = "", progress: bool = False):
  """The engine config of a plan's `init_scale` section for `init` ("sparse" or "gaussian").

  Raises:
    ValueError: another init.
  """
  if init not in INITS:
    raise ValueError(f"init must be 'sparse' or 'gaussian', got {init!r}")
  if init == "gaussian":
    section = {**section, "rules": section["gaussian_rules"], "mu_max": section["gaussian_mu_max"]}
  config = autoencoder.from_plan(section, section["dataset"], data_dir, progress)
  config.init = init
  config.sweep.init_scale = list(section["scales"]) if init == "sparse" else [1.0]
  return config
