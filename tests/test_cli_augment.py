"""``--augment``: digits' batches shifted inside the compiled step, by command and script."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import cli
from jaxnets.cli import options, run
from jaxnets.data import plan as plan_lib
from jaxnets.experiments import digits

from .helpers import run_cli

# 1437 = 3 x 479: no partial last batch, so the step compiles one batch shape, not two.
ARGV = ["train", "digits", "--batch-size", 479, "--seed", 5, "--chunk-size", 3, "--no-progress"]


def read_losses(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return np.asarray([json.loads(line)["loss"] for line in lines])


def test_augmented_run_trains_and_reports_accuracy(capsys, tmp_path):
    code, out, _ = run_cli(
        [*ARGV, "--epochs", 3, "--lr", 0.01, "--augment", "--out", tmp_path], capsys
    )
    assert code == 0 and "eval accuracy" in out
    losses = read_losses(tmp_path)
    assert len(losses) == 9 and np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "completed" and 0.3 < result["eval"]["accuracy"] <= 1.0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["options"]["augment"] is True and "--augment" in config["command"]


@pytest.mark.slow
def test_augmented_resume_and_module_train_alike(capsys, tmp_path):
    """Two epochs, then a resume to three that keeps --augment: the module's losses, bit-equal."""
    argv = [*ARGV, "--checkpoint-every", 3, "--out", tmp_path]
    assert run_cli([*argv, "--epochs", 2, "--augment"], capsys)[0] == 0
    assert run_cli([*argv, "--epochs", 3, "--resume"], capsys)[0] == 0
    losses = read_losses(tmp_path)
    params, data, data_key = cli.initial_values(digits, 5, 479, jnp.float32)
    _, augmented = digits.train(params, *data.train, epochs=3, batch_size=479, seed=5, augment=True)
    np.testing.assert_array_equal(np.ravel(augmented), losses)
    first = plan_lib.gather(data.train, plan_lib.order(digits.batch_plan(479), data_key, 0, 1437))
    unshifted = digits.loss_fn(params, jax.tree.map(lambda a: a[:479], first))
    assert float(unshifted) != losses[0]  # the first batch was transformed


def test_augment_needs_an_experiment_with_one(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(run, "make_runner", lambda *a, **k: pytest.fail("compiled"))
    code, _, err = run_cli(["train", "mlp", "--augment", "--out", tmp_path], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--augment: mlp has no augmentation (experiments with one: digits)" in err


def test_resume_refuses_to_switch_augmentation():
    problem = options.defining_difference({"augment": True}, {"augment": False}, "the run's")
    assert problem.startswith("--augment differs from the run's (no --augment)")
    assert options.Options("digits", None, 1e-3, 32, epochs=1, augment=True).command()[-1] == (
        "--augment"
    )


def test_script_takes_augment(capsys, tmp_path):
    digits.main(
        ["--augment", "--epochs", "1", "--batch-size", "479", "--plot", str(tmp_path / "l.png")]
    )
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and (tmp_path / "l.png").exists()
    with pytest.raises(SystemExit):
        digits.main(["--help"])
    assert "--augment" in capsys.readouterr().out
