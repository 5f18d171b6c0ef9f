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

import keyword
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from jaxnets import nn
from parity.generate import layers, layout, ops
from parity.generate.call import CallWriter, join
from parity.generate.trace import GenerateError, Traced

__all__ = ["Generator", "Source"]


@dataclass
class Source:
    """What the generator wrote: the module's text and the layouts the check compares in."""

    text: str
    class_name: str
    output_layouts: dict[str, list[tuple[int, ...]]]


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
            want = self._first_takes(join(plan.representative, str(first.target)), len(out[i]))
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
            return None if first is None else self._first_takes(join(path, first[0]), rank)
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
        writer = CallWriter(self, plan)
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
                built = self._build(join(path, name), child, lit, plan, name)
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
                built = self._build(join(path, name), child, layers.Writer(), inner_plan, name)
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
