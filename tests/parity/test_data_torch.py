"""jaxnets.data against torch.utils.data run in the same test.

The shuffled order is the one thing that cannot match (``jax.random`` vs ``torch.Generator``),
so torch's order is exported with the helpers in ``sampler.py`` beside this file and handed to
jaxnets; everything else (batch boundaries, the last partial batch, ``len``, collated structure,
values and dtypes, error messages) must agree exactly.
"""

from __future__ import annotations

import collections
import inspect
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader as TorchLoader
from torch.utils.data import default_collate as torch_collate

from jaxnets import data

from . import sampler

SEED = 1234
Point = collections.namedtuple("Point", ["x", "y"])


def _samples(n: int) -> list[tuple[np.ndarray, int]]:
    return [(np.array([i, -i - 0.25], np.float32), 3 * i) for i in range(n)]


def _torch_side(tree: Any) -> Any:
    """torch's output with tensors as NumPy arrays, every container type kept."""
    if isinstance(tree, torch.Tensor):
        return tree.numpy()
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_torch_side(v) for v in tree))
    if isinstance(tree, list | tuple):
        return type(tree)(_torch_side(v) for v in tree)
    if isinstance(tree, dict):
        return type(tree)((k, _torch_side(v)) for k, v in tree.items())
    return tree


def _assert_same(want: Any, got: Any, where: str = "batch") -> None:
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
        assert np.array_equal(got, want), f"{where}: values differ"
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            _assert_same(want[k], got[k], f"{where}[{k!r}]")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), where
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            _assert_same(w, g, f"{where}[{i}]")
    else:
        assert got == want, where


def test_every_size_batch_size_shuffle_and_drop_last_matches_torch():
    combos = 0
    for n in range(1, 51):
        samples = _samples(n)
        order = sampler.torch_epoch_order(n, SEED, 0)
        for batch_size in range(1, 9):
            for shuffle in (False, True):
                for drop_last in (False, True):
                    where = f"n={n} batch_size={batch_size} shuffle={shuffle} drop_last={drop_last}"
                    reference = TorchLoader(
                        samples,
                        batch_size,
                        shuffle,
                        drop_last=drop_last,
                        generator=torch.Generator().manual_seed(SEED),
                    )
                    want = [_torch_side(b) for b in reference]
                    plan = data.batch_indices(
                        n,
                        batch_size,
                        shuffle=shuffle,
                        drop_last=drop_last,
                        order=order if shuffle else None,
                    )
                    got = [data.default_collate([samples[i] for i in idx]) for idx in plan]
                    _assert_same(want, got, where)
                    loader = data.DataLoader(
                        samples,
                        batch_size,
                        sampler=order if shuffle else None,
                        drop_last=drop_last,
                    )
                    assert len(loader) == len(reference) == len(want), where
                    _assert_same(want, list(loader), where + " (DataLoader)")
                    combos += 1
    assert combos == 1600


def test_exported_orders_follow_torch_across_epochs():
    for n in (1, 7, 20):
        for batch_size, drop_last in ((3, False), (4, True)):
            reference = TorchLoader(
                range(n),
                batch_size,
                shuffle=True,
                drop_last=drop_last,
                generator=torch.Generator().manual_seed(SEED),
            )
            orders = sampler.torch_epoch_orders(n, SEED, 3)
            for epoch in range(3):
                want = [b.tolist() for b in reference]
                plan = data.batch_indices(n, batch_size, drop_last=drop_last, order=orders[epoch])
                assert [b.tolist() for b in plan] == want, (n, epoch)
                exported = sampler.torch_batch_indices(
                    n, batch_size, shuffle=True, drop_last=drop_last, seed=SEED, epoch=epoch
                )
                assert [b.tolist() for b in exported] == want, (n, epoch)
                assert sampler.torch_epoch_order(n, SEED, epoch).tolist() == orders[epoch].tolist()


COLLATE_CASES = {
    "tuples": [(np.ones(3, np.float32), 1), (np.zeros(3, np.float32), 2)],
    "lists": [[1, 2.5], [3, 4.5]],
    "dicts": [{"a": 1, "b": 0.5}, {"a": 2, "b": 1.5}],
    "nested": [
        {"x": (np.arange(4, dtype=np.int16).reshape(2, 2), [1.0, True]), "s": "p"},
        {"x": (np.ones((2, 2), np.int16), [2.0, False]), "s": "q"},
    ],
    "namedtuples": [Point(np.float64(1.5), 1), Point(np.float64(2.5), 2)],
    "numpy_arrays": [np.full((2, 3), i, np.float64) for i in range(4)],
    "numpy_0d": [np.array(i, np.uint8) for i in range(3)],
    "numpy_scalars": [np.float32(0.5), np.float32(1.5)],
    "numpy_int32": [np.int32(3), np.int32(-4)],
    "ints": [1, 2, 3],
    "floats": [0.1, 0.2],
    "bools": [True, False],
    "int_then_float": [1, 2.5],
    "scalar_mix": [np.uint8(1), np.int8(-1)],
    "strings": ["a", "b"],
    "bytes": [b"a", b"b"],
    "array_mix": [np.zeros(2, np.int64), np.ones(2, np.float32)],
}


