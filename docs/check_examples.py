"""Runs the example code blocks of README.md and docs/*.md as written, and times them.

  python docs/check_examples.py            # every runnable block
  python docs/check_examples.py --quick    # only those marked quick (the test suite runs these)
  python docs/check_examples.py --list     # what would run, and why the others do not

A fenced ```bash or ```python block is an example. The HTML comment right above its fence (not
shown on GitHub) says how to check it:

  <!-- check: quick -->          run it here and in tests/test_examples.py (seconds)
  <!-- check: 600 s -->         run it here, fail if it takes longer than 600 s
  <!-- check: skip: REASON -->   not run (e.g. needs a GPU; hours long); REASON is printed

Unmarked blocks run with a 900 s limit. Blocks that create a virtual environment (the README's
two set-up commands, which `.ci/run` and a fresh clone exercise) are never run here. Each block
runs in a fresh temporary folder holding a link to `configs/`, so relative paths (`runs/...`,
`configs/x.py:arg`) work as in a checkout and nothing is written into it; bash blocks with
`bash -e`, python blocks with this interpreter. Exit status 1 if a block failed or ran over.
"""
import argparse
import dataclasses
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = ("README.md", "docs/*.md")
DEFAULT_LIMIT = 900.0
_FENCE = re.compile(r"^```(bash|python)\s*$")
_MARK = re.compile(r"^<!--\s*check:\s*(.*?)\s*-->\s*$")


@dataclasses.dataclass
class Block:
  path: pathlib.Path
  line: int      # 1-based line of the opening fence
  language: str  # "bash" or "python"
  code: str
  mark: str      # the check comment's text ("" when unmarked)

  @property
  def where(self) -> str:
    return f"{self.path.relative_to(ROOT)}:{self.line}"

  @property
  def skip_reason(self):
    if "python3 -m venv" in self.code:
      return "set-up commands (run by .ci/run and a fresh clone)"
    if self.mark.startswith("skip"):
      return self.mark.partition(":")[2].strip() or "marked skip"
    return None

  @property
  def quick(self) -> bool:
    return self.mark == "quick"

  @property
  def limit(self) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*s", self.mark)
    return float(match.group(1)) if match else (120.0 if self.quick else DEFAULT_LIMIT)


def blocks(files=FILES) -> list:
  """Every bash / python example block of the files (globs relative to the repository)."""
  out = []
  for pattern in files:
    for path in sorted(ROOT.glob(pattern)):
      lines = path.read_text().splitlines()
      i = 0
      while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
          i += 1
          continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = lines[i - 1] if i > 0 else ""
        mark = _MARK.match(above)
        out.append(Block(path, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                         mark.group(1) if mark else ""))
        i = end + 1
  return out


def run(block: Block) -> tuple:
  """Runs one block in a fresh folder; returns (ok, seconds, output tail)."""
  with tempfile.TemporaryDirectory(prefix="mominit-example-") as folder:
    os.symlink(ROOT / "configs", pathlib.Path(folder) / "configs")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    command = (["bash", "-e", "-c", block.code] if block.language == "bash"
               else [sys.executable, "-c", block.code])
    t0 = time.perf_counter()
    # Its own session, so a block over its limit is stopped with everything it started.
    child = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
      output, _ = child.communicate(timeout=block.limit)
    except subprocess.TimeoutExpired:
      os.killpg(child.pid, signal.SIGKILL)
      output, _ = child.communicate()
      return False, time.perf_counter() - t0, f"over the {block.limit:.0f} s limit\n{output[-2000:]}"
    return child.returncode == 0, time.perf_counter() - t0, output[-2000:]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help="only the blocks marked quick")
  parser.add_argument("--list", action="store_true", help="list the blocks, run nothing")
  parser.add_argument("files", nargs="*", default=list(FILES),
                      help="markdown files or globs, relative to the repository")
  args = parser.parse_args(argv)
  failed = 0
  for block in blocks(args.files):
    reason = block.skip_reason
    if reason is None and args.quick and not block.quick:
      reason = "not marked quick"
    if reason is not None or args.list:
      print(f"{'skip' if reason else 'would run'} {block.where} ({block.language}"
            f"{', limit %.0f s' % block.limit if not reason else ''}){': ' + reason if reason else ''}",
            flush=True)
      continue
    ok, seconds, tail = run(block)
    print(f"{'ok' if ok else 'FAILED'} {block.where} ({block.language}): {seconds:.0f} s",
          flush=True)
    if not ok:
      failed += 1
      print("  " + tail.replace("\n", "\n  "), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
