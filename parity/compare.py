"""The parity rules, and diagnostics that name what broke them (worst leaf, first bad step).

float64 is the proof of equal algorithms: per step
``|L_jax - L_torch| <= 1e-8 |L_torch| + 1e-12 max_t |L_torch|`` and first-step gradients within
``1e-12`` of the largest entry. float32 runs drift legitimately, so they are judged against the
float64 run of the same start: ``|L_jax32 - L_64| <= 10 max_t |L_torch32 - L_64| + 1e-6 |L_64(0)|``,
and first-step gradients within ``1e-5`` of the largest entry, per parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

F64_LOSS_RTOL, F64_LOSS_FLOOR, F64_GRAD_RTOL = 1e-8, 1e-12, 1e-12
F32_DRIFT_FACTOR, F32_LOSS_FLOOR, F32_GRAD_RTOL = 10.0, 1e-6, 1e-5


@dataclass(frozen=True)
class Check:
    """One compared quantity: its rule, the largest difference, and what failed if anything.

    A check that is not ``gating`` is reported but does not decide the verdict: a quality floor
    (e.g. a held-out accuracy) is a property of the tutorial's settings, not of the port.
    """

    quantity: str
    rule: str
    passed: bool
    max_abs_diff: float
    detail: str
    gating: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _first_failure(diff: np.ndarray, bound: np.ndarray) -> int | None:
    # NaN in either trajectory must fail, hence the negated comparison.
    bad = np.flatnonzero(~(diff <= bound))
    return int(bad[0]) if bad.size else None


def _trajectories(*arrays: Any) -> list[np.ndarray]:
    out = [np.asarray(a, np.float64).reshape(-1) for a in arrays]
    if len({a.shape for a in out}) != 1:
        raise ValueError(f"loss trajectories differ in length: {[a.size for a in out]}")
    return out


def float64_losses(jax_losses: Any, torch_losses: Any) -> Check:
    """The float64 trajectory rule, step by step."""
    jl, tl = _trajectories(jax_losses, torch_losses)
    diff = np.abs(jl - tl)
    bound = F64_LOSS_RTOL * np.abs(tl) + F64_LOSS_FLOOR * np.max(np.abs(tl))
    rule = "|dL| <= 1e-8|L_torch| + 1e-12 max|L_torch|"
    return _loss_check(diff, bound, rule, jl, tl, "torch")


def float32_losses(jax_losses: Any, torch_losses: Any, reference64: Any) -> Check:
    """The float32 rule: JAX float32 as close to the float64 run as torch float32 is."""
    jl, tl, rl = _trajectories(jax_losses, torch_losses, reference64)
    torch_drift = float(np.max(np.abs(tl - rl)))
    diff = np.abs(jl - rl)
    bound = np.full_like(diff, F32_DRIFT_FACTOR * torch_drift + F32_LOSS_FLOOR * abs(rl[0]))
    rule = f"|L_jax32 - L_64| <= 10*{torch_drift:.3g} + 1e-6|L_64(0)|"
    return _loss_check(diff, bound, rule, jl, rl, "float64")


def _loss_check(diff, bound, rule, jl, other, other_name) -> Check:
    step = _first_failure(diff, bound)
    max_diff = float(np.max(np.abs(jl - other))) if jl.size else 0.0
    if step is None:
        detail = f"{jl.size} steps within the rule"
    else:
        detail = (
            f"first step breaking the rule: {step} (jax {jl[step]!r}, {other_name} "
            f"{other[step]!r}, |diff| {diff[step]:.3g} > bound {bound[step]:.3g})"
        )
    return Check("losses", rule, step is None, max_diff, detail)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = np.asarray(value, np.float64)
    return flat


def gradients(
    jax_grads: Mapping[str, Any], torch_grads: Mapping[str, Any], rtol: float, label: str = "grad"
) -> list[Check]:
    """Per parameter: ``max|g_jax - g_torch| <= rtol * max|g_torch|``, both in jaxnets layout."""
    jg, tg = _flatten(jax_grads), _flatten(torch_grads)
    if set(jg) != set(tg):
        raise ValueError(f"{label} trees differ: jax {sorted(jg)} vs torch {sorted(tg)}")
    checks = []
    for name in sorted(tg):
        if jg[name].shape != tg[name].shape:
            raise ValueError(f"{label} {name}: jax {jg[name].shape} vs torch {tg[name].shape}")
        diff = np.abs(jg[name] - tg[name])
        scale = float(np.max(np.abs(tg[name]))) if tg[name].size else 0.0
        bound = rtol * scale
        max_diff = float(np.max(diff)) if diff.size else 0.0
        passed = bool(np.all(diff <= bound))
        if passed:
            detail = (
                f"max |d| {max_diff:.3g} = {max_diff / scale if scale else 0.0:.3g} of max|ref|"
            )
        else:
            idx = np.unravel_index(
                int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape
            )
            detail = (
                f"{label} {name} breaks the rule at index {tuple(int(i) for i in idx)}: "
                f"jax {jg[name][idx]!r}, torch {tg[name][idx]!r} (bound {bound:.3g})"
            )
        checks.append(
            Check(f"{label} {name}", f"max|d| <= {rtol:g} max|ref|", passed, max_diff, detail)
        )
    return checks


def relative_grad_error(checks: list[Check], torch_grads: Mapping[str, Any]) -> dict[str, float]:
    """``max|dg| / max|g|`` per parameter, for the report."""
    tg = _flatten(torch_grads)
    out = {}
    for check in checks:
        name = check.quantity.split(" ", 1)[1]
        scale = float(np.max(np.abs(tg[name]))) if tg[name].size else 0.0
        out[name] = check.max_abs_diff / scale if scale else check.max_abs_diff
    return out
