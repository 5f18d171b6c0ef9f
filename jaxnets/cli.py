"""``jaxnets``: list the trainable experiments and train one, with checkpoints and progress.

``jaxnets train mlp --steps 500 --out runs/mlp`` runs ``make_train_step(loss_fn, sgd(lr))`` with
the experiment module's own ``loss_fn`` (the step ``python -m parity`` checks against PyTorch) in
chunks: one XLA program per chunk length, a progress bar and, every ``--checkpoint-every`` steps,
an orbax checkpoint between chunks. ``--out`` receives ``config.json`` (everything needed to rerun),
``metrics.jsonl``, ``loss.png``, ``params.npz`` and ``result.json``.

Exit codes: 0 done; 2 bad input (reported before anything is compiled); 3 stopped at a
non-finite loss (the step is named, the last good checkpoint kept).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxnets import distributed, validate
from jaxnets.checkpoint import Checkpointer, param_specs, spec_mismatches
from jaxnets.experiments import _script, registry
from jaxnets.train import (
    Batches,
    Chunk,
    LoopState,
    full_batch,
    init_loop_state,
    make_chunk_runner,
    run_chunks,
)

__all__ = [
    "EXIT_NONFINITE",
    "EXIT_USAGE",
    "Options",
    "Result",
    "UsageError",
    "initial_values",
    "main",
    "train",
]

EXIT_USAGE, EXIT_NONFINITE = 2, 3
PRECISIONS = ("default", "high", "highest")
MAX_CHUNK = 1000
PROGRESS_UPDATES = 50
# Seconds to sleep after every chunk: lets tests kill a run between checkpoints. Not a user option.
CHUNK_DELAY_ENV = "JAXNETS_CHUNK_DELAY"
PyTree = Any


class UsageError(Exception):
    """Bad input, found before compiling; the command exits with code 2 and this message."""


@dataclasses.dataclass(frozen=True)
class Options:
    """A fully resolved ``jaxnets train`` invocation (what ``config.json`` stores)."""

    experiment: str
    steps: int | None
    lr: float
    batch_size: int | None
    epochs: int | None = None
    seed: int = 0
    dtype: str = "float32"
    precision: str = "default"
    devices: int | None = None
    out: str = ""
    chunk_size: int | None = None
    drop_last: bool = False
    checkpoint_every: int | None = None
    keep_checkpoints: int = 3
    resume: bool = False
    skip_nonfinite: bool = False
    profile: bool = False
    tensorboard: bool = False
    progress: bool = True

    def command(self) -> list[str]:
        """The ``jaxnets train`` arguments that rerun this configuration from scratch."""
        span = ["--steps", self.steps] if self.epochs is None else ["--epochs", self.epochs]
        argv = ["jaxnets", "train", self.experiment, *map(str, span)]
        argv += ["--lr", repr(self.lr), "--seed", str(self.seed), "--dtype", self.dtype]
        argv += ["--precision", self.precision, "--out", self.out]
        optional = {
            "--batch-size": self.batch_size,
            "--devices": self.devices,
            "--chunk-size": self.chunk_size,
            "--checkpoint-every": self.checkpoint_every,
        }
        argv += [
            x for flag, value in optional.items() if value is not None for x in (flag, str(value))
        ]
        flags = {
            "--drop-last": self.drop_last,
            "--skip-nonfinite": self.skip_nonfinite,
            "--tensorboard": self.tensorboard,
        }
        return argv + [flag for flag, on in flags.items() if on]


@dataclasses.dataclass
class Result:
    """What a run did: final host params, this invocation's losses, and how it ended."""

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


# ----------------------------------------------------------------------------- argument parsing


