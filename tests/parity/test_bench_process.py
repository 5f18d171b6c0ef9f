"""parity.bench --whole-process and the PyTorch tutorials as scripts: the machinery, not speed."""

import json
import subprocess
import sys

import numpy as np
import pytest

from parity import bench, bench_process
from tests.helpers import ROOT

pytestmark = pytest.mark.parity


def _lines(argv, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", *argv, "--plot", str(tmp_path / f"{argv[0]}.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    assert (tmp_path / f"{argv[0]}.png").stat().st_size > 1000
    return result.stdout.splitlines()


def test_the_torch_tutorial_prints_what_the_jaxnets_script_prints(tmp_path):
    torch_out = _lines(["parity.torch_ref.linear", "--epochs", "4"], tmp_path)
    jax_out = _lines(["jaxnets.experiments.linear_regression", "--epochs", "4"], tmp_path)
    assert len(torch_out) == len(jax_out) == 1 + 4 * 4 + 2
    for got, want in zip(jax_out[:-1], torch_out[:-1], strict=True):
        got_words, want_words = got.split(), want.split()
        assert got_words[:-1] == want_words[:-1]
        np.testing.assert_allclose(float(got_words[-1]), float(want_words[-1]), rtol=1e-5)
    assert torch_out[-1].startswith("loss curve saved to")


@pytest.mark.parametrize(("name", "span"), [("mlp", "--steps"), ("cnn", "--steps")])
def test_the_torch_tutorials_train_and_plot(tmp_path, name, span):
    out = _lines([f"parity.torch_ref.{name}", span, "3"], tmp_path)
    assert len(out) == 4 and out[-1].startswith("loss curve saved to")
    losses = [float(line.split()[-1].split(":")[-1]) for line in out[:3]]
    assert losses[-1] < losses[0]


def test_ratios_are_per_repeat_and_the_table_lists_every_kind():
    timing = bench_process.ProcessTiming(
        "mlp", {"torch": [2.0, 4.0], "cold": [4.0, 2.0], "warm": [1.0, 2.0]}
    )
    assert timing.ratio("cold") == [0.5, 2.0]
    assert timing.to_json()["median_ratio"] == {"cold": 1.25, "warm": 2.0}
    only_jax = bench_process.ProcessTiming("parity", {"cold": [9.0], "warm": [3.0]})
    rows = bench_process.table([timing, only_jax]).splitlines()
    assert rows[2].startswith("| mlp | 3.00 [2.00-4.00] | 3.00 [2.00-4.00] | 1.50 [1.00-2.00]")
    assert rows[3] == "| parity | - | 9.00 [9.00-9.00] | 3.00 [3.00-3.00] | - | - |"


def test_whole_process_runs_end_to_end(tmp_path):
    path = tmp_path / "whole.json"
    assert bench.main(["--whole-process", "linear", "--repeats", "1", "--json", str(path)]) == 0
    (case,) = json.loads(path.read_text())["cases"]
    assert case["name"] == "linear"
    assert {k: len(v) for k, v in case["seconds"].items()} == {"torch": 1, "cold": 1, "warm": 1}
    assert all(s > 0 for v in case["seconds"].values() for s in v)


def test_unknown_cases_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--whole-process", "resnet"])
