"""``torch.optim.lr_scheduler``'s schedules as optax schedules of the optimiser step count.

torch calls ``scheduler.step()`` once after each ``optimizer.step()``, so the ``k``-th step (from
0) uses the learning rate after ``k`` scheduler steps: these functions of ``count = k`` return
that rate. They take an integer array or Python int (elementwise for arrays) and return
:func:`scalar_dtype` values.

torch's schedulers update the rate recursively (``lr *= gamma`` each step, and a ratio of
cosines for ``CosineAnnealingLR``); these use torch's own closed forms (``_get_closed_form_lr``),
which equal the recursive values up to rounding (about 1e-15 relative in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from jaxnets.optim._common import as_scalar, scalar_dtype

Count = jax.typing.ArrayLike


def step_lr(lr: float, step_size: int, gamma: float = 0.1) -> optax.Schedule:
    """``StepLR``: ``lr * gamma ** (count // step_size)``.

    Args:
      lr: initial learning rate (torch's ``base_lr``).
      step_size: steps between decays.
      gamma: multiplicative decay.

    Returns:
      A schedule ``count -> learning rate``.

    >>> [round(v, 4) for v in step_lr(1.0, step_size=2, gamma=0.5)(jnp.arange(5)).tolist()]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def schedule(count: Count) -> jax.Array:
        return lr * gamma ** as_scalar(jnp.asarray(count) // step_size)

    return schedule


def multi_step_lr(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> optax.Schedule:
    """``MultiStepLR``: ``lr * gamma ** (number of milestones <= count)``.

    A milestone listed twice decays twice, as in torch (which counts them).

    Args:
      lr: initial learning rate.
      milestones: step counts at which to decay.
      gamma: multiplicative decay.

    Returns:
      A schedule ``count -> learning rate``.

    >>> schedule = multi_step_lr(1.0, milestones=[1, 3], gamma=0.5)
    >>> [round(v, 4) for v in schedule(jnp.arange(5)).tolist()]
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """
    milestones = sorted(milestones)

    def schedule(count: Count) -> jax.Array:
        count = as_scalar(count)
        passed = sum(((count >= m).astype(count.dtype) for m in milestones), jnp.zeros_like(count))
        return lr * gamma**passed

    return schedule


def exponential_lr(lr: float, gamma: float) -> optax.Schedule:
    """``ExponentialLR``: ``lr * gamma ** count``.

    Args:
      lr: initial learning rate.
      gamma: multiplicative decay per step.

    Returns:
      A schedule ``count -> learning rate``.

    >>> [round(v, 4) for v in exponential_lr(1.0, gamma=0.5)(jnp.arange(3)).tolist()]
    [1.0, 0.5, 0.25]
    """

    def schedule(count: Count) -> jax.Array:
        return lr * gamma ** as_scalar(count)

    return schedule


def cosine_annealing_lr(lr: float, T_max: int, eta_min: float = 0.0) -> optax.Schedule:  # noqa: N803
    """``CosineAnnealingLR``: ``eta_min + (lr - eta_min) * (1 + cos(pi * count / T_max)) / 2``.

    Like torch's, it does not stop at ``T_max``: the cosine rises again over the next ``T_max``
    steps. torch's ``get_lr`` reaches these values through a recursion; this is its closed form.

    Args:
      lr: initial (maximum) learning rate.
      T_max: steps of a half period.
      eta_min: minimum learning rate.

    Returns:
      A schedule ``count -> learning rate``.

    >>> schedule = cosine_annealing_lr(1.0, T_max=2)
    >>> [round(v, 4) for v in schedule(jnp.arange(5)).tolist()]
    [1.0, 0.5, 0.0, 0.5, 1.0]
    """

    def schedule(count: Count) -> jax.Array:
        cosine = jnp.cos(math.pi * as_scalar(count) / T_max)
        return eta_min + (lr - eta_min) * (1 + cosine) / 2

    return schedule


def linear_lr(
    lr: float,
    start_factor: float = 1.0 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> optax.Schedule:
    """``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor``.

    ``lr * (start + (end - start) * min(total_iters, count) / total_iters)``; with
    ``total_iters <= 0`` there is no ramp and the rate stays ``lr * start_factor``, as in torch
    (whose ``get_lr`` scales by ``start_factor`` at step 0 and, past ``total_iters``, keeps the
    rate it has; its closed form would divide by zero).

    Args:
      lr: base learning rate.
      start_factor: factor at count 0, in ``(0, 1]``.
      end_factor: factor from ``total_iters`` on, in ``[0, 1]``.
      total_iters: steps of the ramp; ``<= 0`` for none.

    Returns:
      A schedule ``count -> learning rate``.

    Raises:
      ValueError: torch's messages for factors out of range.

    >>> schedule = linear_lr(1.0, start_factor=0.5, total_iters=2)
    >>> [round(v, 4) for v in schedule(jnp.arange(4)).tolist()]
    [0.5, 0.75, 1.0, 1.0]
    """
    if start_factor > 1.0 or start_factor <= 0:
        raise ValueError(
            "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."
        )
    if end_factor > 1.0 or end_factor < 0:
        raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")

    if total_iters <= 0:

        def constant(count: Count) -> jax.Array:
            return jnp.full(jnp.shape(count), lr * start_factor, scalar_dtype())

        return constant

    def schedule(count: Count) -> jax.Array:
        ramp = jnp.minimum(as_scalar(count), total_iters)
        return lr * (start_factor + (end_factor - start_factor) * ramp / total_iters)

    return schedule


def _anneal_cos(start: float, end: float, pct: jax.Array) -> jax.Array:
    """torch's ``OneCycleLR._annealing_cos``."""
    return end + (start - end) / 2.0 * (jnp.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: jax.Array) -> jax.Array:
    """torch's ``OneCycleLR._annealing_linear``."""
    return (end - start) * pct + start


def _one_cycle_total_steps(
    total_steps: int | None, epochs: int | None, steps_per_epoch: int | None
) -> int:
    """torch's resolution of the cycle length, with its messages."""
    if total_steps is not None:
        if total_steps <= 0 or not isinstance(total_steps, int):
            raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
        return total_steps
    if epochs is not None and steps_per_epoch is not None:
        if not isinstance(epochs, int) or epochs <= 0:
            raise ValueError(f"Expected positive integer epochs, but got {epochs}")
        if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
            raise ValueError(
                f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
            )
        return epochs * steps_per_epoch
    raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")


def one_cycle_lr(
    max_lr: float,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> optax.Schedule:
    """``OneCycleLR``'s learning rate (torch replaces the optimiser's ``lr`` with it).

    Warm up from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the steps, then anneal
    to ``max_lr / div_factor / final_div_factor`` (with ``three_phase``, back to the initial rate
    first). torch's ``cycle_momentum`` (also cycling the optimiser's momentum or beta1) is not
    applied: an optax transformation's hyper-parameters are fixed. torch raises when stepped past
    ``total_steps``; a schedule cannot raise under ``jit``, so counts past it keep the value at
    ``total_steps``.

    Args:
      max_lr: peak learning rate.
      total_steps: steps in the cycle, or give ``epochs`` and ``steps_per_epoch``.
      epochs: epochs in the cycle.
      steps_per_epoch: steps per epoch.
      pct_start: fraction of the cycle spent increasing the rate.
      anneal_strategy: ``"cos"`` or ``"linear"``.
      div_factor: ``initial_lr = max_lr / div_factor``.
      final_div_factor: ``min_lr = initial_lr / final_div_factor``.
      three_phase: anneal back to ``initial_lr`` before the final anneal to ``min_lr``.

    Returns:
      A schedule ``count -> learning rate``.

    Raises:
      ValueError: torch's messages for a bad cycle length, ``pct_start`` or ``anneal_strategy``.

    >>> schedule = one_cycle_lr(1.0, total_steps=5, pct_start=0.4, anneal_strategy="linear")
    >>> [round(v, 4) for v in schedule(jnp.arange(5)).tolist()]
    [0.04, 1.0, 0.6667, 0.3333, 0.0]
    """
    total = _one_cycle_total_steps(total_steps, epochs, steps_per_epoch)
    if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
        raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
    if anneal_strategy not in ["cos", "linear"]:
        raise ValueError(
            f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
        )
    anneal: Callable[[float, float, jax.Array], jax.Array] = (
        _anneal_cos if anneal_strategy == "cos" else _anneal_linear
    )
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    warmup_end = float(pct_start * total) - 1
    if three_phase:
        phases = [
            (warmup_end, initial_lr, max_lr),
            (float(2 * pct_start * total) - 2, max_lr, initial_lr),
            (total - 1, initial_lr, min_lr),
        ]
    else:
        phases = [(warmup_end, initial_lr, max_lr), (total - 1, max_lr, min_lr)]
    starts = [0.0] + [end for end, _, _ in phases[:-1]]

    def schedule(count: Count) -> jax.Array:
        step = jnp.minimum(as_scalar(count), total)
        # torch takes the first phase with step <= end_step, the last phase otherwise.
        value = None
        for start, (end, lr_from, lr_to) in reversed(list(zip(starts, phases, strict=True))):
            phase_value = anneal(lr_from, lr_to, (step - start) / (end - start))
            value = phase_value if value is None else jnp.where(step <= end, phase_value, value)
        return value

    return schedule
