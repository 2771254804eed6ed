"""Memory planning (mominit.memory): a population over the budget trains in groups with the
results of one group; a member that cannot fit is refused with a message; an RNN population's
evaluation memory does not grow with its size."""
import jax
import numpy as np
import pytest

from mominit import memory
from mominit import train
from tests.test_train import ae_config, rnn_config, small_curves


def _train(parts, states, steps, chunk):
  """Trains every engine to `steps` in chunks; returns {error: [P] in member order}."""
  size = sum(len(idx) for idx, _ in parts)
  for start in range(0, steps, chunk):
    states = [engine.run_chunk(s, start, min(chunk, steps - start))[0]
              for (_, engine), s in zip(parts, states)]
  out = {}
  for (idx, engine), s in zip(parts, states):
    for name, values in engine.evaluate(s).items():
      out.setdefault(name, np.full(size, np.nan))[np.asarray(idx)] = np.asarray(values)[:len(idx)]
  return out


def _one_member_bytes(config, problem, members, device):
  probe = train.Engine(config, problem, members[:1], [device])
  return max(probe.compile(probe.init()).values()) - memory.tree_bytes(problem.data)


@pytest.mark.parametrize("kind", ["autoencoder", "rnn"])
def test_population_over_the_budget_trains_in_groups_equal_to_one_group(kind):
  if kind == "autoencoder":
    config = ae_config(seed=[0, 1, 2], rule=["nag"], mu_max=[0.9, 0.99], learning_rate=[0.01])
    problem = train.make_problem(config, small_curves())
  else:
    config = rnn_config(seed=[0, 1, 2], rule=["nag"], mu_max=[0.9, 0.99])
    problem = train.make_problem(config)
  members = train.population(config)
  assert len(members) == 6
  device = jax.devices()[:1]
  config.memory_budget = 1 << 40
  whole, whole_states, plans = memory.planned_engines(config, problem, members, device)
  assert len(whole) == 1 and plans[0].groups == (6,)
  one = _one_member_bytes(config, problem, members, device[0])
  data = memory.tree_bytes(problem.data)
  # Just below what the whole population needs (autoencoders: vmapped members each hold their
  # own activations; RNNs run one after another and share them, so one member's bytes are
  # close to the whole population's and the groups have one member).
  config.memory_budget = plans[0].population_bytes - 1
  said = []
  grouped, grouped_states, plans = memory.planned_engines(config, problem, members, device,
                                                          say=said.append)
  groups = plans[0].groups
  assert len(groups) > 1 and sum(groups) == 6 and [len(idx) for idx, _ in grouped] == list(groups)
  assert f"{len(groups)} groups of {max(groups)}" in said[0]
  assert plans[0].member_bytes == one and plans[0].shared_bytes == data
  a = _train(whole, whole_states, config.steps, config.chunk)
  b = _train(grouped, grouped_states, config.steps, config.chunk)
  for name in a:
    np.testing.assert_allclose(b[name], a[name], rtol=2e-5, err_msg=name)
  main = "train_error" if kind == "autoencoder" else "test_loss"
  assert len(set(np.round(a[main], 6))) > 1  # the members differ, so equality could fail


def test_a_member_too_large_for_the_budget_is_refused():
  config = rnn_config(seed=[0, 1])
  config.memory_budget = 10_000
  problem = train.make_problem(config)
  with pytest.raises(MemoryError, match=r"one rnn member .* needs [\d.,]+ MB .* memory budget "
                     r"of 0\.0 MB per device.*config\.memory_budget"):
    memory.planned_engines(config, problem, train.population(config), jax.devices()[:1])


def test_equal_groups():
  assert memory.equal_groups(280, 100) == (94, 93, 93)
  assert memory.equal_groups(6, 6) == (6,)
  assert memory.equal_groups(5, 2) == (2, 2, 1)
  plan = memory.split(280, 100 << 20, 1 << 20, 10_000 << 20)
  assert sum(plan.groups) == 280 and max(plan.groups) * (100 << 20) + (1 << 20) <= 10_000 << 20
  # Two measured points: 1 member 101 MB, 10 members 200 MB (11 MB each beyond the first).
  plan = memory.split(10, 100 << 20, 1 << 20, 150 << 20, population_bytes=200 << 20)
  assert plan.groups == (5, 5)  # 5 members: 101 + 4 * 11 = 145 MB <= 150 MB


def test_rnn_evaluation_memory_does_not_grow_with_the_population():
  """RNN members are evaluated one after another (as they train): the evaluation of 6 members
  needs little more than that of 1 (a vmapped evaluation would need 6 times its activations)."""
  config = rnn_config(seed=list(range(6)))
  config.eval_sequences = 512
  problem = train.make_problem(config)
  members = train.population(config)
  sizes = {}
  for count in (1, 6):
    engine = train.Engine(config, problem, members[:count], jax.devices()[:1])
    sizes[count] = engine.compile(engine.init())["evaluate"]
  assert sizes[6] < 1.5 * sizes[1], sizes
