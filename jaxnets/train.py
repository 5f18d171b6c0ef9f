"""The training loop every experiment shares: one ``lax.scan`` of a pure train step under ``jit``.

A step is ``(state, batch) -> (state, loss)``. ``train_loop`` is traced inside an experiment's
jitted ``train``, so the whole run is one XLA program with no Python per step.

Long runs that report progress or write checkpoints use the chunked driver instead:
``make_chunk_runner`` compiles one XLA program per chunk length (``jit`` over ``lax.scan`` of the
same ``make_train_step`` step, the state donated), and ``run_chunks`` calls it chunk after chunk,
handing control back to Python only between chunks. The scanned step guards against non-finite
values: it either freezes the state at the first bad step (and records which step) or skips the
update and counts it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import data as data_lib
from jaxnets import validate

__all__ = [
    "BatchFn",
    "Batches",
    "Chunk",
    "LoopState",
    "TrainState",
    "apply_gradients",
    "fit_epochs",
    "full_batch",
    "init_loop_state",
    "make_chunk_runner",
    "make_train_step",
    "run_chunks",
    "shuffled_batches",
    "train_loop",
]

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]
BatchFn = Callable[[PyTree, jax.Array, jax.Array, jax.Array], PyTree]


class TrainState(NamedTuple):
    """Everything a step changes.

    Attributes:
      params: the parameter pytree.
      opt_state: the optimiser's state for ``params``.
      step: the number of steps taken, an int32 scalar.
    """

    params: PyTree
    opt_state: optax.OptState
    step: jax.Array


def make_train_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation, *, with_grads: bool = False
) -> Callable[[TrainState, PyTree], tuple[TrainState, Any]]:
    """Build ``train_step(state, batch) -> (state, loss)`` from ``loss_fn(params, batch)``.

    The loss is the one computed before the update, as ``loss.item()`` is in a torch loop that
    calls ``backward`` and ``step`` afterwards. With ``with_grads`` the step also emits the
    gradients (``(loss, grads)``), for scripts that print them as the tutorials do.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      optimizer: an optax transformation.
      with_grads: emit ``(loss, grads)`` instead of ``loss``.

    Returns:
      ``train_step``, taking a :class:`TrainState` and a batch; the loss has shape ``()`` and
      the grads the structure of ``params``.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> step = make_train_step(loss_fn, optax.sgd(0.25))
    >>> p = jnp.zeros((2,), jnp.float32)
    >>> state = TrainState(p, optax.sgd(0.25).init(p), jnp.zeros((), jnp.int32))
    >>> state, loss = step(state, jnp.ones((2,), jnp.float32))
    >>> float(loss), state.params.tolist(), int(state.step)
    (2.0, [0.5, 0.5], 1)
    """

    def train_step(state: TrainState, batch: PyTree) -> tuple[TrainState, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
        new_state = apply_gradients(optimizer, state, grads)
        return new_state, ((loss, grads) if with_grads else loss)

    return train_step


def apply_gradients(
    optimizer: optax.GradientTransformation, state: TrainState, grads: PyTree
) -> TrainState:
    """One optimiser update of ``state`` with ``grads``: the second half of every train step.

    Args:
      optimizer: the optax transformation whose state ``state.opt_state`` is.
      state: the state before the step.
      grads: gradients with the structure of ``state.params``.

    Returns:
      The state after the step (``step`` advanced by one).

    >>> p = jnp.ones((2,), jnp.float32)
    >>> state = TrainState(p, optax.sgd(0.5).init(p), jnp.zeros((), jnp.int32))
    >>> after = apply_gradients(optax.sgd(0.5), state, jnp.full((2,), 2.0, jnp.float32))
    >>> after.params.tolist(), int(after.step)
    ([0.0, 0.0], 1)
    """
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1)


def train_loop(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    *,
    batch: PyTree = None,
    batches: PyTree = None,
    steps: int | None = None,
    with_grads: bool = False,
) -> tuple[PyTree, Any]:
    """Run ``steps`` optimiser steps as one ``lax.scan``; call it inside ``jax.jit``.

    Either ``batch`` is used at every step (full-batch training, ``steps`` required), or
    ``batches`` is a pytree whose leaves have a leading axis of one entry per step.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      optimizer: an optax transformation.
      params: initial parameters.
      batch: the batch of every step (with ``steps``).
      batches: one batch per step, stacked on a leading axis (without ``steps``).
      steps: number of steps (with ``batch``).
      with_grads: also return every step's gradients.

    Returns:
      ``(final_params, losses)`` with ``losses`` of shape ``(steps,)``; with ``with_grads``,
      ``(final_params, (losses, grads))`` where each grads leaf has a leading step axis.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> p, b = jnp.zeros((2,), jnp.float32), jnp.ones((2,), jnp.float32)
    >>> final, losses = train_loop(loss_fn, optax.sgd(0.25), p, batch=b, steps=3)
    >>> final.tolist(), losses.tolist()
    ([0.875, 0.875], [2.0, 0.5, 0.125])
    """
    if (batches is None) == (steps is None):
        raise ValueError("pass exactly one of `batches` (one per step) or `steps` (with `batch`)")
    train_step = make_train_step(loss_fn, optimizer, with_grads=with_grads)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    if batches is not None:
        state, outputs = jax.lax.scan(train_step, state, batches)
    else:
        state, outputs = jax.lax.scan(lambda s, _: train_step(s, batch), state, None, length=steps)
    return state.params, outputs


class LoopState(NamedTuple):
    """What the chunked driver carries from step to step and checkpoints.

    Attributes:
      train: the :class:`TrainState`.
      key: the run's data key (batches are a pure function of it, the epoch and the step).
      bad_step: -1 while every step has been finite, else the step that was not (the state is
        frozen just before it); an int32 scalar.
      skipped: how many steps had their update dropped; an int32 scalar.
    """

    train: TrainState
    key: jax.Array
    bad_step: jax.Array
    skipped: jax.Array


class Chunk(NamedTuple):
    """One chunk's outcome, on the host.

    Attributes:
      state: the :class:`LoopState` after the chunk.
      start: the chunk's first step.
      losses: ``(length,)`` per-step losses.
      finite: ``(length,)`` booleans, whether each step was finite.
      bad_step: the first non-finite step not skipped, or -1.
      skipped: steps skipped so far in the run.
    """

    state: LoopState
    start: int
    losses: np.ndarray
    finite: np.ndarray
    bad_step: int
    skipped: int

    @property
    def stop(self) -> int:
        """The step after the chunk's last one.

        >>> Chunk(None, 4, np.zeros(3), np.ones(3, bool), -1, 0).stop
        7
        """
        return self.start + len(self.losses)


def full_batch(data: PyTree, key: jax.Array, epoch: jax.Array, step: jax.Array) -> PyTree:
    """The batch plan of full-batch training: every step sees all of ``data``.

    Args:
      data: the fixed training arrays.
      key: the run's data key (unused).
      epoch: epoch index (unused).
      step: step within the epoch (unused).

    Returns:
      ``data`` itself.

    >>> data = (jnp.ones((4, 3), jnp.float32), jnp.zeros((4,), jnp.float32))
    >>> full_batch(data, jax.random.key(0), 7, 0) is data
    True
    """
    del key, epoch, step
    return data


class Batches(NamedTuple):
    """A run's batch plan for the chunked driver.

    Attributes:
      batch_fn: ``(data, key, epoch, step_in_epoch) -> batch``, traced inside the scanned step.
      steps_per_epoch: steps that make one pass over the data.
      last_batch_fn: the plan of each epoch's last step when its batch has another (static)
        shape than the others, as ``DataLoader``'s last partial batch does; ``None`` if not.
    """

    batch_fn: BatchFn = full_batch
    steps_per_epoch: int = 1
    last_batch_fn: BatchFn | None = None


def shuffled_batches(
    n: int, batch_size: int, *, shuffle: bool = True, drop_last: bool = False
) -> Batches:
    """``DataLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last)`` as a batch plan.

    ``data`` is a pytree of arrays sharing the leading dimension ``n``. Epoch ``e`` visits the
    samples in ``jax.random.permutation(jax.random.fold_in(key, e), n)`` (``range(n)`` without
    ``shuffle``), which is :func:`jaxnets.data.epoch_order` when ``key`` is
    ``jax.random.key(seed)``; it is cut into batches as ``BatchSampler`` cuts it. The last
    partial batch, kept unless ``drop_last``, is gathered by ``last_batch_fn`` with its own static
    shape, so every batch of every epoch has exactly the samples the loader would yield.

    Args:
      n: dataset length.
      batch_size: samples per batch (``>= 1``).
      shuffle: reshuffle every epoch.
      drop_last: drop each epoch's partial last batch.

    Returns:
      The :class:`Batches` of one epoch.

    Raises:
      ValueError: a non-positive ``batch_size``, or ``drop_last`` with fewer than ``batch_size``
        samples (an epoch with no batch).

    >>> plan = shuffled_batches(5, 2, shuffle=False)
    >>> plan.steps_per_epoch
    3
    >>> data = jnp.arange(10, 15)
    >>> key, epoch = jax.random.key(0), jnp.int32(0)
    >>> plan.batch_fn(data, key, epoch, jnp.int32(1)).tolist()
    [12, 13]
    >>> plan.last_batch_fn(data, key, epoch, jnp.int32(2)).tolist()
    [14]
    >>> shuffled_batches(5, 2, drop_last=True).steps_per_epoch
    2
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    full, rest = divmod(int(n), batch_size)
    if drop_last:
        rest = 0
    if full == 0 and rest == 0:
        raise ValueError(
            f"drop_last with batch_size={batch_size} leaves no batch of a dataset of {n} samples"
        )

    def order(key: jax.Array, epoch: jax.Array) -> jax.Array:
        if not shuffle:
            return jnp.arange(n)
        return jax.random.permutation(jax.random.fold_in(key, epoch), n)

    def gather(data: PyTree, indices: jax.Array) -> PyTree:
        return jax.tree.map(lambda a: jnp.take(a, indices, axis=0), data)

    def batch_fn(data: PyTree, key: jax.Array, epoch: jax.Array, step: jax.Array) -> PyTree:
        start = step * batch_size
        return gather(data, jax.lax.dynamic_slice_in_dim(order(key, epoch), start, batch_size))

    def last_batch_fn(data: PyTree, key: jax.Array, epoch: jax.Array, step: jax.Array) -> PyTree:
        del step  # always the epoch's last
        return gather(data, order(key, epoch)[full * batch_size :])

    if full == 0:
        return Batches(last_batch_fn, 1)
    return Batches(batch_fn, full + (rest > 0), last_batch_fn if rest else None)


