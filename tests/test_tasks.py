"""Tests of the RNN problems against their definitions (docs/paper.md section 5, Sutskever's code).

Ranges are hand-computed constants for the T used (e.g. T = 80: lengths [80, 88), first mark
[floor(0.8), floor(8)) = [0, 8), second mark [8, 40)); closed-form statistics are compared with
Monte Carlo estimates.
"""
import functools
import math

import chex
import jax
import numpy as np
import pytest

from mominit import tasks

KEY = jax.random.PRNGKey(0)


def _np(batch):
  return tuple(np.asarray(x, np.float64) for x in batch)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample(task, key, batch_size):
  return task.sample(key, batch_size)


def _draw(task, key, batch_size):
  """One compiled call, cached per (task, batch_size): tasks are hashable."""
  return _np(_sample(task, key, batch_size))


def _last_step(mask):
  """Index of the single masked step of each row (checks there is exactly one)."""
  assert np.all(mask.sum(axis=1) == 1)
  assert set(np.unique(mask)) <= {0.0, 1.0}
  return mask.argmax(axis=1)


# (T, length range, first-mark range, second-mark range), half-open, by hand.
_ARITH_RANGES = {80: ((80, 88), (0, 8), (8, 40)), 200: ((200, 220), (2, 20), (20, 100))}


@pytest.mark.parametrize("op,t,center", [("add", 80, False), ("mul", 200, True)])
def test_arithmetic_matches_definition(op, t, center):
  (len_lo, len_hi), (a_lo, a_hi), (b_lo, b_hi) = _ARITH_RANGES[t]
  task = tasks.Arithmetic(op, t, center)
  x, y, m = _draw(task, KEY, 3000)
  num, steps = x.shape[:2]
  assert x.shape == (num, len_hi - 1, 2) and y.shape == (num, len_hi - 1, 1)
  assert task.max_len == len_hi - 1
  last = _last_step(m)
  length = last + 1
  assert set(length) == set(range(len_lo, len_hi))  # every length in [T, 1.1T), no other
  step = np.arange(steps)[None, :]
  valid = step < length[:, None]
  assert np.all(x[~valid] == 0) and np.all(y[~valid] == 0)

  value = x[..., 0] + (0.5 if center else 0.0)
  assert np.all((value[valid] >= 0) & (value[valid] <= 1))
  marker = x[..., 1]
  plus = marker == 1
  assert np.all(plus.sum(axis=1) == 2)
  first = plus.argmax(axis=1)
  second = steps - 1 - plus[:, ::-1].argmax(axis=1)
  assert set(first) == set(range(a_lo, a_hi))
  assert set(second) == set(range(b_lo, b_hi))
  # -1 at step 0 (unless the first mark is there, as in Sutskever's code) and at L-3.
  minus_expected = (step == length[:, None] - 3) | ((step == 0) & (first[:, None] != 0))
  np.testing.assert_array_equal(marker == -1, minus_expected)
  assert np.all(marker[~(plus | minus_expected)] == 0)

  rows = np.arange(num)
  a, b = value[rows, first], value[rows, second]
  expected = a + b if op == "add" else a * b
  shift = {"add": 1.0, "mul": 0.25}[op] if center else 0.0
  np.testing.assert_allclose(y[rows, last, 0] + shift, expected, atol=1e-6)
  assert np.all(y[m == 0] == 0)


def test_arithmetic_centring_statistics():
  # Closed forms: U[0, 1] values have mean 1/2; E[a + b] = 1 (E[a b] = 1/4 is checked through
  # the multiplication baseline below, whose loss is Var(a b) only if the mean is right).
  op, mean = "add", 1.0
  raw = tasks.Arithmetic(op, 80, center=False)
  x, y, m = _draw(raw, jax.random.PRNGKey(1), 10000)
  valid = np.cumsum(m[:, ::-1], axis=1)[:, ::-1] > 0  # steps up to the last one
  values = x[..., 0][valid]
  assert abs(values.mean() - 0.5) < 4 * math.sqrt(1 / 12 / values.size)
  targets = y[..., 0][m == 1]
  assert abs(targets.mean() - mean) < 4 * targets.std() / math.sqrt(targets.size)
  np.testing.assert_allclose(raw.output_bias, [mean])
  centred = tasks.Arithmetic(op, 80, center=True)
  np.testing.assert_allclose(centred.output_bias, [0.0])
  xc, yc, mc = _draw(centred, jax.random.PRNGKey(1), 10000)
  # Centring only shifts: same sequences, values - 1/2, targets - mean.
  np.testing.assert_allclose(xc[..., 0][valid], values - 0.5, atol=1e-6)
  np.testing.assert_allclose(yc[..., 0][mc == 1], targets - mean, atol=1e-6)


