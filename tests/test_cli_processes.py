"""``jaxnets train`` as a process: the run directory lock, SIGINT/SIGTERM, several devices."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from jaxnets import cli

ROOT = Path(__file__).resolve().parents[1]
# mlp, 30 steps in chunks of 5 with checkpoints every 10: six chunks to act between.
MLP = ["train", "mlp", "--steps", "30", "--chunk-size", "5", "--checkpoint-every", "10"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for CLI subprocesses: this checkout importable, compilations cached on disk."""
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def start(argv, env, *, delay=None):
    """``jaxnets ARGV`` in a new process (sleeping ``delay`` s after each chunk)."""
    if delay is not None:
        env = {**env, cli.CHUNK_DELAY_ENV: str(delay)}
    return subprocess.Popen(
        [sys.executable, "-m", "jaxnets.cli", *map(str, argv), "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, timeout=180):
    """``(exit code, stdout, stderr)`` once ``process`` ends."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for_steps(process, out, steps):
    """Block until ``out/metrics.jsonl`` holds ``steps`` records (the run is past its lock)."""
    deadline = time.monotonic() + 120
    metrics = out / "metrics.jsonl"
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= steps):
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def read_json(path):
    return json.loads(path.read_text())


def assert_same_params(a, b):
    x, y = np.load(a / "params.npz"), np.load(b / "params.npz")
    assert sorted(x.files) == sorted(y.files)
    for name in x.files:
        assert np.array_equal(x[name], y[name]), name


@pytest.fixture(scope="module")
def whole(env, tmp_path_factory):
    """The uninterrupted run every interrupted one is compared with."""
    out = tmp_path_factory.mktemp("whole") / "run"
    code, _, err = finish(start([*MLP, "--out", out], env))
    assert code == 0, err
    return out


def test_a_second_run_into_a_locked_directory_exits_2(env, tmp_path, whole):
    first = start([*MLP, "--out", tmp_path], env, delay=0.3)
    wait_for_steps(first, tmp_path, 5)
    second = start([*MLP, "--out", tmp_path], env)
    code, out, err = finish(second)
    assert code == cli.EXIT_USAGE and not out
    assert err == (
        f"jaxnets train: error: --out: {tmp_path} is in use by another run (pid {first.pid}); "
        "wait for it to end or choose another --out\n"
    )
    code, _, err = finish(first)
    assert code == 0, err
    # The first run's outputs are its own, whole: as if the second had never started.
    assert read_json(tmp_path / "result.json")["status"] == "completed"
    assert (tmp_path / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()
    assert_same_params(whole, tmp_path)
    argv = read_json(tmp_path / "config.json")["argv"]
    assert argv[-3:] == ["--out", str(tmp_path), "--no-progress"]


@pytest.mark.slow
def test_sigint_finishes_the_chunk_saves_and_resumes_bit_exact(env, tmp_path, whole):
    victim = start([*MLP, "--out", tmp_path], env, delay=0.5)
    wait_for_steps(victim, tmp_path, 5)
    victim.send_signal(signal.SIGINT)
    code, out, err = finish(victim)
    assert code == 130, err
    assert "Traceback" not in err and not out
    result = read_json(tmp_path / "result.json")
    end = result["end_step"]
    assert result["status"] == "interrupted" and result["signal"] == "SIGINT"
    assert 5 <= end < 30 and end % 5 == 0
    assert result["latest_checkpoint"] == end and (tmp_path / "checkpoints" / str(end)).is_dir()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == end
    assert (tmp_path / "params.npz").exists() and (tmp_path / "loss.png").exists()
    assert f"interrupted by SIGINT at {end} steps" in err

    code, _, err = finish(start(["train", "mlp", "--resume", "--out", tmp_path], env))
    assert code == 0, err
    assert read_json(tmp_path / "result.json")["start_step"] == end
    assert_same_params(whole, tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()


def test_sigterm_stops_with_143(env, tmp_path):
    argv = ["train", "linear", "--epochs", 40, "--chunk-size", 3, "--out", tmp_path]
    victim = start(argv, env, delay=0.2)
    wait_for_steps(victim, tmp_path, 3)
    victim.send_signal(signal.SIGTERM)
    code, _, err = finish(victim)
    assert code == 143 and "Traceback" not in err
    result = read_json(tmp_path / "result.json")
    assert result["status"] == "interrupted" and result["signal"] == "SIGTERM"
    assert result["checkpoints_saved"] == []  # no --checkpoint-every, nothing to save


def test_a_second_sigint_aborts_at_once(env, tmp_path):
    victim = start([*MLP, "--out", tmp_path], env, delay=60)
    wait_for_steps(victim, tmp_path, 5)  # now asleep for a minute after the first chunk
    victim.send_signal(signal.SIGINT)
    time.sleep(0.5)
    sent = time.monotonic()
    victim.send_signal(signal.SIGINT)
    code, _, err = finish(victim, timeout=30)
    assert code == 130 and time.monotonic() - sent < 10
    assert "SIGINT again: aborted" in err and "Traceback" not in err


# Fake CPU devices must be configured before JAX starts, hence a fresh process.
FOUR_DEVICES = textwrap.dedent(
    """
    import contextlib, io, json, shlex, sys
    import jax
    jax.config.update("jax_num_cpu_devices", 4)
    from jaxnets import cli
    from jaxnets.cli import planning, run
    from jaxnets.experiments import registry

    out = sys.argv[1]
    report = {"device_count": jax.device_count()}

    def main(argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main([*argv, "--no-progress"])
        return code, err.getvalue()

    def plan_works(argv):
        # What the advice promises: these options pass every check before training.
        args = cli.build_parser().parse_args(argv)
        options = cli.resolve(args, run.experiment_defaults(args.experiment))
        try:
            planning.plan_run(options, registry.get(args.experiment))
        except cli.UsageError as err:
            return str(err)
        return True

    for name, argv in {
        "digits": ["train", "digits", "--devices", "4"],
        "digits30": ["train", "digits", "--devices", "4", "--batch-size", "30"],
        "mlp": ["train", "mlp", "--devices", "3"],
    }.items():
        code, err = main([*argv, "--out", f"{out}/{name}"])
        advice = err.split("what splits evenly: ")[-1].strip().split(", or ")
        report[name] = {
            "code": code,
            "err": err,
            "advice": {a: plan_works([*argv, *shlex.split(a)]) for a in advice},
        }

    base = ["train", "mlp", "--steps", "2", "--checkpoint-every", "2", "--out", f"{out}/split"]
    report["split2"] = main([*base, "--devices", "2"])
    report["split4"] = main([*base[:3], "4", *base[4:], "--devices", "4", "--resume"])
    report["split_kept"] = main([*base[:3], "4", *base[4:], "--resume"])
    print(json.dumps(report))
    """
)


@pytest.mark.slow
def test_device_split_advice_is_computed_and_works(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["device_count"] == 4

    # 1437 samples: odd, so no batch size splits every epoch's last batch over 4 devices.
    digits = report["digits"]
    assert digits["code"] == 2 and digits["err"].count("\n") == 1
    assert "last, partial batch: batch size 29 is not divisible by the 4 devices" in digits["err"]
    assert list(digits["advice"]) == ["--drop-last", "--batch-size 28 --drop-last", "--devices 1"]
    assert all(works is True for works in digits["advice"].values()), digits
    # Batches of 30 leave 27: 3 devices split both; 28 and 32 need --drop-last.
    advice = report["digits30"]["advice"]
    assert list(advice) == [
        "--batch-size 28 --drop-last",
        "--batch-size 32 --drop-last",
        "--devices 3",
    ]
    assert all(works is True for works in advice.values()), advice
    # A full-batch experiment: the batch is the data, any multiple of the devices works.
    mlp = report["mlp"]
    assert "batch size 64 is not divisible by the 3 devices" in mlp["err"]
    assert list(mlp["advice"]) == ["--batch-size 63", "--batch-size 66", "--devices 2"]
    assert all(works is True for works in mlp["advice"].values()), mlp

    # A resume keeps its device split: another one would sum gradients in another order.
    assert report["split2"][0] == 0
    code, err = report["split4"]
    assert code == 2 and "--resume: --devices 4 differs from the run's 2" in err
    assert report["split_kept"][0] == 0, report["split_kept"]
