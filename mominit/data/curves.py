"""CURVES: 28x28 images of smooth ink strokes, each fixed by three points (6 degrees of freedom).

The original data set (Hinton & Salakhutdinov 2006, made by Ruslan Salakhutdinov, distributed as
`digs3pts_1.mat` with variables `bdata` [20000, 784] and `bdatatest` [10000, 784]) is synthetic:
each image is a curve determined by three random points in the plane, drawn with ink into 28x28
pixels with intensities in [0, 1]. Only that much is stated in docs/paper.md and the papers we could
check; the exact recipe (the kind of curve through the points, the distribution of the points,
the stroke width and the ink profile) is not documented in any source we could read, so
`generate` here is a re-creation, not a copy:

- curve: the parabola (quadratic curve) through the three points in order: p0 at curve
  parameter s = 0, p1 at s = u, p2 at s = 1, with the chord-length choice
  u = |p1 - p0| / (|p1 - p0| + |p2 - p1|) (see `curve_points`). It is smooth, has exactly the 6
  degrees of freedom of the points, and passes through all three. Whether the original curve
  passes through its three points (a spline) or uses them as control points, we do not know.
- points: independent, uniform in [MARGIN, 28 - MARGIN]^2 (pixel units, x = column, y = row,
  pixel (r, c) covers [c, c + 1) x [r, r + 1)). The arc can bulge a little past the points and
  is clipped at the image border.
- ink: a stroke of width `INK_WIDTH` = 1 pixel with a one-pixel linear anti-aliasing ramp:
  intensity = clip(INK_WIDTH / 2 + 1/2 - d, 0, 1) = clip(1 - d, 0, 1), d = distance from the
  pixel centre to the arc: 1 on the arc, falling linearly to 0 one pixel away. (The arc is
  approximated by `NUM_SEGMENTS` straight segments; on 2,000 random curves the polyline stayed
  within 0.03 pixel of the arc, so intensities are within 0.03 of exact.)
- pixel order: row-major (C order). The .mat file comes from MATLAB, whose images are usually
  stored column-major, i.e. transposed; for a fully connected autoencoder that is irrelevant.

How the ink was set (generator version 3). The one statistic of the original we can infer is
its mean-image squared error (the error of outputting the mean training image, per case, sum
over pixels): Table 3's failed SI scales (1/4 and 1/2, nets that learned about nothing but the
mean) sit at 16, so `digs3pts_1.mat` has about 16 (`ORIGINAL_MEAN_IMAGE_ERROR`; an inference,
not a measurement: no source we could read states it). Version 2 drew a 1.5-pixel stroke and had
27.4-27.6, far more ink variance than the original. Since that error is nearly the ink's
sum of squares (the mean image is faint), it scales with the stroke's cross-section
integral of intensity^2, (w - 1) + 2/3 for width w >= 1 with this ramp; w = 1 gives 15.96 on
4,000 cases (seed 0), within 0.3% of 16. Measured on those cases (`statistics`): mean
intensity 0.033, 6.8% of pixels inked (> 0), 3.3% above 1/2, sum of intensities 26.2 per image.

Known differences that remain: only the total ink variance is matched to an inferred number.
The stroke width and intensity profile (here a 1-pixel stroke with a linear ramp), the fraction
of inked pixels and the distribution of curve shapes of the original are not documented, so
they may still differ; errors on the generated set are comparable in trend, and now roughly in
scale, not exactly in value, to numbers reported on `digs3pts_1.mat`. If `data_dir` holds that
file, `load` uses it instead.

Generated sets are cached as .npz files under `cache_dir()`: `$MOMINIT_CACHE` if set, else
`$XDG_CACHE_HOME/mominit`, else `~/.cache/mominit`.
"""
import os
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from mominit.data import _common
from mominit.data._common import DataError, Dataset

