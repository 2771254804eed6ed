"""Deep autoencoders (docs/paper.md section 4, Table 1): `--config configs/autoencoder.py:curves`.

The argument is the dataset: curves (built-in generated data), mnist or faces (need --data_dir).
Defaults are the paper's protocol: 750,000 updates of minibatch 200, sparse init, the momentum
schedule of section 2 with a final 1,000-update phase at mu = 0.9, and the full (rule, mu_max,
learning rate) grid. Shrink it from the command line, e.g.
`--config.steps=20000 --config.sweep.mu_max='(0.99,)'`.

`curves,quick` (dataset,size): the Table 1 population of that data set at a reproduction size
of configs/reproduce.py (tiny, quick, medium, paper), what `experiments.reproduce` trains.
"""
from configs import reproduce
from mominit import train

# The fields of a plan's `autoencoders` section (configs/reproduce.py) -> the engine's.
PLAN_FIELDS = {
    "steps": "steps", "eval_every": "eval_every", "chunk": "chunk", "final_steps": "final_steps",
    "momentum_period": "momentum_period", "num_train": "num_train", "num_test": "num_test",
    "batch_size": "batch_size", "seeds": "sweep.seed", "rules": "sweep.rule",
    "mu_max": "sweep.mu_max", "learning_rates": "sweep.learning_rate"}


def get_config(arg: str = "curves"):
  dataset, _, size = (arg or "curves").partition(",")
  if size:
    return from_plan(reproduce.plan(size)["autoencoders"], dataset)
  config = train.default_config("autoencoder")
  config.dataset = dataset or "curves"
  return config


def from_plan(section: dict, dataset: str, data_dir: str = "", progress: bool = False):
  """The paper's config of `dataset` with the `PLAN_FIELDS` of a plan's section set (sequences
  as lists); `data_dir` "" is the built-in data / `$MOMINIT_DATA_DIR`."""
  config = get_config(dataset)
  config.data_dir = data_dir or ""
  set_fields(config, section, PLAN_FIELDS)
  config.progress = progress
  return config


def set_fields(config, section: dict, fields: dict) -> None:
  """`config.<path> = section[key]` for every `fields` item (key: path); tuples become lists."""
  for key, path in fields.items():
    *parents, name = path.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    value = section[key]
    node[name] = list(value) if isinstance(value, (tuple, list)) else value
