"""The pure core of the engine: one member's init, update, evaluation, and the chunk loop.

Read this file first. Everything here is written for ONE member and knows nothing of devices;
``mominit.engine`` vmaps (or maps) it over a population and places it (``mominit.placement``),
in the style of PureJaxRL's ``make_train``:

    member = make_member(problem, family)
    state = member.init(hp, data)                    # hp: this member's hyper-parameters
    state, loss_bad, params_bad = member.step(state, hp, data, t)
    errors = member.evaluate(state, hp, data)

Randomness: one key per member, ``PRNGKey(hp["seed"])``, split by ``fold_in`` into an init, a data
and an evaluation key; the problem folds the update count into the data key for each minibatch.

A member whose loss or parameters stop being finite is frozen at its last state with finite
parameters and flagged with the update count (``alive``, ``diverged_at``); see :func:`chunk_loop`.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

NEVER = np.iinfo(np.int32).max  # `stop_at` of a member that is not stopped


class MemberState(NamedTuple):
  """Training state of one member (a leading population axis is added by vmap).

  Attributes:
    params: model parameters (for NAG the look-ahead point phi_t).
    opt_state: the optimizer's state.
    data_state: the problem's data state (an autoencoder's int32 [N] epoch permutation; ``()``
      for RNNs).
    alive: bool scalar, False once the member diverged.
    diverged_at: int32 scalar, the update count at which it diverged (-1 if it did not).
    loss: float scalar (the default float dtype, like the parameters), the training loss of the
      last update it took; after ``init``, the loss at the initial parameters on the first
      minibatch (the starting value of the "blown up" test, ``mominit.outcomes``).
  """
  params: Any
  opt_state: Any
  data_state: Any
  alive: jax.Array
  diverged_at: jax.Array
  loss: jax.Array


class Member(NamedTuple):
  """The functions of one member (see :func:`make_member`)."""
  init: Callable
  step: Callable
  evaluate: Callable
  eval_params: Callable


def keys(hp) -> dict:
  """The member's init, data and evaluation keys, from ``hp["seed"]``."""
  key = jax.random.PRNGKey(hp["seed"])
  return {"init": jax.random.fold_in(key, 0), "data": jax.random.fold_in(key, 1),
          "eval": jax.random.fold_in(key, 2)}


def all_finite(tree) -> jax.Array:
  """True when every entry of every leaf is finite.

  Written as a sum of ``x * 0`` (0 for finite x, NaN for inf or NaN) so that XLA fuses each leaf
  into one reduction pass, instead of materialising an ``isfinite`` mask and reducing it.
  """
  return jnp.isfinite(sum(jnp.sum(x * jnp.zeros((), x.dtype)) for x in jax.tree.leaves(tree)))


