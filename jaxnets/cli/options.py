"""``jaxnets`` arguments: the parser, the resolved :class:`Options`, and what a resume may change.

Nothing here imports JAX, so ``jaxnets --help``, ``jaxnets train --help`` and ``jaxnets list``
answer at Python's start-up speed. The argument types below repeat the few checks of
``jaxnets.validate`` that the parser needs, because that module imports ``jax.numpy``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, NoReturn

from jaxnets.experiments import catalog

__all__ = [
    "DEFINING",
    "EXIT_INTERRUPTED",
    "EXIT_NONFINITE",
    "EXIT_USAGE",
    "MAX_SEED",
    "Options",
    "UsageError",
    "build_parser",
    "defining_difference",
    "resolve",
]

EXIT_USAGE, EXIT_NONFINITE = 2, 3
# 128 + the signal number, what a shell reports for a process its signal ended.
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}
MAX_SEED = 2**63 - 1
PRECISIONS = ("default", "high", "highest")
DTYPES = ("float32", "float64")
MAX_CHUNK = 1000
PROGRESS_UPDATES = 50
# The options that decide which data a run sees and which model it trains (with the device
# count, compared where it is known): a resume with other values would be another run.
DEFINING = {
    "experiment": "EXPERIMENT",
    "seed": "--seed",
    "batch_size": "--batch-size",
    "drop_last": "--drop-last",
    "dtype": "--dtype",
    "augment": "--augment",
}


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
    augment: bool = False
    checkpoint_every: int | None = None
    keep_checkpoints: int = 3
    resume: bool = False
    skip_nonfinite: bool = False
    profile: bool = False
    tensorboard: bool = False
    progress: bool = True
    cache: bool = True

    def command(self) -> list[str]:
        """The ``jaxnets train`` arguments that rerun this configuration from scratch.

        >>> Options("mlp", steps=5, lr=0.5, batch_size=8, out="runs/x").command()[2:6]
        ['mlp', '--steps', '5', '--lr']
        """
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
            "--augment": self.augment,
            "--skip-nonfinite": self.skip_nonfinite,
            "--tensorboard": self.tensorboard,
        }
        return argv + [flag for flag, on in flags.items() if on]


# ----------------------------------------------------------------------------- argument types


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1.

    >>> positive_int("3")
    3
    >>> try:
    ...     positive_int("0")
    ... except argparse.ArgumentTypeError as err:
    ...     print(err)
    expected an integer >= 1, got 0
    """
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 0.

    >>> nonnegative_int("0")
    0
    """
    return _int_at_least(text, 0)


def learning_rate(text: str) -> float:
    """An ``argparse`` type: a finite learning rate > 0.

    >>> learning_rate("1e-3")
    0.001
    >>> try:
    ...     learning_rate("inf")
    ... except argparse.ArgumentTypeError as err:
    ...     print(err)
    --lr must be finite and > 0, got 'inf'
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr must be a real number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0.0:
        raise argparse.ArgumentTypeError(f"--lr must be finite and > 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """An ``argparse`` type: a seed ``jax.random.key`` accepts, 0 to 2**63 - 1.

    >>> seed("9223372036854775807") == MAX_SEED
    True
    >>> try:
    ...     seed("9223372036854775808")
    ... except argparse.ArgumentTypeError as err:
    ...     print(err)
    expected an integer from 0 to 2**63 - 1, got 9223372036854775808
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to 2**63 - 1, got {text!r}"
        ) from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**63 - 1, got {value}")
    return value


