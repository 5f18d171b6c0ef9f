"""Normalisation layers on channels-last inputs: BatchNorm1d/2d, LayerNorm, GroupNorm.

Statistics follow torch: the normalisation divides by the biased batch variance
``mean((x - mean)**2)``, and ``BatchNorm``'s running variance takes the unbiased one (``n/(n-1)``
times it, ``n`` values per channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import channel_view, expect_channels, expect_rank, positive
from jaxnets.nn.state import TorchEntry, counter, same

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _normalise(x: jax.Array, mean: jax.Array, var: jax.Array, eps: float) -> jax.Array:
    return (x - mean) * lax.rsqrt(var + jnp.asarray(eps, var.dtype))


class _BatchNorm(nnx.Module):
    """torch's ``_BatchNorm`` over all axes but the last (channels-last)."""

    _ranks: tuple[int, ...]
    _layout: str

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs  # deterministic initialisation; accepted so every layer takes the same keywords
        self.num_features = positive("num_features", num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = affine
        self.track_running_stats = track_running_stats
        # torch modules start in training mode; model.train()/eval() flip this attribute.
        self.use_running_average = False
        self.weight = nnx.Param(jnp.ones((num_features,), dtype)) if affine else None
        self.bias = nnx.Param(jnp.zeros((num_features,), dtype)) if affine else None
        if track_running_stats:
            self.running_mean = nnx.BatchStat(jnp.zeros((num_features,), dtype))
            self.running_var = nnx.BatchStat(jnp.ones((num_features,), dtype))
            self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight``, ``bias`` (if ``affine``), then the buffers (if tracked), all as is."""
        entries = {}
        if self.affine:
            entries.update(weight=same("weight"), bias=same("bias"))
        if self.track_running_stats:
            entries.update(
                running_mean=same("running_mean"),
                running_var=same("running_var"),
                num_batches_tracked=counter("num_batches_tracked"),
            )
        return entries

    def set_view(self, use_running_average: bool | None = None) -> None:
        """``nnx.view(model, use_running_average=...)`` support."""
        if use_running_average is not None:
            self.use_running_average = use_running_average

    def __call__(self, x: ArrayLike, use_running_average: bool | None = None) -> jax.Array:
        """Normalise ``x``; in training mode with tracked statistics, update them in place.

        Args:
          x: channels-last input, ``num_features`` on the last axis.
          use_running_average: overrides the attribute ``model.train()``/``eval()`` set.
        """
        x = jnp.asarray(x)
        name = type(self).__name__
        expect_rank(name, x, self._ranks, self._layout)
        expect_channels(name, x, self.num_features)
        if use_running_average is None:
            use_running_average = self.use_running_average
        training = not use_running_average
        if training or not self.track_running_stats:
            count = x.size // self.num_features
            if count <= 1:
                raise ValueError(
                    f"Expected more than 1 value per channel when training, got input size "
                    f"{x.shape}"
                )
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes, keepdims=True)
            var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
            if training and self.track_running_stats:
                self._update_running(mean.reshape(-1), var.reshape(-1), count)
        else:
            mean = channel_view(self.running_mean[...], x.ndim)
            var = channel_view(self.running_var[...], x.ndim)
        y = _normalise(x, mean, var, self.eps)
        if self.affine:
            y = y * channel_view(self.weight[...], x.ndim) + channel_view(self.bias[...], x.ndim)
        return y

    def _update_running(self, mean: jax.Array, var: jax.Array, count: int) -> None:
        tracked = self.num_batches_tracked[...] + 1
        self.num_batches_tracked[...] = tracked
        if self.momentum is None:  # cumulative moving average over the batches seen
            factor = 1.0 / tracked.astype(mean.dtype)
        else:
            factor = jnp.asarray(self.momentum, mean.dtype)
        unbiased = var * (count / (count - 1))
        old_mean, old_var = self.running_mean[...], self.running_var[...]
        # Statistics are data, not a path for gradients (torch updates them outside autograd).
        self.running_mean[...] = lax.stop_gradient((1 - factor) * old_mean + factor * mean)
        self.running_var[...] = lax.stop_gradient((1 - factor) * old_var + factor * unbiased)


_BATCH_NORM_DOC = """``torch.nn.{name}`` on channels-last input {layouts}.

Arguments and defaults as torch. In training mode (the default, ``use_running_average=False``,
what ``model.train()`` sets) it normalises with the batch's mean and biased variance over every
axis but the last and, when ``track_running_stats``, updates the buffers in place:
``running = (1 - momentum) * running + momentum * batch_stat`` with the *unbiased* variance,
``num_batches_tracked += 1``, and ``momentum=None`` meaning the cumulative average
(``momentum = 1 / num_batches_tracked``). In eval mode (``model.eval()``) it uses the running
statistics, or the batch's if ``track_running_stats=False``. ``affine=False`` drops ``weight``
and ``bias``. The buffers are ``nnx.BatchStat`` variables (``num_batches_tracked`` int32), so
``nnx.jit`` and ``nnx.split``/``merge`` carry their updates.

>>> bn = {name}(3)
>>> y = bn(jnp.arange({size}, dtype=jnp.float32).reshape({shape}))
>>> int(bn.num_batches_tracked[...]), bn.running_mean.shape
(1, (3,))
"""


class BatchNorm1d(_BatchNorm):
    torch_channel_axis = {3: 1}
    _ranks = (2, 3)
    _layout = "(N, C) or (N, L, C)"
    __doc__ = _BATCH_NORM_DOC.format(
        name="BatchNorm1d", layouts="``(N, C)`` or ``(N, L, C)``", size=12, shape="4, 3"
    )


class BatchNorm2d(_BatchNorm):
    torch_channel_axis = {4: 1}
    _ranks = (4,)
    _layout = "(N, H, W, C)"
    __doc__ = _BATCH_NORM_DOC.format(
        name="BatchNorm2d", layouts="``(N, H, W, C)``", size=24, shape="2, 2, 2, 3"
    )


class LayerNorm(nnx.Module):
    """``torch.nn.LayerNorm``: normalise over the trailing ``normalized_shape`` axes.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance over the last
    ``len(normalized_shape)`` axes; ``weight``/``bias`` have ``normalized_shape``
    (``elementwise_affine=False`` drops both, ``bias=False`` the bias). The axes are those of the
    JAX array: on a channels-last feature map, torch's ``LayerNorm([C, H, W])`` is
    ``LayerNorm((H, W, C))`` here and its affine weights are transposed relative to torch's, which
    ``torch_state`` does not do; over the last axis alone (the usual case) layouts agree.

    >>> y = LayerNorm(4)(jnp.arange(8.0, dtype=jnp.float32).reshape(2, 4))
    >>> [round(v, 3) for v in y[0].tolist()]
    [-1.342, -0.447, 0.447, 1.342]
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(positive("normalized_shape", s) for s in shape)
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        affine_bias = elementwise_affine and bias
        shape = self.normalized_shape
        self.weight = nnx.Param(jnp.ones(shape, dtype)) if elementwise_affine else None
        self.bias = nnx.Param(jnp.zeros(shape, dtype)) if affine_bias else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` and ``bias`` as is, where present."""
        entries = {}
        if self.weight is not None:
            entries["weight"] = same("weight")
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k :] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm expected input ending in {self.normalized_shape}, got shape {x.shape}"
            )
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        y = _normalise(x, mean, var, self.eps)
        if self.weight is not None:
            y = y * jnp.broadcast_to(self.weight[...], y.shape)
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias[...], y.shape)
        return y


class GroupNorm(nnx.Module):
    """``torch.nn.GroupNorm`` on channels-last ``(N, *spatial, C)`` input.

    The channels split into ``num_groups`` consecutive blocks (torch's order); each sample's block
    is normalised over its channels and all spatial positions with the biased variance, then
    ``weight``/``bias`` (``(num_channels,)``, dropped with ``affine=False``) apply per channel.

    >>> gn = GroupNorm(2, 4)
    >>> gn(jnp.ones((3, 5, 5, 4), jnp.float32)).shape
    (3, 5, 5, 4)
    """

    torch_channel_axis = {3: 1, 4: 1, 5: 1}

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        self.num_groups = positive("num_groups", num_groups)
        self.num_channels = positive("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        self.eps = float(eps)
        self.affine = affine
        self.weight = nnx.Param(jnp.ones((num_channels,), dtype)) if affine else None
        self.bias = nnx.Param(jnp.zeros((num_channels,), dtype)) if affine else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` and ``bias`` as is (if ``affine``)."""
        return {"weight": same("weight"), "bias": same("bias")} if self.affine else {}

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"GroupNorm expected (N, *spatial, C) input, got shape {x.shape}")
        expect_channels("GroupNorm", x, self.num_channels)
        groups = x.reshape(*x.shape[:-1], self.num_groups, self.num_channels // self.num_groups)
        axes = (*range(1, x.ndim - 1), x.ndim)
        mean = jnp.mean(groups, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(groups - mean), axis=axes, keepdims=True)
        y = _normalise(groups, mean, var, self.eps).reshape(x.shape)
        if self.affine:
            y = y * channel_view(self.weight[...], x.ndim) + channel_view(self.bias[...], x.ndim)
        return y