def _learning_rate(text: str) -> float:
    try:
        return validate.learning_rate(text, "--lr")
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxnets`` argument parser (``list`` and ``train`` subcommands)."""
    parser = argparse.ArgumentParser(
        prog="jaxnets",
        description="Train the jaxnets experiments: jit-compiled chunks of lax.scan, orbax "
        "checkpoints, data parallelism over devices.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the trainable experiments, one per line")
    train_parser = commands.add_parser(
        "train",
        help="train one experiment",
        description="Train EXPERIMENT with its tutorial's loss and optimiser. Options left out "
        "take the experiment's defaults, or with --resume the values in OUT/config.json. "
        "Exit codes: 0 done, 2 bad input, 3 stopped at a non-finite loss.",
    )
    add = train_parser.add_argument
    add("experiment", help="which experiment (see `jaxnets list`)")
    span = train_parser.add_mutually_exclusive_group()
    span.add_argument(
        "--steps",
        type=validate.positive_int_argument,
        help="optimiser steps to run in total (default: tutorial's)",
    )
    span.add_argument(
        "--epochs",
        type=validate.positive_int_argument,
        help="passes over the data instead of --steps (linear: 3 steps per epoch; digits and "
        "module_regression: one per batch of their data loader; others 1)",
    )
    add("--lr", type=_learning_rate, help="learning rate, finite and > 0 (default: tutorial's)")
    add(
        "--batch-size",
        type=validate.positive_int_argument,
        help="examples per step (mlp: 64, cnn: 1, custom: 32, module_regression: 10, digits: 32; "
        "linear has none)",
    )
    add(
        "--drop-last",
        action="store_true",
        help="data-loader experiments: drop each epoch's last batch when it is smaller than "
        "--batch-size (torch's DataLoader drop_last; by default it is trained on)",
    )
    add("--seed", type=int, help="jax.random seed for parameters and data (default 0)")
    add(
        "--dtype",
        choices=("float32", "float64"),
        help="parameter and data dtype; float64 enables jax_enable_x64 (default float32)",
    )
    add(
        "--precision",
        choices=PRECISIONS,
        help="jax_default_matmul_precision: 'default' lets GPUs use TF32/bf16 passes, 'highest' "
        "is full float32 (default: default)",
    )
    add(
        "--devices",
        type=validate.positive_int_argument,
        help="data-parallel over this many devices, the batch split evenly (default: all)",
    )
    add("--out", type=Path, help="output directory (default runs/EXPERIMENT)")
    add(
        "--chunk-size",
        type=validate.positive_int_argument,
        help="steps per compiled chunk; progress and checkpoints happen between chunks "
        f"(default: about {PROGRESS_UPDATES} chunks per run, at most {MAX_CHUNK} steps)",
    )
    add(
        "--checkpoint-every",
        type=validate.positive_int_argument,
        help="save an orbax checkpoint every N steps (rounded up to whole chunks) and at the end",
    )
    add(
        "--keep-checkpoints",
        type=validate.positive_int_argument,
        help="newest checkpoints kept (default 3)",
    )
    add(
        "--resume",
        action="store_true",
        help="continue from the newest complete checkpoint in OUT/checkpoints",
    )
    add(
        "--skip-nonfinite",
        action="store_true",
        help="skip (do not apply) steps with a non-finite loss or gradient and count them, "
        "instead of stopping at the first",
    )
    add("--profile", action="store_true", help="record a jax.profiler trace in OUT/profile")
    add(
        "--tensorboard",
        action="store_true",
        help="also log the loss to OUT/tensorboard (needs `pip install jaxnets[tensorboard]`)",
    )
    add("--no-progress", action="store_true", help="no progress bar")
    add(
        "--coordinator-address",
        help="multi-process: host:port of process 0, for jax.distributed.initialize",
    )
    add(
        "--num-processes",
        type=validate.positive_int_argument,
        help="multi-process: number of processes",
    )
    add("--process-id", type=int, help="multi-process: this process's index")
    return parser


def _stored_options(out: Path) -> dict[str, Any]:
    path = out / "config.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["options"]


def resolve(args: argparse.Namespace) -> Options:
    """Turn parsed arguments into :class:`Options`: defaults, stored config on resume, checks.

    Args:
      args: from :func:`build_parser`'s ``train`` subcommand.

    Returns:
      The resolved options; with ``--epochs``, ``steps`` is ``None`` until :func:`train` knows
      the steps per epoch.

    Raises:
      UsageError: unknown experiment or an option the experiment does not take.
    """
    try:
        experiment = registry.get(args.experiment)
    except KeyError as err:
        raise UsageError(err.args[0]) from None
    out = args.out or Path("runs") / experiment.name
    stored = _stored_options(out) if args.resume else {}
    if stored and stored.get("experiment") != experiment.name:
        raise UsageError(
            f"--resume: {out} holds a run of {stored.get('experiment')!r}, not {experiment.name!r}"
        )
    if args.batch_size is not None and experiment.default_batch_size is None:
        raise UsageError(f"--batch-size: {experiment.name} has a fixed dataset and no batch size")
    if args.drop_last and not experiment.loader:
        raise UsageError(f"--drop-last: {experiment.name} reads no data loader")

    def pick(name: str, default: Any) -> Any:
        given = getattr(args, name)
        return given if given is not None else stored.get(name, default)

    steps, epochs = pick("steps", experiment.default_steps), args.epochs
    if epochs is not None:
        steps = None
    elif steps is None:  # an experiment counted in epochs, run with its defaults
        epochs = experiment.default_epochs
    return Options(
        experiment=experiment.name,
        steps=steps,
        epochs=epochs,
        lr=pick("lr", experiment.default_lr),
        batch_size=pick("batch_size", experiment.default_batch_size),
        seed=pick("seed", 0),
        dtype=pick("dtype", "float32"),
        precision=pick("precision", "default"),
        devices=pick("devices", None),
        out=str(out),
        chunk_size=pick("chunk_size", None),
        drop_last=args.drop_last or stored.get("drop_last", False),
        checkpoint_every=pick("checkpoint_every", None),
        keep_checkpoints=pick("keep_checkpoints", 3),
        resume=args.resume,
        skip_nonfinite=args.skip_nonfinite or stored.get("skip_nonfinite", False),
        profile=args.profile,
        tensorboard=args.tensorboard,
        progress=not args.no_progress,
    )


# ----------------------------------------------------------------------------- the run


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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("jaxnets", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


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


def _chunk_plan(options: Options) -> tuple[int, int | None]:
    """(steps per chunk, checkpoint interval): the interval is a whole number of chunks."""
    chunk = options.chunk_size or min(MAX_CHUNK, max(1, -(-options.steps // PROGRESS_UPDATES)))
    every = options.checkpoint_every
    if every is None:
        return chunk, None
    chunk = min(chunk, every)
    return chunk, -(-every // chunk) * chunk


class _Outputs:
    """Everything written under ``--out`` (only by process 0 of a multi-process run)."""

    def __init__(self, out: Path, *, enabled: bool, tensorboard: bool):
        self.out, self.enabled = out, enabled
        self.metrics = out / "metrics.jsonl"
        self._writer = None
        if enabled and tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(out / "tensorboard"))

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        if self.enabled:
            _atomic_write(self.out / name, json.dumps(payload, indent=2) + "\n")

    def start_metrics(self, start_step: int) -> None:
        """Keep the lines before ``start_step`` (a resumed run rewrites what came after)."""
        if not self.enabled:
            return
        kept = []
        if start_step > 0 and self.metrics.exists():
            lines = self.metrics.read_text().splitlines()
            kept = [line for line in lines if line and json.loads(line)["step"] < start_step]
        _atomic_write(self.metrics, "".join(line + "\n" for line in kept))

    def log(self, chunk: Chunk, skip_nonfinite: bool, skipped_before: int) -> None:
        if not self.enabled:
            return
        lines, skipped = [], skipped_before
        last = chunk.bad_step if chunk.bad_step >= 0 else chunk.stop - 1
        for offset, (loss, finite) in enumerate(zip(chunk.losses, chunk.finite, strict=True)):
            step = chunk.start + offset
            if step > last:
                break
            record: dict[str, Any] = {"step": step, "loss": float(loss)}
            if not math.isfinite(record["loss"]):
                record["loss"], record["nonfinite"] = None, str(loss)
            if not finite:
                record["finite"] = False
            if skip_nonfinite:
                skipped += not finite
                record["skipped_total"] = skipped
            lines.append(json.dumps(record))
            if self._writer is not None and record["loss"] is not None:
                self._writer.add_scalar("loss", record["loss"], step)
        with self.metrics.open("a") as f:
            f.write("".join(line + "\n" for line in lines))

    def finish(self, experiment: str, params: PyTree | None) -> None:
        if not self.enabled:
            return
        if self._writer is not None:
            self._writer.close()
        records = [json.loads(line) for line in self.metrics.read_text().splitlines() if line]
        losses = [np.nan if r["loss"] is None else r["loss"] for r in records]
        if losses:
            _script.save_loss_plot(losses, self.out / "loss.png", f"{experiment}: loss", "Step")
        if params is not None:
            flat = {
                jax.tree_util.keystr(path, simple=True, separator="/") or "params": np.asarray(x)
                for path, x in jax.tree_util.tree_flatten_with_path(params)[0]
            }
            tmp = self.out / "params.tmp.npz"
            np.savez(tmp, **flat)
            os.replace(tmp, self.out / "params.npz")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _progress(enabled: bool, description: str, total: int, completed: int):
    """A rich progress bar (step, loss, steps/s) on stderr, or a no-op stand-in."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]} steps/s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    task = progress.add_task(description, total=total, completed=completed, loss="-", rate="-")
    return progress, task


