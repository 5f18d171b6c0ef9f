"""jaxnets.data on its own: batch plans, collation, resuming, the device-side plan, and errors.

torch's own batches are compared in tests/parity/test_data_torch.py; here every expectation is
written out by hand or derived from the plan, so these run without torch.
"""

from __future__ import annotations

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import data
from jaxnets.data import ArrayDataset, DataLoader, batch_indices, default_collate
from jaxnets.data import plan as plan_lib

Point = collections.namedtuple("Point", ["x", "y"])


def _samples(n: int) -> list[tuple[np.ndarray, int]]:
    return [(np.array([i, i + 0.5], np.float32), i) for i in range(n)]


def _lists(tree):
    """Arrays as nested Python lists with their dtype, so batches compare with ``==``."""
    if isinstance(tree, np.ndarray):
        return (str(tree.dtype), tree.tolist())
    if isinstance(tree, dict):
        return {k: _lists(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree).__name__, [_lists(v) for v in tree]
    return tree


# --------------------------------------------------------------------------------------------
# plans


def test_batch_indices_cut_like_batch_sampler():
    for n in range(0, 21):
        for bs in range(1, 9):
            for drop_last in (False, True):
                got = [b.tolist() for b in batch_indices(n, bs, drop_last=drop_last)]
                full, rest = divmod(n, bs)
                want = [list(range(i * bs, (i + 1) * bs)) for i in range(full)]
                if rest and not drop_last:
                    want.append(list(range(full * bs, n)))
                assert got == want, (n, bs, drop_last)
                assert all(b.dtype == np.int64 for b in batch_indices(n, bs))


def test_shuffled_plan_is_the_epoch_order_cut_into_batches():
    for n in (1, 10, 12):  # lengths other tests use too: each new length compiles once
        for epoch in (0, 1, 5):
            order = data.epoch_order(n, seed=11, epoch=epoch)
            assert sorted(order.tolist()) == list(range(n))
            plan = batch_indices(n, 4, shuffle=True, seed=11, epoch=epoch)
            assert np.concatenate(plan).tolist() == order.tolist()
    # Pure in (seed, epoch), and actually different across epochs and seeds.
    a = data.epoch_order(20, seed=0, epoch=0)
    assert a.tolist() == data.epoch_order(20, seed=0, epoch=0).tolist()
    assert a.tolist() != data.epoch_order(20, seed=0, epoch=1).tolist()
    assert a.tolist() != data.epoch_order(20, seed=1, epoch=0).tolist()


def test_epoch_order_is_pinned():
    # The documented draw, fixed so a change of algorithm cannot pass unnoticed (the same list
    # comes out with x64 off: the permutation's random bits are 32-bit either way).
    key = jax.random.fold_in(jax.random.key(0), 0)
    assert data.epoch_order(10, seed=0, epoch=0).tolist() == [0, 8, 2, 4, 1, 7, 9, 5, 3, 6]
    assert jax.random.permutation(key, 10).tolist() == [0, 8, 2, 4, 1, 7, 9, 5, 3, 6]


def test_explicit_order_wins_and_may_have_any_length():
    order = [3, 3, 0, 2, 1, 4, 0]
    plan = batch_indices(5, 3, shuffle=True, order=np.asarray(order, np.int32))
    assert [b.tolist() for b in plan] == [[3, 3, 0], [2, 1, 4], [0]]
    plan = batch_indices(5, 3, drop_last=True, order=jnp.asarray(order))
    assert [b.tolist() for b in plan] == [[3, 3, 0], [2, 1, 4]]


# --------------------------------------------------------------------------------------------
# the loader


def test_loader_batches_are_collated_plan_entries():
    samples = _samples(11)
    for shuffle in (False, True):
        for drop_last in (False, True):
            loader = DataLoader(samples, 3, shuffle, drop_last=drop_last, seed=4)
            for epoch in range(3):
                plan = batch_indices(
                    11, 3, shuffle=shuffle, drop_last=drop_last, seed=4, epoch=epoch
                )
                want = [_lists(default_collate([samples[i] for i in idx])) for idx in plan]
                assert [_lists(b) for b in loader] == want
                assert len(loader) == len(plan) == (11 // 3 if drop_last else math.ceil(11 / 3))


def test_each_iteration_is_the_next_epoch():
    loader = DataLoader(np.arange(12, dtype=np.int64), batch_size=4, shuffle=True, seed=2)
    epochs = [[b.tolist() for b in loader] for _ in range(3)]
    assert loader.epoch == 3
    for e, got in enumerate(epochs):
        assert got == [b.tolist() for b in loader.epoch_plan(e)]
    assert epochs[0] != epochs[1]
    # epoch_batches / batch are pure: they leave the counter alone.
    assert [b.tolist() for b in loader.epoch_batches(1)] == epochs[1]
    assert loader.batch(2, 2).tolist() == epochs[2][2]
    assert loader.epoch == 3
    loader.set_epoch(1)
    assert [b.tolist() for b in loader] == epochs[1]
    assert loader.epoch == 2


def test_resumed_loader_continues_exactly():
    samples = _samples(10)

    def run(loader, epochs):
        return [_lists(b) for _ in range(epochs) for b in loader]

    for shuffle, drop_last in ((True, False), (True, True), (False, False)):
        kwargs = {"batch_size": 3, "shuffle": shuffle, "drop_last": drop_last, "seed": 9}
        whole = run(DataLoader(samples, **kwargs), 4)
        per_epoch = len(DataLoader(samples, **kwargs))
        for epoch in range(3):
            for step in range(per_epoch + 1):
                resumed = DataLoader(samples, **kwargs)
                got = [_lists(b) for b in resumed.iter_from(epoch, step)]
                got += run(resumed, 3 - epoch)
                assert got == whole[epoch * per_epoch + step :], (shuffle, epoch, step)


def test_sampler_and_batch_sampler_are_fixed_plans():
    samples = _samples(6)
    loader = DataLoader(samples, batch_size=4, sampler=(i for i in [5, 0, 5, 2, 1]))
    ys = [[b[1].tolist() for b in loader] for _ in range(2)]
    assert ys == [[[5, 0, 5, 2], [1]]] * 2  # read once, so every epoch repeats it
    assert len(loader) == 2
    loader = DataLoader(samples, batch_size=2, sampler=range(5, -1, -1), drop_last=True)
    assert [b[1].tolist() for b in loader] == [[5, 4], [3, 2], [1, 0]]
    loader = DataLoader(samples, batch_sampler=[[0], [4, 1, 2], np.array([3, 3])])
    assert [b[1].tolist() for b in loader] == [[0], [4, 1, 2], [3, 3]]
    assert len(loader) == 3 and loader.batch_size is None and loader.drop_last is False


def test_without_batching_samples_come_one_by_one():
    samples = [(np.float32(i), i) for i in range(4)]
    loader = DataLoader(samples, batch_size=None)
    out = list(loader)
    assert len(loader) == 4 and len(out) == 4
    assert isinstance(out[2], list) and out[2][0].shape == () and out[2][0].dtype == np.float32
    assert out[2][1] == 2
    shuffled = DataLoader(samples, batch_size=None, shuffle=True, seed=1)
    assert [s[1] for s in shuffled] == data.epoch_order(4, seed=1, epoch=0).tolist()


def test_array_dataset_fast_path_equals_row_by_row_collation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 2, 3)).astype(np.float32)
    y = rng.integers(0, 5, size=9)
    w = rng.normal(size=9)
    for dataset_args in ((x, y, w), (jnp.asarray(x), y)):
        ds = ArrayDataset(*dataset_args)
        rows = [ds[i] for i in range(len(ds))]
        fast = DataLoader(ds, 4, True, seed=3)
        slow = DataLoader(rows, 4, True, seed=3)
        assert [_lists(b) for b in fast] == [_lists(b) for b in slow]
    plain = DataLoader(y, 4)
    assert [_lists(b) for b in plain] == [_lists(b) for b in DataLoader(list(y), 4)]


