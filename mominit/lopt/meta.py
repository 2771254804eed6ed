"""First-order truncated meta-training of RNNprop and DMoptimizer (Lv et al.'s protocol).

One optimizee run is `horizon` inner steps cut into truncations of `unroll` steps. A truncation
is a `lax.scan` whose body (one inner step, `jax.checkpoint`-ed so the backward pass recomputes
it instead of storing every step's activations) takes the optimizee gradient with
`stop_gradient` (first order) and applies the learned optimizer. The meta-loss of a truncation
is, by default, the optimizee loss at its last step (RNNprop) or the mean of its losses
(DMoptimizer). One meta-update (Adam, 1e-4) per truncation; the run's state (x, the optimizer's
moments and LSTM state, t) is carried to the next truncation without gradient. `tasks`
optimizee runs are vmapped per meta-step (1 = the authors' protocol) and their meta-losses
averaged. A meta-step whose meta-gradient is not finite is skipped (theta and the Adam state are
kept), counted, and ends that optimizee run.

`train(...)` runs epochs of `runs_per_epoch` optimizee runs; after each epoch it evaluates
theta on the base task (no tricks) against Adam 2^-5 from the same starts on the same batches,
keeps the best theta (model selection), appends a line to `metrics.jsonl` and saves an orbax
checkpoint, from which a rerun resumes (every key is a function of the seed, epoch and run,
so a resumed training equals an uninterrupted one).
"""
import json
import pathlib
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mominit.lopt import evaluate, networks, transforms
from mominit.lopt.problems import Problem


class Run(NamedTuple):
  """One optimizee run in progress: params, the run's consts, optimizer state, step, key."""
  params: Any
  consts: Any
  opt_state: Any
  step: jax.Array
  key: jax.Array


def learned(kind: str, theta, **hyper) -> optax.GradientTransformation:
  """The learned optimizer `kind` ("rnnprop", "dm_lv2017", "dm_deepmind") with meta-params theta."""
  if kind == "rnnprop":
    return transforms.rnnprop(theta, **hyper)
  if kind.startswith("dm_"):
    return transforms.dm_lstm(theta, kind[3:], **hyper)
  raise ValueError(f"learned optimizer must be rnnprop, dm_lv2017 or dm_deepmind, got {kind!r}")


def init_theta(kind: str, key) -> dict:
  """Fresh meta-parameters for `kind`."""
  return networks.init_rnnprop(key) if kind == "rnnprop" else networks.init_dm_lstm(key)


def default_meta_loss(kind: str) -> str:
  """"last" for RNNprop; DMoptimizer: "mean" (Lv et al.) or "sum" (DeepMind)."""
  return "last" if kind == "rnnprop" else transforms.DM_VARIANTS[kind[3:]]["meta_loss"]


def default_meta_learning_rate(kind: str) -> float:
  """1e-4 (Lv et al., also for their DMoptimizer); DeepMind's code: 1e-3."""
  return 1e-4 if kind in ("rnnprop", "dm_lv2017") else 1e-3


def init_run(problem: Problem, kind: str, theta, key) -> Run:
  """Starts an optimizee run: x_0 and consts from fold_in(key, 0) (as `evaluate` does)."""
  params, consts = problem.init(jax.random.fold_in(key, 0))
  return Run(params, consts, learned(kind, theta).init(params), jnp.zeros([], jnp.int32), key)


def truncation_loss(theta, run: Run, data, problem: Problem, kind: str, unroll: int,
                    meta_loss: str = "last"):
  """Meta-loss of `unroll` inner steps from `run`, differentiable in theta.

  Returns:
    (meta_loss scalar, (next Run, losses [unroll] before each update, final loss)), where the
    final loss is f(x_{t+unroll}) on the batch of step t + unroll. meta_loss "last": the final
    loss; "mean"/"sum": of the losses after each update (losses[1:] and the final loss).
  """
  tx = learned(kind, theta)

  def body(carry, _):
    params, opt_state, step = carry
    batch = problem.sample(data, jax.random.fold_in(run.key, step))
    loss, grads = jax.value_and_grad(problem.loss)(params, run.consts, batch)
    updates, opt_state = tx.update(jax.lax.stop_gradient(grads), opt_state, params)
    return (optax.apply_updates(params, updates), opt_state, step + 1), loss

  (params, opt_state, step), losses = jax.lax.scan(
      jax.checkpoint(body), (run.params, run.opt_state, run.step), None, length=unroll)
  final = problem.loss(params, run.consts, problem.sample(data, jax.random.fold_in(run.key, step)))
  after = jnp.concatenate([losses[1:], final[None]])
  value = {"last": final, "mean": jnp.mean(after), "sum": jnp.sum(after)}[meta_loss]
  nxt = jax.lax.stop_gradient(Run(params, run.consts, opt_state, step, run.key))
  return value, (nxt, losses, final)


