"""The one training loop: its plan, its guard, chunking, and what it compiles."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import data, optim
from jaxnets.experiments import mlp, module_regression
from jaxnets.train import fit, init_loop_state, make_runner, run_chunks, run_keys

SMALL_MLP = {"batch_size": 6, "d_in": 12, "hidden": 5, "d_out": 3}


def _python_loop(params, arrays, orders, batch_size, drop_last, learning_rate):
    """The tutorial's loop written out: per loader batch, loss, grad, optimiser update."""
    tx = optim.sgd(learning_rate)
    opt_state, losses = tx.init(params), []
    grad_fn = jax.jit(jax.value_and_grad(module_regression.loss_fn))
    for order in orders:
        for index in data.batch_indices(len(order), batch_size, drop_last=drop_last, order=order):
            loss, grads = grad_fn(params, tuple(a[index] for a in arrays))
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            losses.append(float(loss))
    return params, np.asarray(losses)


@pytest.mark.parametrize(
    "n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (8, 4, False), (5, 8, False)]
)
def test_loader_plan_trains_the_loaders_batches(n, batch_size, drop_last):
    params, dataset = module_regression.init(jax.random.key(0), n=n, dtype=jnp.float64)
    plan = data.Plan(batch_size, shuffle=True, drop_last=drop_last)
    key = jax.random.key(3)
    steps = 2 * plan.steps_per_epoch(n)
    final, losses = fit(
        module_regression.loss_fn,
        optim.sgd,
        params,
        dataset.train,
        steps=steps,
        learning_rate=0.1,
        plan=plan,
        key=key,
    )
    # The key's orders are data.epoch_order's for jax.random.key(3): the host loader's.
    orders = [data.epoch_order(n, seed=3, epoch=e) for e in range(2)]
    expected_params, expected = _python_loop(
        params, dataset.train, orders, batch_size, drop_last, 0.1
    )
    np.testing.assert_allclose(losses, expected, rtol=1e-13)
    np.testing.assert_allclose(
        final["linear"]["kernel"], expected_params["linear"]["kernel"], rtol=1e-13
    )
    # Explicit orders (torch's sampler's, in parity) replace the key's.
    reversed_orders = np.stack([order[::-1] for order in orders])
    _, given = fit(
        module_regression.loss_fn,
        optim.sgd,
        params,
        dataset.train,
        steps=steps,
        learning_rate=0.1,
        plan=plan,
        orders=reversed_orders,
    )
    np.testing.assert_allclose(
        given,
        _python_loop(params, dataset.train, reversed_orders, batch_size, drop_last, 0.1)[1],
        rtol=1e-13,
    )


def test_a_new_learning_rate_compiles_nothing(compiled):
    params, dataset = mlp.init(jax.random.key(0), **SMALL_MLP)
    mlp.train(params, *dataset.train, steps=4, learning_rate=1e-3)
    with compiled() as names:
        _, losses = mlp.train(params, *dataset.train, steps=4, learning_rate=5e-4)
        _, other = mlp.train(params, *dataset.train, steps=4, learning_rate=2e-2)
    assert names == [], names
    assert losses[0] == other[0] and losses[-1] != other[-1]


