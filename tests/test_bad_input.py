"""Bad input at every entry point a user touches, outside the engine's config (whose cases are in
tests/test_train.py): each case must raise a clear error naming the field and its valid range,
before anything compiles.

Every case is one row of ``CASES``: (entry point, what is wrong, a call, the exception, a regex
the message must match). The regexes name the field and the range, so a message that only says
"invalid" fails. "Before any compilation" is checked with jax's compile events: a case that
reaches XLA fails even when it then raises the right error.
"""
import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mominit import data
from mominit import diagnostics
from mominit import hf
from mominit import models
from mominit import tasks

# Lowering to XLA (every compilation, also one the persistent cache then serves) and XLA's own.
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


@contextlib.contextmanager
def count_compilations():
  """Counts compilations inside the block (``counter[0]``): lowerings to XLA and XLA
  compilations, so one served by tests/conftest.py's persistent cache counts too."""
  counter = [0]

  def listener(event, duration, **kwargs):
    del duration, kwargs
    if event in _COMPILE_EVENTS:
      counter[0] += 1

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counter
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def cli(module_name, *argv):
  """A call of ``experiments.<module_name>.main(argv)`` that turns argparse's exit into a
  ValueError carrying what it printed on stderr."""

  def call():
    import importlib  # pylint: disable=import-outside-toplevel
    module = importlib.import_module(f"experiments.{module_name}")
    err = io.StringIO()
    try:
      with contextlib.redirect_stderr(err):
        module.main(list(argv))
    except SystemExit as e:
      raise ValueError(f"exit status {e.code}: {err.getvalue()}") from None
  return call


def _sample(name, batch_size, **kwargs):
  return lambda: tasks.make(name, **kwargs).sample(_KEY, batch_size)


def _hf(**kwargs):
  return lambda: hf.hessian_free(lambda p, x: x @ p, kwargs.pop("loss", "squared_error"),
                                 **kwargs)


def _hf_step(batch):
  def call():
    opt = hf.hessian_free(lambda p, x: x @ p, "squared_error", max_cg_iters=2)
    params = np.zeros((3, 2), np.float32)
    # The state `opt.init` makes, built in NumPy so that only `step` is under test.
    state = hf.HFState(count=np.int32(0), prev_update=np.zeros_like(params),
                       damping=np.float32(45.0))
    opt.step(state, params, batch, batch)
  return call


def _stats(batch_width=784, **kwargs):
  def call():
    model = models.autoencoder_from_sizes((784, 20, 6))
    params = jax.eval_shape(model.init, _KEY, np.zeros((1, 784), np.float32))
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), params)
    loss = kwargs.pop("loss_fn", lambda out, x: jnp.mean((out - x) ** 2))
    diagnostics.layer_stats(model, params, np.zeros((4, batch_width), np.float32), loss,
                            **kwargs)
  return call


# A raw threefry key: jax.random.PRNGKey(0) itself would compile inside a case.
_KEY = np.zeros(2, np.uint32)
_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(4, 3)).astype(np.float32)

