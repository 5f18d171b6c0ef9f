"""The back end: traced graphs to one NNX class per torch module class, as source text.

``__init__`` builds the same attributes as torch's (``jaxnets.nn`` layers with torch's
constructor arguments, the user's own classes, ``nnx.Param`` / ``nnx.BatchStat`` for tensors a
module holds itself); ``__call__`` is one line per torch operation, named as the user's code
named it where fx recorded the line (``B, T, C = x.size()``), with that line as a comment. A
class used several times takes the constructor arguments that differ between its uses, and an
attribute that is ``None`` in some uses (a ResNet block's ``downsample``) is passed in and
called under ``if self.downsample is not None``.
"""

from __future__ import annotations

import ast
import keyword
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from jaxnets import nn
from parity.generate import layers, layout, ops
from parity.generate.trace import GenerateError, SourceLine, Traced
from parity.generate.values import Num, Seq, Tensor, var

__all__ = ["Generator", "Source"]


@dataclass
class Source:
    """What the generator wrote: the module's text and the layouts the check compares in."""

    text: str
    class_name: str
    output_layouts: dict[str, list[tuple[int, ...]]]


@dataclass
class _Line:
    holder: str | None  # the node whose variable the line assigns
    text: str
    refs: frozenset[str]
    indent: int = 0
    comment: str | None = None
    droppable: bool = False  # a name the user's code gave, left out where nothing reads it
    unpack: tuple[str, int, int, str] | None = None  # (tuple's node, index, length, its text)


@dataclass
class _ClassPlan:
    """One generated class: its name, the instances it serves, the instance its code is read
    from, the attributes passed in (present in some instances only), the layouts it was
    written for and the layouts of what it returns."""

    name: str
    paths: list[str]
    representative: str
    optional: list[str] = field(default_factory=list)
    input_perms: list[Any] | None = None
    output: Any = None
    call_lines: list[str] = field(default_factory=list)
    # relative path -> per call, the layouts of the output arrays
    layouts: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    flatten_flags: dict[str, bool] = field(default_factory=dict)
    uses_random: bool = False
    call_args: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)  # (name, default source)
    init_lines: list[str] = field(default_factory=list)
    # per instance path: (parameter, value) in the order of ``params``
    instance_args: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)


