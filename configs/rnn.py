"""RNN long-range-dependency problems (docs/paper.md s. 5, Table 5): `--config configs/rnn.py:add`.

Arguments: add, mul (T=80), mem5 (T=200), mem20 (T=80), or any task name of `mominit.tasks.make`.
Defaults are the paper's protocol: 50,000 updates on minibatches of 100 fresh sequences, mu = 0.9
for 1,000 updates then mu_0, 4 seeds (Table 5's caption), the (rule, mu_0, learning rate) grid.
The memorization problems are scored on their recall steps only (`recall_only`), Table 5's
protocol; `--config.task_kwargs.recall_only=False` scores every step instead. The recurrent
matrix is the model's default, Table 4's sparse one (15 inputs per unit, spectral radius 1.1).
"""
from mominit import train

# Table 5's problems: config argument -> (task name, task arguments).
PROBLEMS = {
    "add": ("addition", {"T": 80}),
    "mul": ("multiplication", {"T": 80}),
    "mem5": ("mem5", {"recall_only": True}),
    "mem20": ("mem20", {"recall_only": True}),
}


def get_config(arg: str = "add"):
  config = train.default_config("rnn")
  config.task, kwargs = PROBLEMS.get(arg, (arg, {}))
  config.task_kwargs = kwargs
  config.sweep.seed = tuple(range(4))  # Table 5: mean over 4 seeds
  return config
