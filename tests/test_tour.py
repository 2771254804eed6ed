"""docs/tour.py (the notebook tour) runs as a script at its tiny size."""
import os
import pathlib
import subprocess
import sys

import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_tour_runs_as_a_script(tmp_path):
  env = {**os.environ, "MOMINIT_TOUR_SIZE": "tiny", "MOMINIT_TOUR_WORKDIR": str(tmp_path),
         "MPLBACKEND": "Agg"}
  result = subprocess.run([sys.executable, str(ROOT / "docs" / "tour.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("tour_theta.png", "tour_curves.png"):
    assert (tmp_path / name).stat().st_size > 10_000, name
  # 2 seeds x {NAG 0.99, CM 0.99, SGD (mu_max 0, reported once)}: 6 members, all trained.
  results = pd.read_csv(tmp_path / "sweep" / "results.csv")
  assert len(results) == 6
  assert sorted(results.groupby("rule").size().items()) == [("cm", 2), ("nag", 2), ("sgd", 2)]
  assert results["train_error"].notna().all() and not results["diverged"].any()
  # The tour's theta: NAG's stored parameters minus mu_t v_t, near the minimum 0 after 60 steps.
  line = next(l for l in result.stdout.splitlines() if l.startswith("after 60 NAG updates"))
  assert "theta" in line and "phi" in line
