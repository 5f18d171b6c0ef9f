"""torchvision's image transforms as pure JAX functions on channels-last images.

Each transform is called as ``transform(key, image)`` on one ``(H, W, C)`` image and traces
under ``jit`` and ``vmap``; deterministic ones ignore the key (``None`` will do). Random ones
split into ``draw(key, image_shape)`` (their parameters, as arrays) and
``apply_with(params, image)``. :func:`apply_to_batch` transforms a batch ``(N, H, W, C)`` with
one key per image, the way a training step augments its batch.

Arguments, defaults and errors are torchvision's (``torchvision.transforms``); the layout is not:
images are ``(H, W, C)``, so :class:`ToTensor` keeps channels last instead of moving them first.
:mod:`~jaxnets.data.transforms.functional` holds the operations (``hflip``, ``crop``, ``pad``,
``resize``, ``normalize``, ``to_tensor``).

>>> import jax, jax.numpy as jnp
>>> augment = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
>>> images = jnp.zeros((8, 4, 4, 1), jnp.float32)
>>> jax.jit(lambda key, x: apply_to_batch(augment, key, x))(jax.random.key(0), images).shape
(8, 4, 4, 1)
"""

from jaxnets.data.transforms import functional
from jaxnets.data.transforms.base import Compose, Transform, apply_to_batch
from jaxnets.data.transforms.deterministic import Normalize, Pad, Resize, ToTensor
from jaxnets.data.transforms.randomized import CropParams, RandomCrop, RandomHorizontalFlip

__all__ = [
    "Compose",
    "CropParams",
    "Normalize",
    "Pad",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ToTensor",
    "Transform",
    "apply_to_batch",
    "functional",
]
