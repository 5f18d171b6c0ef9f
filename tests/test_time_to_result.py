"""Time to result, as behaviour: what a script compiles and imports, and the compilation cache.

Speed itself is measured by ``python -m parity.bench --whole-process``, never asserted here.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxnets import compile_cache
from jaxnets.experiments import _protocol, cnn, mlp, registry
from jaxnets.train import run_keys
from tests.helpers import ROOT, run_clean

COMPILED = "Finished XLA compilation of jit("


def _run(argv, *, cache_dir=None, log_compiles=False, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV_OFF}
    env.pop(compile_cache.ENV_DIR, None)
    if cache_dir is None:
        env[compile_cache.ENV_OFF] = "1"
    else:
        env[compile_cache.ENV_DIR] = str(cache_dir)
    if log_compiles:
        env["JAX_LOG_COMPILES"] = "1"
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return result


def _programs(stderr: str) -> list[str]:
    return [
        line.split(COMPILED, 1)[1].split(")", 1)[0]
        for line in stderr.splitlines()
        if COMPILED in line
    ]


@pytest.mark.parametrize(
    ("module", "span", "training"),
    [
        ("mlp", ["--steps", "3"], "fit_run"),
        ("linear_regression", ["--epochs", "2"], "fit_run"),
        ("cnn", ["--steps", "2"], "tutorial_run"),
    ],
)
def test_a_script_compiles_its_start_and_its_run_and_nothing_else(tmp_path, module, span, training):
    argv = ["-m", f"jaxnets.experiments.{module}", *span, "--plot", str(tmp_path / "loss.png")]
    result = _run(argv, log_compiles=True)
    assert _programs(result.stderr) == ["init", training]
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_the_mlp_script_imports_neither_flax_nor_matplotlib_to_start():
    run_clean(
        """
        import sys
        from jaxnets.experiments import mlp
        assert "flax" not in sys.modules, "flax imported"
        assert "matplotlib" not in sys.modules, "matplotlib imported"
        """
    )


def test_cnn_tutorial_run_is_the_train_run_with_its_first_step_shown():
    params, data, _ = _protocol.start(cnn, 2)
    x, target = data.train
    before, after, losses, final = cnn.tutorial_run(params, x, target, 0.01, steps=3)
    trained, train_losses = cnn.train(params, x, target, steps=3, learning_rate=0.01)
    one_step, _ = cnn.train(params, x, target, steps=1, learning_rate=0.01)
    np.testing.assert_array_equal(losses, train_losses)
    for got, want in zip(jax.tree.leaves(final), jax.tree.leaves(trained), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(before, cnn.apply(params, x))
    np.testing.assert_array_equal(after, cnn.apply(one_step, x))


@pytest.mark.parametrize("seed", [0, 5, 2**32 - 1, 2**32, 2**40 + 3, 2**63 - 1])
def test_the_start_draws_from_run_keys(seed):
    """``start``'s one program derives the keys from the seed as ``run_keys`` does."""
    experiment = registry.get("digits")
    params, data, data_key = _protocol.start(experiment, seed)
    keys = run_keys(seed)
    # Compiled as start compiles it: eager draws differ from compiled ones in the last bit.
    options = {"xla_backend_optimization_level": 0}
    want = jax.jit(experiment.init, compiler_options=options)(keys.init)
    np.testing.assert_array_equal(jax.random.key_data(data_key), jax.random.key_data(keys.data))
    for got, expected in zip(jax.tree.leaves((params, data)), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_the_start_draws_from_run_keys_without_x64():
    # Without x64 JAX keeps only a seed's low 32 bits: 2**32 + 7 is seed 7's run.
    run_clean(
        """
        import jax, numpy as np
        from jaxnets.experiments import _protocol, mlp
        from jaxnets.train import run_keys
        assert not jax.config.jax_enable_x64
        for seed in (7, 2**32 + 7):
            params, _, data_key = _protocol.start(mlp, seed)
            keys = run_keys(seed)
            assert (jax.random.key_data(data_key) == jax.random.key_data(keys.data)).all()
            options = {"xla_backend_optimization_level": 0}
            want = jax.jit(mlp.init, compiler_options=options)(keys.init)[0]
            assert all((params[k] == want[k]).all() for k in params)
        """
    )


def test_a_second_run_loads_every_program_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    argv = ["-m", "jaxnets.cli", "train", "linear", "--epochs", "2", "--no-progress"]
    results = []
    for run in ("first", "second"):
        _run([*argv, "--out", str(tmp_path / run)], cache_dir=cache)
        results.append(json.loads((tmp_path / run / "result.json").read_text()))
    first, second = (r["compilation_cache"] for r in results)
    assert first["enabled"] and first["directory"] == str(cache)
    assert first["requests"] > 0 and first["hits"] == 0
    assert second["hits"] == second["requests"] == first["requests"]
    assert second["misses"] == 0
    assert results[0]["final_loss"] == results[1]["final_loss"]

    _run([*argv, "--out", str(tmp_path / "off"), "--no-cache"], cache_dir=cache)
    off = json.loads((tmp_path / "off" / "result.json").read_text())["compilation_cache"]
    assert not off["enabled"] and off["requests"] == 0


def test_the_cache_directory_and_switches():
    env = {"XDG_CACHE_HOME": "/x", compile_cache.ENV_DIR: "/y"}
    assert compile_cache.default_dir(env).as_posix() == "/y"
    assert compile_cache.default_dir({"HOME": "/h"}).name == "compilation"
    assert compile_cache.disabled_by_env({compile_cache.ENV_OFF: "true"})
    assert not compile_cache.disabled_by_env({compile_cache.ENV_OFF: "false"})
    # The test session itself runs with the cache off (see conftest): enable() leaves it off.
    assert not compile_cache.enable().enabled


def test_numpy_data_reaches_the_device_without_a_program_per_array(compiled):
    # Shapes no other test trains on, so the training program itself compiles here.
    sizes = {"batch_size": 5, "d_in": 7, "hidden": 3, "d_out": 2}
    params, data = jax.jit(lambda key: mlp.init(key, **sizes))(jax.random.key(0))
    X, y = (np.asarray(a) for a in data.train)
    params = {k: np.asarray(v) for k, v in params.items()}
    with compiled() as names:
        mlp.train(params, X, y, steps=2, learning_rate=1e-3)
    assert names == ["fit_run"]


@pytest.mark.parametrize(("returned", "status"), [(None, 0), (3, 3)])
def test_a_script_ends_once_its_output_is_flushed(returned, status):
    """``run_as_script`` skips the interpreter's teardown (an atexit hook never runs) but not
    the script's output, even unflushed in a pipe, and exits with ``main``'s status."""
    code = f"""
import atexit
import sys

from jaxnets.experiments import _script

atexit.register(lambda: print("teardown ran"))


def main():
    print("result line", end="")
    print("warning line", file=sys.stderr, end="")
    return {returned!r}


_script.run_as_script(main)
"""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=buffered,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == status, result.stderr
    assert result.stdout == "result line"
    assert result.stderr == "warning line"