CASES = [
    # mominit.data.load
    ("data.load", "unknown name", lambda: data.load("cifar"), ValueError,
     r"unknown data set 'cifar'; valid names: curves, mnist, faces"),
    ("data.load", "missing files", lambda: data.load("mnist", "/"), FileNotFoundError,
     r"train-images.*not found in /"),
    ("data.load", "data_dir not a folder", lambda: data.load("curves", "/no/such/folder"),
     FileNotFoundError, r"data_dir '/no/such/folder' is not an existing folder"),
    # mominit.tasks.make and a task's sample
    ("tasks.make", "unknown name", lambda: tasks.make("nope"), ValueError,
     r"unknown task 'nope'; valid names: addition"),
    ("tasks.make", "T = 0", lambda: tasks.make("addition", T=0), ValueError,
     r"T must be an integer >= \d+, got 0"),
    ("tasks.make", "T not an int", lambda: tasks.make("addition", T=2.5), ValueError,
     r"T must be an integer >= \d+, got 2.5"),
    ("tasks.make", "unknown argument", lambda: tasks.make("addition", length=3), ValueError,
     r"bad arguments for task 'addition'.*length"),
    ("tasks.make", "num_symbols 4", lambda: tasks.make("temporal_order", num_symbols=4),
     ValueError, r"num_symbols must be 2 or 3, got 4"),
    ("tasks.make", "mem5 T < 0", lambda: tasks.make("mem5", T=-1), ValueError,
     r"T \(with num_chars=5\) must be an integer >= 11, got -1"),
    ("task.sample", "batch_size 0", _sample("addition", 0, T=10), ValueError,
     r"batch_size .* must be an integer >= 1, got 0"),
    # the models' constructors and their input shapes
    ("models.autoencoder", "unknown name", lambda: models.autoencoder("cifar"), ValueError,
     r"unknown autoencoder 'cifar'; valid names: \['curves', 'faces', 'mnist'\]"),
    ("models.autoencoder", "unknown init", lambda: models.autoencoder("curves", init="he"),
     ValueError, r"unknown init 'he'; valid: \['sparse'"),
    ("models.autoencoder", "init_scale 0", lambda: models.autoencoder("curves", init_scale=0),
     ValueError, r"init_scale must be positive, got 0"),
    ("models.autoencoder", "init_scale nan",
     lambda: models.autoencoder("curves", init_scale=float("nan")), ValueError,
     r"init_scale must be finite"),
    ("models.autoencoder", "unknown activation",
     lambda: models.autoencoder("curves", activation="relu"), ValueError,
     r"unknown activation 'relu'; valid: \["),
    ("models.autoencoder", "num_connections 0",
     lambda: models.autoencoder("curves", num_connections=0), ValueError,
     r"num_connections must be a Python int >= 1, got 0"),
    ("models.autoencoder_from_sizes", "one size",
     lambda: models.autoencoder_from_sizes((784,)), ValueError,
     r"encoder_sizes must be at least two positive ints"),
    ("DeepAutoencoder.init", "input width",
     lambda: models.autoencoder("curves").init(_KEY, np.zeros((1, 10), np.float32)),
     ValueError, r"expected inputs \[B, 784\], got shape \(1, 10\)"),
    ("models.TanhRNN", "num_outputs 0", lambda: models.TanhRNN(num_outputs=0), ValueError,
     r"num_outputs must be a positive int, got 0"),
    ("models.TanhRNN", "hidden 0", lambda: models.TanhRNN(num_outputs=1, hidden=0), ValueError,
     r"hidden must be a positive int, got 0"),
    ("models.TanhRNN", "unknown readout", lambda: models.TanhRNN(1, readout="sigmoid"),
     ValueError, r"unknown readout 'sigmoid'; valid: \["),
    ("models.TanhRNN", "input_scale < 0", lambda: models.TanhRNN(1, input_scale=-1.0),
     ValueError, r"input_scale must be positive, got -1.0"),
    ("models.TanhRNN", "unknown recurrent_init",
     lambda: models.TanhRNN(1, recurrent_init="orthogonal"), ValueError,
     r"unknown recurrent_init 'orthogonal'; valid: \["),
    ("models.TanhRNN", "output_bias shape",
     lambda: models.TanhRNN(2, output_bias=np.zeros(3)), ValueError,
     r"output_bias must be a scalar or have shape \(2,\), got shape \(3,\)"),
    ("TanhRNN.init", "inputs not [B, L, I]",
     lambda: models.TanhRNN(1).init(_KEY, np.zeros((2, 3), np.float32)), ValueError,
     r"expected inputs \[B, L, I\], got shape \(2, 3\)"),
    # mominit.hf.hessian_free and its step
    ("hf.hessian_free", "unknown loss", _hf(loss="hinge"), ValueError,
     r"unknown loss 'hinge'; valid losses: "),
    ("hf.hessian_free", "decay 1.5", _hf(decay=1.5), ValueError, r"decay must be <= 1.0, got 1.5"),
    ("hf.hessian_free", "init_damping 0", _hf(init_damping=0.0), ValueError,
     r"init_damping must be > 0.0, got 0.0"),
    ("hf.hessian_free", "max_cg_iters 0", _hf(max_cg_iters=0), ValueError,
     r"max_cg_iters must be >= 1, got 0"),
    ("hf.hessian_free", "unknown preconditioner", _hf(preconditioner="jacobi"), ValueError,
     r"unknown preconditioner 'jacobi'; valid: martens, none"),
    ("hf.hessian_free", "unknown backtrack_mode", _hf(backtrack_mode="up"), ValueError,
     r"unknown backtrack_mode 'up'; valid: best, walk, none"),
    ("hf.hessian_free", "ls_shrink 1", _hf(ls_shrink=1.0), ValueError,
     r"ls_shrink must be < 1.0, got 1.0"),
    ("hf.hessian_free", "save_ratio 1", _hf(save_ratio=1.0), ValueError,
     r"save_ratio must be > 1, got 1.0"),
    ("hf.hessian_free", "cg_eps < 0", _hf(cg_eps=-1e-3), ValueError,
     r"cg_eps must be >= 0.0, got -0.001"),
    ("HessianFree.step", "case counts differ", _hf_step((_X, np.zeros((3, 2), np.float32))),
     ValueError, r"inputs and targets disagree on the number of cases"),
    ("HessianFree.step", "batch not a tuple", _hf_step(_X), ValueError,
     r"a batch must be a tuple \(inputs, targets\)"),
    # mominit.diagnostics
    ("diagnostics.layer_stats", "percentile 101", _stats(percentiles=(50, 101)), ValueError,
     r"percentiles must lie in \[0, 100\], got \(50.0, 101.0\)"),
    ("diagnostics.layer_stats", "jacobian_examples -1", _stats(jacobian_examples=-1),
     ValueError, r"jacobian_examples must be a Python int >= 0, got -1"),
    ("diagnostics.layer_stats", "saturation_tol -1", _stats(saturation_tol=-1.0), ValueError,
     r"saturation_tol must be a finite scalar >= 0, got -1.0"),
    ("diagnostics.layer_stats", "loss_fn not callable", _stats(loss_fn="mse"), ValueError,
     r"loss_fn must be callable as loss_fn\(outputs, batch\), got 'mse'"),
    ("diagnostics.layer_stats", "batch width", _stats(batch_width=10), ValueError,
     r"batch inputs must be \[B, 784\] \(the first layer's input width\), got shape \(4, 10\)"),
    ("diagnostics.layer_spec", "unknown model", lambda: diagnostics.layer_spec(models.TanhRNN(1)),
     ValueError, r"cannot derive the dense layers of TanhRNN"),
    # the experiments' command lines
    ("experiments.quadratic", "--momentum 1", cli("quadratic", "--workdir=/tmp/x",
                                                   "--momentum=1"),
     ValueError, r"argument --momentum: must be in \[0, 1\), got '1'"),
    ("experiments.quadratic", "--learning_rate -1",
     cli("quadratic", "--workdir=/tmp/x", "--learning_rate=-1"), ValueError,
     r"argument --learning_rate: must be a finite number > 0, got '-1'"),
    ("experiments.quadratic", "--num_steps 0",
     cli("quadratic", "--workdir=/tmp/x", "--num_steps=0"), ValueError,
     r"argument --num_steps: must be an integer >= 1, got '0'"),
    ("experiments.quadratic", "--theorem_steps x",
     cli("quadratic", "--workdir=/tmp/x", "--theorem_steps=x"), ValueError,
     r"argument --theorem_steps: must be an integer, got 'x'"),
    ("experiments.quadratic", "--seed -1", cli("quadratic", "--workdir=/tmp/x", "--seed=-1"),
     ValueError, r"argument --seed: must be an integer >= 0, got '-1'"),
    ("experiments.hf", "--steps 0", cli("hf", "--workdir=/tmp/x", "--steps=0"), ValueError,
     r"argument --steps: must be an integer >= 1, got '0'"),
    ("experiments.hf", "--preset", cli("hf", "--workdir=/tmp/x", "--preset=huge"), ValueError,
     r"argument --preset: invalid choice: 'huge' \(choose from"),
    ("experiments.glorot", "--seed -1", cli("glorot", "--workdir=/tmp/x", "--seed=-1"),
     ValueError, r"argument --seed: must be an integer >= 0, got '-1'"),
    ("experiments.glorot", "--data_dir", cli("glorot", "--workdir=/tmp/x",
                                             "--data_dir=/no/such/folder"),
     ValueError, r"argument --data_dir: must be an existing folder, got '/no/such/folder'"),
    ("experiments.show_data", "--num 0", cli("show_data", "--name=curves", "--out=/tmp/x.png",
                                             "--num=0"),
     ValueError, r"argument --num: must be an integer >= 1, got '0'"),
    ("experiments.show_data", "--T 0", cli("show_data", "--name=addition", "--out=/tmp/x.png",
                                           "--T=0"),
     ValueError, r"argument --T: must be an integer >= 1, got '0'"),
    ("experiments.show_data", "--name", cli("show_data", "--name=cifar", "--out=/tmp/x.png"),
     ValueError, r"unknown --name 'cifar'; valid: curves, mnist, faces, addition"),
    ("experiments.reproduce", "--experiments", cli("reproduce", "--workdir=/tmp/x",
                                                   "--experiments=table1,table9"),
     ValueError, r"argument --experiments: unknown name\(s\) \['table9'\]; valid: table1"),
    ("experiments.reproduce", "--data_dir", cli("reproduce", "--workdir=/tmp/x",
                                                "--data_dir=/no/such/folder"),
     ValueError, r"argument --data_dir: must be an existing folder, got '/no/such/folder'"),
    ("experiments.autoencoders", "--preset", cli("autoencoders", "--workdir=/tmp/x",
                                                 "--preset=huge"),
     ValueError, r"argument --preset: invalid choice: 'huge' \(choose from"),
    ("experiments.autoencoders", "--data_dir", cli("autoencoders", "--workdir=/tmp/x",
                                                   "--data_dir=/no/such/folder"),
     ValueError, r"argument --data_dir: must be an existing folder, got '/no/such/folder'"),
    ("experiments.init_scale", "--data_dir", cli("init_scale", "--workdir=/tmp/x",
                                                 "--data_dir=/no/such/folder"),
     ValueError, r"argument --data_dir: must be an existing folder, got '/no/such/folder'"),
    ("experiments.rnn", "--preset", cli("rnn", "--workdir=/tmp/x", "--preset=huge"),
     ValueError, r"argument --preset: invalid choice: 'huge' \(choose from"),
    ("experiments.benchmark", "--out a folder", cli("benchmark", "--out=/tmp"), ValueError,
     r"argument --out: must be a file path, got the folder '/tmp'"),
]