def test_arithmetic_biases_baseline_closed_form():
  # Best constant for squared error = the mean; tolerance 0.04.
  # Addition: a + b has the triangular density on [0, 2], so
  # P(|a + b - 1| <= d) = 1 - (1 - d)^2 and Var(a + b) = 1/6.
  d = tasks.REAL_TOLERANCE
  add = tasks.biases_baseline(tasks.addition(80), jax.random.PRNGKey(2), 20000)
  assert abs(add.zero_one - (1 - d) ** 2) < 0.01
  assert abs(add.loss - 1 / 6) < 0.005
  # Multiplication: P(ab <= z) = z - z ln z; Var(ab) = 1/9 - 1/16 = 7/144.
  cdf = lambda z: z - z * math.log(z)
  # (Uncentred here, so the baseline predicts output_bias = 1/4 on the raw scale.)
  mul = tasks.biases_baseline(tasks.multiplication(80, center=False), jax.random.PRNGKey(3),
                              20000)
  assert abs(mul.zero_one - (1 - (cdf(0.25 + d) - cdf(0.25 - d)))) < 0.01
  assert abs(mul.loss - 7 / 144) < 0.002


@pytest.mark.parametrize("maker,n,k,t", [(tasks.mem5, 5, 2, 200), (tasks.mem20, 10, 5, 80)])
def test_memorization_matches_definition(maker, n, k, t):
  task = maker()
  assert (task.num_chars, task.char_size, task.T) == (n, k, t)
  assert (task.num_inputs, task.num_outputs, task.max_len) == (k + 2, k + 1, t)
  x, y, m = _draw(task, KEY, 256)
  assert x.shape == (256, t, k + 2) and y.shape == (256, t, k + 1)
  assert np.all(x.sum(-1) == 1) and np.all(y.sum(-1) == 1)  # one-hot everywhere
  assert np.all(m == 1)  # every step is scored
  shown, wanted = x.argmax(-1), y.argmax(-1)
  chars = shown[:, :n]
  assert chars.max() < k and set(np.unique(chars)) == set(range(k))
  trigger, blank_in, blank_out = k, k + 1, k
  assert np.all(shown[:, t - n - 1] == trigger)  # trigger right before the recall steps
  assert np.all(shown[:, n:t - n - 1] == blank_in) and np.all(shown[:, t - n:] == blank_in)
  np.testing.assert_array_equal(wanted[:, t - n:], chars)  # recall the string, in order
  assert np.all(wanted[:, :t - n] == blank_out)


def test_mem5_batch_of_32_holds_every_string():
  task = tasks.mem5(enumerate_all=True)
  x, _, _ = _draw(task, KEY, 32)
  strings = {tuple(s) for s in x[:, :5].argmax(-1)}
  assert strings == {tuple(int(c) for c in f"{i:05b}") for i in range(32)}
  with pytest.raises(ValueError, match="multiple of"):
    task.sample(KEY, 33)