def init_loop_state(
    params: PyTree, optimizer: optax.GradientTransformation, key: jax.Array
) -> LoopState:
    """The state before step 0: fresh optimiser state, step 0, no bad or skipped steps.

    Args:
      params: initial parameters.
      optimizer: the optax transformation the run uses.
      key: the run's data key (a typed ``jax.random.key``).

    Returns:
      A :class:`LoopState` with scalar int32 ``step``, ``bad_step`` and ``skipped``.

    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd(0.1), jax.random.key(0))
    >>> int(state.train.step), int(state.bad_step), int(state.skipped)
    (0, -1, 0)
    """
    step = jnp.zeros((), jnp.int32)
    return LoopState(
        TrainState(params, optimizer.init(params), step),
        key,
        jnp.full((), -1, jnp.int32),
        jnp.zeros((), jnp.int32),
    )


def _all_finite(tree: PyTree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def make_chunk_runner(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_fn: BatchFn = full_batch,
    *,
    steps_per_epoch: int = 1,
    last_batch_fn: BatchFn | None = None,
    skip_nonfinite: bool = False,
    batch_sharding: jax.sharding.Sharding | None = None,
    state_sharding: jax.sharding.Sharding | None = None,
    compiler_options: dict[str, Any] | None = None,
) -> Callable[..., tuple[LoopState, tuple[jax.Array, jax.Array]]]:
    """Build ``run_chunk(state, data, *, length) -> (state, (losses, finite))``.

    ``run_chunk`` is ``jax.jit`` over a ``lax.scan`` of ``length`` steps of
    ``make_train_step(loss_fn, optimizer)``'s step (``jax.value_and_grad(loss_fn)`` and
    :func:`apply_gradients`, as ``train_loop`` scans them) with a guard; it compiles once
    per distinct ``length`` and donates ``state``, so chunks update the parameters in place.
    Step ``t`` trains on ``batch_fn(data, key, t // steps_per_epoch, t % steps_per_epoch)``, or,
    when ``last_batch_fn`` is given and ``t`` is an epoch's last step, on ``last_batch_fn``'s
    batch (a ``lax.cond`` between the two shapes' gradient computations, both in the one program).

    A step is finite when its loss and gradients are (an update that overflows finite parameters
    shows up as the next step's non-finite loss; checking the updated parameters too would
    materialise them beside the old ones, several times the step's cost). The first step that is
    not either freezes the state (``skip_nonfinite=False``: later steps of the chunk change
    nothing and ``state.bad_step`` names it) or is skipped (its update dropped, the step counter
    still advanced, ``state.skipped`` incremented).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      optimizer: the optax transformation.
      batch_fn: the batch plan, ``(data, key, epoch, step_in_epoch) -> batch``.
      steps_per_epoch: steps that make one epoch of ``batch_fn``.
      last_batch_fn: the batch plan of each epoch's last step, if its batch shape differs.
      skip_nonfinite: skip non-finite steps instead of stopping at the first.
      batch_sharding: if given, each step's batch is constrained to it (data parallelism).
      state_sharding: if given, the output state and losses are placed with it (replicated).
      compiler_options: XLA options for this program only (``jax.jit``'s ``compiler_options``),
        e.g. an experiment's ``COMPILER_OPTIONS``.

    Returns:
      The jitted ``run_chunk``; ``losses`` and ``finite`` have shape ``(length,)``.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> run_chunk = make_chunk_runner(loss_fn, optax.sgd(0.25))
    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd(0.25), jax.random.key(0))
    >>> state, (losses, finite) = run_chunk(state, jnp.ones((2,), jnp.float32), length=3)
    >>> losses.tolist(), finite.tolist(), int(state.train.step), int(state.bad_step)
    ([2.0, 0.5, 0.125], [True, True, True], 3, -1)
    """

    def gradients(plan: BatchFn, data: PyTree, key: jax.Array, step: jax.Array):
        def run(params: PyTree):
            batch = plan(data, key, step // steps_per_epoch, step % steps_per_epoch)
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return jax.value_and_grad(loss_fn)(params, batch)

        return run

    def guarded_step(state: LoopState, data: PyTree) -> tuple[LoopState, tuple[Any, Any]]:
        train = state.train
        step = train.step
        if last_batch_fn is None:
            loss, grads = gradients(batch_fn, data, state.key, step)(train.params)
        else:
            loss, grads = jax.lax.cond(
                step % steps_per_epoch == steps_per_epoch - 1,
                gradients(last_batch_fn, data, state.key, step),
                gradients(batch_fn, data, state.key, step),
                train.params,
            )
        finite = jnp.isfinite(loss) & _all_finite(grads)
        if skip_nonfinite:
            apply = finite
            skipped = state.skipped + jnp.where(finite, 0, 1).astype(jnp.int32)
            bad_step = state.bad_step
        else:
            apply = finite & (state.bad_step < 0)
            skipped = state.skipped
            bad_step = jnp.where((state.bad_step < 0) & ~finite, step, state.bad_step)
        # The predicate depends on the gradients alone, so XLA fuses the select into the update
        # and writes the parameters in place; a predicate on the updated parameters would keep
        # old and new alive together (cnn batch 1: 13 ms a step against 6 ms).
        updated = apply_gradients(optimizer, train, grads)
        new_train = TrainState(
            _select(apply, updated.params, train.params),
            _select(apply, updated.opt_state, train.opt_state),
            jnp.where(apply | skip_nonfinite, updated.step, step),
        )
        return state._replace(train=new_train, bad_step=bad_step, skipped=skipped), (loss, finite)

    jit_kwargs: dict[str, Any] = {}
    if compiler_options:
        jit_kwargs["compiler_options"] = dict(compiler_options)
    if state_sharding is not None:
        jit_kwargs["out_shardings"] = state_sharding

    # The state is donated: a chunk writes its parameters into the buffers it was given, so a
    # run holds one copy of the state, not one per chunk.
    @functools.partial(jax.jit, static_argnames=("length",), donate_argnums=(0,), **jit_kwargs)
    def run_chunk(state: LoopState, data: PyTree, *, length: int):
        return jax.lax.scan(lambda s, _: guarded_step(s, data), state, None, length=length)

    return run_chunk


def run_chunks(
    run_chunk: Callable[..., tuple[LoopState, tuple[jax.Array, jax.Array]]],
    state: LoopState,
    data: PyTree,
    *,
    start: int,
    stop: int,
    chunk_size: int,
    to_host: Callable[[PyTree], PyTree] = jax.device_get,
) -> Iterator[Chunk]:
    """Run steps ``start .. stop-1`` chunk by chunk, yielding after each chunk.

    Chunk ends fall on multiples of ``chunk_size`` (and on ``stop``), so a run resumed from a
    chunk boundary runs the same programs as an uninterrupted one, and at most three lengths are
    ever compiled. The loop stops after a chunk in which a step was non-finite and not skipped.

    Args:
      run_chunk: from :func:`make_chunk_runner`.
      state: the state at step ``start`` (donated to the first chunk).
      data: the training data passed to every chunk.
      start: the first step to run.
      stop: the step to stop before.
      chunk_size: steps per chunk.
      to_host: fetches arrays to NumPy (multi-process runs pass one that reads a local replica).

    Yields:
      A :class:`Chunk` per chunk, holding the state after it; ``losses`` and ``finite`` are
      ``(length,)`` NumPy arrays.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> run_chunk = make_chunk_runner(loss_fn, optax.sgd(0.25))
    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd(0.25), jax.random.key(0))
    >>> data = jnp.ones((2,), jnp.float32)
    >>> chunks = list(run_chunks(run_chunk, state, data, start=0, stop=5, chunk_size=2))
    >>> [(c.start, c.stop) for c in chunks], chunks[-1].losses.tolist()
    ([(0, 2), (2, 4), (4, 5)], [0.0078125])
    """
    step = start
    while step < stop:
        length = min(chunk_size - step % chunk_size, stop - step)
        state, (losses, finite) = run_chunk(state, data, length=length)
        losses, finite, bad_step, skipped = to_host((losses, finite, state.bad_step, state.skipped))
        chunk = Chunk(
            state, step, np.asarray(losses), np.asarray(finite), int(bad_step), int(skipped)
        )
        yield chunk
        if chunk.bad_step >= 0:
            return
        step += length


def epoch_loop(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    arrays: PyTree,
    orders: jax.Array,
    batch_size: int,
    *,
    drop_last: bool = False,
) -> tuple[PyTree, jax.Array]:
    """Train over whole epochs of a data set as one program; call it inside ``jax.jit``.

    ``orders[e]`` is epoch ``e``'s sample order (``jaxnets.data.epoch_order``, or torch's sampler
    order for parity); it is cut into batches exactly as ``DataLoader`` cuts it: full batches
    run as a ``lax.scan`` and a last partial batch, unless ``drop_last``, as one more step of
    its own (static) shape.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` where ``batch`` has ``arrays``' structure.
      optimizer: an optax transformation.
      params: initial parameters.
      arrays: pytree of arrays sharing the leading (sample) dimension.
      orders: ``[epochs, m]`` integer sample orders.
      batch_size: samples per batch.
      drop_last: drop each epoch's partial last batch.

    Returns:
      ``(final_params, losses)`` with ``losses: [epochs, steps_per_epoch]``.

    >>> def loss_fn(w, batch):
    ...     x, y = batch
    ...     return jnp.mean((x * w - y) ** 2)
    >>> x = jnp.arange(5, dtype=jnp.float32)
    >>> orders = jnp.stack([jnp.arange(5), jnp.arange(5)[::-1]])
    >>> w, losses = epoch_loop(loss_fn, optax.sgd(0.01), jnp.ones((), jnp.float32), (x, 2 * x),
    ...                        orders, 2)
    >>> losses.shape, w.shape
    ((2, 3), ())
    """
    m = orders.shape[1]
    full = m // batch_size
    partial = m - full * batch_size if not drop_last else 0
    train_step = make_train_step(loss_fn, optimizer)

    def one_epoch(state: TrainState, order: jax.Array):
        losses = jnp.zeros((0,), jnp.result_type(*jax.tree.leaves(params)))
        if full:
            batches = data_lib.epoch_arrays(arrays, batch_size, order=order[: full * batch_size])
            state, losses = jax.lax.scan(train_step, state, batches)
        if partial:
            last = jax.tree.map(lambda a: jnp.take(a, order[full * batch_size :], axis=0), arrays)
            state, last_loss = train_step(state, last)
            losses = jnp.concatenate([losses, last_loss[None]])
        return state, losses

    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    state, losses = jax.lax.scan(one_epoch, state, orders)
    return state.params, losses


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "batch_size", "learning_rate"))
def _fit_epochs(params, arrays, orders, *, loss_fn, optimizer, batch_size, learning_rate):
    return epoch_loop(loss_fn, optimizer(learning_rate), params, arrays, orders, batch_size)


