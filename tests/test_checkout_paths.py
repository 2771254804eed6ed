"""Nothing defaults to a path outside the checkout, and references to the paper's sheet resolve."""
import pathlib
import re

import numpy as np
import pytest

from experiments import glorot

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_glorot_reads_mnist_only_from_its_data_dir(mnist_dir, monkeypatch, tmp_path):
  # Real MNIST files reachable through the environment and beside the checkout are not a default.
  monkeypatch.setenv("MOMINIT_MNIST_DIR", str(mnist_dir))
  with pytest.raises(FileNotFoundError, match="no --data_dir"):
    glorot._load_mnist(None, np.random.default_rng(0))  # pylint: disable=protected-access
  with pytest.raises(FileNotFoundError, match="t10k-images"):
    glorot._load_mnist(tmp_path, np.random.default_rng(0))  # pylint: disable=protected-access
  tx, _, vx, _, source = glorot._load_mnist(  # pylint: disable=protected-access
      mnist_dir, np.random.default_rng(0))
  assert str(mnist_dir) in source and (len(tx), len(vx)) in ((8000, 2000), (60000, 10000))


def _sources():
  for folder in ("mominit", "experiments", "configs", "tests", "docs"):
    for path in sorted((REPO / folder).rglob("*")):
      if path.suffix in (".py", ".md") and path.name != "paper.md":
        yield path
  yield REPO / "README.md"


def test_the_paper_sheet_is_cited_where_it_is_in_the_checkout():
  assert (REPO / "docs" / "paper.md").is_file()
  stale = [f"{p.relative_to(REPO)}:{n}" for p in _sources() if p.name != "test_checkout_paths.py"
           for n, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"(?<!docs/)PAPER\.md", line)]
  assert not stale, f"cite docs/paper.md, not PAPER.md: {stale}"
