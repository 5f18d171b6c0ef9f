"""``jaxnets``: list the trainable experiments and train one, with checkpoints and progress.

``jaxnets train mlp --steps 500 --out runs/mlp`` runs the experiment module's own ``loss_fn``,
``optimizer`` and batch plan through ``jaxnets.train``'s one loop (the program the module's
``train`` runs and ``python -m parity`` checks against PyTorch) in chunks: one XLA program per
chunk length, a progress bar and, every ``--checkpoint-every`` steps,
an orbax checkpoint between chunks. ``--out`` is locked by the run and receives ``config.json``
(everything needed to rerun, and every invocation), ``metrics.jsonl``, ``loss.png``,
``params.npz`` and ``result.json``.

Exit codes: 0 done (or nothing left to do); 2 bad input, file-system problems and a run
directory in use included (reported before anything is compiled where shapes can tell); 3
stopped at a non-finite loss (the step is named, the last good checkpoint kept) or every step
skipped; 130 or 143 interrupted by SIGINT or SIGTERM, after finishing the chunk and saving.

The package is split so that ``--help`` and ``list`` never import JAX: :mod:`.options` parses
and resolves, :mod:`.run` (imported only to train) runs, :mod:`.outputs` writes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jaxnets.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_NONFINITE,
    EXIT_USAGE,
    Options,
    UsageError,
    build_parser,
    output_directory,
    resolve,
)
from jaxnets.experiments import catalog

if TYPE_CHECKING:
    from jaxnets.cli.run import Result, initial_values, train

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

# Names served from .run on first use, so that importing the package does not import JAX.
_FROM_RUN = ("CHUNK_DELAY_ENV", "Result", "initial_values", "train")


def __getattr__(name: str) -> Any:
    if name in _FROM_RUN:
        from jaxnets.cli import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _list() -> None:
    entries = catalog.CATALOG.values()
    width = max(len(entry.name) for entry in entries)
    span = max(len(entry.span()) for entry in entries)
    for entry in entries:
        defaults = f"{entry.span():<{span}} lr {entry.learning_rate:<6g}"
        print(f"{entry.name:{width}} {defaults} {entry.summary}")


def _report(result: Result, experiment: str, out: str) -> int:
    """Print how the run ended (one line) and return the exit code."""
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
    if result.status == "all_steps_skipped":
        print(
            f"jaxnets train: stopped: all {result.end_step - result.start_step} steps from step "
            f"{result.start_step} had a non-finite loss or gradient and were skipped; nothing "
            "was trained (try a smaller --lr)",
            file=sys.stderr,
        )
        return EXIT_NONFINITE
    if result.status == "ended_nonfinite":
        print(
            f"jaxnets train: stopped: the last step ({result.end_step - 1}) had a non-finite loss "
            f"or gradient and was skipped, as were {result.skipped - 1} earlier steps; the final "
            "parameters do not train (try a smaller --lr)",
            file=sys.stderr,
        )
        return EXIT_NONFINITE
    if not result.primary:
        return EXIT_INTERRUPTED[result.signal] if result.status == "interrupted" else 0
    if result.status == "nothing_to_do":
        print(f"{experiment}: nothing to do: {out} is already at step {result.end_step}")
        return 0
    from jaxnets.cli.outputs import format_evaluation

    if result.final_loss is None:
        loss = "final loss not finite"
    elif result.final_loss_kind == "epoch_mean":
        epoch = result.final_loss_at  # counted from 0, as the experiment scripts print epochs
        loss = f"final loss {result.final_loss:.6g} (mean of epoch {epoch}, counting from 0)"
    else:
        loss = f"final loss {result.final_loss:.6g} (step {result.final_loss_at})"
    summary = f"{result.end_step} steps, {loss}"
    if result.evaluation:
        summary += f", eval {format_evaluation(result.evaluation)}"
    if result.skipped:
        summary += f", {result.skipped} non-finite steps skipped"
    if result.status == "interrupted":
        saved = (
            f"; checkpoint at step {result.latest_checkpoint}, continue with --resume"
            if result.latest_checkpoint == result.end_step
            else ""
        )
        print(
            f"jaxnets train: interrupted by {result.signal} at {summary}{saved}; outputs in {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED[result.signal]
    print(f"{experiment}: {summary}; outputs in {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jaxnets`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "list":
        _list()
        return 0
    try:
        multi = (args.coordinator_address, args.num_processes, args.process_id)
        if any(value is not None for value in multi) and any(value is None for value in multi):
            raise UsageError("--coordinator-address, --num-processes and --process-id go together")
        from jaxnets.cli import run  # JAX, orbax and the experiments: only to train

        if multi[0] is not None:
            from jaxnets import distributed

            try:
                distributed.initialize(*multi)
            except ValueError as err:
                raise UsageError(f"--process-id: {err}") from None
        options = resolve(args, run.experiment_defaults(args.experiment))
        result = run.train(options, argv)
    except UsageError as err:
        print(f"jaxnets train: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # the file system: a full disk, a directory gone or unwritable
        print(f"jaxnets train: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the run's own handlers were installed
        print("jaxnets train: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED["SIGINT"]
    return _report(result, args.experiment, str(output_directory(args)))
