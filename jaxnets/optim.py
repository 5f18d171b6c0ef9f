"""``torch.optim`` optimisers as optax ``GradientTransformation``s.

``optax.apply_updates(params, updates)`` with these reproduces ``torch.optim.<Name>.step()`` step
for step, option for option. ``learning_rate`` may be a float or an optax schedule (a function of
the step count, counted from 0 like torch's scheduler steps).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["sgd"]

ScalarOrSchedule = float | optax.Schedule


def _check_hyper(name: str, value: Any, label: str) -> None:
    """torch's ``ValueError(f"Invalid {label}: {value}")`` for negative hyper-parameters."""
    if callable(value):
        return
    if not isinstance(value, int | float) or math.isnan(value) or value < 0.0:
        raise ValueError(f"Invalid {label}: {value}")


class SgdMomentumState(NamedTuple):
    """Momentum buffers and whether they have been filled (torch creates them on the first step)."""

    momentum_buffer: optax.Updates
    initialised: jax.Array


def _torch_momentum(momentum: float, dampening: float, nesterov: bool) -> optax.GradientTransformation:
    """torch's SGD momentum: ``buf = g`` on the first step, then ``momentum*buf + (1-dampening)*g``.

    optax.trace starts from a zero buffer and has no dampening, so it differs from torch on the
    first step whenever ``dampening != 0``.
    """

    def init_fn(params: optax.Params) -> SgdMomentumState:
        return SgdMomentumState(jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.bool_))

    def update_fn(updates, state, params=None):
        del params

        def buffer(g, buf):
            return jnp.where(state.initialised, momentum * buf + (1.0 - dampening) * g, g)

        new_buf = jax.tree.map(buffer, updates, state.momentum_buffer)
        if nesterov:
            updates = jax.tree.map(lambda g, b: g + momentum * b, updates, new_buf)
        else:
            updates = new_buf
        return updates, SgdMomentumState(new_buf, jnp.ones((), jnp.bool_))

    return optax.GradientTransformation(init_fn, update_fn)


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.SGD`` as an optax transformation.

    Per step, with ``g`` the gradient: ``g = -g`` if ``maximize``; ``g += weight_decay * p``;
    with momentum ``buf = g`` on the first step, else ``buf = momentum*buf + (1-dampening)*g``, and
    ``g = g + momentum*buf`` (nesterov) or ``g = buf``; finally ``p -= lr * g``.

    Args:
      lr: learning rate (float or optax schedule).
      momentum: momentum factor.
      dampening: dampening for momentum.
      weight_decay: L2 penalty added to the gradient.
      nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = sgd(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 6) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.9, 2.1]
    """
    _check_hyper("lr", lr, "learning rate")
    _check_hyper("momentum", momentum, "momentum value")
    _check_hyper("weight_decay", weight_decay, "weight_decay value")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    transforms = []
    if maximize:
        transforms.append(optax.scale(-1.0))
    if weight_decay != 0:
        transforms.append(optax.add_decayed_weights(weight_decay))
    if momentum != 0:
        transforms.append(_torch_momentum(momentum, dampening, nesterov))
    transforms.append(optax.scale_by_learning_rate(lr))
    return optax.chain(*transforms)
