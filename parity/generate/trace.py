"""The front end: each torch module class with its own ``forward``, traced one level deep by
``torch.fx`` with the example inputs' shapes on every node.

Every submodule call stays one ``call_module`` node (a torch layer becomes one ``jaxnets.nn``
layer under the same name; a user's module becomes its own generated class), buffers are read
through ``get_attr`` nodes like parameters, and each node keeps the line of the user's
``forward`` it came from. One run of a copy of the model on the example inputs gives every
module's inputs; replaying those through each traced graph gives each node's shapes and the
values of the plain numbers (``x.size(0)``) the graph computes.
"""

from __future__ import annotations

import copy
import linecache
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx

__all__ = ["GenerateError", "Traced", "SourceLine", "trace_model", "is_torch_layer"]

_TORCH_DIR = str(Path(torch.__file__).parent)


class GenerateError(Exception):
    """The torch model cannot be generated as given; the message names the op or module, the
    line of the user's code, and what to do."""


@dataclass(frozen=True)
class SourceLine:
    """A line of the user's code: file, line number, function and the text."""

    filename: str
    lineno: int
    function: str
    text: str

    def __str__(self) -> str:
        return f'File "{self.filename}", line {self.lineno}, in {self.function}: {self.text}'


@dataclass
class Traced:
    """One module instance's ``forward`` as an fx graph, with shapes and values on its nodes.

    ``values[node]`` is what the node computed on the example inputs: a ``torch.Tensor`` (kept
    as an empty tensor of the same shape and dtype), a number, or a nested tuple of those.
    """

    path: str
    module: torch.nn.Module
    graph: torch.fx.Graph
    values: dict[torch.fx.Node, Any] = field(default_factory=dict)
    lines: dict[torch.fx.Node, SourceLine | None] = field(default_factory=dict)


def is_torch_layer(module: torch.nn.Module) -> bool:
    """A module of ``torch.nn`` itself (a layer or container), not a user's class."""
    return type(module).__module__.startswith("torch.nn")


# What a value computed only from these depends on is the inputs' shapes, not their values.
_SHAPE_METHODS = {"size", "dim", "ndimension", "numel"}
_SHAPE_ATTRIBUTES = {"shape", "ndim"}


class ShapeError(Exception):
    """A condition on tensor values (not shapes) in traced code."""


class _OneLevel(torch.fx.Tracer):
    """Every submodule call is a leaf; buffers are ``get_attr`` nodes as parameters are (so
    ``self.mask[:, :T]`` with a traced ``T`` traces).

    Python control flow on shapes (``assert t <= block_size``, ``if x.dim() == 4``) is decided
    by the example inputs, as ``torch.export`` specialises on them; control flow on tensor
    values is refused.
    """

    def __init__(self, inputs: tuple[Any, ...]) -> None:
        super().__init__()
        self.record_stack_traces = True
        self.proxy_buffer_attributes = True
        self.inputs = inputs

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return True

    def to_bool(self, obj: torch.fx.Proxy) -> bool:
        return bool(self._shape_value(obj.node))

    def _shape_value(self, node: torch.fx.Node) -> Any:
        """The node's value on the example, where it depends on the inputs' shapes only."""
        values: dict[torch.fx.Node, Any] = {}
        placeholders = [n for n in node.graph.nodes if n.op == "placeholder"]

        def value(n: Any) -> Any:
            if isinstance(n, torch.fx.Node):
                if n not in values:
                    values[n] = evaluate(n)
                return values[n]
            if isinstance(n, list | tuple):
                return type(n)(value(a) for a in n)
            if isinstance(n, dict):
                return {k: value(v) for k, v in n.items()}
            return n

        def evaluate(n: torch.fx.Node) -> Any:
            if n.op == "placeholder":
                return _Shaped(self.inputs[placeholders.index(n)])
            if n.op == "call_method" and n.target in _SHAPE_METHODS:
                return getattr(value(n.args[0]), str(n.target))(*value(n.args[1:]))
            if n.op == "call_function" and n.target is getattr:
                if n.args[1] in _SHAPE_ATTRIBUTES:
                    return getattr(value(n.args[0]), n.args[1])
            elif n.op == "call_function":
                args, kwargs = value(n.args), value(n.kwargs)
                if not any(isinstance(a, _Shaped) for a in (*args, *kwargs.values())):
                    return n.target(*args, **kwargs)
            raise ShapeError(n)

        return value(node)


class _Shaped:
    """An input seen only through its shape."""

    def __init__(self, tensor: Any):
        self.shape = tensor.shape if isinstance(tensor, torch.Tensor) else None
        self.ndim = len(self.shape) if self.shape is not None else None

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(torch.Size(self.shape).numel())


def user_line(stack: str | None) -> SourceLine | None:
    """The innermost frame of a formatted stack that lies outside torch."""
    if not stack:
        return None
    frames = traceback.StackSummary.from_list(_parse_frames(stack))
    for frame in reversed(frames):
        if not frame.filename.startswith(_TORCH_DIR):
            text = linecache.getline(frame.filename, frame.lineno).strip() or (frame.line or "")
            return SourceLine(frame.filename, frame.lineno, frame.name, text.strip())
    return None


