"""The transforms without randomness: ``ToTensor``, ``Normalize``, ``Resize``, ``Pad``.

Each takes torchvision's arguments, checks them when built, and ignores its key.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnets.data.transforms import _args, functional
from jaxnets.data.transforms.base import Transform

__all__ = ["Normalize", "Pad", "Resize", "ToTensor"]


@dataclasses.dataclass(frozen=True)
class ToTensor(Transform):
    """``uint8`` pixels in [0, 255] to floats in [0, 1], KEEPING the channels-last layout.

    torchvision's ``ToTensor`` returns ``(C, H, W)``; this one returns ``(H, W, C)``, the layout
    every jaxnets layer takes. A ``(H, W)`` image gains a channel axis, as in torchvision, and
    non-``uint8`` input passes unscaled (see :func:`functional.to_tensor`).

    Args:
      dtype: the floating dtype of the result (torch's default dtype, float32, by default).

    >>> ToTensor()(None, jnp.full((2, 3), 255, jnp.uint8)).shape
    (2, 3, 1)
    """

    dtype: Any = jnp.float32

    def __post_init__(self):
        if not jnp.issubdtype(self.dtype, jnp.floating):
            raise TypeError(f"dtype must be a floating dtype, got {self.dtype!r}")

    def apply_with(self, params: None, image: ArrayLike) -> jax.Array:
        return functional.to_tensor(image, self.dtype)

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        return (*image_shape, 1) if len(image_shape) == 2 else tuple(image_shape)


def _stats(value: Any, name: str) -> float | tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    array = np.asarray(value)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a number or a sequence of numbers, got {value!r}")
    return tuple(float(v) for v in array)


@dataclasses.dataclass(frozen=True)
class Normalize(Transform):
    """``output[..., c] = (input[..., c] - mean[c]) / std[c]`` in the image's dtype.

    Args:
      mean: one number per channel (or one for all).
      std: likewise; none may be zero.
      inplace: torchvision's flag, accepted and without effect (JAX arrays are immutable).

    >>> Normalize((0.5, 0.5), (0.25, 0.5))(None, jnp.ones((1, 1, 2), jnp.float32)).tolist()
    [[[2.0, 1.0]]]
    """

    mean: Any
    std: Any
    inplace: bool = False

    def __post_init__(self):
        object.__setattr__(self, "mean", _stats(self.mean, "mean"))
        object.__setattr__(self, "std", _stats(self.std, "std"))

    def apply_with(self, params: None, image: ArrayLike) -> jax.Array:
        return functional.normalize(image, self.mean, self.std, self.inplace)


@dataclasses.dataclass(frozen=True)
class Resize(Transform):
    """Bilinear resize of height and width, torchvision's ``Resize`` on tensors.

    It is ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
    antialias=antialias)``: with ``antialias`` a downscale averages every input pixel under a
    triangle as wide as the scale factor, without it only the two nearest (aliasing).

    Args:
      size: ``(h, w)``, or an int (or 1-sequence): the smaller edge, the other keeping the
        aspect ratio (``int(size * long / short)``).
      interpolation: ``"bilinear"``, the mode implemented.
      max_size: with an int ``size``, the longest the longer edge may become.
      antialias: as above; ``None`` means ``False``.

    >>> Resize(4).output_shape((8, 16, 3)), Resize((2, 3)).output_shape((8, 16, 3))
    ((4, 8, 3), (2, 3, 3))
    """

    size: Any
    interpolation: str = "bilinear"
    max_size: int | None = None
    antialias: bool | None = True

    def __post_init__(self):
        object.__setattr__(self, "size", functional._check_size(self.size, self.max_size))
        if self.interpolation != "bilinear":
            raise ValueError(
                f"interpolation must be 'bilinear' (the one mode here), got {self.interpolation!r}"
            )

    def apply_with(self, params: None, image: ArrayLike) -> jax.Array:
        return functional.resize(
            image, self.size, self.interpolation, self.max_size, self.antialias
        )

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        *lead, h, w, c = image_shape
        return (*lead, *_args.resized_output_size((h, w), self.size, self.max_size), c)


@dataclasses.dataclass(frozen=True)
class Pad(Transform):
    """Pad every border, torchvision's ``Pad`` (see :func:`functional.pad` for the modes).

    Args:
      padding: an int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``.
      fill: the ``"constant"`` value.
      padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.

    >>> Pad((1, 2)).output_shape((4, 4, 3))
    (8, 6, 3)
    """

    padding: Any
    fill: float | int = 0
    padding_mode: str = "constant"

    def __post_init__(self):
        object.__setattr__(self, "padding", _args.parse_padding(self.padding))
        _args.check_fill(self.fill)
        _args.check_padding_mode(self.padding_mode)

    def apply_with(self, params: None, image: ArrayLike) -> jax.Array:
        return functional.pad(image, self.padding, self.fill, self.padding_mode)

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        *lead, h, w, c = image_shape
        left, top, right, bottom = self.padding
        return (*lead, top + h + bottom, left + w + right, c)
