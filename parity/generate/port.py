"""``generate_port``: a torch model in, the readable NNX source of its port out, imported, loaded
with torch's weights and ready to be proven by ``check_port``."""

from __future__ import annotations

import importlib.util
import linecache
import shutil
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from flax import nnx

from parity.generate import layout
from parity.generate.emit import Generator
from parity.generate.trace import GenerateError, trace_model

__all__ = ["GeneratedPort", "generate_port"]


@dataclass
class GeneratedPort:
    """A generated port: its source, its class, an instance holding torch's weights, and the
    check that proves it.

    Attributes:
      source: the Python module's text (imports only jax, flax and jaxnets).
      module_class: the root class, imported from ``source``.
      model: an instance of ``module_class`` with the torch model's parameters and buffers.
      channels_last: whether the port takes and gives ``(N, *spatial, C)`` activations.
      output_layouts: per torch module path, the layout of each output array of each call
        (``parity.check_port`` compares in it).
    """

    source: str
    module_class: type
    model: nnx.Module
    channels_last: bool
    torch_module: torch.nn.Module = field(repr=False)
    output_layouts: dict[str, list[tuple[int, ...]]] = field(repr=False, default_factory=dict)

    def check(self, batch: Any, **kwargs: Any) -> Any:
        """``parity.check_port(torch_module, model, batch, **kwargs)`` in the port's layout:
        train both side by side and judge every step (``loss=``, ``optimizer=``, ``steps=``,
        ``dtype=`` ... as there)."""
        from parity.port import check_port

        kwargs.setdefault("channels_last", self.channels_last)
        if kwargs["channels_last"] != self.channels_last:
            raise ValueError(
                f"this port was generated with channels_last={self.channels_last}; check it so"
            )
        return check_port(
            self.torch_module,
            self.model,
            batch,
            output_layouts=self.output_layouts,
            **kwargs,
        )


def generate_port(
    torch_module: torch.nn.Module,
    example_inputs: Sequence[Any],
    *,
    channels_last: bool = True,
    class_name: str | None = None,
    leaves: Mapping[str, Any] | None = None,
) -> GeneratedPort:
    """Write the Flax NNX port of ``torch_module`` as readable source, import it and load
    torch's weights into it.

    The model is traced by ``torch.fx`` one module class at a time: each torch layer becomes
    the ``jaxnets.nn`` layer of the same name and constructor arguments, each class of the
    user's with its own ``forward`` one NNX class (its instances share it), each torch
    operation one line of ``jnp`` / ``jaxnets.nn.functional`` named as the user's code named
    it. Layouts are the generator's job: with ``channels_last=True`` the port runs on
    ``(N, *spatial, C)`` activations (inputs and outputs of rank >= 3 included) and moves data
    only where an operation needs torch's order (a ``view`` that would mix the channel axis
    with spatial ones gets its transpose first).

    Args:
      torch_module: the model; it is not changed (a copy runs once on ``example_inputs``).
      example_inputs: the positional inputs of one forward call, in torch's layout.
      channels_last: the port's layout for activations of rank >= 3.
      class_name: the root class's name (default: the torch class's).
      leaves: ``{attribute: jax_module}`` for submodules of the root written by hand (where
        fx cannot trace them, or an op has no translation): the generated root class takes
        them as keyword arguments and calls them with their inputs, and returns read from
        them, in torch's layout; ``model`` holds the given modules themselves.

    Returns:
      A :class:`GeneratedPort` (``.source``, ``.module_class``, ``.model``, ``.check``).

    Raises:
      GenerateError: a ``forward`` fx cannot trace (naming the line and what to do), an op or
        layer without a translation (naming it and the line).
    """
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(
            f"torch_module must be a torch.nn.Module, got {type(torch_module).__name__}"
        )
    inputs = (
        tuple(example_inputs) if isinstance(example_inputs, list | tuple) else (example_inputs,)
    )
    hand = dict(leaves or {})
    children = dict(torch_module.named_children())
    for path, module in hand.items():
        if path not in children:
            raise GenerateError(
                f"leaves: {path!r} is not an attribute of the model (its submodules: "
                f"{', '.join(children) or 'none'}); only the root's attributes can be given"
            )
        if not isinstance(module, nnx.Module):
            raise TypeError(f"leaves[{path!r}] must be an nnx.Module, got {type(module).__name__}")
    traced, outputs = trace_model(torch_module, inputs, set(hand))
    generator = Generator(
        torch_module,
        traced,
        outputs,
        channels_last=channels_last,
        class_name=class_name,
        leaves=set(hand),
    )
    perms = [
        layout.channels_last(x.dim())
        if channels_last and isinstance(x, torch.Tensor) and x.is_floating_point()
        else (layout.identity(x.dim()) if isinstance(x, torch.Tensor) else None)
        for x in inputs
    ]
    written = generator.write(perms)
    source = format_source(written.text)
    module = import_source(source, f"jaxnets_port_{written.class_name.lower()}")
    module_class = getattr(module, written.class_name)
    model = _loaded(module_class, hand, torch_module)
    return GeneratedPort(
        source=source,
        module_class=module_class,
        model=model,
        channels_last=channels_last,
        torch_module=torch_module,
        output_layouts=written.output_layouts,
    )


def _loaded(module_class: type, hand: dict[str, Any], torch_module: torch.nn.Module) -> Any:
    """An instance holding torch's weights. Built abstractly where it can be: a random
    initialisation compiles a program per parameter shape (6 of 9 seconds for a small ResNet),
    and torch's values replace it anyway."""
    import jax
    import jax.numpy as jnp

    from parity.port import load_torch

    if hand:  # the hand-written modules are the user's own objects, used as they are
        model = module_class(**hand, rngs=nnx.Rngs(0))
        load_torch(model, torch_module)
        return model
    model = nnx.eval_shape(lambda: module_class(rngs=nnx.Rngs(0)))
    load_torch(model, torch_module)
    # What torch's state does not hold (random-number streams) starts as NNX would start it.
    for _, variable in nnx.iter_graph(model):
        if not isinstance(variable, nnx.Variable):
            continue
        value = variable.get_value()
        if isinstance(value, jax.ShapeDtypeStruct):
            if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
                fresh = (
                    jax.random.split(jax.random.key(0), value.shape)
                    if value.shape
                    else (jax.random.key(0))
                )
            else:
                fresh = jnp.zeros(value.shape, value.dtype)
            variable.set_value(fresh)
    return model


def format_source(text: str) -> str:
    """``ruff format`` the text where ruff is installed (it is with the torch extra); the text
    as written otherwise. Raises GenerateError where the text is not valid Python."""
    try:
        compile(text, "<generated port>", "exec")
    except SyntaxError as error:
        raise GenerateError(f"the generated source does not parse ({error}):\n{text}") from error
    ruff = shutil.which("ruff") or _module_ruff()
    if ruff is None:
        return text
    done = subprocess.run(
        [ruff, "format", "--line-length", "100", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else text


def _module_ruff() -> str | None:
    try:
        from ruff.__main__ import find_ruff_bin  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(find_ruff_bin())


def import_source(source: str, name: str) -> types.ModuleType:
    """Import ``source`` as a module named ``name`` (its lines show in tracebacks)."""
    filename = f"<{name}>"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module
