"""Data sets that ship inside installed packages, read without importing those packages.

scikit-learn bundles the 8x8 digits as ``sklearn/datasets/data/digits.csv.gz``;
``sklearn.datasets.load_digits`` reads that file with ``np.loadtxt``, but importing
``sklearn.datasets`` first takes about a second (scipy and the rest of scikit-learn), fifty times
the read itself. :func:`digits` reads the same file the same way.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

DIGITS_FILE = Path("datasets", "data", "digits.csv.gz")


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits exactly as ``load_digits(return_X_y=True)`` gives them.

    Returns:
      ``(data, target)``: ``(1797, 64)`` float64 pixels in 0..16 and ``(1797,)`` int64 labels.

    Raises:
      ModuleNotFoundError: scikit-learn is not installed.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None:
        raise ModuleNotFoundError(
            "the digits data set ships with scikit-learn: pip install scikit-learn",
            name="sklearn",
        )
    candidates = [Path(p) / DIGITS_FILE for p in spec.submodule_search_locations or []]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:  # a scikit-learn that keeps its data elsewhere: ask it
        from sklearn.datasets import load_digits

        data, target = load_digits(return_X_y=True)
        return np.asarray(data, np.float64), np.asarray(target, np.int64)
    with gzip.open(path, mode="rt", encoding="utf-8") as text:
        table = np.loadtxt(text, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)
