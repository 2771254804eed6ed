"""The reproduction's plan per size: `--config configs/reproduce.py:quick` (experiments.reproduce).

The sizes, in one place:

- tiny: seconds of training on tiny subsets, for CI. Numbers mean nothing.
- quick: the README's first job, about 10 minutes on 2 CPU cores with the install (measured
  9 min 54 s from a fresh clone, docs/reproduce.md): CURVES (generated) and the
  addition problem, with fewer updates, a faster momentum schedule (so mu reaches mu_max within
  the run), smaller grids and 2 seeds.
- medium: every built-in problem (CURVES and the four RNN problems; MNIST/FACES too when
  `--data_dir` has them), longer runs, about 2 hours on a 2-core CPU.
- paper: the full protocol of docs/paper.md (750,000 / 50,000 updates, full grids, 4 RNN seeds),
  meant for GPUs.

A plan has one section per experiment: `autoencoders` (Tables 1 and 2), `init_scale` (Table 3
and the poorly scaled Gaussian), `rnn` (Table 5), `quadratic` (the keyword arguments of
`experiments.quadratic.run`; `rates`: the convergence-rate checks, "full", "small" or None),
`hf` / `glorot` (the size of configs/hf.py / configs/glorot.py to run, None: not run), and
`description`. The engine config of one population is the paper's (configs/autoencoder.py,
configs/rnn.py) with a section's `AUTOENCODER_FIELDS` / `RNN_FIELDS` set: `autoencoder_config`,
`init_scale_config` and `rnn_config` below, which `configs/autoencoder.py:curves,quick`,
`configs/init_scale.py:sparse,quick` (or `gaussian,quick`) and `configs/rnn.py:add,quick` give.
Override any field from the command line, e.g. `--config.autoencoders.steps=300
--config.rnn.seeds='(0,)'`.

Each section's `deviations` lists, in words, how it differs from the paper (copied into the
report). Optional keys: `autoencoders.final_twins` ({experiment label: final_steps}: twin
populations of the NAG cells with mu_max above the final mu, e.g. the control with
final_steps = 0 that the "final phase helps" claim needs) and `rnn.input_scales` ({problem:
scales}) / `rnn.spectral_radii` ({problem: radii of W_hh}) / `rnn.uncentred` (problems) for
the RNN input-scale, spectral-radius and centring studies. Momentum
claims need >= 2 (better 3) learning rates per cell, so every size has a grid.

A workdir records its plan (`reproduce.json`, experiments/workdirs.py); changing a size's
numbers here makes the workdirs of that size refuse to resume, so change them only on purpose.
"""
import copy
from typing import Optional, Union

from ml_collections import config_dict

AE_LRS = (0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001)  # docs/paper.md section 4
RNN_LRS = (1e-3, 1e-4, 1e-5, 1e-6)                  # docs/paper.md section 5
SI_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)              # Table 3
RNN_PROBLEMS = ("add", "mul", "mem5", "mem20")      # Table 5 (configs/rnn.py names)

