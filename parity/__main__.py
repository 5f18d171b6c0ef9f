"""``python -m parity``: run each experiment in PyTorch and in jaxnets, print the verdict table.

Exit status 0 only when every compared quantity is within its rule; 1 when any is not; 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxnets.validate import positive_int_argument
from parity import report, runner
from parity.experiments import EXPERIMENTS


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default 0)")
    parser.add_argument(
        "--steps",
        type=positive_int_argument,
        help="steps per run (linear: epochs); default the tutorial's",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int_argument,
        help="batch size for cnn (tutorial 1) and mlp (N, 64)",
    )
    parser.add_argument("--json", type=Path, default=Path("parity-out/parity.json"))
    parser.add_argument("--plots", type=Path, default=Path("parity-out"))
    parser.add_argument(
        "--torch-device", default="cpu", help="torch device, e.g. cuda (JAX uses JAX_PLATFORMS)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
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
        )
        print(f"ran {name}", file=sys.stderr, flush=True)
    print(report.table(results))
    settings = {
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "dtypes": list(dtypes),
        "torch_device": args.torch_device,
    }
    json_path = report.write_json(results, args.json, settings)
    plots = [report.write_plot(r, args.plots) for r in results]
    print(f"\nJSON: {json_path}\nplots: {', '.join(str(p) for p in plots)}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