class _Plan(NamedTuple):
    """What a run will do, worked out from shapes alone (nothing compiled or drawn yet)."""

    options: Options
    specs: dict[str, Any]
    mesh: Mesh | None
    batch_size: int | None
    chunk_size: int
    every: int | None
    batches: Batches


def _plan(options: Options, experiment: registry.Experiment) -> _Plan:
    """Check everything that shapes can tell: devices, batch split, steps, chunking."""
    abstract_params, abstract_data = jax.eval_shape(
        lambda key: experiment.init(key, options.batch_size, _script.DTYPES[options.dtype]),
        jax.random.key(0),
    )
    try:
        batches = experiment.batches(abstract_data, options.batch_size, options.drop_last)
    except ValueError as err:
        raise UsageError(f"--batch-size / --drop-last: {err}") from None
    if options.epochs is not None:
        options = dataclasses.replace(options, steps=options.epochs * batches.steps_per_epoch)
    step = jax.ShapeDtypeStruct((), jnp.int32)
    plans = [batches.batch_fn] + ([batches.last_batch_fn] if batches.last_batch_fn else [])
    shapes = [jax.eval_shape(fn, abstract_data, jax.random.key(0), step, step) for fn in plans]
    # One device runs the plain program: no mesh, no sharding annotations.
    mesh, batch_size = None, None
    if (options.devices or jax.device_count()) > 1:
        try:
            mesh = distributed.make_mesh(options.devices)
            batch_size = distributed.check_batch(shapes[0], mesh.size)
        except ValueError as err:
            raise UsageError(f"--devices: {err}") from None
        if len(shapes) > 1:
            try:
                distributed.check_batch(shapes[1], mesh.size)
            except ValueError as err:
                raise UsageError(
                    f"--devices: each epoch's last, partial batch: {err}; or pass --drop-last"
                ) from None
    if options.tensorboard:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise UsageError(
                "--tensorboard needs tensorboardX: pip install 'jaxnets[tensorboard]'"
            ) from None
    chunk_size, every = _chunk_plan(options)
    specs = param_specs(abstract_params)
    return _Plan(options, specs, mesh, batch_size, chunk_size, every, batches)


