"""``torch.utils.data.DataLoader`` semantics as pure functions of ``(seed, epoch, step)``.

A loader here is a batch plan plus a collate function. The plan (which dataset indices form
batch ``step`` of epoch ``epoch``) is computed by :func:`batch_indices` from the dataset length,
the options and, when shuffling, a permutation drawn with
``jax.random.permutation(jax.random.fold_in(jax.random.key(seed), epoch), n)``. Because nothing
depends on how many times the loader was iterated before, any batch can be recomputed on its own,
and a run restored from a checkpoint at ``(epoch, step)`` continues with exactly the batches the
uninterrupted run would have seen (:meth:`DataLoader.iter_from`).

The plan and the collation mirror torch (``torch/utils/data/dataloader.py``, ``sampler.py``,
``_utils/collate.py``): the same argument names, order, defaults and error messages, the same
batch boundaries (``drop_last``, the last partial batch) and the same collated structure. Only
the shuffled order differs, since it comes from ``jax.random`` rather than a ``torch.Generator``;
pass torch's order explicitly (``order=`` / ``sampler=``) to reproduce torch's batches exactly.

Collated batches are NumPy arrays on the host, the analogue of the CPU tensors torch's loader
returns. NumPy keeps ``int64``/``float64`` when JAX runs without x64 (``jnp.asarray`` would
silently narrow them to 32 bits), collating costs no device dispatch per sample, and the caller
chooses where a batch goes (``jax.device_put`` with a sharding for data parallelism).
Training does not go through this loader: it gathers its batches on the device inside the
compiled step with the same cut (:mod:`jaxnets.data.plan`).

dtype rules of :func:`default_collate` (torch's, checked against torch 2.13):

* NumPy / JAX arrays: stacked on a new leading axis, dtype kept.
* NumPy scalars (``np.float32(1.0)``, ...): a 1-D array of their dtype.
* Python ``bool``: ``bool``; ``int``: ``int64``; ``float``: ``float64`` (torch's
  ``collate_float_fn`` asks for ``torch.float64`` explicitly).
* A batch that mixes kinds is typed as ``torch.tensor(batch)`` would type it: Python ``int`` counts
  as ``int64``, Python ``float`` as ``float32`` and ``complex`` as ``complex64`` unless the first
  element is a Python float (then everything is ``float64``), and kinds combine like
  ``torch.promote_types`` (the higher kind wins: ``int64`` with ``float32`` is ``float32``).
* ``str`` / ``bytes``: left as a list.
* Mappings, namedtuples and sequences: collated field by field, recursively; a tuple becomes a
  list (torch keeps this for backwards compatibility), a namedtuple stays a namedtuple.
"""

from __future__ import annotations

import collections.abc
import copy
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from jaxnets.data._checks import (
    _check_batch_size,
    _check_bool,
    _check_count,
    _check_epoch,
    _check_seed,
    _index_array,
    _is_int,
)
from jaxnets.data.plan import Plan, epoch_order

__all__ = [
    "ArrayDataset",
    "DataLoader",
    "batch_indices",
    "default_collate",
    "default_convert",
]

PyTree = Any

_ERR_FORMAT = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)
# NumPy dtype kinds torch cannot hold: bytes, unicode, object, void (torch's ``[SaUO]`` test).
_NON_NUMERIC_KINDS = frozenset("SUOV")
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


# --------------------------------------------------------------------------------------------
# collation


def _scalar_dtype(value: Any) -> np.dtype:
    """The dtype ``torch.tensor`` infers for one scalar (Python scalars use torch's defaults)."""
    if isinstance(value, np.generic):
        return value.dtype
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    if isinstance(value, float):
        return np.dtype(np.float32)
    if isinstance(value, complex):
        return np.dtype(np.complex64)
    raise TypeError(_ERR_FORMAT.format(type(value)))


def _torch_promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """``torch.promote_types``: within a kind like NumPy, across kinds the higher kind's dtype."""
    ka, kb = _KIND_RANK.get(a.kind), _KIND_RANK.get(b.kind)
    if ka is None or kb is None:
        raise TypeError(_ERR_FORMAT.format(a if ka is None else b))
    if ka == kb or {ka, kb} == {2, 3}:
        # complex with float widens the complex (complex64 + float64 -> complex128), as NumPy.
        return np.promote_types(a, b)
    return a if ka > kb else b


