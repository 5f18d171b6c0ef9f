"""The autograd lessons, checked against exact math."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.lessons import autograd_basics as ab

X = jnp.array([1.0, 2.0, 3.0], jnp.float64)


def test_autograd_lessons_are_the_calculus():
    assert float(ab.scalar_grad(jnp.float64(1.0))) == 2.0
    assert "scalar" in ab.vector_grad_error(X)
    np.testing.assert_array_equal(ab.vector_vjp(X, jnp.ones(3, jnp.float64)), 2 * X)
    np.testing.assert_allclose(ab.vector_mean_grad(X), 2 * X / 3, rtol=1e-15)
    np.testing.assert_array_equal(ab.detach_grad(X), X**2)
    np.testing.assert_array_equal(ab.accumulated_grad(X, 3), 6 * X)
    loss, gx, gy = ab.graph_grads(X, 2 * X)
    assert float(loss) == 28.0
    np.testing.assert_array_equal(gx, 2 * X)
    np.testing.assert_array_equal(gy, X)
    assert "mul" in ab.graph_text(X, X) and "reduce_sum" in ab.graph_text(X, X)


def test_lessons_cover_every_loss_and_reduction():
    results = ab.lessons(ab.draw_inputs(jax.random.key(0), jnp.float64))
    for name in ab.LOSSES:
        for reduction in ab.REDUCTIONS:
            assert np.isfinite(float(results[f"{name}_{reduction}"]))
    # sum = mean * count for the elementwise losses (4 x 5 inputs).
    assert float(results["mse_sum"]) == pytest.approx(20 * float(results["mse_mean"]), rel=1e-14)