def initial_values(
    experiment: registry.Experiment, seed: int, batch_size: int | None, dtype: jnp.dtype
) -> tuple[PyTree, PyTree, jax.Array]:
    """The initial ``(params, data, data_key)`` of a run with ``seed``.

    ``jax.random.key(seed)`` is split once: one half draws the parameters and data, the other is
    the data key that batch plans receive.

    Args:
      experiment: the registry entry.
      seed: the run's seed.
      batch_size: passed to ``experiment.init``.
      dtype: parameter and data dtype.

    Returns:
      ``(params, data, data_key)``.
    """
    init_key, data_key = jax.random.split(jax.random.key(seed))
    # Initialisation runs once, so its compile time is all it costs: one program with LLVM's
    # optimisations off compiles 3-4x faster on CPU than the op-by-op programs of an eager
    # init (measured: mlp 11.9 s -> 3.0 s on a loaded 2-core machine).
    init = jax.jit(
        experiment.init,
        static_argnums=(1, 2),
        compiler_options={"xla_backend_optimization_level": 0},
    )
    params, data = init(init_key, batch_size, dtype)
    return params, data, data_key


def _prepare(options: Options, experiment: registry.Experiment, plan: _Plan):
    """Draw the initial params and data, check them, place them on the mesh, build the runner."""
    dtype = _script.DTYPES[options.dtype]
    params, data, data_key = initial_values(experiment, options.seed, options.batch_size, dtype)
    _check_finite(data, "data")
    _check_finite(params, "params")
    optimizer = experiment.optimizer(options.lr)
    state = init_loop_state(params, optimizer, data_key)
    shardings: dict[str, Any] = {}
    if plan.mesh is not None:
        replicated = distributed.replicated(plan.mesh)
        split = distributed.batch_sharding(plan.mesh)
        # Full-batch data is the batch and is split like it; a data set that batches are drawn
        # from is replicated, and each step's gathered batch is split by the runner.
        data_is_batch = plan.batches.batch_fn is full_batch
        data = jax.tree.map(
            lambda x: distributed.put(
                x, split if data_is_batch and np.shape(x)[:1] == (plan.batch_size,) else replicated
            ),
            data,
        )
        state = distributed.put(state, replicated)
        shardings = {"batch_sharding": split, "state_sharding": replicated}
    runner = make_chunk_runner(
        experiment.loss_fn,
        optimizer,
        plan.batches.batch_fn,
        steps_per_epoch=plan.batches.steps_per_epoch,
        last_batch_fn=plan.batches.last_batch_fn,
        skip_nonfinite=options.skip_nonfinite,
        compiler_options=dict(experiment.compiler_options),
        **shardings,
    )
    return data, state, runner


