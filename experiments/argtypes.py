"""argparse ``type=`` checks shared by the experiments' command lines.

A bad value ends the run in argparse itself, before anything is imported or compiled, with
``error: argument --name: must be ..., got 'value'`` (exit status 2): the flag, its valid range
and what was given.
"""
import argparse
import math
import pathlib


def _number(kind, text):
  try:
    value = kind(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
  return value


def positive_int(text: str) -> int:
  """An integer >= 1."""
  value = _number(int, text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
  return value


def nonnegative_int(text: str) -> int:
  """An integer >= 0 (e.g. a seed)."""
  value = _number(int, text)
  if value < 0:
    raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
  return value


def positive_float(text: str) -> float:
  """A finite number > 0 (e.g. a learning rate)."""
  value = _number(float, text)
  if not (math.isfinite(value) and value > 0):
    raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
  return value


def momentum(text: str) -> float:
  """A momentum coefficient in [0, 1)."""
  value = _number(float, text)
  if not 0.0 <= value < 1.0:
    raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
  return value


def existing_dir(text: str) -> str:
  """A folder that exists (a data folder: a typo must not silently fall back to generated
  data)."""
  if not pathlib.Path(text).expanduser().is_dir():
    raise argparse.ArgumentTypeError(f"must be an existing folder, got {text!r}")
  return text


def names(valid) -> callable:
  """A comma-separated list of names, each one of ``valid`` (empty entries are dropped)."""
  valid = tuple(valid)

  def parse(text: str) -> list:
    chosen = [n for n in text.split(",") if n]
    unknown = [n for n in chosen if n not in valid]
    if unknown:
      raise argparse.ArgumentTypeError(f"unknown name(s) {unknown}; valid: {', '.join(valid)}")
    if not chosen:
      raise argparse.ArgumentTypeError(f"names none of {', '.join(valid)}")
    return chosen

  return parse


def output_file(text: str) -> str:
  """A file to write: not an existing folder (found before the run, not after it)."""
  if pathlib.Path(text).expanduser().is_dir():
    raise argparse.ArgumentTypeError(f"must be a file path, got the folder {text!r}")
  return text
