"""The Adam family: ``torch.optim.Adam``, ``AdamW``, ``Adamax``, ``NAdam`` and ``RAdam``.

Each ``scale_by_torch_*`` transform mirrors the arithmetic of torch's ``_single_tensor_*`` step
(the path torch takes on CPU), up to the final ``-lr`` which :func:`torch_chain` applies, so that
float64 trajectories agree with torch to rounding.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnets.optim._common import (
    ScalarOrSchedule,
    check_betas,
    check_learning_rate,
    check_non_negative,
    leafwise_transform,
    lerp,
    like,
    scalar_dtype,
    torch_chain,
)

Betas = tuple[float, float]


class AdamState(NamedTuple):
    """torch's ``step``, ``exp_avg``, ``exp_avg_sq`` and (amsgrad only) ``max_exp_avg_sq``."""

    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    max_exp_avg_sq: optax.Updates


class AdamaxState(NamedTuple):
    """torch's ``step``, ``exp_avg`` and ``exp_inf``."""

    count: jax.Array
    exp_avg: optax.Updates
    exp_inf: optax.Updates


class NadamState(NamedTuple):
    """torch's ``step``, ``exp_avg``, ``exp_avg_sq`` and ``mu_product`` (one scalar per leaf)."""

    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    mu_product: optax.Updates


class RadamState(NamedTuple):
    """torch's ``step``, ``exp_avg`` and ``exp_avg_sq``."""

    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _moments(g: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array, betas: Betas):
    """torch's ``exp_avg.lerp_(g, 1-beta1)`` and ``exp_avg_sq.mul_(beta2).addcmul_(g, g, ...)``."""
    beta1, beta2 = betas
    return lerp(exp_avg, g, 1 - beta1), exp_avg_sq * beta2 + (1 - beta2) * g * g


def _check_adam_family(lr: ScalarOrSchedule, betas: Betas, eps: float, weight_decay: float):
    """The checks Adam, Adamax, NAdam and RAdam share, in torch's order."""
    check_learning_rate(lr)
    check_non_negative(eps, "epsilon value")
    check_betas(betas)
    check_non_negative(weight_decay, "weight_decay value")


def scale_by_torch_adam(
    betas: Betas = (0.9, 0.999), eps: float = 1e-8, amsgrad: bool = False
) -> optax.GradientTransformation:
    """torch's Adam direction ``(exp_avg / bias_correction1) / denom``.

    ``denom = sqrt(v) / sqrt(bias_correction2) + eps`` where ``v`` is ``exp_avg_sq`` or, with
    ``amsgrad``, the running maximum of the *uncorrected* ``exp_avg_sq`` (torch's choice; optax's
    ``scale_by_amsgrad`` takes the maximum after bias correction).

    Args:
      betas: decay rates of the first and second moments.
      eps: added to the denominator after the square root.
      amsgrad: use the maximum of all second moments so far.

    Returns:
      An ``optax.GradientTransformation`` with :class:`AdamState`.

    >>> tx = scale_by_torch_adam()
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 4) for v in direction.tolist()]
    [1.0, -1.0]
    """
    beta1, beta2 = betas

    def init_leaf(p):
        return jnp.zeros_like(p), jnp.zeros_like(p), (jnp.zeros_like(p) if amsgrad else None)

    def update_leaf(step, g, exp_avg, exp_avg_sq, max_exp_avg_sq):
        exp_avg, exp_avg_sq = _moments(g, exp_avg, exp_avg_sq, betas)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if amsgrad:
            max_exp_avg_sq = jnp.maximum(max_exp_avg_sq, exp_avg_sq)
        second = max_exp_avg_sq if amsgrad else exp_avg_sq
        denom = jnp.sqrt(second) / like(bias_correction2_sqrt, g) + eps
        direction = exp_avg / denom / like(bias_correction1, g)
        return direction, exp_avg, exp_avg_sq, max_exp_avg_sq

    return leafwise_transform(init_leaf, update_leaf, AdamState)


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.Adam`` as an optax transformation.

    ``g = -g`` (maximize); ``g += wd*p`` (or, decoupled, ``p *= 1 - lr*wd``);
    ``m = lerp(m, g, 1-beta1)``; ``v = beta2*v + (1-beta2)*g*g``; ``v_max = max(v_max, v)``
    (amsgrad); ``p -= lr/(1-beta1^t) * m / (sqrt(v or v_max)/sqrt(1-beta2^t) + eps)``.

    Args:
      lr: learning rate (float or optax schedule).
      betas: decay rates of the first and second moments.
      eps: added to the denominator for numerical stability.
      weight_decay: L2 penalty added to the gradient (or decoupled, see below).
      amsgrad: use the maximum of past second moments.
      maximize: ascend instead of descend.
      decoupled_weight_decay: decay the parameters directly, which makes this AdamW.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps`` or ``weight_decay``, a beta
        outside ``[0, 1)``, or betas that are not both floats.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = adam(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.9, 2.1]
    """
    _check_adam_family(lr, betas, eps, weight_decay)
    if not all(isinstance(beta, float) for beta in betas):
        raise ValueError("betas must be either both floats or both Tensors")
    return torch_chain(
        [scale_by_torch_adam(betas, eps, amsgrad)],
        lr,
        maximize=maximize,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.AdamW``: :func:`adam` with ``decoupled_weight_decay=True``.

    Each step first shrinks the parameters, ``p *= 1 - lr*weight_decay``, then takes the Adam step
    from the undecayed gradient.

    Args:
      lr: learning rate (float or optax schedule).
      betas: decay rates of the first and second moments.
      eps: added to the denominator for numerical stability.
      weight_decay: decoupled decay factor (torch's default 1e-2).
      amsgrad: use the maximum of past second moments.
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update``.

    Raises:
      ValueError: as :func:`adam`.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = adamw(lr=0.1, weight_decay=0.5)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.85, 2.0]
    """
    return adam(
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        decoupled_weight_decay=True,
    )