IMAGE_SIZE = 28
NUM_PARAMS = 6
MARGIN = 2.0  # Pixels kept free between the three points and the image border.
INK_WIDTH = 1.0  # Stroke width in pixels (version 2 had 1.5; see the module docstring).
U_MIN = 0.1  # Bounds the parameter of the middle point away from the ends.
NUM_SEGMENTS = 32  # Straight segments approximating the arc.
NUM_TRAIN = 20_000
NUM_TEST = 10_000
FILENAME = "digs3pts_1.mat"
CACHE_ENV = "MOMINIT_CACHE"
# Inferred from Table 3 (see the module docstring), not measured on the file.
ORIGINAL_MEAN_IMAGE_ERROR = 16.0
# Bump when the generator changes, so stale caches are not reused (3: 1-pixel stroke).
_VERSION = 3
_CHUNK = 500  # Images rendered per compiled call (bounds memory to ~200 MB).


def cache_dir(path=None) -> pathlib.Path:
  """The folder generated data sets are cached in.

  Args:
    path: explicit folder; wins over everything else.

  Returns:
    `path`, else `$MOMINIT_CACHE`, else `$XDG_CACHE_HOME/mominit`, else `~/.cache/mominit`.
  """
  if path is not None:
    return pathlib.Path(path).expanduser()
  if os.environ.get(CACHE_ENV):
    return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base).expanduser() / "mominit"


def sample_params(num: int, seed: int = 0) -> np.ndarray:
  """Draws curve parameters: three points uniform in the image minus a margin.

  Args:
    num: number of curves.
    seed: NumPy seed.

  Returns:
    [num, 6] float32 array (x0, y0, x1, y1, x2, y2) in pixel units (x = column, y = row).
  """
  if int(num) != num or num < 0:
    raise ValueError(f"num must be a non-negative integer, got {num!r}")
  rng = np.random.default_rng(seed)
  return rng.uniform(MARGIN, IMAGE_SIZE - MARGIN, size=(int(num), NUM_PARAMS)).astype(np.float32)


def curve_points(params, s):
  """Points on the arcs: the parabola through p0, p1, p2 with chord-length parameters.

  The parabola passes through p0 at s = 0, p1 at s = u and p2 at s = 1, where
  u = |p1 - p0| / (|p1 - p0| + |p2 - p1|) (clipped to [U_MIN, 1 - U_MIN]): chord-length
  parameterisation, the usual choice for a spline through given points, which rounds the turn
  when p1 is off to the side instead of making a sharp hairpin.

  Args:
    params: [N, 6] array (x0, y0, x1, y1, x2, y2), pixel units (NumPy or JAX).
    s: [K] curve parameters in [0, 1].

  Returns:
    [N, K, 2] array of (x, y) points, pixel units.
  """
  xp = jnp if isinstance(params, jax.Array) or isinstance(s, jax.Array) else np
  p0, p1, p2 = params[:, None, 0:2], params[:, None, 2:4], params[:, None, 4:6]
  d01 = xp.sqrt(xp.sum((p1 - p0) ** 2, axis=-1, keepdims=True))
  d12 = xp.sqrt(xp.sum((p2 - p1) ** 2, axis=-1, keepdims=True))
  total = d01 + d12
  u = xp.clip(d01 / xp.where(total > 0, total, 1.0), U_MIN, 1 - U_MIN)
  s = s[None, :, None]
  # Lagrange basis on the nodes (0, u, 1).
  l0 = (s - u) * (s - 1) / u
  l1 = s * (1 - s) / (u * (1 - u))
  l2 = s * (s - u) / (1 - u)
  return p0 * l0 + p1 * l1 + p2 * l2


def _pixel_centres():
  rows, cols = np.meshgrid(np.arange(IMAGE_SIZE), np.arange(IMAGE_SIZE), indexing="ij")
  return np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=-1).astype(np.float32)


