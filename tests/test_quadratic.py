"""Tests of mominit.quadratic and experiments.quadratic: hand-computed steps, a NumPy reference of
GD / CM / NAG, the float64 check of the paper's Theorem 2.1, and the oblong-quadratic figure."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mominit import quadratic
from mominit import schedules


def test_effective_momentum_closed_form():
  np.testing.assert_allclose(quadratic.effective_momentum(0.9, 0.5, 1.0), 0.45, rtol=1e-7)
  np.testing.assert_allclose(
      quadratic.effective_momentum(0.99, 0.1, jnp.array([0.0, 1.0, 10.0, 20.0])),
      [0.99, 0.891, 0.0, -0.99], rtol=1e-6, atol=1e-7)


def test_one_nag_step_is_a_cm_step_with_effective_momentum_by_hand(x64):
  # 1-D quadratic lambda = 2, minimiser 0, eps = 0.1, mu = 0.9. Two updates from theta_0 = 1:
  # t = 0 (v_0 = 0): v_1 = -0.1 * 2 * 1 = -0.2, theta_1 = 0.8 (CM and NAG agree).
  # t = 1, NAG: v_2 = 0.9 * -0.2 - 0.1 * 2 * (0.8 - 0.18) = -0.18 - 0.124 = -0.304, theta_2 = 0.496.
  # CM with mu (1 - 2 * 0.1) = 0.72: v_2 = 0.72 * -0.2 - 0.1 * 2 * 0.8 = -0.144 - 0.16 = -0.304.
  quad = quadratic.from_eigenvalues([2.0])
  thetas, velocities = quadratic.trajectory(quad, [1.0], 0.1, 0.9, 1.0, 2)
  np.testing.assert_allclose(thetas[:, 0], [1.0, 0.8, 0.496], rtol=1e-14)
  np.testing.assert_allclose(velocities[:, 0], [0.0, -0.2, -0.304], rtol=1e-14)
  ys, vs = quadratic.cm_eigenbasis(quad, [1.0], 0.1, quadratic.effective_momentum(0.9, 0.1, 2.0),
                                   2)
  np.testing.assert_allclose(ys[:, 0], [1.0, 0.8, 0.496], rtol=1e-14)
  np.testing.assert_allclose(vs[:, 0], [0.0, -0.2, -0.304], rtol=1e-14)


def _numpy_paper_rule(a, c, x0, eps, mu, nesterov, steps):
  theta, v = np.array(x0, np.float64), np.zeros(len(x0))
  out = [theta]
  for _ in range(steps):
    v = mu * v - eps * (a @ ((theta + mu * v if nesterov else theta) - c))
    theta = theta + v
    out.append(theta)
  return np.stack(out)


@pytest.mark.parametrize("method", ["gd", "cm", "nag"])
def test_trajectory_matches_numpy_reference(x64, method):
  rng = np.random.default_rng(4)
  a = rng.standard_normal((4, 4))
  a = a @ a.T / 4 + 0.05 * np.eye(4)
  c, x0 = rng.standard_normal(4), rng.standard_normal(4)
  eps = 0.5 / np.linalg.eigvalsh(a).max()
  mu, n = {"gd": (0.0, 0.0), "cm": (0.9, 0.0), "nag": (0.9, 1.0)}[method]
  quad = quadratic.from_matrix(a, center=c)
  np.testing.assert_allclose(quad.matrix, a, rtol=1e-15)
  np.testing.assert_allclose(quadratic.grad(quad, jnp.asarray(x0)), a @ (x0 - c), rtol=1e-12)
  np.testing.assert_allclose(quadratic.value(quad, jnp.asarray(x0)),
                             0.5 * (x0 - c) @ a @ (x0 - c), rtol=1e-12)
  thetas, _ = quadratic.trajectory(quad, x0, eps, mu, n, 100)
  np.testing.assert_allclose(thetas, _numpy_paper_rule(a, c, x0, eps, mu, n == 1.0, 100),
                             rtol=1e-11, atol=1e-12)


def test_theorem_check_holds_to_float64_rounding():
  assert not jax.config.jax_enable_x64
  check = quadratic.theorem_check(num_steps=300)
  assert not jax.config.jax_enable_x64  # The x64 switch is local to the check.
  assert check["dtype"] == "float64" and check["num_steps"] == 300
  assert check["max_rel_diff"] < 1e-13 and check["max_abs_diff_velocity"] < 1e-13 * check["scale"]
  # NAG is not CM with the same mu: the difference grows with eps * lambda.
  np.testing.assert_allclose(check["eps_lambda"], [1e-3, 1e-2, 0.1, 0.5, 1.0, 1.3], rtol=1e-12)
  np.testing.assert_allclose(check["effective_momentum"],
                             0.9 * (1 - np.array(check["eps_lambda"])), rtol=1e-12)
  plain = np.array(check["plain_cm_max_abs_diff_per_direction"])
  assert plain[0] < 0.1 * plain[-1] and plain[-1] > 1.0
  assert plain.min() > 1e6 * check["max_abs_diff"]


def test_theorem_check_with_schedules():
  steps = 400
  check = quadratic.theorem_check(
      eigenvalues=np.geomspace(1e-3, 1.2, 8),
      learning_rate=optax.piecewise_constant_schedule(1.0, {150: 0.3}),
      momentum=schedules.final_phase(schedules.sutskever_momentum(0.995, period=10), steps, 50),
      num_steps=steps, seed=3)
  assert check["max_rel_diff"] < 1e-13
  assert check["plain_cm_max_abs_diff"] > 1e-2


def test_quadratic_construction():
  quad = quadratic.from_eigenvalues([3.0, 1.0, 2.0], key=jax.random.key(0))
  u = np.asarray(quad.eigenvectors)
  np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-6)
  np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(quad.matrix)), [1.0, 2.0, 3.0],
                             rtol=1e-5)
  np.testing.assert_allclose(quad.eigenvalues, [1.0, 2.0, 3.0])
  with pytest.raises(ValueError):
    quadratic.from_eigenvalues([1.0, -0.5])
  with pytest.raises(ValueError):
    quadratic.from_eigenvalues([[1.0]])
  with pytest.raises(ValueError):
    quadratic.from_matrix([[1.0, 2.0], [0.0, 1.0]])
  with pytest.raises(ValueError):
    quadratic.from_matrix([[1.0, 0.0], [0.0, -1.0]])


def test_sign_changes_by_hand():
  path = np.array([[0, 1.0], [0, -1.0], [0, 0.001], [0, -0.002], [0, 2.0], [0, 0.0], [0, -3.0]])
  # Signs +, -, +, -, +, (0 skipped), -: 5 changes; beyond 0.01 only +, -, +, -: 3.
  assert quadratic.sign_changes(path) == 5
  assert quadratic.sign_changes(path, tol=0.01) == 3
  assert quadratic.sign_changes(path, axis=0) == 0


def test_oblong_cm_oscillates_along_the_steep_axis_nag_does_not():
  paths = quadratic.oblong_trajectories()
  counts = {k: quadratic.sign_changes(p, axis=1, tol=0.01) for k, p in paths.items()}
  assert counts["gd"] == 0 and counts["nag"] <= 2 and counts["cm"] >= 10
  # Along the shallow axis both momentum methods get much further than GD (from x = -10).
  assert abs(paths["cm"][-1, 0]) < 0.2 * abs(paths["gd"][-1, 0])
  assert abs(paths["nag"][-1, 0]) < 0.2 * abs(paths["gd"][-1, 0])


def test_experiment_cli_writes_figure_and_check(tmp_path):
  from experiments import quadratic as experiment  # pylint: disable=import-outside-toplevel
  experiment.main(["--workdir", str(tmp_path), "--theorem_steps", "100"])
  png = (tmp_path / "quadratic.png").read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
  results = json.loads((tmp_path / "theorem_check.json").read_text())
  assert results["theorem"]["max_rel_diff"] < 1e-13
  assert results["theorem_scheduled"]["max_rel_diff"] < 1e-13
  assert results["oscillations"]["cm"] >= 10 >= 2 >= results["oscillations"]["nag"]
