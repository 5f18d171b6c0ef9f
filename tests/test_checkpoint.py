"""Checkpoints: exact round trips, resumes equal to uninterrupted runs, refusals, kills."""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import cli, optim
from jaxnets.checkpoint import Checkpointer, loop_state, param_specs, spec_mismatches
from jaxnets.experiments import registry
from jaxnets.train import LoopState

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = ["train", "custom", "--dtype", "float64", "--checkpoint-every", "5", "--no-progress"]


def run_cli(argv, capsys):
    """``jaxnets ARGV`` in this process: ``(exit code, stderr)``."""
    code = cli.main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def assert_npz_equal(path_a, path_b):
    a, b = np.load(path_a), np.load(path_b)
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_round_trip_is_exact(tmp_path):
    params = {"W": jnp.arange(6.0).reshape(2, 3), "b": {"c": jnp.full((3,), 0.5, jnp.float32)}}
    optimizer = optim.sgd(0.1, momentum=0.9)
    grads = jax.tree.map(jnp.ones_like, params)
    _, opt_state = optimizer.update(grads, optimizer.init(params), params)
    state = loop_state(params, opt_state, jax.random.key(7), step=12, skipped=2)
    with Checkpointer(tmp_path) as checkpointer:
        assert checkpointer.latest_step() is None
        assert checkpointer.save(state, {"experiment": "x", "params": param_specs(params)}) == 12
        zeros = jax.tree.map(jnp.zeros_like, params)
        template = loop_state(zeros, optimizer.init(zeros), jax.random.key(0))
        restored = checkpointer.restore(12, template)
        assert checkpointer.metadata(12)["params"]["b/c"] == {"shape": [3], "dtype": "float32"}
    assert isinstance(restored, LoopState)
    assert_trees_equal(restored.train, state.train)
    np.testing.assert_array_equal(jax.random.key_data(restored.key), jax.random.key_data(state.key))
    assert int(restored.skipped) == 2 and int(restored.bad_step) == -1


def test_spec_mismatches_lists_every_difference():
    run = param_specs({"W": jnp.zeros((9, 1)), "scale": jnp.zeros((1,), jnp.float32)})
    saved = param_specs({"W": jnp.zeros((8, 1)), "bias": jnp.zeros((1,))})
    assert spec_mismatches(run, run) == []
    assert spec_mismatches(run, saved) == [
        "missing bias",
        "unexpected scale",
        "W: run has (9, 1) float64, checkpoint has (8, 1) float64",
    ]


def test_resume_equals_an_uninterrupted_run_and_skips_an_unfinished_write(capsys, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_cli([*CUSTOM, "--steps", 20, "--out", whole], capsys)[0] == 0
    assert run_cli([*CUSTOM, "--steps", 10, "--out", split], capsys)[0] == 0
    # What a kill during the write of step 15 leaves behind: a temporary, unrenamed directory.
    unfinished = split / "checkpoints" / "15.orbax-checkpoint-tmp-1700000000"
    unfinished.mkdir()
    (unfinished / "partial").write_bytes(b"\0" * 10)
    assert run_cli([*CUSTOM, "--steps", 20, "--out", split, "--resume"], capsys)[0] == 0

    assert json.loads((split / "result.json").read_text())["start_step"] == 10
    assert not unfinished.exists()
    assert_npz_equal(whole / "params.npz", split / "params.npz")
    assert (whole / "metrics.jsonl").read_text() == (split / "metrics.jsonl").read_text()


def test_unusable_resumes_are_refused_before_compiling(capsys, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run_cli([*CUSTOM, "--steps", 5, "--out", out], capsys)[0] == 0

    def refuse(*args, **kwargs):
        raise AssertionError("the training program was built despite bad input")

    monkeypatch.setattr("jaxnets.cli.run.make_runner", refuse)
    code, err = run_cli([*CUSTOM, "--steps", 10, "--out", out], capsys)
    assert code == cli.EXIT_USAGE and "already holds checkpoints; pass --resume" in err

    code, err = run_cli(["train", "mlp", "--resume", "--out", out], capsys)
    assert code == cli.EXIT_USAGE and "holds a run of 'custom', not 'mlp'" in err

    code, err = run_cli([*CUSTOM, "--resume", "--out", out, "--dtype", "float32"], capsys)
    assert code == cli.EXIT_USAGE
    assert "--resume: --dtype float32 differs from the run's float64" in err

    custom = registry.get("custom")

    def init(key, **options):
        params, data = custom.init(key, **options)
        return {**params, "W": jnp.zeros((9, 1), params["W"].dtype)}, data

    wider = types.SimpleNamespace(**{name: getattr(custom, name) for name in registry.PROTOCOL})
    wider.init = init
    monkeypatch.setitem(registry._REGISTERED, "custom", wider)
    code, err = run_cli([*CUSTOM, "--resume", "--out", out], capsys)
    assert code == cli.EXIT_USAGE and "W: run has (9, 1) float64, checkpoint has (8, 1)" in err

    # Without config.json the checkpoint's own metadata still names its experiment.
    (out / "config.json").unlink()
    monkeypatch.delitem(registry._REGISTERED, "custom")
    code, err = run_cli(["train", "mlp", "--resume", "--out", out], capsys)
    assert code == cli.EXIT_USAGE and "holds a run of 'custom', not 'mlp'" in err


def _mlp(out, *extra, env, stderr=subprocess.PIPE):
    """Start ``jaxnets train mlp`` (30 steps, checkpoints every 5) in a subprocess."""
    argv = [sys.executable, "-m", "jaxnets.cli", "train", "mlp", "--steps", "30"]
    argv += ["--checkpoint-every", "5", "--no-progress", "--out", str(out), *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _finish(process):
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_bit_exact(tmp_path, subprocess_env):
    """A run killed between checkpoints and resumed ends exactly where an unkilled run does."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = _mlp(whole, env=subprocess_env)
    slow_env = {**subprocess_env, cli.CHUNK_DELAY_ENV: "0.5"}
    victim = _mlp(killed, env=slow_env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (killed / "checkpoints" / "10").exists():
        assert victim.poll() is None, "the run ended before its checkpoint at step 10"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (killed / "params.npz").exists()  # it really died before the end

    _finish(uninterrupted)
    # Resume with no other option: the rest comes from the run's config.json.
    argv = [sys.executable, "-m", "jaxnets.cli", "train", "mlp", "--resume", "--out", str(killed)]
    resumed = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "result.json").read_text())["start_step"] >= 10
    assert_npz_equal(whole / "params.npz", killed / "params.npz")
    assert (whole / "metrics.jsonl").read_text() == (killed / "metrics.jsonl").read_text()


@pytest.fixture(scope="module")
def subprocess_env(tmp_path_factory):
    """Environment for CLI subprocesses: this checkout importable, compilations cached on disk."""
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
