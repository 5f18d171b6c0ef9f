"""``python -m parity``: run each experiment in PyTorch and in jaxnets, print the verdict table.

Exit status 0 only when every compared quantity is within its rule; 1 when any is not; 2 for bad
arguments, unusable output paths included, reported before any experiment runs.

``python -m parity port MODULE:CALLABLE --input-shape ...`` generates a torch model's port
instead (``parity.generate.command``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from jaxnets import _process, compile_cache
from jaxnets.cli.options import nonnegative_int, positive_int
from parity import allocator

# Objects made between two collections of the youngest generation; Python's default of 700
# collected 1200 times in one run (1.3 s), most of it while importing torch and JAX and tracing
# programs, whose objects live on.
GC_THRESHOLD = 20_000

# torch.manual_seed's inclusive range; a negative seed s stands for 2**64 + s.
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


def seed_argument(text: str) -> int:
    """argparse type for ``--seed``: an integer that ``torch.manual_seed`` accepts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not SEED_MIN <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"must be within torch.manual_seed's range [-2**63, 2**64 - 1], got {value}"
        )
    return value


def _directory_problem(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (made with its parents if missing)."""
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    # Trying is the only sure test: permission bits say nothing for root or read-only mounts.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return f"cannot create files in {existing}: {err.strerror}"
    return None


def _json_problem(path: Path) -> str | None:
    if path.is_dir():
        return "is a directory"
    if path.exists():
        with open(path, "ab"):  # appends nothing: only asks whether it may be written
            pass
        return None
    return _directory_problem(path.parent)


def _plots_problem(directory: Path) -> str | None:
    if directory.exists() and not directory.is_dir():
        return "is a file, not a directory"
    return _directory_problem(directory)


def output_problems(json_path: Path, plots: Path) -> list[str]:
    """Why ``--json`` or ``--plots`` could not be written, one message each, found before the
    run (which takes minutes) rather than after it."""
    problems = []
    for option, path, check in (
        ("--json", json_path, _json_problem),
        ("--plots", plots, _plots_problem),
    ):
        try:
            problem = check(path)
        except OSError as err:
            where = f" ({err.filename})" if err.filename and Path(err.filename) != path else ""
            problem = f"{err.strerror or err}{where}"
        if problem:
            problems.append(f"{option} {path}: {problem}")
    return problems


def build_parser() -> argparse.ArgumentParser:
    from parity.experiments import EXPERIMENTS  # imports torch and JAX

    listing = "\n".join(f"  {e.name:8} {e.summary}" for e in EXPERIMENTS.values())
    parser = argparse.ArgumentParser(
        prog="python -m parity",
        description="Run the PyTorch originals and the jaxnets ports; compare gradients and "
        "loss trajectories.",
        epilog="experiments:\n" + listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "experiments", nargs="*", metavar="EXPERIMENT", help="subset to run (default: all)"
    )
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        help="torch.manual_seed, -2**63 to 2**64 - 1 (default 0)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        help="steps per run (linear: epochs); default the tutorial's",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="batch size for cnn (tutorial 1) and mlp (N, 64)",
    )
    parser.add_argument(
        "--members",
        type=nonnegative_int,
        default=8,  # parity.ensemble.MEMBERS, not imported: it loads JAX
        help="float64 runs from starts perturbed at float32's rounding level, whose spread "
        "widens the float32 bound where a kink flips (default 8; 0: torch float32's error alone)",
    )
    parser.add_argument("--json", type=Path, default=Path("parity-out/parity.json"))
    parser.add_argument("--plots", type=Path, default=Path("parity-out"))
    parser.add_argument(
        "--torch-device", default="cpu", help="torch device, e.g. cuda (JAX uses JAX_PLATFORMS)"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="compile from scratch: do not read or write the persistent compilation cache "
        "(also JAXNETS_NO_CACHE=1; see jaxnets.compile_cache)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["port"]:
        from parity.generate import command

        return command.main(argv[1:])
    from parity import report, runner
    from parity.experiments import EXPERIMENTS

    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.experiments if name not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {sorted(EXPERIMENTS)}")
    names = args.experiments or list(EXPERIMENTS)
    if args.batch_size is not None and not any(EXPERIMENTS[n].batch_size_option for n in names):
        parser.error(
            f"--batch-size applies to {[n for n, e in EXPERIMENTS.items() if e.batch_size_option]}"
        )
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    problems = output_problems(args.json, args.plots)
    if problems:
        parser.exit(2, "".join(f"{parser.prog}: error: {problem}\n" for problem in problems))

    cache = compile_cache.enable(args.no_cache)
    runner.configure()
    results = []
    for name in names:
        results += runner.run(
            EXPERIMENTS[name],
            seed=args.seed,
            steps=args.steps,
            batch_size=args.batch_size,
            dtypes=dtypes,
            device=args.torch_device,
            members=args.members,
        )
        print(f"ran {name}", file=sys.stderr, flush=True)
    print(report.table(results))
    settings = {
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "dtypes": list(dtypes),
        "members": args.members,
        "torch_device": args.torch_device,
        "compilation_cache": cache.as_dict(),
    }
    json_path = report.write_json(results, args.json, settings)
    plots = report.write_plots(results, args.plots)
    print(f"\nJSON: {json_path}\nplots: {', '.join(str(p) for p in plots)}")
    print(compile_cache.describe(cache))
    return 0 if all(r.passed for r in results) else 1


def entry_point() -> NoReturn:
    """``python -m parity`` and the ``parity`` command: :func:`main` in a process of its own.

    The process keeps freed memory for reuse (:mod:`parity.allocator`), collects cyclic garbage
    less often (``GC_THRESHOLD``, set before torch and JAX are imported) and, once every output
    is written, ends without tearing the interpreter down (:func:`jaxnets._process.exit_now`).
    """
    allocator.keep_freed_memory()
    gc.set_threshold(GC_THRESHOLD)
    _process.exit_now(main())


if __name__ == "__main__":
    entry_point()