def _collate_scalars(batch: Sequence[Any], dtype: np.dtype | None = None) -> np.ndarray:
    if dtype is None:
        dtype = _scalar_dtype(batch[0])
        for value in batch[1:]:
            dtype = _torch_promote(dtype, _scalar_dtype(value))
        if dtype.kind not in _KIND_RANK:
            raise TypeError(_ERR_FORMAT.format(dtype))
    return np.asarray(batch, dtype=dtype)


def _stack(batch: Sequence[Any]) -> np.ndarray:
    arrays = [np.asarray(b) for b in batch]
    if arrays[0].dtype.kind in _NON_NUMERIC_KINDS:
        raise TypeError(_ERR_FORMAT.format(arrays[0].dtype))
    first = arrays[0].shape
    for i, a in enumerate(arrays[1:], start=1):
        if a.shape != first:
            raise RuntimeError(
                "stack expects each tensor to be equal size, but got "
                f"{list(first)} at entry 0 and {list(a.shape)} at entry {i}"
            )
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1:
        return np.stack(arrays)
    # torch.stack promotes by torch's rules (int64 with float32 is float32, not NumPy's float64).
    dtype = arrays[0].dtype
    for a in arrays[1:]:
        dtype = _torch_promote(dtype, a.dtype)
    return np.stack([a.astype(dtype, copy=False) for a in arrays])


def _is_array(value: Any) -> bool:
    # Array-likes other than NumPy scalars (which torch collates by their own rule), e.g. a
    # jax.Array or an object implementing ``__array__``.
    return isinstance(value, np.ndarray | jax.Array) or (
        hasattr(value, "__array__")
        and hasattr(value, "shape")
        and not isinstance(value, np.generic)
    )


def _same_mapping(mapping: collections.abc.Mapping, values: dict) -> Any:
    """``values`` rebuilt as ``mapping``'s type, as torch's collate and convert rebuild it.

    A mutable mapping is copied and updated, which keeps its type's extra attributes (torch does
    the same); a type that cannot be rebuilt from a dict gives the plain dict.
    """
    try:
        if isinstance(mapping, collections.abc.MutableMapping):
            clone = copy.copy(mapping)
            clone.update(values)
            return clone
        return type(mapping)(values)
    except TypeError:
        return values


def default_collate(batch: Sequence[Any]) -> Any:
    """Collate a list of samples into a batch, as ``torch.utils.data.default_collate`` does.

    Arrays come back as NumPy arrays with a new leading axis of size ``len(batch)``; containers
    keep their structure with every leaf collated (see the module docstring for the dtype rules).

    Args:
      batch: a non-empty sequence of samples of one structure. Leaves are arrays of one shape
        ``S`` (NumPy, JAX or anything with ``__array__``), NumPy or Python scalars, or strings.

    Returns:
      The batch: an array leaf becomes ``[len(batch), *S]``, a scalar leaf ``[len(batch)]``, a
      string leaf a list; a tuple of fields becomes a list of fields (as in torch), a list stays
      a list, a namedtuple stays the namedtuple, a mapping a mapping of the same type.

    Raises:
      TypeError: for leaves torch cannot collate (``None``, object or string arrays, ...).
      RuntimeError: for samples of different lengths or arrays of different shapes.

    >>> import collections
    >>> x, y = default_collate([(np.ones(3, np.float32), 0), (np.zeros(3, np.float32), 1)])
    >>> x.shape, str(x.dtype), y.tolist(), str(y.dtype)
    ((2, 3), 'float32', [0, 1], 'int64')
    >>> str(default_collate([0.5, 1.5]).dtype)
    'float64'
    >>> out = default_collate([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    >>> out["a"].tolist(), out["b"]
    ([1, 2], ['x', 'y'])
    >>> Point = collections.namedtuple("Point", ["x", "y"])
    >>> p = default_collate([Point(0, 1.0), Point(2, 3.0)])
    >>> type(p).__name__, p.x.tolist(), p.y.tolist()
    ('Point', [0, 2], [1.0, 3.0])
    """
    if len(batch) == 0:
        raise IndexError("default_collate: the batch is empty (it needs at least one sample)")
    elem = batch[0]
    # The order of these tests is torch's ``default_collate_fn_map`` order: NumPy scalars before
    # float (np.float64 subclasses float), int before anything sequence-like (bool is an int).
    if _is_array(elem):
        return _stack(batch)
    if isinstance(elem, np.bool_ | np.number | np.object_):
        return _collate_scalars(batch)
    if isinstance(elem, float):
        return _collate_scalars(batch, np.dtype(np.float64))
    if isinstance(elem, int):
        return _collate_scalars(batch)
    if isinstance(elem, str | bytes):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _same_mapping(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(f)) for f in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(f)) for f in zip(*batch, strict=True)]
        if isinstance(elem, tuple):
            return fields
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, field in enumerate(fields):
                    clone[i] = field
                return clone
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(_ERR_FORMAT.format(type(elem)))