def test_xor_matches_definition():
  # T = 80: lengths [80, 88), first mark [floor(1.6), 16) = [1, 16), second [24, 40).
  task = tasks.xor(80, center=True)
  x, y, m = _draw(task, KEY, 3000)
  last = _last_step(m)
  length = last + 1
  assert set(length) == set(range(80, 88))
  bits = x[..., 0] + 0.5
  valid = np.arange(x.shape[1])[None, :] < length[:, None]
  assert set(np.unique(bits[valid])) == {0.0, 1.0}
  plus = x[..., 1] == 1
  assert np.all(plus.sum(1) == 2)
  first = plus.argmax(1)
  second = x.shape[1] - 1 - plus[:, ::-1].argmax(1)
  assert set(first) == set(range(1, 16)) and set(second) == set(range(24, 40))
  rows = np.arange(len(x))
  assert np.all(x[rows, length - 3, 1] == -1) and np.all(x[:, 0, 1] == -1)
  label = np.logical_xor(bits[rows, first], bits[rows, second]).astype(int)
  np.testing.assert_array_equal(y[rows, last].argmax(-1), label)
  assert np.all(y[rows, last].sum(-1) == 1) and np.all(y[m == 0] == 0)


# Inclusive position ranges for T = 80 by hand: f(1)=0, f(10)=8, f(30)=24, f(40)=32, f(50)=40,
# f(60)=48.
@pytest.mark.parametrize("n,ranges", [(2, ((0, 8), (32, 40))), (3, ((0, 8), (24, 32), (40, 48)))])
def test_temporal_order_matches_definition(n, ranges):
  task = tasks.temporal_order(80, n)
  assert (task.num_inputs, task.num_outputs) == (8, 2 ** n)
  x, y, m = _draw(task, KEY, 3000)
  last = _last_step(m)
  length = last + 1
  assert set(length) == set(range(80, 88))
  step = np.arange(x.shape[1])[None, :]
  valid = step < length[:, None]
  assert np.all(x.sum(-1) == valid)  # one-hot on valid steps, zero padding
  sym = np.where(valid, x.argmax(-1), -1)
  rows = np.arange(len(x))
  assert np.all(sym[rows, last] == 6) and np.sum(sym == 6) == len(x)  # trigger at L-1 only
  relevant = (sym == 4) | (sym == 5)
  assert np.all(relevant.sum(1) == n)
  positions = np.sort(np.nonzero(relevant)[1].reshape(len(x), n), axis=1)
  for i, (lo, hi) in enumerate(ranges):
    assert set(positions[:, i]) == set(range(lo, hi + 1))
  # The start symbol is at step 0 unless the first relevant symbol took that step.
  np.testing.assert_array_equal(sym[:, 0] == 7, positions[:, 0] != 0)
  assert np.sum(sym == 7) == np.sum(positions[:, 0] != 0)
  others = valid & ~relevant & (sym != 6) & (sym != 7)
  assert set(np.unique(sym[others])) == {0, 1, 2, 3}
  bits = (sym[rows[:, None], positions] == 5).astype(int)  # Y = 1, in order of appearance
  label = bits @ (2 ** np.arange(n - 1, -1, -1))
  np.testing.assert_array_equal(y[rows, last].argmax(-1), label)
  assert set(label) == set(range(2 ** n))


@pytest.mark.parametrize("predict_all", [False, True])
def test_random_permutation_matches_definition(predict_all):
  task = tasks.random_permutation(80, 100, predict_all)
  x, y, m = _draw(task, KEY, 500)
  assert x.shape == y.shape == (500, 80, 100)
  shown, wanted = x.argmax(-1), y.argmax(-1)
  assert set(np.unique(shown[:, 0])) == {0, 1}
  assert shown[:, 1:].min() == 2 and shown[:, 1:].max() == 99
  np.testing.assert_array_equal(wanted[:, :-1], shown[:, 1:])  # predict the next symbol
  np.testing.assert_array_equal(wanted[:, -1], shown[:, 0])  # then recall the first
  expected_mask = np.ones((500, 80)) if predict_all else np.eye(80)[[-1] * 500]
  np.testing.assert_array_equal(m, expected_mask)


def _all_tasks():
  return [tasks.make(name, **({"num_chars": 3, "char_size": 3, "T": 20}
                              if name == "memorization" else {})) for name in tasks.NAMES]


@pytest.mark.parametrize("task", _all_tasks(), ids=lambda t: t.name)
def test_same_key_same_batch_other_key_other_batch(task):
  a, b, c = (_draw(task, jax.random.PRNGKey(seed), 8) for seed in (5, 5, 6))
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u, v)
  assert not np.array_equal(a[0], c[0])
  assert a[0].shape == (8, task.max_len, task.num_inputs)
  assert a[1].shape == (8, task.max_len, task.num_outputs)
  assert a[2].shape == (8, task.max_len)
  assert task.output_bias.shape == (task.num_outputs,)
  assert task.readout in ("linear", "softmax")
  assert task.input_scale in (0.001, 0.1)