def scale_by_torch_adamax(
    betas: Betas = (0.9, 0.999), eps: float = 1e-8
) -> optax.GradientTransformation:
    """torch's Adamax direction ``exp_avg / exp_inf / (1 - beta1^t)``.

    ``exp_inf = max(beta2*exp_inf, |g| + eps)``: torch adds ``eps`` inside the maximum, where
    ``optax.scale_by_adamax`` adds it to the denominator.

    Args:
      betas: decay rates of the first moment and the infinity norm.
      eps: added to ``|g|`` before the maximum.

    Returns:
      An ``optax.GradientTransformation`` with :class:`AdamaxState`.

    >>> tx = scale_by_torch_adamax()
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 4) for v in direction.tolist()]
    [1.0, -1.0]
    """
    beta1, beta2 = betas

    def update_leaf(step, g, exp_avg, exp_inf):
        exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_inf = jnp.maximum(exp_inf * beta2, jnp.abs(g) + eps)
        bias_correction = 1 - beta1**step
        return exp_avg / exp_inf / like(bias_correction, g), exp_avg, exp_inf

    init_leaf = lambda p: (jnp.zeros_like(p), jnp.zeros_like(p))  # noqa: E731
    return leafwise_transform(init_leaf, update_leaf, AdamaxState)


def adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.Adamax`` as an optax transformation.

    ``g = -g`` (maximize); ``g += wd*p``; ``m = lerp(m, g, 1-beta1)``;
    ``u = max(beta2*u, |g| + eps)``; ``p -= lr/(1-beta1^t) * m/u``.

    Args:
      lr: learning rate (float or optax schedule).
      betas: decay rates of the first moment and the infinity norm.
      eps: added to ``|g|`` for numerical stability.
      weight_decay: L2 penalty added to the gradient.
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps`` or ``weight_decay`` or a beta
        outside ``[0, 1)``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = adamax(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.9, 2.1]
    """
    _check_adam_family(lr, betas, eps, weight_decay)
    direction = [scale_by_torch_adamax(betas, eps)]
    return torch_chain(direction, lr, maximize=maximize, weight_decay=weight_decay)


def scale_by_torch_nadam(
    betas: Betas = (0.9, 0.999), eps: float = 1e-8, momentum_decay: float = 4e-3
) -> optax.GradientTransformation:
    """torch's NAdam direction with its momentum schedule ``mu_t = beta1*(1 - 0.5*0.96^(t*psi))``.

    The direction is ``(1-mu_t)/(1-prod mu) * g/denom + mu_{t+1}/(1-prod mu * mu_{t+1}) *
    exp_avg/denom`` with ``denom = sqrt(exp_avg_sq / (1-beta2^t)) + eps``. ``mu_product`` is kept
    per leaf in :func:`scalar_dtype`, as torch keeps it per parameter in its scalar dtype.

    Args:
      betas: decay rates of the first and second moments.
      eps: added to the denominator.
      momentum_decay: ``psi`` in the momentum schedule.

    Returns:
      An ``optax.GradientTransformation`` with :class:`NadamState`.

    >>> tx = scale_by_torch_nadam()
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 3) for v in direction.tolist()]
    [1.056, -1.056]
    """
    beta1, beta2 = betas

    def init_leaf(p):
        return jnp.zeros_like(p), jnp.zeros_like(p), jnp.ones((), scalar_dtype())

    def update_leaf(step, g, exp_avg, exp_avg_sq, mu_product):
        bias_correction2 = 1 - beta2**step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product = mu_product * mu
        exp_avg, exp_avg_sq = _moments(g, exp_avg, exp_avg_sq, betas)
        denom = jnp.sqrt(exp_avg_sq / like(bias_correction2, g)) + eps
        mu_product_next = mu_product * mu_next
        grad_weight = like((1.0 - mu) / (1.0 - mu_product), g)
        avg_weight = like(mu_next / (1.0 - mu_product_next), g)
        direction = grad_weight * g / denom + avg_weight * exp_avg / denom
        return direction, exp_avg, exp_avg_sq, mu_product

    return leafwise_transform(init_leaf, update_leaf, NadamState)


def nadam(
    lr: ScalarOrSchedule = 2e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.NAdam`` as an optax transformation (see :func:`scale_by_torch_nadam`).

    Args:
      lr: learning rate (float or optax schedule).
      betas: decay rates of the first and second moments.
      eps: added to the denominator for numerical stability.
      weight_decay: L2 penalty added to the gradient (or decoupled).
      momentum_decay: ``psi`` in torch's momentum schedule.
      decoupled_weight_decay: ``p *= 1 - lr*wd`` before the step instead (NAdamW).
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps``, ``weight_decay`` or
        ``momentum_decay`` or a beta outside ``[0, 1)``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = nadam(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 3) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.894, 2.106]
    """
    _check_adam_family(lr, betas, eps, weight_decay)
    check_non_negative(momentum_decay, "momentum_decay value")
    return torch_chain(
        [scale_by_torch_nadam(betas, eps, momentum_decay)],
        lr,
        maximize=maximize,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def scale_by_torch_radam(
    betas: Betas = (0.9, 0.999), eps: float = 1e-8
) -> optax.GradientTransformation:
    """torch's RAdam direction, with torch's switch on the SMA length ``rho_t > 5``.

    The bias-corrected first moment ``m_hat``, times ``sqrt(1-beta2^t) / (sqrt(v) + eps)`` and the
    rectification ``sqrt((rho_t-4)(rho_t-2)rho_inf / ((rho_inf-4)(rho_inf-2)rho_t))`` once
    ``rho_t > 5``; plain ``m_hat`` (an SGD-with-momentum step) before. optax's ``scale_by_radam``
    switches at ``rho_t >= 5`` with ``eps`` inside other terms.

    Args:
      betas: decay rates of the first and second moments.
      eps: added to ``sqrt(v)``.

    Returns:
      An ``optax.GradientTransformation`` with :class:`RadamState`.

    >>> tx = scale_by_torch_radam()
    >>> direction, _ = tx.update(jnp.array([2.0, -0.5]), tx.init(jnp.zeros(2)))
    >>> [round(v, 4) for v in direction.tolist()]
    [2.0, -0.5]
    """
    beta1, beta2 = betas
    rho_inf = 2 / (1 - beta2) - 1
    # rho_t < rho_inf at every step, so with rho_inf <= 5 torch never rectifies (and the
    # rectification's constant would divide by zero at rho_inf = 4).
    can_rectify = rho_inf > 5

    def update_leaf(step, g, exp_avg, exp_avg_sq):
        exp_avg, exp_avg_sq = _moments(g, exp_avg, exp_avg_sq, betas)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        bias_corrected_exp_avg = exp_avg / like(bias_correction1, g)
        if not can_rectify:
            return bias_corrected_exp_avg, exp_avg, exp_avg_sq
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        rectify = rho_t > 5.0
        # The unused branch of the where must stay finite: rho_t - 4 < 0 on early steps.
        safe_rho_t = jnp.where(rectify, rho_t, 5.0)
        rect = (
            (safe_rho_t - 4)
            * (safe_rho_t - 2)
            * rho_inf
            / ((rho_inf - 4) * (rho_inf - 2) * safe_rho_t)
        ) ** 0.5
        adaptive_lr = like(bias_correction2**0.5, g) / (jnp.sqrt(exp_avg_sq) + eps)
        rectified = bias_corrected_exp_avg * adaptive_lr * like(rect, g)
        direction = jnp.where(rectify, rectified, bias_corrected_exp_avg)
        return direction, exp_avg, exp_avg_sq

    init_leaf = lambda p: (jnp.zeros_like(p), jnp.zeros_like(p))  # noqa: E731
    return leafwise_transform(init_leaf, update_leaf, RadamState)


def radam(
    lr: ScalarOrSchedule = 1e-3,
    betas: Betas = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> optax.GradientTransformation:
    """``torch.optim.RAdam`` as an optax transformation (see :func:`scale_by_torch_radam`).

    Args:
      lr: learning rate (float or optax schedule).
      betas: decay rates of the first and second moments.
      eps: added to the denominator for numerical stability.
      weight_decay: L2 penalty added to the gradient (or decoupled).
      decoupled_weight_decay: ``p *= 1 - lr*wd`` before the step instead (RAdamW).
      maximize: ascend instead of descend.

    Returns:
      An ``optax.GradientTransformation``; pass ``params`` to ``update`` when ``weight_decay > 0``.

    Raises:
      ValueError: torch's message for a negative ``lr``, ``eps`` or ``weight_decay`` or a beta
        outside ``[0, 1)``.

    >>> import optax
    >>> params = {"w": jnp.array([1.0, 2.0])}
    >>> tx = radam(lr=0.1)
    >>> updates, _ = tx.update({"w": jnp.array([3.0, -1.0])}, tx.init(params), params)
    >>> [round(v, 4) for v in optax.apply_updates(params, updates)["w"].tolist()]
    [0.7, 2.1]
    """
    _check_adam_family(lr, betas, eps, weight_decay)
    return torch_chain(
        [scale_by_torch_radam(betas, eps)],
        lr,
        maximize=maximize,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )
