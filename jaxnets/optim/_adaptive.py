"""Per-coordinate step sizes without momentum moments: ``RMSprop``, ``Adagrad`` and ``Adadelta``.

optax has transforms of the same names, but each places ``eps`` or initialises its accumulator
differently from torch, so these mirror torch's ``_single_tensor_*`` arithmetic instead.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnets.optim._common import (
    ScalarOrSchedule,
    as_scalar,
    check_learning_rate,
    check_non_negative,
    leafwise_transform,
    lerp,
    torch_chain,
)


class RmspropState(NamedTuple):
    """torch's ``step``, ``square_avg`` and (centered only) ``grad_avg``."""

    count: jax.Array
    square_avg: optax.Updates
    grad_avg: optax.Updates


class AdagradState(NamedTuple):
    """torch's ``step`` and ``sum``."""

    count: jax.Array
    sum: optax.Updates


class AdadeltaState(NamedTuple):
    """torch's ``step``, ``square_avg`` and ``acc_delta``."""

    count: jax.Array
    square_avg: optax.Updates
    acc_delta: optax.Updates


def scale_by_torch_rms(
    alpha: float = 0.99, eps: float = 1e-8, centered: bool = False
) -> optax.GradientTransformation:
    """torch's RMSprop direction ``g / (sqrt(square_avg [- grad_avg^2]) + eps)``.

    Both averages start at zero and ``eps`` is added after the square root; optax's
    ``scale_by_rms`` adds it inside and starts ``nu`` at one by default.

    Args:
      alpha: smoothing constant of the averages.
      eps: added to the denominator.
      centered: subtract the squared running mean of the gradient (variance normalisation).

    Returns:
      An ``optax.GradientTransformation`` with :class:`RmspropState`.

    >>> tx = scale_by_torch_rms(alpha=0.75)
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 4) for v in direction.tolist()]
    [2.0, -2.0]
    """

    def init_leaf(p):
        return jnp.zeros_like(p), (jnp.zeros_like(p) if centered else None)

    def update_leaf(step, g, square_avg, grad_avg):
        del step
        square_avg = square_avg * alpha + (1 - alpha) * g * g
        if centered:
            grad_avg = lerp(grad_avg, g, 1 - alpha)
            avg = jnp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = jnp.sqrt(square_avg)
        return g / (avg + eps), square_avg, grad_avg

    return leafwise_transform(init_leaf, update_leaf, RmspropState)


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.RMSprop`` as an optax transformation.

    ``g = -g`` (maximize); ``g += wd*p``; ``d = g / (sqrt(avg of g^2 [- (avg of g)^2]) + eps)``;
    with momentum ``buf = momentum*buf + d`` (zero start, ``optax.trace``) and ``p -= lr*buf``,
    else ``p -= lr*d``. ``maximize`` is keyword-only here because torch's positional slots before
    it (``capturable``, ``foreach``) do not exist.

    Args:
      lr: learning rate (float or optax schedule).
      alpha: smoothing constant.
      eps: added to the denominator for numerical stability.
      weight_decay: L2 penalty added to the gradient.
      momentum: momentum factor.
      centered: normalise by the estimated variance instead of the second moment.
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps``, ``momentum``, ``weight_decay``
        or ``alpha``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = rmsprop(lr=0.01, alpha=0.75)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.98, 2.02]
    """
    check_learning_rate(lr)
    check_non_negative(eps, "epsilon value")
    check_non_negative(momentum, "momentum value")
    check_non_negative(weight_decay, "weight_decay value")
    check_non_negative(alpha, "alpha value")
    direction = [scale_by_torch_rms(alpha, eps, centered)]
    if momentum > 0:
        # torch: buf.mul_(momentum).addcdiv_(g, avg), a zero-started trace of the direction.
        direction.append(optax.trace(decay=momentum))
    return torch_chain(direction, lr, maximize=maximize, weight_decay=weight_decay)


def scale_by_torch_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> optax.GradientTransformation:
    """torch's Adagrad direction ``g / (sqrt(sum of g^2) + eps)``.

    Args:
      initial_accumulator_value: starting value of the sum of squares.
      eps: added after the square root (optax's ``scale_by_rss`` adds it inside).

    Returns:
      An ``optax.GradientTransformation`` with :class:`AdagradState`.

    >>> tx = scale_by_torch_adagrad()
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 4) for v in direction.tolist()]
    [1.0, -1.0]
    """

    def update_leaf(step, g, state_sum):
        del step
        state_sum = state_sum + g * g
        return g / (jnp.sqrt(state_sum) + eps), state_sum

    init_leaf = lambda p: (jnp.full_like(p, initial_accumulator_value),)  # noqa: E731
    return leafwise_transform(init_leaf, update_leaf, AdagradState)


def _decayed_lr(lr: ScalarOrSchedule, lr_decay: float) -> ScalarOrSchedule:
    """torch's Adagrad ``clr = lr / (1 + (step - 1) * lr_decay)`` as a schedule of the count.

    The decay divides whatever ``lr`` currently is, so it composes with a schedule exactly as
    torch's divides the ``group["lr"]`` a scheduler wrote.
    """
    if lr_decay == 0:
        return lr

    def schedule(count: jax.Array) -> jax.Array:
        current = as_scalar(lr(count) if callable(lr) else lr)
        return current / (1 + as_scalar(count) * lr_decay)

    return schedule


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.Adagrad`` as an optax transformation (dense gradients).

    ``g = -g`` (maximize); ``g += wd*p``; ``s += g*g``;
    ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)``.

    Args:
      lr: learning rate (float or optax schedule).
      lr_decay: learning-rate decay per step.
      weight_decay: L2 penalty added to the gradient.
      initial_accumulator_value: starting value of the sum of squared gradients.
      eps: added to the denominator for numerical stability.
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``lr_decay``, ``weight_decay``,
        ``initial_accumulator_value`` or ``eps``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = adagrad(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.9, 2.1]
    """
    check_learning_rate(lr)
    check_non_negative(lr_decay, "lr_decay value")
    check_non_negative(weight_decay, "weight_decay value")
    check_non_negative(initial_accumulator_value, "initial_accumulator_value value")
    check_non_negative(eps, "epsilon value")
    direction = [scale_by_torch_adagrad(initial_accumulator_value, eps)]
    return torch_chain(
        direction, _decayed_lr(lr, lr_decay), maximize=maximize, weight_decay=weight_decay
    )