def test_sample_jits_once_and_vmaps():
  task = tasks.make("temporal_order", T=30)
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def draw(key):
    return task.sample(key, 4)

  keys = jax.random.split(KEY, 3)
  one_by_one = [draw(k) for k in keys]  # three keys, one trace
  stacked = jax.vmap(draw)(keys)
  for i, batch in enumerate(one_by_one):
    for u, v in zip(batch, stacked):
      np.testing.assert_array_equal(u, v[i])


@pytest.mark.parametrize("task", [tasks.mem5(), tasks.mem20(), tasks.xor(),
                                  tasks.temporal_order(80, 3), tasks.random_permutation(),
                                  tasks.random_permutation(40, 10, predict_all=True)],
                         ids=lambda t: t.name)
def test_symbol_frequencies_match_closed_form(task):
  num = 400 if task.num_outputs > 50 else 2000  # keep the one-hot arrays small
  _, y, m = _draw(task, jax.random.PRNGKey(7), num)
  freq = (y * m[..., None]).sum((0, 1)) / m.sum()
  # Five standard errors, counting whole sequences as the independent units.
  tol = 5 * np.sqrt(task.target_mean * (1 - task.target_mean) / len(y)) + 1e-12
  assert np.all(np.abs(freq - task.target_mean) <= tol)
  assert abs(task.target_mean.sum() - 1) < 1e-12
  # The output bias is log-frequency: its softmax is the frequency where none is zero.
  if np.all(task.target_mean > 0):
    bias = task.output_bias
    np.testing.assert_allclose(np.exp(bias) / np.exp(bias).sum(), task.target_mean, rtol=1e-9)


def test_memorization_closed_forms():
  mem5 = tasks.mem5()
  # 195 blanks and 5 characters (2 equally likely symbols) among 200 outputs.
  np.testing.assert_allclose(mem5.target_mean, [5 / 400, 5 / 400, 195 / 200])
  base = tasks.biases_baseline(mem5, num_samples=200)
  assert base.zero_one == pytest.approx(5 / 200)  # always "blank"
  entropy = -(195 / 200 * math.log(195 / 200) + 5 / 200 * math.log(5 / 400))
  assert base.loss == pytest.approx(entropy, rel=1e-9)


def _fit_output_biases(task, batch_size, steps=150, lr=2.0):
  """Output biases fitted by gradient descent on the masked cross-entropy of fresh batches: a
  net whose outputs are its biases alone (no memory), trained as the engine would train it."""
  from mominit import losses  # pylint: disable=import-outside-toplevel

  def loss(b, key):
    batch = task.sample(key, batch_size)
    logits = jax.numpy.broadcast_to(b, batch.targets.shape)
    return losses.masked_softmax_cross_entropy(logits, batch.targets, batch.mask)

  grad = jax.jit(jax.grad(loss))
  b = jax.numpy.zeros(task.num_outputs)
  for i in range(steps):
    b = b - lr * grad(b, jax.random.fold_in(KEY, i))
  return b


