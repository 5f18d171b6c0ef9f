"""``torch.optim.SGD``."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnets.optim._common import (
    ScalarOrSchedule,
    check_learning_rate,
    check_non_negative,
    leafwise_transform,
    torch_chain,
)


class SgdState(NamedTuple):
    """Steps taken and torch's ``momentum_buffer`` per parameter."""

    count: jax.Array
    momentum_buffer: optax.Updates


def scale_by_torch_momentum(
    momentum: float, dampening: float, nesterov: bool
) -> optax.GradientTransformation:
    """torch's SGD momentum: ``buf = g`` on the first step, then ``momentum*buf + (1-dampening)*g``.

    ``optax.trace`` starts from a zero buffer and has no dampening, so it differs from torch on the
    first step whenever ``dampening != 0``.

    Args:
      momentum: momentum factor.
      dampening: dampening applied to the gradient after the first step.
      nesterov: return ``g + momentum*buf`` instead of ``buf``.

    Returns:
      An ``optax.GradientTransformation`` with :class:`SgdState`.

    >>> tx = scale_by_torch_momentum(0.9, 0.5, nesterov=False)
    >>> state = tx.init(jnp.zeros(1))
    >>> for _ in range(2):
    ...     buf, state = tx.update(jnp.ones(1), state)
    >>> round(float(buf[0]), 6)
    1.4
    """

    def update_leaf(step, g, buf):
        buf = jnp.where(step == 1, g, momentum * buf + (1.0 - dampening) * g)
        return (g + momentum * buf if nesterov else buf), buf

    return leafwise_transform(lambda p: (jnp.zeros_like(p),), update_leaf, SgdState)


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

    Raises:
      ValueError: torch's message for a negative ``lr``, ``momentum`` or ``weight_decay``, or
        for ``nesterov`` without momentum or with dampening.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = sgd(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 6) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.9, 2.1]
    """
    check_learning_rate(lr)
    check_non_negative(momentum, "momentum value")
    check_non_negative(weight_decay, "weight_decay value")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    direction = [scale_by_torch_momentum(momentum, dampening, nesterov)] if momentum != 0 else []
    return torch_chain(direction, lr, maximize=maximize, weight_decay=weight_decay)
