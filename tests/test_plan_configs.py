"""The reproduction's plan (configs/reproduce.py) and the engine configs it gives
(configs/autoencoder.py:curves,SIZE, configs/init_scale.py:sparse,SIZE, configs/rnn.py:add,SIZE):
every size validates, and a `--config.x=` override on any command line reaches the engine
config that trains (nothing trains here: `populations.run` stops at its first call)."""
import pytest

from configs import autoencoder as autoencoder_config
from configs import init_scale as init_scale_config
from configs import reproduce as reproduce_config
from configs import rnn as rnn_config
from experiments import autoencoders
from experiments import cli
from experiments import init_scale
from experiments import populations
from experiments import reproduce
from experiments import rnn
from mominit import train


@pytest.mark.parametrize("size", sorted(reproduce_config.SIZES))
def test_every_size_gives_valid_engine_configs(size):
  plan = reproduce_config.plan(cli.load_config(f"configs/reproduce.py:{size}"))
  assert plan == reproduce_config.plan(size)  # the command line's plan is the file's
  for dataset in ("curves", "mnist", "faces"):
    config = cli.load_config(f"configs/autoencoder.py:{dataset},{size}")
    train.validate_config(config)
    assert (config.dataset, config.steps) == (dataset, plan["autoencoders"]["steps"])
    assert list(config.sweep.learning_rate) == list(plan["autoencoders"]["learning_rates"])
  for init in reproduce_config.INITS:
    config = cli.load_config(f"configs/init_scale.py:{init},{size}")
    train.validate_config(config)
    assert config.init == init and config.dataset == plan["init_scale"]["dataset"]
  for problem, kwargs in plan["rnn"]["problems"].items():
    config = cli.load_config(f"configs/rnn.py:{problem},{size}")
    train.validate_config(config)
    assert list(config.sweep.mu_max) == list(plan["rnn"]["mu_0"])
    assert all(config.task_kwargs[k] == v for k, v in kwargs.items())


def test_paper_protocol_configs_are_unchanged_by_the_size_argument():
  assert autoencoder_config.get_config("curves").steps == 750_000
  assert rnn_config.get_config("add").task_kwargs.T == 80
  with pytest.raises(ValueError, match="not in this preset"):
    rnn_config.get_config("mul,quick")  # quick trains addition only
  with pytest.raises(ValueError, match="valid presets: tiny, quick, medium, paper"):
    autoencoder_config.get_config("curves,huge")


class _Reached(Exception):
  """Raised by the stand-in for populations.run, carrying the engine config it was given."""


@pytest.fixture(name="first_config")
def _first_config(monkeypatch):
  def stop(config, *args, **kwargs):
    raise _Reached(config)
  monkeypatch.setattr(populations, "run", stop)

  def first(call):
    with pytest.raises(_Reached) as e:
      call()
    config = e.value.args[0]
    train.validate_config(config)
    return config
  return first


def test_an_override_reaches_the_engine_config_from_each_cli(tmp_path, first_config):
  w = str(tmp_path)
  config = first_config(lambda: autoencoders.main(
      ["--workdir", w, "--config", "configs/autoencoder.py:curves,tiny", "--config.steps=12",
       "--config.sweep.learning_rate=(0.02,)"]))
  assert config.steps == 12 and tuple(config.sweep.learning_rate) == (0.02,)
  assert config.eval_every == reproduce_config.plan("tiny")["autoencoders"]["eval_every"]
  config = first_config(lambda: autoencoders.main(
      ["--workdir", w, "--preset", "tiny", "--config.num_train=100"]))
  assert config.num_train == 100 and config.steps == 24
  config = first_config(lambda: init_scale.main(
      ["--workdir", w, "--config", "configs/init_scale.py:gaussian,tiny", "--config.steps=6"]))
  assert config.init == "gaussian" and config.steps == 6
  config = first_config(lambda: rnn.main(
      ["--workdir", w, "--config", "configs/rnn.py:add,tiny", "--config.hidden", "5",
       "--config.task_kwargs.T=12"]))
  assert config.hidden == 5 and config.task_kwargs.T == 12 and config.task == "addition"


def test_a_plan_override_reaches_the_engine_config(tmp_path, first_config, monkeypatch):
  seen = []
  real_run = reproduce.run
  monkeypatch.setattr(reproduce, "run", lambda *a, **k: seen.append((a, k)) or real_run(*a, **k))
  # reproduce.run reports a failing experiment instead of raising: the config is in `failed`.
  status = reproduce.main(["--config", "configs/reproduce.py:tiny", "--workdir", str(tmp_path),
                           "--config.rnn.steps=14", "--config.rnn.seeds=(5,)",
                           "--experiments", "table5", "--no_progress"])
  assert status == 1 and "_Reached" in (tmp_path / "report.md").read_text()
  (_, plan, *_), kwargs = seen[0]
  assert kwargs["preset_name"] == "tiny"
  config = first_config(lambda: rnn.run(tmp_path / "again", plan, progress=False))
  assert config.steps == 14 and tuple(config.sweep.seed) == (5,)
  # The workdir records the overridden plan: the plain tiny size is refused there.
  assert reproduce.main(["--preset", "tiny", "--workdir", str(tmp_path), "--experiments",
                         "table5", "--no_progress"]) == 2


def test_config_and_preset_together_are_refused(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    reproduce.main(["--config", "configs/reproduce.py:tiny", "--preset", "tiny", "--workdir",
                    str(tmp_path)])
  assert e.value.code == 2 and "not both" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    reproduce.main(["--preset", "tiny", "--workdir", str(tmp_path), "--config.rnn.stepz=3"])
  assert e.value.code == 2 and "did you mean --config.rnn.steps" in capsys.readouterr().err
