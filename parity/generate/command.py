"""``python -m parity port`` (and ``jaxnets-port``): generate a torch model's port, write it, its
weights and the check's report, and exit 0 only when the port trains as torch does.

Exit status 0 when ``check_port`` passes, 1 when it does not (the first divergence is printed),
2 on bad input (one line: an unimportable model, a shape, an op without a translation, a
``forward`` fx cannot trace), reported before anything is written.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

PROG = "parity port"

__all__ = ["main", "entry_point", "build_parser"]


class BadInput(Exception):
    """One line for the user; exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Write the Flax NNX port of a torch model as readable source, with its weights, "
            "and prove it by training both side by side (parity.check_port)."
        ),
    )
    parser.add_argument(
        "model",
        metavar="MODULE:CALLABLE",
        help="a torch.nn.Module class or zero-argument factory: 'package.module:Net' or "
        "'path/to/file.py:Net'",
    )
    parser.add_argument(
        "--input-shape",
        action="append",
        required=True,
        metavar="N,C,...",
        help="the shape of one positional input, in torch's layout; repeat for several inputs",
    )
    parser.add_argument(
        "--input-dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="torch dtype of each input (default float32); integer inputs are drawn below the "
        "model's smallest Embedding size",
    )
    parser.add_argument("--out", type=Path, help="the source file (default: CALLABLE_jax.py)")
    parser.add_argument("--class-name", help="the generated root class's name")
    parser.add_argument(
        "--channels-first",
        action="store_true",
        help="the port takes (N, C, *spatial) activations (default: channels-last)",
    )
    parser.add_argument("--check-steps", type=int, default=3, help="training steps checked")
    parser.add_argument(
        "--loss",
        help="a loss both torch.nn.functional and jaxnets.losses have (e.g. cross_entropy); "
        "default: the sum of the outputs",
    )
    parser.add_argument(
        "--optimizer",
        default="SGD(lr=0.1)",
        help='a torch.optim optimiser as a call, e.g. "SGD(lr=0.1, momentum=0.9)"',
    )
    parser.add_argument(
        "--dtype", choices=("float64", "float32", "both"), default="float64", help="check dtype"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the batch")
    return parser


def load_model(spec: str) -> Any:
    """The torch module built by ``MODULE:CALLABLE``."""
    import torch

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise BadInput(f"expected MODULE:CALLABLE, got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise BadInput(f"no such file: {path}")
            loaded = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(loaded)  # type: ignore[arg-type]
            sys.modules[path.stem] = module
            loaded.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(module_name)
    except BadInput:
        raise
    except Exception as error:
        raise BadInput(f"cannot import {module_name}: {type(error).__name__}: {error}") from None
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise BadInput(f"{module_name} has no callable {attribute!r}")
    try:
        model = factory()
    except Exception as error:
        raise BadInput(f"{spec}() failed: {type(error).__name__}: {error}") from None
    if not isinstance(model, torch.nn.Module):
        raise BadInput(f"{spec}() gave a {type(model).__name__}, not a torch.nn.Module")
    return model


def parse_optimizer(text: str, model: Any) -> Any:
    """``"SGD(lr=0.1, momentum=0.9)"`` -> ``torch.optim.SGD(model.parameters(), ...)``."""
    import torch

    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise BadInput(f"--optimizer: expected a call like 'SGD(lr=0.1)', got {text!r}") from None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
        raise BadInput(f"--optimizer: expected Name(key=value, ...), got {text!r}")
    cls = getattr(torch.optim, call.func.id, None)
    if not isinstance(cls, type):
        raise BadInput(f"--optimizer: torch.optim has no optimiser {call.func.id!r}")
    try:
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        return cls(model.parameters(), **kwargs)
    except (ValueError, TypeError) as error:
        raise BadInput(f"--optimizer {text!r}: {error}") from None


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise BadInput(f"--input-shape: expected sizes like 1,3,32,32, got {text!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise BadInput(f"--input-shape: sizes must be positive, got {text!r}")
    return shape


def example_inputs(model: Any, shapes: list[str], dtypes: list[str], seed: int) -> tuple:
    import torch

    if dtypes and len(dtypes) != len(shapes):
        raise BadInput(f"{len(dtypes)} --input-dtype for {len(shapes)} --input-shape")
    generator = torch.Generator().manual_seed(seed)
    embeddings = [m.num_embeddings for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    high = min(embeddings) if embeddings else 2
    inputs = []
    for i, text in enumerate(shapes):
        shape = _shape(text)
        name = dtypes[i] if dtypes else "float32"
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype):
            raise BadInput(f"--input-dtype: torch has no dtype {name!r}")
        if dtype.is_floating_point:
            inputs.append(torch.randn(shape, generator=generator, dtype=dtype))
        else:
            inputs.append(torch.randint(0, high, shape, generator=generator, dtype=dtype))
    return tuple(inputs)


def _target(loss: str | None, output: Any, seed: int) -> Any:
    """A target the loss takes for ``output``: class indices for the classification losses,
    probabilities for the binary ones, normal draws otherwise."""
    import torch

    generator = torch.Generator().manual_seed(seed + 1)
    if loss in ("cross_entropy", "nll_loss", "multi_margin_loss"):
        shape = (output.shape[0], *output.shape[2:]) if output.dim() > 1 else ()
        return torch.randint(
            0, output.shape[1] if output.dim() > 1 else output.shape[0], shape, generator=generator
        )
    if loss is not None and "binary" in loss:
        return torch.rand(output.shape, generator=generator)
    return torch.randn(output.shape, generator=generator)


def _loss(loss: str | None, channels_last: bool) -> Any:
    """The check's loss: torch's own, and the port's on its output moved to torch's layout."""
    if loss is None or not channels_last:
        return loss
    import jax.numpy as jnp
    import torch

    from jaxnets import losses

    torch_fn, jax_fn = getattr(torch.nn.functional, loss, None), getattr(losses, loss, None)
    if torch_fn is None or jax_fn is None:
        raise BadInput(
            f"--loss {loss!r}: not a loss of both torch.nn.functional and jaxnets.losses"
        )

    def port_loss(output, target):
        return jax_fn(jnp.moveaxis(output, -1, 1) if output.ndim >= 3 else output, target)

    return torch_fn, port_loss


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from flax import nnx

    from jaxnets import nn
    from parity.generate import GenerateError, generate_port

    torch.manual_seed(args.seed)
    model = load_model(args.model)
    inputs = example_inputs(model, args.input_shape, args.input_dtype, args.seed)
    if args.check_steps < 1:
        raise BadInput(f"--check-steps must be positive, got {args.check_steps}")
    channels_last = not args.channels_first
    out = args.out or Path(f"{args.model.rpartition(':')[2].lower()}_jax.py")
    try:
        port = generate_port(model, inputs, channels_last=channels_last, class_name=args.class_name)
    except GenerateError as error:
        raise BadInput(str(error)) from None
    except RuntimeError as error:  # torch's own complaint about the inputs
        raise BadInput(f"the model does not run on the inputs: {error}") from None
    optimizer = parse_optimizer(args.optimizer, model)
    with torch.no_grad():
        output = model(*inputs)
    if args.loss is not None and not isinstance(output, torch.Tensor):
        raise BadInput("--loss needs a model with one output tensor")
    batch = inputs if args.loss is None else (*inputs, _target(args.loss, output, args.seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(port.source)
    stem = out.with_suffix("")
    state = {k: np.asarray(v) for k, v in nn.state_dict(port.model).items()}
    np.savez(f"{stem}.state_dict.npz", **state)
    _save_checkpoint(Path(f"{stem}_checkpoint").absolute(), nnx.state(port.model))
    loss = _loss(args.loss, channels_last)
    try:
        report = port.check(
            batch, loss=loss, optimizer=optimizer, steps=args.check_steps, dtype=args.dtype
        )
    except Exception as error:  # the generated code itself failing is the port failing
        print(f"FAILED: the port raised {type(error).__name__}: {error}")
        return 1
    Path(f"{stem}.report.txt").write_text(f"{report}\n")
    Path(f"{stem}.report.json").write_text(json.dumps(report.to_json(), indent=2))
    print(report)
    print(f"\nsource: {out}\nweights: {stem}.state_dict.npz, {stem}_checkpoint/")
    first = report.first_divergence
    if first is not None:
        print(
            f"FAILED: the port diverges first at {first.layer!r} ({first.quantity}, step "
            f"{first.step}, {first.dtype}): {first.detail}"
        )
        return 1
    print("PASSED: the port trains as torch does")
    return 0


def _save_checkpoint(path: Path, state: Any) -> None:
    import shutil

    import orbax.checkpoint as ocp

    if path.exists():
        shutil.rmtree(path)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from jaxnets import compile_cache
        from parity import runner

        compile_cache.enable(False)
        runner.configure()
        return run(args)
    except BadInput as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


def entry_point() -> NoReturn:
    """The ``jaxnets-port`` command."""
    sys.exit(main())