def train(options: Options, argv: Sequence[str] | None = None) -> Result:
    """Run one training job as ``options`` say; see the module docstring for the outputs.

    Args:
      options: from :func:`resolve`.
      argv: the command line, recorded in ``config.json``.

    Returns:
      The :class:`Result`; ``status`` is ``"completed"`` or ``"nonfinite"``.

    Raises:
      UsageError: bad input, before the training program is compiled.
    """
    experiment = registry.get(options.experiment)
    out = Path(options.out)
    with jax_settings(options.dtype, options.precision):
        plan = _plan(options, experiment)
        options = plan.options
        checkpointer, start = _open_checkpoints(options, out, plan)
        with checkpointer or contextlib.nullcontext():
            data, state, runner = _prepare(options, experiment, plan)
            if start:
                state = checkpointer.restore(start, state)
            out.mkdir(parents=True, exist_ok=True)
            outputs = _Outputs(
                out, enabled=jax.process_index() == 0, tensorboard=options.tensorboard
            )
            outputs.write_json("config.json", _config(options, plan, argv))
            outputs.start_metrics(start)
            profile = (
                jax.profiler.trace(str(out / "profile"))
                if options.profile
                else contextlib.nullcontext()
            )
            with profile:
                result = _loop(options, plan, runner, state, data, start, checkpointer, outputs)
            if checkpointer is not None:
                result.latest_checkpoint = checkpointer.latest_step()
        outputs.finish(experiment.name, result.params if result.status == "completed" else None)
        outputs.write_json("result.json", _result_json(result))
    return result


def _config(options: Options, plan: _Plan, argv: Sequence[str] | None) -> dict[str, Any]:
    """``config.json``: the resolved options, how to rerun them, shapes, devices, versions."""
    return {
        "experiment": options.experiment,
        # A rerun from this file starts afresh (resume) and without the profiler's overhead.
        "options": dataclasses.asdict(options) | {"resume": False, "profile": False},
        "command": options.command(),
        "argv": None if argv is None else list(argv),
        "chunk_size": plan.chunk_size,
        "checkpoint_interval": plan.every,
        "params": plan.specs,
        "devices": {
            "platform": jax.devices()[0].platform,
            "data_parallel": 1 if plan.mesh is None else plan.mesh.size,
            "processes": jax.process_count(),
        },
        "versions": _versions(),
    }


def _open_checkpoints(options: Options, out: Path, plan: _Plan) -> tuple[Checkpointer | None, int]:
    """The run's checkpointer (if any) and the step to start at; refuses unusable resumes."""
    directory = out / "checkpoints"
    if not options.resume and plan.every is None:
        return None, 0
    if options.resume and not directory.exists():
        raise UsageError(f"--resume: no checkpoint in {directory}")
    # Every process of a multi-process run must open the manager exactly once (it synchronises
    # them), so the branches below depend on nothing another process could be writing.
    checkpointer = Checkpointer(
        directory, max_to_keep=options.keep_checkpoints, create=not options.resume
    )
    try:
        step = checkpointer.latest_step()
        if not options.resume:
            if step is not None:
                raise UsageError(
                    f"{directory} already holds checkpoints; pass --resume to continue that "
                    "run or choose another --out"
                )
            return checkpointer, 0
        if step is None:
            raise UsageError(f"--resume: no complete checkpoint in {directory}")
        meta = checkpointer.metadata(step)
        if meta.get("experiment") != options.experiment:
            raise UsageError(
                f"--resume: the checkpoint in {directory} is of experiment "
                f"{meta.get('experiment')!r}, not {options.experiment!r}"
            )
        problems = spec_mismatches(plan.specs, meta.get("params", {}))
        if problems:
            raise UsageError(
                f"--resume: the checkpoint at step {step} does not fit this model: "
                + "; ".join(problems)
            )
        if step > options.steps:
            raise UsageError(
                f"--resume: the checkpoint is at step {step}, beyond --steps {options.steps}"
            )
    except BaseException:
        checkpointer.close()
        raise
    return checkpointer, step


