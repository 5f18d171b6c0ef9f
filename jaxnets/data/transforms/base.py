"""What every transform is, how transforms chain (``Compose``), and how a batch is transformed.

A transform is a pure function ``transform(key, image) -> image`` on one channels-last image
``(H, W, C)`` (or ``(..., H, W, C)``, every leading index transformed alike, as torchvision
treats a batched tensor). Its randomness is split in two so that it can be inspected and fed:
``draw(key, image_shape)`` returns the parameters (``None`` for a deterministic transform, which
ignores its key and accepts ``None``), and ``apply_with(params, image)`` applies them. Shapes are
static, parameters are arrays: a transform traces under ``jit`` and ``vmap``, and
:func:`apply_to_batch` gives every image of a batch its own key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["Compose", "Transform", "apply_to_batch"]


class Transform:
    """The protocol of :mod:`jaxnets.data.transforms`; subclasses define ``apply_with``.

    ``transform(key, image)`` is ``transform.apply_with(transform.draw(key, image.shape),
    image)``. A deterministic transform keeps the default ``draw`` (``None``) and
    ``output_shape`` (unchanged) where they hold.
    """

    def draw(self, key: jax.Array | None, image_shape: Sequence[int]) -> Any:
        """The random parameters for an image of ``image_shape``; ``None`` when there are none."""
        del key, image_shape
        return None

    def apply_with(self, params: Any, image: ArrayLike) -> jax.Array:
        """Apply the transform with drawn ``params`` (see :meth:`draw`)."""
        raise NotImplementedError

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape an image of ``image_shape`` comes out with."""
        return tuple(image_shape)

    def __call__(self, key: jax.Array | None, image: ArrayLike) -> jax.Array:
        image = jnp.asarray(image)
        return self.apply_with(self.draw(key, image.shape), image)


def require_key(key: Any, owner: object) -> jax.Array:
    """``key`` itself, or a ``TypeError`` naming the random transform that needs one."""
    if key is None:
        raise TypeError(f"{type(owner).__name__} is random: pass a jax.random.key, got None")
    return key


@dataclasses.dataclass(frozen=True)
class Compose(Transform):
    """Several transforms in order, each with its own key (``jax.random.split(key, n)``).

    Args:
      transforms: the transforms; any callable ``f(key, image)`` may take part, but
        :meth:`draw` and :meth:`apply_with` need every one to be a :class:`Transform`.

    >>> from jaxnets.data.transforms import Normalize, ToTensor
    >>> pipeline = Compose([ToTensor(), Normalize([0.5], [0.5])])
    >>> pipeline(None, jnp.asarray([[0, 255]], jnp.uint8))[..., 0].tolist()
    [[-1.0, 1.0]]
    """

    transforms: Sequence[Callable[..., Any]]

    def __post_init__(self):
        transforms = tuple(self.transforms)
        for index, transform in enumerate(transforms):
            if not callable(transform):
                raise TypeError(
                    f"transforms[{index}] must be a transform f(key, image), got {transform!r}"
                )
        object.__setattr__(self, "transforms", transforms)

    def _keys(self, key: jax.Array | None) -> list[jax.Array | None]:
        if key is None:
            return [None] * len(self.transforms)
        return list(jax.random.split(key, len(self.transforms)))

    def _protocol(self) -> tuple[Transform, ...]:
        for index, transform in enumerate(self.transforms):
            if not isinstance(transform, Transform):
                raise TypeError(
                    f"draw/apply_with need Transform objects; transforms[{index}] is {transform!r}"
                )
        return self.transforms

    def draw(self, key: jax.Array | None, image_shape: Sequence[int]) -> tuple[Any, ...]:
        """Each transform's parameters, drawn for the shape the transforms before it produce."""
        params, shape = [], tuple(image_shape)
        for transform, subkey in zip(self._protocol(), self._keys(key), strict=True):
            params.append(transform.draw(subkey, shape))
            shape = transform.output_shape(shape)
        return tuple(params)

    def apply_with(self, params: Sequence[Any], image: ArrayLike) -> jax.Array:
        image = jnp.asarray(image)
        for transform, each in zip(self._protocol(), params, strict=True):
            image = transform.apply_with(each, image)
        return image

    def output_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(image_shape)
        for transform in self._protocol():
            shape = transform.output_shape(shape)
        return shape

    def __call__(self, key: jax.Array | None, image: ArrayLike) -> jax.Array:
        image = jnp.asarray(image)
        for transform, subkey in zip(self.transforms, self._keys(key), strict=True):
            image = transform(subkey, image)
        return image


def apply_to_batch(
    transform: Callable[[jax.Array | None, jax.Array], jax.Array],
    key: jax.Array | None,
    images: ArrayLike,
) -> jax.Array:
    """``transform`` on each image of ``images``, image ``i`` with key ``split(key, N)[i]``.

    It is ``jax.vmap`` over the batch axis, so inside a compiled training step the whole batch
    is one vectorised program.

    Args:
      transform: a transform, ``transform(key, image)``.
      key: a ``jax.random.key`` (``None`` only for deterministic transforms).
      images: ``(N, H, W, C)`` (or ``(N, ...)``, whatever one ``transform`` call takes).

    Returns:
      The ``N`` transformed images, stacked.

    >>> from jaxnets.data.transforms import RandomHorizontalFlip
    >>> images = jnp.broadcast_to(jnp.arange(2)[None, None, :, None], (6, 1, 2, 1))
    >>> out = apply_to_batch(RandomHorizontalFlip(), jax.random.key(0), images)
    >>> out.shape, sorted(set(out[:, 0, 0, 0].tolist())) == [0, 1]
    ((6, 1, 2, 1), True)
    """
    images = jnp.asarray(images)
    if images.ndim < 1:
        raise ValueError(f"images must have a leading batch axis, got shape {images.shape}")
    if key is None:
        return jax.vmap(lambda image: transform(None, image))(images)
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(transform)(keys, images)