def make_member(problem, family, place: Callable = lambda batch: batch) -> Member:
  """One member's functions for ``problem`` (a ``mominit.problems.Problem``) trained with
  ``family`` (a ``mominit.optimizers.Family``).

  Args:
    problem: the problem.
    family: the optimizer family; ``family.make(hp)`` is the member's optax transform.
    place: applied to every minibatch (the placement's batch constraint; identity by default).

  Returns:
    A :class:`Member` with
    ``init(hp, data) -> MemberState``,
    ``step(state, hp, data, t, stop_at=NEVER) -> (state, loss_bad, params_bad)``,
    ``evaluate(state, hp, data) -> dict of scalar errors`` at ``family.eval_params``, and
    ``eval_params(state) -> params``.
  """

  def init(hp, data):
    k = keys(hp)
    params = problem.init_params(k["init"], hp, data)
    data_state = problem.init_data(k["data"], hp, data)
    # The loss slot has the dtype of the loss the problem computes (float64 under x64).
    # (Unplaced: init runs on one device, outside the placement's mesh.)
    loss = problem.loss(params, problem.batch(data_state, k["data"], 0, data)[0])
    return MemberState(params=params, opt_state=family.make(hp).init(params),
                       data_state=data_state, alive=jnp.array(True),
                       diverged_at=jnp.array(-1, jnp.int32), loss=loss)

  def step(state, hp, data, t, stop_at=NEVER):
    """One update. The member is updated when it is alive and ``t < stop_at``; at
    ``t == stop_at`` it is frozen and flagged as diverged at ``t`` (the engine's rerun).

    Returns:
      The new state, whether this update's loss is not finite, and whether the parameters the
      update started from are not finite (that is, whether the previous update went bad: a
      non-finite parameter stays non-finite under ``params + updates``, so checking each update's
      input, which is already in memory, finds the first bad update without a pass over the
      freshly written parameters).
    """
    batch, data_state = problem.batch(state.data_state, keys(hp)["data"], t, data)
    params_bad = ~all_finite(state.params)
    loss, grads = jax.value_and_grad(problem.loss)(state.params, place(batch))
    updates, opt_state = family.make(hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    active = state.alive & (t < stop_at)
    stopped = state.alive & (t == stop_at)
    kept = state._replace(alive=state.alive & ~stopped,
                          diverged_at=jnp.where(stopped, t, state.diverged_at))
    new = MemberState(params, opt_state, data_state, state.alive, state.diverged_at, loss)
    # `active` is known before the update, so this select fuses into the update itself.
    new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, kept)
    return new, active & ~jnp.isfinite(loss), params_bad

  def eval_params(state):
    return family.eval_params(state.params, state.opt_state)

  def evaluate(state, hp, data):
    return problem.evaluate(eval_params(state), keys(hp)["eval"], data, place)

  return Member(init, step, evaluate, eval_params)


def chunk_loop(step_all, finite, state, hp, stop_at, data, start, num_steps):
  """``num_steps`` updates of ``step_all`` from update count ``start``, as one ``fori_loop``.

  Args:
    step_all: ``(state, hp, data, t, stop_at) -> (state, loss_bad, params_bad)`` for a batch of
      members (leading axis P) or for one member (no axis).
    finite: ``all_finite`` for the same batching (``jax.vmap(all_finite)`` for a batch).
    state, hp, stop_at: the members' state, hyper-parameters and int32 stop counts.
    data: the problem's arrays.
    start, num_steps: int32 scalars (traced: one compilation serves every chunk).

  Returns:
    The state, the mean loss over the chunk, and each member's first bad update count in the
    chunk (-1 if none): the first update whose loss or whose new parameters are not finite.
  """

  def record(first_bad, bad, t):
    return jnp.where(bad & (first_bad < 0), t, first_bad)

  def body(i, carry):
    state, total, first_bad, was_active = carry
    t = start + i
    active = state.alive & (t < stop_at)
    state, loss_bad, params_bad = step_all(state, hp, data, t, stop_at)
    # The parameters this update started from were written by update t - 1.
    first_bad = record(first_bad, was_active & params_bad, t - 1)
    first_bad = record(first_bad, loss_bad, t)
    return state, total + state.loss, first_bad, active

  zero = jnp.zeros(state.alive.shape, state.loss.dtype)
  none = jnp.full(state.alive.shape, -1, jnp.int32)
  idle = jnp.zeros(state.alive.shape, bool)
  state, total, first_bad, was_active = jax.lax.fori_loop(
      0, num_steps, body, (state, zero, none, idle))
  first_bad = record(first_bad, was_active & ~finite(state.params), start + num_steps - 1)
  return state, total / jnp.maximum(num_steps, 1), first_bad


def member_bytes(state: MemberState) -> int:
  """Bytes of one member's training state (parameters, optimizer and data state) in a
  population's state (leading axis P)."""
  leaves = jax.tree.leaves((state.params, state.opt_state, state.data_state))
  return sum(int(np.prod(x.shape[1:])) * x.dtype.itemsize for x in leaves)
