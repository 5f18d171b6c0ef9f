"""The one training loop: a guarded, scanned step under ``jit``, driven chunk by chunk.

A step takes the batch its :class:`jaxnets.data.Plan` assigns to ``(epoch, step in epoch)``,
computes ``jax.value_and_grad(loss_fn)``, and applies ``optimizer(learning_rate)``. The first step
whose loss is not finite freezes the state (and records the step) or, when asked, a step whose
loss or gradients are not finite is skipped. :func:`make_runner` compiles ``lax.scan`` over such
steps into one XLA program per chunk length; :func:`run_chunks` calls it chunk after chunk (the
``jaxnets`` command, with progress and checkpoints between chunks), and :func:`fit` is that
driver run as a single chunk (every experiment's ``train``), so both run the same program and
give the same numbers.

The learning rate is an argument of the compiled program, not a constant in it: a new learning
rate reuses the compiled program. Each epoch's sample order is drawn once, at the epoch's first
step, and carried through the scan.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import validate
from jaxnets._arrays import to_device
from jaxnets.data import plan as plan_lib
from jaxnets.data.plan import FULL_BATCH, Plan

__all__ = [
    "Chunk",
    "Data",
    "LoopState",
    "TrainState",
    "fit",
    "init_loop_state",
    "make_runner",
    "run_chunks",
    "run_keys",
    "step_key",
]

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]
BatchTransform = Callable[[jax.Array, PyTree], PyTree]
OptimizerFactory = Callable[[Any], optax.GradientTransformation]
GUARDS = ("stop", "skip")


class Data(NamedTuple):
    """What an experiment's ``init`` draws besides the parameters.

    Attributes:
      train: the training arrays, a pytree whose leaves share the leading (sample) axis; the batch
        plan cuts batches from it (a full-batch plan passes it whole).
      held_out: arrays the experiment's ``evaluate`` reads, or ``None``.
    """

    train: PyTree
    held_out: PyTree = None


class Keys(NamedTuple):
    """The two keys of a run: one draws parameters and data, the other orders the batches."""

    init: jax.Array
    data: jax.Array


def run_keys(seed: int) -> Keys:
    """The keys of the run with ``seed``: ``jax.random.split(jax.random.key(seed))``.

    The experiment scripts and the ``jaxnets`` command both start from these, so the same seed
    gives the same run.

    >>> keys = run_keys(0)
    >>> bool((jax.random.key_data(keys.init) != jax.random.key_data(keys.data)).any())
    True
    """
    init, data = jax.random.split(jax.random.key(seed))
    return Keys(init, data)


# Folded into the data key before the step: a stream apart from the epochs' orders, which fold
# in the epoch (an epoch count never reaches this).
_BATCH_TRANSFORM_STREAM = 0x7472_616E


def step_key(key: jax.Array, step: jax.Array | int) -> jax.Array:
    """The key a step's batch transform gets: a pure function of the data key and the step.

    It is ``fold_in(fold_in(key, STREAM), step)``, apart from the keys that order the epochs
    (``fold_in(key, epoch)``), so transforming batches leaves the batches' order unchanged, and a
    resumed run transforms its batches as an uninterrupted one.

    >>> key = run_keys(0).data
    >>> a, b = (jax.random.key_data(step_key(key, t)) for t in (0, 1))
    >>> bool((a != b).any())
    True
    """
    return jax.random.fold_in(jax.random.fold_in(key, _BATCH_TRANSFORM_STREAM), step)


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


class LoopState(NamedTuple):
    """What the driver carries from step to step and checkpoints.

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


def init_loop_state(
    params: PyTree, optimizer: OptimizerFactory, key: jax.Array | None = None
) -> LoopState:
    """The state before step 0: fresh optimiser state, step 0, no bad or skipped steps.

    Args:
      params: initial parameters.
      optimizer: the optimiser factory, ``optimizer(learning_rate) -> GradientTransformation``
        (the state's structure does not depend on the learning rate).
      key: the run's data key (a typed ``jax.random.key``); ``None`` for plans that draw none.

    Returns:
      A :class:`LoopState` with scalar int32 ``step``, ``bad_step`` and ``skipped``.

    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd)
    >>> int(state.train.step), int(state.bad_step), int(state.skipped)
    (0, -1, 0)
    """
    key = jax.random.key(0) if key is None else key
    return LoopState(
        TrainState(params, optimizer(1.0).init(params), jnp.zeros((), jnp.int32)),
        key,
        jnp.full((), -1, jnp.int32),
        jnp.zeros((), jnp.int32),
    )