@pytest.mark.parametrize("case", sorted(COLLATE_CASES))
def test_default_collate_matches_torch(case):
    batch = COLLATE_CASES[case]
    _assert_same(_torch_side(torch_collate(batch)), data.default_collate(batch), case)


@pytest.mark.parametrize(
    "batch",
    [[None, None], [[1, 2], [3]], [np.zeros(2), np.zeros(3)], [np.array(["a"]), np.array(["b"])]],
)
def test_default_collate_errors_match_torch(batch):
    with pytest.raises(Exception) as want:
        torch_collate(batch)
    with pytest.raises(type(want.value)) as got:
        data.default_collate(batch)
    assert str(got.value) == str(want.value)


def test_samplers_and_no_batching_match_torch():
    samples = _samples(9)
    cases: list[dict[str, Any]] = [
        {"batch_size": 4, "sampler": [8, 0, 0, 3, 5, 1]},
        {"batch_size": 4, "sampler": [8, 0, 0, 3, 5, 1], "drop_last": True},
        {"batch_sampler": [[2, 1], [0], [8, 7, 6, 5]]},
        {"batch_size": None},
        {"batch_size": None, "sampler": [3, 1]},
    ]
    for kwargs in cases:
        reference = TorchLoader(samples, **kwargs)
        ours = data.DataLoader(samples, **kwargs)
        assert len(ours) == len(reference), kwargs
        _assert_same([_torch_side(b) for b in reference], list(ours), str(kwargs))
    order = sampler.torch_epoch_order(9, SEED, 0)
    reference = TorchLoader(
        samples, batch_size=None, shuffle=True, generator=torch.Generator().manual_seed(SEED)
    )
    ours = data.DataLoader(samples, batch_size=None, sampler=order)
    _assert_same([_torch_side(b) for b in reference], list(ours), "batch_size=None, shuffled")


def test_array_dataset_matches_tensor_dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=13)
    reference = TorchLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        5,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    order = sampler.torch_epoch_order(13, SEED, 0)
    ours = data.DataLoader(data.ArrayDataset(x, y), 5, sampler=order)
    _assert_same([_torch_side(b) for b in reference], list(ours), "ArrayDataset")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": -3},
        {"batch_size": 2.5},
        {"shuffle": True, "sampler": [0, 1]},
        {"batch_sampler": [[0]], "batch_size": 2},
        {"batch_sampler": [[0]], "shuffle": True},
        {"batch_sampler": [[0]], "sampler": [0]},
        {"batch_sampler": [[0]], "drop_last": True},
        {"batch_size": None, "drop_last": True},
        {"num_workers": -1},
        {"drop_last": 1},
        {"batch_sampler": [[0]], "drop_last": 1},
        {"shuffle": True, "sampler": [0], "batch_size": 0},
    ],
)
def test_argument_errors_match_torch(kwargs):
    with pytest.raises(ValueError) as want:
        TorchLoader(list(range(4)), **kwargs)
    with pytest.raises(ValueError) as got:
        data.DataLoader(list(range(4)), **kwargs)
    assert str(got.value) == str(want.value)


def test_empty_shuffled_dataset_error_starts_with_torchs():
    with pytest.raises(ValueError) as want:
        TorchLoader([], shuffle=True)
    with pytest.raises(ValueError) as got:
        data.DataLoader([], shuffle=True)
    assert str(got.value).startswith(str(want.value))


def test_signature_matches_torch_up_to_drop_last():
    ours = list(inspect.signature(data.DataLoader.__init__).parameters.values())
    theirs = list(inspect.signature(TorchLoader.__init__).parameters.values())
    stop = [p.name for p in theirs].index("drop_last") + 1
    assert [(p.name, p.default, p.kind) for p in ours[:stop]] == [
        (p.name, p.default, p.kind) for p in theirs[:stop]
    ]
    assert [(p.name, p.default, p.kind) for p in ours[stop:]] == [
        ("seed", 0, inspect.Parameter.KEYWORD_ONLY)
    ]
