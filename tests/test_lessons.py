"""The autograd lessons and the epoch loop, checked against exact math."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import data, optim
from jaxnets.experiments import autograd_basics as ab
from jaxnets.experiments import module_regression
from jaxnets.train import TrainState, epoch_loop, make_train_step

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


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (8, 4, False)])
def test_epoch_loop_is_a_loop_over_the_loader_plan(n, batch_size, drop_last):
    params, x, y = module_regression.init(jax.random.key(0), n=n, dtype=jnp.float64)
    orders = np.stack([data.epoch_order(n, seed=1, epoch=e) for e in range(2)])
    optimizer = optim.sgd(0.1)
    final, losses = jax.jit(
        lambda p: epoch_loop(
            module_regression.loss_fn, optimizer, p, (x, y), orders, batch_size, drop_last=drop_last
        )
    )(params)
    step = make_train_step(module_regression.loss_fn, optimizer)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    expected = []
    for order in orders:
        for index in data.batch_indices(n, batch_size, drop_last=drop_last, order=order):
            state, loss = step(state, (x[index], y[index]))
            expected.append(float(loss))
    np.testing.assert_allclose(np.ravel(losses), expected, rtol=1e-14)
    np.testing.assert_allclose(
        final["linear"]["kernel"], state.params["linear"]["kernel"], rtol=1e-14
    )
