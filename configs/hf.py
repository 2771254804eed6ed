"""Hessian-free vs NAG on CURVES (experiments/hf.py, paper sec. 5): `--config configs/hf.py:tiny`.

The argument is the size: tiny (CI, under a minute on 2 CPU cores), quick, medium (= quick, what
`experiments.reproduce --preset medium` runs) or paper (Martens' scale, meant for GPUs). The
fields are the study's preset (`experiments.hf.PRESETS`); override any of them, e.g.
`--config.hf_steps=10 --config.nag_lrs='(0.01,)'`. `--config.data_dir` may name a folder with
the original CURVES `digs3pts_1.mat` (default: generated CURVES).

The hybrid HF-dagger schedules of the paper's appendix (docs/paper.md section 9) run with
`--config configs/hf.py:hybrid_curves` (a reduced run: 2,000 cases, every phase 1/1000 of its
length), `hybrid_mnist` (the same for MNIST; needs `--config.data_dir`), `hybrid_tiny` (seconds,
for tests), and `hybrid_curves_paper` / `hybrid_mnist_paper` (the paper's lengths, meant for
GPUs). Their fields and our readings of what the paper leaves open: `experiments.hf_hybrid`.
"""
from ml_collections import config_dict

# Config argument -> the study's own preset (medium as experiments/presets.py has it).
SIZES = {"tiny": "tiny", "quick": "quick", "medium": "quick", "paper": "paper"}

_CURVES_NET = (784, 400, 200, 100, 50, 25, 6)
_MNIST_NET = (784, 1000, 500, 250, 30)
# Hybrid configs: the schedule, its data and net, and the scales of its lengths.
HYBRID = {
    "hybrid_tiny": dict(schedule="curves", num_train=320, sizes=(784, 20, 6),
                        length_scale=1 / 5000, cg_scale=0.1),
    "hybrid_curves": dict(schedule="curves", num_train=2000, sizes=_CURVES_NET,
                          length_scale=1 / 1000, cg_scale=1.0),
    "hybrid_mnist": dict(schedule="mnist", num_train=2000, sizes=_MNIST_NET,
                         length_scale=1 / 100, cg_scale=1.0),
    "hybrid_curves_paper": dict(schedule="curves", num_train=20000, sizes=_CURVES_NET,
                                length_scale=1.0, cg_scale=1.0),
    "hybrid_mnist_paper": dict(schedule="mnist", num_train=0, sizes=_MNIST_NET,
                               length_scale=1.0, cg_scale=1.0),
}


def _hybrid(arg):
  config = config_dict.ConfigDict()
  config.study = "hybrid"
  config.data_dir = config_dict.placeholder(str)
  config.seed = 0
  config.curves_phase2_cg_steps = 250_000  # not stated in the paper (experiments.hf_hybrid)
  config.mnist_phase3_cg_per_update = 50   # not stated in the paper
  config.l2_final = 2e-8                   # Curves phase 4's "near 0"
  config.init_damping = 45.0
  config.cg_eps = 0.0                      # exactly cg_per_update CG steps per update
  config.backtrack = "walk"
  config.eval_every = 0                    # updates between evaluations (0: phase ends only)
  for key, value in HYBRID[arg].items():
    config[key] = value
  return config


def get_config(arg: str = "tiny"):
  from experiments import hf  # pylint: disable=import-outside-toplevel
  arg = arg or "tiny"
  if arg in HYBRID:
    return _hybrid(arg)
  if arg not in SIZES:
    raise ValueError(f"configs/hf.py: unknown size {arg!r}; valid: "
                     f"{', '.join(list(SIZES) + list(HYBRID))}")
  config = config_dict.ConfigDict()
  config.preset = SIZES[arg]
  config.data_dir = config_dict.placeholder(str)
  for key, value in hf.PRESETS[config.preset].items():
    config[key] = value
  return config