SIZES = {
    "tiny": {
        "description": "CI smoke test: seconds of training on tiny subsets; numbers mean nothing.",
        "autoencoders": {
            "datasets": ("curves", "mnist", "faces"), "steps": 24, "eval_every": 8, "chunk": 8,
            "final_steps": 6, "momentum_period": 2, "num_train": 200, "num_test": 50,
            "batch_size": 20, "seeds": (0, 1), "rules": ("nag", "cm"),
            "mu_max": (0.0, 0.9, 0.99), "learning_rates": (0.05, 0.01, 0.005),
            "final_twins": {"table2_control": 0},
            "deviations": ["24 updates of minibatch 20 on 200 cases", "momentum period 2",
                           "final phase 6 updates", "grid: mu_max 0/0.9/0.99, eps 0.05/0.01/0.005",
                           "2 seeds"]},
        "init_scale": {
            "dataset": "curves", "steps": 24, "eval_every": 12, "chunk": 12, "final_steps": 0,
            "momentum_period": 2, "num_train": 200, "num_test": 50, "batch_size": 20,
            "seeds": (0,), "rules": ("nag",), "mu_max": (0.9,), "learning_rates": (0.01,),
            "scales": SI_SCALES, "gaussian_rules": ("nag", "cm"), "gaussian_mu_max": (0.9,),
            "deviations": ["24 updates of minibatch 20 on 200 cases", "1 seed, eps 0.01"]},
        "rnn": {
            "problems": {"add": {"T": 10}}, "steps": 30, "eval_every": 10, "chunk": 10,
            "warm_steps": 10, "hidden": 8, "batch_size": 16, "eval_sequences": 64,
            "seeds": (0, 1), "rules": ("nag", "cm"), "mu_0": (0.0, 0.9, 0.995),
            "learning_rates": (3e-3, 1e-3, 3e-4),
            "deviations": ["addition with T=10, 8 hidden units", "30 updates of 16 sequences",
                           "warm phase 10 updates", "2 seeds, eps 3e-3/1e-3/3e-4"]},
        "quadratic": {"num_steps": 60, "theorem_steps": 60, "rates": "small"},
        "hf": "tiny", "glorot": "tiny",
    },
    "quick": {
        "description": "CURVES (generated) and the addition problem in under 10 minutes on 2 CPU "
                       "cores; reduced updates and grids.",
        "autoencoders": {
            "datasets": ("curves",), "steps": 1200, "eval_every": 200, "chunk": 200,
            "final_steps": 200, "momentum_period": 10, "num_train": 8000, "num_test": 2000,
            "batch_size": 200, "seeds": (0, 1), "rules": ("nag", "cm"),
            "mu_max": (0.0, 0.99), "learning_rates": (0.05, 0.01, 0.005),
            "final_twins": {"table2_control": 0},
            "deviations": ["1,200 updates instead of 750,000", "8,000 of the 20,000 generated "
                           "training cases (2,000 test)", "momentum period 10 instead of 250 "
                           "(mu reaches 0.99 at update 490)", "final phase 200 updates instead "
                           "of 1,000", "mu_max 0 (SGD) and 0.99 only", "three learning rates "
                           "(0.05, 0.01, 0.005) instead of six", "2 seeds"]},
        "init_scale": {
            "dataset": "curves", "steps": 800, "eval_every": 200, "chunk": 200,
            "final_steps": 0, "momentum_period": 10, "num_train": 8000, "num_test": 2000,
            "batch_size": 200, "seeds": (0,), "rules": ("nag",), "mu_max": (0.99,),
            "learning_rates": (0.01,), "scales": (0.25, 0.5, 1.0, 2.0),
            "gaussian_rules": ("nag",), "gaussian_mu_max": (0.99,),
            "deviations": ["800 updates, 8,000 cases", "momentum period 10, no final phase",
                           "NAG mu_max 0.99, eps 0.01, 1 seed", "scales 1/4..2 (4 left out)",
                           "Gaussian init: NAG at mu_max 0.99 only"]},
        "rnn": {
            "problems": {"add": {"T": 20}}, "steps": 1500, "eval_every": 250, "chunk": 250,
            "warm_steps": 250, "hidden": 100, "batch_size": 100, "eval_sequences": 1000,
            "seeds": (0, 1), "rules": ("nag", "cm"), "mu_0": (0.0, 0.9, 0.995),
            "learning_rates": (3e-3, 1e-3, 3e-4),
            "deviations": ["addition with T=20 instead of 80", "1,500 updates instead of "
                           "50,000", "warm phase (mu = 0.9) 250 updates instead of 1,000",
                           "mu_0 0/0.9/0.995, eps 3e-3/1e-3/3e-4 instead of 1e-3 ... 1e-6",
                           "2 seeds instead of 4"]},
        "quadratic": {"rates": "small"},
        "hf": None, "glorot": None,
    },
    "medium": {
        "description": "Every built-in problem (CURVES, four RNN problems; MNIST and FACES when "
                       "--data_dir has them), about 2 hours on a 2-core CPU; no HF or Glorot study "
                       "(their own quick sizes are documented runs).",
        "autoencoders": {
            "datasets": ("curves", "mnist", "faces"), "steps": 4000, "eval_every": 500,
            "chunk": 500, "final_steps": 1000, "momentum_period": 10, "num_train": 0,
            "num_test": 0, "batch_size": 200, "seeds": (0, 1), "rules": ("nag", "cm"),
            "mu_max": (0.0, 0.9, 0.99, 0.995), "learning_rates": (0.05, 0.01, 0.005),
            "final_twins": {"table2_control": 0},
            "deviations": ["4,000 updates instead of 750,000", "momentum period 10 instead "
                           "of 250 (mu reaches 0.995 at update 990)", "final phase 1,000 "
                           "updates as in the paper", "mu_max up to 0.995", "three learning "
                           "rates (0.05, 0.01, 0.005)", "2 seeds", "the control twin only (no "
                           "early-lowering twin)", "MNIST and FACES (when "
                           "present) take hours more"]},
        "init_scale": {
            "dataset": "curves", "steps": 2000, "eval_every": 500, "chunk": 500,
            "final_steps": 0, "momentum_period": 10, "num_train": 0, "num_test": 0,
            "batch_size": 200, "seeds": (0,), "rules": ("nag",), "mu_max": (0.99,),
            "learning_rates": (0.01,), "scales": SI_SCALES, "gaussian_rules": ("nag", "cm"),
            "gaussian_mu_max": (0.99,),
            "deviations": ["2,000 updates, momentum period 10, no final phase",
                           "NAG mu_max 0.99, eps 0.01, 1 seed"]},
        "rnn": {
            "problems": {"add": {"T": 40}, "mul": {"T": 40}, "mem5": {"T": 50},
                         "mem20": {"T": 40}},
            "steps": 1500, "eval_every": 250, "chunk": 250, "warm_steps": 250,
            "hidden": 100, "batch_size": 100, "eval_sequences": 1000, "seeds": (0, 1),
            "rules": ("nag", "cm"), "mu_0": (0.0, 0.9, 0.995),
            "learning_rates": (3e-3, 1e-3, 3e-4),
            "input_scales": {"add": (1e-4, 1e-3, 1e-2, 1e-1)}, "uncentred": ("mul",),
            "spectral_radii": {"add": (0.5, 1.1, 2.0)},
            "deviations": ["shorter sequences: add and mul T=40 (paper 80), mem-5 T=50 (200), "
                           "mem-20 T=40 (80)", "1,500 updates instead of 50,000", "warm phase "
                           "250 updates", "mu_0 0/0.9/0.995, eps 3e-3/1e-3/3e-4", "2 seeds "
                           "instead of 4"]},
        "quadratic": {},
        "hf": None, "glorot": None,
    },
    "paper": {
        "description": "The full protocol of docs/paper.md (meant for GPUs).",
        "autoencoders": {
            "datasets": ("curves", "mnist", "faces"), "steps": 750_000, "eval_every": 10_000,
            "chunk": 1000, "final_steps": 1000, "momentum_period": 250, "num_train": 0,
            "num_test": 0, "batch_size": 200, "seeds": (0, 1), "rules": ("nag", "cm"),
            "mu_max": (0.0, 0.9, 0.99, 0.995, 0.999), "learning_rates": AE_LRS,
            "final_twins": {"table2_control": 0, "table2_early": 50_000},
            "deviations": ["2 seeds per cell (the paper reports single runs) so that claims "
                           "can be judged against the seed spread"]},
        "init_scale": {
            "dataset": "curves", "steps": 750_000, "eval_every": 10_000, "chunk": 1000,
            "final_steps": 1000, "momentum_period": 250, "num_train": 0, "num_test": 0,
            "batch_size": 200, "seeds": (0, 1), "rules": ("nag",), "mu_max": (0.99,),
            "learning_rates": AE_LRS, "scales": SI_SCALES, "gaussian_rules": ("nag", "cm"),
            "gaussian_mu_max": (0.99, 0.999),
            "deviations": ["NAG with mu_max 0.99 (the paper does not state Table 3's mu_max)"]},
        "rnn": {
            "problems": {"add": {"T": 80}, "mul": {"T": 80}, "mem5": {}, "mem20": {}},
            "steps": 50_000, "eval_every": 2000, "chunk": 1000, "warm_steps": 1000,
            "hidden": 100, "batch_size": 100, "eval_sequences": 1000,
            "seeds": tuple(range(4)), "rules": ("nag", "cm"), "mu_0": (0.0, 0.9, 0.98, 0.995),
            "learning_rates": RNN_LRS,
            "input_scales": {"add": (1e-4, 1e-3, 1e-2, 1e-1)}, "uncentred": ("mul",),
            "spectral_radii": {p: (0.5, 0.9, 1.1, 2.0, 3.0) for p in ("add", "mem5")},
            "deviations": []},
        "quadratic": {},
        "hf": "paper", "glorot": "full",
    },
}