def make_meta_step(problem: Problem, kind: str, unroll: int, meta_loss: str,
                   meta_opt: optax.GradientTransformation) -> Callable:
  """A jitted meta-step `(theta, opt_state, runs, data) -> (theta, opt_state, runs, info)`.

  `runs` is a `Run` with a leading task axis [K]; their meta-losses are averaged. info holds
  `meta_loss`, `final` [K], `finite` (False: the update was skipped).
  """
  def mean_loss(theta, runs, data):
    values, aux = jax.vmap(truncation_loss, in_axes=(None, 0, None, None, None, None, None))(
        theta, runs, data, problem, kind, unroll, meta_loss)
    return jnp.mean(values), aux

  @jax.jit
  def step(theta, opt_state, runs, data):
    (value, (runs, _, final)), grads = jax.value_and_grad(mean_loss, has_aux=True)(
        theta, runs, data)
    finite = jnp.isfinite(value) & jnp.all(jnp.array(
        [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    grads = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
    updates, new_opt = meta_opt.update(grads, opt_state, theta)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    return (keep(optax.apply_updates(theta, updates), theta), keep(new_opt, opt_state), runs,
            {"meta_loss": value, "final": final, "finite": finite})

  return step


# ---------------------------------------------------------------------------------------------
# Checkpoints.


def _manager(workdir):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() / "checkpoints", options=options)


def _save(manager, epoch, tree):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  manager.save(epoch, args=ocp.args.StandardSave(tree))
  manager.wait_until_finished()


def _restore(manager, epoch, like):
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.asarray(x).dtype),
                          like)
  return manager.restore(epoch, args=ocp.args.StandardRestore(abstract))


def _read_metrics(path: pathlib.Path, below: int) -> list:
  if not path.exists():
    return []
  lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
  return [l for l in lines if l["epoch"] < below]


# ---------------------------------------------------------------------------------------------
# Training.


