"""The report's words about its distance from the paper (experiments.report_notes)."""
import pandas as pd

from configs import reproduce as reproduce_config
from experiments import report_notes


def test_curves_note_measures_the_generated_set_against_the_original(tmp_path):
  results = pd.DataFrame({"problem": ["curves", "curves"], "baseline": [24.0, 24.0]})
  note = report_notes.curves_note(results, None)
  assert "built-in generated set" in note
  assert "24 per case" in note and "about 16" in note and "x1.5" in note  # 24 / 16
  (tmp_path / "digs3pts_1.mat").write_bytes(b"")
  assert "original `digs3pts_1.mat`" in report_notes.curves_note(results, str(tmp_path))


def test_protocol_note_says_a_reduced_preset_compares_a_shorter_protocol():
  assert "reduced protocol" in report_notes.protocol_note("quick", None)
  assert "generated data" in report_notes.protocol_note("quick", None)
  assert "reduced" not in report_notes.protocol_note("paper", None)


def test_summary_lines_are_collected_in_order():
  texts = ["x\n\nTable 1 vs the paper: median ratio x2 over 3 cells; farthest cell: a x4.\n",
           "Table 5 vs the paper: no cell the paper also reports.", "nothing here"]
  assert report_notes.summary_lines(texts) == [
      "Table 1 vs the paper: median ratio x2 over 3 cells; farthest cell: a x4.",
      "Table 5 vs the paper: no cell the paper also reports."]


def test_deviations_list_every_departure():
  spec = reproduce_config.plan("quick")
  text = "\n".join(report_notes.deviations(spec, "quick", None, "quick", "quick"))
  for needed in ("generated set", "Gaussian init", "our extension", "μ0 = 0", "recall steps",
                 "HF study", "sub-preset `quick`", "Glorot", "HF, section 5",
                 "Tables 1-3, section 3", "1,200 updates instead of 750,000"):
    assert needed in text, needed
