"""Checkpoints of a chunked training run, written with orbax-checkpoint.

A checkpoint holds everything the next step depends on: parameters, optimiser state, the data
key, the step (from which the data position, epoch and step within it, follows) and the count of
skipped steps, plus JSON metadata naming the experiment and every parameter's shape and dtype, so
that a resume into a different experiment or model is refused before anything is compiled.

Atomicity is orbax's: a checkpoint is written into ``<step>.orbax-checkpoint-tmp-<time>`` and
renamed to ``<step>`` only once complete, so a process killed mid-write leaves a temporary
directory that is never listed as a checkpoint (and is removed when the directory is next
opened), and the previous checkpoint stays the newest usable one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from jaxnets.train import LoopState, TrainState

__all__ = ["CheckpointError", "Checkpointer", "param_specs", "spec_mismatches"]

PyTree = Any


class CheckpointError(ValueError):
    """A checkpoint is missing or does not fit the run that wants to resume from it.

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

    >>> import tempfile
    >>> import optax
    >>> from jaxnets.train import init_loop_state
    >>> state = init_loop_state(jnp.ones((2,), jnp.float32), optax.sgd(0.1), jax.random.key(0))
    >>> with tempfile.TemporaryDirectory() as tmp, Checkpointer(tmp) as checkpoints:
    ...     step = checkpoints.save(state, {"experiment": "demo"})
    ...     restored = checkpoints.restore(step, like=state)
    ...     checkpoints.steps(), checkpoints.metadata(step), restored.train.params.tolist()
    ([0], {'experiment': 'demo', 'step': 0}, [1.0, 1.0])
    """

    def __init__(self, directory: Path | str, *, max_to_keep: int | None = 3, create: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            # Saving blocks until the checkpoint is renamed into place: the state is donated
            # to the next chunk right after, and "saved" must mean "survives a kill".
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
            create=create,
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
        """The JSON metadata saved with the checkpoint of ``step``."""
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored.meta)

    def restore(self, step: int, like: LoopState) -> LoopState:
        """Read the checkpoint of ``step`` into the structure, dtypes and shardings of ``like``.

        Args:
          step: which checkpoint.
          like: a state of the same run (e.g. freshly initialised), used as the template.

        Returns:
          The restored :class:`LoopState`.
        """
        template = _to_tree(like)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        ).state
        key = jax.random.wrap_key_data(restored["key"], impl=jax.random.key_impl(like.key))
        return LoopState(
            TrainState(restored["params"], restored["opt_state"], restored["step"]),
            key,
            restored["bad_step"],
            restored["skipped"],
        )
