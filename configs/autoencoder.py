"""Deep autoencoders (docs/paper.md section 4, Table 1): `--config configs/autoencoder.py:curves`.

The argument is the dataset: curves (built-in generated data), mnist or faces (need --data_dir).
Defaults are the paper's protocol: 750,000 updates of minibatch 200, sparse init, the momentum
schedule of section 2 with a final 1,000-update phase at mu = 0.9, and the full (rule, mu_max,
learning rate) grid. Shrink it from the command line, e.g.
`--config.steps=20000 --config.sweep.mu_max='(0.99,)'`.
"""
from mominit import train


def get_config(arg: str = "curves"):
  config = train.default_config("autoencoder")
  config.dataset = arg or "curves"
  return config
