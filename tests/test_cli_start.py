"""``jaxnets`` starts fast (no JAX for help and listing) and answers bad input in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxnets import cli

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
# What `--help` and `list` must not import: they would cost seconds before the first line.
HEAVY = ("jax", "jaxlib", "orbax", "flax", "optax", "numpy", "rich", "matplotlib")


def imported_modules(*argv):
    """The modules ``python -X importtime -m jaxnets.cli ARGV`` imports, and its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jaxnets.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return [line.rsplit("|", 1)[1].strip() for line in lines[1:]], done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["list"]])
def test_help_and_list_import_no_jax(argv):
    modules, stdout = imported_modules(*argv)
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    assert not heavy, heavy
    experiments = [m for m in modules if m.startswith("jaxnets.experiments.")]
    assert experiments in ([], ["jaxnets.experiments.catalog"])
    assert "jaxnets.cli.run" not in modules and "jaxnets.cli.outputs" not in modules
    assert stdout.strip()


def test_list_shows_the_catalogue(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    mlp = out.splitlines()[0].split()
    assert mlp[:5] == ["mlp", "steps", "500", "lr", "1e-06"]
    assert "digits" in out and "epochs 10" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "9223372036854775808"], "expected an integer from 0 to 2**63 - 1, got 92"),
        (["--seed", "-1"], "expected an integer from 0 to 2**63 - 1, got -1"),
        (["--seed", "x"], "expected an integer from 0 to 2**63 - 1, got 'x'"),
        (["--lr", "inf"], "--lr must be finite and > 0, got 'inf'"),
        (["--lr", "fast"], "--lr must be a real number, got 'fast'"),
        (["--steps", "1.5"], "expected an integer >= 1, got '1.5'"),
        (["--process-id", "-1"], "expected an integer >= 0, got '-1'"),
        (["--dtype", "float16"], "invalid choice: 'float16'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, out, err = run_cli(["train", "mlp", *argv, "--out", tmp_path / "run"], capsys)
    assert code == cli.EXIT_USAGE
    assert err.startswith("jaxnets train: error: argument ") and message in err
    assert err.count("\n") == 1 and not out
    assert not (tmp_path / "run").exists()


def test_the_largest_seed_is_accepted(capsys):
    args = cli.build_parser().parse_args(["train", "mlp", "--seed", str(2**63 - 1)])
    assert cli.resolve(args).seed == 2**63 - 1


def test_an_out_that_is_a_file_is_refused(capsys, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a run\n")
    code, out, err = run_cli(["train", "linear", "--epochs", 1, "--out", taken], capsys)
    assert code == cli.EXIT_USAGE and not out
    assert err == f"jaxnets train: error: --out: {taken} exists and is not a directory\n"
    assert taken.read_text() == "not a run\n"


def test_an_out_inside_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    code, _, err = run_cli(["train", "linear", "--epochs", 1, "--out", out], capsys)
    assert code == cli.EXIT_USAGE
    assert err == f"jaxnets train: error: --out: cannot create {out}: Not a directory\n"


def test_an_unwritable_out_is_refused(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user can write anywhere (root): permissions cannot deny it")
        code, out, err = run_cli(["train", "linear", "--epochs", 1, "--out", locked], capsys)
        assert code == cli.EXIT_USAGE and not out
        assert err == f"jaxnets train: error: --out: {locked} is not writable\n"
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
