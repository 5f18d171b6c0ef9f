"""torchvision's tensor transforms as the plain torch operations its kernels call.

torchvision itself is not imported (its wheels are built against one torch build each); these
functions reproduce what ``torchvision.transforms`` does to a ``(C, H, W)`` tensor, from its
``transforms/_functional_tensor.py`` and ``transforms/transforms.py``:

* ``to_tensor``: ``from_numpy(hwc.transpose(2, 0, 1))``, ``uint8`` then ``.to(dtype).div(255)``;
* ``normalize``: ``(x - mean[:, None, None]) / std[:, None, None]`` (``sub_`` then ``div_``);
* ``hflip``: ``x.flip(-1)``;
* ``crop``: ``x[..., top:top + h, left:left + w]``, zero-padded where the window leaves the image;
* ``pad``: ``F.pad`` in ``constant`` (``value=float(fill)``), ``replicate`` (torchvision's
  ``edge``) and ``reflect`` modes on a 4-D tensor, and torchvision's own index gather for
  ``symmetric``;
* ``resize``: ``F.interpolate(mode="bilinear", align_corners=False, antialias=...)`` at
  torchvision's output size, integer images through float32 and ``round``;
* ``random_crop`` / ``random_hflip``: ``RandomCrop.forward`` / ``RandomHorizontalFlip.forward``
  with the random draw replaced by given parameters, and ``crop_params`` / ``flip_draw``, the
  draws as torchvision makes them with torch's generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "crop",
    "crop_params",
    "flip_draw",
    "hflip",
    "normalize",
    "pad",
    "random_crop",
    "random_hflip",
    "resize",
    "resized_output_size",
    "to_tensor",
]


def to_tensor(pic: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An ``(H, W)`` or ``(H, W, C)`` array as a ``(C, H, W)`` tensor; ``uint8`` scaled to [0, 1].

    ``dtype`` stands for torch's default dtype, which torchvision converts ``uint8`` to.
    """
    if pic.ndim == 2:
        pic = pic[:, :, None]
    img = torch.from_numpy(np.ascontiguousarray(pic.transpose(2, 0, 1)))
    if img.dtype == torch.uint8:
        return img.to(dtype=dtype).div(255)
    return img


