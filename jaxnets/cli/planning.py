"""Planning a run from shapes alone: batch plan, device split (with advice that works), chunks.

Nothing here draws, compiles or writes: :func:`plan_run` checks everything the shapes of the
experiment's ``init`` and batch plan can tell before the run starts.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jaxnets import distributed
from jaxnets.checkpoint import param_specs
from jaxnets.cli.options import MAX_CHUNK, PROGRESS_UPDATES, Options, UsageError
from jaxnets.data import plan as plan_lib
from jaxnets.experiments import _script
from jaxnets.train import Data

__all__ = ["RunPlan", "batch_shapes", "chunk_plan", "epoch_aligned", "plan_run"]

# Batch sizes tried, nearest first, when advising on a batch the devices cannot split.
ADVICE_CANDIDATES = 12
PyTree = Any
Experiment = ModuleType  # an experiment module (see jaxnets.experiments._protocol)


def epoch_aligned(limit: int, steps_per_epoch: int) -> int:
    """The largest chunk length <= ``limit`` whose chunk ends include every epoch end.

    >>> epoch_aligned(9, 45), epoch_aligned(100, 45), epoch_aligned(4, 7), epoch_aligned(5, 1)
    (9, 90, 1, 5)
    """
    if limit >= steps_per_epoch:
        return limit // steps_per_epoch * steps_per_epoch
    return max(d for d in range(1, limit + 1) if steps_per_epoch % d == 0)


def chunk_plan(options: Options, steps_per_epoch: int) -> tuple[int, int | None]:
    """(steps per chunk, checkpoint interval): the interval is a whole number of chunks.

    The default chunk length also makes every epoch end a chunk end, where the experiment's
    evaluation runs.
    """
    every = options.checkpoint_every
    chunk = options.chunk_size
    if chunk is None:
        chunk = min(MAX_CHUNK, max(1, -(-options.steps // PROGRESS_UPDATES)))
        chunk = epoch_aligned(min(chunk, every or chunk), steps_per_epoch)
    elif every is not None:
        chunk = min(chunk, every)
    if every is None:
        return chunk, None
    return chunk, -(-every // chunk) * chunk


class RunPlan(NamedTuple):
    """What a run will do, worked out from shapes alone (nothing compiled or drawn yet)."""

    options: Options
    specs: dict[str, Any]
    mesh: Mesh | None
    batch_size: int | None
    chunk_size: int
    every: int | None
    batch_plan: plan_lib.Plan
    n: int

    @property
    def steps_per_epoch(self) -> int:
        """Steps that make one pass over the training data."""
        return self.batch_plan.steps_per_epoch(self.n)

    @property
    def data_parallel(self) -> int:
        """The number of devices each batch is split over."""
        return 1 if self.mesh is None else self.mesh.size


def batch_shapes(
    experiment: Experiment, batch_size: int | None, drop_last: bool, dtype: str
) -> tuple[PyTree, Data, plan_lib.Plan, int, list[PyTree]]:
    """Shapes only: ``(abstract params, abstract data, batch plan, samples, batch shapes)``.

    The batch shapes are one step's, then (if it differs) each epoch's last step's.

    Raises:
      ValueError: the experiment refuses the batch size or ``drop_last``.
    """
    sizes = {} if batch_size is None else {"batch_size": batch_size}
    abstract_params, abstract_data = jax.eval_shape(
        lambda key: experiment.init(key, **sizes, dtype=_script.DTYPES[dtype]), jax.random.key(0)
    )
    plan = experiment.batch_plan(batch_size, drop_last=drop_last)
    n = int(jax.tree.leaves(abstract_data.train)[0].shape[0]) if plan.batch_size else 0
    plan = plan.check(n)
    order = jax.ShapeDtypeStruct((n,), jnp.int32)
    shapes = [
        jax.eval_shape(
            lambda train, order, is_last=is_last: plan_lib.batch(
                plan, train, order, 0, last=is_last
            ),
            abstract_data.train,
            order,
        )
        for is_last in plan.batch_kinds(n)
    ]
    return abstract_params, abstract_data, plan, n, shapes


def split_problem(shapes: list[PyTree], devices: int) -> str | None:
    """Why ``devices`` devices cannot split these batches evenly, or ``None`` if they can."""
    for which, shape in zip(("", "each epoch's last, partial batch: "), shapes, strict=False):
        try:
            distributed.check_batch(shape, devices)
        except ValueError as err:
            # The generic "choose a multiple or a divisor" is replaced by computed advice.
            return which + str(err).split("; choose ")[0]
    return None


def split_advice(experiment: Experiment, options: Options, devices: int) -> list[str]:
    """Option changes that make every batch split evenly, each verified on the real plan.

    Tried: the batch sizes nearest the current one that are multiples of ``devices`` (two at
    most), with the current ``--drop-last`` and, for loaders, with it on; then the largest device
    count below ``devices`` that works (1 always does: it runs the plain program).
    """

    def works(batch_size: int | None, drop_last: bool, count: int) -> bool:
        try:
            shapes = batch_shapes(experiment, batch_size, drop_last, options.dtype)[4]
        except ValueError:
            return False
        return count == 1 or split_problem(shapes, count) is None

    advice = []
    if options.batch_size is not None:
        size = options.batch_size
        sizes = sorted(
            range(devices, 4 * size + devices, devices), key=lambda b: (abs(b - size), b)
        )
        modes = [options.drop_last] + (
            [True] if experiment.DEFAULTS.loader and not options.drop_last else []
        )
        for drop_last in modes:
            found = [b for b in sizes[:ADVICE_CANDIDATES] if works(b, drop_last, devices)][:2]
            for b in found:
                words = [] if b == size else [f"--batch-size {b}"]
                words += ["--drop-last"] if drop_last and not options.drop_last else []
                advice.append(" ".join(words))
    fewer = next(
        d for d in range(devices - 1, 0, -1) if works(options.batch_size, options.drop_last, d)
    )
    return [*advice, f"--devices {fewer}"]


def plan_run(options: Options, experiment: Experiment) -> RunPlan:
    """Check everything that shapes can tell: devices, batch split, steps, chunking."""
    try:
        abstract_params, _, batch_plan, n, shapes = batch_shapes(
            experiment, options.batch_size, options.drop_last, options.dtype
        )
    except ValueError as err:
        raise UsageError(f"--batch-size / --drop-last: {err}") from None
    steps_per_epoch = batch_plan.steps_per_epoch(n)
    if options.epochs is not None:
        options = dataclasses.replace(options, steps=options.epochs * steps_per_epoch)
    # One device runs the plain program: no mesh, no sharding annotations.
    mesh, batch_size = None, None
    if (options.devices or jax.device_count()) > 1:
        try:
            mesh = distributed.make_mesh(options.devices)
        except ValueError as err:
            raise UsageError(f"--devices: {err}") from None
        problem = split_problem(shapes, mesh.size)
        if problem is not None:
            if "has no batch axis" not in problem:
                advice = split_advice(experiment, options, mesh.size)
                problem += f"; what splits evenly: {', or '.join(advice)}"
            raise UsageError(f"--devices: {problem}")
        batch_size = distributed.check_batch(shapes[0], mesh.size)
    if options.tensorboard:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise UsageError(
                "--tensorboard needs tensorboardX: pip install 'jaxnets[tensorboard]'"
            ) from None
    chunk_size, every = chunk_plan(options, steps_per_epoch)
    specs = param_specs(abstract_params)
    return RunPlan(options, specs, mesh, batch_size, chunk_size, every, batch_plan, n)
