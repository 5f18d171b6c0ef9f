"""Checkpoints of a chunked training run, written with orbax-checkpoint.

A checkpoint holds everything the next step depends on: parameters, optimiser state, the data
key, the step (from which the data position, epoch and step within it, follows) and the count of
skipped steps, plus JSON metadata naming the experiment and every parameter's shape and dtype, so
that a resume into a different experiment or model is refused before anything is compiled.

Atomicity is orbax's: a checkpoint is written into ``<step>.orbax-checkpoint-tmp-<time>`` and
renamed to ``<step>`` only once complete, so a process killed mid-write leaves a temporary
directory that is never listed as a checkpoint (and is removed when the directory is next
opened), and the previous checkpoint stays the newest usable one. A checkpoint damaged after
it was written (a truncated file, a disk error) fails to read with :class:`CheckpointError`,
never with orbax's own exceptions, so a caller can fall back to an older one.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from jaxnets.train import LoopState, TrainState

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "loop_state",
    "newest_metadata",
    "param_specs",
    "spec_mismatches",
]

PyTree = Any
# A failed read waits until tensorstore's remaining completions have been quiet this long.
STRAGGLER_SECONDS = 0.2


class CheckpointError(ValueError):
    """A checkpoint is missing, cannot be read, or does not fit the run that wants it.

    >>> issubclass(CheckpointError, ValueError)
    True
    """


def param_specs(params: PyTree) -> dict[str, dict[str, Any]]:
    """``{key path: {"shape": [...], "dtype": "float32"}}`` for every parameter leaf.

    Args:
      params: a parameter pytree (arrays or ``jax.ShapeDtypeStruct``).

    Returns:
      A JSON-ready description, compared by :func:`spec_mismatches`.

    >>> param_specs({"fc": {"kernel": jnp.zeros((3, 2), jnp.float32)}})
    {'fc/kernel': {'shape': [3, 2], 'dtype': 'float32'}}
    """
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {
        jax.tree_util.keystr(path, simple=True, separator="/") or "params": {
            "shape": list(jnp.shape(leaf)),
            "dtype": str(jnp.result_type(leaf)),
        }
        for path, leaf in leaves
    }


def spec_mismatches(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Every difference between two :func:`param_specs`, as readable lines.

    Args:
      expected: the specs of the run that wants to resume.
      found: the specs stored with the checkpoint.

    Returns:
      One line per missing, unexpected or differently shaped/typed parameter; empty if equal.

    >>> run = param_specs({"w": jnp.zeros((3, 2), jnp.float32)})
    >>> stored = param_specs({"w": jnp.zeros((4, 2), jnp.float32),
    ...                       "b": jnp.zeros((2,), jnp.float32)})
    >>> spec_mismatches(run, run)
    []
    >>> for line in spec_mismatches(run, stored):
    ...     print(line)
    missing b
    w: run has (3, 2) float32, checkpoint has (4, 2) float32
    """
    problems = [f"missing {name}" for name in sorted(set(found) - set(expected))]
    problems += [f"unexpected {name}" for name in sorted(set(expected) - set(found))]
    for name in sorted(set(expected) & set(found)):
        if expected[name] != found[name]:
            want, got = expected[name], found[name]
            problems.append(
                f"{name}: run has {tuple(want['shape'])} {want['dtype']}, "
                f"checkpoint has {tuple(got['shape'])} {got['dtype']}"
            )
    return problems


@contextlib.contextmanager
def _quiet_event_loop_errors() -> Iterator[None]:
    """Drop the "Event loop is closed" errors of a read that failed part-way.

    When one array of a checkpoint fails to read, orbax closes its event loop while tensorstore
    still completes the other reads; each completion then fails to schedule its callback and
    reports ``RuntimeError('Event loop is closed')`` through ``sys.unraisablehook`` from
    tensorstore's threads, as a traceback on stderr. They say nothing about the checkpoint
    beyond the error the read raises, so while a read runs (and briefly after it failed, for the
    stragglers) they are dropped; every other unraisable error still reaches the hook.
    """
    previous = sys.unraisablehook
    last_dropped = [0.0]

    def hook(unraisable: Any) -> None:
        if (
            isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == "Event loop is closed"
        ):
            last_dropped[0] = time.monotonic()
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    except Exception:
        # They arrive in a burst right after the failure: wait for a quiet spell (bounded).
        failed = time.monotonic()
        while time.monotonic() - failed < 10 * STRAGGLER_SECONDS and (
            time.monotonic() - max(failed, last_dropped[0]) < STRAGGLER_SECONDS
        ):
            time.sleep(STRAGGLER_SECONDS / 10)
        raise
    finally:
        sys.unraisablehook = previous


def loop_state(
    params: PyTree,
    opt_state: PyTree,
    key: jax.Array,
    *,
    step: int = 0,
    bad_step: int = -1,
    skipped: int = 0,
) -> LoopState:
    """A :class:`jaxnets.train.LoopState` from its parts (int32 scalars for the counters).

    Args:
      params: parameters.
      opt_state: the optimiser state of ``params``.
      key: the run's data key.
      step: the step the state is at.
      bad_step: the non-finite step that stopped the run, or -1.
      skipped: the steps skipped so far.

    Returns:
      The state, as a checkpoint stores and restores it.

    >>> state = loop_state(jnp.zeros((2,), jnp.float32), (), jax.random.key(0), step=3)
    >>> int(state.train.step), int(state.bad_step), int(state.skipped)
    (3, -1, 0)
    """

    def counter(value: int) -> jax.Array:
        return jnp.asarray(value, jnp.int32)

    return LoopState(
        TrainState(params, opt_state, counter(step)), key, counter(bad_step), counter(skipped)
    )