def _loop(
    options: Options,
    plan: _Plan,
    runner: Any,
    state: LoopState,
    data: PyTree,
    start: int,
    checkpointer: Checkpointer | None,
    outputs: _Outputs,
) -> Result:
    """Run the chunks: progress, metrics, checkpoints between them; stop at a bad step."""
    delay = float(os.environ.get(CHUNK_DELAY_ENV, "0") or 0)
    metadata = {"experiment": options.experiment, "params": plan.specs}
    losses, saved = [], []
    skipped = int(distributed.to_host(state.skipped))
    bad_step, timed_steps, timed_seconds = None, 0, 0.0
    began = time.perf_counter()
    progress, task = _progress(
        options.progress and outputs.enabled, f"train {options.experiment}", options.steps, start
    )
    with progress:
        tick = time.perf_counter()
        chunks = run_chunks(
            runner,
            state,
            data,
            start=start,
            stop=options.steps,
            chunk_size=plan.chunk_size,
            to_host=distributed.to_host,
        )
        for chunk in chunks:
            seconds, tick = time.perf_counter() - tick, time.perf_counter()
            if chunk.start > start:  # the first chunk's time includes compiling
                timed_steps, timed_seconds = (
                    timed_steps + len(chunk.losses),
                    timed_seconds + seconds,
                )
            outputs.log(chunk, options.skip_nonfinite, skipped)
            skipped, state = chunk.skipped, chunk.state
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
            )
            if delay:
                time.sleep(delay)
            tick = time.perf_counter()
    end = bad_step if bad_step is not None else int(distributed.to_host(state.train.step))
    return Result(
        status="completed" if bad_step is None else "nonfinite",
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
    )


def _result_json(result: Result) -> dict[str, Any]:
    final = result.losses[-1] if result.losses.size else None
    return {
        "status": result.status,
        "start_step": result.start_step,
        "end_step": result.end_step,
        "bad_step": result.bad_step,
        "skipped_nonfinite": result.skipped,
        "final_loss": None if final is None or not np.isfinite(final) else float(final),
        "compilations": result.compilations,
        "checkpoints_saved": result.checkpoints,
        "latest_checkpoint": result.latest_checkpoint,
        "seconds": result.seconds,
        "steps_per_second": result.steps_per_second,
    }


# ----------------------------------------------------------------------------- entry point


def _list() -> None:
    entries = registry.REGISTRY.values()
    width = max(len(experiment.name) for experiment in entries)
    for experiment in entries:
        if experiment.default_steps is None:
            span = f"epochs {experiment.default_epochs}"
        else:
            span = f"steps {experiment.default_steps}"
        defaults = f"{span:<9} lr {experiment.default_lr:<6g}"
        print(f"{experiment.name:{width}} {defaults} {experiment.summary}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jaxnets`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        _list()
        return 0
    try:
        multi = (args.coordinator_address, args.num_processes, args.process_id)
        if any(value is not None for value in multi):
            if any(value is None for value in multi):
                raise UsageError(
                    "--coordinator-address, --num-processes and --process-id go together"
                )
            try:
                distributed.initialize(*multi)
            except ValueError as err:
                raise UsageError(f"--process-id: {err}") from None
        result = train(resolve(args), argv)
    except UsageError as err:
        print(f"jaxnets train: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if result.status == "nonfinite":
        kept = (
            ""
            if result.latest_checkpoint is None
            else f"; the last good checkpoint is step {result.latest_checkpoint}"
        )
        print(
            f"jaxnets train: stopped: non-finite loss or gradient at step {result.bad_step} "
            f"(loss {result.losses[-1]}){kept}",
            file=sys.stderr,
        )
        return EXIT_NONFINITE
    summary = (
        f"{result.end_step} steps, final loss {result.losses[-1]:.6g}"
        if result.losses.size
        else f"nothing to do at step {result.end_step}"
    )
    if result.skipped:
        summary += f", {result.skipped} non-finite steps skipped"
    if jax.process_index() == 0:
        print(f"{args.experiment}: {summary}; outputs in {resolve_out(args)}")
    return 0


def resolve_out(args: argparse.Namespace) -> Path:
    """The output directory ``args`` name (``runs/EXPERIMENT`` by default)."""
    return args.out or Path("runs") / args.experiment


if __name__ == "__main__":
    sys.exit(main())
