"""Normalisation layers on channels-last inputs: ``BatchNorm1d/2d/3d``, ``InstanceNorm1d/2d/3d``,
``LayerNorm``, ``GroupNorm``, ``RMSNorm``, ``LocalResponseNorm``.

The computations, and torch's statistics rules, are those of
:mod:`jaxnets.nn.functional.normalization`; the layers hold the parameters and buffers
(``nnx.BatchStat``, written in place in training mode so ``nnx.jit`` and ``nnx.split``/``merge``
carry them) and switch with ``model.train()`` / ``model.eval()`` (``use_running_average``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import expect_channels, expect_rank, positive
from jaxnets.nn.functional import normalization as F
from jaxnets.nn.state import TorchEntry, counter, same

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "LocalResponseNorm",
]


class _NormBase(nnx.Module):
    """torch's ``_NormBase``: affine parameters and running statistics over channels."""

    torch_channel_axis: ClassVar[dict[int, int]]
    _ranks: ClassVar[tuple[int, ...]]
    _layout: ClassVar[str]

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
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
        self.bias = nnx.Param(jnp.zeros((num_features,), dtype)) if affine and bias else None
        if track_running_stats:
            self.running_mean = nnx.BatchStat(jnp.zeros((num_features,), dtype))
            self.running_var = nnx.BatchStat(jnp.ones((num_features,), dtype))
            self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.int32))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight``, ``bias`` where present, then the buffers (if tracked), all as is."""
        entries = {}
        if self.weight is not None:
            entries["weight"] = same("weight")
        if self.bias is not None:
            entries["bias"] = same("bias")
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

    def _check(self, x: jax.Array) -> None:
        name = type(self).__name__
        expect_rank(name, x, self._ranks, self._layout)
        expect_channels(name, x, self.num_features)

    def _momentum(self, dtype: jnp.dtype) -> jax.Array:
        """torch's factor: ``momentum``, or ``1 / num_batches_tracked`` (cumulative average)."""
        tracked = self.num_batches_tracked[...] + 1
        self.num_batches_tracked[...] = tracked
        if self.momentum is None:
            return 1.0 / tracked.astype(dtype)
        return jnp.asarray(self.momentum, dtype)

    def _store(self, mean: jax.Array, var: jax.Array) -> None:
        self.running_mean[...] = mean
        self.running_var[...] = var

    def _params(self) -> tuple[jax.Array | None, jax.Array | None]:
        weight = None if self.weight is None else self.weight[...]
        bias = None if self.bias is None else self.bias[...]
        return weight, bias


class _BatchNorm(_NormBase):
    def __call__(self, input: ArrayLike, use_running_average: bool | None = None) -> jax.Array:  # noqa: A002
        """Normalise ``input``; in training mode with tracked statistics, update them in place.

        Args:
          input: channels-last input, ``num_features`` on the last axis.
          use_running_average: overrides the attribute ``model.train()``/``eval()`` set.
        """
        x = jnp.asarray(input)
        self._check(x)
        if use_running_average is None:
            use_running_average = self.use_running_average
        training = not use_running_average
        weight, bias = self._params()
        if not self.track_running_stats:
            return F.batch_norm(x, None, None, weight, bias, True, 0.0, self.eps)
        if not training:
            mean, var = self.running_mean[...], self.running_var[...]
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        y, mean, var = F.batch_norm(
            x,
            self.running_mean[...],
            self.running_var[...],
            weight,
            bias,
            True,
            self._momentum(x.dtype),
            self.eps,
            return_running=True,
        )
        self._store(mean, var)
        return y


_BATCH_NORM_DOC = """``torch.nn.{name}`` on channels-last input {layouts}.

Arguments and defaults as torch (``bias=False`` keeps ``weight`` and drops ``bias``). In
training mode (the default, ``use_running_average=False``, what ``model.train()`` sets) it
normalises with the batch's statistics over every axis but the last and, when
``track_running_stats``, updates the buffers in place:
``running = (1 - momentum) * running + momentum * batch_stat`` with the *unbiased* variance,
``num_batches_tracked += 1``, and ``momentum=None`` meaning the cumulative average
(``momentum = 1 / num_batches_tracked``). In eval mode (``model.eval()``) it uses the running
statistics, or the batch's if ``track_running_stats=False``. ``affine=False`` drops ``weight``
and ``bias``. ``num_batches_tracked`` is int32 here (torch's int64 in ``state_dict``).

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


class BatchNorm3d(_BatchNorm):
    torch_channel_axis = {5: 1}
    _ranks = (5,)
    _layout = "(N, D, H, W, C)"
    __doc__ = _BATCH_NORM_DOC.format(
        name="BatchNorm3d", layouts="``(N, D, H, W, C)``", size=48, shape="2, 2, 2, 2, 3"
    )


class _InstanceNorm(_NormBase):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        *,
        bias: bool = True,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        super().__init__(
            num_features,
            eps,
            momentum,
            affine,
            track_running_stats,
            bias=bias,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, input: ArrayLike, use_running_average: bool | None = None) -> jax.Array:  # noqa: A002
        """Normalise each sample's channels; see the class docstring for the modes."""
        x = jnp.asarray(input)
        self._check(x)
        unbatched = x.ndim == self._ranks[0]
        if unbatched:
            x = x[None]
        if use_running_average is None:
            use_running_average = self.use_running_average
        use_input_stats = not (use_running_average and self.track_running_stats)
        weight, bias = self._params()
        if self.track_running_stats:
            training = not use_running_average
            # torch's instance norms count no batches and read momentum=None as 0
            momentum = (self.momentum or 0.0) if training else 0.0
            y, mean, var = F.instance_norm(
                x,
                self.running_mean[...],
                self.running_var[...],
                weight,
                bias,
                use_input_stats,
                momentum,
                self.eps,
                return_running=True,
            )
            if training:
                self._store(mean, var)
        else:
            y = F.instance_norm(x, None, None, weight, bias, True, 0.0, self.eps)
        return y[0] if unbatched else y