def process_id(text: str) -> int:
    """An ``argparse`` type: a process index, an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


# ----------------------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """``argparse`` with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxnets`` argument parser (``list`` and ``train`` subcommands).

    >>> build_parser().parse_args(["train", "mlp", "--steps", "5"]).steps
    5
    """
    parser = _Parser(
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
        "take the experiment's defaults, or with --resume the run's stored values; a resume "
        "refuses other values of the options that define the data and model (EXPERIMENT, "
        "--seed, --batch-size, --drop-last, --augment, --dtype, --devices). Exit codes: 0 "
        "done; 2 bad input (file-system problems and a run directory in use included); 3 "
        "stopped at a non-finite loss, or every step skipped; 130/143 interrupted by "
        "SIGINT/SIGTERM after saving.",
    )
    add = train_parser.add_argument
    add("experiment", help="which experiment (see `jaxnets list`)")
    span = train_parser.add_mutually_exclusive_group()
    span.add_argument(
        "--steps", type=positive_int, help="optimiser steps to run in total (default: tutorial's)"
    )
    span.add_argument(
        "--epochs",
        type=positive_int,
        help="passes over the data instead of --steps (linear: 3 steps per epoch; digits and "
        "module_regression: one per batch of their data loader; others 1)",
    )
    add("--lr", type=learning_rate, help="learning rate, finite and > 0 (default: tutorial's)")
    add(
        "--batch-size",
        type=positive_int,
        help="examples per step (defaults: "
        + ", ".join(
            f"{entry.name} {entry.batch_size}"
            for entry in catalog.CATALOG.values()
            if entry.batch_size is not None
        )
        + "; the others have none)",
    )
    add(
        "--drop-last",
        action="store_true",
        help="data-loader experiments: drop each epoch's last batch when it is smaller than "
        "--batch-size (torch's DataLoader drop_last; by default it is trained on)",
    )
    add(
        "--augment",
        action="store_true",
        help="augment each training batch inside the compiled step, with a key per step from "
        "the run's data key (digits: random shifts of up to one pixel, RandomCrop(8, padding=1))",
    )
    add(
        "--seed",
        type=seed,
        help="jax.random seed for parameters and data, 0 to 2**63-1 (default 0)",
    )
    add(
        "--dtype",
        choices=DTYPES,
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
        type=positive_int,
        help="data-parallel over this many devices, the batch split evenly (default: all)",
    )
    add(
        "--out",
        type=Path,
        help="output directory (default runs/EXPERIMENT), locked by the run that writes it",
    )
    add(
        "--chunk-size",
        type=positive_int,
        help="steps per compiled chunk; progress and checkpoints happen between chunks "
        f"(default: about {PROGRESS_UPDATES} chunks per run, at most {MAX_CHUNK} steps, ending "
        "on epoch ends)",
    )
    add(
        "--checkpoint-every",
        type=positive_int,
        help="save an orbax checkpoint every N steps (rounded up to whole chunks), at the end "
        "and when interrupted",
    )
    add("--keep-checkpoints", type=positive_int, help="newest checkpoints kept (default 3)")
    add(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in OUT/checkpoints that restores",
    )
    add(
        "--skip-nonfinite",
        action="store_true",
        help="skip (do not apply) steps with a non-finite loss or gradient and count them, "
        "instead of stopping at the first",
    )
    add(
        "--no-cache",
        action="store_true",
        help="compile from scratch: do not read or write the persistent compilation cache "
        "(also JAXNETS_NO_CACHE=1; result.json reports the cache's hits)",
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
    add("--num-processes", type=positive_int, help="multi-process: number of processes")
    add("--process-id", type=process_id, help="multi-process: this process's index")
    return parser


# ----------------------------------------------------------------------------- resolving


def output_directory(args: argparse.Namespace) -> Path:
    """The output directory ``args`` name (``runs/EXPERIMENT`` by default)."""
    return args.out or Path("runs") / args.experiment


def read_config(out: Path) -> dict[str, Any] | None:
    """``OUT/config.json``, or ``None`` when it is missing or not a readable run configuration."""
    try:
        config = json.loads((out / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("options"), dict):
        return None
    return config


def latest_options(config: dict[str, Any]) -> dict[str, Any]:
    """The options the newest invocation recorded in ``config`` ran with."""
    invocations = config.get("invocations") or []
    if invocations and isinstance(invocations[-1].get("options"), dict):
        return invocations[-1]["options"]
    return config["options"]


def _stored_options(out: Path) -> dict[str, Any]:
    """The options a resumed run continues with: ``config.json``'s, else the checkpoint's."""
    config = read_config(out)
    if config is not None:
        return latest_options(config)
    directory = out / "checkpoints"
    if not directory.is_dir():
        raise UsageError(f"--resume: no checkpoint in {directory}")
    from jaxnets.checkpoint import newest_metadata  # orbax and JAX: only this rare path

    found = newest_metadata(directory)
    if found is None:
        raise UsageError(f"--resume: no readable checkpoint in {directory}")
    step, metadata = found
    options = metadata.get("options")
    if not isinstance(options, dict) or not set(DEFINING) <= set(options):
        # Without the data and model options a resume would silently use defaults instead.
        raise UsageError(
            f"--resume: {out / 'config.json'} is missing or unreadable and the checkpoint at "
            f"step {step} does not record the run's options; start a new run in another --out"
        )
    return options


def _describe(name: str, value: Any) -> str:
    if name in ("drop_last", "augment"):
        return DEFINING[name] if value else f"no {DEFINING[name]}"
    if name == "experiment":
        return repr(value)
    return f"{DEFINING[name]} {value}"


def defining_difference(run: dict[str, Any], stored: dict[str, Any], what: str) -> str | None:
    """The first data- or model-defining option in which ``run`` differs from ``stored``.

    Args:
      run: the resumed run's options (``dataclasses.asdict`` of :class:`Options`).
      stored: the options the run was started with; keys it lacks are not compared.
      what: whose ``stored`` is, for the message (``"the run's"``).

    Returns:
      A one-line explanation, or ``None`` when they agree.

    >>> print(defining_difference({"batch_size": 8}, {"batch_size": 2}, "the run's")[:40])
    --batch-size 8 differs from the run's 2;
    >>> print(defining_difference({"drop_last": True}, {"drop_last": False}, "the run's")[:51])
    --drop-last differs from the run's (no --drop-last)
    """
    for name in DEFINING:
        if name in stored and name in run and run[name] != stored[name]:
            if name in ("drop_last", "augment", "experiment"):
                was = f"({_describe(name, stored[name])})"
            else:
                was = str(stored[name])
            return (
                f"{_describe(name, run[name])} differs from {what} {was}; the options that "
                "define the data and the model cannot change on resume (leave them out to keep "
                "the run's)"
            )
    return None


def resolve(args: argparse.Namespace, defaults: catalog.Defaults | None = None) -> Options:
    """Turn parsed arguments into :class:`Options`: defaults, the stored run on resume, checks.

    Args:
      args: from :func:`build_parser`'s ``train`` subcommand.
      defaults: the experiment's name, tutorial defaults and whether it reads a loader
        (default: its :mod:`jaxnets.experiments.catalog` entry).

    Returns:
      The resolved options; with ``--epochs``, ``steps`` is ``None`` until the run knows the
      steps per epoch.

    Raises:
      UsageError: an option the experiment does not take, an ``--out`` that is not a directory,
        or a resume that would change the run.
    """
    if defaults is None:
        try:
            defaults = catalog.get(args.experiment)
        except KeyError as err:
            raise UsageError(err.args[0]) from None
    out = output_directory(args)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a directory")
    stored: dict[str, Any] = {}
    if args.resume:
        stored = _stored_options(out)
        if stored.get("experiment") != defaults.name:
            raise UsageError(
                f"--resume: {out} holds a run of {stored.get('experiment')!r}, "
                f"not {defaults.name!r}"
            )
    if args.batch_size is not None and defaults.batch_size is None:
        raise UsageError(f"--batch-size: {defaults.name} has a fixed dataset and no batch size")
    if args.drop_last and not defaults.loader:
        raise UsageError(f"--drop-last: {defaults.name} reads no data loader")

    def pick(name: str, default: Any) -> Any:
        given = getattr(args, name)
        return given if given is not None else stored.get(name, default)

    # A resume continues the run's span unless a new one is given.
    if args.steps is not None or args.epochs is not None:
        steps, epochs = args.steps, args.epochs
    elif stored:
        steps, epochs = stored.get("steps"), stored.get("epochs")
    else:
        steps, epochs = defaults.steps, defaults.epochs
    if epochs is not None:
        steps = None
    options = Options(
        experiment=defaults.name,
        steps=steps,
        epochs=epochs,
        lr=pick("lr", defaults.learning_rate),
        batch_size=pick("batch_size", defaults.batch_size),
        seed=pick("seed", 0),
        dtype=pick("dtype", "float32"),
        precision=pick("precision", "default"),
        devices=pick("devices", None),
        out=str(out),
        chunk_size=pick("chunk_size", None),
        drop_last=args.drop_last or stored.get("drop_last", False),
        augment=args.augment or stored.get("augment", False),
        checkpoint_every=pick("checkpoint_every", None),
        keep_checkpoints=pick("keep_checkpoints", 3),
        resume=args.resume,
        skip_nonfinite=args.skip_nonfinite or stored.get("skip_nonfinite", False),
        profile=args.profile,
        tensorboard=args.tensorboard,
        progress=not args.no_progress,
        cache=not args.no_cache,
    )
    if stored:
        problem = defining_difference(dataclasses.asdict(options), stored, "the run's")
        if problem:
            raise UsageError(f"--resume: {problem}")
    return options
