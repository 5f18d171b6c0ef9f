"""jaxnets.train's batch_transform: each step's batch transformed in the step with step_key."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.data import Plan
from jaxnets.train import fit, init_loop_state, make_runner, run_chunks, run_keys, step_key


def loss_fn(params, batch):
    return jnp.sum((params[None, :] - batch) ** 2)


def jitter(key, batch):
    return batch + jax.random.uniform(key, batch.shape, batch.dtype)


def test_each_step_sees_its_keyed_transform():
    data = jnp.arange(4.0).reshape(2, 2)
    key = run_keys(3).data
    final, losses = fit(
        loss_fn, optax.sgd, jnp.zeros((2,)), data, steps=3, learning_rate=0.1, key=key,
        batch_transform=jitter,
    )  # fmt: skip
    params = np.zeros((2,))
    for step in range(3):
        batch = np.asarray(jitter(step_key(key, step), data))
        expect = np.sum((params - batch) ** 2)
        np.testing.assert_allclose(losses[step], expect, rtol=1e-12)
        params = params - 0.1 * np.sum(2 * (params - batch), axis=0)
    np.testing.assert_allclose(final, params, rtol=1e-12)
    _, plain = fit(loss_fn, optax.sgd, jnp.zeros((2,)), data, steps=3, learning_rate=0.1)
    assert not np.allclose(plain, losses)


def test_chunked_run_transforms_as_one_run_with_a_partial_last_batch():
    data = jnp.arange(10.0).reshape(5, 2)
    plan = Plan(2, shuffle=True)  # batches of 2, 2, 1: both branches of the step's cond
    key = run_keys(0).data
    runner = make_runner(loss_fn, optax.sgd, plan, n=5, donate=False, batch_transform=jitter)
    state = init_loop_state(jnp.zeros((2,)), optax.sgd, key)
    whole = np.concatenate(
        [c.losses for c in run_chunks(runner, state, data, 0.05, start=0, stop=7, chunk_size=7)]
    )
    pieces = np.concatenate(
        [c.losses for c in run_chunks(runner, state, data, 0.05, start=0, stop=7, chunk_size=2)]
    )
    np.testing.assert_array_equal(whole, pieces)
    plain = make_runner(loss_fn, optax.sgd, plan, n=5, donate=False)
    unchanged = next(run_chunks(plain, state, data, 0.05, start=0, stop=7, chunk_size=7)).losses
    assert np.isfinite(whole).all() and not np.allclose(whole, unchanged)


def test_step_keys_differ_by_step_and_from_the_epoch_orders():
    key = run_keys(0).data
    words = {
        np.asarray(jax.random.key_data(k)).tobytes()
        for k in [step_key(key, t) for t in range(4)]
        + [jax.random.fold_in(key, e) for e in range(4)]
    }
    assert len(words) == 8