def engine_cases() -> int:
  """The engine's bad-input cases (mominit.sweep.validate_config through train_and_evaluate),
  tested where the engine is: tests/test_train.py's parametrized bad configs and its
  unknown-key, unknown-task, missing-file and different-config cases (4), and
  tests/test_robustness.py's values that overflow the members' dtype or bad data sizes, and its
  two workdirs of another config."""
  from tests import test_robustness, test_train  # pylint: disable=import-outside-toplevel
  params = lambda f: len(f.pytestmark[0].args[1])
  return (params(test_train.test_bad_autoencoder_configs_fail_before_compiling) + 4 +
          params(test_robustness.test_bad_values_fail_before_compiling) + 2)


@pytest.mark.parametrize("where,what,call,error,match", CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_input_is_refused_before_compiling(where, what, call, error, match):
  del where, what
  with count_compilations() as compiled:
    with pytest.raises(error, match=match):
      call()
  assert compiled[0] == 0, f"{compiled[0]} compilation event(s) before the error"


def test_every_entry_point_is_listed():
  """The list covers each entry point a user touches; its size is the count the issue asks
  for (and a guard against cases silently dropped)."""
  where = {c[0].split(".")[0] for c in CASES}
  assert {"data", "tasks", "task", "models", "DeepAutoencoder", "TanhRNN", "hf", "HessianFree",
          "diagnostics", "experiments"} <= where
  clis = {c[0] for c in CASES if c[0].startswith("experiments.")}
  assert clis == {f"experiments.{m}" for m in (
      "quadratic", "hf", "glorot", "show_data", "reproduce", "autoencoders", "init_scale",
      "rnn", "benchmark")}
  assert len(CASES) == 61
  # 23 when this was written (test_train.py may gain cases): 84 bad inputs in all.
  assert engine_cases() >= 23


def test_count_compilations_sees_a_compilation():
  """The compile check itself can fail: a fresh jitted function counts."""
  with count_compilations() as compiled:
    jax.jit(lambda x: x * 3.0 + 1.0)(np.float32(2.0)).block_until_ready()
  assert compiled[0] >= 1
