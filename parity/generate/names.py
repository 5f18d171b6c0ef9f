"""Names and the final text of a ``__call__``: the names the user's code gave its values (read
from the line fx recorded for each op), and the rewrites that make the lines read as written
(``q, k, v = ...`` unpacking, ``return f(x)``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.fx

from parity.generate import ops
from parity.generate.trace import SourceLine, Traced

__all__ = ["Line", "Kept", "source_names", "unpacked", "returned", "substitute"]


@dataclass
class Line:
    holder: str | None  # the node whose variable the line assigns
    text: str
    refs: frozenset[str]
    indent: int = 0
    comment: str | None = None
    droppable: bool = False  # a name the user's code gave, left out where nothing reads it
    unpack: tuple[str, int, int, str] | None = None  # (tuple's node, index, length, its text)


Kept = list[tuple[int, Line, "str | None", str]]


def unpacked(kept: Kept, last_use: dict[str, int], final: dict[str, str]) -> Kept:
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
        merged_line = Line(None, "", frozenset(), line.indent, line.comment)
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous[1].holder == base
            and previous[1].indent == line.indent
            and last_use.get(base, -1) <= run[-1][0]
        ):
            out[-1] = (previous[0], previous[1], targets, previous[3])
        else:
            out.append((index, merged_line, targets, substitute(whole, final)))
        i += count
    return out


def returned(kept: Kept) -> Kept:
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


def substitute(text: str, final: dict[str, str]) -> str:
    pieces = text.split("\x00")
    return "".join(final.get(p, p) if i % 2 else p for i, p in enumerate(pieces))


def source_names(traced: Traced) -> dict[str, str]:
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