@pytest.mark.parametrize("task,batch_size,expected,tol", [
    (tasks.mem5(recall_only=True, enumerate_all=True), 32 * 32, 2.5, 1e-12),  # every string
    (tasks.mem20(recall_only=True), 4096, 8.0, 0.1),  # Binomial(10, 4/5): sd 0.02 over 4096
])
def test_biases_only_model_scores_table5_biases_column(task, batch_size, expected, tol):
  """Table 5's biases column (2.5 for mem-5, 8.0 for mem-20) is what fitted output biases score
  when targets and error cover only the recall steps, counted as wrong steps per sequence."""
  from mominit import losses  # pylint: disable=import-outside-toplevel
  b = np.asarray(_fit_output_biases(task, 256))
  assert np.argmax(b) < task.char_size  # a character, never the blank (no blank targets)
  batch = tasks.Batch(*_np(task.sample(jax.random.PRNGKey(77), batch_size)))
  wrong = (np.argmax(b) != batch.targets.argmax(-1)) * batch.mask
  per_sequence = wrong.sum(1).mean()
  assert abs(per_sequence - expected) <= tol
  # Our zero-one fraction times the scored steps per sequence is that unit.
  fraction = float(losses.symbol_zero_one(jax.numpy.broadcast_to(b, batch.targets.shape),
                                          batch.targets, batch.mask))
  assert fraction * task.scored_steps == pytest.approx(per_sequence, rel=1e-6)
  assert task.scored_steps == task.num_chars
  np.testing.assert_array_equal(batch.mask.sum(1), task.num_chars)
  # The constant-output baseline of the module agrees.
  base = tasks.biases_baseline(task, num_samples=batch_size)
  assert abs(base.zero_one * task.num_chars - expected) <= max(tol, 1e-9) + 0.05


def test_every_step_memorization_biases_are_blank():
  """With every step scored, fitted biases output the blank and miss every recall step."""
  task = tasks.mem5(T=20, enumerate_all=True)
  b = np.asarray(_fit_output_biases(task, 64))
  assert np.argmax(b) == task.char_size  # the blank
  batch = tasks.Batch(*_np(task.sample(KEY, 32)))
  wrong = (np.argmax(b) != batch.targets.argmax(-1))[:, -task.num_chars:]
  assert wrong.all()


def test_symbol_biases_baselines():
  temporal = tasks.biases_baseline(tasks.temporal_order(80, 2), jax.random.PRNGKey(8), 8000)
  assert temporal.loss == pytest.approx(math.log(4), rel=1e-9)
  assert abs(temporal.zero_one - 0.75) < 0.02
  xor = tasks.biases_baseline(tasks.xor(80), jax.random.PRNGKey(9), 8000)
  assert xor.loss == pytest.approx(math.log(2), rel=1e-9) and abs(xor.zero_one - 0.5) < 0.02
  perm = tasks.random_permutation()
  np.testing.assert_allclose(perm.output_bias[:2], math.log(0.5))
  np.testing.assert_allclose(perm.output_bias[2:], math.log(1e-4))
  assert tasks.biases_baseline(perm, num_samples=100).loss == pytest.approx(math.log(2))


def test_make_and_errors():
  assert tasks.make("mem5") == tasks.Memorization(5, 2, 200)
  assert tasks.make("mem20") == tasks.Memorization(10, 5, 80)
  assert tasks.make("addition", T=100, center=False) == tasks.Arithmetic("add", 100, False)
  assert tasks.make("mem5", center=True) == tasks.mem5()  # centring: a no-op for one-hot tasks
  with pytest.raises(ValueError, match="addition.*mem5.*random_permutation"):
    tasks.make("nope")
  with pytest.raises(ValueError, match="bad arguments"):
    tasks.make("addition", bogus=1)
  with pytest.raises(ValueError, match="T"):
    tasks.addition(5)
  with pytest.raises(ValueError, match="T"):
    tasks.memorization(5, 2, 10)  # needs 5 characters, a blank, the trigger, 5 recall steps
  with pytest.raises(ValueError, match="num_symbols"):
    tasks.temporal_order(80, 4)
  with pytest.raises(ValueError, match="op"):
    tasks.Arithmetic("div")
  for bad in (0, 2.5, True):
    with pytest.raises(ValueError, match="batch_size"):
      tasks.addition().sample(KEY, bad)


def test_float64_under_x64(x64):
  del x64
  batch = _sample(tasks.addition(), KEY, 2)
  assert all(x.dtype == np.float64 for x in batch)


def test_show_data_draws_sequences(tmp_path):
  import matplotlib.image  # pylint: disable=import-outside-toplevel
  from experiments import show_data  # pylint: disable=import-outside-toplevel
  out = tmp_path / "mem5.png"
  show_data.main(["--name", "mem5", "--num", "2", "--out", str(out)])
  image = matplotlib.image.imread(out)
  assert image.shape[0] > 200 and image.shape[1] > 200
  assert image[..., :3].std() > 0.05  # not a blank canvas
