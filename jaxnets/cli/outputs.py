"""What a run writes under ``--out``, and the lock that makes the directory one run's.

``config.json`` (the original run's options and command, then one entry per invocation),
``metrics.jsonl`` (one record per step), ``result.json``, ``params.npz``, ``state_dict.npz``
(the same parameters as a torch ``state_dict``), ``loss.png``, the progress bar and
TensorBoard. Every JSON and ``.npz`` file is replaced atomically, so a reader (or a kill) never
sees half of one.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxnets.cli.options import Options, UsageError, read_config
from jaxnets.experiments import _script

__all__ = [
    "Outputs",
    "RunLock",
    "atomic_write",
    "config_json",
    "progress_bar",
    "torch_state_dict",
    "versions",
]

PyTree = Any
LOCK_NAME = ".lock"


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename (readers see the old or the new file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to ``path`` in one rename; the temporary name keeps ``.npz`` so that NumPy
    does not append another."""
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def torch_state_dict(
    params: PyTree, *, model: type | None = None, torch_name: str | None = None
) -> dict[str, np.ndarray] | None:
    """An experiment's parameters as the torch ``state_dict`` of its PyTorch original.

    With ``model`` (the experiment's NNX ``MODEL``) the parameters are merged into the module's
    abstract graph (no weights are allocated, and each array keeps its dtype) and
    :func:`jaxnets.nn.state_dict` gives torch's keys and layouts. Without it the parameters are
    raw tensors that already carry the tutorial's names and layouts: dict keys are joined with
    ``"."`` as torch joins module paths, and a bare array takes ``torch_name``.

    Args:
      params: host parameters (NumPy or JAX arrays).
      model: the NNX module class ``params`` is the pure state of, or ``None``.
      torch_name: the torch name of a bare-array ``params``.

    Returns:
      ``{torch key: array}``, or ``None`` for a bare array without a ``torch_name``.

    >>> sd = torch_state_dict({"W1": np.zeros((3, 2)), "W2": np.zeros((2, 1))})
    >>> {key: value.shape for key, value in sd.items()}
    {'W1': (3, 2), 'W2': (2, 1)}
    >>> list(torch_state_dict(np.ones(1), torch_name="w")), torch_state_dict(np.ones(1))
    (['w'], None)
    """
    if model is not None:
        # Imported here: an experiment with a MODEL has loaded flax already, one without need not.
        from flax import nnx

        from jaxnets import nn

        return nn.state_dict(nnx.merge(nn.abstract(model)[0], params))
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    if len(flat) == 1 and not flat[0][0]:
        return None if torch_name is None else {torch_name: np.asarray(flat[0][1])}
    return {
        jax.tree_util.keystr(path, simple=True, separator="."): np.asarray(leaf)
        for path, leaf in flat
    }


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock``, holding the owner's pid, for the run's lifetime.

    The directory is created first; nothing else is written in it before the lock is held.
    The kernel drops the lock when its holder exits, however it exits, so a crashed run never
    leaves the directory locked; the file itself stays (deleting it would let a second run lock
    a new file while a third still waits on the old one).

    Args:
      directory: the run directory.
      enabled: take the lock (only process 0 of a multi-process run does).

    Raises:
      UsageError: on entering, when the directory cannot be created or written, or another
        process holds the lock (its pid is named).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp, RunLock(Path(tmp)):
    ...     try:
    ...         RunLock(Path(tmp)).__enter__()
    ...     except UsageError as err:
    ...         print(str(err).split(" (")[0])  # doctest: +ELLIPSIS
    --out: ... is in use by another run
    """

    def __init__(self, directory: Path, *, enabled: bool = True):
        self.directory, self.enabled = directory, enabled
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        directory = self.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UsageError(f"--out: {directory} exists and is not a directory") from None
        except OSError as err:
            raise UsageError(f"--out: cannot create {directory}: {err.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UsageError(f"--out: {directory} is not writable")
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UsageError(f"--out: cannot write in {directory}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"--out: cannot lock {directory}: {err.strerror}") from None
            raise UsageError(
                f"--out: {directory} is in use by another run (pid {holder}); wait for it to "
                "end or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def versions() -> dict[str, str]:
    """The Python and package versions a run used."""
    found = {"python": platform.python_version()}
    for package in ("jaxnets", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def config_json(
    options: Options,
    *,
    argv: Sequence[str] | None,
    start_step: int,
    run_facts: dict[str, Any],
) -> dict[str, Any]:
    """``config.json`` after this invocation: the run's first configuration plus its history.

    A fresh run writes its resolved options and the command that reruns it from scratch; a
    resumed run keeps those (they still describe how the run began) and appends itself to
    ``invocations``, whose last entry holds the options a further ``--resume`` continues with.

    Args:
      options: this invocation's resolved options.
      argv: its command line.
      start_step: the step it starts at.
      run_facts: ``chunk_size``, ``checkpoint_interval``, ``params`` (specs) and ``devices``.

    Returns:
      The JSON-ready dictionary.
    """
    invocation = {
        "argv": None if argv is None else list(argv),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "start_step": start_step,
        "options": _options_dict(options),
        "chunk_size": run_facts["chunk_size"],
        "checkpoint_interval": run_facts["checkpoint_interval"],
        "data_parallel": run_facts["devices"]["data_parallel"],
        "versions": versions(),
    }
    previous = read_config(Path(options.out)) if options.resume else None
    if previous is None:
        # A rerun from this file starts afresh and without the profiler's overhead.
        return {
            "experiment": options.experiment,
            "options": _options_dict(options) | {"resume": False, "profile": False},
            "command": options.command(),
            "argv": invocation["argv"],
            **{name: run_facts[name] for name in ("chunk_size", "checkpoint_interval")},
            "params": run_facts["params"],
            "devices": run_facts["devices"],
            "versions": invocation["versions"],
            "invocations": [invocation],
        }
    history = previous.get("invocations")
    if not isinstance(history, list):  # written before invocations were recorded
        history = [
            {
                "argv": previous.get("argv"),
                "time": None,
                "start_step": 0,
                "options": previous["options"],
            }
        ]
    return previous | {"invocations": [*history, invocation]}


def _options_dict(options: Options) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


def progress_bar(enabled: bool, description: str, total: int, completed: int):
    """A rich progress bar (step, loss, steps/s, evaluation) on stderr, or a no-op stand-in."""
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
        TextColumn("{task.fields[evaluation]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )
    task = progress.add_task(
        description, total=total, completed=completed, loss="-", rate="-", evaluation=""
    )
    return progress, task


def format_evaluation(values: dict[str, float] | None) -> str:
    """``"accuracy 0.961"``: evaluation values as the progress bar and summary show them.

    >>> format_evaluation({"accuracy": 0.96125, "loss": 0.5})
    'accuracy 0.961, loss 0.5'
    """
    return ", ".join(f"{name} {value:.3g}" for name, value in (values or {}).items())


class Outputs:
    """Everything written under ``--out`` (only by process 0 of a multi-process run).

    ``records`` holds the metrics of every step so far, including those a resumed run kept
    from before its start, whether or not this process writes them.
    """

    def __init__(self, out: Path, *, enabled: bool, tensorboard: bool):
        self.out, self.enabled = out, enabled
        self.metrics = out / "metrics.jsonl"
        self.records: list[dict[str, Any]] = []
        self._writer = None
        if enabled and tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(out / "tensorboard"))

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        """Write ``OUT/name`` atomically."""
        if self.enabled:
            atomic_write(self.out / name, json.dumps(payload, indent=2) + "\n")

    def start_metrics(self, start_step: int) -> None:
        """Keep the records before ``start_step`` (a resumed run rewrites what came after)."""
        if not self.enabled:
            return
        if start_step > 0 and self.metrics.exists():
            lines = self.metrics.read_text().splitlines()
            records = [json.loads(line) for line in lines if line]
            self.records = [record for record in records if record["step"] < start_step]
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in self.records))

    def log(
        self,
        start: int,
        losses: np.ndarray,
        finite: np.ndarray,
        *,
        bad_step: int,
        skip_nonfinite: bool,
        skipped_before: int,
        evaluation: dict[str, float] | None = None,
    ) -> None:
        """Record one chunk's steps; ``evaluation`` (at an epoch end) goes on its last step.

        Args:
          start: the chunk's first step.
          losses: ``(length,)`` per-step losses.
          finite: ``(length,)`` whether each step was finite.
          bad_step: the step the run stopped at, or -1 (later steps are not recorded).
          skip_nonfinite: the run skips non-finite steps (records carry the running count).
          skipped_before: steps skipped before this chunk.
          evaluation: the experiment's evaluation after the chunk's last step.
        """
        skipped = skipped_before
        last = bad_step if bad_step >= 0 else start + len(losses) - 1
        new = []
        for offset, (loss, ok) in enumerate(zip(losses, finite, strict=True)):
            step = start + offset
            if step > last:
                break
            record: dict[str, Any] = {"step": step, "loss": float(loss)}
            if not math.isfinite(record["loss"]):
                record["loss"], record["nonfinite"] = None, str(loss)
            if not ok:
                record["finite"] = False
            if skip_nonfinite:
                skipped += not ok
                record["skipped_total"] = skipped
            new.append(record)
        if evaluation and new and bad_step < 0:
            new[-1]["eval"] = evaluation
        self.records += new
        if not self.enabled:
            return
        if self._writer is not None:
            for record in new:
                if record["loss"] is not None:
                    self._writer.add_scalar("loss", record["loss"], record["step"])
                for name, value in record.get("eval", {}).items():
                    self._writer.add_scalar(f"eval/{name}", value, record["step"])
        with self.metrics.open("a") as f:
            f.write("".join(json.dumps(record) + "\n" for record in new))

    def final_loss(self, steps_per_epoch: int, end_step: int) -> tuple[float | None, str, int]:
        """The loss a run reports: the last epoch's mean, or the last step's.

        With more than one step per epoch a single step's loss is one batch's, so the mean over
        the last complete epoch's finite losses is reported (``"epoch_mean"``); otherwise, or
        before the first epoch is complete, the last step's (``"step"``).

        Args:
          steps_per_epoch: steps in one pass over the data.
          end_step: the step the run stopped before.

        Returns:
          ``(loss or None if not finite, kind, epoch or step it describes)``.
        """
        losses = {record["step"]: record["loss"] for record in self.records}
        epoch = end_step // steps_per_epoch - 1
        steps = range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)
        if steps_per_epoch > 1 and epoch >= 0 and all(step in losses for step in steps):
            finite = [losses[step] for step in steps if losses[step] is not None]
            return (float(np.mean(finite)) if finite else None), "epoch_mean", epoch
        last = max(losses, default=None)
        return (None if last is None else losses[last]), "step", (last or 0)

    def finish(
        self,
        experiment: str,
        params: PyTree | None,
        *,
        model: type | None = None,
        torch_name: str | None = None,
    ) -> None:
        """Close TensorBoard; write ``loss.png`` and, when ``params`` are given, ``params.npz``
        and ``state_dict.npz`` (``model`` and ``torch_name`` as :func:`torch_state_dict`).
        """
        if not self.enabled:
            return
        if self._writer is not None:
            self._writer.close()
        losses = [np.nan if r["loss"] is None else r["loss"] for r in self.records]
        if losses:
            _script.save_loss_plot(losses, self.out / "loss.png", f"{experiment}: loss", "Step")
        if params is not None:
            flat = {
                jax.tree_util.keystr(path, simple=True, separator="/") or "params": np.asarray(x)
                for path, x in jax.tree_util.tree_flatten_with_path(params)[0]
            }
            _atomic_savez(self.out / "params.npz", flat)
            # The way back to PyTorch: torch_model.load_state_dict(...) takes these as they are.
            state = torch_state_dict(params, model=model, torch_name=torch_name)
            if state is not None:
                _atomic_savez(self.out / "state_dict.npz", state)
