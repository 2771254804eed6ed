"""The learned optimizer of Lv, Jiang & Li (2017): `--config configs/lopt.py:quick`.

Presets:
  tiny    CI smoke test (seconds of compute): RNNprop only, 20-step runs, one Adam rate.
  quick   about 10 minutes on 2 CPU cores: the 7x7-pooled MNIST MLP (49-20-10, 1,210
          parameters), RNNprop and DMoptimizer (Lv) meta-trained for 3 epochs of 60 runs, a
          paired study at 100 and 2,000 steps against all seven tuned baselines, and the Adam
          calibration on the authors' 784-20-10 MLP.
  medium  a longer CPU run (an hour or more): 20 epochs, horizons up to 10,000, more problems.
  paper   the authors' protocol (GPU-scale): the 784-20-10 MLP, 100 runs per epoch, the whole
          test list, the trick ablation.
Every field can be overridden: --config.meta.epochs=5.
"""
import ml_collections

from mominit.lopt import evaluate

# log2 learning-rate ranges of the sqrt(2)-spaced grids (each family's whole sensible range;
# the 49-input pooled MLP wants larger rates than the 784-input one: a first quick run had
# RMSProp, CM and NAG at the top edges of (-12, -4) and (-7, 0)).
GRIDS = {"adam": (-10.0, 0.0), "rmsprop": (-12.0, -1.0), "sgd": (-4.0, 5.0), "cm": (-7.0, 3.0),
         "nag": (-7.0, 3.0), "cm_schedule": (-7.0, 3.0), "nag_schedule": (-7.0, 3.0)}


def get_config(arg: str = "quick"):
  if arg not in ("tiny", "quick", "medium", "paper"):
    raise ValueError(f"preset must be tiny, quick, medium or paper, got {arg!r}")
  c = ml_collections.ConfigDict()
  c.preset = arg
  c.seed = 0
  c.progress = True
  c.problem = "mlp_pooled"   # the meta-training and model-selection task
  c.batch_size = 128
  # Learned optimizers to meta-train: rnnprop, dm_lv2017, dm_deepmind; a "_notricks" suffix
  # trains without the random-scaling and convex-combination tricks (the ablation).
  c.learned = ("rnnprop", "dm_lv2017")
  c.scaling_r = 3.0          # random scaling range of the optimizee (0 = off)
  c.combination_dim = 20     # convex-combination coordinates (0 = off)
  c.combination_r = 1.0
  c.meta = ml_collections.ConfigDict({
      "epochs": 3, "runs_per_epoch": 60, "horizon": 100, "unroll": 20, "tasks": 1,
      "meta_learning_rate": 0.0,  # 0 = the optimizer's default (1e-4; DeepMind's DM 1e-3)
      "eval_seeds": 8})
  c.eval = ml_collections.ConfigDict({
      "problems": ("mlp_pooled",), "horizons": (100, 2000), "seeds": 8,
      "families": evaluate.HAND_DESIGNED, "grids": dict(GRIDS)})
  # Tuned Adam on the authors' base MLP (784-20-10) against their best rates; () = skip.
  c.calibration = ml_collections.ConfigDict({
      "problem": "mlp", "horizons": (100, 2000), "seeds": 8, "grid": (-9.0, -3.0)})
  if arg == "tiny":
    c.learned = ("rnnprop",)
    c.meta.update(epochs=1, runs_per_epoch=2, horizon=20, unroll=10, eval_seeds=2)
    # One Adam rate, 2 seeds, 20 steps: the shapes of model selection, so the study reuses
    # its compiled programs (compilation dominates a smoke run).
    c.eval.update(horizons=(20,), seeds=2, families=("adam",), grids={"adam": (-5.0, -5.0)})
    c.calibration.horizons = ()
  elif arg == "medium":
    c.meta.update(epochs=20, runs_per_epoch=100, eval_seeds=10)
    c.eval.update(problems=("mlp_pooled", "sine_lstm1", "quadratic"),
                  horizons=(100, 2000, 10000), seeds=10)
    c.calibration.update(horizons=(100, 2000), seeds=10)
  elif arg == "paper":
    c.problem = "mlp"
    c.learned = ("rnnprop", "dm_lv2017", "rnnprop_notricks")
    c.meta.update(epochs=300, runs_per_epoch=100, eval_seeds=100)
    c.eval.update(problems=("mlp", "mlp_relu", "mlp_elu", "mlp_tanh", "mlp_3layers",
                            "mlp_6layers", "mlp_10layers", "mnist_cnn", "sine_lstm1",
                            "sine_lstm1_lownoise", "sine_lstm2"),
                  horizons=(100, 2000, 10000), seeds=100)
    c.calibration.update(horizons=(100, 2000, 10000), seeds=100)
  return c
