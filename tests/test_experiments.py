"""The ported experiments on their own: exact math, determinism, and errors before compiling."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.experiments import cnn, linear_regression, mlp

SMALL = {"batch_size": 6, "d_in": 12, "hidden": 5, "d_out": 3}


def test_linear_regression_is_the_tutorials_arithmetic():
    w, dataset = linear_regression.init(dtype=jnp.float64)
    xs, ys = dataset.train
    w_final, losses, grads = linear_regression.trajectory(w, xs, ys, epochs=4)
    w_np, expected_losses, expected_grads = 1.0, [], []
    for _ in range(4):
        for x, y in zip([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], strict=True):
            expected_losses.append((x * w_np - y) ** 2)
            expected_grads.append(2 * x * (x * w_np - y))
            w_np -= 0.01 * expected_grads[-1]
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-14)
    np.testing.assert_allclose(grads[:, 0], expected_grads, rtol=1e-14)
    np.testing.assert_allclose(w_final, [w_np], rtol=1e-14)
    assert losses.shape == (12,)


def test_mlp_matches_a_python_loop_of_sgd_steps():
    params, dataset = mlp.init(jax.random.key(0), dtype=jnp.float64, **SMALL)
    X, y = dataset.train
    final, losses = mlp.train(params, X, y, steps=3, learning_rate=1e-3)
    W1, W2 = np.asarray(params["W1"]), np.asarray(params["W2"])
    Xn, yn = np.asarray(X), np.asarray(y)
    for t in range(3):
        h = Xn @ W1
        relu = np.where(h >= 0, h, 0.0)
        err = relu @ W2 - yn
        assert losses[t] == pytest.approx(np.sum(err**2), rel=1e-12)
        g_W2 = relu.T @ (2 * err)
        g_W1 = Xn.T @ ((2 * err @ W2.T) * (h >= 0))
        W1, W2 = W1 - 1e-3 * g_W1, W2 - 1e-3 * g_W2
    np.testing.assert_allclose(final["W1"], W1, rtol=1e-12)
    np.testing.assert_allclose(final["W2"], W2, rtol=1e-12)


def test_float32_in_float32_out():
    params, dataset = mlp.init(jax.random.key(0), **SMALL)
    final, losses = mlp.train(params, *dataset.train, steps=2)
    assert losses.dtype == jnp.float32 and final["W1"].dtype == jnp.float32


def test_same_seed_same_trajectory_other_seed_other():
    def run(seed):
        params, dataset = cnn.init(jax.random.key(seed), batch_size=2)
        return cnn.train(params, *dataset.train, steps=3)[1]

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


def test_cnn_net_layout_and_functional_form():
    params, dataset = cnn.init(jax.random.key(0), batch_size=2)
    x, target = dataset.train
    assert params["conv1"]["kernel"].shape == (3, 3, 1, 6)
    assert params["fc1"]["kernel"].shape == (16 * 28 * 28, 512)
    assert cnn.apply(params, x).shape == (2, 2)
    loss = cnn.loss_fn(params, (x, target))
    assert loss == pytest.approx(float(jnp.mean(jnp.abs(cnn.apply(params, x) - target))))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda p, X, y: mlp.train(p, X[:, :-1], y), "D_in"),
        (lambda p, X, y: mlp.train(p, X, y[:-1]), "N"),
        (lambda p, X, y: mlp.train({"W1": p["W1"]}, X, y), "keys"),
        (lambda p, X, y: mlp.train(p, X, y, learning_rate=0.0), "learning_rate"),
        (lambda p, X, y: mlp.train(p, X, y, learning_rate=-1e-3), "learning_rate"),
        (lambda p, X, y: mlp.train(p, X, y, learning_rate=float("nan")), "learning_rate"),
        (lambda p, X, y: mlp.train(p, X, y, learning_rate=float("inf")), "learning_rate"),
        (lambda p, X, y: mlp.train(p, X, y, steps=0), "steps"),
        (lambda p, X, y: mlp.train(p, X.astype(jnp.int32), y), "floating"),
    ],
)
def test_mlp_bad_input_fails_before_compiling(call, match, compiled):
    params, dataset = mlp.init(jax.random.key(0), **SMALL)
    with (
        compiled("fit_run", "run_chunk", "init_loop_state") as names,
        pytest.raises((ValueError, TypeError), match=match),
    ):
        call(params, *dataset.train)
    assert names == []


def test_cnn_and_linear_bad_input_fail_before_compiling(compiled):
    params, dataset = cnn.init(jax.random.key(0))
    x, target = dataset.train
    with compiled("fit_run", "run_chunk", "init_loop_state") as names:
        with pytest.raises(ValueError, match="x: expected shape"):
            cnn.train(params, x[:, :30], target)
        with pytest.raises(ValueError, match="params must have"):
            cnn.train({**params, "fc4": params["fc3"]}, x, target)
        with pytest.raises(ValueError, match="steps"):
            cnn.train(params, x, target, steps=-1)
    assert names == []
    w, dataset = linear_regression.init()
    xs, ys = dataset.train
    with pytest.raises(ValueError, match="ys"):
        linear_regression.train(w, xs, ys[:2])
    with pytest.raises(TypeError, match="epochs"):
        linear_regression.train(w, xs, ys, epochs=1.5)


def test_scripts_print_progress_and_save_the_plot(tmp_path):
    png = tmp_path / "loss.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxnets.experiments.linear_regression",
            "--epochs",
            "3",
            "--plot",
            str(png),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines()[0] == "before, w=  4.0"
    assert "\tgrad: 1.0 2.0 -2.0" in out and "progress 2" in out
    assert png.stat().st_size > 1000


def test_jaxnets_never_imports_torch():
    # Every module of the package, so a new one cannot slip torch in unnoticed.
    code = (
        "import importlib, pkgutil, sys, jaxnets\n"
        "names = [m.name for m in pkgutil.walk_packages(jaxnets.__path__, 'jaxnets.')]\n"
        "assert len(names) >= 8, names\n"
        "[importlib.import_module(n) for n in names]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
