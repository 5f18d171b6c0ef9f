"""``jaxnets`` command line: listing, options, outputs, the chunked driver, non-finite handling."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import cli, optim
from jaxnets.cli import run
from jaxnets.experiments import custom_backward, digits, module_regression, registry
from jaxnets.train import fit, init_loop_state, make_runner, run_chunks

from .helpers import run_cli, tiny_experiment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_compiling(monkeypatch):
    """Fail the test if the CLI gets as far as building the training program."""

    def refuse(*args, **kwargs):
        raise AssertionError("the training program was built despite bad input")

    monkeypatch.setattr(run, "make_runner", refuse)


def test_list_shows_each_experiment_on_one_line(capsys):
    code, out, _ = run_cli(["list"], capsys)
    lines = out.strip().splitlines()
    assert code == 0
    names = ["mlp", "cnn", "linear", "custom", "module_regression", "digits"]
    assert [line.split()[0] for line in lines] == names


def test_train_help_explains_every_option(capsys):
    code, out, _ = run_cli(["train", "--help"], capsys)
    assert code == 0
    for option in (
        "--steps", "--epochs", "--lr", "--batch-size", "--seed", "--dtype", "--precision",
        "--devices", "--out", "--checkpoint-every", "--resume", "--skip-nonfinite", "--profile",
    ):  # fmt: skip
        assert option in out


def test_console_script_and_module_entry_points():
    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]")[1].split("\n[")[0]
    assert 'jaxnets = "jaxnets.cli:main"' in scripts.splitlines()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listed = subprocess.run(
        [sys.executable, "-m", "jaxnets.cli", "list"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0 and "linear" in listed.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "resnet"], "unknown experiment 'resnet'; known: cnn, custom, digits, linear"),
        (["train", "mlp", "--lr", "0"], "--lr must be finite and > 0, got '0'"),
        (["train", "mlp", "--lr=-1e-3"], "--lr must be finite and > 0"),
        (["train", "mlp", "--lr", "nan"], "--lr must be finite and > 0"),
        (["train", "mlp", "--steps", "0"], "expected an integer >= 1, got 0"),
        (["train", "mlp", "--steps", "-5"], "expected an integer >= 1, got -5"),
        (["train", "mlp", "--epochs", "0"], "expected an integer >= 1, got 0"),
        (["train", "mlp", "--batch-size", "0"], "expected an integer >= 1, got 0"),
        (["train", "mlp", "--steps", "3", "--epochs", "2"], "not allowed with argument"),
        (["train", "linear", "--batch-size", "4"], "linear has a fixed dataset"),
        (["train", "mlp", "--drop-last"], "--drop-last: mlp reads no data loader"),
        (
            ["train", "module_regression", "--batch-size", "101", "--drop-last"],
            "drop_last with batch_size=101 leaves no batch of a dataset of 100 samples",
        ),
        (["train", "custom", "--resume"], "--resume: no checkpoint in"),
        (["train", "custom", "--devices", "2"], "devices must be between 1 and 1"),
        (["train", "custom", "--process-id", "0"], "go together"),
    ],
)
def test_bad_input_exits_2_before_compiling(argv, message, capsys, tmp_path, no_compiling):
    code, out, err = run_cli([*argv, "--out", tmp_path / "run"], capsys)
    assert code == cli.EXIT_USAGE
    assert message in err
    assert not out


def test_nan_in_data_is_refused_before_compiling(capsys, tmp_path, monkeypatch, no_compiling):
    poisoned = tiny_experiment("poisoned", nan_data=True)
    monkeypatch.setitem(registry._REGISTERED, "poisoned", poisoned)
    code, _, err = run_cli(["train", "poisoned", "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE
    assert "data.train[0] contains non-finite values (1 of 24; first at (2, 1))" in err


def test_run_writes_its_outputs_and_trains_like_the_module(capsys, tmp_path):
    out = tmp_path / "run"
    precision = jax.config.jax_default_matmul_precision
    argv = ["train", "custom", "--steps", 12, "--chunk-size", 5, "--dtype", "float64"]
    argv += ["--seed", 3, "--precision", "high", "--profile", "--no-progress", "--out", out]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and "custom: 12 steps" in stdout
    assert jax.config.jax_default_matmul_precision == precision  # restored after the run
    assert any(path.is_file() for path in (out / "profile").rglob("*"))

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(12))
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["end_step"] == 12
    assert result["compilations"] == 2  # chunks of 5, 5 and 2 steps: two lengths
    assert (out / "loss.png").stat().st_size > 0

    # The CLI's step is the module's: same init, same final params, bit for bit.
    params, data, _ = cli.initial_values(registry.get("custom"), 3, None, jnp.float64)
    X, y = data.train
    expected, losses = custom_backward.train(params, X, y, steps=12, learning_rate=0.05)
    saved = np.load(out / "params.npz")
    assert sorted(saved.files) == ["W", "scale"]
    for name in saved.files:
        np.testing.assert_array_equal(saved[name], expected[name])
    np.testing.assert_array_equal([m["loss"] for m in metrics], losses)

    # config.json holds what a rerun needs; running its command again gives the same params.
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["seed"] == 3 and config["options"]["dtype"] == "float64"
    assert config["options"]["precision"] == "high"
    assert config["params"]["W"] == {"shape": [8, 1], "dtype": "float64"}
    assert {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"} <= set(
        config["versions"]
    )
    assert config["command"][:3] == ["jaxnets", "train", "custom"]
    # argparse keeps an option's last value: the appended --out wins over the recorded one.
    rerun = [*config["command"][1:], "--out", tmp_path / "rerun", "--no-progress"]
    assert run_cli(rerun, capsys)[0] == 0
    again = np.load(tmp_path / "rerun" / "params.npz")
    for name in saved.files:
        np.testing.assert_array_equal(again[name], saved[name])


def test_epochs_count_passes_over_the_data(capsys, tmp_path):
    code, _, _ = run_cli(
        ["train", "linear", "--epochs", 4, "--out", tmp_path, "--no-progress"], capsys
    )
    assert code == 0
    assert json.loads((tmp_path / "result.json").read_text())["end_step"] == 12


@pytest.mark.parametrize(
    ("name", "module", "batch_size", "drop_last"),
    [
        ("module_regression", module_regression, 32, False),  # 3 full batches and one of 4
        ("module_regression", module_regression, 32, True),
        ("digits", digits, 500, False),  # 2 full batches and one of 437
    ],
)
def test_loader_experiments_train_like_their_modules(
    name, module, batch_size, drop_last, capsys, tmp_path
):
    """The command's chunks and the module's one chunk are the same program: bit-equal."""
    epochs, experiment = 3, registry.get(name)
    argv = ["train", name, "--epochs", epochs, "--batch-size", batch_size, "--dtype", "float64"]
    argv += ["--chunk-size", 3, "--seed", 5, "--no-progress", "--out", tmp_path]
    code, _, _ = run_cli([*argv, *(["--drop-last"] if drop_last else [])], capsys)
    assert code == 0
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps_per_epoch = 100 // 32 if drop_last else -(-len(metrics) // epochs)
    assert len(metrics) == epochs * steps_per_epoch

    params, data, data_key = cli.initial_values(experiment, 5, batch_size, jnp.float64)
    plan = experiment.batch_plan(batch_size, drop_last=drop_last)
    expected, losses = fit(
        experiment.loss_fn, experiment.optimizer, params, data.train,
        steps=len(metrics), learning_rate=experiment.DEFAULTS.learning_rate, plan=plan,
        key=data_key,
    )  # fmt: skip
    if not drop_last:  # the module's own train(), the one python -m parity checks against torch
        trained, by_epoch = module.train(
            params, *data.train, epochs=epochs, batch_size=batch_size, seed=5
        )
        np.testing.assert_array_equal(np.ravel(by_epoch), losses)
        jax.tree.map(np.testing.assert_array_equal, trained, expected)
    np.testing.assert_array_equal([m["loss"] for m in metrics], losses)
    saved = np.load(tmp_path / "params.npz")
    for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]:
        key = jax.tree_util.keystr(path, simple=True, separator="/")
        np.testing.assert_array_equal(saved[key], leaf)


def test_same_seed_same_run_in_the_script_and_the_command(capsys, tmp_path):
    """``python -m jaxnets.experiments.mlp --seed 4`` and ``jaxnets train mlp --seed 4``."""
    from jaxnets.experiments import mlp

    code, _, _ = run_cli(
        ["train", "mlp", "--steps", 6, "--seed", 4, "--no-progress", "--out", tmp_path], capsys
    )
    assert code == 0
    mlp.main(["--steps", "6", "--seed", "4", "--plot", str(tmp_path / "script.png")])
    printed = [float(line.split("Loss:")[1]) for line in capsys.readouterr().out.splitlines()
               if line.startswith("Epoch:")]  # fmt: skip
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert printed == [m["loss"] for m in metrics]


def test_loader_experiments_default_to_their_tutorial_epochs(capsys, tmp_path, no_compiling):
    args = cli.build_parser().parse_args(["train", "digits", "--out", str(tmp_path)])
    options = cli.resolve(args, run.experiment_defaults("digits"))
    assert (options.steps, options.epochs, options.batch_size) == (None, 10, 32)
    assert options.lr == 1e-3 and registry.get("digits").optimizer is optim.adam


def test_an_overflowing_update_is_caught_at_the_next_step():
    # The guard reads the loss and gradients, both finite at step 0; that step's update sends w
    # past float32's largest value, so step 1 (loss -inf) is the one named.
    def loss_fn(w, batch):
        return jnp.sum(w * batch)

    runner = make_runner(loss_fn, optax.sgd)
    state = init_loop_state(jnp.full((1,), 3e38, jnp.float32), optax.sgd)
    state, (losses, finite) = runner(state, jnp.full((1,), -1.0, jnp.float32), 1e38, length=3)
    assert finite.tolist() == [True, False, False]
    assert np.isfinite(losses[0]) and losses[1] == -np.inf
    assert int(state.bad_step) == 1 and int(state.train.step) == 1
    assert state.train.params.tolist() == [np.inf]


def test_one_compilation_per_chunk_length():
    experiment = tiny_experiment("tiny")
    params, data = experiment.init(jax.random.key(0), dtype=jnp.float64)
    runner = make_runner(experiment.loss_fn, experiment.optimizer, experiment.batch_plan(), n=8)
    state = init_loop_state(params, experiment.optimizer, jax.random.key(1))
    chunks = list(run_chunks(runner, state, data.train, 0.1, start=0, stop=23, chunk_size=5))
    assert [len(c.losses) for c in chunks] == [5, 5, 5, 5, 3]
    assert runner._cache_size() == 2
    # From a step inside a chunk, ends still fall on multiples of the chunk size.
    chunks = list(
        run_chunks(runner, chunks[-1].state, data.train, 0.1, start=7, stop=23, chunk_size=5)
    )
    assert [(c.start, c.stop) for c in chunks] == [(7, 10), (10, 15), (15, 20), (20, 23)]
    assert runner._cache_size() == 2


def test_nonfinite_loss_stops_at_that_step_and_keeps_the_good_checkpoint(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setitem(registry._REGISTERED, "diverge", tiny_experiment("diverge", nan_steps=(6,)))
    argv = ["train", "diverge", "--steps", 12, "--checkpoint-every", 4, "--out", tmp_path]
    code, _, err = run_cli([*argv, "--no-progress"], capsys)
    assert code == cli.EXIT_NONFINITE
    assert "non-finite loss or gradient at step 6" in err
    assert "the last good checkpoint is step 4" in err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "nonfinite" and result["bad_step"] == 6
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1] == {"step": 6, "loss": None, "nonfinite": "nan", "finite": False}
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [4]
    assert not (tmp_path / "params.npz").exists()


def test_skip_nonfinite_drops_those_updates_and_counts_them(capsys, tmp_path, monkeypatch):
    experiment = tiny_experiment("spiky", nan_steps=(3, 5))
    monkeypatch.setitem(registry._REGISTERED, "spiky", experiment)
    argv = ["train", "spiky", "--steps", 8, "--chunk-size", 4, "--skip-nonfinite"]
    code, out, _ = run_cli(
        [*argv, "--dtype", "float64", "--out", tmp_path, "--no-progress"], capsys
    )
    assert code == 0 and "2 non-finite steps skipped" in out
    assert json.loads((tmp_path / "result.json").read_text())["skipped_nonfinite"] == 2
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["skipped_total"] for m in metrics] == [0, 0, 0, 1, 1, 2, 2, 2]

    params, data, _ = cli.initial_values(experiment, 0, 8, jnp.float64)
    grad = jax.grad(experiment.loss_fn)
    for step in range(8):  # one sample per step, in order
        if step not in (3, 5):
            sample = tuple(a[step : step + 1] for a in data.train)
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grad(params, sample))
    np.testing.assert_allclose(np.load(tmp_path / "params.npz")["w"], params["w"], rtol=1e-14)


def test_tensorboard_without_tensorboardx_is_a_usage_error(capsys, tmp_path, no_compiling):
    if importlib.util.find_spec("tensorboardX") is not None:
        pytest.skip("tensorboardX is installed")
    code, _, err = run_cli(["train", "custom", "--tensorboard", "--out", tmp_path], capsys)
    assert code == cli.EXIT_USAGE and "pip install 'jaxnets[tensorboard]'" in err