def test_chunks_and_a_single_chunk_are_the_same_run():
    """The command runs chunks of the runner a module's train runs as one chunk: bit-equal."""
    params, dataset = module_regression.init(jax.random.key(1), n=10)
    plan = module_regression.batch_plan(4)
    key = run_keys(7).data
    final, losses = fit(
        module_regression.loss_fn,
        optim.sgd,
        params,
        dataset.train,
        steps=11,
        learning_rate=0.05,
        plan=plan,
        key=key,
    )
    runner = make_runner(module_regression.loss_fn, optim.sgd, plan, n=10)
    state = init_loop_state(jax.tree.map(jnp.copy, params), optim.sgd, key)
    chunks = list(run_chunks(runner, state, dataset.train, 0.05, start=0, stop=11, chunk_size=4))
    assert [c.stop for c in chunks] == [4, 8, 11]
    np.testing.assert_array_equal(np.concatenate([c.losses for c in chunks]), losses)
    for got, want in zip(
        jax.tree.leaves(chunks[-1].state.train.params), jax.tree.leaves(final), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def _explodes(params, batch):
    """A loss whose gradient is non-finite at step 2 (params reach 3)."""
    return jnp.sum(jnp.where(params >= 2.5, jnp.inf, params) * batch)


@pytest.mark.parametrize("guard", ["stop", "skip"])
def test_the_guard_freezes_or_skips_a_non_finite_step(guard):
    runner = make_runner(_explodes, optax.sgd, guard=guard)
    state = init_loop_state(jnp.ones((1,), jnp.float32), optax.sgd)
    state, (losses, finite) = runner(state, -jnp.ones((1,), jnp.float32), 1.0, length=4)
    assert finite.tolist() == [True, True, False, False]
    assert state.train.params.tolist() == [3.0]  # never moved past the last finite update
    if guard == "stop":
        assert int(state.bad_step) == 2 and int(state.train.step) == 2
    else:
        assert int(state.skipped) == 2 and int(state.train.step) == 4


def _sqrt_loss(params, batch):
    """Finite (0) at params 0, but with an infinite gradient there."""
    return jnp.sum(jnp.sqrt(params) * batch)


def test_non_finite_gradients_under_a_finite_loss():
    """Stopping reads the loss: the poisoned update shows as the next step's loss. Skipping
    checks the gradients too, so the parameters stay clean."""
    batch = jnp.ones((1,), jnp.float32)

    def start():  # a fresh state per run: the runner donates it
        return init_loop_state(jnp.zeros((1,), jnp.float32), optax.sgd)

    stop = make_runner(_sqrt_loss, optax.sgd, guard="stop")
    state, (_, finite) = stop(start(), batch, 0.1, length=3)
    assert finite.tolist() == [True, False, False] and int(state.bad_step) == 1
    skip = make_runner(_sqrt_loss, optax.sgd, guard="skip")
    state, (_, finite) = skip(start(), batch, 0.1, length=3)
    assert finite.tolist() == [False, False, False] and int(state.skipped) == 3
    assert state.train.params.tolist() == [0.0]


def test_fit_checks_its_options_before_compiling():
    with pytest.raises(ValueError, match="steps"):
        fit(_explodes, optax.sgd, jnp.ones(1), jnp.ones(1), steps=0, learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        fit(_explodes, optax.sgd, jnp.ones(1), jnp.ones(1), steps=1, learning_rate=-1.0)
    with pytest.raises(ValueError, match="leaves no batch"):
        fit(
            _explodes,
            optax.sgd,
            jnp.ones(1),
            jnp.ones((3,)),
            steps=1,
            learning_rate=0.1,
            plan=data.Plan(4, drop_last=True),
        )
    with pytest.raises(ValueError, match="guard"):
        make_runner(_explodes, optax.sgd, guard="ignore")


def test_stacked_runs_are_the_runs_one_by_one():
    """``fit(stacked=True)`` trains runs stacked on a leading axis at once (an ensemble of
    perturbed starts): each is the run ``fit`` gives it alone, batches and all."""
    plan = data.Plan(batch_size=3, shuffle=True, drop_last=False)
    key = jax.random.key(1)
    params = jnp.stack([jnp.zeros(2), jnp.ones(2), jnp.full(2, -0.5)])
    arrays = jax.random.normal(jax.random.key(2), (3, 7, 2))

    def loss_fn(p, batch):
        return jnp.mean((batch - p[None, :]) ** 2)

    finals, losses = fit(
        loss_fn,
        optax.sgd,
        params,
        arrays,
        steps=5,
        learning_rate=0.1,
        plan=plan,
        key=key,
        stacked=True,
    )
    assert losses.shape == (3, 5)
    for i in range(3):
        final, alone = fit(
            loss_fn,
            optax.sgd,
            params[i],
            arrays[i],
            steps=5,
            learning_rate=0.1,
            plan=plan,
            key=key,
        )
        np.testing.assert_allclose(finals[i], final, rtol=1e-6)
        np.testing.assert_allclose(losses[i], alone, rtol=1e-6)
