# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour of mominit
#
# This file runs as a script (`python docs/tour.py`, about 2 minutes on a 2-core CPU) and opens
# as a notebook (`jupytext --to notebook docs/tour.py`, or open it in JupyterLab with the
# jupytext extension). It
#
# 1. steps NAG by hand on a small quadratic and reads the paper's iterate `theta`,
# 2. builds a small sweep (2 rules x 2 momentum caps x 2 seeds on generated CURVES images),
# 3. trains it as one compiled population with `mominit.train.train_and_evaluate`,
# 4. plots the final errors and the learning curves from DataFrames.
#
# `MOMINIT_TOUR_SIZE=tiny` shrinks everything to seconds (the test suite runs it so);
# `MOMINIT_TOUR_WORKDIR` says where the run's files go (default `runs/tour`).
#
# To scale up, raise `config.steps` (the paper: 750,000 updates), `NUM_TRAIN` (20,000 cases)
# and the sweep axes; `docs/reproduce.md` gives the paper's grids.

# %%
import os
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pandas as pd

import mominit
from mominit import train
from mominit.data import curves

TINY = os.environ.get("MOMINIT_TOUR_SIZE", "small") == "tiny"
WORKDIR = pathlib.Path(os.environ.get("MOMINIT_TOUR_WORKDIR", "runs/tour"))
WORKDIR.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. NAG by hand, and `theta`
#
# `mominit.nag` is an optax transform. It stores the look-ahead point
# phi_t = theta_t + mu_t v_t as the parameters (so the gradient is taken where NAG takes it);
# `mominit.theta(params, state)` gives back the paper's iterate theta_t. On f(x) = x^2 / 2
# (x in R^2, curvatures 1 and 10) both approach 0; phi runs ahead of theta by mu_t v_t.

# %%
curvature = jnp.array([1.0, 10.0])
loss = lambda p: 0.5 * jnp.sum(curvature * p["x"] ** 2)
tx = mominit.nag(learning_rate=0.05, momentum=0.9)
params = {"x": jnp.array([1.0, 1.0])}
state = tx.init(params)
path_phi, path_theta = [np.asarray(params["x"])], [np.asarray(params["x"])]
for _ in range(60):
  updates, state = tx.update(jax.grad(loss)(params), state, params)
  params = optax.apply_updates(params, updates)
  path_phi.append(np.asarray(params["x"]))
  path_theta.append(np.asarray(mominit.theta(params, state)["x"]))
path_phi, path_theta = np.array(path_phi), np.array(path_theta)
print("after 60 NAG updates: stored phi =", path_phi[-1], " theta =", path_theta[-1])

fig, ax = plt.subplots(figsize=(4.5, 3.2))
ax.plot(path_theta[:, 0], path_theta[:, 1], "o-", ms=2, label="theta (the paper's iterate)")
ax.plot(path_phi[:, 0], path_phi[:, 1], "x--", ms=2, label="phi (stored look-ahead)")
ax.set_xlabel("x[0] (curvature 1)")
ax.set_ylabel("x[1] (curvature 10)")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(WORKDIR / "tour_theta.png", dpi=100)

# %% [markdown]
# ## 2. A small sweep
#
# A config is an `ml_collections.ConfigDict` (`configs/autoencoder.py` starts from the paper's
# protocol). The sweep axes multiply: here 2 seeds x 2 rules x 2 mu_max values, of which the
# two mu_max = 0 pairs are the same SGD run (reported once as rule "sgd"), 6 members in all.
# `data=` trains on our own small generated CURVES set instead of the full 20,000 images.

# %%
from configs import autoencoder  # pylint: disable=wrong-import-position

NUM_TRAIN, NUM_TEST = (200, 100) if TINY else (2000, 500)
data = curves.generate(NUM_TRAIN, NUM_TEST)
config = autoencoder.get_config("curves")
config.steps = 40 if TINY else 1000
config.final_steps = 10 if TINY else 200     # the final low-momentum phase (mu = 0.9)
config.momentum_period = 2 if TINY else 10    # mu reaches mu_max within the run
config.eval_every = 10 if TINY else 100
config.chunk = config.eval_every
config.batch_size = 100
config.progress = False
config.sweep.seed = (0, 1)
config.sweep.rule = ("nag", "cm")
config.sweep.mu_max = (0.0, 0.99)
config.sweep.learning_rate = (0.01,)
print(len(train.population(config)), "members")

# %% [markdown]
# ## 3. Train it
#
# One call trains every member as one compiled population; the result is a DataFrame, one row
# per member. The workdir holds `metrics.jsonl` (every evaluation), `results.csv` and
# checkpoints: running this cell again resumes (here: finds the run finished).

# %%
results = train.train_and_evaluate(config, workdir=str(WORKDIR / "sweep"), data=data)
results[["seed", "rule", "mu_max", "learning_rate", "train_error", "test_error",
         "error_before_final", "diverged"]]

# %% [markdown]
# ## 4. Plot from the DataFrames
#
# Final errors by (rule, mu_max), mean over seeds; and the learning curves, read from
# `metrics.jsonl` into a long DataFrame (one row per evaluation and member).

# %%
summary = results.groupby(["rule", "mu_max"])["train_error"].agg(["mean", "std"])
print(summary)

records = train.read_metrics(WORKDIR / "sweep")
curves_df = pd.DataFrame([{"step": r["step"], **m, "train_error": r["train_error"][i]}
                          for r in records for i, m in enumerate(r["members"])])
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for (rule, mu), group in curves_df.groupby(["rule", "mu_max"]):
  mean = group.groupby("step")["train_error"].mean()
  mean = mean[mean.index > 0]  # the error at update 0 would squash the axis
  ax.plot(mean.index, mean.to_numpy(), label=f"{rule.upper()} mu_max={mu:g}")
ax.axvspan(config.steps - config.final_steps, config.steps, color="0.9", zorder=0)
ax.text(config.steps - config.final_steps, ax.get_ylim()[1], " final phase", va="top",
        fontsize=7)
ax.set_xlabel("update")
ax.set_ylabel("training squared error")
ax.legend(fontsize=7, loc="center right")
fig.tight_layout()
fig.savefig(WORKDIR / "tour_curves.png", dpi=100)
print("figures:", WORKDIR / "tour_theta.png", WORKDIR / "tour_curves.png")
