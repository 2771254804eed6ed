"""RNN long-range-dependency problems (docs/paper.md s. 5, Table 5): `--config configs/rnn.py:add`.

Arguments: add, mul (T=80), mem5 (T=200), mem20 (T=80), or any task name of `mominit.tasks.make`.
Defaults are the paper's protocol: 50,000 updates on minibatches of 100 fresh sequences, mu = 0.9
for 1,000 updates then mu_0, 4 seeds (Table 5's caption), the (rule, mu_0, learning rate) grid.
The memorization problems are scored on their recall steps only (`recall_only`), Table 5's
protocol; `--config.task_kwargs.recall_only=False` scores every step instead. The recurrent
matrix is the model's default, Table 4's sparse one (15 inputs per unit, spectral radius 1.1).

`add,quick` (problem,size): the Table 5 population of that problem at a reproduction size of
configs/reproduce.py (tiny, quick, medium, paper), what `experiments.reproduce` trains
(`configs.reproduce.rnn_config`).
"""
from configs import reproduce
from mominit import train

# Table 5's problems: config argument -> (task name, task arguments).
PROBLEMS = {
    "add": ("addition", {"T": 80}),
    "mul": ("multiplication", {"T": 80}),
    "mem5": ("mem5", {"recall_only": True}),
    "mem20": ("mem20", {"recall_only": True}),
}


def get_config(arg: str = "add"):
  problem, _, size = (arg or "add").partition(",")
  if size:
    return reproduce.rnn_config(reproduce.plan(size)["rnn"], problem)
  config = train.default_config("rnn")
  config.task, kwargs = PROBLEMS.get(problem, (problem, {}))
  config.task_kwargs = kwargs
  config.sweep.seed = tuple(range(4))  # Table 5: mean over 4 seeds
  return config