def _to_tree(state: LoopState) -> dict[str, Any]:
    # Typed PRNG keys are stored as their raw uint32 data, which any reader can restore.
    return {
        "params": state.train.params,
        "opt_state": state.train.opt_state,
        "step": state.train.step,
        "key": jax.random.key_data(state.key),
        "bad_step": state.bad_step,
        "skipped": state.skipped,
    }


class Checkpointer:
    """The checkpoints of one run directory.

    Args:
      directory: where checkpoints live (one subdirectory per step).
      max_to_keep: how many of the newest checkpoints to keep.
      create: create ``directory`` if it does not exist.
      read_only: only read: no directory is created, no unfinished write is removed, nothing
        can be saved (for looking into a directory that another run may own).

    >>> import tempfile
    >>> import optax
    >>> params = jnp.ones((2,), jnp.float32)
    >>> state = loop_state(params, optax.sgd(0.1).init(params), jax.random.key(0))
    >>> with tempfile.TemporaryDirectory() as tmp, Checkpointer(tmp) as checkpoints:
    ...     step = checkpoints.save(state, {"experiment": "demo"})
    ...     restored = checkpoints.restore(step, like=state)
    ...     checkpoints.steps(), checkpoints.metadata(step), restored.train.params.tolist()
    ([0], {'experiment': 'demo', 'step': 0}, [1.0, 1.0])
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_to_keep: int | None = 3,
        create: bool = True,
        read_only: bool = False,
    ):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            # Saving blocks until the checkpoint is renamed into place: the state is donated
            # to the next chunk right after, and "saved" must mean "survives a kill".
            enable_async_checkpointing=False,
            cleanup_tmp_directories=not read_only,
            create=create and not read_only,
            read_only=read_only,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish any pending write and release the manager."""
        self._manager.close()

    def steps(self) -> list[int]:
        """The steps of every complete checkpoint, oldest first."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or ``None`` if there is none."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, state: LoopState, metadata: dict[str, Any]) -> int:
        """Write ``state`` as the checkpoint of its step, with JSON ``metadata``.

        Args:
          state: the run's state after a chunk.
          metadata: JSON-serialisable facts to check on resume (experiment, param specs ...).

        Returns:
          The step saved.
        """
        step = int(jax.device_get(state.train.step))
        tree = _to_tree(state)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(tree),
                meta=ocp.args.JsonSave({**metadata, "step": step}),
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        return step

    def metadata(self, step: int) -> dict[str, Any]:
        """The JSON metadata saved with the checkpoint of ``step``.

        Raises:
          CheckpointError: it cannot be read.
        """
        restored = self._read(
            step,
            lambda: self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            ),
        )
        if not isinstance(restored.meta, dict):
            raise CheckpointError(f"checkpoint {self.path(step)}: its metadata is not a mapping")
        return dict(restored.meta)

    def path(self, step: int) -> Path:
        """The directory of the checkpoint of ``step``."""
        return self.directory / str(step)

    def set_aside(self, step: int, destination: Path) -> Path:
        """Move the checkpoint of ``step`` out of the run (e.g. when it is damaged).

        Args:
          step: which checkpoint.
          destination: the directory to move it into (created if needed).

        Returns:
          Its new path, ``destination / str(step)`` (with a suffix if that exists).
        """
        destination.mkdir(parents=True, exist_ok=True)
        target, n = destination / str(step), 1
        while target.exists():
            target, n = destination / f"{step}.{n}", n + 1
        shutil.move(str(self.path(step)), target)
        self._manager.reload()
        return target

    def _read(self, step: int, read: Callable[[], Any]) -> Any:
        # Whatever orbax, tensorstore or JSON raise for damaged files becomes one error type
        # that names the checkpoint, without orbax's multi-page messages.
        try:
            with _quiet_event_loop_errors():
                return read()
        except Exception as err:
            text = str(err).strip()
            first = text.splitlines()[0][:160] if text else ""
            raise CheckpointError(
                f"cannot read {self.path(step)}: {type(err).__name__}: {first}"
            ) from err

    def restore(self, step: int, like: LoopState) -> LoopState:
        """Read the checkpoint of ``step`` into the structure, dtypes and shardings of ``like``.

        Args:
          step: which checkpoint.
          like: a state of the same run (e.g. freshly initialised), used as the template.

        Returns:
          The restored :class:`LoopState`.

        Raises:
          CheckpointError: it cannot be read (missing or damaged files).
        """
        template = _to_tree(like)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        restored = self._read(
            step,
            lambda: (
                self._manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
                ).state
            ),
        )
        key = jax.random.wrap_key_data(restored["key"], impl=jax.random.key_impl(like.key))
        return LoopState(
            TrainState(restored["params"], restored["opt_state"], restored["step"]),
            key,
            restored["bad_step"],
            restored["skipped"],
        )


def newest_metadata(directory: Path | str) -> tuple[int, dict[str, Any]] | None:
    """The step and metadata of the newest checkpoint in ``directory`` whose metadata reads.

    Reads only: the directory may belong to a run that is still writing.

    Args:
      directory: a run's checkpoint directory.

    Returns:
      ``(step, metadata)``, or ``None`` when no checkpoint's metadata can be read.
    """
    try:
        checkpointer = Checkpointer(directory, create=False, read_only=True)
    except Exception:  # an unreadable directory holds no readable checkpoint
        return None
    with checkpointer:
        for step in reversed(checkpointer.steps()):
            try:
                return step, checkpointer.metadata(step)
            except CheckpointError:
                continue
    return None
