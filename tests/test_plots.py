"""Learning-curve axes (experiments.report): limits from the trained range, labelled ticks,
the momentum phases a run's config.json names."""
import json
import math

import numpy as np
from matplotlib.figure import Figure

from experiments import report


def test_limits_come_from_the_trained_range_not_update_0():
  # Errors 20 .. 28 after update 0 and a baseline of 27.6; the update-0 error (265) is not in.
  low, high = report._trained_limits([np.array([20.0, 24.0]), np.array([28.0])], 27.6)
  pad = max(0.06 * math.log10(28 / 20), 0.02)  # 6% of the span, at least 0.02 decades
  assert math.isclose(low, 20 / 10 ** pad) and math.isclose(high, 28 * 10 ** pad)
  # The baseline widens the range when it lies outside it; a lone value gets a minimum margin.
  low, high = report._trained_limits([np.array([20.0, 24.0])], 30.0)
  assert high > 30.0 and low < 20.0
  low, high = report._trained_limits([np.array([5.0, np.nan, -1.0])], None)
  assert math.isclose(low, 5 / 10 ** 0.02) and math.isclose(high, 5 * 10 ** 0.02)
  assert report._trained_limits([np.array([np.nan])], None) is None


def test_a_narrow_log_axis_gets_several_plain_labels():
  ax = Figure().add_subplot()
  ax.plot([1, 2], [20, 28])
  ax.set_yscale("log")
  ax.set_ylim(19, 29)
  report._label_log_axis(ax)
  ticks = [t for t in ax.get_yticks() if 19 <= t <= 29]
  assert 4 <= len(ticks) <= 7 and all(float(t).is_integer() for t in ticks)
  labels = [ax.yaxis.get_major_formatter()(t, 0) for t in ticks]
  assert labels == [f"{t:g}" for t in ticks]  # "20", not "2 x 10^1"


def test_phases_of_a_run(tmp_path):
  (tmp_path / "ae").mkdir()
  (tmp_path / "ae" / "config.json").write_text(json.dumps(
      {"steps": 1500, "final_steps": 250, "final_mu": 0.9}))
  assert report.phases_of(tmp_path / "ae") == [(1250, 1500, "final phase μ=0.9")]
  (tmp_path / "rnn").mkdir()
  (tmp_path / "rnn" / "config.json").write_text(json.dumps(
      {"steps": 2000, "warm_steps": 250, "warm_mu": 0.9}))
  assert report.phases_of(tmp_path / "rnn") == [(0, 250, "μ=0.9")]
  assert report.phases_of(tmp_path / "none") == []
