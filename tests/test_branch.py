"""Branches (mominit.branch): a twin started from its parent's saved state ends where the twin
trained from update 0 ends, and a config that does not repeat the parent's updates is refused."""
import json

import numpy as np
import pytest

from mominit import branch
from mominit import train
from tests.test_train import ERRORS, ae_config, rnn_config, small_curves

# Parent: Table 2's cell (NAG, mu_max > 0.9) beside CM and SGD, with the final phase (mu = 0.9)
# over its last 6 of 24 updates; the control twin continues at mu_max from update 18 on.
PARENT = dict(rule=["nag", "cm"], mu_max=[0.0, 0.99], learning_rate=[0.01, 0.005], seed=[0, 1])
K = 17  # < steps - final_steps = 18: after 18 updates NAG's phi_18 holds mu_18 (0.9 or 0.99)


@pytest.fixture(scope="module")
def curves():
  return small_curves()


@pytest.fixture(scope="module")
def parent(curves, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("parent")
  frame = train.train_and_evaluate(ae_config(**PARENT), workdir=str(workdir), data=curves,
                                   branch_at=(K,))
  return workdir, frame


@pytest.fixture(scope="module")
def forked(parent, curves, tmp_path_factory):
  """The control twin started from the parent's branch: (its workdir, its results)."""
  workdir = tmp_path_factory.mktemp("twin")
  with pytest.MonkeyPatch.context() as patch:
    # Nothing to initialize: the engines' states are the branch's (so no init is compiled).
    patch.setattr(train.Engine, "init", lambda self: pytest.fail("the twin ran its init"))
    frame = train.train_and_evaluate(control(), workdir=str(workdir), data=curves,
                                     start_from=branch.path(parent[0], K))
  return workdir, frame


def control(**overrides):
  c = ae_config(rule=["nag"], mu_max=[0.99], learning_rate=[0.01, 0.005], seed=[0, 1])
  c.final_steps = 0
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


def test_twin_from_branch_ends_where_the_twin_from_scratch_ends(forked, curves):
  tmp_path, forked = forked
  logged = {}
  scratch = train.train_and_evaluate(
      control(), data=curves, callback=lambda step, r: logged.update({step: r["train_loss"]}))
  keys = ["learning_rate", "seed"]
  scratch, forked = scratch.sort_values(keys), forked.sort_values(keys)
  # The members ran in a population of 12 before the branch and of 4 after: float rounding.
  np.testing.assert_allclose(forked[["train_error", "test_error"]].to_numpy(),
                             scratch[["train_error", "test_error"]].to_numpy(), rtol=2e-5)
  # The twin really continued at mu_max: it differs from its parent, whose final phase ran.
  metrics = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  # The parent's evaluations before the branch, then the twin's own.
  assert [m["step"] for m in metrics] == [0, 8, 16, 24]
  # The chunk the branch split (updates 16-18 at chunk 5, split at 17) logs as one chunk: the
  # mean training loss since update 16 is the unbranched twin's.
  # (Both in member order: the same config.)
  np.testing.assert_allclose(metrics[3]["train_loss"], logged[24], rtol=2e-5)


def test_branch_of_the_whole_population_repeats_the_parent_bit_for_bit(parent, curves, tmp_path):
  workdir, frame = parent
  again = train.train_and_evaluate(ae_config(**PARENT), workdir=str(tmp_path), data=curves,
                                   start_from=branch.path(workdir, K))
  # The same members in the same population: the same compiled program on the same state.
  np.testing.assert_array_equal(again[ERRORS].to_numpy(), frame[ERRORS].to_numpy())
  assert np.isfinite(again.error_before_final).all()  # (taken at update 18, after the branch)


def test_the_control_differs_from_its_parent_only_after_the_branch(parent, forked):
  (workdir, frame), (tmp_path, forked) = parent, forked
  nag = frame[(frame.rule == "nag") & (frame.mu_max == 0.99)].sort_values(["learning_rate",
                                                                           "seed"])
  forked = forked.sort_values(["learning_rate", "seed"])
  saved = branch.load(branch.path(workdir, K))
  assert saved.step == K and len(saved.members) == len(frame)
  # Different at the end (only the parent lowered mu), the same record at update 16 (copied
  # from the parent's metrics, these members' columns).
  assert not np.allclose(forked.train_error.to_numpy(), nag.train_error.to_numpy(), rtol=1e-3)
  mine = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  theirs = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  at16 = {json.dumps(m, sort_keys=True): e for m, e in zip(theirs[2]["members"],
                                                           theirs[2]["train_error"])}
  assert [at16[json.dumps(m, sort_keys=True)] for m in mine[2]["members"]] == \
      mine[2]["train_error"]


def test_a_finished_twin_resumes_from_its_own_checkpoint(parent, forked, curves):
  (workdir, _), (tmp_path, first) = parent, forked
  again = train.train_and_evaluate(control(), workdir=str(tmp_path), data=curves,
                                   start_from=branch.path(workdir, K))
  np.testing.assert_array_equal(again[ERRORS[:2]].to_numpy(), first[ERRORS[:2]].to_numpy())


@pytest.mark.parametrize("change, field", [
    (dict(batch_size=10), "batch_size"),
    (dict(momentum_period=3), "momentum_period"),
    (dict(steps=30), "steps"),
    (dict(final_steps=7), "final phase at update 17"),
])
def test_a_run_of_another_config_is_refused_naming_the_field(parent, curves, change, field):
  workdir, _ = parent
  with pytest.raises(ValueError, match=field):
    train.train_and_evaluate(control(**change), data=curves, start_from=branch.path(workdir, K))


def test_a_member_not_in_the_branch_is_refused(parent, curves):
  workdir, _ = parent
  config = control()
  config.sweep.learning_rate = [0.02]
  with pytest.raises(ValueError, match="not in the branch"):
    train.train_and_evaluate(config, data=curves, start_from=branch.path(workdir, K))


def test_other_data_are_refused(parent, curves):
  workdir, _ = parent
  other = type(curves)(curves.train[::-1].copy(), curves.test)  # the same cases, another order
  with pytest.raises(ValueError, match="other data"):
    train.train_and_evaluate(control(), data=other, start_from=branch.path(workdir, K))


def test_another_problem_is_refused(parent):
  workdir, _ = parent
  with pytest.raises(ValueError, match="another config"):
    train.train_and_evaluate(rnn_config(), start_from=branch.path(workdir, K))


def test_branch_at_needs_a_workdir_and_a_step_inside_the_run(curves, tmp_path):
  with pytest.raises(ValueError, match="branch_at"):
    train.train_and_evaluate(ae_config(), data=curves, branch_at=(K,))
  with pytest.raises(ValueError, match="branch_at"):
    train.train_and_evaluate(ae_config(), workdir=str(tmp_path), data=curves, branch_at=(24,))


def test_branching_changes_neither_the_parents_numbers_nor_its_log(parent, curves, tmp_path):
  workdir, frame = parent
  plain = train.train_and_evaluate(ae_config(**PARENT), workdir=str(tmp_path), data=curves)
  np.testing.assert_array_equal(plain[ERRORS].to_numpy(), frame[ERRORS].to_numpy())
  read = lambda d: [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
  for a, b in zip(read(workdir), read(tmp_path), strict=True):
    assert a["step"] == b["step"]
    # (the split chunk's two parts: an update-weighted mean of two means)
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-6)


def test_the_reproduction_branches_one_update_before_the_earlier_final_phase():
  from configs import reproduce
  from experiments import autoencoders
  for size, want in (("quick", {"table2_control": 999}),  # 1,200 updates, final phase 200
                     ("paper", {"table2_control": 748_999, "table2_early": 699_999})):
    section = reproduce.plan(size)["autoencoders"]
    config = reproduce.autoencoder_config(section, "curves", None, False)
    assert autoencoders._branch_points(section, config) == want  # pylint: disable=protected-access


def test_place_names_the_leaf_that_differs(curves):
  import jax  # pylint: disable=import-outside-toplevel
  config = ae_config()
  engine = train.Engine(config, train.make_problem(config, curves), train.population(config))
  one = jax.tree.leaves(engine._one)  # pylint: disable=protected-access
  shapes = [(engine.plan.padded,) + x.shape[1:] for x in one]
  dtypes = [x.dtype for x in one]
  good = [np.zeros(s, d) for s, d in zip(shapes, dtypes)]
  placed = engine.place(good)
  assert [x.shape for x in jax.tree.leaves(placed)] == shapes
  bad = list(good)
  bad[0] = np.zeros(shapes[0][:1] + (3,), dtypes[0])
  with pytest.raises(ValueError, match=r"state leaf .*params"):
    engine.place(bad)
  with pytest.raises(ValueError, match="state leaves"):
    engine.place(good[:-1])
