"""The image operations the transforms are made of, on channels-last ``(..., H, W, C)`` arrays.

Each is torchvision's tensor kernel (``transforms/_functional_tensor.py``) with the channel axis
moved last: ``hflip`` flips the width axis, ``crop`` slices height and width, ``pad`` pads them
(``edge`` is torch's ``replicate``, ``symmetric`` repeats the edge pixel), ``normalize`` is
``(x - mean) / std`` per channel, ``to_tensor`` scales ``uint8`` by ``/ 255``, and ``resize`` is
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=...)``, by
the kernel of :func:`jaxnets.nn.functional.vision.interpolate` (torch's taps and weights,
computed once per shape on the host; the width pass, then the height pass).
Every argument that decides a shape is static, so all of them trace under ``jit`` and ``vmap``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnets.data.transforms import _args
from jaxnets.nn.functional.vision import resample

__all__ = ["crop", "hflip", "normalize", "pad", "resize", "to_tensor"]


def _image(image: ArrayLike, name: str = "image", min_ndim: int = 3) -> jax.Array:
    image = jnp.asarray(image)
    if image.ndim < min_ndim:
        raise ValueError(
            f"{name} must be a channels-last image (..., H, W, C), got shape {image.shape}"
        )
    return image


def _true_divide(x: jax.Array, divisor: jax.Array) -> jax.Array:
    """``x / divisor`` correctly rounded, as torch divides.

    XLA rewrites a division by a broadcast value as a multiplication by its reciprocal, which
    is 1 ulp off for about half of all values (10 / 255 in float32, for one); the barrier keeps
    the divisor a full array, which XLA divides exactly.
    """
    return x / jax.lax.optimization_barrier(jnp.broadcast_to(divisor, x.shape))


def to_tensor(pic: ArrayLike, dtype: Any = jnp.float32) -> jax.Array:
    """torchvision's ``to_tensor`` for arrays, keeping the channels-last layout.

    ``uint8`` pixels become ``dtype`` values in [0, 1] (``x.astype(dtype) / 255``); other dtypes
    pass unscaled, as torchvision passes them. A ``(H, W)`` image gains a channel axis.

    Args:
      pic: ``(H, W)`` or ``(H, W, C)``.
      dtype: the floating dtype of scaled ``uint8`` input (torch's default dtype is float32).

    Returns:
      ``(H, W, C)``: NOT torchvision's ``(C, H, W)``.

    >>> to_tensor(jnp.asarray([[0, 51], [255, 102]], jnp.uint8))[..., 0].tolist()
    [[0.0, 0.20000000298023224], [1.0, 0.4000000059604645]]
    """
    pic = jnp.asarray(pic)
    if pic.ndim not in (2, 3):
        raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
    if pic.ndim == 2:
        pic = pic[:, :, None]
    if pic.dtype != jnp.uint8:
        return pic
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    return _true_divide(pic.astype(dtype), jnp.asarray(255, dtype))


def normalize(tensor: ArrayLike, mean: Any, std: Any, inplace: bool = False) -> jax.Array:
    """``(tensor - mean) / std`` per channel, in the tensor's dtype.

    Args:
      tensor: floating ``(..., H, W, C)``.
      mean: a number, or one per channel (or one for all).
      std: likewise; no entry may be zero in the tensor's dtype.
      inplace: accepted for torchvision's signature; JAX arrays are never changed in place.

    Returns:
      The normalised array, same shape and dtype.

    >>> x = jnp.ones((1, 1, 2), jnp.float32)
    >>> normalize(x, [0.5, 0.0], [0.5, 2.0]).tolist()
    [[[1.0, 0.5]]]
    """
    del inplace
    tensor = _image(tensor, "tensor")
    if not jnp.issubdtype(tensor.dtype, jnp.floating):
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    channels = tensor.shape[-1]
    stats = {}
    for name, value in (("mean", mean), ("std", std)):
        array = np.asarray(value, dtype=tensor.dtype)
        if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, channels)):
            raise ValueError(
                f"{name} must be a number or hold 1 or C = {channels} values (one per channel "
                f"of the (..., H, W, C) tensor), got shape {array.shape}"
            )
        stats[name] = array.reshape((1,) * (tensor.ndim - 1) + (-1,))
    if (stats["std"] == 0).any():
        raise ValueError(
            f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by "
            "zero."
        )
    return _true_divide(tensor - jnp.asarray(stats["mean"]), jnp.asarray(stats["std"]))


def hflip(img: ArrayLike) -> jax.Array:
    """Mirror left-right: the width axis ``-2`` of ``(..., H, W, C)``.

    >>> hflip(jnp.arange(3)[None, :, None])[0, :, 0].tolist()
    [2, 1, 0]
    """
    return jnp.flip(_image(img, "img"), axis=-2)


def crop(img: ArrayLike, top: Any, left: Any, height: int, width: int) -> jax.Array:
    """The ``height x width`` window at ``(top, left)``.

    With Python ints, a window reaching outside the image is zero-padded there, as torchvision
    does; traced offsets (drawn under ``jit``) must keep the window inside the image
    (``lax.dynamic_slice`` clamps any that do not).

    Args:
      img: ``(..., H, W, C)``.
      top: first row, an int or an int scalar array.
      left: first column, likewise.
      height: rows of the window (static).
      width: columns of the window (static).

    Returns:
      ``(..., height, width, C)``.

    >>> x = jnp.arange(9).reshape(3, 3, 1)
    >>> crop(x, 1, 1, 2, 2)[..., 0].tolist(), crop(x, -1, 2, 2, 2)[..., 0].tolist()
    ([[4, 5], [7, 8]], [[0, 0], [2, 0]])
    """
    img = _image(img, "img")
    h, w = img.shape[-3], img.shape[-2]
    if isinstance(top, int) and isinstance(left, int):
        right, bottom = left + width, top + height
        if left < 0 or top < 0 or right > w or bottom > h:
            inside = img[..., max(top, 0) : bottom, max(left, 0) : right, :]
            padding = (
                max(-left + min(0, right), 0),
                max(-top + min(0, bottom), 0),
                max(right - max(w, left), 0),
                max(bottom - max(h, top), 0),
            )
            return pad(inside, padding, fill=0)
        return img[..., top:bottom, left:right, :]
    zeros = (0,) * (img.ndim - 3)
    starts = tuple(jnp.asarray(i, jnp.int32) for i in (*zeros, top, left, 0))
    sizes = (*img.shape[:-3], height, width, img.shape[-1])
    return jax.lax.dynamic_slice(img, starts, sizes)


def pad(
    img: ArrayLike, padding: Any, fill: float | int = 0, padding_mode: str = "constant"
) -> jax.Array:
    """Pad height and width as torchvision does.

    Args:
      img: ``(..., H, W, C)``.
      padding: an int, or ``(left/right, top/bottom)``, or ``(left, top, right, bottom)``.
      fill: the value of ``"constant"`` padding (cast to the image's dtype).
      padding_mode: ``"constant"``; ``"edge"`` repeats the border pixel (torch's
        ``replicate``); ``"reflect"`` mirrors without repeating it (``[1, 2, 3]`` padded by 2:
        ``[3, 2, 1, 2, 3, 2, 1]``) and needs padding < the side; ``"symmetric"`` mirrors
        repeating it (``[2, 1, 1, 2, 3, 3, 2]``) and needs padding <= the side.

    Returns:
      ``(..., top + H + bottom, left + W + right, C)``.

    >>> row = jnp.asarray([1, 2, 3])[None, :, None]
    >>> [pad(row, [2, 0], padding_mode=m)[0, :, 0].tolist() for m in ("reflect", "symmetric")]
    [[3, 2, 1, 2, 3, 2, 1], [2, 1, 1, 2, 3, 3, 2]]
    """
    img = _image(img, "img")
    left, top, right, bottom = _args.parse_padding(padding)
    fill = _args.check_fill(fill)
    padding_mode = _args.check_padding_mode(padding_mode)
    h, w = img.shape[-3], img.shape[-2]
    limits = {"reflect": (h - 1, w - 1), "symmetric": (h, w)}
    if padding_mode in limits:
        most_h, most_w = limits[padding_mode]
        if max(top, bottom) > most_h or max(left, right) > most_w:
            relation = "<" if padding_mode == "reflect" else "<="
            raise ValueError(
                f"{padding_mode} padding must be {relation} the image side on each border: got "
                f"(left, top, right, bottom) = {(left, top, right, bottom)} for H, W = {h}, {w}"
            )
    widths = [(0, 0)] * (img.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
    if padding_mode == "constant":
        return jnp.pad(img, widths, constant_values=np.asarray(fill).astype(img.dtype))
    return jnp.pad(img, widths, mode=padding_mode)


def resize(
    img: ArrayLike,
    size: Any,
    interpolation: str = "bilinear",
    max_size: int | None = None,
    antialias: bool | None = True,
) -> jax.Array:
    """Resize height and width as ``torchvision.transforms.functional.resize`` on tensors.

    Args:
      img: ``(..., H, W, C)``; integer images are resized in float32 and rounded back.
      size: ``(h, w)``, or an int (or 1-sequence) for the smaller edge, the other edge
        keeping the aspect ratio (truncated).
      interpolation: ``"bilinear"`` (the one mode implemented).
      max_size: the longest edge allowed after an int ``size`` (then the smaller edge shrinks).
      antialias: filter when downsampling, as ``interpolate(antialias=True)``; ``None`` is
        ``False``.

    Returns:
      ``(..., new_h, new_w, C)``, the input itself when the size does not change.

    Halving ``[0, 1, 2, 3]``: without antialiasing each output averages its two nearest
    inputs; with it, a triangle two pixels wide weighs ``0.75, 0.75, 0.25`` (normalised).

    >>> x = jnp.asarray([[0.0, 1.0, 2.0, 3.0]])[..., None]
    >>> resize(x, (1, 2), antialias=False)[0, :, 0].tolist()
    [0.5, 2.5]
    >>> [round(v, 4) for v in resize(x, (1, 2))[0, :, 0].tolist()]
    [0.7143, 2.2857]
    """
    img = _image(img, "img")
    size = _check_size(size, max_size)
    if interpolation != "bilinear":
        raise ValueError(
            f"interpolation must be 'bilinear' (the one mode here), got {interpolation!r}"
        )
    h, w = img.shape[-3], img.shape[-2]
    new_h, new_w = _args.resized_output_size((h, w), size, max_size)
    if min(new_h, new_w) < 1:
        raise ValueError(
            f"resizing {(h, w)} with size={size} gives an empty image {(new_h, new_w)}"
        )
    if (new_h, new_w) == (h, w):
        return img
    out_dtype = img.dtype
    work_dtype = out_dtype if out_dtype in (jnp.float32, jnp.float64) else jnp.dtype(jnp.float32)
    x = img.astype(work_dtype)
    # interpolate's separable kernel: the width pass, then the height pass, each if needed.
    x = resample(x, (-3, -2), (new_h, new_w), "bilinear", antialias=bool(antialias))
    if work_dtype != out_dtype:
        x = jnp.round(x) if jnp.issubdtype(out_dtype, jnp.integer) else x
        x = x.astype(out_dtype)
    return x


def _check_size(size: Any, max_size: Any) -> tuple[int, ...]:
    """``Resize``'s ``size`` as a 1- or 2-tuple of ints >= 1, with ``max_size`` checked."""
    if _args._is_int(size):
        size = (size,)
    elif not isinstance(size, list | tuple):
        raise TypeError(f"Size should be int or sequence. Got {type(size)}")
    if len(size) not in (1, 2):
        raise ValueError("If size is a sequence, it should have 1 or 2 values")
    if not all(_args._is_int(v) and v >= 1 for v in size):
        raise ValueError(f"size must hold integers >= 1, got {size!r}")
    if max_size is not None:
        if len(size) != 1:
            raise ValueError(
                "max_size should only be passed if size specifies the length of the smaller "
                "edge, i.e. size should be an int or a sequence of length 1 in torchscript mode."
            )
        if not _args._is_int(max_size):
            raise TypeError(f"max_size must be an int or None, got {max_size!r}")
    return tuple(int(v) for v in size)
