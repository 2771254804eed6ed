"""The stored paper values against a hand-copied subset of docs/paper.md section 9, and the ratio
arithmetic against hand-computed numbers."""
import math

import pytest

from experiments import paper_values as pv

# Copied by hand from docs/paper.md section 9 (PMLR v28 sutskever13.pdf), independently of the
# module.
HAND = [
    (1, "curves", "sgd", 0.0, None, 0.48),
    (1, "curves", "nag", 0.999, None, 0.074),
    (1, "curves", "cm", 0.9, None, 0.15),
    (1, "mnist", "nag", 0.99, None, 0.73),
    (1, "mnist", "cm", 0.999, None, 0.90),
    (1, "faces", "nag", 0.995, None, 7.8),
    (1, "faces", "cm", 0.9, None, 15.3),
    (1, "faces", "sgd", 0.0, None, 36.4),
    (5, "add", "nag", 0.995, None, 0.00025),
    (5, "add", "cm", 0.98, None, 0.62),
    (5, "mul", "cm", 0.9, None, 0.029),
    (5, "mem5", "sgd", 0.0, None, 1.27),
    (5, "mem20", "nag", 0.995, None, 0.00005),
    (5, "mem20", "cm", 0.98, None, 0.0017),
    (5, "mem20", "biases", None, None, 8.0),
    (5, "mem5", "biases", None, None, 2.5),
]


@pytest.mark.parametrize("table,task,rule,mu,_,value", HAND)
def test_tables_1_and_5_match_hand_copy(table, task, rule, mu, _, value):
  assert pv.cell(table, task, rule, mu) == pytest.approx(value, rel=1e-12)


def test_tables_2_3_and_references_match_hand_copy():
  assert pv.cell(2, "mnist", "nag", phase="before") == 1.20
  assert pv.cell(2, "faces", phase="after") == 7.7
  assert pv.cell(2, "curves", "nag", 0.999, phase="before") == 0.096
  assert pv.cell(3, "curves", "nag", 0.999, scale=4.0) == 0.35
  assert pv.cell(3, "curves", scale=0.25) == 16
  assert pv.cell(3, "curves", scale=2.0) == 0.083
  assert pv.reference("curves", "HF_dagger") == 0.058
  assert pv.reference("mnist", "HF_star") == 1.40
  assert pv.reference("faces", "SGD_C") is None  # "NA" in the paper
  assert pv.TABLE4["hid_to_hid_fan_in"] == 15
  assert pv.TABLE4["hid_to_hid_spectral_radius"] == 1.1
  assert pv.TABLE4["in_to_hid_scale"]["add"] == 0.001
  assert pv.TABLE5_SEEDS == 4


def test_mu_zero_is_sgd_and_missing_cells_are_none():
  assert pv.cell(1, "curves", "nag", 0.0) == 0.48
  assert pv.cell(5, "add", "cm", 0) == 0.39
  assert pv.cell(1, "curves", "nag", 0.98) is None      # no such mu_max in Table 1
  assert pv.cell(5, "add", "nag", 0.99) is None         # nor in Table 5
  assert pv.cell(1, "xor", "nag", 0.9) is None
  assert pv.cell(2, "curves", "cm") is None             # Table 2 has no CM numbers
  assert pv.cell(2, "curves", "nag", 0.99) is None      # not the paper's best NAG cell
  assert pv.cell(3, "mnist", scale=1.0) is None
  with pytest.raises(ValueError, match="table"):
    pv.cell(4, "add", "nag", 0.9)


def test_biases_column_is_chance_guessing_of_the_recall():
  # 5 binary characters guessed at 1/2; 10 characters of 5 guessed at 4/5 wrong.
  assert pv.cell(5, "mem5", "biases") == pytest.approx(5 * 0.5)
  assert pv.cell(5, "mem20", "biases") == pytest.approx(10 * 4 / 5)


def test_every_cell_is_enumerated():
  assert len(list(pv.table_cells(1))) == 27
  assert len(list(pv.table_cells(5))) == 32
  assert len(list(pv.table_cells(2))) == 6
  assert len(list(pv.table_cells(3))) == 5
  for task, rule, mu, extra, value in pv.table_cells(1):
    assert pv.cell(1, task, rule, mu) == value


def test_ratio_arithmetic():
  assert pv.ratio(0.081, 0.074) == pytest.approx(1.0945945945945945)
  assert pv.ratio(0.0, 0.5) == 0.0
  assert pv.ratio(float("inf"), 0.5) == float("inf")
  assert math.isnan(pv.ratio(0.1, None))
  assert math.isnan(pv.ratio(0.1, 0.0))
  assert math.isnan(pv.ratio(float("nan"), 0.1))
  assert pv.format_pair("0.081", 0.074, pv.ratio(0.081, 0.074)) == "0.081 (paper 0.074, x1.09)"
  assert pv.format_pair("0.081", None, float("nan")) == "0.081"


def test_summary_median_and_worst():
  s = pv.summarize({"a": 2.0, "b": 0.25, "c": 1.0, "d": float("nan")})
  assert s["n"] == 3 and s["median"] == 1.0
  assert s["worst"] == "b" and s["worst_ratio"] == 0.25  # |log 0.25| > |log 2|
  s = pv.summarize({"a": 2.0, "b": 4.0, "c": 0.0})
  assert s["median"] == 3.0 and s["worst"] == "c"          # a zero ratio is farthest
  assert pv.summarize({})["worst"] is None
  line = pv.summary_line("Table 1", {"a": 2.0, "b": 0.5, "c": 1.0})
  assert "x1 over 3 cells" in line and "farthest cell: a x2" in line
