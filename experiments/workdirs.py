"""Writing a reproduction's outputs without ever destroying a good one.

- `check_preset` refuses, before anything is written, a workdir that holds a run of another
  preset (or of the same preset with other settings): resuming it would mix populations, and
  writing a new report over it would lose the old one. Settings the preset gained since (a new
  study) are allowed: the finished populations resume and only the new ones train.
- `write_text` / `write_csv` write a temporary file beside the target and `os.replace` it, so a
  run killed while writing leaves the previous file whole.
- `output_paths` sends the outputs of a failing run to `report.failed.md`, `results.failed.csv`,
  ... when the workdir already holds a report, so a failed rerun never replaces it.
"""
import json
import os
import pathlib
import re
import tempfile
from typing import Union

RECORD = "reproduce.json"
OUTPUTS = ("report.md", "results.csv", "claims.json", "claims.md")
# Preset entries that describe a run but do not change it.
_PROSE = ("description", "deviations")
_REPORT_PRESET = re.compile(r"^# Reproduction report: preset `([^`]+)`")


class WorkdirError(ValueError):
  """The workdir holds a run that this one must not resume or overwrite."""


def _settings(spec) -> dict:
  """The preset as JSON values, without its prose (`_PROSE`)."""
  def strip(value):
    if isinstance(value, dict):
      return {k: strip(v) for k, v in value.items() if k not in _PROSE}
    return value
  return strip(json.loads(json.dumps(spec, default=list, sort_keys=True)))


def _differences(old, new, prefix="") -> list:
  """Settings that differ. A key the old run does not have (a study added to the preset since)
  is no difference: what the old run did is unchanged, so it resumes and runs the new part."""
  if isinstance(old, dict) and isinstance(new, dict):
    out = []
    for key in sorted(set(old) | set(new)):
      if key in old or key not in new:
        out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
    return out
  return [] if old == new else [prefix.rstrip(".")]


def check_preset(workdir, preset_name: str, spec: dict) -> None:
  """Refuses a workdir that holds a reproduction of another preset or other settings.

  Reads `workdir/reproduce.json` (written by `record_preset` when a run starts) or, for a
  workdir from before it existed, the preset named in `report.md`'s title.

  Raises:
    WorkdirError: naming the preset found, the differing settings and what to do.
  """
  workdir = pathlib.Path(workdir)
  record, report = workdir / RECORD, workdir / "report.md"
  advice = "use a new --workdir, or delete that folder to start over"
  if record.is_file():
    try:
      old = json.loads(record.read_text())
    except (OSError, ValueError) as e:
      raise WorkdirError(f"{record} cannot be read ({e}); {advice}") from None
    if old.get("preset") != preset_name:
      raise WorkdirError(f"{workdir} holds a run of preset {old.get('preset')!r}, not "
                         f"{preset_name!r}; {advice}")
    changed = _differences(old.get("settings", {}), _settings(spec))
    if changed:
      raise WorkdirError(f"{workdir} holds a run of preset {preset_name!r} with other settings "
                         f"({', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''} "
                         f"differ); {advice}")
  elif report.is_file():
    first = report.read_text(errors="replace").splitlines()[:1]
    match = _REPORT_PRESET.match(first[0]) if first else None
    if match and match.group(1) != preset_name:
      raise WorkdirError(f"{workdir} holds a report of preset {match.group(1)!r}, not "
                         f"{preset_name!r}; {advice}")


def record_preset(workdir, preset_name: str, spec: dict) -> None:
  """Writes `workdir/reproduce.json`: the preset this workdir's runs belong to."""
  write_text(pathlib.Path(workdir) / RECORD,
             json.dumps({"preset": preset_name, "settings": _settings(spec)}, indent=1,
                        sort_keys=True) + "\n")


def write_text(path, content: Union[str, bytes]) -> pathlib.Path:
  """Writes `content` to `path` atomically: a temporary file in the same folder, flushed to
  disk, then `os.replace`d over `path` (readers see the old file or the new one, never half)."""
  path = pathlib.Path(path)
  data = content.encode() if isinstance(content, str) else content
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  return path


def write_csv(frame, path) -> pathlib.Path:
  """`frame.to_csv(path, index=False)`, atomically (`write_text`)."""
  return write_text(path, frame.to_csv(index=False))


# results.csv columns that are flags or counts in every row that has them. Rows of other
# experiments get False / -1 (not applicable) instead of an empty cell, so that
# `pd.read_csv` loads them as bool / int64 (`df[df.diverged]` works; an empty cell would make
# them object / float columns).
BOOL_COLUMNS = ("diverged", "blown_up")
INT_COLUMNS = ("seed", "steps", "diverged_at", "blown_up_at", "oscillations", "T", "updates",
               "evals", "final_steps")
NOT_APPLICABLE = -1


def tidy_dtypes(frame):
  """`frame` with `BOOL_COLUMNS` as bool (missing: False) and `INT_COLUMNS` as int64 (missing:
  `NOT_APPLICABLE`), where their values allow it (a column with a non-integral value is kept)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import pandas as pd  # pylint: disable=import-outside-toplevel
  frame = frame.copy()
  for name in BOOL_COLUMNS:
    if name in frame:
      frame[name] = [False if v is None or (isinstance(v, float) and np.isnan(v))
                     else str(v).strip().lower() in ("true", "1", "1.0") for v in frame[name]]
      frame[name] = frame[name].astype(bool)
  for name in INT_COLUMNS:
    if name in frame:
      values = pd.to_numeric(frame[name], errors="coerce")
      known = values.dropna()
      if len(known) == frame[name].notna().sum() and np.all(np.mod(known, 1) == 0):
        frame[name] = values.fillna(NOT_APPLICABLE).astype(np.int64)
  return frame


def output_paths(workdir, failing: bool) -> dict:
  """{output name: path} for `OUTPUTS`: the names themselves, or, for a failing run in a
  workdir that already holds a report, `report.failed.md`, `results.failed.csv`, ..."""
  workdir = pathlib.Path(workdir)
  divert = failing and (workdir / "report.md").exists()
  return {name: workdir / (name.replace(".", ".failed.", 1) if divert else name)
          for name in OUTPUTS}