class Generator:
    """Writes the port of one traced model."""

    def __init__(
        self,
        model: torch.nn.Module,
        traced: dict[str, Traced],
        outputs: dict[str, Any],
        *,
        channels_last: bool,
        class_name: str | None,
        leaves: set[str],
    ):
        self.model = model
        self.modules = dict(model.named_modules())
        self.traced = traced
        self.outputs = outputs
        self.channels_last = channels_last
        self.leaves = leaves  # attributes of the root written by hand, passed to its __init__
        self.plans = self._plan_classes(class_name)
        self.plan_of = {path: plan for plan in self.plans for path in plan.paths}

    # ------------------------------------------------------------------------- planning

    def _plan_classes(self, class_name: str | None) -> list[_ClassPlan]:
        by_class: dict[type, list[str]] = defaultdict(list)
        for path in self.traced:
            by_class[type(self.modules[path])].append(path)
        plans: list[_ClassPlan] = []
        taken: set[str] = set()
        for cls, paths in by_class.items():
            base = class_name if (class_name and "" in paths) else cls.__name__
            for group, optional in self._variants(paths):
                name = base
                k = 2
                while name in taken:
                    name, k = f"{base}{k}", k + 1
                taken.add(name)
                # The fullest instance (every optional attribute present) is the one read.
                fullest = max(group, key=lambda p: len(self.traced[p].graph.nodes))
                plans.append(_ClassPlan(name, group, fullest, optional))
        return plans

    def _variants(self, paths: list[str]) -> list[tuple[list[str], list[str]]]:
        """Instances grouped by the code they need; each group's optional attributes."""
        optional = sorted(
            {
                name
                for path in paths
                for name, _ in self.modules[path].__dict__.get("_modules", {}).items()
                if any(self.modules[p]._modules.get(name) is None for p in paths)
                and any(self.modules[p]._modules.get(name) is not None for p in paths)
            }
        )
        reduced = {p: _signature(self.traced[p].graph, optional) for p in paths}
        if len(set(reduced.values())) == 1:
            return [(paths, optional)]
        groups: dict[Any, list[str]] = defaultdict(list)
        for p in paths:
            groups[_signature(self.traced[p].graph, [])].append(p)
        return [(group, []) for group in groups.values()]

    # ------------------------------------------------------------------------- writing

    def write(self, example_perms: list[Any]) -> Source:
        root = self.plan_of[""]
        self._write_call(root, example_perms)
        for plan in self._ordered():  # a class's uses need its parameters first
            if plan.input_perms is None:
                raise GenerateError(f"{plan.name} is never called; generate_port needs it used")
            self._write_init(plan)
        texts = [self._class_text(plan) for plan in self._ordered()]
        body = "\n\n".join(texts)
        return Source(_module_text(body, self.model), root.name, self._layouts())

    def _ordered(self) -> list[_ClassPlan]:
        """Every class after the classes it uses (their parameters are known then, and the
        source reads bottom-up, as people write it)."""
        order: list[_ClassPlan] = []

        def visit(plan: _ClassPlan) -> None:
            if any(p is plan for p in order):
                return
            for path in self.traced:
                if (
                    any(
                        path != base and path.startswith(f"{base}.") or (base == "" and path)
                        for base in plan.paths
                    )
                    and _parent_plan(self, path) is plan
                ):
                    visit(self.plan_of[path])
            order.append(plan)

        for plan in self.plans:
            visit(plan)
        return order

    def _layouts(self) -> dict[str, list[tuple[int, ...]]]:
        out: dict[str, list[tuple[int, ...]]] = {}

        def visit(plan: _ClassPlan, prefix: str) -> None:
            for rel, perms in plan.layouts.items():
                path = f"{prefix}.{rel}" if prefix and rel else (rel or prefix)
                out.setdefault(path, []).extend(perms)

        for plan in self.plans:
            for path in plan.paths:
                visit(plan, path)
        return out

    def preferred(self, plan: _ClassPlan, perms: list[Any]) -> list[Any]:
        """The layouts a class is best written for: each input in the layout its first use
        takes (a convolution's channels-last), else as it comes."""
        if plan.input_perms is not None:
            return plan.input_perms
        traced = self.traced[plan.representative]
        placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
        out = list(perms)
        for i, node in enumerate(placeholders):
            if i >= len(out) or out[i] is None or not node.users:
                continue
            first = next(iter(node.users))
            if first.op != "call_module" or first.args[0] is not node:
                continue
            want = self._first_takes(_join(plan.representative, str(first.target)), len(out[i]))
            if want is not None:
                out[i] = want
        return out

    def _first_takes(self, path: str, rank: int) -> Any:
        module = self.modules[path]
        if path in self.traced:
            plan = self.plan_of[path]
            return self.preferred(plan, [layout.identity(rank)])[0]
        if isinstance(module, torch.nn.Sequential):
            first = next(iter(module.named_children()), None)
            return None if first is None else self._first_takes(_join(path, first[0]), rank)
        name = type(module).__name__
        if name == "Flatten" or not hasattr(nn, name):
            return None
        return layers.takes(name, getattr(nn, name), rank)

    def _write_call(self, plan: _ClassPlan, input_perms: list[Any]) -> Any:
        """Write ``plan``'s ``__call__`` for inputs in ``input_perms`` (once) and give the
        layouts of what it returns."""
        if plan.input_perms is not None:
            return plan.output
        plan.input_perms = input_perms
        writer = _CallWriter(self, plan)
        plan.output = writer.run(input_perms)
        return plan.output

    def _write_init(self, plan: _ClassPlan) -> None:
        """``__init__``: the instances' attributes, with the values that differ between them
        as parameters."""
        rendered = [self._init_body(plan, path) for path in plan.paths]
        templates = {tuple(lines) for lines, _ in rendered}
        if len(templates) != 1:
            raise GenerateError(
                f"the instances of {plan.name} ({', '.join(plan.paths)}) build different "
                "layers; generate_port cannot write one class for them"
            )
        lines = list(rendered[0][0])
        slots = [values for _, values in rendered]  # per instance: [(name, value, default)]
        names: dict[tuple, str] = {}
        first_slot: dict[tuple, int] = {}
        substitutions: list[str] = []
        for k, (slot_name, _, default) in enumerate(slots[0]):
            column = tuple(layers.literal(inst[k][1]) for inst in slots)
            keyword_arg = default is not _POSITIONAL
            if len(set(column)) == 1:
                if keyword_arg and layers.same(slots[0][k][1], default):
                    substitutions.append("")
                else:
                    substitutions.append(f"{slot_name}={column[0]}" if keyword_arg else column[0])
                continue
            if column not in names:
                name = slot_name
                while name in names.values() or keyword.iskeyword(name):
                    name = f"{name}_"
                names[column] = name
                first_slot[column] = k
            substitutions.append(f"{slot_name}={names[column]}" if keyword_arg else names[column])
        plan.params = [
            (name, type(slots[0][first_slot[column]][1]).__name__) for column, name in names.items()
        ]
        for i, path in enumerate(plan.paths):
            plan.instance_args[path] = [
                (name, slots[i][first_slot[column]][1]) for column, name in names.items()
            ]
        plan.init_lines = [_fill(line, substitutions) for line in lines]

    def _init_body(self, plan: _ClassPlan, path: str) -> tuple[list[str], list[tuple[str, Any]]]:
        module = self.modules[path]
        lit = _Slots()
        values = lit.values

        lines = []
        for name, child in module._modules.items():
            if name in plan.optional:
                continue
            if child is None:
                lines.append(f"self.{name} = None")
            else:
                built = self._build(_join(path, name), child, lit, plan, name)
                lines.append(f"self.{name} = {built}")
        # torch keeps an attribute set to None outside its modules: written last, in all uses.
        lines += [f"self.{name} = {name}" for name in plan.optional]
        for name, param in module.named_parameters(recurse=False):
            lines.append(f"self.{name} = nnx.Param({_initial(param)})")
        for name, buffer in module.named_buffers(recurse=False):
            lines.append(f"self.{name} = nnx.BatchStat({_initial(buffer)})")
        if plan.uses_random:
            lines.append("self.rngs = rngs")
        return lines, values

    def _build(self, path: str, module: torch.nn.Module, lit, plan, rel: str) -> str:
        """Source building the module at ``path`` inside ``plan``'s class."""
        if path in self.leaves:
            return path
        if path in self.traced:
            return self._instance(path, lit)

        def child(sub_path: str, sub: torch.nn.Module) -> str:
            return self._build(sub_path, sub, lit, plan, sub_path[len(path) + 1 :])

        text = layers.constructor(module, child, path, lit)
        flatten = plan.flatten_flags.get(_relative(self, plan, path))
        if flatten is False:
            text = text[:-1] + (", " if not text.endswith("(") else "") + "channels_last=False)"
        return text

    def _instance(self, path: str, lit: layers.Writer) -> str:
        plan = self.plan_of[path]
        module = self.modules[path]
        parts = [lit.arg(name, value) for name, value in plan.instance_args.get(path, [])]
        for name in plan.optional:
            child = module._modules.get(name)
            if child is not None:
                # Built by the parent, as torch's code passes it in.
                inner_plan = _parent_plan(self, path)
                built = self._build(_join(path, name), child, layers.Writer(), inner_plan, name)
                parts.append(f"{name}={built}")
        parts.append("rngs=rngs")
        return f"{plan.name}({', '.join(parts)})"

    def _class_text(self, plan: _ClassPlan) -> str:
        torch_class = type(self.modules[plan.representative])
        doc = f'"""Port of ``{torch_class.__module__}.{torch_class.__qualname__}``."""'
        params = [f"{name}: {kind}" for name, kind in plan.params]
        params += [f"{name}: nnx.Module | None = None" for name in plan.optional]
        hand = [f"{name}: nnx.Module" for name in sorted(self.leaves)] if plan.paths == [""] else []
        signature = ", ".join(["self", *params, "*", *hand, "rngs: nnx.Rngs"])
        init = "\n".join(f"        {line}" for line in plan.init_lines) or "        pass"
        inputs = ", ".join(["self", *plan.call_args])
        call = "\n".join(plan.call_lines)
        return (
            f"class {plan.name}(nnx.Module):\n    {doc}\n\n"
            f"    def __init__({signature}):\n{init}\n\n"
            f"    def __call__({inputs}):\n{call}\n"
        )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _relative(gen: Generator, plan: _ClassPlan, path: str) -> str:
    for base in plan.paths:
        if base == "" or path.startswith(base + "."):
            return path[len(base) + 1 :] if base else path
    return path


