"""``jaxnets.data.bundled.digits`` against scikit-learn's own ``load_digits``."""

from pathlib import Path

import numpy as np
import pytest

from jaxnets.data import bundled

from .helpers import run_clean


def _sklearn_digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def test_digits_equal_load_digits_exactly():
    data, target = bundled.digits()
    expected_data, expected_target = _sklearn_digits()
    assert data.dtype == expected_data.dtype == np.float64
    assert target.dtype == np.int64
    np.testing.assert_array_equal(data, expected_data)
    np.testing.assert_array_equal(target, expected_target)


def test_digits_read_without_importing_scikit_learn():
    run_clean(
        """
        import sys

        from jaxnets.data import bundled

        data, target = bundled.digits()
        assert data.shape == (1797, 64) and target.shape == (1797,)
        assert "sklearn" not in sys.modules, sorted(m for m in sys.modules if "sklearn" in m)
        """
    )


def test_a_scikit_learn_without_the_file_is_asked_instead(monkeypatch):
    monkeypatch.setattr(bundled, "DIGITS_FILE", Path("no", "such", "file.csv.gz"))
    data, target = bundled.digits()
    expected_data, expected_target = _sklearn_digits()
    np.testing.assert_array_equal(data, expected_data)
    np.testing.assert_array_equal(target, expected_target)


def test_missing_scikit_learn_is_named(monkeypatch):
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install scikit-learn"):
        bundled.digits()
