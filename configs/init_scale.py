"""Initialization scale (docs/paper.md, Table 3): `--config configs/init_scale.py:sparse,quick`.

The argument is init,size. init: sparse (Table 3: the sparse init times each of the plan's
`scales`, a traced `init_scale` sweep) or gaussian (the poorly scaled dense N(0, 0.01^2) init at
scale 1, trained with the plan's `gaussian_rules` x `gaussian_mu_max`). size: a reproduction
size of configs/reproduce.py (tiny, quick, medium, paper; default paper), whose `init_scale`
section gives the data set and the rest (`configs.reproduce.init_scale_config`). Override any
field, e.g. `--config.steps=300`.
"""
from configs import reproduce


def get_config(arg: str = "sparse,paper"):
  init, _, size = (arg or "sparse").partition(",")
  return reproduce.init_scale_config(reproduce.plan(size or "paper")["init_scale"], init)
