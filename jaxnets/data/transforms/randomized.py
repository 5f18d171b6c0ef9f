"""The random transforms: ``RandomHorizontalFlip`` and ``RandomCrop``.

Their draws follow torchvision's distributions with ``jax.random`` in place of torch's global
generator: a flip when ``uniform() < p`` (``torch.rand(1) < p``), a crop's top and left uniform
over every position that fits (``torch.randint(0, h - th + 1)``). ``draw`` returns the
parameters as arrays and ``apply_with`` applies them, so a test can hand torch the same ones.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets.data.transforms import _args, functional
from jaxnets.data.transforms.base import Transform, require_key

__all__ = ["CropParams", "RandomCrop", "RandomHorizontalFlip"]


@dataclasses.dataclass(frozen=True)
class RandomHorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p``.

    Args:
      p: the probability of a flip, in [0, 1].

    ``draw`` returns a boolean scalar, whether to flip.

    >>> flip = RandomHorizontalFlip(p=1.0)
    >>> image = jnp.arange(3.0)[None, :, None]
    >>> flip(jax.random.key(0), image)[0, :, 0].tolist()
    [2.0, 1.0, 0.0]
    >>> flip.apply_with(jnp.asarray(False), image)[0, :, 0].tolist()
    [0.0, 1.0, 2.0]
    """

    p: float = 0.5

    def __post_init__(self):
        p = self.p
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")

    def draw(self, key: jax.Array | None, image_shape: Sequence[int]) -> jax.Array:
        return jax.random.uniform(require_key(key, self), (), jnp.float32) < self.p

    def apply_with(self, params: ArrayLike, image: ArrayLike) -> jax.Array:
        image = jnp.asarray(image)
        return jnp.where(jnp.asarray(params), functional.hflip(image), image)


class CropParams(NamedTuple):
    """Where a :class:`RandomCrop` cuts, in the padded image: int32 scalars ``top``, ``left``."""

    top: jax.Array
    left: jax.Array


@dataclasses.dataclass(frozen=True)
class RandomCrop(Transform):
    """A ``size`` window at a uniformly random position, after optional padding.

    As torchvision: ``padding`` (an int, ``(left/right, top/bottom)`` or ``(left, top, right,
    bottom)``) pads first; then, with ``pad_if_needed``, a side shorter than the crop is padded
    by the shortfall on BOTH its borders (torchvision's rule); the window's top and left are
    uniform over every position that fits.

    Args:
      size: ``(h, w)``, or an int for a square.
      padding: optional padding of every image, as above.
      pad_if_needed: pad images smaller than ``size`` as above.
      fill: the ``"constant"`` padding value.
      padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"`` (see
        :func:`jaxnets.data.transforms.functional.pad`).

    ``draw`` returns :class:`CropParams`.

    >>> crop = RandomCrop(2, padding=1)
    >>> image = jnp.ones((2, 2, 1), jnp.float32)
    >>> crop.apply_with(CropParams(0, 0), image)[..., 0].tolist()
    [[0.0, 0.0], [0.0, 1.0]]
    >>> crop(jax.random.key(0), image).shape
    (2, 2, 1)
    """

    size: Any
    padding: Any = None
    pad_if_needed: bool = False
    fill: float | int = 0
    padding_mode: str = "constant"

    def __post_init__(self):
        size = _args.setup_size(self.size, "Please provide only two dimensions (h, w) for size.")
        object.__setattr__(self, "size", size)
        if self.padding is not None:
            object.__setattr__(self, "padding", _args.parse_padding(self.padding))
        if not isinstance(self.pad_if_needed, bool):
            raise TypeError(f"pad_if_needed must be a bool, got {self.pad_if_needed!r}")
        _args.check_fill(self.fill)
        _args.check_padding_mode(self.padding_mode)

    def _paddings(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """The pads applied in order, as ``(left, top, right, bottom)``."""
        pads = []
        if self.padding is not None:
            left, top, right, bottom = self.padding
            pads.append(self.padding)
            h, w = h + top + bottom, w + left + right
        th, tw = self.size
        # Both measured after the first padding, as torchvision measures them once.
        if self.pad_if_needed and w < tw:
            pads.append((tw - w, 0, tw - w, 0))
        if self.pad_if_needed and h < th:
            pads.append((0, th - h, 0, th - h))
        return pads

    def _padded_size(self, image_shape: Sequence[int]) -> tuple[int, int]:
        if len(image_shape) < 3:
            shape = tuple(image_shape)
            raise ValueError(f"image must be a channels-last image (..., H, W, C), got {shape}")
        h, w = image_shape[-3], image_shape[-2]
        for left, top, right, bottom in self._paddings(h, w):
            h, w = h + top + bottom, w + left + right
        th, tw = self.size
        if h < th or w < tw:
            raise ValueError(
                f"Required crop size {(th, tw)} is larger than input image size {(h, w)}"
                + (" after padding" if self._paddings(*image_shape[-3:-1]) else "")
            )
        return h, w

    def draw(self, key: jax.Array | None, image_shape: Sequence[int]) -> CropParams:
        h, w = self._padded_size(image_shape)
        th, tw = self.size
        # One draw of both offsets: a vmapped batch compiles one random-bits program, not two.
        counts = jnp.asarray([h - th + 1, w - tw + 1], jnp.int32)
        top, left = jax.random.randint(require_key(key, self), (2,), 0, counts, jnp.int32)
        return CropParams(top, left)

    def apply_with(self, params: CropParams, image: ArrayLike) -> jax.Array:
        image = jnp.asarray(image)
        self._padded_size(image.shape)
        for padding in self._paddings(image.shape[-3], image.shape[-2]):
            image = functional.pad(image, padding, self.fill, self.padding_mode)
        top, left = params
        return functional.crop(image, jnp.asarray(top), jnp.asarray(left), *self.size)

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        self._padded_size(image_shape)
        return (*image_shape[:-3], *self.size, image_shape[-1])
