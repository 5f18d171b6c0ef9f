"""The training loop every experiment shares: one ``lax.scan`` of a pure train step under ``jit``.

A step is ``(state, batch) -> (state, loss)``. ``train_loop`` is traced inside an experiment's
jitted ``train``, so the whole run is one XLA program with no Python per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainState", "make_train_step", "train_loop"]

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]


class TrainState(NamedTuple):
    """Everything a step changes: parameters, optimiser state and the step count."""

    params: PyTree
    opt_state: optax.OptState
    step: jax.Array


def make_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, *, with_grads: bool = False
) -> Callable[[TrainState, PyTree], tuple[TrainState, Any]]:
    """Build ``train_step(state, batch) -> (state, loss)`` from ``loss_fn(params, batch)``.

    The loss is the one computed before the update, as ``loss.item()`` is in a torch loop that
    calls ``backward`` and ``step`` afterwards. With ``with_grads`` the step also emits the
    gradients (``(loss, grads)``), for scripts that print them as the tutorials do.
    """

    def train_step(state: TrainState, batch: PyTree) -> tuple[TrainState, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(params, opt_state, state.step + 1)
        return new_state, ((loss, grads) if with_grads else loss)

    return train_step


def train_loop(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    *,
    batch: PyTree = None,
    batches: PyTree = None,
    steps: int | None = None,
    with_grads: bool = False,
) -> tuple[PyTree, Any]:
    """Run ``steps`` optimiser steps as one ``lax.scan``; call it inside ``jax.jit``.

    Either ``batch`` is used at every step (full-batch training, ``steps`` required), or
    ``batches`` is a pytree whose leaves have a leading axis of one entry per step.

    Returns:
      ``(final_params, losses)`` with ``losses`` of shape ``(steps,)``; with ``with_grads``,
      ``(final_params, (losses, grads))`` where each grads leaf has a leading step axis.
    """
    if (batches is None) == (steps is None):
        raise ValueError("pass exactly one of `batches` (one per step) or `steps` (with `batch`)")
    train_step = make_train_step(loss_fn, optimizer, with_grads=with_grads)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    if batches is not None:
        state, outputs = jax.lax.scan(train_step, state, batches)
    else:
        state, outputs = jax.lax.scan(lambda s, _: train_step(s, batch), state, None, length=steps)
    return state.params, outputs