def default_convert(data: Any) -> Any:
    """Convert one sample without batching, as ``torch.utils.data.default_convert`` does.

    This is the collate function of a loader with ``batch_size=None`` (no auto-batching). NumPy
    scalars become 0-d arrays, JAX arrays become NumPy arrays (host side, like every loader
    output), containers are converted element by element (a tuple becomes a list, as in torch)
    and everything else is returned unchanged.

    Args:
      data: one sample of any structure.

    Returns:
      ``data`` with the same structure and shapes, NumPy scalars as ``()``-shaped arrays.

    >>> out = default_convert((np.float32(1.5), np.arange(2, dtype=np.int16), "s"))
    >>> type(out).__name__, out[0].shape, str(out[0].dtype), out[1].tolist(), out[2]
    ('list', (), 'float32', [0, 1], 's')
    """
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, jax.Array):
        return np.asarray(data)
    if isinstance(data, np.generic) and not isinstance(data, np.str_ | np.bytes_):
        return np.asarray(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, str | bytes):
        items = [default_convert(d) for d in data]
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, item in enumerate(items):
                    clone[i] = item
                return clone
            return type(data)(items)
        except TypeError:
            return items
    return data


def _chunks(order: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    plan = Plan(batch_size, drop_last=drop_last)
    n = len(order)
    spans = (plan.bounds(step, n) for step in range(plan.steps_per_epoch(n)))
    return [order[start : start + size] for start, size in spans]


def batch_indices(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    seed: int = 0,
    epoch: int = 0,
    order: Sequence[int] | np.ndarray | jax.Array | None = None,
) -> list[np.ndarray]:
    """The batch plan of one epoch: which dataset indices make up each batch.

    The sample order is ``order`` if given, else :func:`epoch_order` when ``shuffle``, else
    ``range(n)``; it is cut into consecutive batches of ``batch_size`` like torch's
    ``BatchSampler``: the last batch holds the remainder, or is dropped when ``drop_last``.

    Args:
      n: dataset length; indices (also those of ``order``) must lie in ``[0, n)``.
      batch_size: samples per batch (``>= 1``).
      shuffle: draw the order from ``(seed, epoch)``; ignored when ``order`` is given.
      drop_last: drop a last batch smaller than ``batch_size``.
      seed: the data seed (used when shuffling).
      epoch: epoch number (used when shuffling).
      order: an explicit sample order of any length, e.g. the permutation torch's
        ``RandomSampler`` drew, to reproduce torch's batches exactly.

    Returns:
      A list of ``len(order) // batch_size`` (``drop_last``) or ``ceil(len(order) / batch_size)``
      int64 arrays, each ``[batch_size]`` except possibly the last.

    >>> [b.tolist() for b in batch_indices(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in batch_indices(5, 2, drop_last=True, order=[4, 3, 2, 1, 0])]
    [[4, 3], [2, 1]]
    """
    n = _check_count(n, "n")
    batch_size = _check_batch_size(batch_size)
    shuffle = _check_bool(shuffle, "shuffle")
    drop_last = _check_bool(drop_last, "drop_last")
    if order is not None:
        idx = _index_array(order, "order", n)
    elif shuffle:
        idx = epoch_order(n, seed=seed, epoch=epoch)
    else:
        _check_seed(seed)
        _check_epoch(epoch)
        idx = np.arange(n, dtype=np.int64)
    return _chunks(idx, batch_size, drop_last)


# --------------------------------------------------------------------------------------------
# datasets and the loader


class ArrayDataset:
    """Samples are rows of arrays that share their first dimension (torch's ``TensorDataset``).

    The arrays are kept as NumPy on the host; ``dataset[i]`` is the tuple of row ``i`` of each.
    A :class:`DataLoader` over it with the default collate gathers each batch with one fancy
    index per array instead of collating row by row (same values and dtypes).

    Args:
      *arrays: arrays ``[n, ...]`` (NumPy, JAX or array-likes).

    >>> ds = ArrayDataset(np.zeros((4, 2), np.float32), np.arange(4))
    >>> len(ds), ds[3][0].shape, ds[3][1].item()
    (4, (2,), 3)
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        self.arrays = tuple(np.asarray(a) for a in arrays)
        shapes = [a.shape for a in self.arrays]
        if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
            raise ValueError(f"Size mismatch between arrays: shapes {shapes} (first dims differ)")

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]


_FROZEN_ATTRS = frozenset(
    {
        "batch_size",
        "batch_sampler",
        "sampler",
        "drop_last",
        "dataset",
        "seed",
        "shuffle",
        "collate_fn",
    }
)


class DataLoader:
    """Batches of a map-style dataset, planned like ``torch.utils.data.DataLoader``.

    Arguments, order, defaults and errors are torch's (up to ``drop_last``); ``seed`` replaces
    torch's ``generator``. Iterating yields ``collate_fn`` of each batch's samples (by default
    :func:`default_collate`: NumPy arrays ``[batch, ...]``). Each ``iter(loader)`` runs the next
    epoch (as each iteration of a torch loader draws a fresh permutation); :meth:`set_epoch`
    picks the epoch the next ``iter`` runs and :meth:`iter_from` starts mid-epoch. The batches
    of an epoch are a pure function of ``(seed, epoch)`` (:meth:`epoch_plan`, :meth:`batch`).

    Args:
      dataset: map-style: ``dataset[i]`` returns sample ``i`` (``__getitems__(list)`` is used
        when defined, as in torch); ``len(dataset)`` is needed unless ``sampler`` or
        ``batch_sampler`` gives the indices. Iterable-style datasets are not supported.
      batch_size: samples per batch, or None for no batching (samples one by one through
        :func:`default_convert`).
      shuffle: shuffle with :func:`epoch_order` every epoch (None means False, as in torch).
      sampler: the sample order as an iterable of ints, read once: every epoch uses it.
      batch_sampler: the batches as an iterable of iterables of ints, read once.
      num_workers: accepted for torch compatibility, no effect: batches are computed from index
        plans in the calling process, there are no worker processes to start.
      collate_fn: ``list of samples -> batch``; default :func:`default_collate`.
      pin_memory: accepted for torch compatibility, no effect: batches are host NumPy arrays and
        the caller moves them to a device (``jax.device_put``).
      drop_last: drop the last batch when it is smaller than ``batch_size``.
      seed: the data seed the shuffled orders are drawn from.

    ``len(loader)`` is the number of batches per epoch, as in torch.

    Where it differs from torch, and why: the shuffled order comes from ``jax.random`` (so it is
    a pure function of the epoch; pass torch's order as ``sampler`` to reproduce torch's
    batches); ``sampler`` / ``batch_sampler`` are read once at construction (a plan must be
    recomputable for any epoch), so a one-shot generator repeats instead of running dry, and
    their indices are range-checked up front (torch would pass ``-1`` on to ``dataset[-1]``);
    ``shuffle`` must be a bool or None (torch takes any truthy value); the arguments after
    ``drop_last`` (``timeout``, ``worker_init_fn``, ``generator``, ...) concern worker processes
    and torch's RNG, and do not exist here.

    >>> ds = ArrayDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    >>> loader = DataLoader(ds, batch_size=2)
    >>> len(loader), [y.tolist() for _, y in loader]
    (3, [[0, 1], [2, 3], [4]])
    >>> x, y = next(iter(loader))
    >>> x.shape, str(x.dtype), str(y.dtype)
    ((2, 2), 'float32', 'int64')
    >>> shuffled = DataLoader(ds, batch_size=2, shuffle=True, drop_last=True, seed=1)
    >>> whole = [y.tolist() for e in range(2) for _, y in shuffled.epoch_batches(e)]
    >>> resumed = [y.tolist() for _, y in shuffled.iter_from(1, 1)]
    >>> resumed == whole[3:]
    True
    """

    _initialized = False

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[Iterable[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        *,
        seed: int = 0,
    ) -> None:
        if not _is_int(num_workers) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; "
                "use num_workers=0 to disable multiprocessing."
            )
        if not hasattr(dataset, "__getitem__"):
            kind = "an iterable-style dataset" if hasattr(dataset, "__iter__") else "a dataset"
            raise TypeError(
                f"dataset must be map-style (define __getitem__, and __len__ unless sampler or "
                f"batch_sampler is given); got {kind} of type {type(dataset).__name__}"
            )
        if shuffle is not None and not isinstance(shuffle, bool | np.bool_):
            raise TypeError(f"shuffle must be a bool or None, got shuffle={shuffle!r}")
        shuffle = bool(shuffle)
        seed = _check_seed(seed)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn must be callable, got collate_fn={collate_fn!r}")

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive "
                    "with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError(
                    "batch_size=None option disables auto-batching "
                    "and is mutually exclusive with drop_last"
                )
            drop_last = False

        n: int | None
        try:
            n = len(dataset)
        except TypeError:
            n = None
        if n is None and sampler is None and batch_sampler is None:
            what = "shuffle=True draws a permutation of" if shuffle else "the default order is"
            raise TypeError(
                f"dataset of type {type(dataset).__name__} has no __len__: {what} "
                "range(len(dataset)); define __len__ or pass sampler / batch_sampler"
            )
        if shuffle and n == 0:
            raise ValueError(
                "num_samples should be a positive integer value, but got num_samples=0 "
                "(shuffle=True over an empty dataset)"
            )
        if batch_size is not None:
            # Checked here, where torch's BatchSampler checks them: after the samplers.
            batch_size = _check_batch_size(batch_size)
            drop_last = _check_bool(drop_last, "drop_last")

        self._n = n
        self._order: np.ndarray | None = None
        self._fixed_batches: list[np.ndarray] | None = None
        if batch_sampler is not None:
            if isinstance(batch_sampler, str | bytes) or not isinstance(batch_sampler, Iterable):
                raise TypeError(
                    f"batch_sampler must be an iterable of index lists, got {batch_sampler!r}"
                )
            batches = [_index_array(b, "batch_sampler", n) for b in batch_sampler]
            if any(b.size == 0 for b in batches):
                raise ValueError("batch_sampler yielded an empty batch; every batch needs a sample")
            for b in batches:
                b.flags.writeable = False  # plans are shared by every epoch and the cache
            self._fixed_batches = batches
        elif sampler is not None:
            self._order = _index_array(sampler, "sampler", n)
            self._order.flags.writeable = False

        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.seed = seed
        self._auto_collation = batch_size is not None or batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._next_epoch = 0
        self._plan_cache: tuple[int, list[np.ndarray]] | None = None
        self._initialized = True

    def __setattr__(self, attr: str, value: Any) -> None:
        # As in torch: the plan is derived from these, so changing them later would desync it.
        if self._initialized and attr in _FROZEN_ATTRS:
            raise ValueError(
                f"{attr} attribute should not be set after {type(self).__name__} is initialized"
            )
        super().__setattr__(attr, value)

    # -- the plan ------------------------------------------------------------------------------

    def epoch_plan(self, epoch: int) -> list[np.ndarray]:
        """The index plan of epoch ``epoch``: one int64 array of dataset indices per batch.

        Pure in ``(seed, epoch)``. With ``batch_size=None`` each entry holds a single index.

        >>> loader = DataLoader(list("abcde"), batch_size=2)
        >>> [b.tolist() for b in loader.epoch_plan(0)]
        [[0, 1], [2, 3], [4]]
        """
        return list(self._plan(epoch))

    def _plan(self, epoch: int) -> list[np.ndarray]:
        # The last epoch's plan is kept: batch(epoch, step) would otherwise redraw the order
        # for every step. Its arrays are read-only, so sharing them is safe.
        epoch = _check_epoch(epoch)
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1]
        if self._fixed_batches is not None:
            plan = self._fixed_batches
        else:
            if self._order is not None:
                order = self._order
            elif self.shuffle:
                order = epoch_order(self._n or 0, seed=self.seed, epoch=epoch)
            else:
                order = np.arange(self._n or 0, dtype=np.int64)
            order.flags.writeable = False  # the cached plan's arrays are views of it
            plan = _chunks(order, self.batch_size or 1, self.drop_last)
        self._plan_cache = (epoch, plan)
        return plan

    def __len__(self) -> int:
        if self._fixed_batches is not None:
            return len(self._fixed_batches)
        m = len(self._order) if self._order is not None else (self._n or 0)
        size = self.batch_size or 1
        return Plan(size, drop_last=self.drop_last).steps_per_epoch(m)

    # -- batches -------------------------------------------------------------------------------

    def _fetch(self, indices: np.ndarray) -> Any:
        if not self._auto_collation:
            return self.collate_fn(self.dataset[int(indices[0])])
        if self.collate_fn is default_collate:
            # Gathering whole arrays gives default_collate's result without a per-row loop.
            if isinstance(self.dataset, ArrayDataset) and all(
                a.dtype.kind not in _NON_NUMERIC_KINDS for a in self.dataset.arrays
            ):
                return [a[indices] for a in self.dataset.arrays]
            if (
                isinstance(self.dataset, np.ndarray)
                and self.dataset.ndim
                and self.dataset.dtype.kind not in _NON_NUMERIC_KINDS
            ):
                return self.dataset[indices]
        keys = indices.tolist()
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(keys) if getitems else [self.dataset[i] for i in keys]
        return self.collate_fn(samples)

    def batch(self, epoch: int, step: int) -> Any:
        """Batch ``step`` of epoch ``epoch``, collated; pure in ``(seed, epoch, step)``.

        >>> loader = DataLoader(np.arange(5, dtype=np.int32), batch_size=2, shuffle=True, seed=3)
        >>> loader.batch(2, 1).tolist() == loader.epoch_plan(2)[1].tolist()
        True
        """
        plan = self._plan(epoch)
        if not _is_int(step) or not 0 <= step < len(plan):
            raise IndexError(f"step must be an integer in [0, {len(plan)}), got step={step!r}")
        return self._fetch(plan[int(step)])

    def epoch_batches(self, epoch: int) -> Iterator[Any]:
        """Iterate over the collated batches of epoch ``epoch`` (lazily; pure in the epoch).

        Unlike ``iter(loader)`` this does not move the loader's epoch counter.

        >>> loader = DataLoader(np.arange(4, dtype=np.int32), batch_size=3)
        >>> [b.tolist() for b in loader.epoch_batches(5)]
        [[0, 1, 2], [3]]
        """
        return self._iterate(epoch, 0)

    def _iterate(self, epoch: int, step: int) -> Iterator[Any]:
        plan = self._plan(epoch)
        return (self._fetch(indices) for indices in itertools.islice(plan, step, None))

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter(loader)`` will run."""
        return self._next_epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter(loader)`` run epoch ``epoch`` (later ones follow on from it).

        >>> loader = DataLoader(np.arange(3, dtype=np.int32), shuffle=True)
        >>> loader.set_epoch(4)
        >>> [b.tolist() for b in loader] == [b.tolist() for b in loader.epoch_batches(4)]
        True
        >>> loader.epoch
        5
        """
        self._next_epoch = _check_epoch(epoch)

    def iter_from(self, epoch: int, step: int = 0) -> Iterator[Any]:
        """Iterate over epoch ``epoch`` from batch ``step`` on, to resume a run mid-epoch.

        Afterwards ``iter(loader)`` runs epoch ``epoch + 1``, so a resumed run continues with the
        exact batches an uninterrupted one would have seen. ``step == len(loader)`` (a
        checkpoint at the end of an epoch) yields nothing.

        >>> loader = DataLoader(np.arange(6, dtype=np.int32), batch_size=2, shuffle=True)
        >>> first = [b.tolist() for b in loader]
        >>> [b.tolist() for b in loader.iter_from(0, 1)] == first[1:]
        True
        >>> loader.epoch
        1
        """
        epoch = _check_epoch(epoch)
        plan = self._plan(epoch)
        if not _is_int(step) or not 0 <= step <= len(plan):
            raise ValueError(f"step must be an integer in [0, {len(plan)}], got step={step!r}")
        self._next_epoch = epoch + 1
        return self._iterate(epoch, int(step))

    def __iter__(self) -> Iterator[Any]:
        epoch = self._next_epoch
        self._next_epoch = epoch + 1
        return self._iterate(epoch, 0)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dataset={type(self.dataset).__name__}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"seed={self.seed}, epoch={self._next_epoch})"
        )
