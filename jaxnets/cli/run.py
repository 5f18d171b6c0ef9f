"""The run: plan from shapes, lock the directory, restore, the chunk loop, checkpoints, signals.

Every call the command makes into the experiment registry, the experiment modules and
``jaxnets.train`` is in this module: :func:`experiment_defaults`, :func:`_plan` (with
:func:`_batch_plan` and the split advice), :func:`initial_values`, :func:`_prepare` and
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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxnets import distributed
from jaxnets.checkpoint import Checkpointer, CheckpointError, param_specs, spec_mismatches
from jaxnets.cli.options import (
    MAX_CHUNK,
    PROGRESS_UPDATES,
    Options,
    UsageError,
    defining_difference,
)
from jaxnets.cli.outputs import (
    Outputs,
    RunLock,
    config_json,
    format_evaluation,
    progress_bar,
)
from jaxnets.data import plan as plan_lib
from jaxnets.experiments import _protocol, _script, catalog, registry
from jaxnets.train import Data, LoopState, init_loop_state, make_runner, run_chunks

__all__ = ["CHUNK_DELAY_ENV", "Result", "experiment_defaults", "initial_values", "train"]

# Seconds to sleep after every chunk: lets tests act on a run between chunks. Not a user option.
CHUNK_DELAY_ENV = "JAXNETS_CHUNK_DELAY"
DAMAGED_DIR = "checkpoints-damaged"
# Batch sizes tried, nearest first, when advising on a batch the devices cannot split.
ADVICE_CANDIDATES = 12
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


def _epoch_aligned(limit: int, steps_per_epoch: int) -> int:
    """The largest chunk length <= ``limit`` whose chunk ends include every epoch end.

    >>> _epoch_aligned(9, 45), _epoch_aligned(100, 45), _epoch_aligned(4, 7), _epoch_aligned(5, 1)
    (9, 90, 1, 5)
    """
    if limit >= steps_per_epoch:
        return limit // steps_per_epoch * steps_per_epoch
    return max(d for d in range(1, limit + 1) if steps_per_epoch % d == 0)


def _chunk_plan(options: Options, steps_per_epoch: int) -> tuple[int, int | None]:
    """(steps per chunk, checkpoint interval): the interval is a whole number of chunks.

    The default chunk length also makes every epoch end a chunk end, where the experiment's
    evaluation runs.
    """
    every = options.checkpoint_every
    chunk = options.chunk_size
    if chunk is None:
        chunk = min(MAX_CHUNK, max(1, -(-options.steps // PROGRESS_UPDATES)))
        chunk = _epoch_aligned(min(chunk, every or chunk), steps_per_epoch)
    elif every is not None:
        chunk = min(chunk, every)
    if every is None:
        return chunk, None
    return chunk, -(-every // chunk) * chunk


class _Plan(NamedTuple):
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


def _batch_plan(
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
    last = [False] if plan.last_size(n) is None else [False, True]
    if plan.steps_per_epoch(n) == 1 and plan.last_size(n) is not None:
        last = [True]  # a batch larger than the data: every step is the partial one
    shapes = [
        jax.eval_shape(
            lambda train, order, is_last=is_last: plan_lib.batch(
                plan, train, order, 0, last=is_last
            ),
            abstract_data.train,
            order,
        )
        for is_last in last
    ]
    return abstract_params, abstract_data, plan, n, shapes


def _split_problem(shapes: list[PyTree], devices: int) -> str | None:
    """Why ``devices`` devices cannot split these batches evenly, or ``None`` if they can."""
    for which, shape in zip(("", "each epoch's last, partial batch: "), shapes, strict=False):
        try:
            distributed.check_batch(shape, devices)
        except ValueError as err:
            # The generic "choose a multiple or a divisor" is replaced by computed advice.
            return which + str(err).split("; choose ")[0]
    return None


def _split_advice(experiment: Experiment, options: Options, devices: int) -> list[str]:
    """Option changes that make every batch split evenly, each verified on the real plan.

    Tried: the batch sizes nearest the current one that are multiples of ``devices`` (two at
    most), with the current ``--drop-last`` and, for loaders, with it on; then the largest device
    count below ``devices`` that works (1 always does: it runs the plain program).
    """

    def works(batch_size: int | None, drop_last: bool, count: int) -> bool:
        try:
            shapes = _batch_plan(experiment, batch_size, drop_last, options.dtype)[4]
        except ValueError:
            return False
        return count == 1 or _split_problem(shapes, count) is None

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


def _plan(options: Options, experiment: Experiment) -> _Plan:
    """Check everything that shapes can tell: devices, batch split, steps, chunking."""
    try:
        abstract_params, _, batch_plan, n, shapes = _batch_plan(
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
        problem = _split_problem(shapes, mesh.size)
        if problem is not None:
            if "has no batch axis" not in problem:
                advice = _split_advice(experiment, options, mesh.size)
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
    chunk_size, every = _chunk_plan(options, steps_per_epoch)
    specs = param_specs(abstract_params)
    return _Plan(options, specs, mesh, batch_size, chunk_size, every, batch_plan, n)


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


def _prepare(options: Options, experiment: Experiment, plan: _Plan):
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
        **shardings,
    )
    return data, state, runner


# ----------------------------------------------------------------------------- checkpoints


def _checkpoint_metadata(options: Options, plan: _Plan) -> dict[str, Any]:
    """What a checkpoint records besides the state: enough to check, or rebuild, the run."""
    return {
        "experiment": options.experiment,
        "params": plan.specs,
        "options": dataclasses.asdict(options),
        "data_parallel": plan.data_parallel,
    }


def _check_checkpoint(
    metadata: dict[str, Any], step: int, options: Options, plan: _Plan, out: Path
) -> None:
    """Refuse a checkpoint of another experiment, model, data or device split."""
    if metadata.get("experiment") != options.experiment:
        raise UsageError(
            f"--resume: {out} holds a run of {metadata.get('experiment')!r}, "
            f"not {options.experiment!r}"
        )
    problems = spec_mismatches(plan.specs, metadata.get("params", {}))
    if problems:
        raise UsageError(
            f"--resume: the checkpoint at step {step} does not fit this model: "
            + "; ".join(problems)
        )
    stored = metadata.get("options")
    if isinstance(stored, dict):
        problem = defining_difference(dataclasses.asdict(options), stored, "the run's")
        if problem:
            raise UsageError(f"--resume: {problem}")
    split = metadata.get("data_parallel")
    if split is not None and split != plan.data_parallel:
        raise UsageError(
            f"--resume: --devices {plan.data_parallel} differs from the run's {split} (its "
            f"batches were split over {split} devices; another split sums gradients in another "
            f"order); pass --devices {split}"
        )


class _Candidate(NamedTuple):
    step: int
    metadata: dict[str, Any] | None
    error: CheckpointError | None


def _open_checkpoints(
    options: Options, out: Path, plan: _Plan
) -> tuple[Checkpointer | None, list[_Candidate]]:
    """The run's checkpointer (if any) and, on resume, its checkpoints newest first.

    The newest whose metadata reads is checked against the run here, before anything is
    compiled; older ones are checked only if the run falls back to them.
    """
    directory = out / "checkpoints"
    if not options.resume and plan.every is None:
        return None, []
    if options.resume and not directory.exists():
        raise UsageError(f"--resume: no checkpoint in {directory}")
    # Every process of a multi-process run must open the manager exactly once (it synchronises
    # them), so the branches below depend on nothing another process could be writing.
    checkpointer = Checkpointer(
        directory, max_to_keep=options.keep_checkpoints, create=not options.resume
    )
    try:
        steps = checkpointer.steps()
        if not options.resume:
            if steps:
                raise UsageError(
                    f"{directory} already holds checkpoints; pass --resume to continue that "
                    "run or choose another --out"
                )
            return checkpointer, []
        if not steps:
            raise UsageError(f"--resume: no complete checkpoint in {directory}")
        candidates = []
        for step in reversed(steps):
            try:
                candidates.append(_Candidate(step, checkpointer.metadata(step), None))
            except CheckpointError as err:
                candidates.append(_Candidate(step, None, err))
        readable = [c for c in candidates if c.metadata is not None]
        if readable:
            newest = readable[0]
            _check_checkpoint(newest.metadata, newest.step, options, plan, out)
            if newest.step > options.steps:
                raise UsageError(
                    f"--resume: the checkpoint is at step {newest.step}, beyond --steps "
                    f"{options.steps}"
                )
    except BaseException:
        checkpointer.close()
        raise
    return checkpointer, candidates


def _restore(
    checkpointer: Checkpointer,
    candidates: list[_Candidate],
    like: LoopState,
    options: Options,
    plan: _Plan,
    out: Path,
) -> tuple[int, LoopState]:
    """Restore the newest checkpoint that reads; set damaged newer ones aside, saying so."""
    damaged = []
    for candidate in candidates:
        error = candidate.error
        if candidate.metadata is not None:
            _check_checkpoint(candidate.metadata, candidate.step, options, plan, out)
            try:
                state = checkpointer.restore(candidate.step, like)
            except CheckpointError as err:
                error = err
            else:
                for step, reason in damaged:
                    moved = checkpointer.set_aside(step, out / DAMAGED_DIR)
                    print(
                        f"jaxnets train: warning: the checkpoint at step {step} is damaged "
                        f"({reason}); moved it to {moved} and resumed from step "
                        f"{candidate.step}",
                        file=sys.stderr,
                    )
                return candidate.step, state
        damaged.append((candidate.step, error))
    steps = ", ".join(str(step) for step, _ in damaged)
    raise UsageError(
        f"--resume: no checkpoint in {checkpointer.directory} restores (steps {steps}; the "
        f"newest: {damaged[0][1]}); start a new run in another --out"
    )


# ----------------------------------------------------------------------------- signals


class _Interrupts:
    """The first SIGINT or SIGTERM asks the run to stop after its chunk; a second one exits.

    Python runs signal handlers in the main thread between bytecodes, which a chunk running in
    XLA does not reach, so a watcher thread reads the signals from the wakeup fd that Python's
    C-level handler writes at once: it records the first and ends the process on the second.

    Args:
      enabled: install the handlers (not off the main thread, where Python cannot, nor in a
        multi-process run, whose processes would stop at different chunks and wait forever on
        each other's checkpoint).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: str | None = None

    def __enter__(self) -> _Interrupts:
        if not self.enabled:
            return self
        read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, _noop) for signum in self.SIGNALS}
        self._watcher = threading.Thread(target=self._watch, args=(read_fd,), daemon=True)
        self._watcher.start()
        return self

    def _watch(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as signals:
            while byte := signals.read(1):
                if byte == b"\0":  # __exit__'s wake-up: signal numbers start at 1
                    return
                name = signal.Signals(byte[0]).name
                if self.received is None:
                    self.received = name
                    print(
                        f"\njaxnets train: {name}: stopping after this chunk, saving and writing "
                        "the outputs; send it again to abort at once",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    print(f"\njaxnets train: {name} again: aborted", file=sys.stderr, flush=True)
                    os._exit(128 + byte[0])

    def __exit__(self, *exc_info: object) -> None:
        if not self.enabled:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.write(self._write_fd, b"\0")
        self._watcher.join()
        os.close(self._write_fd)


def _noop(signum: int, frame: object) -> None:
    """A Python-level handler, so that Python's C handler writes the signal to the wakeup fd."""


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
    try:
        experiment = registry.get(options.experiment)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    out = Path(options.out)
    with jax_settings(options.dtype, options.precision):
        plan = _plan(options, experiment)
        options = plan.options
        primary = jax.process_index() == 0
        with (
            RunLock(out, enabled=primary),
            _Interrupts(enabled=jax.process_count() == 1) as interrupts,
        ):
            return _run(options, experiment, plan, out, primary, interrupts, argv)


def _run(
    options: Options,
    experiment: Experiment,
    plan: _Plan,
    out: Path,
    primary: bool,
    interrupts: _Interrupts,
    argv: Sequence[str] | None,
) -> Result:
    """The locked part of :func:`train`."""
    checkpointer, candidates = _open_checkpoints(options, out, plan)
    with checkpointer or contextlib.nullcontext():
        data, state, runner = _prepare(options, experiment, plan)
        start = 0
        if options.resume:
            start, state = _restore(checkpointer, candidates, state, options, plan, out)
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
    plan: _Plan,
    runner: Any,
    state: LoopState,
    data: PyTree,
    start: int,
    checkpointer: Checkpointer | None,
    outputs: Outputs,
    *,
    evaluate: Evaluate | None = None,
    interrupts: _Interrupts | None = None,
) -> Result:
    """Run the chunks: progress, metrics, evaluation, checkpoints between them.

    Stops at a non-finite step (unless skipped) and, when a signal asked for it, after the
    chunk that was running, saving a checkpoint at that step.
    """
    delay = float(os.environ.get(CHUNK_DELAY_ENV, "0") or 0)
    metadata = _checkpoint_metadata(options, plan)
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
        "checkpoints_saved": result.checkpoints,
        "latest_checkpoint": result.latest_checkpoint,
        "seconds": result.seconds,
        "steps_per_second": result.steps_per_second,
    }
