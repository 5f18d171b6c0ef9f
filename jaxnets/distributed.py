"""Data parallelism: a one-axis device mesh, the batch split on it, everything else replicated.

The mesh has one axis, ``data``. Batch arrays are placed with ``NamedSharding(mesh, P("data"))``
(their leading axis split across devices) and parameters, optimiser state and losses with
``NamedSharding(mesh, P())`` (a full copy on every device). ``jax.jit`` then partitions the
training step itself: each device computes the loss and gradients of its slice of the batch, and
XLA inserts the all-reduce that sums the gradients, so the update equals the single-device one
up to the order of that sum.

Several processes (hosts) join through ``jax.distributed.initialize`` before any other JAX call
(:func:`initialize`); ``jax.devices()`` then lists every process's devices and the same mesh spans
them all. Each process builds the same host data from the same seed and contributes the slices
its own devices hold (:func:`put`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding

__all__ = [
    "DATA_AXIS",
    "batch_sharding",
    "check_batch",
    "initialize",
    "make_mesh",
    "put",
    "replicated",
    "to_host",
]

PyTree = Any
DATA_AXIS = "data"


def initialize(coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process run; call it before anything else touches JAX.

    Args:
      coordinator_address: ``host:port`` of process 0, reachable from every process.
      num_processes: how many processes take part.
      process_id: this process's index, ``0 <= process_id < num_processes``.

    Returns:
      ``None``; raises ``ValueError`` for an out-of-range ``process_id`` before contacting anyone.

    >>> try:
    ...     initialize("localhost:1234", num_processes=2, process_id=5)
    ... except ValueError as err:
    ...     print(err)
    process_id must be in [0, 2), got 5
    """
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def make_mesh(num_devices: int | None = None, devices: Sequence[Any] | None = None) -> Mesh:
    """A one-axis ``data`` mesh over the first ``num_devices`` devices (all by default).

    Args:
      num_devices: how many devices; at most ``jax.device_count()``.
      devices: the devices to choose from (default ``jax.devices()``, every process's).

    Returns:
      The mesh, of shape ``{"data": num_devices}``.

    Raises:
      ValueError: if more devices are asked for than there are.

    >>> mesh = make_mesh(1)
    >>> mesh.axis_names, dict(mesh.shape)
    (('data',), {'data': 1})
    """
    devices = list(jax.devices() if devices is None else devices)
    count = len(devices) if num_devices is None else num_devices
    if not 1 <= count <= len(devices):
        raise ValueError(
            f"devices must be between 1 and {len(devices)} (the devices JAX sees: "
            f"{devices[0].platform} x {len(devices)}), got {count}"
        )
    # Auto axes: jit propagates the batch sharding through the step and inserts the gradient
    # all-reduce itself, so model code needs no sharding annotations.
    return jax.make_mesh(
        (count,), (DATA_AXIS,), (jax.sharding.AxisType.Auto,), devices=devices[:count]
    )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the ``data`` axis.

    Args:
      mesh: a mesh from :func:`make_mesh`.

    Returns:
      ``NamedSharding(mesh, P("data"))``.

    >>> batch_sharding(make_mesh(1)).spec == jax.P("data")
    True
    """
    return NamedSharding(mesh, jax.P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh``.

    Args:
      mesh: a mesh from :func:`make_mesh`.

    Returns:
      ``NamedSharding(mesh, P())``.

    >>> replicated(make_mesh(1)).spec == jax.P()
    True
    """
    return NamedSharding(mesh, jax.P())


def check_batch(batch: PyTree, num_devices: int) -> int:
    """Check every batch leaf has a leading axis that ``num_devices`` devices can split evenly.

    Works on arrays or ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``), so it runs
    before anything is compiled.

    Args:
      batch: one step's batch.
      num_devices: the size of the ``data`` axis.

    Returns:
      The batch size (the shared leading dimension).

    Raises:
      ValueError: naming the leaves that cannot be split and the device count.

    >>> batch = (np.zeros((8, 3), np.float32), np.zeros((8,), np.float32))
    >>> check_batch(batch, 4)
    8
    >>> try:
    ...     check_batch(batch, 3)
    ... except ValueError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    batch size 8 is not divisible by the 3 devices of the data axis; choose a batch size ...
    """
    leaves = jax.tree_util.tree_flatten_with_path(batch)[0]
    sizes = {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf in leaves}
    scalars = [name or "batch" for name, shape in sizes.items() if not shape]
    if scalars:
        raise ValueError(
            f"cannot split a batch over {num_devices} devices: {', '.join(scalars)} has no batch "
            "axis (this experiment trains on one sample per step); use --devices 1"
        )
    leading = {shape[0] for shape in sizes.values()}
    if len(leading) != 1:
        raise ValueError(f"batch leaves disagree on the batch size: {sizes}")
    size = leading.pop()
    if size % num_devices:
        raise ValueError(
            f"batch size {size} is not divisible by the {num_devices} devices of the data axis; "
            f"choose a batch size that is a multiple of {num_devices} or a device count that "
            f"divides {size} (--devices)"
        )
    return size


def put(tree: PyTree, sharding: NamedSharding) -> PyTree:
    """Place host (or single-device) arrays as global arrays with ``sharding``.

    Every process passes the whole array; each contributes only the slices of its own devices,
    which makes this work unchanged for one process or many.

    Args:
      tree: arrays, the same in every process.
      sharding: where they go.

    Returns:
      The tree of global ``jax.Array``s, shapes unchanged.

    >>> placed = put({"x": np.arange(4, dtype=np.float32)}, batch_sharding(make_mesh(1)))
    >>> placed["x"].tolist(), placed["x"].sharding.spec == jax.P("data")
    ([0.0, 1.0, 2.0, 3.0], True)
    """

    def place(leaf: Any) -> jax.Array:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            # Typed keys have no NumPy form; their raw uint32 data travels instead.
            impl = jax.random.key_impl(leaf)
            return jax.random.wrap_key_data(place(jax.random.key_data(leaf)), impl=impl)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def to_host(tree: PyTree) -> PyTree:
    """NumPy copies of ``tree``'s arrays, in any process.

    Arrays this process holds entirely are copied directly; replicated ones spanning several
    processes are read from the local replica; others are gathered from every process.

    Args:
      tree: ``jax.Array``s (or anything ``np.asarray`` accepts).

    Returns:
      The same tree with ``np.ndarray`` leaves of the same shapes.

    >>> host = to_host({"w": jax.numpy.ones((2, 3), jax.numpy.float32)})
    >>> type(host["w"]).__name__, host["w"].shape
    ('ndarray', (2, 3))
    """

    def fetch(leaf: Any) -> np.ndarray:
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return np.asarray(leaf)
        if leaf.sharding.is_fully_replicated:
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(fetch, tree)
