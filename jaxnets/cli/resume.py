"""Checkpoints of a run: opening them, checking them against the run, restoring with fallback.

A resume is refused (``UsageError``) when the newest readable checkpoint belongs to another
experiment, model, data or device split; a checkpoint that does not restore is set aside in
``DAMAGED_DIR`` and the next newest is tried.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, NamedTuple

from jaxnets.checkpoint import Checkpointer, CheckpointError, spec_mismatches
from jaxnets.cli.options import Options, UsageError, defining_difference
from jaxnets.cli.planning import RunPlan
from jaxnets.train import LoopState

__all__ = ["DAMAGED_DIR", "check_checkpoint", "checkpoint_metadata", "open_checkpoints", "restore"]

DAMAGED_DIR = "checkpoints-damaged"


def checkpoint_metadata(options: Options, plan: RunPlan) -> dict[str, Any]:
    """What a checkpoint records besides the state: enough to check, or rebuild, the run."""
    return {
        "experiment": options.experiment,
        "params": plan.specs,
        "options": dataclasses.asdict(options),
        "data_parallel": plan.data_parallel,
    }


def check_checkpoint(
    metadata: dict[str, Any], step: int, options: Options, plan: RunPlan, out: Path
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


class Candidate(NamedTuple):
    step: int
    metadata: dict[str, Any] | None
    error: CheckpointError | None


def open_checkpoints(
    options: Options, out: Path, plan: RunPlan
) -> tuple[Checkpointer | None, list[Candidate]]:
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
                candidates.append(Candidate(step, checkpointer.metadata(step), None))
            except CheckpointError as err:
                candidates.append(Candidate(step, None, err))
        readable = [c for c in candidates if c.metadata is not None]
        if readable:
            newest = readable[0]
            check_checkpoint(newest.metadata, newest.step, options, plan, out)
            if newest.step > options.steps:
                raise UsageError(
                    f"--resume: the checkpoint is at step {newest.step}, beyond --steps "
                    f"{options.steps}"
                )
    except BaseException:
        checkpointer.close()
        raise
    return checkpointer, candidates


def restore(
    checkpointer: Checkpointer,
    candidates: list[Candidate],
    like: LoopState,
    options: Options,
    plan: RunPlan,
    out: Path,
) -> tuple[int, LoopState]:
    """Restore the newest checkpoint that reads; set damaged newer ones aside, saying so."""
    damaged = []
    for candidate in candidates:
        error = candidate.error
        if candidate.metadata is not None:
            check_checkpoint(candidate.metadata, candidate.step, options, plan, out)
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