def _parse_frames(stack: str) -> list[tuple[str, int, str, str]]:
    frames = []
    lines = stack.splitlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if not line.startswith('File "'):
            continue
        try:
            filename, rest = line[len('File "') :].split('", line ', 1)
            number, _, function = rest.partition(", in ")
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            code = "" if following.startswith('File "') else following
            frames.append((filename, int(number), function, code))
        except ValueError:
            continue
    return frames


def _failure_line(error: BaseException, module: torch.nn.Module) -> SourceLine | None:
    """The line of ``module``'s own code where tracing failed."""
    source = getattr(type(module).forward, "__code__", None)
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if source is not None and f.filename == source.co_filename]
    outside = [f for f in frames if not f.filename.startswith(_TORCH_DIR)]
    frame = (own or outside or [None])[-1]
    if frame is None:
        return None
    return SourceLine(frame.filename, frame.lineno or 0, frame.name, (frame.line or "").strip())


def _trace(path: str, module: torch.nn.Module, inputs: tuple[Any, ...]) -> Traced:
    tracer = _OneLevel(inputs)
    try:
        graph = tracer.trace(module)
    except Exception as error:  # fx raises TraceError, TypeError, ... from the user's code
        if isinstance(error, ShapeError):
            error = torch.fx.proxy.TraceError(
                "a condition on tensor values (not shapes) decides the control flow"
            ).with_traceback(error.__traceback__)
        where = _failure_line(error, module)
        name = type(module).__name__
        at = f" at {where}" if where else ""
        hand = (
            f"write that submodule by hand and pass it as leaves={{{path!r}: jax_module}}"
            if path
            else "move that part into a submodule written by hand (leaves=)"
        )
        raise GenerateError(
            f"torch.fx cannot trace {name}.forward{at} ({type(error).__name__}: {error}). "
            "Control flow that depends on tensor values cannot become one traced program: "
            f"move the data-dependent part into a helper marked with torch.fx.wrap, or {hand}"
        ) from error
    traced = Traced(path, module, graph)
    for node in graph.nodes:
        traced.lines[node] = user_line(node.meta.get("stack_trace"))
    return traced


def _abstract(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty(value.shape, dtype=value.dtype)
    if isinstance(value, tuple | list):
        return tuple(_abstract(v) for v in value)
    return value


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.fx.GraphModule, values: dict[torch.fx.Node, Any]):
        super().__init__(module)
        self.recorded = values

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        self.recorded[n] = _abstract(result)
        return result


def _module_calls(
    model: torch.nn.Module, example_inputs: tuple[Any, ...], outputs: dict[str, Any]
) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The arguments each module receives on the example inputs (first call); its output's
    shapes go into ``outputs``."""
    seen: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    handles = []
    for path, sub in model.named_modules():

        def before(_module, args, kwargs, path=path):
            seen.setdefault(path, (args, kwargs))

        def after(_module, _args, output, path=path):
            outputs.setdefault(path, _abstract(output))

        handles.append(sub.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(sub.register_forward_hook(after))
    try:
        model(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def trace_model(
    model: torch.nn.Module, example_inputs: tuple[Any, ...], leaves: set[str]
) -> tuple[dict[str, Traced], dict[str, Any]]:
    """``{path: Traced}`` for the root and every submodule of a user's class that is called
    (outside torch.nn's own layers and the paths in ``leaves``), in ``named_modules`` order;
    and every module's output on the example (empty tensors of its shapes), by path."""
    work = copy.deepcopy(model)  # running it moves batch-norm statistics; the user's stays as is
    user_paths = {
        path
        for path, sub in work.named_modules()
        if (path == "" or not is_torch_layer(sub))
        and not any(path == leaf or path.startswith(leaf + ".") for leaf in leaves)
    }
    # A user's module inside a torch layer other than a container is torch's business.
    containers = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
    for path, sub in work.named_modules():
        if path and is_torch_layer(sub) and not isinstance(sub, containers):
            user_paths = {p for p in user_paths if not p.startswith(path + ".")}
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    originals = dict(model.named_modules())
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        outputs: dict[str, Any] = {}
        inputs = _module_calls(work, example_inputs, outputs)
        traced: dict[str, Traced] = {}
        for path, sub in work.named_modules():
            if path not in user_paths or path not in inputs:
                continue
            args, kwargs = inputs[path]
            one = _trace(path, sub, args)
            one.module = originals[path]
            if kwargs:
                raise GenerateError(
                    f"{path or 'the model'} is called with keyword arguments "
                    f"({', '.join(kwargs)}); generate_port follows positional calls only"
                )
            _Recorder(torch.fx.GraphModule(sub, one.graph), one.values).run(*args)
            traced[path] = one
    return traced, outputs