def _parent_plan(gen: Generator, path: str) -> _ClassPlan:
    parts = path.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        candidate = ".".join(parts[:cut])
        if candidate in gen.plan_of:
            return gen.plan_of[candidate]
    return gen.plan_of[""]


_POSITIONAL = object()


class _Slots(layers.Writer):
    """Writes each argument as a numbered slot, filled once every instance is read."""

    def __init__(self) -> None:
        self.values: list[tuple[str, Any, Any]] = []

    def _slot(self, name: str, value: Any, default: Any) -> str:
        self.values.append((name, value, default))
        return f"\x01{len(self.values) - 1}\x01"

    def arg(self, name: str, value: Any) -> str:
        return self._slot(name, value, _POSITIONAL)

    def kwarg(self, name: str, value: Any, default: Any) -> str:
        return self._slot(name, value, default)


def _fill(line: str, substitutions: list[str]) -> str:
    pieces = line.split("\x01")
    text = "".join(substitutions[int(p)] if i % 2 else p for i, p in enumerate(pieces))
    # Keyword arguments left out leave empty places in their argument lists.
    while ", , " in text or "(, " in text or ", )" in text:
        text = text.replace(", , ", ", ").replace("(, ", "(").replace(", )", ")")
    return text


def _initial(tensor: torch.Tensor) -> str:
    """Source for a tensor's starting value: recognised patterns, small constants, or zeros
    (the values come with the torch state dict)."""
    t = tensor.detach().cpu()
    shape = tuple(t.shape)
    dtype = "" if t.is_floating_point() else f", {ops.expr_of(t.dtype)}"
    if t.numel() and bool((t == 0).all()):
        return f"jnp.zeros({shape}{dtype})"
    if t.numel() and bool((t == 1).all()):
        return f"jnp.ones({shape}{dtype})"
    if t.dim() >= 2 and t.shape[-1] == t.shape[-2]:
        n = t.shape[-1]
        tril = torch.tril(torch.ones(n, n, dtype=t.dtype))
        if bool((t == tril).all()):
            square = f"jnp.tril(jnp.ones(({n}, {n}){dtype}))"
            return square if t.dim() == 2 else f"{square}.reshape({shape})"
    if t.numel() <= 8:
        return f"jnp.asarray({t.tolist()!r}{dtype})"
    return f"jnp.zeros({shape}{dtype})"


