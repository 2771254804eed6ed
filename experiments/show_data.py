"""Saves a PNG of examples from a data set or an RNN task.

  python -m experiments.show_data --name curves --out curves.png
  python -m experiments.show_data --name mnist --data_dir ~/data/mnist --out mnist.png
  python -m experiments.show_data --name mem5 --out mem5.png

Images are drawn as a grid (gray scale, 0 = black). Each sequence is drawn as three heat maps
over time: the inputs (channels x steps), the targets (outputs x steps) and the mask, in which
the loss is computed where it is 1.
"""
import argparse
import math
import sys

import jax
import matplotlib

matplotlib.use("Agg")  # Files only; no display needed.
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from experiments import argtypes  # pylint: disable=wrong-import-position
from experiments import host
from mominit import data  # pylint: disable=wrong-import-position
from mominit import tasks  # pylint: disable=wrong-import-position

_IMAGE_SIDES = {784: 28, 625: 25}


def image_grid(images: np.ndarray, out: str, title: str) -> None:
  """Saves [N, D] images (D = 784 or 625, row-major squares) as a grid."""
  side = _IMAGE_SIDES.get(images.shape[1]) or math.isqrt(images.shape[1])
  cols = min(8, len(images))
  rows = math.ceil(len(images) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.4), squeeze=False)
  lo, hi = float(images.min()), float(images.max())
  for ax in axes.ravel():
    ax.axis("off")
  for ax, image in zip(axes.ravel(), images):
    ax.imshow(image.reshape(side, side), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
  fig.suptitle(title)
  fig.savefig(out, dpi=100, bbox_inches="tight")
  plt.close(fig)


def sequence_plot(batch: tasks.Batch, out: str, title: str) -> None:
  """Saves each sequence of `batch` as input / target / mask heat maps over time."""
  inputs, targets, mask = (np.asarray(x) for x in batch)
  num = inputs.shape[0]
  heights = [inputs.shape[2], targets.shape[2], 1]
  fig, axes = plt.subplots(3 * num, 1, figsize=(10, 0.22 * num * (sum(heights) + 6)),
                           gridspec_kw={"height_ratios": heights * num}, squeeze=False)
  for i in range(num):
    for j, (name, array) in enumerate((("inputs", inputs[i].T), ("targets", targets[i].T),
                                       ("mask", mask[i][None, :]))):
      ax = axes[3 * i + j, 0]
      bound = max(float(np.abs(array).max()), 1e-6)
      ax.imshow(array, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound,
                interpolation="nearest")
      ax.set_yticks([])
      ax.set_ylabel(name if i == 0 else "", rotation=0, ha="right", fontsize=7)
      if j < 2 or i < num - 1:
        ax.set_xticks([])
  axes[-1, 0].set_xlabel("time step")
  fig.suptitle(title)
  fig.savefig(out, dpi=100, bbox_inches="tight")
  plt.close(fig)


def main(argv=None) -> None:
  host.set_defaults()  # before jax starts a backend
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--name", required=True,
                      help=f"data set ({', '.join(data.NAMES)}) or task ({', '.join(tasks.NAMES)})")
  parser.add_argument("--data_dir", default=None, type=argtypes.existing_dir,
                      help="folder with the data files")
  parser.add_argument("--out", required=True, help="PNG file to write")
  parser.add_argument("--num", type=argtypes.positive_int, default=None,
                      help="number of examples (default 32 images or 4 sequences)")
  parser.add_argument("--seed", type=argtypes.nonnegative_int, default=0)
  parser.add_argument("--T", type=argtypes.positive_int, default=None, help="task length parameter")
  args = parser.parse_args(argv)
  if args.name in data.NAMES:
    split = "training"
    try:
      images = data.load(args.name, args.data_dir).train
    except data.MissingDataError:
      if args.name != "mnist":
        raise
      # Only the 10k test files are often at hand; they show the same kind of images.
      images, _ = data.mnist.load_split(args.data_dir, "test")
      split = "test"
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(images), size=min(args.num or 32, len(images)), replace=False)
    image_grid(images[np.sort(rows)], args.out, f"{args.name}: {split} examples")
  elif args.name in tasks.NAMES:
    kwargs = {} if args.T is None else {"T": args.T}
    task = tasks.make(args.name, **kwargs)
    batch = task.sample(jax.random.PRNGKey(args.seed), args.num or 4)
    sequence_plot(batch, args.out, f"{task.name}: inputs, targets, mask")
  else:
    parser.error(f"unknown --name {args.name!r}; valid: {', '.join(data.NAMES + tasks.NAMES)}")
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main(sys.argv[1:])
