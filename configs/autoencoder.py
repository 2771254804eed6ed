"""Deep autoencoders (docs/paper.md section 4, Table 1): `--config configs/autoencoder.py:curves`.

The argument is the dataset: curves (built-in generated data), mnist or faces (need --data_dir).
Defaults are the paper's protocol: 750,000 updates of minibatch 200, sparse init, the momentum
schedule of section 2 with a final 1,000-update phase at mu = 0.9, and the full (rule, mu_max,
learning rate) grid. Shrink it from the command line, e.g.
`--config.steps=20000 --config.sweep.mu_max='(0.99,)'`.

`curves,quick` (dataset,size): the Table 1 population of that data set at a reproduction size
of configs/reproduce.py (tiny, quick, medium, paper), what `experiments.reproduce` trains
(`configs.reproduce.autoencoder_config`).
"""
from configs import reproduce
from mominit import train


def get_config(arg: str = "curves"):
  dataset, _, size = (arg or "curves").partition(",")
  if size:
    return reproduce.autoencoder_config(reproduce.plan(size)["autoencoders"], dataset)
  config = train.default_config("autoencoder")
  config.dataset = dataset or "curves"
  return config
