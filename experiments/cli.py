"""Command-line helpers shared by the experiments: one-line messages for the common mistakes.

`parse_config_flags` is an absl `flags_parser` for `app.run` that turns ml_collections' long
tracebacks (a misspelled `--config.stepz`, a value that does not parse) into one line naming the
key and its closest valid names, and reads `nan` / `inf` in a tuple override as numbers (so
`--config.sweep.learning_rate='(nan,)'` reaches the config's own check, "must be finite and > 0",
instead of "could not convert string to float: '(nan,)'").
"""
import ast
import difflib
import importlib.util
import math
import re
import sys
from typing import Optional, Sequence

from absl import flags
import ml_collections

_OVERRIDE = re.compile(r"^--?(?P<flag>[A-Za-z_]\w*)\.(?P<path>[\w.]+)(?:=(?P<value>.*))?$")


def load_config_file(spec: str):
  """The ConfigDict of "path/to/config.py[:arg]" (what `--config` names), no overrides."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_mominit_cli_config", path)
  if module_spec is None or module_spec.loader is None:
    raise ValueError(f"--config: cannot load {path!r} (not a Python file)")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def unknown_key_message(config, path: str, flag: str = "config") -> Optional[str]:
  """A one-line message if `path` ("sweep.learning_rate") is not a field of `config`, else None.

  The message names the first missing key, its closest valid names (difflib) and where the
  valid names are listed.
  """
  node, walked = config, []
  for key in path.split("."):
    if not isinstance(node, (ml_collections.ConfigDict, dict)):
      return (f"--{flag}.{path}: {'.'.join(walked)} is a value "
              f"({type(node).__name__}), it has no field {key!r}")
    keys = list(node.keys())
    if key not in keys:
      where = ".".join([flag] + walked)
      close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
      hint = (f"did you mean {' or '.join(f'--{where}.{c}' for c in close)}? "
              if close else "")
      return (f"--{flag}.{path}: {where} has no key {key!r}; {hint}valid keys: "
              f"{', '.join(sorted(keys))}")
    node, walked = node[key], walked + [key]
  return None


def _number_literal(text: str):
  """`ast.literal_eval` that also reads the names nan and inf (any case) as floats."""
  tree = ast.parse(text.strip(), mode="eval")

  class Names(ast.NodeTransformer):

    def visit_Name(self, node):  # pylint: disable=invalid-name
      if node.id.lower() in ("nan", "inf", "infinity"):
        return ast.copy_location(ast.Constant(float(node.id.lower().replace("inity", ""))),
                                 node)
      raise ValueError(f"not a number: {node.id!r}")

  return ast.literal_eval(Names().visit(tree))


def numbers_in_tuples(config, reference, prefix: str = "config") -> list:
  """Reads back tuple fields that ml_collections kept as one string although the config's
  default holds numbers (`'(nan,)'`: `ast.literal_eval` knows no nan). Edits `config` in place;
  returns the paths it changed."""
  changed = []
  for key in config.keys():
    value, default = config[key], reference.get(key) if reference is not None else None
    if isinstance(value, ml_collections.ConfigDict):
      changed += numbers_in_tuples(value, default if isinstance(
          default, ml_collections.ConfigDict) else None, f"{prefix}.{key}")
      continue
    if not (isinstance(value, tuple) and isinstance(default, tuple) and default
            and all(isinstance(d, (int, float)) and not isinstance(d, bool) for d in default)):
      continue
    if any(isinstance(v, str) for v in value):
      text = ",".join(value) if len(value) > 1 else value[0]
      try:
        parsed = _number_literal(text)
      except (SyntaxError, ValueError) as e:
        raise ValueError(f"--{prefix}.{key}={text}: expected a tuple of numbers such as "
                         f"'{default!r}', could not read it ({e})") from None
      parsed = parsed if isinstance(parsed, tuple) else (
          tuple(parsed) if isinstance(parsed, list) else (parsed,))
      config[key] = parsed
      changed.append(f"{prefix}.{key}")
  return changed


def _config_spec(argv: Sequence[str], flag: str) -> Optional[str]:
  for i, arg in enumerate(argv):
    if arg in (f"--{flag}", f"-{flag}") and i + 1 < len(argv):
      return argv[i + 1]
    if arg.startswith(f"--{flag}=") or arg.startswith(f"-{flag}="):
      return arg.split("=", 1)[1]
  return None


def diagnose(argv: Sequence[str], flag: str = "config") -> Optional[str]:
  """A one-line message for the first `--config.<path>` override of `argv` that names no field
  of the config (None if all do, or if the config file itself does not load)."""
  spec = _config_spec(argv, flag)
  if spec is None:
    return None
  try:
    config = load_config_file(spec)
  except Exception:  # pylint: disable=broad-except
    return None  # absl's own message about the config file is the right one then
  for arg in argv:
    m = _OVERRIDE.match(arg)
    if m and m.group("flag") == flag:
      message = unknown_key_message(config, m.group("path"), flag)
      if message:
        return message
  return None


def parse_config_flags(argv: Sequence[str], flag: str = "config",
                       flag_values: flags.FlagValues = flags.FLAGS):
  """An `app.run(main, flags_parser=...)` parser: absl's parse, with every error as one line
  `error: ...` on stderr and exit status 2 (an unknown override key with its closest valid
  keys; a value that does not parse, naming the flag; a missing required flag)."""
  message = diagnose(argv[1:], flag)
  if message:
    fail(message)
  try:
    rest = flag_values(argv)
  except flags.Error as e:
    fail(e)
  except Exception as e:  # pylint: disable=broad-except
    # ml_collections raises AttributeError / ValueError / TypeError from inside absl's parser.
    fail(f"{type(e).__name__}: {str(e).replace(chr(92) + 'n', ' ')}")
  config = flag_values[flag].value
  spec = _config_spec(argv[1:], flag)
  if config is not None and spec is not None:
    try:
      numbers_in_tuples(config, load_config_file(spec), flag)
    except ValueError as e:
      fail(e)
  return rest


def given_overrides(argv: Sequence[str], flag: str = "config") -> set:
  """The field paths the command line sets ("steps", "sweep.mu_max", ...)."""
  return {m.group("path") for m in map(_OVERRIDE.match, argv) if m and m.group("flag") == flag}


def scale_dependent(config, given: set) -> list:
  """Fits the fields that depend on ``config.steps`` to a shorter run when the command line
  did not set them itself, so `--config.steps=300` alone runs; returns one note per change or
  caveat (the caller prints them).

  - ``final_steps`` (autoencoders) at or beyond ``steps``: the last tenth of the run.
  - ``warm_steps`` (RNNs) at or beyond ``steps`` (every mu_0 would train at warm_mu for the
    whole run, so the sweep's mu_0 values would all be the same run): the first tenth.
  - the autoencoders' momentum schedule: a note when mu reaches the sweep's largest mu_max only
    after the run ends (``momentum_period`` shortens that).
  """
  notes = []
  steps = int(config.steps)
  for name, what in (("final_steps", "the last tenth of the run"),
                     ("warm_steps", "the first tenth of the run, so the mu_0 values differ")):
    if name in config and name not in given and int(config[name]) >= steps:
      new = steps // 10
      notes.append(f"config.{name}={config[name]} does not fit in config.steps={steps}: "
                   f"using {name}={new} ({what}); set --config.{name} to choose")
      config[name] = new
  if config.get("momentum_schedule") == "sutskever" and "momentum_period" not in given:
    mu_max = max([float(m) for m in config.sweep.get("mu_max", ()) if float(m) < 1] or [0.0])
    if mu_max > 0:
      reach = (math.ceil(0.5 / (1.0 - mu_max) - 1e-9) - 1) * int(config.momentum_period)
      if reach >= steps:
        notes.append(f"with config.momentum_period={config.momentum_period}, mu reaches "
                     f"{mu_max:g} only at update {reach:,}, after the run's {steps:,}; "
                     "--config.momentum_period shortens that")
  return notes


def fail(message: str, status: int = 2):
  """Prints `error: message` (one line) to stderr and exits with `status`."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(status)


def split_overrides(argv: Sequence[str], flag: str = "config") -> tuple[list, list]:
  """(the ``--config.<path>=value`` arguments, the others) of an argparse command line; a
  ``--config.<path> value`` pair is joined into one argument."""
  overrides, rest, args = [], [], list(argv)
  while args:
    arg = args.pop(0)
    m = _OVERRIDE.match(arg)
    if m and m.group("flag") == flag:
      if m.group("value") is None and args:
        arg = f"{arg}={args.pop(0)}"
      overrides.append(arg)
    else:
      rest.append(arg)
  return overrides, rest


def load_config(spec: str, overrides: Sequence[str] = (), flag: str = "config"):
  """The ConfigDict of "path/to/config.py:arg" with ``--config.<path>=value`` overrides applied
  as absl's ``--config`` flag applies them (for argparse entry points).

  Raises:
    ValueError: one line naming the override key or value that does not fit the config.
  """
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  message = diagnose([f"--{flag}", spec, *overrides], flag)
  if message:
    raise ValueError(message)
  flag_values = flags.FlagValues()
  argv = ["prog", f"--{flag}={spec}", *overrides]
  config_flags.DEFINE_config_file(flag, None, "config file", flag_values=flag_values,
                                  lock_config=True, sys_argv=argv)
  try:
    flag_values(argv)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{type(e).__name__}: {str(e).replace(chr(92) + 'n', ' ')}") from None
  config = flag_values[flag].value
  numbers_in_tuples(config, load_config_file(spec), flag)
  return config


def population_configs(config_spec: Optional[str], preset: Optional[str], config_file: str,
                       names: Sequence[str], default_name: str, overrides: Sequence[str]):
  """The engine configs an experiment CLI trains: ``--config FILE:NAME,SIZE`` (one population)
  or ``--preset SIZE`` (every one of ``names``, the plan's data sets or problems, each as
  ``config_file:NAME,SIZE``; default size quick). Exits with a one-line error for both flags
  at once or a bad override.

  Returns:
    (size or "", {name: ConfigDict}).
  """
  if config_spec and preset:
    fail("give --config or --preset, not both")
  if config_spec:
    name, _, size = config_spec.partition(":")[2].partition(",")
    specs = {name or default_name: config_spec}
  else:
    size = preset or "quick"
    specs = {n: f"{config_file}:{n},{size}" for n in names}
  try:
    return size, {n: load_config(spec, overrides) for n, spec in specs.items()}
  except ValueError as e:
    fail(e)
