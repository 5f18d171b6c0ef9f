"""``python -m parity``: arguments, outputs, exit codes, and the tutorial's own numbers."""

import json
import tempfile

import numpy as np
import pytest
import torch

from parity import runner
from parity.__main__ import build_parser, main
from parity.torch_ref.cnn import Net


def _tutorial_cnn_losses(seed, batch_size, steps):
    """Seed 001's code as printed, with the batch dimension widened and the step repeated."""
    import torch.nn as nn
    import torch.optim as optim

    torch.manual_seed(seed)
    net = Net()
    input_data = torch.randn(batch_size, 1, 32, 32)
    target = torch.randn(batch_size, 2)
    criterion = nn.L1Loss()
    optimizer = optim.SGD(net.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        out = net(input_data)
        loss = criterion(out, target)
        net.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_cnn_seed_7_batch_4_reproduces_the_tutorial(tmp_path):
    out = tmp_path / "out.json"
    code = main(
        [
            "cnn",
            "--seed",
            "7",
            "--batch-size",
            "4",
            "--steps",
            "50",
            "--json",
            str(out),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["passed"] is True
    row = doc["experiments"]["cnn"]["float32"]
    assert row["torch_losses"] == _tutorial_cnn_losses(7, 4, 50)
    assert len(row["jax_losses"]) == 50 and len(row["float64_reference"]) == 50
    assert set(row["grad_max_abs_diff"]) >= {"fc1.kernel", "conv1.bias"}
    assert set(doc["experiments"]["cnn"]) == {"float32", "float64"}
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "cnn_float32.png",
        "cnn_float64.png",
    ]


def test_table_has_one_row_per_experiment_and_dtype(tmp_path, capsys):
    code = main(
        [
            "linear",
            "--steps",
            "5",
            "--dtype",
            "float64",
            "--json",
            str(tmp_path / "j"),
            "--plots",
            str(tmp_path),
        ]
    )
    assert code == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("linear")]
    assert len(rows) == 1 and rows[0].rstrip().endswith("pass")


@pytest.mark.parametrize(
    "argv", [["nosuch"], ["--steps", "0"], ["linear", "--batch-size", "2"], ["--dtype", "half"]]
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_failure_exits_1(tmp_path, monkeypatch):
    from parity import compare

    monkeypatch.setattr(compare, "F64_LOSS_RTOL", -1.0)
    code = main(
        [
            "linear",
            "--steps",
            "2",
            "--dtype",
            "float64",
            "--json",
            str(tmp_path / "j"),
            "--plots",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert json.loads((tmp_path / "j").read_text())["passed"] is False
    assert np.isfinite(
        json.loads((tmp_path / "j").read_text())["experiments"]["linear"]["float64"]["torch_losses"]
    ).all()


@pytest.fixture
def no_experiments(monkeypatch):
    """Fails the test if anything starts running experiments: bad arguments are found first."""

    def refuse(*args, **kwargs):
        raise AssertionError("experiments started before the arguments were checked")

    monkeypatch.setattr(runner, "configure", refuse)
    monkeypatch.setattr(runner, "run", refuse)


def _exits_2_in_one_line(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_json_under_a_file_exits_2_before_running(tmp_path, no_experiments, capsys):
    (tmp_path / "file").write_text("")
    for json_path in (tmp_path / "file" / "out.json", tmp_path / "file" / "sub" / "out.json"):
        err = _exits_2_in_one_line(
            ["linear", "--json", str(json_path), "--plots", str(tmp_path)], capsys
        )
        assert f"--json {json_path}: {tmp_path / 'file'} is a file, not a directory" in err


def test_json_naming_a_directory_exits_2_before_running(tmp_path, no_experiments, capsys):
    err = _exits_2_in_one_line(["--json", str(tmp_path), "--plots", str(tmp_path)], capsys)
    assert f"--json {tmp_path}: is a directory" in err


def test_json_in_an_unwritable_directory_exits_2_before_running(tmp_path, no_experiments, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        try:
            with tempfile.TemporaryFile(dir=locked):
                pytest.skip("this user can write to a read-only directory (root)")
        except PermissionError:
            pass
        err = _exits_2_in_one_line(
            ["--json", str(locked / "out" / "parity.json"), "--plots", str(tmp_path)], capsys
        )
        assert f"cannot create files in {locked}" in err
    finally:
        locked.chmod(0o700)


def test_plots_naming_a_file_exits_2_before_running(tmp_path, no_experiments, capsys):
    plots = tmp_path / "plots.png"
    plots.write_text("")
    err = _exits_2_in_one_line(
        ["linear", "--json", str(tmp_path / "out.json"), "--plots", str(plots)], capsys
    )
    assert f"--plots {plots}: is a file, not a directory" in err


@pytest.mark.parametrize("seed", [str(2**64), str(-(2**63) - 1), "1.5", "zero"])
def test_seed_outside_torch_manual_seed_range_exits_2(seed, no_experiments, capsys):
    with pytest.raises(SystemExit) as info:
        main(["linear", f"--seed={seed}"])
    assert info.value.code == 2
    assert "argument --seed" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [-(2**63), -1, 2**64 - 1])
def test_seed_accepts_all_of_torch_manual_seed_range(seed):
    assert build_parser().parse_args([f"--seed={seed}"]).seed == seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the range is torch's own


def _parity_process(argv, cache_dir):
    import os
    import subprocess
    import sys

    from jaxnets import compile_cache
    from tests.helpers import ROOT

    env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV_OFF}
    env[compile_cache.ENV_DIR] = str(cache_dir)
    return subprocess.run(
        [sys.executable, "-m", "parity", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_writes_everything_before_it_ends_and_fills_the_cache(tmp_path):
    """The process ends without the interpreter's teardown: the table, the JSON, the plots and
    every compiled program must be written and flushed before that, and its status is main's."""
    argv = ["linear", "autograd", "--json", str(tmp_path / "p.json"), "--plots", str(tmp_path)]
    runs = [_parity_process(argv, tmp_path / "cache") for _ in range(2)]
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert "linear" in result.stdout and "autograd" in result.stdout
        assert json.loads((tmp_path / "p.json").read_text())["passed"] is True
        for name in ("linear_float64", "linear_float32", "autograd_float32"):
            assert (tmp_path / f"{name}.png").stat().st_size > 1000
    cold, warm = (r.stdout.strip().splitlines()[-1].split(": ", 1)[1] for r in runs)
    assert cold.startswith("0 of") and not cold.endswith(" 0 compiled"), cold
    assert warm.endswith(" 0 compiled") and not warm.startswith("0 of"), warm


def test_the_command_module_imports_neither_torch_nor_jax_before_it_runs():
    """``entry_point`` tunes the process (allocator, garbage collector) before the heavy imports,
    which only ``main`` and ``build_parser`` make."""
    from tests.helpers import run_clean

    run_clean(
        """
        import sys

        import parity.__main__

        heavy = sorted({"torch", "jax", "flax", "matplotlib"} & set(sys.modules))
        assert not heavy, heavy
        parity.__main__.build_parser()
        assert {"torch", "jax"} <= set(sys.modules)
        """
    )
