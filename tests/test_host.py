"""experiments.host: the process defaults come from each main(), never from an import."""
import ast
import os
import pathlib
import subprocess
import sys

import pytest

from experiments import host

REPO = pathlib.Path(__file__).resolve().parents[1]
_MAINS = ("autoencoders", "benchmark", "glorot", "hf", "init_scale", "lopt", "quadratic",
          "reproduce", "rnn", "show_data", "train")


def _clean_env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_NUM_CPU_DEVICES", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")}
  return {**env, "JAX_PLATFORMS": "cpu", **extra}


def _python(script, env):
  done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout.splitlines()[-1].split()  # the last line (--help prints before it)


def test_importing_every_experiment_leaves_the_environment_alone():
  script = ("import os; before = dict(os.environ)\n"
            "import experiments\n" + "".join(f"import experiments.{m}\n" for m in _MAINS) +
            "import jax\n"
            "changed = sorted(k for k in set(before) | set(os.environ)"
            " if before.get(k) != os.environ.get(k))\n"
            "print(len(changed), jax.device_count(), *changed)")
  assert _python(script, _clean_env()) == ["0", "1"]


_MAIN_HELP = ("import os, jax\n"
              "from experiments import quadratic\n"
              "try:\n  quadratic.main(['--help'])\n"
              "except SystemExit:\n  pass\n"
              "print(os.environ['JAX_NUM_CPU_DEVICES'], os.environ['OPENBLAS_NUM_THREADS'],"
              " jax.device_count())")


def test_a_main_sets_one_device_per_core_and_one_blas_thread():
  # jax is imported (and has read the environment) before main() runs, as with `python -m`.
  cores = str(host.cpu_cores())
  assert _python(_MAIN_HELP, _clean_env()) == [cores, "1", cores]


def test_the_users_own_values_win():
  env = _clean_env(JAX_NUM_CPU_DEVICES="3", OPENBLAS_NUM_THREADS="2")
  assert _python(_MAIN_HELP, env) == ["3", "2", "3"]
  # A count chosen with jax.config before main() stands too.
  script = _MAIN_HELP.replace("import os, jax\n",
                              "import os, jax\njax.config.update('jax_num_cpu_devices', 2)\n")
  assert _python(script, _clean_env())[2] == "2"


@pytest.mark.parametrize("name", _MAINS)
def test_each_main_sets_the_defaults_first(name):
  tree = ast.parse((REPO / "experiments" / f"{name}.py").read_text())
  main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
  body = main.body[1:] if isinstance(main.body[0].value, ast.Constant) else main.body
  assert ast.unparse(body[0]) == "host.set_defaults()", name