@jax.jit
def _render_chunk(params):
  """[n, 6] float32 -> [n, 784] float32 images (see module docstring for the ink model)."""
  s = jnp.linspace(0.0, 1.0, NUM_SEGMENTS + 1, dtype=jnp.float32)
  # Coordinates relative to the image centre keep the expanded squares below small float32 error.
  centre = IMAGE_SIZE / 2
  points = curve_points(params, s) - centre  # [n, K + 1, 2]
  start, vec = points[:, :-1], points[:, 1:] - points[:, :-1]  # [n, K, 2]
  pix = jnp.asarray(_pixel_centres()) - centre  # [P, 2]
  # Squared distance from pixel g to segment a + h v, h in [0, 1], expanded into inner products
  # with augmented vectors, so the [n, P, K] work is two matmuls and a few elementwise ops:
  # |g - a|^2 = (g, |g|^2, 1) . (-2 a, 1, |a|^2) and (g - a) . v = (g, 1) . (v, -a . v).
  ones = jnp.ones(pix.shape[:1] + (1,), pix.dtype)
  pix_aug = jnp.concatenate([pix, jnp.sum(pix * pix, axis=-1, keepdims=True), ones], axis=-1)
  a_a = jnp.sum(start * start, axis=-1, keepdims=True)
  a_v = jnp.sum(start * vec, axis=-1, keepdims=True)
  start_aug = jnp.concatenate([-2 * start, jnp.ones_like(a_a), a_a], axis=-1)
  w_w = jnp.einsum("pd,nkd->npk", pix_aug, start_aug)
  w_v = jnp.einsum("pd,nkd->npk", pix_aug[:, (0, 1, 3)], jnp.concatenate([vec, -a_v], -1))
  v_v = jnp.sum(vec * vec, axis=-1)[:, None, :]
  # Closest point on each segment; a degenerate (zero-length) segment has w_v = 0, so h = 0:
  # its start point.
  h = jnp.clip(w_v / jnp.where(v_v > 0, v_v, 1.0), 0.0, 1.0)
  dist2 = w_w - h * (2 * w_v - h * v_v)
  dist = jnp.sqrt(jnp.maximum(jnp.min(dist2, axis=-1), 0.0))  # [n, P]
  return jnp.clip(INK_WIDTH / 2 + 0.5 - dist, 0.0, 1.0)


def render(params) -> np.ndarray:
  """Draws the curves given by `params` (see the module docstring for the model).

  Args:
    params: [N, 6] array (x0, y0, x1, y1, x2, y2) in pixel units, as from `sample_params`.

  Returns:
    [N, 784] float32 images, row-major 28x28, intensities in [0, 1].
  """
  params = np.asarray(params, np.float32)
  if params.ndim != 2 or params.shape[1] != NUM_PARAMS:
    raise ValueError(f"params must have shape [N, {NUM_PARAMS}], got {params.shape}")
  num = params.shape[0]
  out = np.empty((num, IMAGE_SIZE * IMAGE_SIZE), np.float32)
  # Fixed-size chunks (the last one padded) so there is one compilation for any N.
  for start in range(0, num, _CHUNK):
    chunk = params[start:start + _CHUNK]
    n = len(chunk)
    if n < _CHUNK:
      chunk = np.concatenate([chunk, np.zeros((_CHUNK - n, NUM_PARAMS), np.float32)])
    out[start:start + n] = np.asarray(_render_chunk(chunk))[:n]
  return out


def statistics(images) -> dict:
  """Pixel statistics of a CURVES-like set, to compare generated data with the original.

  Args:
    images: [N, 784] intensities in [0, 1].

  Returns:
    {"mean_image_error": mean over cases of sum_pixels (x - mean image)^2 (float64),
     "mean_intensity", "inked_fraction" (pixels > 0), "half_inked_fraction" (pixels > 1/2),
     "ink_per_image" (sum of intensities), "cases"}.
  """
  x = np.asarray(images, np.float64)
  return {"mean_image_error": float(np.mean(np.sum((x - x.mean(0)) ** 2, axis=1))),
          "mean_intensity": float(x.mean()), "inked_fraction": float(np.mean(x > 0)),
          "half_inked_fraction": float(np.mean(x > 0.5)),
          "ink_per_image": float(np.mean(x.sum(1))), "cases": int(x.shape[0])}


def _cache_path(num_train, num_test, seed, folder) -> pathlib.Path:
  return folder / f"curves_v{_VERSION}_train{num_train}_test{num_test}_seed{seed}.npz"


def _read_cache(path, num_train, num_test):
  try:
    with np.load(path) as f:
      arrays = {k: f[k] for k in ("train", "test", "train_params", "test_params")}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None  # Unreadable or incomplete: regenerate.
  shapes_ok = (arrays["train"].shape == (num_train, IMAGE_SIZE ** 2)
               and arrays["test"].shape == (num_test, IMAGE_SIZE ** 2)
               and arrays["train_params"].shape == (num_train, NUM_PARAMS)
               and arrays["test_params"].shape == (num_test, NUM_PARAMS))
  return arrays if shapes_ok else None


