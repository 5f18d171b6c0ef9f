"""Mechanics every ``torch.optim`` port shares.

torch's argument checks, the dtype torch's Python-float step arithmetic lands in, ``torch.lerp``'s
rounding, and two builders: one for a per-parameter stateful transform (torch's ``state[p]``) and
one for the chain ``maximize -> coupled decay -> direction -> decoupled decay -> -lr`` that every
optimiser's ``step()`` follows.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

ScalarOrSchedule = float | optax.Schedule
LeafUpdate = Callable[..., tuple[Any, ...]]


def check_non_negative(value: Any, label: str) -> None:
    """torch's ``if not 0.0 <= value: raise ValueError(f"Invalid {label}: {value}")``.

    Written as ``not 0.0 <= value`` like torch so that NaN is rejected too. A callable (a
    learning-rate schedule) or a traced value (a learning rate passed into a compiled training
    program, checked by its caller before tracing) has no value to check.

    Args:
      value: a number or a schedule.
      label: the name in the error message.

    Returns:
      ``None``; raises ``ValueError`` for a negative or NaN ``value``.

    >>> check_non_negative(0.1, "learning rate")
    >>> try:
    ...     check_non_negative(float("nan"), "learning rate")
    ... except ValueError as err:
    ...     print(err)
    Invalid learning rate: nan
    """
    if callable(value) or isinstance(value, jax.core.Tracer):
        return
    if not 0.0 <= value:
        raise ValueError(f"Invalid {label}: {value}")


def check_learning_rate(lr: Any) -> None:
    """Accept a real number or a schedule as ``lr``, then torch's non-negative check.

    A real number is a Python or NumPy scalar or a 0-d real NumPy/JAX array (the optimiser uses
    the Python float it holds). A schedule is any callable of the step count. A traced 0-d
    value (the learning rate a compiled training program passes in) is accepted unchecked, as in
    :func:`check_non_negative`. Anything else (a ``torch.Tensor``, even a 0-d one, which cannot
    meet JAX arrays; an array with axes; a list; a string) is refused here rather than failing
    at the first update.

    Args:
      lr: the candidate learning rate.

    Returns:
      ``None``; raises ``TypeError`` for a value that is neither a real number nor a schedule,
      ``ValueError`` (torch's message) for a negative or NaN one.

    >>> import numpy as np
    >>> check_learning_rate(np.float32(0.1)), check_learning_rate(np.array(0.1))
    (None, None)
    >>> try:
    ...     check_learning_rate(np.array([0.1, 0.01]))
    ... except TypeError as err:
    ...     print(err)
    lr must be a float or a schedule (a callable of the step count), got numpy.ndarray of shape (2,)
    """
    if not callable(lr) and not _is_real_scalar(lr):
        shape = getattr(lr, "shape", None)
        what = f"{type(lr).__module__}.{type(lr).__qualname__}".removeprefix("builtins.")
        if shape is not None:
            what += f" of shape {tuple(shape)}"
        raise TypeError(
            f"lr must be a float or a schedule (a callable of the step count), got {what}"
        )
    check_non_negative(lr, "learning rate")


def _is_real_scalar(value: Any) -> bool:
    """A real number: ``numbers.Real`` (NumPy's scalars included) or a 0-d real NumPy/JAX array,
    traced or not."""
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, np.ndarray | jax.Array):
        dtype = value.dtype
        real = jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
        return value.ndim == 0 and bool(real)
    return False


def check_betas(betas: Sequence[float]) -> None:
    """torch's ``0.0 <= beta < 1.0`` check, naming the offending index as torch does.

    Args:
      betas: the coefficients, e.g. Adam's ``(beta1, beta2)``.

    Returns:
      ``None``; raises ``ValueError`` for the first beta outside ``[0, 1)``.

    >>> try:
    ...     check_betas((0.9, 1.0))
    ... except ValueError as err:
    ...     print(err)
    Invalid beta parameter at index 1: 1.0
    """
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def scalar_dtype() -> jnp.dtype:
    """float64 when x64 is enabled, else float32.

    torch computes bias corrections and step sizes in Python floats (double) and only then meets
    the parameter's dtype, so per-step scalars are computed in the widest float JAX allows.
    Read at trace time, so it follows the current ``jax_enable_x64`` setting.

    Returns:
      The dtype.

    >>> str(scalar_dtype()) == ("float64" if jax.config.jax_enable_x64 else "float32")
    True
    """
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def as_scalar(value: Any) -> jax.Array:
    """``value`` (a count, a schedule's output) as an array of :func:`scalar_dtype`.

    Args:
      value: a scalar.

    Returns:
      A ``()``-shaped array.

    >>> x = as_scalar(jnp.asarray(3, jnp.int32))
    >>> float(x), x.shape, x.dtype == scalar_dtype()
    (3.0, (), True)
    """
    return jnp.asarray(value).astype(scalar_dtype())


def like(value: Any, leaf: jax.Array) -> jax.Array:
    """A per-step scalar cast to the leaf's dtype, so float32 parameters stay float32.

    Args:
      value: a scalar.
      leaf: the parameter it will meet.

    Returns:
      A ``()``-shaped array of ``leaf.dtype``.

    >>> like(0.5, jnp.ones((2,), jnp.float32)).dtype
    dtype('float32')
    """
    return jnp.asarray(value, leaf.dtype)


def lerp(start: jax.Array, end: jax.Array, weight: float) -> jax.Array:
    """``torch.lerp(start, end, weight)`` with torch's two-sided formula.

    torch switches formula at ``|weight| = 0.5`` so the result is exact at both ends; copying the
    switch keeps float64 trajectories equal to the last bits torch's ``exp_avg.lerp_`` produces.

    Args:
      start: an array.
      end: an array of the same shape and dtype.
      weight: a Python float.

    Returns:
      ``start + weight * (end - start)``, the shape of ``start``.

    >>> start, end = jnp.zeros((2,), jnp.float32), jnp.full((2,), 10.0, jnp.float32)
    >>> lerp(start, end, 0.25).tolist(), lerp(start, end, 1.0).tolist()
    ([2.5, 2.5], [10.0, 10.0])
    """
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def leafwise_transform(
    init_leaf: Callable[[jax.Array], tuple[Any, ...]],
    update_leaf: LeafUpdate,
    state_cls: type,
) -> optax.GradientTransformation:
    """A transform keeping torch's per-parameter ``state[p]`` buffers plus a shared step count.

    Args:
      init_leaf: ``param -> buffers`` (a tuple; ``None`` for a buffer an option turns off).
      update_leaf: ``(step, grad, *buffers) -> (direction, *new_buffers)``, ``step`` being torch's
        ``state["step"]`` after its increment (1 on the first update) in :func:`scalar_dtype`.
      state_cls: a NamedTuple with fields ``count`` then one per buffer, in order.

    Returns:
      An ``optax.GradientTransformation`` whose state is ``state_cls(count, *buffer_trees)``;
      each buffer tree and the direction have the structure and shapes of the parameters.

    >>> from typing import NamedTuple
    >>> class SumState(NamedTuple):
    ...     count: jax.Array
    ...     total: optax.Updates
    >>> def running_sum(step, g, total):
    ...     return g + total, g + total
    >>> tx = leafwise_transform(lambda p: (jnp.zeros_like(p),), running_sum, SumState)
    >>> state = tx.init(jnp.zeros((2,), jnp.float32))
    >>> for _ in range(3):
    ...     direction, state = tx.update(jnp.ones((2,), jnp.float32), state)
    >>> direction.tolist(), int(state.count)
    ([3.0, 3.0], 3)
    """

    def init_fn(params: optax.Params) -> Any:
        return state_cls(jnp.zeros((), jnp.int32), *_map_unzip(init_leaf, params))

    def update_fn(updates: optax.Updates, state: Any, params: optax.Params = None) -> Any:
        del params
        count = optax.safe_increment(state.count)
        step = as_scalar(count)
        direction, *buffers = _map_unzip(
            lambda g, *bufs: update_leaf(step, g, *bufs), updates, *state[1:]
        )
        return direction, state_cls(count, *buffers)

    return optax.GradientTransformation(init_fn, update_fn)


def _map_unzip(fn: Callable[..., tuple[Any, ...]], tree: Any, *rest: Any) -> tuple[Any, ...]:
    """``jax.tree.map`` for a ``fn`` returning a tuple: one tree per output.

    ``rest`` trees are flattened up to ``tree``'s structure, so a buffer tree whose leaves are all
    ``None`` (an option that is off) lines up leaf for leaf, and comes back the same shape.
    """
    treedef = jax.tree.structure(tree)
    columns = [treedef.flatten_up_to(t) for t in (tree, *rest)]
    outputs = [fn(*args) for args in zip(*columns, strict=True)]
    return tuple(treedef.unflatten(list(out)) for out in zip(*outputs, strict=True))


def torch_chain(
    direction: Sequence[optax.GradientTransformation],
    lr: ScalarOrSchedule,
    *,
    maximize: bool,
    weight_decay: float,
    decoupled_weight_decay: bool = False,
) -> optax.GradientTransformation:
    """torch's step order around an optimiser's ``direction``.

    ``g = -g`` (maximize); ``g += wd * p`` (coupled, L2); ``d = direction(g)``; the parameter moves
    by ``-lr * (d + wd * p)`` with decoupled decay, which equals torch's
    ``p *= 1 - lr * wd; p -= lr * d``, or by ``-lr * d``.

    Args:
      direction: transforms turning the (decayed) gradient into the update before ``-lr``.
      lr: learning rate, float or schedule of the step count from 0.
      maximize: ascend instead of descend.
      weight_decay: decay factor; 0 skips it.
      decoupled_weight_decay: decay the parameter (AdamW) instead of the gradient.

    Returns:
      The chained ``optax.GradientTransformation``; updates have the parameters' shapes.

    >>> params = jnp.ones((2,), jnp.float32)
    >>> tx = torch_chain([optax.identity()], 0.5, maximize=False, weight_decay=1.0)
    >>> updates, _ = tx.update(jnp.ones((2,), jnp.float32), tx.init(params), params)
    >>> updates.tolist()  # -lr * (g + wd * p)
    [-1.0, -1.0]
    """
    transforms = []
    if maximize:
        transforms.append(optax.scale(-1.0))
    decay = [optax.add_decayed_weights(weight_decay)] if weight_decay != 0 else []
    if not decoupled_weight_decay:
        transforms += decay
    transforms += direction
    if decoupled_weight_decay:
        transforms += decay
    if not callable(lr) and not isinstance(lr, jax.core.Tracer):
        # A NumPy scalar or 0-d array as the Python float it holds: weakly typed, so a float32
        # rate never promotes (or, under strict promotion, rejects) float64 parameters.
        lr = float(lr)
    transforms.append(optax.scale_by_learning_rate(lr))
    return optax.chain(*transforms)
