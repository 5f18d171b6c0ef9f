"""Each experiment against its torch original, in float64 and float32, on short runs.

``python -m parity`` runs the full-length versions; these keep the same rules on a few steps.
"""

import jax
import numpy as np
import pytest

from parity import compare, runner
from parity.experiments import EXPERIMENTS

SMALL_MLP = {"n": 16, "d_in": 40, "hidden": 12, "d_out": 4}

runner.configure()


def _assert_all_pass(results):
    for result in results:
        assert result.passed, (result.dtype, result.failures())


@pytest.mark.parametrize("seed", [0, 3])
def test_linear(seed):
    results = runner.run(EXPERIMENTS["linear"], seed=seed, steps=20)
    _assert_all_pass(results)
    assert [r.jax_losses.shape for r in results] == [(60,), (60,)]


@pytest.mark.parametrize("seed", [0, 5])
def test_mlp(seed):
    results = runner.run(EXPERIMENTS["mlp"], seed=seed, steps=40, **SMALL_MLP)
    _assert_all_pass(results)
    f64 = results[0]
    np.testing.assert_allclose(f64.jax_losses, f64.torch_losses, rtol=1e-10)
    assert max(f64.grad_rel_diff.values()) < 1e-12


@pytest.mark.parametrize("seed,batch_size", [(0, 1), (2, 3)])
def test_cnn(seed, batch_size):
    results = runner.run(EXPERIMENTS["cnn"], seed=seed, steps=4, batch_size=batch_size)
    _assert_all_pass(results)
    assert results[1].float64_reference is not None


def test_different_seeds_give_different_trajectories():
    first = runner.run(EXPERIMENTS["mlp"], seed=1, steps=3, dtypes=("float64",), **SMALL_MLP)
    second = runner.run(EXPERIMENTS["mlp"], seed=2, steps=3, dtypes=("float64",), **SMALL_MLP)
    assert not np.array_equal(first[0].torch_losses, second[0].torch_losses)


def test_a_broken_port_fails_and_names_the_layer(monkeypatch):
    """A naive flatten (NHWC order, a plain reshape) must fail both dtypes' rules, and the
    per-layer check must name fc1, the first module whose output differs."""
    import jax

    from jaxnets.experiments import cnn

    # Compiled programs are cached by function, not by the globals they traced: drop them on
    # both sides of the broken port so that neither run sees the other's.
    jax.clear_caches()
    monkeypatch.setattr(cnn, "_FLATTEN", lambda x: x.reshape(x.shape[0], -1))
    try:
        # Its float32 rows fail torch's error alone, so the ensemble runs (2 members keep it
        # short): measured around the port's own float64 run, it must not rescue a wrong port.
        results = runner.run(EXPERIMENTS["cnn"], seed=0, steps=3, members=2)
    finally:
        jax.clear_caches()
    for result in results:
        assert not result.passed
        failures = "\n".join(result.failures())
        assert "grad fc1.kernel" in failures and "jax" in failures and "torch" in failures
        (layers,) = [c for c in result.checks if c.quantity == "layers"]
        assert not layers.passed and "fc1" in layers.detail
    assert any("s=" in c.rule for c in results[1].checks)  # float32: the ensemble did run


def test_loss_rules_report_the_first_bad_step():
    torch_losses = np.array([4.0, 2.0, 1.0, 0.5])
    jax_losses = torch_losses.copy()
    jax_losses[2] += 1e-6
    check = compare.float64_losses(jax_losses, torch_losses)
    assert not check.passed and "first step breaking the rule: 2" in check.detail
    reference = torch_losses + 1e-9
    assert compare.float32_losses(torch_losses + 2e-9, torch_losses, reference).passed
    bad = compare.float32_losses(torch_losses + 1e-3, torch_losses, reference)
    assert not bad.passed and "first step breaking the rule: 0" in bad.detail
    nan = compare.float64_losses(np.array([4.0, np.nan, 1.0, 0.5]), torch_losses)
    assert not nan.passed and "step breaking the rule: 1" in nan.detail


def test_float32_gradient_summed_over_a_large_batch_passes():
    """conv2.bias's gradient sums 64*28*28 float32 terms: JAX and torch round differently, each
    about as far from the float64 value, and a fixed tolerance between the two fails that."""
    results = runner.run(EXPERIMENTS["cnn"], seed=3, steps=1, batch_size=64, dtypes=("float32",))
    _assert_all_pass(results)


@pytest.mark.parametrize("name", ["mlp"])  # cnn's vmapped ensemble runs in the broken-port test
def test_the_experiment_ensemble_is_the_unperturbed_run_then_perturbed_ones(name):
    """The float32 rule's ensemble for an experiment (run only where torch's error alone does
    not bound a float32 result): its first member is the jaxnets float64 run itself, the others
    stay within rounding reach of it, all trained at once by the vmapped driver."""
    experiment = EXPERIMENTS[name]
    sizes = SMALL_MLP if name == "mlp" else {}
    steps = 3
    batch_size = 2 if name == "cnn" else None
    ref64 = experiment.run_torch(
        0, runner.TORCH_DTYPES["float64"], steps, batch_size, "cpu", **sizes
    )
    start64 = experiment.jax_inputs(ref64, **sizes)
    losses, grads = runner.ensemble64(experiment, start64, ref64, steps, members=3)
    run_losses, run_grads, _ = runner.run_jax(experiment, ref64, start64, steps)
    assert losses.shape == (4, run_losses.size)
    np.testing.assert_array_equal(losses[0], run_losses)
    spreads = []
    for leaf, members in zip(jax.tree.leaves(run_grads), jax.tree.leaves(grads), strict=True):
        np.testing.assert_array_equal(members[0], leaf)
        spreads.append(np.max(np.abs(members[1:] - leaf)))
        assert spreads[-1] <= 1e-5 * np.max(np.abs(leaf)) + 1e-12
    assert max(spreads) > 0  # the perturbation reached the gradients
    assert np.all(np.abs(losses[1:] - run_losses) <= 1e-5 * np.abs(run_losses))
