"""The run: plan from shapes, lock the directory, restore, the chunk loop, checkpoints, signals.

Every call the command makes into the experiment registry, the experiment modules and
``jaxnets.train`` is in this module: :func:`experiment_defaults`, :func:`_plan` (with
:func:`batch_shapes` and the split advice), :func:`initial_values`, :func:`_prepare` and
:func:`_loop` (``run_chunks`` and the optional ``evaluate``).

The order of :func:`train` is the contract: everything that shapes can tell is checked before
anything is written; the run directory is locked before anything is written in it; a resume is
checked against the checkpoint before the training program is built; and from the lock on,
SIGINT and SIGTERM stop the run between chunks, with every output written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import compile_cache, distributed
from jaxnets.checkpoint import Checkpointer
from jaxnets.cli.options import (
    Options,
    UsageError,
)
from jaxnets.cli.outputs import (
    Outputs,
    RunLock,
    config_json,
    format_evaluation,
    progress_bar,
)
from jaxnets.cli.planning import RunPlan, plan_run
from jaxnets.cli.resume import checkpoint_metadata, open_checkpoints, restore
from jaxnets.cli.signals import Interrupts
from jaxnets.experiments import _protocol, _script, catalog, registry
from jaxnets.train import Data, LoopState, init_loop_state, make_runner, run_chunks

__all__ = ["CHUNK_DELAY_ENV", "Result", "experiment_defaults", "initial_values", "train"]

# Seconds to sleep after every chunk: lets tests act on a run between chunks. Not a user option.
CHUNK_DELAY_ENV = "JAXNETS_CHUNK_DELAY"
PyTree = Any
Evaluate = Callable[[PyTree, PyTree], dict[str, Any]]
Experiment = ModuleType  # an experiment module (see jaxnets.experiments._protocol)


@dataclasses.dataclass
class Result:
    """What a run did: final host params, this invocation's losses, and how it ended.

    ``status`` is ``"completed"``, ``"nonfinite"`` (stopped at ``bad_step``),
    ``"all_steps_skipped"`` (every step of this invocation skipped as non-finite),
    ``"ended_nonfinite"`` (with ``--skip-nonfinite``, the last step was skipped: the final
    parameters give a non-finite loss or gradient),
    ``"interrupted"`` (by ``signal``, after saving) or ``"nothing_to_do"`` (a resume already at
    its last step; nothing was written and ``params`` is ``None``).
    """

    status: str
    params: PyTree
    losses: np.ndarray
    start_step: int
    end_step: int
    bad_step: int | None
    skipped: int
    compilations: int
    checkpoints: list[int]
    latest_checkpoint: int | None
    seconds: float
    steps_per_second: float | None
    final_loss: float | None = None
    final_loss_kind: str = "step"
    final_loss_at: int = 0
    evaluation: dict[str, float] | None = None
    signal: str | None = None
    primary: bool = True


def experiment_defaults(name: str) -> catalog.Defaults:
    """The defaults of experiment ``name`` that options resolve with (its ``DEFAULTS``).

    Raises:
      UsageError: no experiment has that name.
    """
    try:
        return registry.get(name).DEFAULTS
    except KeyError as err:
        raise UsageError(err.args[0]) from None


# ----------------------------------------------------------------------------- planning


@contextlib.contextmanager
def jax_settings(dtype: str, precision: str) -> Iterator[None]:
    """Set x64 (for float64) and the matmul precision for the run, restoring them after.

    x64 must be on before the first float64 array exists, so this wraps the whole run.
    """
    saved = {
        name: getattr(jax.config, name)
        for name in ("jax_enable_x64", "jax_default_matmul_precision")
    }
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", precision)
    try:
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)


def _check_finite(tree: PyTree, what: str) -> None:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        values = np.asarray(distributed.to_host(leaf))
        if np.issubdtype(values.dtype, np.inexact) and not np.isfinite(values).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
            name = jax.tree_util.keystr(path) or what
            raise UsageError(
                f"{what}{name if name != what else ''} contains non-finite values "
                f"({np.count_nonzero(~np.isfinite(values))} of {values.size}; first at {where})"
            )


# ----------------------------------------------------------------------------- initial state


def initial_values(
    experiment: Experiment, seed: int, batch_size: int | None, dtype: jnp.dtype
) -> tuple[PyTree, Data, jax.Array]:
    """The initial ``(params, data, data_key)`` of a run with ``seed``: the experiment script's.

    Args:
      experiment: the experiment module.
      seed: the run's seed.
      batch_size: passed to ``experiment.init`` (``None``: its default).
      dtype: parameter and data dtype.

    Returns:
      ``(params, data, data_key)`` from :func:`jaxnets.experiments._protocol.start`.
    """
    return _protocol.start(experiment, seed, batch_size=batch_size, dtype=dtype)


def _has_augment(name: str) -> bool:
    # The catalogue imports nothing, so asking each module is the one way to know.
    return getattr(registry.get(name), "augment", None) is not None


def _prepare(options: Options, experiment: Experiment, plan: RunPlan):
    """Draw the initial params and data, check them, place them on the mesh, build the runner."""
    dtype = _script.DTYPES[options.dtype]
    params, data, data_key = initial_values(experiment, options.seed, options.batch_size, dtype)
    _check_finite(data, "data")
    _check_finite(params, "params")
    state = init_loop_state(params, experiment.optimizer, data_key)
    shardings: dict[str, Any] = {}
    if plan.mesh is not None:
        replicated = distributed.replicated(plan.mesh)
        split = distributed.batch_sharding(plan.mesh)
        # Full-batch data is the batch and is split like it; a data set that batches are drawn
        # from is replicated, and each step's gathered batch is split by the runner.
        data_is_batch = plan.batch_plan.batch_size is None
        train = jax.tree.map(
            lambda x: distributed.put(
                x, split if data_is_batch and np.shape(x)[:1] == (plan.batch_size,) else replicated
            ),
            data.train,
        )
        data = Data(train, distributed.put(data.held_out, replicated))
        state = distributed.put(state, replicated)
        shardings = {"batch_sharding": split, "state_sharding": replicated}
    runner = make_runner(
        experiment.loss_fn,
        experiment.optimizer,
        plan.batch_plan,
        n=plan.n,
        guard="skip" if options.skip_nonfinite else "stop",
        compiler_options=getattr(experiment, "COMPILER_OPTIONS", None),
        batch_transform=experiment.augment if options.augment else None,
        **shardings,
    )
    return data, state, runner


# ----------------------------------------------------------------------------- the run


def train(options: Options, argv: Sequence[str] | None = None) -> Result:
    """Run one training job as ``options`` say; see ``jaxnets train --help`` for the outputs.

    Args:
      options: from :func:`jaxnets.cli.options.resolve`.
      argv: the command line, recorded in ``config.json``.

    Returns:
      The :class:`Result`.

    Raises:
      UsageError: bad input, before the training program is compiled, or a run directory that
        cannot be written or is in use.
    """
    compile_cache.enable(not options.cache)
    try:
        experiment = registry.get(options.experiment)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    if options.augment and getattr(experiment, "augment", None) is None:
        augmented = [name for name in registry.names() if _has_augment(name)]
        raise UsageError(
            f"--augment: {options.experiment} has no augmentation (experiments with one: "
            f"{', '.join(augmented)})"
        )
    out = Path(options.out)
    with jax_settings(options.dtype, options.precision):
        plan = plan_run(options, experiment)
        options = plan.options
        primary = jax.process_index() == 0
        with (
            RunLock(out, enabled=primary),
            Interrupts(enabled=jax.process_count() == 1) as interrupts,
        ):
            return _run(options, experiment, plan, out, primary, interrupts, argv)


def _run(
    options: Options,
    experiment: Experiment,
    plan: RunPlan,
    out: Path,
    primary: bool,
    interrupts: Interrupts,
    argv: Sequence[str] | None,
) -> Result:
    """The locked part of :func:`train`."""
    checkpointer, candidates = open_checkpoints(options, out, plan)
    with checkpointer or contextlib.nullcontext():
        data, state, runner = _prepare(options, experiment, plan)
        start = 0
        if options.resume:
            start, state = restore(checkpointer, candidates, state, options, plan, out)
            if start == options.steps:
                # Checked after the restore: a damaged last checkpoint leaves work to do.
                return Result(
                    status="nothing_to_do",
                    params=None,
                    losses=np.zeros((0,)),
                    start_step=start,
                    end_step=start,
                    bad_step=None,
                    skipped=int(distributed.to_host(state.skipped)),
                    compilations=0,
                    checkpoints=[],
                    latest_checkpoint=start,
                    seconds=0.0,
                    steps_per_second=None,
                    primary=primary,
                )
        outputs = Outputs(out, enabled=primary, tensorboard=options.tensorboard)
        facts = {
            "chunk_size": plan.chunk_size,
            "checkpoint_interval": plan.every,
            "params": plan.specs,
            "devices": {
                "platform": jax.devices()[0].platform,
                "data_parallel": plan.data_parallel,
                "processes": jax.process_count(),
            },
        }
        outputs.write_json(
            "config.json", config_json(options, argv=argv, start_step=start, run_facts=facts)
        )
        outputs.start_metrics(start)
        profile = (
            jax.profiler.trace(str(out / "profile"))
            if options.profile
            else contextlib.nullcontext()
        )
        with profile:
            result = _loop(
                options,
                plan,
                runner,
                state,
                data,
                start,
                checkpointer,
                outputs,
                evaluate=getattr(experiment, "evaluate", None),
                interrupts=interrupts,
            )
        if checkpointer is not None:
            result.latest_checkpoint = checkpointer.latest_step()
    result.primary = primary
    result.final_loss, result.final_loss_kind, result.final_loss_at = outputs.final_loss(
        plan.steps_per_epoch, result.end_step
    )
    outputs.finish(
        options.experiment,
        None if result.status == "nonfinite" else result.params,
        model=getattr(experiment, "MODEL", None),
        torch_name=getattr(experiment, "TORCH_NAME", None),
    )
    outputs.write_json("result.json", _result_json(result))
    return result


def _loop(
    options: Options,
    plan: RunPlan,
    runner: Any,
    state: LoopState,
    data: PyTree,
    start: int,
    checkpointer: Checkpointer | None,
    outputs: Outputs,
    *,
    evaluate: Evaluate | None = None,
    interrupts: Interrupts | None = None,
) -> Result:
    """Run the chunks: progress, metrics, evaluation, checkpoints between them.

    Stops at a non-finite step (unless skipped) and, when a signal asked for it, after the
    chunk that was running, saving a checkpoint at that step.
    """
    delay = float(os.environ.get(CHUNK_DELAY_ENV, "0") or 0)
    metadata = checkpoint_metadata(options, plan)
    steps_per_epoch = plan.steps_per_epoch
    losses, saved = [], []
    skipped = skipped_at_start = int(distributed.to_host(state.skipped))
    bad_step, timed_steps, timed_seconds = None, 0, 0.0
    evaluation = None
    last_finite = True
    began = time.perf_counter()

    def stop_requested() -> bool:
        return interrupts is not None and interrupts.received is not None

    progress, task = progress_bar(
        options.progress and outputs.enabled, f"train {options.experiment}", options.steps, start
    )
    with progress:
        tick = time.perf_counter()
        chunks = run_chunks(
            runner,
            state,
            data.train,
            options.lr,
            start=start,
            stop=options.steps,
            chunk_size=plan.chunk_size,
            to_host=distributed.to_host,
        )
        for chunk in chunks if not stop_requested() else ():
            seconds, tick = time.perf_counter() - tick, time.perf_counter()
            if chunk.start > start:  # the first chunk's time includes compiling
                timed_steps, timed_seconds = (
                    timed_steps + len(chunk.losses),
                    timed_seconds + seconds,
                )
            at_epoch_end = chunk.bad_step < 0 and chunk.stop % steps_per_epoch == 0
            if evaluate is not None and at_epoch_end:
                values = distributed.to_host(evaluate(chunk.state.train.params, data))
                evaluation = {name: float(value) for name, value in values.items()}
            outputs.log(
                chunk.start,
                chunk.losses,
                chunk.finite,
                bad_step=chunk.bad_step,
                skip_nonfinite=options.skip_nonfinite,
                skipped_before=skipped,
                evaluation=evaluation if at_epoch_end else None,
            )
            skipped, state = chunk.skipped, chunk.state
            last_finite = bool(chunk.finite[-1])
            if chunk.bad_step >= 0:
                bad_step = chunk.bad_step
                losses.append(chunk.losses[: bad_step - chunk.start + 1])
                break
            losses.append(chunk.losses)
            if checkpointer is not None and (
                chunk.stop % plan.every == 0 or chunk.stop == options.steps
            ):
                saved.append(checkpointer.save(state, metadata | {"skipped": skipped}))
            progress.update(
                task,
                completed=chunk.stop,
                loss=f"{chunk.losses[-1]:.6g}",
                rate=f"{len(chunk.losses) / max(seconds, 1e-9):,.0f}",
                evaluation=format_evaluation(evaluation),
            )
            if stop_requested():
                break
            if delay:
                time.sleep(delay)
            tick = time.perf_counter()
    end = bad_step if bad_step is not None else int(distributed.to_host(state.train.step))
    status = "completed" if bad_step is None else "nonfinite"
    if bad_step is None and end < options.steps and stop_requested():
        status = "interrupted"
        # Resuming from here must not redo (or lose) the steps since the last checkpoint.
        if checkpointer is not None and checkpointer.latest_step() != end:
            saved.append(checkpointer.save(state, metadata | {"skipped": skipped}))
    elif bad_step is None and end > start and skipped - skipped_at_start == end - start:
        status = "all_steps_skipped"  # only --skip-nonfinite counts skipped steps
    elif bad_step is None and end > start and not last_finite:
        # The final parameters gave the last step a non-finite loss or gradient: whatever was
        # trained before, the run did not end with a usable model.
        status = "ended_nonfinite"
    return Result(
        status=status,
        params=distributed.to_host(state.train.params),
        losses=np.concatenate(losses) if losses else np.zeros((0,)),
        start_step=start,
        end_step=end,
        bad_step=bad_step,
        skipped=skipped,
        compilations=runner._cache_size(),
        checkpoints=saved,
        latest_checkpoint=saved[-1] if saved else None,
        seconds=time.perf_counter() - began,
        steps_per_second=timed_steps / timed_seconds if timed_seconds else None,
        evaluation=evaluation,
        signal=interrupts.received if status == "interrupted" and interrupts else None,
    )


def _result_json(result: Result) -> dict[str, Any]:
    return {
        "status": result.status,
        "start_step": result.start_step,
        "end_step": result.end_step,
        "bad_step": result.bad_step,
        "skipped_nonfinite": result.skipped,
        "final_loss": result.final_loss,
        "final_loss_kind": result.final_loss_kind,
        # The epoch (for "epoch_mean") or step (for "step") the final loss describes.
        "final_loss_at": result.final_loss_at,
        "eval": result.evaluation,
        "signal": result.signal,
        "compilations": result.compilations,
        "compilation_cache": compile_cache.stats().as_dict(),
        "checkpoints_saved": result.checkpoints,
        "latest_checkpoint": result.latest_checkpoint,
        "seconds": result.seconds,
        "steps_per_second": result.steps_per_second,
    }
