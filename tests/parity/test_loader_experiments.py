"""The DataLoader experiments (seed 004's module regression, and digits) and the autograd
lessons, against their torch originals."""

import json

import pytest

from parity import runner
from parity.experiments import EXPERIMENTS


def _assert_all_pass(results):
    for result in results:
        assert result.passed, (result.experiment, result.dtype, result.failures())


@pytest.mark.parametrize("seed,batch_size", [(0, None), (3, 7)])
def test_module_regression(seed, batch_size):
    """batch 7 over 100 samples leaves a partial batch of 2 in every epoch."""
    results = runner.run(
        EXPERIMENTS["module_regression"], seed=seed, steps=3, batch_size=batch_size
    )
    _assert_all_pass(results)
    assert len(results[0].torch_losses) == (30 if batch_size is None else 45)


def test_digits_one_epoch():
    results = runner.run(EXPERIMENTS["digits"], seed=1, steps=1)
    _assert_all_pass(results)
    assert len(results[0].jax_losses) == 45
    assert abs(results[0].extra["jax_accuracy"] - results[0].extra["torch_accuracy"]) <= 0.01


def test_autograd_lessons():
    results = runner.run(EXPERIMENTS["autograd"], seed=2)
    _assert_all_pass(results)
    assert {c.quantity for c in results[0].checks} >= {
        "vector backward",
        "value detach_grad",
        "value cross_entropy_mean_grad",
        "value bce_sum_grad",
    }


def test_parity_at_another_seed_passes_below_the_quality_floor(tmp_path, capsys):
    """digits at seed 1 reaches 0.931 in both frameworks, under the default run's 0.95 floor: a
    parity run still passes (the ports agree), and says the floor was missed as a note."""
    from parity.__main__ import main

    argv = ["digits", "--seed", "1", "--dtype", "float64"]
    code = main([*argv, "--json", str(tmp_path / "p.json"), "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "jax_accuracy" in out and "torch_accuracy" in out
    checks = json.loads((tmp_path / "p.json").read_text())["experiments"]["digits"]["float64"]
    assert not any(c["quantity"].startswith("quality") for c in checks["checks"])


def test_quality_floor_is_a_labelled_check_of_the_default_run():
    (result,) = runner.run(EXPERIMENTS["digits"], seed=0, dtypes=("float64",))
    quality = [c for c in result.checks if c.quantity == "quality accuracy"]
    assert len(quality) == 1 and not quality[0].gating and quality[0].passed, quality