def fit_epochs(
    loss_fn: LossFn,
    optimizer: Callable[[float], optax.GradientTransformation],
    params: PyTree,
    arrays: PyTree,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    orders: Any = None,
) -> tuple[PyTree, jax.Array]:
    """Shuffled mini-batch training over whole epochs as one jitted program (:func:`epoch_loop`).

    The shared body of the loader experiments' ``train``: the options are checked before anything
    is compiled, and epoch ``e`` visits ``jaxnets.data.epoch_order(n, seed=seed, epoch=e)``, or
    ``orders[e]`` when ``orders`` (``[epochs, n]``, e.g. torch's sampler order) is given.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` where ``batch`` has ``arrays``' structure.
      optimizer: ``optimizer(learning_rate) -> optax.GradientTransformation`` (e.g.
        ``jaxnets.optim.sgd``).
      params: initial parameters.
      arrays: pytree of arrays sharing the leading (sample) dimension ``n``.
      epochs: passes over the data.
      batch_size: samples per batch (the last batch of an epoch may be smaller).
      learning_rate: the optimiser's learning rate.
      seed: seed of the shuffled orders.
      orders: optional ``(epochs, n)`` sample orders.

    Returns:
      ``(final_params, losses)`` with ``losses: (epochs, ceil(n / batch_size))``.

    >>> def loss_fn(w, batch):
    ...     x, y = batch
    ...     return jnp.mean((x * w - y) ** 2)
    >>> x = jnp.arange(5, dtype=jnp.float32)
    >>> w, losses = fit_epochs(loss_fn, optax.sgd, jnp.ones((), jnp.float32), (x, 2 * x),
    ...                        epochs=2, batch_size=2, learning_rate=0.01)
    >>> losses.shape, w.shape
    ((2, 3), ())
    """
    epochs = validate.positive_int(epochs, "epochs")
    batch_size = validate.positive_int(batch_size, "batch_size")
    learning_rate = validate.learning_rate(learning_rate)
    arrays = jax.tree.map(jnp.asarray, arrays)
    n = jax.tree.leaves(arrays)[0].shape[0]
    orders = data_lib.epoch_orders(n, epochs, seed=seed, orders=orders)
    return _fit_epochs(
        params,
        arrays,
        jnp.asarray(orders),
        loss_fn=loss_fn,
        optimizer=optimizer,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