def test_getitems_is_used_for_batches():
    class Batched:
        def __init__(self) -> None:
            self.calls: list[list[int]] = []

        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> int:
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, indices: list[int]) -> list[int]:
            self.calls.append(indices)
            return [10 * i for i in indices]

    ds = Batched()
    assert [b.tolist() for b in DataLoader(ds, 2)] == [[0, 10], [20, 30], [40]]
    assert ds.calls == [[0, 1], [2, 3], [4]] and all(type(i) is int for i in ds.calls[0])


def test_custom_collate_fn_and_dataset_without_len():
    loader = DataLoader(_samples(5), 2, collate_fn=lambda b: [y for _, y in b])
    assert list(loader) == [[0, 1], [2, 3], [4]]

    class NoLen:
        def __getitem__(self, i: int) -> int:
            return i * i

    assert [b.tolist() for b in DataLoader(NoLen(), 2, sampler=[3, 1, 2])] == [[9, 1], [4]]


# --------------------------------------------------------------------------------------------
# collation


def test_default_collate_structures_and_dtypes():
    out = default_collate(
        [(np.ones(2, np.float16), 1, 2.5, "a"), (np.zeros(2, np.float16), 2, 3.5, "b")]
    )
    assert isinstance(out, list) and len(out) == 4
    assert out[0].dtype == np.float16 and out[0].shape == (2, 2)
    assert out[1].dtype == np.int64 and out[2].dtype == np.float64 and out[3] == ["a", "b"]
    assert default_collate([[1, 2], [3, 4]])[1].tolist() == [2, 4]
    nested = default_collate([{"a": {"b": Point(1, [True])}}, {"a": {"b": Point(2, [False])}}])
    assert type(nested["a"]["b"]) is Point
    assert nested["a"]["b"].x.tolist() == [1, 2] and nested["a"]["b"].y[0].dtype == np.bool_
    assert default_collate([b"x", b"y"]) == [b"x", b"y"]
    assert default_collate([jnp.ones((2,), jnp.int32)] * 3).dtype == np.int32
    assert isinstance(default_collate([jnp.ones(2, jnp.float32)] * 2), np.ndarray)


