"""torchvision's argument rules for sizes, paddings and fills, in plain Python (no arrays).

Every check runs when a transform is built or traced, so bad input fails before compilation
with torchvision's message (and the argument's name where torchvision leaves it out).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def setup_size(size: Any, error_msg: str) -> tuple[int, int]:
    """torchvision's ``_setup_size``: an int ``s`` is ``(s, s)``, a 1-sequence ``(s,)`` too.

    Args:
      size: an int, or a sequence of one or two ints ``(h, w)``.
      error_msg: the message of the ``ValueError`` for a sequence of another length.

    Returns:
      ``(height, width)``, each checked to be an int >= 1.

    >>> setup_size(3, "bad"), setup_size([4], "bad"), setup_size((2, 5), "bad")
    ((3, 3), (4, 4), (2, 5))
    >>> setup_size((1, 2, 3), "Please provide only two dimensions (h, w) for size.")
    Traceback (most recent call last):
    ...
    ValueError: Please provide only two dimensions (h, w) for size.
    """
    if isinstance(size, numbers.Number):
        pair = (size, size)
    elif isinstance(size, Sequence) and len(size) == 1:
        pair = (size[0], size[0])
    elif not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(error_msg)
    else:
        pair = tuple(size)
    for value in pair:
        if not _is_int(value) or value < 1:
            raise ValueError(f"size must hold integers >= 1, got {size!r}")
    return int(pair[0]), int(pair[1])


def parse_padding(padding: Any) -> tuple[int, int, int, int]:
    """torchvision's padding forms as ``(left, top, right, bottom)``.

    An int pads every border; a 1-sequence likewise; a 2-sequence is ``(left/right, top/bottom)``;
    a 4-sequence is ``(left, top, right, bottom)``.

    Args:
      padding: int or sequence of 1, 2 or 4 ints, each >= 0.

    Returns:
      ``(left, top, right, bottom)``.

    Raises:
      TypeError: not an int, tuple or list (torchvision's "Got inappropriate padding arg").
      ValueError: another length, or a negative value (torchvision crops on negative padding;
        here that is refused).

    >>> parse_padding(1), parse_padding([2, 3]), parse_padding((1, 2, 3, 4))
    ((1, 1, 1, 1), (2, 3, 2, 3), (1, 2, 3, 4))
    >>> parse_padding((1, 2, 3))
    Traceback (most recent call last):
    ...
    ValueError: Padding must be an int or a 1, 2, or 4 element tuple, not a 3 element tuple
    """
    if not (_is_int(padding) or isinstance(padding, tuple | list)):
        raise TypeError(f"Got inappropriate padding arg: {padding!r} (an int, tuple or list)")
    if _is_int(padding):
        values: tuple[Any, ...] = (padding,) * 4
    elif len(padding) == 1:
        values = (padding[0],) * 4
    elif len(padding) == 2:
        values = (padding[0], padding[1], padding[0], padding[1])
    elif len(padding) == 4:
        values = tuple(padding)
    else:
        raise ValueError(
            "Padding must be an int or a 1, 2, or 4 element tuple, "
            f"not a {len(padding)} element tuple"
        )
    if not all(_is_int(v) and v >= 0 for v in values):
        raise ValueError(f"padding must hold integers >= 0, got {padding!r}")
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def check_fill(fill: Any) -> float | int:
    """A constant fill: an int or float, as torchvision's tensor ``pad`` accepts.

    >>> check_fill(0), check_fill(0.5)
    (0, 0.5)
    >>> try:
    ...     check_fill((1, 2, 3))
    ... except TypeError as err:
    ...     print(str(err)[:40])
    Got inappropriate fill arg: (1, 2, 3) (a
    """
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise TypeError(
            f"Got inappropriate fill arg: {fill!r} (an int or float; per-channel fills are "
            "not supported for tensors)"
        )
    return fill


def check_padding_mode(padding_mode: Any) -> str:
    """One of :data:`PADDING_MODES`.

    >>> check_padding_mode("wrap")
    Traceback (most recent call last):
    ...
    ValueError: Padding mode should be either constant, edge, reflect or symmetric, got 'wrap'
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            "Padding mode should be either constant, edge, reflect or symmetric, "
            f"got {padding_mode!r}"
        )
    return padding_mode


def resized_output_size(
    image_size: tuple[int, int], size: tuple[int, ...], max_size: int | None = None
) -> tuple[int, int]:
    """torchvision's ``_compute_resized_output_size``: ``(new_h, new_w)``.

    A 1-tuple ``(s,)`` sets the smaller edge to ``s`` and the longer to
    ``int(s * long / short)``; if that exceeds ``max_size`` the longer edge becomes
    ``max_size`` and the smaller ``int(max_size * s / long)``. A 2-tuple is ``(h, w)``.

    >>> resized_output_size((10, 20), (5,)), resized_output_size((30, 10), (4,), max_size=8)
    ((5, 10), (8, 2))
    >>> try:
    ...     resized_output_size((10, 20), (5,), max_size=5)
    ... except ValueError as err:
    ...     print(str(err)[:46])
    max_size = 5 must be strictly greater than the
    """
    h, w = image_size
    if len(size) == 2:
        return size[0], size[1]
    short, long = (w, h) if w <= h else (h, w)
    requested = size[0]
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ValueError(
                f"max_size = {max_size} must be strictly greater than the requested "
                f"size for the smaller edge size = {size}"
            )
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return new_h, new_w