def get_config(arg: str = "quick") -> config_dict.ConfigDict:
  """The plan of one size (`SIZES`); `hf` / `glorot` of None become str placeholders, so
  `--config.hf=quick` can set them.

  Raises:
    ValueError: unknown size (the message lists the valid ones).
  """
  size = arg or "quick"
  if size not in SIZES:
    raise ValueError(f"configs/reproduce.py: unknown size {size!r}; valid presets: "
                     f"{', '.join(SIZES)}")
  plan_dict = copy.deepcopy(SIZES[size])
  for study in ("hf", "glorot"):
    if plan_dict[study] is None:
      plan_dict[study] = config_dict.placeholder(str)
  return config_dict.ConfigDict(plan_dict)


# A section's fields -> the engine config's (the section's other fields describe the plan).
AUTOENCODER_FIELDS = {
    "steps": "steps", "eval_every": "eval_every", "chunk": "chunk", "final_steps": "final_steps",
    "momentum_period": "momentum_period", "num_train": "num_train", "num_test": "num_test",
    "batch_size": "batch_size", "seeds": "sweep.seed", "rules": "sweep.rule",
    "mu_max": "sweep.mu_max", "learning_rates": "sweep.learning_rate"}
RNN_FIELDS = {
    "steps": "steps", "eval_every": "eval_every", "chunk": "chunk", "warm_steps": "warm_steps",
    "hidden": "hidden", "batch_size": "batch_size", "eval_sequences": "eval_sequences",
    "seeds": "sweep.seed", "rules": "sweep.rule", "mu_0": "sweep.mu_max",
    "learning_rates": "sweep.learning_rate"}
