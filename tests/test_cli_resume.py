"""``jaxnets train --resume`` never changes a run silently; damaged checkpoints; run outcomes."""

import dataclasses
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import cli
from jaxnets.checkpoint import Checkpointer, param_specs
from jaxnets.cli import planning, resume, run
from jaxnets.experiments import module_regression, registry
from jaxnets.train import init_loop_state

from .helpers import run_cli, tiny_experiment

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = ["train", "custom", "--dtype", "float64", "--checkpoint-every", "5", "--no-progress"]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def snapshot(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``out`` but the lock: its bytes and modification time."""
    return {
        str(path.relative_to(out)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def assert_same_params(a: Path, b: Path) -> None:
    x, y = np.load(a / "params.npz"), np.load(b / "params.npz")
    assert sorted(x.files) == sorted(y.files)
    for name in x.files:
        assert np.array_equal(x[name], y[name]), name


@pytest.fixture(scope="module")
def whole_custom(tmp_path_factory):
    """An uninterrupted 20-step custom run (seed 3, float64, checkpoints every 5)."""
    out = tmp_path_factory.mktemp("whole") / "run"
    assert cli.main([*CUSTOM, "--steps", "20", "--seed", "3", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("experiment", "first", "again", "message"),
    [
        ("custom", ["--batch-size", 2], ["--batch-size", 8], "--batch-size 8 differs from the run's 2"),  # noqa: E501
        ("custom", [], ["--seed", 1], "--seed 1 differs from the run's 0"),
        ("custom", [], ["--dtype", "float32"], "--dtype float32 differs from the run's float64"),
        (
            "module_regression",
            ["--batch-size", 30],
            ["--drop-last"],
            "--drop-last differs from the run's (no --drop-last)",
        ),
    ],
)  # fmt: skip
def test_resume_refuses_other_data_or_model_options(
    experiment, first, again, message, capsys, tmp_path
):
    base = ["train", experiment, "--dtype", "float64", "--checkpoint-every", 2, "--no-progress"]
    assert run_cli([*base, "--steps", 2, *first, "--out", tmp_path], capsys)[0] == 0
    before = snapshot(tmp_path)
    code, out, err = run_cli([*base, "--steps", 4, "--resume", *again, "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE and not out
    assert err.startswith(f"jaxnets train: error: --resume: {message}") and err.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_the_checkpoint_refuses_options_that_config_json_lost(capsys, tmp_path):
    # config.json edited (or replaced) after the run: the checkpoint still knows the batch size.
    assert run_cli([*CUSTOM, "--steps", 5, "--batch-size", 2, "--out", tmp_path], capsys)[0] == 0
    config = read_json(tmp_path / "config.json")
    for options in [config["options"], *(i["options"] for i in config["invocations"])]:
        options["batch_size"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli([*CUSTOM, "--steps", 10, "--resume", "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE
    assert "--resume: --batch-size 4 differs from the run's 2" in err


def test_resume_appends_to_the_history_and_keeps_the_original_command(capsys, tmp_path):
    argv = [*CUSTOM, "--steps", 5, "--seed", 3, "--out", tmp_path]
    assert run_cli(argv, capsys)[0] == 0
    first = read_json(tmp_path / "config.json")
    resume = ["train", "custom", "--resume", "--steps", 10, "--lr", 0.01, "--out", tmp_path]
    assert run_cli([*resume, "--no-progress"], capsys)[0] == 0
    config = read_json(tmp_path / "config.json")

    assert config["command"] == first["command"] and config["options"] == first["options"]
    assert config["options"]["steps"] == 5 and config["argv"] == [str(a) for a in argv]
    history = config["invocations"]
    assert [i["start_step"] for i in history] == [0, 5]
    assert history[0] == first["invocations"][0]
    assert history[1]["argv"] == [str(a) for a in [*resume, "--no-progress"]]
    assert history[1]["options"]["lr"] == 0.01 and history[1]["options"]["seed"] == 3
    assert all(isinstance(i["time"], str) for i in history)
    # The original command reruns the original run, and the run's checkpoints record it too.
    with Checkpointer(tmp_path / "checkpoints", create=False) as checkpoints:
        stored = checkpoints.metadata(10)
    assert stored["options"]["seed"] == 3 and stored["data_parallel"] == 1


def test_resume_with_nothing_to_do_changes_no_file(capsys, tmp_path):
    assert run_cli([*CUSTOM, "--steps", 10, "--out", tmp_path], capsys)[0] == 0
    before = snapshot(tmp_path)
    code, out, err = run_cli(["train", "custom", "--resume", "--out", tmp_path], capsys)
    assert code == 0 and not err
    assert out == f"custom: nothing to do: {tmp_path} is already at step 10\n"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_resume_without_config_json_rebuilds_the_run_from_the_checkpoint(
    damage, capsys, tmp_path, whole_custom
):
    assert run_cli([*CUSTOM, "--steps", 10, "--seed", 3, "--out", tmp_path], capsys)[0] == 0
    if damage == "missing":
        (tmp_path / "config.json").unlink()
    else:
        (tmp_path / "config.json").write_text('{"options": ')
    # Seed, dtype and the rest come from the checkpoint, not from the defaults (seed 0, float32).
    code, _, err = run_cli(
        ["train", "custom", "--resume", "--steps", 20, "--out", tmp_path], capsys
    )
    assert code == 0, err
    assert_same_params(whole_custom, tmp_path)
    config = read_json(tmp_path / "config.json")
    assert config["options"]["seed"] == 3 and config["invocations"][-1]["start_step"] == 10


def test_resume_without_config_json_or_recorded_options_is_refused(capsys, tmp_path):
    # A checkpoint that names its experiment and shapes but not the options of its run.
    experiment = registry.get("custom")
    params, _, key = run.initial_values(experiment, 0, None, jnp.float64)
    state = init_loop_state(params, experiment.optimizer, key)
    meta = {"experiment": "custom", "params": param_specs(params)}
    with Checkpointer(tmp_path / "checkpoints") as checkpoints:
        checkpoints.save(state, meta)
    code, _, err = run_cli(["train", "custom", "--resume", "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE and err.count("\n") == 1
    assert "config.json is missing or unreadable and the checkpoint at step 0 does not" in err


def _largest_data_file(checkpoint: Path) -> Path:
    """The biggest file of the arrays orbax reads back (``state/d/``, the merged OCDBT data)."""
    return max((checkpoint / "state" / "d").iterdir(), key=lambda p: p.stat().st_size)


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(capsys, tmp_path, whole_custom):
    assert run_cli([*CUSTOM, "--steps", 15, "--seed", 3, "--out", tmp_path], capsys)[0] == 0
    damaged = _largest_data_file(tmp_path / "checkpoints" / "15")
    with damaged.open("r+b") as f:
        f.truncate(damaged.stat().st_size // 2)

    # Another process: this one's tensorstore cache still holds what it wrote.
    resumed = subprocess.run(
        [sys.executable, "-m", "jaxnets.cli", *CUSTOM, "--steps", "20", "--resume"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
        timeout=300,
    )
    code, err = resumed.returncode, resumed.stderr
    assert code == 0, err
    warning = (
        f"jaxnets train: warning: the checkpoint at step 15 is damaged (cannot read {tmp_path}"
    )
    assert err.startswith(warning) and err.count("\n") == 1
    assert "resumed from step 10" in err and "Traceback" not in err
    assert read_json(tmp_path / "result.json")["start_step"] == 10
    assert (tmp_path / resume.DAMAGED_DIR / "15").is_dir()
    assert_same_params(whole_custom, tmp_path)
    assert (whole_custom / "metrics.jsonl").read_text() == (tmp_path / "metrics.jsonl").read_text()


def test_no_restorable_checkpoint_is_one_line_and_exit_2(capsys, tmp_path):
    assert run_cli([*CUSTOM, "--steps", 10, "--out", tmp_path], capsys)[0] == 0
    for step in (5, 10):
        damaged = _largest_data_file(tmp_path / "checkpoints" / str(step))
        damaged.write_bytes(b"")
    code, out, err = run_cli([*CUSTOM, "--steps", 20, "--resume", "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE and not out
    assert err.startswith("jaxnets train: error: --resume: no checkpoint in ")
    assert "restores (steps 10, 5;" in err and err.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["10", "5"]


def test_every_step_skipped_exits_3(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTERED, "void", tiny_experiment("void", nan_steps=range(6)))
    argv = ["train", "void", "--steps", 6, "--skip-nonfinite", "--no-progress", "--out", tmp_path]
    code, out, err = run_cli(argv, capsys)
    assert code == cli.EXIT_NONFINITE and not out
    assert err == (
        "jaxnets train: stopped: all 6 steps from step 0 had a non-finite loss or gradient and "
        "were skipped; nothing was trained (try a smaller --lr)\n"
    )
    result = read_json(tmp_path / "result.json")
    assert result["status"] == "all_steps_skipped" and result["skipped_nonfinite"] == 6


def test_a_resume_whose_steps_are_all_skipped_exits_3(capsys, tmp_path):
    # lr 1e30: step 0 is finite and applied, its update overflows, and every later step is not.
    argv = ["train", "mlp", "--lr", 1e30, "--skip-nonfinite", "--checkpoint-every", 1]
    argv += ["--no-progress", "--out", tmp_path]
    code, _, err = run_cli([*argv, "--steps", 3], capsys)
    # Step 0 trained, steps 1 and 2 skipped: the run ends on a skipped step, so it failed.
    assert code == cli.EXIT_NONFINITE and "the last step (2) had a non-finite loss" in err
    assert read_json(tmp_path / "result.json")["status"] == "ended_nonfinite"
    code, _, err = run_cli([*argv, "--steps", 6, "--resume"], capsys)
    assert code == cli.EXIT_NONFINITE and "all 3 steps from step 3 had a non-finite" in err
    assert read_json(tmp_path / "result.json")["status"] == "all_steps_skipped"


def test_evaluation_runs_at_epoch_ends_and_the_final_loss_is_the_last_epochs_mean(
    capsys, tmp_path, monkeypatch
):
    base = registry.get("module_regression")

    def evaluate(params, data):
        return {"mse": module_regression.loss_fn(params, data.train)}

    entry = types.SimpleNamespace(
        **{name: getattr(base, name) for name in registry.PROTOCOL},
        evaluate=evaluate,
    )
    entry.DEFAULTS = dataclasses.replace(base.DEFAULTS, name="evaluated")
    monkeypatch.setitem(registry._REGISTERED, "evaluated", entry)
    argv = ["train", "evaluated", "--epochs", 3, "--dtype", "float64", "--no-progress"]
    code, out, err = run_cli([*argv, "--out", tmp_path], capsys)
    assert code == 0, err

    records = metrics(tmp_path)  # 100 samples in batches of 10: 10 steps an epoch
    assert [r["step"] for r in records if "eval" in r] == [9, 19, 29]
    result = read_json(tmp_path / "result.json")
    params = {k: jnp.asarray(v) for k, v in np.load(tmp_path / "params.npz").items()}
    params = {"linear": {name.split("/")[1]: value for name, value in params.items()}}
    _, data, _ = run.initial_values(base, 0, 10, jnp.float64)
    final_mse = float(module_regression.loss_fn(params, data.train))
    assert records[-1]["eval"]["mse"] == pytest.approx(final_mse, rel=1e-12)
    assert result["eval"] == records[-1]["eval"]
    assert result["final_loss_kind"] == "epoch_mean" and result["final_loss_at"] == 2
    assert result["final_loss"] == pytest.approx(np.mean([r["loss"] for r in records[20:]]))
    assert f"final loss {result['final_loss']:.6g} (mean of epoch 2, counting from 0)" in out
    assert "eval mse" in out


def test_without_epochs_the_final_loss_is_the_last_steps(capsys, tmp_path):
    code, out, _ = run_cli(
        ["train", "mlp", "--steps", 4, "--no-progress", "--out", tmp_path], capsys
    )
    assert code == 0
    result = read_json(tmp_path / "result.json")
    assert result["final_loss_kind"] == "step" and result["final_loss_at"] == 3
    assert result["final_loss"] == metrics(tmp_path)[-1]["loss"] and result["eval"] is None
    assert "(step 3)" in out


@pytest.mark.parametrize(
    ("steps", "per_epoch", "every", "expected"),
    [(450, 45, None, (9, None)), (300, 3, None, (6, None)), (200, 10, None, (2, None)),
     (5000, 45, None, (90, None)), (450, 45, 20, (9, 27)), (5000, 45, 20, (15, 30)),
     (500, 1, None, (10, None))],
)  # fmt: skip
def test_default_chunks_end_on_epoch_ends(steps, per_epoch, every, expected):
    options = cli.Options("x", steps=steps, lr=0.1, batch_size=None, checkpoint_every=every)
    assert planning.chunk_plan(options, per_epoch) == expected
