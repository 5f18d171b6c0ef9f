"""The parity rules of ``parity.compare`` on hand-made arrays: what passes, what fails, and what a
failure says. (The rules on real runs are in ``tests/parity/test_experiments.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

from parity import compare


def _by_name(checks: list[compare.Check]) -> dict[str, compare.Check]:
    return {check.quantity.split(" ", 1)[1]: check for check in checks}


def test_float32_gradients_are_judged_against_float64_not_against_each_other():
    """Two float32 sums of many terms, each 3-4e-5 from the exact value on opposite sides: 7e-5
    apart, which a fixed 1e-5 tolerance between them would fail, yet JAX is as close to the
    truth as torch is."""
    truth = {"w": np.array([1.0, -0.5]), "b": np.array([0.25])}
    torch32 = {"w": np.array([1.0 + 3e-5, -0.5]), "b": np.array([0.25])}
    jax32 = {"w": np.array([1.0 - 4e-5, -0.5]), "b": np.array([0.25])}
    checks = _by_name(compare.float32_gradients(jax32, torch32, truth))
    assert all(check.passed for check in checks.values())
    w = checks["w"]
    assert w.quantity == "grad w"
    assert w.max_abs_diff == pytest.approx(4e-5)
    assert w.bound == pytest.approx(10 * 3e-5 + 1e-6 * 1.0)
    # Ten times torch's error is the limit.
    jax32["w"] = np.array([1.0 - 3.2e-4, -0.5])
    assert not _by_name(compare.float32_gradients(jax32, torch32, truth))["w"].passed


def test_the_floor_covers_an_exact_zero_gradient_over_all_parameters():
    """A bias whose exact gradient is 0, which torch happens to get exactly: JAX's rounding
    noise is judged against the largest gradient of any parameter, not the bias's own 0."""
    truth = {"kernel": np.array([[0.5, -0.25]]), "bias": np.zeros(2)}
    torch32 = {"kernel": np.array([[0.5, -0.25]]), "bias": np.zeros(2)}
    jax32 = {"kernel": np.array([[0.5, -0.25]]), "bias": np.array([3e-8, -1e-7])}
    (bias, kernel) = compare.float32_gradients(jax32, torch32, truth)
    assert bias.quantity == "grad bias" and bias.passed and kernel.passed
    assert bias.bound == pytest.approx(1e-6 * 0.5)
    (bias_no_floor, _) = compare.float32_values(jax32, torch32, truth, label="grad", floor=0.0)
    assert not bias_no_floor.passed
    # Noise of a few float32 ulps of the largest gradient passes; a real error does not.
    jax32["bias"] = np.array([3e-8, -1e-6])
    assert not compare.float32_gradients(jax32, torch32, truth)[0].passed


def test_a_float32_failure_names_the_parameter_index_and_all_three_values():
    truth = {"fc": {"kernel": np.array([[1.0, 2.0], [3.0, 4.0]])}}
    torch32 = {"fc": {"kernel": np.array([[1.0, 2.0], [3.0, 4.0 + 1e-6]])}}
    jax32 = {"fc": {"kernel": np.array([[1.0, 2.0], [3.5, 4.0]])}}
    (check,) = compare.float32_gradients(jax32, torch32, truth)
    assert not check.passed
    assert check.quantity == "grad fc.kernel"
    assert check.detail.startswith(
        "grad fc.kernel breaks the rule at index (1, 0): jax 3.5, torch 3.0, float64 3.0"
    )
    assert "10*1e-06" in check.rule


def test_nan_fails_and_is_reported_first():
    truth = {"w": np.array([1.0, 2.0, 3.0])}
    jax = {"w": np.array([1.0, np.nan, 300.0])}
    for check in (
        compare.float32_gradients(jax, truth, truth)[0],
        compare.float64_gradients(jax, truth)[0],
    ):
        assert not check.passed
        assert "at index (1,)" in check.detail


def test_float64_rule_is_relative_per_parameter_with_an_all_parameter_floor():
    torch64 = {"w": np.array([2.0, -1.0]), "b": np.array([1e-17])}
    exact_enough = {"w": np.array([2.0 + 1e-12, -1.0]), "b": np.array([-1e-15])}
    checks = _by_name(compare.float64_gradients(exact_enough, torch64))
    assert checks["w"].passed and checks["b"].passed
    assert checks["b"].bound == pytest.approx(1e-12 * 1e-17 + 1e-12 * 2.0)
    off = {"w": np.array([2.0, -1.0 + 1e-10]), "b": np.array([1e-17])}
    failed = _by_name(compare.float64_gradients(off, torch64))["w"]
    assert not failed.passed and "jax -0.9999999999" in failed.detail
    (no_floor, _) = compare.float64_values(exact_enough, torch64, floor=0.0)
    assert no_floor.quantity == "value b" and not no_floor.passed


def test_mismatched_names_or_shapes_raise():
    with pytest.raises(ValueError, match="grad trees differ: jax \\['a'\\] vs torch \\['b'\\]"):
        compare.float64_gradients({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="grad trees differ: jax .* vs float64"):
        compare.float32_gradients({"a": 1.0}, {"a": 1.0}, {"a": 1.0, "c": 0.0})
    with pytest.raises(ValueError, match="value w: shapes differ"):
        compare.float32_values({"w": np.ones(2)}, {"w": np.ones(2)}, {"w": np.ones(3)})


def test_differences_are_between_the_two_frameworks_in_one_dtype():
    absolute, relative = compare.differences(
        {"w": np.array([1.0, 2.5]), "z": np.array([1e-9]), "n": np.array([np.nan])},
        {"w": np.array([1.0, 2.0]), "z": np.array([0.0]), "n": np.array([1.0])},
    )
    assert absolute["w"] == 0.5 and relative["w"] == 0.25
    assert absolute["z"] == relative["z"] == 1e-9  # torch's all-zero: the absolute figure
    assert np.isnan(absolute["n"]) and np.isnan(relative["n"])


@pytest.mark.parametrize(
    "values",
    [
        [1.0, -3.0, 2.0],
        [-0.5, np.nan, -2.0],
        [np.nan, np.nan],
        [],
        [np.inf, 1.0],
        [-np.inf, np.nan],
        [3, -7, 5],
    ],
)
@pytest.mark.parametrize("dtype", [None, np.float32])
def test_the_scale_is_max_abs_skipping_nan(values, dtype):
    a = np.asarray(values, dtype=dtype)
    kept = np.abs(a[~np.isnan(a)]) if a.dtype.kind == "f" else np.abs(a)
    expected = float(np.max(kept)) if kept.size else 0.0
    assert compare._max_abs(a) == expected