def _signature(graph: torch.fx.Graph, optional: list[str]) -> tuple:
    """The graph's structure, with calls of ``optional`` attributes taken out (their users
    read the call's input instead)."""
    replaced: dict[torch.fx.Node, torch.fx.Node] = {}
    index: dict[torch.fx.Node, int] = {}
    out = []

    def norm(arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            while arg in replaced:
                arg = replaced[arg]
            return ("node", index.get(arg, -1))
        if isinstance(arg, list | tuple):
            return tuple(norm(a) for a in arg)
        if isinstance(arg, dict):
            return tuple(sorted((k, norm(v)) for k, v in arg.items()))
        if isinstance(arg, slice):
            return ("slice", norm(arg.start), norm(arg.stop), norm(arg.step))
        return repr(arg)

    for node in graph.nodes:
        if node.op == "call_module" and str(node.target).split(".")[0] in optional:
            replaced[node] = node.args[0]
            continue
        index[node] = len(out)
        target = (
            node.target
            if isinstance(node.target, str)
            else getattr(node.target, "__name__", repr(node.target))
        )
        out.append((node.op, target, norm(node.args), norm(node.kwargs)))
    return tuple(out)


def _module_text(body: str, model: torch.nn.Module) -> str:
    header = [
        f'"""The JAX port of ``{type(model).__qualname__}``, written by parity.generate_port."""',
        "",
    ]
    imports = ["from __future__ import annotations", ""]
    std = []
    if "math." in body:
        std.append("import math")
    if "OrderedDict" in body:
        std.append("from collections import OrderedDict")
    third = []
    if "jax." in body.replace("jax.numpy", ""):
        third.append("import jax")
    if "jnp." in body:
        third.append("import jax.numpy as jnp")
    third.append("from flax import nnx")
    third.append("")
    third.append("from jaxnets import nn")
    if "F." in body:
        third.append("from jaxnets.nn import functional as F")
    if "random." in body:
        third.append("from jaxnets.nn import random")
    parts = header + imports + (std + [""] if std else []) + third
    return "\n".join(parts) + "\n\n\n" + body


# ----------------------------------------------------------------------------- __call__


class _CallWriter:
    """Writes one class's ``__call__`` from its representative's graph."""

    def __init__(self, gen: Generator, plan: _ClassPlan):
        self.gen = gen
        self.plan = plan
        self.traced = gen.traced[plan.representative]
        self.values: dict[torch.fx.Node, Any] = {}
        self.lines: list[_Line] = []
        self.node_of = {n.name: n for n in self.traced.graph.nodes}
        self.names = _source_names(self.traced)

    # --- the interface ops.py uses

    def recorded(self, node: torch.fx.Node) -> Any:
        return self.traced.values.get(node)

    def emit(self, node: torch.fx.Node, text: str, refs: frozenset[str], indent: int = 0) -> str:
        self.lines.append(_Line(node.name, text, refs, indent, self._comment(node)))
        return var(node.name)

    def tensor(self, node, text: str, perm, refs) -> Tensor:
        value = self.recorded(node)
        name = self.emit(node, text, refs)
        return Tensor(name, tuple(perm), tuple(value.shape), value.dtype, frozenset({node.name}))

    def convert(self, value: Any, perm) -> Any:
        if not isinstance(value, Tensor) or value.perm == tuple(perm):
            return value
        text = layout.conversion(value.perm, tuple(perm), value.expr)
        return Tensor(text, tuple(perm), value.shape, value.dtype, value.refs)

    def uses_random(self) -> None:
        self.plan.uses_random = True

    def fail(self, node: torch.fx.Node, message: str) -> Any:
        line = self.traced.lines.get(node)
        where = f"{line}" if line else f"{type(self.traced.module).__name__}.forward"
        path = self.plan.representative
        hand = (
            f"write {path!r} by hand and pass it as leaves={{{path!r}: jax_module}}"
            if path
            else "write that part of the port by hand"
        )
        raise GenerateError(f"{message}, at {where}; {hand}")

    # --- the walk

    def _comment(self, node: torch.fx.Node) -> str | None:
        line = self.traced.lines.get(node)
        return line.text if line else None

    def run(self, input_perms: list[Any]) -> Any:
        placeholders = [n for n in self.traced.graph.nodes if n.op == "placeholder"]
        self.plan.call_args = [n.name for n in placeholders]
        for node, perm in zip(placeholders, input_perms, strict=True):
            value = self.recorded(node)
            if isinstance(value, torch.Tensor):
                self.values[node] = Tensor(
                    var(node.name), perm, tuple(value.shape), value.dtype, frozenset({node.name})
                )
            else:
                self.values[node] = Num(var(node.name), value, frozenset({node.name}))
        output = None
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                output = self._output(node)
                break
            self.values[node] = self._node(node)
        self.plan.call_lines = self._render()
        return output

    def _arg(self, arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            return self.values[arg]
        if isinstance(arg, list | tuple):
            return type(arg)(self._arg(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self._arg(v) for k, v in arg.items()}
        if isinstance(arg, slice):
            return slice(self._arg(arg.start), self._arg(arg.stop), self._arg(arg.step))
        return arg

    def _node(self, node: torch.fx.Node) -> Any:
        if node.op == "get_attr":
            return self._get_attr(node)
        args, kwargs = self._arg(node.args), self._arg(node.kwargs)
        if node.op == "call_module":
            return self._call_module(node, args, kwargs)
        name = ops.op_name(node)
        handler = ops.handler_for(name)
        if handler is None:
            return self.fail(node, f"the op {name} has no translation in parity.generate_port")
        value = handler(self, node, args, kwargs)
        unpack = None
        if name == "operator.getitem" and isinstance(args[0], Seq) and isinstance(args[1], int):
            base = node.args[0]
            unpack = (base.name, args[1], len(args[0].items), args[0].expr)
        if node.name in self.names and not self._emitted(node):
            # The user's code named this value (``B, T, C = x.size()``, ``q, k, v = ...``).
            held = var(node.name)
            if isinstance(value, Tensor):
                self.emit(node, value.expr, value.refs)
                self.lines[-1].droppable = True
                self.lines[-1].unpack = unpack
                return Tensor(held, value.perm, value.shape, value.dtype, frozenset({node.name}))
            if isinstance(value, Num) and value.refs:
                self.emit(node, value.expr, value.refs)
                self.lines[-1].droppable = True
                self.lines[-1].unpack = unpack
                return Num(held, value.value, frozenset({node.name}))
        return value

    def _emitted(self, node: torch.fx.Node) -> bool:
        return any(line.holder == node.name for line in self.lines)

    def _get_attr(self, node: torch.fx.Node) -> Any:
        target = str(node.target)
        module = self.traced.module
        if "." in target:
            return self.fail(
                node,
                f"reads {target}, a tensor of a submodule; jaxnets layers keep their own "
                "layouts, so write this part by hand",
            )
        value = getattr(module, target)
        return Tensor(
            f"self.{target}[...]",
            layout.identity(value.dim()),
            tuple(value.shape),
            value.dtype,
            frozenset(),
        )

    def _attribute(self, target: str) -> str:
        """``self.layer1[0]`` for the fx target ``layer1.0``."""
        module = self.traced.module
        text = "self"
        for part in target.split("."):
            if isinstance(module, torch.nn.Sequential | torch.nn.ModuleList) and part.isdigit():
                text += f"[{part}]"
            elif isinstance(module, torch.nn.ModuleDict):
                text += f"[{part!r}]"
            else:
                text += f".{part}"
            module = module._modules[part]
        return text

    def _call_module(self, node: torch.fx.Node, args, kwargs) -> Any:
        target = str(node.target)
        base = self.plan.representative
        path = _join(base, target)
        module = self.gen.modules[path]
        if kwargs:
            return self.fail(node, "keyword arguments to a submodule call are not followed")
        tensors = [a for a in args if isinstance(a, Tensor)]
        if path in self.gen.traced:
            child_plan = self.gen.plan_of[path]
            perms = [a.perm if isinstance(a, Tensor) else None for a in args]
            if child_plan.input_perms is not None:
                perms = child_plan.input_perms
            else:
                perms = self.gen.preferred(child_plan, perms)
            moved = [
                self.convert(a, p) if isinstance(a, Tensor) else a
                for a, p in zip(args, perms, strict=True)
            ]
            out_perms = self.gen._write_call(child_plan, perms)
            self._record(target, self.recorded(node), out_perms)
            return self._emit_call(node, target, moved, out_perms)
        if path in self.gen.leaves:
            moved = [self.convert(t, layout.identity(t.rank)) for t in tensors]
            out_perms = _default_perms(self.recorded(node))
            self._record(target, self.recorded(node), out_perms)
            return self._emit_call(node, target, moved, out_perms)
        if len(tensors) != len(args):
            return self.fail(node, "a layer called with non-tensor arguments is not followed")
        moved, out_perms = self._through_layer(node, target, module, list(args))
        return self._emit_call(node, target, moved, out_perms)

    def _through_layer(self, node, target: str, module: torch.nn.Module, args: list[Tensor]):
        """The inputs moved to the layouts the torch layer's twin takes, and its outputs'
        layouts; a container passes through its children in order."""
        if isinstance(module, torch.nn.Sequential):
            value = args[0]
            entry = None
            for i, (name, child) in enumerate(module.named_children()):
                rel = f"{target}.{name}"
                full = _join(self.plan.representative, rel)
                recorded = self.gen.outputs[full]
                plan = self.gen.plan_of.get(full) if full in self.gen.traced else None
                if plan is not None:
                    want = (
                        self.gen.preferred(plan, [value.perm])[0]
                        if plan.input_perms is None
                        else plan.input_perms[0]
                    )
                else:
                    want = self._takes(child, value, rel)
                if want is not None and want != value.perm:
                    if i > 0:
                        return self.fail(
                            node,
                            f"{rel} ({type(child).__name__}) takes another layout than the "
                            f"layer before it in {target} gives",
                        )
                    value = self.convert(value, want)
                entry = entry or value
                if plan is not None:
                    outs = self.gen._write_call(plan, [value.perm])
                else:
                    outs = self._gives(child, value, recorded)
                self._record(rel, recorded, outs)
                if not isinstance(recorded, torch.Tensor):
                    return self.fail(node, f"{rel} returns several values inside a Sequential")
                value = Tensor(value.expr, outs, tuple(recorded.shape), recorded.dtype, value.refs)
            self._record(target, self.recorded(node), value.perm)
            return [entry or args[0]], value.perm
        value = args[0]
        need = self._takes(module, value, target)
        moved = [
            self.convert(a, need) if need is not None and i == 0 else a for i, a in enumerate(args)
        ]
        if len(moved) > 1:  # attention, recurrent state: torch's layout
            moved = [moved[0]] + [self.convert(a, layout.identity(a.rank)) for a in moved[1:]]
        outs = self._gives(module, moved[0], self.recorded(node))
        self._record(target, self.recorded(node), outs)
        return moved, outs

    def _takes(self, module: torch.nn.Module, value: Tensor, rel: str):
        name = type(module).__name__
        jax_layer = getattr(nn, name, None)
        if name == "Flatten":
            cl = value.perm == layout.channels_last(value.rank) and value.rank >= 3
            if not cl and value.perm != layout.identity(value.rank):
                return layout.identity(value.rank)
            self.plan.flatten_flags[rel] = cl
            return None
        return layers.takes(name, jax_layer, value.rank)

    def _gives(self, module: torch.nn.Module, value: Tensor, recorded: Any):
        name = type(module).__name__
        jax_layer = getattr(nn, name, None)
        if isinstance(recorded, torch.Tensor):
            return layers.gives(jax_layer, value.perm, recorded.dim(), name)
        return _default_perms(recorded)

    def _record(self, rel: str, recorded: Any, perms: Any) -> None:
        flat: list[tuple[int, ...]] = []

        def visit(r: Any, p: Any) -> None:
            if isinstance(r, torch.Tensor):
                flat.append(tuple(p))
            elif isinstance(r, tuple):
                for ri, pi in zip(r, p, strict=True):
                    visit(ri, pi)

        visit(recorded, perms)
        self.plan.layouts.setdefault(rel, []).extend(flat)

    def _emit_call(self, node, target: str, args: list[Any], out_perms: Any) -> Any:
        call = f"{self._attribute(target)}({', '.join(ops.expr_of(a) for a in args)})"
        refs = frozenset().union(*(getattr(a, "refs", frozenset()) for a in args))
        attribute = target.split(".")[0]
        if attribute in self.plan.optional:
            source = args[0]
            if out_perms != source.perm:
                call = layout.conversion(out_perms, source.perm, call)
            self.emit(node, source.expr, refs)
            self.emit(node, f"if self.{attribute} is not None:", frozenset(), indent=0)
            self.lines[-1].holder = None
            self.emit(node, call, refs, indent=1)
            out_perms = source.perm
        else:
            self.emit(node, call, refs)
        return _structured(var(node.name), self.recorded(node), out_perms, node.name)

    def _output(self, node: torch.fx.Node) -> Any:
        result = self._arg(node.args[0])
        root = self.plan.paths == [""]

        def settle(value: Any) -> Any:
            if isinstance(value, Tensor):
                if root:
                    want = (
                        layout.channels_last(value.rank)
                        if self.gen.channels_last and value.dtype.is_floating_point
                        else layout.identity(value.rank)
                    )
                    return self.convert(value, want)
                return value
            if isinstance(value, Seq):
                return [settle(v) for v in value.items]
            if isinstance(value, list | tuple):
                return [settle(v) for v in value]
            return value

        settled = settle(result)
        text = _tuple_text(settled)
        refs = frozenset().union(*(getattr(v, "refs", frozenset()) for v in _flatten(settled)))
        self.lines.append(_Line(None, f"return {text}", refs))
        perms = _perms_of(settled)
        if root:
            self._record("", self.recorded_output(node), perms)
        return perms

    def recorded_output(self, node: torch.fx.Node) -> Any:
        def value(arg: Any) -> Any:
            if isinstance(arg, torch.fx.Node):
                return self.traced.values[arg]
            if isinstance(arg, list | tuple):
                return tuple(value(a) for a in arg)
            return arg

        return value(node.args[0])

    # --- names and text

    def _render(self) -> list[str]:
        names = self.names
        last_use: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            for ref in line.refs:
                last_use[ref] = i
        holders: dict[str, str] = {}  # variable -> node holding it
        final: dict[str, str] = {}
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                final[node.name] = node.name
                holders[node.name] = node.name
        kept: list[tuple[int, _Line, str | None, str]] = []  # (index, line, target, text)
        for i, line in enumerate(self.lines):
            if line.droppable and last_use.get(line.holder, -1) <= i:
                continue
            target = None
            if line.holder is not None and not line.text.startswith("if "):
                if line.holder not in final:
                    final[line.holder] = self._pick(line.holder, names, holders, last_use, i)
                    holders[final[line.holder]] = line.holder
                target = final[line.holder]
            kept.append((i, line, target, _substitute(line.text, final)))
        kept = _unpacked(kept, last_use, final)
        kept = _returned(kept)
        out: list[str] = []
        previous_comment = None
        for _, line, target, text in kept:
            indent = "        " + "    " * line.indent
            written = f"{target} = {text}" if target is not None else text
            if line.comment and line.comment != previous_comment and line.comment != written:
                out.append(f"{indent}# {line.comment}")
                previous_comment = line.comment
            out.append(f"{indent}{written}")
        return out

    def _pick(self, holder: str, names: dict[str, str], holders, last_use, i) -> str:
        for candidate in (names.get(holder), holder):
            if candidate is None or keyword.iskeyword(candidate) or candidate == "self":
                continue
            current = holders.get(candidate)
            if current is None or current == holder or last_use.get(current, -1) <= i:
                return candidate
        k = 1
        while f"{holder}_{k}" in holders:
            k += 1
        return f"{holder}_{k}"


Kept = list[tuple[int, _Line, "str | None", str]]


def _unpacked(kept: Kept, last_use: dict[str, int], final: dict[str, str]) -> Kept:
    """``q = split[0]``, ``k = split[1]``, ... right after ``split = ...`` and read nowhere else,
    as ``q, k, v = ...``; the same for the sizes of one ``x.size()``."""
    out: Kept = []
    i = 0
    while i < len(kept):
        index, line, target, text = kept[i]
        unpack = line.unpack
        if unpack is None or unpack[1] != 0:
            out.append(kept[i])
            i += 1
            continue
        base, _, count, whole = unpack
        run = kept[i : i + count]
        if len(run) != count or [r[1].unpack[:2] if r[1].unpack else None for r in run] != [
            (base, k) for k in range(count)
        ]:
            out.append(kept[i])
            i += 1
            continue
        targets = ", ".join(str(r[2]) for r in run)
        merged_line = _Line(None, "", frozenset(), line.indent, line.comment)
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous[1].holder == base
            and previous[1].indent == line.indent
            and last_use.get(base, -1) <= run[-1][0]
        ):
            out[-1] = (previous[0], previous[1], targets, previous[3])
        else:
            out.append((index, merged_line, targets, _substitute(whole, final)))
        i += count
    return out


def _returned(kept: Kept) -> Kept:
    """``y = f(x)`` then ``return y``, where nothing else reads ``y``, as ``return f(x)``."""
    if len(kept) < 2:
        return kept
    (index, line, target, value), (_, last, _, text) = kept[-2], kept[-1]
    if (
        target is None
        or line.holder is None
        or line.indent != 0
        or last.holder is not None
        or text != f"return {target}"
        or any(line.holder in other.refs for _, other, _, _ in kept[:-1])
    ):
        return kept
    return [*kept[:-2], (index, line, None, f"return {value}")]


def _substitute(text: str, final: dict[str, str]) -> str:
    pieces = text.split("\x00")
    return "".join(final.get(p, p) if i % 2 else p for i, p in enumerate(pieces))


def _default_perms(recorded: Any) -> Any:
    if isinstance(recorded, torch.Tensor):
        return layout.identity(recorded.dim())
    if isinstance(recorded, tuple):
        return tuple(_default_perms(r) for r in recorded)
    return None


def _structured(expr: str, recorded: Any, perms: Any, holder: str) -> Any:
    refs = frozenset({holder})
    if isinstance(recorded, torch.Tensor):
        return Tensor(expr, tuple(perms), tuple(recorded.shape), recorded.dtype, refs)
    if isinstance(recorded, tuple):
        items = [
            _structured(f"{expr}[{i}]", r, p, holder)
            for i, (r, p) in enumerate(zip(recorded, perms, strict=True))
        ]
        return Seq(expr, items, refs)
    return Num(expr, recorded, refs)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [v for item in value for v in _flatten(item)]
    return [value]


def _tuple_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        items = [_tuple_text(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return ops.expr_of(value)


def _perms_of(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.perm
    if isinstance(value, list | tuple):
        return tuple(_perms_of(v) for v in value)
    return None


def _source_names(traced: Traced) -> dict[str, str]:
    """Node name -> the name the user's code gave its value, from the recorded lines:
    ``x = ...`` names the line's last node, ``a, b = ...`` the items it unpacks."""
    by_line: dict[SourceLine, list[torch.fx.Node]] = defaultdict(list)
    for node in traced.graph.nodes:
        line = traced.lines.get(node)
        if line is not None and node.op not in ("placeholder", "output"):
            by_line[line].append(node)
    names: dict[str, str] = {}
    for line, nodes in by_line.items():
        try:
            statement = ast.parse(line.text).body[0]
        except (SyntaxError, IndexError):
            continue
        for run in _runs(nodes):  # a line in a loop ran once per iteration
            if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
                names[run[-1].name] = statement.target.id
                continue
            if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                names[run[-1].name] = target.id
            elif isinstance(target, ast.Tuple):
                _tuple_names(target, run, names)
    return names


def _runs(nodes: list[torch.fx.Node]) -> list[list[torch.fx.Node]]:
    """The nodes of one line split into the shortest repeating runs of the same ops."""

    def kind(node: torch.fx.Node) -> tuple[str, str]:
        target = node.target if isinstance(node.target, str) else ops.op_name(node)
        return node.op, "".join(c for c in str(target) if not c.isdigit())

    kinds = [kind(n) for n in nodes]
    for size in range(1, len(nodes) + 1):
        if len(nodes) % size == 0 and all(
            kinds[i : i + size] == kinds[:size] for i in range(0, len(nodes), size)
        ):
            return [nodes[i : i + size] for i in range(0, len(nodes), size)]
    return [nodes]


def _tuple_names(target: ast.Tuple, nodes: list[torch.fx.Node], names: dict[str, str]) -> None:
    """``a, (b, c) = value``: the getitem nodes of the line read ``value[0]``, ``value[1][0]``."""
    paths: dict[tuple[int, ...], str] = {}

    def walk(t: ast.expr, prefix: tuple[int, ...]) -> None:
        if isinstance(t, ast.Name):
            paths[prefix] = t.id
        elif isinstance(t, ast.Tuple):
            for i, item in enumerate(t.elts):
                walk(item, (*prefix, i))

    walk(target, ())
    getitems = [
        n for n in nodes if n.op == "call_function" and ops.op_name(n) == "operator.getitem"
    ]
    source = next((n for n in reversed(nodes) if n not in getitems), None)
    for node in getitems:
        path: list[int] = []
        current = node
        while current.op == "call_function" and ops.op_name(current) == "operator.getitem":
            index = current.args[1]
            if not isinstance(index, int):
                break
            path.insert(0, index)
            current = current.args[0]
        if current is source and tuple(path) in paths and paths[tuple(path)] != "_":
            names[node.name] = paths[tuple(path)]
