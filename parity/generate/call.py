"""Writing one class's ``__call__``: the representative instance's graph walked node by node,
each value's layout carried, each submodule call through the layouts its layer takes."""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any

import torch
import torch.fx

from jaxnets import nn
from parity.generate import layers, layout, ops
from parity.generate.names import Line, returned, source_names, substitute, unpacked
from parity.generate.trace import GenerateError
from parity.generate.values import Num, Seq, Tensor, var

if TYPE_CHECKING:
    from parity.generate.emit import Generator, _ClassPlan

__all__ = ["CallWriter", "join"]


def join(prefix: str, name: str) -> str:
    """A module path under ``prefix``."""
    return f"{prefix}.{name}" if prefix else name


class CallWriter:
    """Writes one class's ``__call__`` from its representative's graph."""

    def __init__(self, gen: Generator, plan: _ClassPlan):
        self.gen = gen
        self.plan = plan
        self.traced = gen.traced[plan.representative]
        self.values: dict[torch.fx.Node, Any] = {}
        self.lines: list[Line] = []
        self.node_of = {n.name: n for n in self.traced.graph.nodes}
        self.names = source_names(self.traced)

    # --- the interface ops.py uses

    def recorded(self, node: torch.fx.Node) -> Any:
        return self.traced.values.get(node)

    def emit(self, node: torch.fx.Node, text: str, refs: frozenset[str], indent: int = 0) -> str:
        self.lines.append(Line(node.name, text, refs, indent, self._comment(node)))
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
        path = join(base, target)
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
                full = join(self.plan.representative, rel)
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
            self.lines.append(Line(None, f"if self.{attribute} is not None:", frozenset()))
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
        self.lines.append(Line(None, f"return {text}", refs))
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
        kept: list[tuple[int, Line, str | None, str]] = []  # (index, line, target, text)
        for i, line in enumerate(self.lines):
            if line.droppable and last_use.get(line.holder, -1) <= i:
                continue
            target = None
            if line.holder is not None and not line.text.startswith("if "):
                if line.holder not in final:
                    final[line.holder] = self._pick(line.holder, names, holders, last_use, i)
                    holders[final[line.holder]] = line.holder
                target = final[line.holder]
            kept.append((i, line, target, substitute(line.text, final)))
        kept = unpacked(kept, last_use, final)
        kept = returned(kept)
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