def generate(num_train: int = NUM_TRAIN, num_test: int = NUM_TEST, seed: int = 0, *,
             cache=True, cache_path=None, return_params: bool = False):
  """Generates (or reads from the cache) a CURVES-like data set.

  The first `num_train` of `num_train + num_test` parameter draws (NumPy seed `seed`) make the
  training set, the rest the test set. Deterministic for a given (num_train, num_test, seed).

  Args:
    num_train: number of training images.
    num_test: number of test images.
    seed: NumPy seed for the curve parameters.
    cache: read and write the .npz cache (False: always generate, write nothing).
    cache_path: cache folder; default `cache_dir()`.
    return_params: also return the [N, 6] parameters the images were drawn from.

  Returns:
    `Dataset(train [num_train, 784], test [num_test, 784])` float32 in [0, 1]; with
    `return_params`, the pair `(images, params)` where `params` is a `Dataset` of [N, 6] float32
    parameter arrays (see `sample_params`).
  """
  for name, value in (("num_train", num_train), ("num_test", num_test), ("seed", seed)):
    if not isinstance(value, (int, np.integer)) or value < 0:
      raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
  arrays = None
  if cache:
    folder = cache_dir(cache_path)
    path = _cache_path(num_train, num_test, seed, folder)
    if path.exists():
      arrays = _read_cache(path, num_train, num_test)
  if arrays is None:
    params = sample_params(num_train + num_test, seed)
    images = render(params)
    arrays = dict(train=images[:num_train], test=images[num_train:],
                  train_params=params[:num_train], test_params=params[num_train:])
    if cache:
      folder.mkdir(parents=True, exist_ok=True)
      # Write-then-rename so a crash or a concurrent reader never sees half a file.
      tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
      np.savez_compressed(tmp, **arrays)  # Mostly black pixels: about 10x smaller.
      os.replace(tmp, path)
  images = Dataset(arrays["train"], arrays["test"])
  if return_params:
    return images, Dataset(arrays["train_params"], arrays["test_params"])
  return images


def read_mat(path, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST) -> Dataset:
  """Reads the original `digs3pts_1.mat` (`bdata` [20000, 784], `bdatatest` [10000, 784]).

  Args:
    path: the .mat file.
    num_train: expected number of training cases (None: any).
    num_test: expected number of test cases (None: any).

  Returns:
    `Dataset` of float32 [N, 784] arrays.

  Raises:
    DataError: unreadable file, missing variables, wrong shapes or values outside [0, 1].
  """
  path = pathlib.Path(path)
  what = (f"'bdata' {num_train or 'N'} x 784 and 'bdatatest' {num_test or 'M'} x 784, "
          "CURVES images in [0, 1]")
  contents = _common.read_mat(path, ("bdata", "bdatatest"), what)
  out = []
  for name, count in (("bdata", num_train), ("bdatatest", num_test)):
    array = _common.check_matrix(contents[name], (count, IMAGE_SIZE ** 2), name, path, what)
    array = np.asarray(array, np.float32)
    if array.size and (array.min() < 0 or array.max() > 1):
      raise DataError(f"{path}: '{name}' has values in [{array.min()}, {array.max()}], "
                      f"expected [0, 1] ({what}).")
    out.append(array)
  return Dataset(*out)


def load(data_dir=None, *, seed: int = 0, cache_path=None) -> Dataset:
  """CURVES: `digs3pts_1.mat` from `data_dir` if it is there, else the generated set.

  Args:
    data_dir: folder that may hold `digs3pts_1.mat` (None: `$MOMINIT_DATA_DIR`, if set).
    seed: seed of the generated set (used only when the file is absent).
    cache_path: cache folder of the generated set; default `cache_dir()`.

  Returns:
    `Dataset(train [20000, 784], test [10000, 784])`, float32 in [0, 1].
  """
  folder = _common.resolve_data_dir(data_dir)
  if folder is not None and (folder / FILENAME).is_file():
    return read_mat(folder / FILENAME)
  return generate(NUM_TRAIN, NUM_TEST, seed, cache_path=cache_path)