def train(train_problem: Problem, eval_problem: Problem, kind: str, workdir, *, seed: int = 0,
          epochs: int = 10, runs_per_epoch: int = 100, horizon: int = 100, unroll: int = 20,
          tasks: int = 1, meta_learning_rate: float | None = None, meta_loss: str | None = None,
          eval_seeds: int = 10, eval_steps: int = 100, eval_adam_rate: float = 2.0**-5,
          progress: bool = True, log=None) -> dict:
  """Meta-trains `kind` on `train_problem`, selecting theta per epoch on `eval_problem`.

  Args:
    train_problem: the meta-training optimizee (with the tricks applied, if any).
    eval_problem: the base task for model selection (no tricks).
    kind: "rnnprop", "dm_lv2017" or "dm_deepmind".
    workdir: folder for `metrics.jsonl` and `checkpoints/` (resumes from them).
    seed: the training's seed (theta init, runs); model selection uses keys 10_000 + i.
    epochs, runs_per_epoch: epochs of optimizee runs (the authors: 100 runs per epoch).
    horizon, unroll: inner steps per run and per truncation (100 and 20).
    tasks: optimizee runs vmapped per meta-step (1 = the authors' protocol).
    meta_learning_rate, meta_loss: None = the kind's defaults.
    eval_seeds, eval_steps, eval_adam_rate: model selection: mean final loss over these runs,
      reported next to Adam at this rate from the same starts on the same batches.
    progress: tqdm bar over meta-steps.
    log: optional callable for one line per epoch.

  Returns:
    {"theta": best theta, "last_theta", "history": [per-epoch dicts], "skipped": count,
    "adam_eval": Adam's mean eval loss, "best_epoch", "seconds"}.
  """
  if horizon % unroll:
    raise ValueError(f"horizon ({horizon}) must be a multiple of unroll ({unroll})")
  meta_loss = meta_loss or default_meta_loss(kind)
  lr = default_meta_learning_rate(kind) if meta_learning_rate is None else meta_learning_rate
  meta_opt = optax.adam(lr)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  base_key = jax.random.PRNGKey(seed)
  theta = init_theta(kind, jax.random.fold_in(base_key, 0))
  state = {"theta": theta, "opt": meta_opt.init(theta), "best": theta,
           "best_eval": jnp.asarray(np.inf, jnp.float32), "epoch": jnp.zeros([], jnp.int32),
           "skipped": jnp.zeros([], jnp.int32)}
  manager = _manager(workdir)
  if manager.latest_step() is not None:
    state = _restore(manager, manager.latest_step(), state)
  start = int(state["epoch"])
  history = _read_metrics(workdir / "metrics.jsonl", start)
  step_fn = make_meta_step(train_problem, kind, unroll, meta_loss, meta_opt)
  start_runs = jax.jit(jax.vmap(lambda th, k: init_run(train_problem, kind, th, k),
                                in_axes=(None, 0)))
  eval_keys = jnp.stack([jax.random.PRNGKey(10_000 + i) for i in range(eval_seeds)])
  evaluator = evaluate.make_final_loss(eval_problem, eval_steps)
  adam_eval = float(np.mean(evaluator("adam", jnp.asarray(eval_adam_rate), eval_keys,
                                      eval_problem.data)))
  bar = None
  if progress:
    from tqdm import auto as tqdm  # pylint: disable=import-outside-toplevel
    bar = tqdm.tqdm(total=epochs * runs_per_epoch * (horizon // unroll),
                    initial=start * runs_per_epoch * (horizon // unroll), desc=f"meta {kind}")
  t0 = time.perf_counter()
  for epoch in range(start, epochs):
    losses, skipped = [], 0
    for r in range(runs_per_epoch):
      keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(base_key, 1 + epoch), r),
                              tasks)
      runs = start_runs(state["theta"], keys)
      for _ in range(horizon // unroll):
        state["theta"], state["opt"], runs, info = step_fn(state["theta"], state["opt"], runs,
                                                           train_problem.data)
        if bar is not None:
          bar.update(1)
        if not bool(info["finite"]):
          skipped += 1
          break
        losses.append(float(info["meta_loss"]))
    eval_loss = float(np.mean(evaluator(kind, state["theta"], eval_keys, eval_problem.data)))
    if np.isfinite(eval_loss) and eval_loss < float(state["best_eval"]):
      state["best"], state["best_eval"] = state["theta"], jnp.asarray(eval_loss, jnp.float32)
    state["epoch"] = jnp.asarray(epoch + 1, jnp.int32)
    state["skipped"] = state["skipped"] + skipped
    row = {"epoch": epoch, "meta_loss": float(np.mean(losses)) if losses else float("nan"),
           "eval_loss": eval_loss, "adam_eval": adam_eval, "best_eval": float(state["best_eval"]),
           "skipped": skipped, "seconds": time.perf_counter() - t0}
    history.append(row)
    _save(manager, epoch + 1, state)
    with open(workdir / "metrics.jsonl", "w") as f:
      f.write("".join(json.dumps(h) + "\n" for h in history))
    if log is not None:
      log(f"{kind} epoch {epoch}: meta-loss {row['meta_loss']:.4f}, eval {eval_loss:.4f} "
          f"(Adam 2^-5: {adam_eval:.4f}), skipped {skipped}")
  if bar is not None:
    bar.close()
  best_epoch = min((h for h in history if np.isfinite(h["eval_loss"])),
                   key=lambda h: h["eval_loss"], default={"epoch": None})["epoch"]
  return {"theta": state["best"], "last_theta": state["theta"], "history": history,
          "skipped": int(state["skipped"]), "adam_eval": adam_eval, "best_epoch": best_epoch,
          "seconds": time.perf_counter() - t0}


__all__ = ["Run", "learned", "init_theta", "init_run", "truncation_loss", "make_meta_step",
           "train", "default_meta_loss", "default_meta_learning_rate"]
