"""Learned optimizers of Lv, Jiang & Li (ICML 2017): RNNprop and DMoptimizer, meta-trained in JAX.

- `networks`: the coordinatewise networks (meta-parameters theta, init, forward).
- `transforms`: `rnnprop(theta, ...)` and `dm_lstm(theta, variant)`, optax transforms.
- `problems`: optimizees as pure JAX problems, and the random-scaling / convex-combination tricks.
- `meta`: first-order truncated meta-training (lax.scan + jax.checkpoint), with checkpoints.
- `evaluate`: the paired study of learned and tuned hand-designed optimizers.

See /work/shared/LEARNED_OPTIMIZER.md (the method as the authors' code defines it) and
docs/learned_optimizer.md.
"""
from mominit.lopt.networks import init_dm_lstm, init_rnnprop
from mominit.lopt.transforms import DM_VARIANTS, dm_lstm, rnnprop

__all__ = ["rnnprop", "dm_lstm", "init_rnnprop", "init_dm_lstm", "DM_VARIANTS"]