INITS = ("sparse", "gaussian")


def autoencoder_config(section: dict, dataset: str, data_dir: Optional[str] = "",
                       progress: bool = False) -> config_dict.ConfigDict:
  """The Table 1 population of `dataset` ("curves", "mnist", "faces") under a plan's
  `autoencoders` section: the paper's config with `AUTOENCODER_FIELDS` set.

  Args:
    section: the section (plain dicts, `plan(...)["autoencoders"]`).
    dataset: the data set.
    data_dir: folder with the data files ("" or None: built-in / `$MOMINIT_DATA_DIR`).
    progress: show the engine's progress bar.
  """
  from configs import autoencoder  # pylint: disable=import-outside-toplevel
  config = autoencoder.get_config(dataset)
  config.data_dir = data_dir or ""
  _set_fields(config, section, AUTOENCODER_FIELDS)
  config.progress = progress
  return config


def init_scale_config(section: dict, init: str = "sparse", data_dir: Optional[str] = "",
                      progress: bool = False) -> config_dict.ConfigDict:
  """The Table 3 population (`init` "sparse": the sparse init times each of `scales`) or the
  poorly scaled Gaussian one ("gaussian": N(0, 0.01^2) at scale 1, with `gaussian_rules` x
  `gaussian_mu_max`) under a plan's `init_scale` section, on its `dataset`.

  Raises:
    ValueError: another init.
  """
  if init not in INITS:
    raise ValueError(f"init must be 'sparse' or 'gaussian', got {init!r}")
  if init == "gaussian":
    section = {**section, "rules": section["gaussian_rules"], "mu_max": section["gaussian_mu_max"]}
  config = autoencoder_config(section, section["dataset"], data_dir, progress)
  config.init = init
  config.sweep.init_scale = list(section["scales"]) if init == "sparse" else [1.0]
  return config


def rnn_config(section: dict, problem: str, progress: bool = False) -> config_dict.ConfigDict:
  """The Table 5 population of `problem` (a key of the section's `problems`: "add", "mul",
  "mem5", "mem20") under a plan's `rnn` section: the paper's config with the problem's task
  arguments (e.g. a shorter T) and `RNN_FIELDS` set.

  Raises:
    ValueError: `problem` is not one of the section's problems.
  """
  from configs import rnn  # pylint: disable=import-outside-toplevel
  if problem not in section["problems"]:
    raise ValueError(f"problem {problem!r} is not in this preset; it has "
                     f"{sorted(section['problems'])}")
  config = rnn.get_config(problem)
  config.task_kwargs = {**dict(config.task_kwargs), **dict(section["problems"][problem])}
  _set_fields(config, section, RNN_FIELDS)
  config.progress = progress
  return config


def _set_fields(config, section: dict, fields: dict) -> None:
  """`config.<path> = section[key]` for every `fields` item (key: path); tuples become lists."""
  for key, path in fields.items():
    *parents, name = path.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    value = section[key]
    node[name] = list(value) if isinstance(value, (tuple, list)) else value


def plan(preset: Union[str, config_dict.ConfigDict, dict]) -> dict:
  """A plan as plain dicts and tuples: of a size name, of a ConfigDict of `get_config` (its
  overrides applied), or a dict (returned as it is)."""
  if isinstance(preset, dict):
    return preset
  if isinstance(preset, config_dict.ConfigDict):
    return preset.to_dict()
  return get_config(preset).to_dict()