_INSTANCE_NORM_DOC = """``torch.nn.{name}`` on channels-last input {layouts}.

Each sample's channel is normalised over its spatial positions with the biased variance.
Arguments and defaults as torch: ``affine=False`` and ``track_running_stats=False`` by default.
With ``track_running_stats``, training mode also updates ``running_mean``/``running_var`` (as
torch: ``num_batches_tracked`` stays 0 and ``momentum=None`` means 0) with
the batch averages of the instance means and unbiased variances, and eval mode normalises with
them; without, both modes use the instance statistics.

>>> norm = {name}(3, affine=True)
>>> norm(jnp.arange({size}, dtype=jnp.float32).reshape({shape})).shape
({shape_out})
"""


class InstanceNorm1d(_InstanceNorm):
    torch_channel_axis = {3: 1, 2: 0}
    _ranks = (2, 3)
    _layout = "(N, L, C) or (L, C)"
    __doc__ = _INSTANCE_NORM_DOC.format(
        name="InstanceNorm1d",
        layouts="``(N, L, C)`` or unbatched ``(L, C)``",
        size=24,
        shape="2, 4, 3",
        shape_out="2, 4, 3",
    )


class InstanceNorm2d(_InstanceNorm):
    torch_channel_axis = {4: 1, 3: 0}
    _ranks = (3, 4)
    _layout = "(N, H, W, C) or (H, W, C)"
    __doc__ = _INSTANCE_NORM_DOC.format(
        name="InstanceNorm2d",
        layouts="``(N, H, W, C)`` or unbatched ``(H, W, C)``",
        size=24,
        shape="2, 2, 2, 3",
        shape_out="2, 2, 2, 3",
    )


class InstanceNorm3d(_InstanceNorm):
    torch_channel_axis = {5: 1, 4: 0}
    _ranks = (4, 5)
    _layout = "(N, D, H, W, C) or (D, H, W, C)"
    __doc__ = _INSTANCE_NORM_DOC.format(
        name="InstanceNorm3d",
        layouts="``(N, D, H, W, C)`` or unbatched ``(D, H, W, C)``",
        size=24,
        shape="2, 2, 2, 3",
        shape_out="2, 2, 2, 3",
    )


def _shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    return tuple(positive("normalized_shape", s) for s in shape)


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
        self.normalized_shape = _shape(normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        shape = self.normalized_shape
        self.weight = nnx.Param(jnp.ones(shape, dtype)) if elementwise_affine else None
        self.bias = nnx.Param(jnp.zeros(shape, dtype)) if elementwise_affine and bias else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` and ``bias`` as is, where present."""
        entries = {}
        if self.weight is not None:
            entries["weight"] = same("weight")
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        weight = None if self.weight is None else self.weight[...]
        bias = None if self.bias is None else self.bias[...]
        return F.layer_norm(input, self.normalized_shape, weight, bias, self.eps)


class RMSNorm(nnx.Module):
    """``torch.nn.RMSNorm``: ``x / sqrt(mean(x**2) + eps) * weight`` over the trailing
    ``normalized_shape`` axes (of the array as it is, as :class:`LayerNorm`).

    ``eps=None`` is the input dtype's machine epsilon, as torch. ``weight`` (ones) has
    ``normalized_shape``; ``elementwise_affine=False`` drops it.

    >>> RMSNorm(2)(jnp.asarray([[3.0, 4.0]]), ).round(3).tolist()
    [[0.849, 1.131]]
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        self.normalized_shape = _shape(normalized_shape)
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = elementwise_affine
        shape = self.normalized_shape
        self.weight = nnx.Param(jnp.ones(shape, dtype)) if elementwise_affine else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` as is, where present."""
        return {"weight": same("weight")} if self.weight is not None else {}

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        weight = None if self.weight is None else self.weight[...]
        return F.rms_norm(input, self.normalized_shape, weight, self.eps)


class GroupNorm(nnx.Module):
    """``torch.nn.GroupNorm`` on channels-last ``(N, *spatial, C)`` input.

    The channels split into ``num_groups`` consecutive blocks (torch's order); each sample's block
    is normalised over its channels and all spatial positions with the biased variance, then
    ``weight``/``bias`` (``(num_channels,)``; ``affine=False`` drops both, ``bias=False`` the
    bias) apply per channel.

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
        bias: bool = True,
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
        self.bias = nnx.Param(jnp.zeros((num_channels,), dtype)) if affine and bias else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` and ``bias`` as is, where present."""
        entries = {}
        if self.weight is not None:
            entries["weight"] = same("weight")
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        x = jnp.asarray(input)
        if x.ndim < 2:
            raise ValueError(f"GroupNorm expected (N, *spatial, C) input, got shape {x.shape}")
        expect_channels("GroupNorm", x, self.num_channels)
        weight = None if self.weight is None else self.weight[...]
        bias = None if self.bias is None else self.bias[...]
        return F.group_norm(x, self.num_groups, weight, bias, self.eps)


class LocalResponseNorm(nnx.Module):
    """``torch.nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)`` across the channels
    of a channels-last ``(N, *spatial, C)`` input (at least 3-D)."""

    torch_channel_axis = {3: 1, 4: 1, 5: 1, 6: 1}

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        self.size = positive("size", size)
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)