@pytest.mark.parametrize(
    ("batch", "dtype"),
    [
        ([1, 2], np.int64),
        ([True, False], np.bool_),
        ([1.0, 2], np.float64),
        ([1, 2.5], np.float32),  # torch.tensor([int, float]) uses the default float dtype
        ([1, 1j], np.complex64),
        ([np.float32(1), np.float32(2)], np.float32),
        ([np.int32(1), 2], np.int64),
        ([np.uint8(1), np.int8(1)], np.int16),
        ([np.int32(1), 2.5], np.float32),
        ([np.float16(1), 1.0], np.float32),
        ([np.array(1, np.int16), np.array(2, np.int16)], np.int16),
        ([np.zeros(2, np.int64), np.zeros(2, np.float32)], np.float32),
    ],
)
def test_default_collate_scalar_dtypes(batch, dtype):
    out = default_collate(batch)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape[0] == len(batch)


def test_default_collate_keeps_mapping_and_sequence_types():
    class Record(dict):
        pass

    out = default_collate([Record(a=1), Record(a=2)])
    assert type(out) is Record and out["a"].tolist() == [1, 2]
    out = default_collate([range(2), range(2)])  # range cannot be rebuilt from a list
    assert type(out) is list and out[1].tolist() == [1, 1]


def test_default_convert():
    out = data.default_convert({"a": (np.int8(3), jnp.ones(2)), "b": Point(np.float64(1), "s")})
    assert isinstance(out["a"], list) and out["a"][0].dtype == np.int8 and out["a"][0].shape == ()
    assert isinstance(out["a"][1], np.ndarray)
    assert type(out["b"]) is Point and out["b"].y == "s"


def test_default_collate_errors():
    with pytest.raises(TypeError, match="found <class 'NoneType'>"):
        default_collate([None, None])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match=r"got \[2\] at entry 0 and \[3\] at entry 1"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(IndexError, match="empty"):
        default_collate([])


# --------------------------------------------------------------------------------------------
# the device-side plan


@pytest.mark.parametrize("n, batch_size, drop_last", [(11, 3, False), (11, 3, True), (2, 5, False)])
def test_device_plan_yields_the_loaders_batches(n, batch_size, drop_last):
    """Training gathers on the device exactly the batches the host loader cuts."""
    x = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    plan = data.Plan(batch_size, shuffle=True, drop_last=drop_last)
    key = jax.random.key(5)
    for epoch in (0, 2):
        order = plan_lib.order(plan, key, epoch, n)
        assert order.tolist() == data.epoch_order(n, seed=5, epoch=epoch).tolist()
        expected = batch_indices(
            n, batch_size, shuffle=True, drop_last=drop_last, seed=5, epoch=epoch
        )
        assert plan.steps_per_epoch(n) == len(expected)
        for step, indices in enumerate(expected):
            last = plan.last_size(n) is not None and step == len(expected) - 1
            got = jax.jit(plan_lib.batch, static_argnums=0, static_argnames="last")(
                plan, x, order, step, last=last
            )
            assert got.tolist() == x[indices].tolist()