def scale_by_torch_adadelta(rho: float = 0.9, eps: float = 1e-6) -> optax.GradientTransformation:
    """torch's Adadelta direction ``sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g``.

    Args:
      rho: decay rate of both running averages.
      eps: added inside both square roots.

    Returns:
      An ``optax.GradientTransformation`` with :class:`AdadeltaState`.

    >>> tx = scale_by_torch_adadelta(rho=0.0, eps=1e-4)
    >>> direction, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
    >>> round(float(direction[0]), 5)
    0.01
    """

    def update_leaf(step, g, square_avg, acc_delta):
        del step
        square_avg = square_avg * rho + (1 - rho) * g * g
        std = jnp.sqrt(square_avg + eps)
        delta = jnp.sqrt(acc_delta + eps) / std * g
        acc_delta = acc_delta * rho + (1 - rho) * delta * delta
        return delta, square_avg, acc_delta

    init_leaf = lambda p: (jnp.zeros_like(p), jnp.zeros_like(p))  # noqa: E731
    return leafwise_transform(init_leaf, update_leaf, AdadeltaState)


def adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.Adadelta`` as an optax transformation.

    ``g = -g`` (maximize); ``g += wd*p``; ``v = rho*v + (1-rho)*g*g``;
    ``d = sqrt(u + eps) / sqrt(v + eps) * g``; ``u = rho*u + (1-rho)*d*d``; ``p -= lr*d``.

    Args:
      lr: coefficient scaling the delta (float or optax schedule).
      rho: decay rate of the running averages.
      eps: added inside the square roots for numerical stability.
      weight_decay: L2 penalty added to the gradient.
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps`` or ``weight_decay`` or a
        ``rho`` outside ``[0, 1]``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = adadelta(rho=0.0, eps=1e-4)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.99, 2.01]
    """
    check_learning_rate(lr)
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"Invalid rho value: {rho}")
    check_non_negative(eps, "epsilon value")
    check_non_negative(weight_decay, "weight_decay value")
    direction = [scale_by_torch_adadelta(rho, eps)]
    return torch_chain(direction, lr, maximize=maximize, weight_decay=weight_decay)
