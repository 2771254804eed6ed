"""The report's words about its distance from the paper: the summary of every table's ratios,
what a reduced preset's ratios mean, the built-in CURVES against the original, and the list of
departures from the paper's protocol (`experiments.reproduce` puts them into report.md).

Everything here is a pure function of its arguments (preset dicts, result tables, texts).
"""
import math
import pathlib
import re
from typing import Optional

import pandas as pd

from experiments import paper_values

# How the RNN tables read the paper's mu_0 = 0 column (see `MU0_READING`).
MU0_READING = (
    "Table 5's μ0 = 0 column is plain SGD for the whole run, also during the first warm-phase "
    "updates. The paper's text applies μ = 0.9 for the first 1,000 updates to every trial "
    "(section 4), which would make that column 'μ = 0.9 for 1,000 updates, then SGD'; we keep "
    "the SGD reading because the paper calls these results standard SGD (\"we obtained "
    "nontrivial results even with standard sgd, provided that the learning rate was set low "
    "enough\", section 4) and its table heads the column SGD, because 1,000 of 50,000 updates "
    "at μ = 0.9 can hardly matter at a learning rate small enough for SGD, and because the "
    "other reading would make the column depend on the rule (NAG or CM during the warm phase), "
    "which the table does not show.")

SECTIONS = ("Paper sections: momentum and the theorem, section 2; deep autoencoders, Tables 1-3, "
            "section 3; RNNs, Tables 4-5, section 4; momentum and HF, section 5; the hybrid "
            "HF-dagger runs, appendix A.6.")


def curves_generated(data_dir: Optional[str]) -> bool:
  """Whether CURVES comes from the built-in generator (no digs3pts_1.mat in `data_dir`)."""
  from mominit.data import curves  # pylint: disable=import-outside-toplevel
  return not (data_dir and (pathlib.Path(data_dir) / curves.FILENAME).exists())


def curves_note(results: pd.DataFrame, data_dir: Optional[str]) -> str:
  """One paragraph for beside a CURVES table: which data, and its mean-image error against
  the original's (about 16, inferred from Table 3's failed scales)."""
  from mominit.data import curves  # pylint: disable=import-outside-toplevel
  if not curves_generated(data_dir):
    return "CURVES: the original `digs3pts_1.mat` from `--data_dir`."
  rows = results[results["problem"] == "curves"] if "problem" in results else results.iloc[0:0]
  base = float(rows["baseline"].iloc[0]) if len(rows) else float("nan")
  original = curves.ORIGINAL_MEAN_IMAGE_ERROR
  measured = (f"its mean-image error is {base:.3g} per case (this run's training cases) "
              f"against about {original:g} for the original (x{base / original:.3g})"
              if math.isfinite(base) else "its mean-image error was not measured here")
  return (f"**CURVES here is the built-in generated set** (generator version "
          f"{curves._VERSION}), not `digs3pts_1.mat`: {measured}; the original's value is an "
          "inference from Table 3's failed scales, not a measurement. Only that total ink "
          "variance is matched: the stroke width, intensity profile, fraction of inked pixels "
          "and the curve shapes of the original are not documented and may still differ "
          "(`mominit.data.curves`), so every CURVES ratio also compares different data.")


def summary_lines(texts) -> list:
  """The "Table N ... vs the paper: ..." lines of the experiments' texts, in order."""
  out = []
  for text in texts:
    out += re.findall(r"^Table \d[^\n]* vs the paper: [^\n]*$", text, flags=re.M)
  return out


def protocol_note(preset_name: str, data_dir: Optional[str]) -> str:
  """What a preset's ratios compare."""
  data = (" and, for CURVES, the built-in generated data instead of `digs3pts_1.mat`"
          if curves_generated(data_dir) else "")
  if preset_name == "paper":
    return ("Preset `paper` follows the paper's protocol (see *Deviations* for what still "
            f"differs{data}); a ratio far from 1 is a result to explain.")
  return (f"**Preset `{preset_name}` is a reduced protocol.** Its ratios compare shorter runs, "
          f"smaller grids, fewer seeds and shorter RNN sequences{data} with the paper's full "
          "runs (750,000 autoencoder and 50,000 RNN updates): they measure how far this "
          "shorter protocol gets, not whether the reproduction is right, and are not expected "
          "to be near 1.")


def deviations(spec: dict, preset_name: str, data_dir: Optional[str],
               hf_preset: Optional[str], glorot_preset: Optional[str]) -> list:
  """Every departure from the paper's protocol, as markdown bullets."""
  from mominit.data import curves  # pylint: disable=import-outside-toplevel
  lines = []
  for section in ("autoencoders", "init_scale", "rnn"):
    devs = spec.get(section, {}).get("deviations", [])
    lines.append(f"- **{section}** (preset `{preset_name}`): "
                 + ("; ".join(devs) if devs else "none beyond those below"))
  if curves_generated(data_dir):
    lines.append(f"- **data**: CURVES is the built-in generated set (version {curves._VERSION}, "
                 f"mean-image error about {curves.ORIGINAL_MEAN_IMAGE_ERROR:g} by construction), "
                 "not `digs3pts_1.mat`; see the note beside each CURVES table.")
  lines += [
      "- **Gaussian init**: the dense N(0, 0.01²) experiment beside Table 3 is our extension "
      "(the paper states that such nets cannot be trained but publishes no number for it).",
      "- **Table 3**: the paper does not state its protocol; its row is most likely CURVES "
      f"NAG at μmax {paper_values.TABLE3_MU:g} (its x1 value is Table 1's), ours uses the "
      "preset's rule and μmax.",
      f"- **Table 5, μ0 = 0**: {MU0_READING}",
      "- **Table 5, memorization**: scored on the recall steps only (Sutskever's "
      "`only_predict_the_memory_bits`), shown as the fraction of recall steps wrong and, "
      "beside it, the paper's unit (wrong recall steps per sequence); the paper's words "
      "(\"fraction of timesteps\") describe the every-step mask, which stays an option "
      "(`recall_only=False`).",
      "- **Table 1, HF columns**: SGD_C, HF† and HF* are the paper's reference numbers, shown "
      "for comparison; HF† is the paper's multi-phase hybrid (`experiments.hf."
      "HYBRID_SCHEDULES`, runnable on its own as `configs/hf.py:hybrid_curves`; not part of "
      "the reproduction's presets).",
  ]
  if hf_preset:
    scale = ("the paper's scale (full-batch gradients, up to 250 CG steps, compared at final "
             "errors)" if hf_preset == "paper" else
             "a reduced scale, with the methods compared at the main HF run's budgets")
    lines.append(f"- **HF study** (paper section 5): its own sub-preset `{hf_preset}`, {scale}; "
                 "it trains on the generated CURVES training set.")
  if glorot_preset:
    lines.append(f"- **Glorot & Bengio study**: sub-preset `{glorot_preset}` of "
                 "`experiments.glorot` (an extension: not part of this paper's tables).")
  lines.append(f"- **Sections**: {SECTIONS}")
  return lines
