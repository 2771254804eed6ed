"""The README's and docs' quick example blocks run as written (docs/check_examples.py)."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _checker():
  spec = importlib.util.spec_from_file_location("check_examples", ROOT / "docs" / "check_examples.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_quick_examples_run_as_written(capsys):
  checker = _checker()
  quick = [b for b in checker.blocks() if b.quick and b.skip_reason is None]
  assert quick, "no example is marked quick"
  assert checker.main(["--quick"]) == 0, capsys.readouterr().out
  out = capsys.readouterr().out
  assert out.count("\nok ") + out.startswith("ok ") == len(quick)


def test_every_example_block_is_found_with_its_mark():
  checker = _checker()
  found = {b.where: b for b in checker.blocks()}
  setup = [b for b in found.values() if "python3 -m venv" in b.code]
  assert setup and all(b.skip_reason for b in setup)  # the README's two set-up commands
  assert any(b.mark.startswith("skip") for b in found.values())