def test_plan_errors_and_full_batch():
    with pytest.raises(ValueError, match="leaves no batch"):
        data.Plan(4, drop_last=True).check(3)
    with pytest.raises(ValueError, match="integer >= 1"):
        data.Plan(0).check(3)
    x = jnp.ones((3, 2))
    assert plan_lib.batch(data.FULL_BATCH, x, jnp.arange(3), 0, last=False) is x
    assert data.FULL_BATCH.steps_per_epoch(3) == 1 and data.FULL_BATCH.last_size(3) is None


def test_epoch_orders_checks_explicit_orders():
    assert data.epoch_orders(3, 1, [[2, 0, 1]]).dtype == np.int64
    with pytest.raises(ValueError, match="shape"):
        data.epoch_orders(3, 2, [[2, 0, 1]])
    with pytest.raises(ValueError, match="out of range"):
        data.epoch_orders(3, 1, [[0, 1, 3]])


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size should be a positive integer value"),
        ({"batch_size": 2.0}, ValueError, "batch_size=2.0"),
        ({"batch_size": True}, ValueError, "batch_size=True"),
        ({"shuffle": True, "sampler": [0]}, ValueError, "sampler option is mutually exclusive"),
        ({"batch_sampler": [[0]], "batch_size": 2}, ValueError, "batch_sampler option is mutual"),
        ({"batch_sampler": [[0]], "drop_last": True}, ValueError, "batch_sampler option is mutual"),
        ({"batch_size": None, "drop_last": True}, ValueError, "disables auto-batching"),
        ({"num_workers": -1}, ValueError, "num_workers option should be non-negative"),
        ({"drop_last": 1}, ValueError, "drop_last should be a boolean"),
        ({"shuffle": "yes"}, TypeError, "shuffle must be a bool"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"collate_fn": 3}, TypeError, "collate_fn must be callable"),
        ({"sampler": [0, 5]}, ValueError, "sampler index 5 is out of range .* length 5"),
        ({"sampler": [-1]}, ValueError, "sampler index -1"),
        ({"sampler": [0.0]}, TypeError, "sampler must yield integer indices"),
        ({"sampler": 3}, TypeError, "sampler must be an iterable"),
        ({"batch_sampler": [[0], [7]]}, ValueError, "batch_sampler index 7"),
        ({"batch_sampler": [[0], []]}, ValueError, "empty batch"),
    ],
)
def test_loader_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(list(range(5)), **kwargs)


def test_dataset_errors():
    class IterOnly:
        def __iter__(self):
            return iter(range(3))

    class NoLen:
        def __getitem__(self, i: int) -> int:
            return i

    with pytest.raises(TypeError, match="map-style .* iterable-style"):
        DataLoader(IterOnly())
    with pytest.raises(TypeError, match="has no __len__: shuffle=True"):
        DataLoader(NoLen(), shuffle=True)
    with pytest.raises(TypeError, match="has no __len__"):
        DataLoader(NoLen())
    with pytest.raises(ValueError, match="num_samples=0"):
        DataLoader([], shuffle=True)
    assert list(DataLoader([], batch_size=3)) == []
    with pytest.raises(ValueError, match="Size mismatch"):
        ArrayDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        ArrayDataset()


def test_plan_and_step_errors():
    loader = DataLoader(list(range(5)), 2)
    with pytest.raises(ValueError, match="read-only"):
        loader.epoch_plan(0)[0][0] = 4  # the plan is shared by later epochs; it must not change
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
    with pytest.raises(IndexError, match=r"step must be an integer in \[0, 3\)"):
        loader.batch(0, 3)
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 3\]"):
        loader.iter_from(0, 4)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        loader.set_epoch(-1)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        loader.epoch_plan(1.0)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        batch_indices(5, -1)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        batch_indices(-5, 1)
    with pytest.raises(ValueError, match="shuffle should be a boolean"):
        batch_indices(5, 1, shuffle=None)
    with pytest.raises(ValueError, match="order index 5 is out of range"):
        batch_indices(5, 1, order=[5])
    with pytest.raises(TypeError, match="order must be a 1-D sequence"):
        batch_indices(5, 1, order=np.zeros((2, 2), np.int64))
    with pytest.raises(TypeError, match="seed must be an integer"):
        data.epoch_order(5, seed="0")
    with pytest.raises(ValueError, match=r"seed must lie in \[0, 2\*\*32\)"):
        data.epoch_order(5, seed=2**32)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer below 2"):
        data.epoch_order(5, epoch=-1)