def normalize(tensor: torch.Tensor, mean, std) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` of a ``(..., C, H, W)`` float tensor, out of place."""
    tensor = tensor.clone()
    mean = torch.as_tensor(mean, dtype=tensor.dtype)
    std = torch.as_tensor(std, dtype=tensor.dtype)
    if mean.ndim == 1:
        mean = mean.view(-1, 1, 1)
    if std.ndim == 1:
        std = std.view(-1, 1, 1)
    return tensor.sub_(mean).div_(std)


def hflip(img: torch.Tensor) -> torch.Tensor:
    """Mirror the last (width) axis."""
    return img.flip(-1)


def _ltrb_to_lrtb(padding: Sequence[int] | int) -> list[int]:
    """torchvision's padding forms as ``F.pad``'s ``[left, right, top, bottom]``."""
    if isinstance(padding, int):
        return [padding] * 4
    if len(padding) == 1:
        return [padding[0]] * 4
    if len(padding) == 2:
        return [padding[0], padding[0], padding[1], padding[1]]
    left, top, right, bottom = padding
    return [left, right, top, bottom]


def _pad_symmetric(img: torch.Tensor, lrtb: list[int]) -> torch.Tensor:
    # torchvision gathers rows and columns by index: pad p mirrors p-1 .. 0 on the left and
    # -1 .. -p on the right, so the edge pixel repeats.
    left, right, top, bottom = lrtb
    height, width = img.shape[-2], img.shape[-1]
    cols = list(range(left - 1, -1, -1)) + list(range(width)) + [-(i + 1) for i in range(right)]
    rows = list(range(top - 1, -1, -1)) + list(range(height)) + [-(i + 1) for i in range(bottom)]
    rows_t, cols_t = torch.tensor(rows), torch.tensor(cols)
    return img[..., rows_t[:, None], cols_t[None, :]]


def pad(img: torch.Tensor, padding, fill: float = 0, padding_mode: str = "constant"):
    """Pad a ``(C, H, W)`` (or ``(N, C, H, W)``) tensor's height and width as torchvision does."""
    lrtb = _ltrb_to_lrtb(padding)
    if padding_mode == "symmetric":
        return _pad_symmetric(img, lrtb)
    squeeze = img.ndim < 4
    if squeeze:
        img = img.unsqueeze(0)
    out_dtype = img.dtype
    cast = padding_mode != "constant" and out_dtype not in (torch.float32, torch.float64)
    if cast:  # torch's replicate and reflect pads take floating tensors only
        img = img.to(torch.float32)
    if padding_mode == "constant":
        img = F.pad(img, lrtb, mode="constant", value=float(fill))
    else:
        mode = {"edge": "replicate", "reflect": "reflect"}[padding_mode]
        img = F.pad(img, lrtb, mode=mode)
    if squeeze:
        img = img.squeeze(0)
    return img.to(out_dtype) if cast else img


def crop(img: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The window ``[top, top + height) x [left, left + width)``; zeros outside the image."""
    h, w = img.shape[-2], img.shape[-1]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        inside = img[..., max(top, 0) : bottom, max(left, 0) : right]
        ltrb = [
            max(-left + min(0, right), 0),
            max(-top + min(0, bottom), 0),
            max(right - max(w, left), 0),
            max(bottom - max(h, top), 0),
        ]
        return pad(inside, ltrb, fill=0)
    return img[..., top:bottom, left:right]


def resized_output_size(image_size, size, max_size=None) -> list[int]:
    """torchvision's ``[new_h, new_w]`` for ``size`` an int (smaller edge) or ``[h, w]``."""
    h, w = image_size
    if isinstance(size, int):
        size = [size]
    if len(size) == 2:
        return [size[0], size[1]]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return [new_h, new_w]


def resize(img: torch.Tensor, size, max_size=None, antialias: bool | None = True):
    """Bilinear resize of a ``(C, H, W)`` (or ``(N, C, H, W)``) tensor as torchvision's."""
    height, width = img.shape[-2], img.shape[-1]
    output_size = resized_output_size((height, width), size, max_size)
    if [height, width] == output_size:
        return img
    squeeze = img.ndim < 4
    if squeeze:
        img = img.unsqueeze(0)
    out_dtype = img.dtype
    cast = out_dtype not in (torch.float32, torch.float64)
    if cast:
        img = img.to(torch.float32)
    img = F.interpolate(
        img, size=output_size, mode="bilinear", align_corners=False, antialias=bool(antialias)
    )
    if squeeze:
        img = img.squeeze(0)
    if cast:
        if not out_dtype.is_floating_point:
            img = torch.round(img)
        img = img.to(out_dtype)
    return img


def random_crop(
    img: torch.Tensor,
    size,
    *,
    top: int,
    left: int,
    padding=None,
    pad_if_needed: bool = False,
    fill: float = 0,
    padding_mode: str = "constant",
) -> torch.Tensor:
    """``RandomCrop.forward`` with its draw given as ``(top, left)`` in the padded image."""
    th, tw = (size, size) if isinstance(size, int) else (size[0], size[-1])
    if padding is not None:
        img = pad(img, padding, fill, padding_mode)
    height, width = img.shape[-2], img.shape[-1]
    if pad_if_needed and width < tw:
        img = pad(img, [tw - width, 0], fill, padding_mode)
    if pad_if_needed and height < th:
        img = pad(img, [0, th - height], fill, padding_mode)
    return crop(img, top, left, th, tw)


def crop_params(height: int, width: int, th: int, tw: int) -> tuple[int, int]:
    """``RandomCrop.get_params``'s draw: ``(top, left)`` from torch's global generator."""
    if height < th or width < tw:
        raise ValueError(f"Required crop size {(th, tw)} is larger than input image size")
    if (height, width) == (th, tw):
        return 0, 0
    top = int(torch.randint(0, height - th + 1, size=(1,)).item())
    left = int(torch.randint(0, width - tw + 1, size=(1,)).item())
    return top, left


def random_hflip(img: torch.Tensor, flip: bool) -> torch.Tensor:
    """``RandomHorizontalFlip.forward`` with its draw given."""
    return hflip(img) if flip else img


def flip_draw(p: float = 0.5) -> bool:
    """``RandomHorizontalFlip``'s draw: ``torch.rand(1) < p``."""
    return bool(torch.rand(1) < p)
