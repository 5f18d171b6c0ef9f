"""What ``parity.check_port`` found: a row per compared quantity, the verdict, the first divergence.

The rules are ``parity.compare``'s; this module applies them to the arrays a port check collects
and orders what failed. Within a dtype (float64 first), the first divergence is looked for in the
order a training step runs: a layer's output at the first step (the first failing leaf module in
torch's execution order, a container only if none of its leaves fails), the loss at the first
step, the first-step gradients, the losses of the later steps, then the buffers after the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from parity import compare

# A layer's float64 output within 1e-10 of its largest |torch output|: correct ports measure
# about 1e-15, broken ones 1e-5 or more. Buffers after a run are trajectories, held to the loss
# trajectory's 1e-8: a bias feeding a train-mode BatchNorm has a gradient of pure rounding noise,
# which Adam scales up to lr*noise/eps (1e-10 at lr 0.1), and its running mean carries that bias.
F64_OUTPUT_RTOL = 1e-10
F64_BUFFER_RTOL = compare.F64_LOSS_RTOL
# A training step's order: step 0's layer outputs and loss, the first-step gradients, then the
# later steps (each step's outputs before its loss), then the buffers after the run.
QUANTITY_ORDER = ("output0", "loss0", "grad", "step", "buffer")


@dataclass(frozen=True)
class Row:
    """One compared quantity in one dtype run.

    ``quantity`` is ``"output"`` (a module path), ``"grad"`` (a parameter), ``"buffer"`` or
    ``"loss"`` (the whole trajectory); ``step`` is the step judged (the first failing one for a
    failed loss row, ``steps`` for buffers after the run). ``max_rel_diff`` is ``max_abs_diff``
    over the largest ``|reference|``. ``leaf`` tells a module without children.
    """

    dtype: str
    quantity: str
    name: str
    step: int
    passed: bool
    max_abs_diff: float
    max_rel_diff: float
    rule: str
    detail: str
    leaf: bool = True
    jax_value: float | None = None
    torch_value: float | None = None
    reference_value: float | None = None


@dataclass(frozen=True)
class Divergence:
    """The first quantity that broke its rule: where, when, and the values there.

    ``layer`` is the torch module path (outputs), parameter or buffer name, or ``"loss"``;
    ``jax_value`` and ``torch_value`` are the two frameworks' values at the worst entry (in
    float32, ``reference_value`` is the float64 truth the rule measures against).
    """

    layer: str
    step: int
    quantity: str
    dtype: str
    jax_value: float | None
    torch_value: float | None
    reference_value: float | None
    detail: str

    def __str__(self) -> str:
        where = "the loss" if self.quantity == "loss" else f"{self.quantity} of {self.layer!r}"
        return f"{where} at step {self.step} ({self.dtype}): {self.detail}"


@dataclass
class PortReport:
    """The result of ``parity.check_port``: ``passed``, ``first_divergence``, the rows.

    ``losses`` maps each dtype run to ``{"torch": [...], "jax": [...]}`` per-step losses.
    """

    rows: list[Row]
    losses: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def first_divergence(self) -> Divergence | None:
        failed = [row for row in self.rows if not row.passed]
        if not failed:
            return None

        def rank(row: Row) -> tuple[int, int, int, int, int]:
            kind = row.quantity
            if kind in ("output", "loss"):
                kind = f"{kind}0" if row.step == 0 else "step"
            later = row.step if kind == "step" else 0
            # Leaves before containers; otherwise the rows keep their (execution) order.
            return (
                row.dtype != "float64",
                QUANTITY_ORDER.index(kind),
                later,
                row.quantity == "loss",
                not row.leaf,
            )

        row = min(failed, key=rank)  # min keeps the first of equal ranks
        return Divergence(
            row.name,
            row.step,
            row.quantity,
            row.dtype,
            row.jax_value,
            row.torch_value,
            row.reference_value,
            row.detail,
        )

    def to_json(self) -> dict[str, Any]:
        """``{"passed", "first_divergence", "rows", "losses"}`` of plain JSON types."""
        first = self.first_divergence
        doc = {
            "passed": self.passed,
            "first_divergence": None if first is None else asdict(first),
            "rows": [asdict(row) for row in self.rows],
            "losses": self.losses,
        }
        return _plain(doc)

    def __str__(self) -> str:
        columns = ("dtype", "quantity", "name", "step", "max|d|", "rel|d|", "rule", "result")
        body = [
            (
                row.dtype,
                row.quantity,
                row.name or "(root)",
                str(row.step),
                f"{row.max_abs_diff:.3g}",
                f"{row.max_rel_diff:.3g}",
                row.rule,
                "pass" if row.passed else "FAIL",
            )
            for row in self.rows
        ]
        widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
        lines = [
            "port check " + ("passed" if self.passed else "FAILED"),
            "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
        if self.first_divergence is not None:
            lines.append(f"first divergence: {self.first_divergence}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities (not JSON; a failed comparison may hold them) as None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scalar(a: np.ndarray, idx: tuple[int, ...]) -> float:
    return float(a[idx]) if a.size else float("nan")


def _worst(jax: np.ndarray, reference: np.ndarray) -> tuple[int, ...]:
    diff = np.abs(jax - reference)
    if not diff.size:
        return ()
    return np.unravel_index(int(np.argmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)


def _row(
    check: compare.Check,
    dtype: str,
    quantity: str,
    name: str,
    step: int,
    arrays: Sequence[np.ndarray],
    leaf: bool = True,
    at: tuple[int, ...] | None = None,
) -> Row:
    """A row from a ``compare.Check`` of ``arrays = (jax, torch[, float64 truth])``, showing the
    values at index ``at`` (default: where jax is furthest from the reference)."""
    jax, torch, *truth = arrays
    reference = truth[0] if truth else torch
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    idx = _worst(jax, reference) if at is None else at
    return Row(
        dtype,
        quantity,
        name,
        step,
        check.passed,
        check.max_abs_diff,
        check.max_abs_diff / scale if scale else check.max_abs_diff,
        check.rule,
        check.detail,
        leaf,
        _scalar(jax, idx),
        _scalar(torch, idx),
        _scalar(truth[0], idx) if truth else None,
    )


def _mismatch(dtype: str, quantity: str, name: str, step: int, detail: str, leaf: bool) -> Row:
    """A row for arrays that cannot be compared at all (shapes, call counts)."""
    inf = float("inf")
    return Row(dtype, quantity, name, step, False, inf, inf, "same shape", detail, leaf)


def _judge_arrays(
    dtype: str, name: str, arrays: Sequence[np.ndarray], *, label: str, rtol: float
) -> compare.Check:
    """The rule for one array (a layer output or a buffer): its own scale, no shared floor;
    ``rtol`` is the float64 tolerance."""
    if dtype == "float64":
        (check,) = compare.float64_values(
            {name: arrays[0]}, {name: arrays[1]}, label=label, rtol=rtol, floor=0.0
        )
    else:
        ensemble = {name: arrays[3]} if len(arrays) > 3 else None
        (check,) = compare.float32_values(
            {name: arrays[0]},
            {name: arrays[1]},
            {name: arrays[2]},
            ensemble64=ensemble,
            label=label,
        )
    return check


def _shapes_differ(arrays: Sequence[np.ndarray]) -> str | None:
    """Whether ``(jax, torch[, float64[, ensemble]])`` differ in shape (an ensemble's after its
    member axis)."""
    shapes = [a.shape for a in arrays[:3]]
    if len(arrays) > 3:
        shapes.append(arrays[3].shape[1:])
    if len(set(shapes)) == 1:
        return None
    sides = ("jax", "torch", "float64")
    return "shapes differ: " + ", ".join(f"{s} {sh}" for s, sh in zip(sides, shapes, strict=False))


def output_rows(
    dtype: str,
    order: Sequence[str],
    leaves: set[str],
    outputs: Sequence[Mapping[str, list[np.ndarray]]],
    step: int = 0,
) -> list[Row]:
    """Per module (torch execution order) and per call, the output rows of ``step``.

    ``outputs`` is ``(jax, torch[, float64 truth[, float64 ensemble]])``, each ``{path: [array
    per output leaf of each call]}`` (an ensemble's arrays with a leading member axis).
    """
    rows = []
    for path in order:
        leaf = path in leaves
        per_side = [side.get(path, []) for side in outputs]
        if len({len(s) for s in per_side}) != 1:
            counts = ", ".join(str(len(s)) for s in per_side)
            detail = f"output arrays per side (jax, torch[, float64]) differ: {counts}"
            rows.append(_mismatch(dtype, "output", path, step, detail, leaf))
            continue
        for k, arrays in enumerate(zip(*per_side, strict=True)):
            label = path if len(per_side[0]) == 1 else f"{path}[{k}]"
            problem = _shapes_differ(arrays)
            if problem:
                rows.append(_mismatch(dtype, "output", path, step, f"{label}: {problem}", leaf))
                continue
            check = _judge_arrays(dtype, label, arrays, label="output", rtol=F64_OUTPUT_RTOL)
            rows.append(_row(check, dtype, "output", path, step, arrays, leaf))
    return rows


def grad_rows(
    dtype: str, names: Sequence[str], grads: Sequence[Mapping[str, np.ndarray]]
) -> list[Row]:
    """First-step gradient rows, one per parameter in ``names`` order (``grads`` as outputs).

    The rule's floor runs over every parameter whose shapes agree; one that does not is a row
    of its own.
    """
    mismatched = {n: _shapes_differ([g[n] for g in grads]) for n in names}
    judged = [n for n in names if mismatched[n] is None]
    picked = [{n: g[n] for n in judged} for g in grads]
    if dtype == "float64":
        checks = compare.float64_gradients(*picked)
    else:
        checks = compare.float32_gradients(*picked)
    by_name = {check.quantity.split(" ", 1)[1]: check for check in checks}
    return [
        _row(by_name[n], dtype, "grad", n, 0, [g[n] for g in picked])
        if mismatched[n] is None
        else _mismatch(dtype, "grad", n, 0, mismatched[n], True)
        for n in names
    ]


def buffer_rows(
    dtype: str, names: Sequence[str], buffers: Sequence[Mapping[str, np.ndarray]], steps: int
) -> list[Row]:
    """Buffer rows after ``steps`` steps, each buffer on its own scale."""
    rows = []
    for name in names:
        arrays = [np.asarray(b[name], np.float64) for b in buffers]
        problem = _shapes_differ(arrays)
        if problem:
            rows.append(_mismatch(dtype, "buffer", name, steps, problem, True))
            continue
        check = _judge_arrays(dtype, name, arrays, label="buffer", rtol=F64_BUFFER_RTOL)
        rows.append(_row(check, dtype, "buffer", name, steps, arrays))
    return rows


def _first_failing_step(judge: Callable[[np.ndarray], compare.Check], jax, reference) -> int:
    """The first step whose loss breaks the rule.

    Steps after ``t`` are set to the reference, which leaves the rule's bound as it is (the
    bound depends only on the torch and float64 runs), so the first ``t`` whose prefix fails
    is the first failing step.
    """
    for t in range(len(jax)):
        trial = np.concatenate([jax[: t + 1], reference[t + 1 :]])
        if not judge(trial).passed:
            return t
    return 0


def loss_row(dtype: str, losses: Sequence[np.ndarray]) -> Row:
    """The loss-trajectory row: ``losses = (jax, torch[, float64 truth[, ensemble]])``, the
    ensemble ``[members, steps]``."""
    jax, torch, *truth = (np.asarray(a, np.float64) for a in losses)
    ensemble = truth[1] if len(truth) > 1 else None
    if dtype == "float64":

        def judge(trial: np.ndarray) -> compare.Check:
            return compare.float64_losses(trial, torch)

    else:

        def judge(trial: np.ndarray) -> compare.Check:
            return compare.float32_losses(trial, torch, truth[0], ensemble)

    check = judge(jax)
    reference = truth[0] if truth else torch
    step = 0 if check.passed else _first_failing_step(judge, jax, reference)
    return _row(check, dtype, "loss", "loss", step, (jax, torch, *truth[:1]), at=(step,))