def _all_finite(tree: PyTree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def make_runner(
    loss_fn: LossFn,
    optimizer: OptimizerFactory,
    plan: Plan = FULL_BATCH,
    *,
    n: int = 0,
    guard: str = "stop",
    with_grads: bool = False,
    donate: bool = True,
    batch_sharding: jax.sharding.Sharding | None = None,
    state_sharding: jax.sharding.Sharding | None = None,
    compiler_options: dict[str, Any] | None = None,
    batch_transform: BatchTransform | None = None,
) -> Callable[..., tuple[LoopState, tuple[jax.Array, ...]]]:
    """Build ``run_chunk(state, arrays, learning_rate, orders=None, *, length)``.

    ``run_chunk`` is ``jax.jit`` over a ``lax.scan`` of ``length`` guarded steps; it compiles once
    per distinct ``length`` (and per shape of its arguments), never per learning rate. Step ``t``
    trains on batch ``t % steps_per_epoch`` of epoch ``t // steps_per_epoch`` of ``plan``, the
    epoch's order being ``orders[epoch]`` when ``orders`` (``[epochs, n]``, e.g. torch's sampler
    order) is given, else :func:`jaxnets.data.plan.order` with the state's key. An epoch's last,
    partial batch has its own static shape: a ``lax.cond`` picks between the two shapes'
    gradient computations, both in the one program.

    With ``guard="stop"`` the first step whose loss is not finite freezes the state: later steps
    change nothing and ``state.bad_step`` names it. Non-finite gradients under a finite loss, or
    an update that overflows, poison the parameters, and the next step's loss names that step
    (checking every gradient, or the updated parameters, would cost a pass over them each step).
    With ``guard="skip"`` a step whose loss or gradients are not finite is skipped: its update
    dropped, the step counter still advanced, ``state.skipped`` incremented, the parameters
    intact.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      optimizer: ``optimizer(learning_rate) -> optax.GradientTransformation``; it is called with
        a traced learning rate.
      plan: the batch plan.
      n: the number of training samples (read by plans that cut batches).
      guard: ``"stop"`` or ``"skip"``, as above.
      with_grads: also emit every step's gradients.
      donate: donate ``state`` so a chunk updates the parameters in place (the caller's arrays
        become invalid); off when the caller keeps using the initial parameters.
      batch_sharding: if given, each step's batch is constrained to it (data parallelism).
      state_sharding: if given, the output state and losses are placed with it (replicated).
      compiler_options: XLA options for this program only (``jax.jit``'s ``compiler_options``).
      batch_transform: if given, ``batch_transform(key, batch) -> batch`` runs on every step's
        batch inside the step (data augmentation), with ``key = step_key(state.key, step)``;
        without it the program is the same as before it existed.

    Returns:
      The jitted ``run_chunk``, returning ``(state, (losses, finite))`` with ``(length,)`` arrays,
      or ``(state, (losses, finite, grads))`` with ``with_grads``.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> run_chunk = make_runner(loss_fn, optax.sgd)
    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd)
    >>> state, (losses, finite) = run_chunk(state, jnp.ones((2,), jnp.float32), 0.25, length=3)
    >>> losses.tolist(), finite.tolist(), int(state.train.step), int(state.bad_step)
    ([2.0, 0.5, 0.125], [True, True, True], 3, -1)
    """
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {GUARDS}, got {guard!r}")
    plan = plan.check(n)
    steps_per_epoch = plan.steps_per_epoch(n)
    kinds = plan.batch_kinds(n)

    def gradients(arrays, order, step_in_epoch, last: bool, key: jax.Array | None = None):
        def run(params: PyTree):
            batch = plan_lib.batch(plan, arrays, order, step_in_epoch, last=last)
            if batch_transform is not None:
                batch = batch_transform(key, batch)
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            return jax.value_and_grad(loss_fn)(params, batch)

        return run

    def epoch_order(key: jax.Array, epoch: jax.Array, orders: jax.Array | None) -> jax.Array:
        if orders is not None:
            return jax.lax.dynamic_index_in_dim(orders, epoch, keepdims=False)
        return plan_lib.order(plan, key, epoch, n)

    def guarded_step(tx, arrays, orders, carry):
        state, order = carry
        train = state.train
        epoch, step_in_epoch = train.step // steps_per_epoch, train.step % steps_per_epoch
        if plan.shuffle or orders is not None:
            # The epoch's order is drawn at its first step only, then carried.
            order = jax.lax.cond(
                step_in_epoch == 0, lambda: epoch_order(state.key, epoch, orders), lambda: order
            )
        key = None if batch_transform is None else step_key(state.key, train.step)
        if len(kinds) == 1:
            loss, grads = gradients(arrays, order, step_in_epoch, kinds[0], key)(train.params)
        else:  # a partial last batch: its own static shape, picked at the epoch's last step
            loss, grads = jax.lax.cond(
                step_in_epoch == steps_per_epoch - 1,
                gradients(arrays, order, step_in_epoch, True, key),
                gradients(arrays, order, step_in_epoch, False, key),
                train.params,
            )
        # Stopping needs the loss only: non-finite gradients make the next loss non-finite.
        # Skipping must keep the parameters clean, so it checks the gradients too, a pass over
        # them that costs the cnn's batch-1 step 1.8x (fc1's 25 MB gradient, memory-bound).
        finite = jnp.isfinite(loss)
        if guard == "skip":
            finite = finite & _all_finite(grads)
        if guard == "skip":
            apply = finite
            skipped = state.skipped + jnp.where(finite, 0, 1).astype(jnp.int32)
            bad_step = state.bad_step
        else:
            apply = finite & (state.bad_step < 0)
            skipped = state.skipped
            bad_step = jnp.where((state.bad_step < 0) & ~finite, train.step, state.bad_step)
        # The predicate depends on the gradients alone, so XLA fuses the select into the update
        # and writes the parameters in place; a predicate on the updated parameters would keep
        # old and new alive together (cnn batch 1: 13 ms a step against 6 ms).
        updates, opt_state = tx.update(grads, train.opt_state, train.params)
        params = optax.apply_updates(train.params, updates)
        new_train = TrainState(
            _select(apply, params, train.params),
            _select(apply, opt_state, train.opt_state),
            jnp.where(apply | (guard == "skip"), train.step + 1, train.step),
        )
        outputs = (loss, finite, grads) if with_grads else (loss, finite)
        new_state = state._replace(train=new_train, bad_step=bad_step, skipped=skipped)
        return (new_state, order), outputs

    def run_chunk(state, arrays, learning_rate, orders=None, *, length):
        tx = optimizer(learning_rate)
        if plan.batch_size is None:
            order = jnp.zeros((0,), jnp.int32)
        else:
            epoch = state.train.step // steps_per_epoch
            order = epoch_order(state.key, epoch, orders)
        (state, _), outputs = jax.lax.scan(
            lambda carry, _: guarded_step(tx, arrays, orders, carry),
            (state, order),
            None,
            length=length,
        )
        return state, outputs

    jit_kwargs: dict[str, Any] = {"static_argnames": ("length",)}
    if donate:
        jit_kwargs["donate_argnums"] = (0,)
    if compiler_options:
        jit_kwargs["compiler_options"] = dict(compiler_options)
    if state_sharding is not None:
        jit_kwargs["out_shardings"] = state_sharding
    return jax.jit(run_chunk, **jit_kwargs)


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


def run_chunks(
    run_chunk: Callable[..., tuple[LoopState, tuple[jax.Array, ...]]],
    state: LoopState,
    arrays: PyTree,
    learning_rate: float,
    *,
    start: int,
    stop: int,
    chunk_size: int,
    orders: Any = None,
    to_host: Callable[[PyTree], PyTree] = jax.device_get,
) -> Iterator[Chunk]:
    """Run steps ``start .. stop-1`` chunk by chunk, yielding after each chunk.

    Chunk ends fall on multiples of ``chunk_size`` (and on ``stop``), so a run resumed from a
    chunk boundary runs the same programs as an uninterrupted one, and at most three lengths are
    ever compiled. The loop stops after a chunk in which a step was non-finite and not skipped.

    Args:
      run_chunk: from :func:`make_runner`.
      state: the state at step ``start`` (donated to the first chunk when the runner donates).
      arrays: the training arrays passed to every chunk.
      learning_rate: the learning rate (traced: any value reuses the compiled chunks).
      start: the first step to run.
      stop: the step to stop before.
      chunk_size: steps per chunk.
      orders: optional ``[epochs, n]`` sample orders, one per epoch.
      to_host: fetches arrays to NumPy (multi-process runs pass one that reads a local replica).

    Yields:
      A :class:`Chunk` per chunk, holding the state after it.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> run_chunk = make_runner(loss_fn, optax.sgd)
    >>> state = init_loop_state(jnp.zeros((2,), jnp.float32), optax.sgd)
    >>> data = jnp.ones((2,), jnp.float32)
    >>> chunks = list(run_chunks(run_chunk, state, data, 0.25, start=0, stop=5, chunk_size=2))
    >>> [(c.start, c.stop) for c in chunks], chunks[-1].losses.tolist()
    ([(0, 2), (2, 4), (4, 5)], [0.0078125])
    """
    step = start
    while step < stop:
        length = min(chunk_size - step % chunk_size, stop - step)
        state, outputs = run_chunk(state, arrays, learning_rate, orders, length=length)
        losses, finite, bad_step, skipped = to_host(
            (outputs[0], outputs[1], state.bad_step, state.skipped)
        )
        chunk = Chunk(
            state, step, np.asarray(losses), np.asarray(finite), int(bad_step), int(skipped)
        )
        yield chunk
        if chunk.bad_step >= 0:
            return
        step += length


@functools.cache
def _fit_program(
    loss_fn, optimizer, plan, n, with_grads, compiler_options, batch_transform, stacked=False
):
    # The optimiser's state is made inside the training program rather than by a program of
    # its own: every program a process compiles adds to its time to result.
    run_chunk = make_runner(
        loss_fn,
        optimizer,
        plan,
        n=n,
        with_grads=with_grads,
        donate=False,
        batch_transform=batch_transform,
    )

    def fit_run(params, arrays, learning_rate, orders, key, *, length):
        state = init_loop_state(params, optimizer, key)
        return run_chunk(state, arrays, learning_rate, orders, length=length)

    def stacked_run(params, arrays, learning_rate, orders, key, *, length):
        def one(p: PyTree, a: PyTree) -> Any:
            return fit_run(p, a, learning_rate, orders, key, length=length)

        return jax.vmap(one)(params, arrays)

    return jax.jit(
        stacked_run if stacked else fit_run,
        static_argnames="length",
        compiler_options=dict(compiler_options),
    )


def fit(
    loss_fn: LossFn,
    optimizer: OptimizerFactory,
    params: PyTree,
    arrays: PyTree,
    *,
    steps: int,
    learning_rate: float,
    plan: Plan = FULL_BATCH,
    key: jax.Array | None = None,
    orders: Any = None,
    with_grads: bool = False,
    compiler_options: dict[str, Any] | None = None,
    batch_transform: BatchTransform | None = None,
    stacked: bool = False,
) -> tuple[PyTree, Any]:
    """Train for ``steps`` steps as one jitted chunk of the driver: every experiment's ``train``.

    The optimiser's initial state and the ``steps`` steps are one compiled program (``fit_run``).
    The options are checked before anything is compiled; the compiled program is cached per
    ``(loss_fn, optimizer, plan, n, with_grads, compiler_options, batch_transform)`` and shapes,
    so repeated calls, with any learning rate, compile nothing. ``params`` is not donated: the
    caller's arrays stay valid. A non-finite step freezes the run there (see
    :func:`make_runner`): the remaining losses repeat it.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (pass a module-level function: it is a cache
        key).
      optimizer: ``optimizer(learning_rate) -> optax.GradientTransformation``.
      params: initial parameters.
      arrays: the training arrays.
      steps: optimiser steps (``>= 1``).
      learning_rate: finite and ``> 0``.
      plan: the batch plan (default: the whole of ``arrays`` every step).
      key: the data key of a shuffling plan (see :func:`run_keys`).
      orders: ``[epochs, n]`` explicit sample orders instead of the key's (e.g. torch's), with
        ``epochs`` covering ``steps``.
      with_grads: also return every step's gradients.
      compiler_options: XLA options for the program.
      batch_transform: ``batch_transform(key, batch) -> batch`` applied to each step's batch in
        the step (see :func:`make_runner`; a module-level function: it is a cache key).
      stacked: ``params`` and ``arrays`` hold independent runs on a leading axis, trained at
        once by the same program under ``jax.vmap`` (e.g. an ensemble of perturbed starts);
        every output then has that leading axis.

    Returns:
      ``(final_params, losses)`` with ``losses: (steps,)``; with ``with_grads``,
      ``(final_params, (losses, grads))``, each grads leaf with a leading step axis.

    >>> def loss_fn(p, b):
    ...     return jnp.sum((p - b) ** 2)
    >>> p, b = jnp.zeros((2,), jnp.float32), jnp.ones((2,), jnp.float32)
    >>> final, losses = fit(loss_fn, optax.sgd, p, b, steps=3, learning_rate=0.25)
    >>> final.tolist(), losses.tolist()
    ([0.875, 0.875], [2.0, 0.5, 0.125])
    """
    steps = validate.positive_int(steps, "steps")
    learning_rate = validate.learning_rate(learning_rate)
    arrays = jax.tree.map(to_device, arrays)
    n = int(jax.tree.leaves(arrays)[0].shape[int(stacked)]) if plan.batch_size is not None else 0
    if orders is not None:
        epochs = -(-steps // plan.steps_per_epoch(n))
        orders = to_device(plan_lib.epoch_orders(n, epochs, orders))
    options = tuple(sorted((compiler_options or {}).items()))
    program = _fit_program(
        loss_fn, optimizer, plan, n, with_grads, options, batch_transform, stacked
    )
    state, outputs = program(params, arrays, learning_rate, orders, key, length=steps)
    return state.train.params, (outputs[0], outputs[2]) if with_grads else outputs[0]
