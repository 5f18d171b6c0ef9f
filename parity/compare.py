"""The parity rules, and diagnostics that name what broke them (worst entry, first bad step).

float64 is the proof of equal algorithms: per step
``|L_jax - L_torch| <= 1e-8 |L_torch| + 1e-12 max_t |L_torch|``, and first-step gradients, per
parameter, ``max|g_jax - g_torch| <= 1e-12 max|g_torch| + 1e-12 max_all|g_torch|``.

float32 is judged by backward error: a float32 result is right when it is the exact result for
inputs and parameters perturbed at float32's unit roundoff ``u = 2**-24``. The bound is built from
two measures of how far such a result may lie from the float64 run of the same start: torch
float32's own distance, and the spread ``s`` of an ensemble of float64 runs whose inputs and
parameters carry relative noise of ``u`` (``parity.ensemble``). Losses, per step ``t``:
``|L_jax32 - L_64| <= 10 max(max_t |L_torch32 - L_64|, s_t) + 1e-6 |L_64(0)|``; first-step
gradients, per parameter: ``max|g_jax32 - g_64| <= 10 max(max|g_torch32 - g_64|, s) +
1e-6 max_all|g_64|``. Without an ensemble ``s`` is 0 (torch's error alone).

The spread is taken around the port's own unperturbed float64 run, so a wrong port does not widen
its own bound. Why the ensemble: a kink (ReLU, a max-pool tie, clamp, abs, a sort) flips under
perturbations at rounding level, in either framework, at any seed. On the tutorial CNN (seed 5,
batch 64) one of 345,600 conv1 pre-activations lies so close to 0 that JAX float32 puts it on the
other side of the ReLU than float64 while torch float32 does not: a 2% error in one channel's
gradient against torch's 1e-9, which a rule built from torch's error alone calls a failure. The
perturbed float64 runs flip there too, so the bound widens exactly where a kink sits and stays at
rounding level elsewhere.


``max_all`` is the largest entry over every parameter: a parameter whose exact gradient is 0 (a
conv bias feeding a train-mode BatchNorm) holds pure rounding noise, which no relative rule
can judge, and a gradient torch happens to round exactly leaves JAX no room for an ulp. The
float32 floor is 8 to 17 float32 ulps of the largest gradient; on the CNN (seeds 0-9, batch
sizes 1 to 64) JAX's own error stays under ``5.6e-7 max_all`` up to batch 32 and the worst
parameter uses 0.14 of its bound (0.41 without the floor). A fixed tolerance between the two
float32 runs is no rule: a conv bias's gradient sums ``batch*H*W`` terms, which the two
frameworks round differently, each about as far from the exact sum (``1e-5 max|g_torch32|``
fails ``conv2.bias`` at batch 64).

:func:`float64_values` and :func:`float32_values` state the gradient rules for any named arrays
(e.g. per-layer outputs); :func:`float64_gradients` and :func:`float32_gradients` apply them
to gradients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

F64_LOSS_RTOL, F64_LOSS_FLOOR = 1e-8, 1e-12
F64_GRAD_RTOL, F64_GRAD_FLOOR = 1e-12, 1e-12
F32_DRIFT_FACTOR, F32_LOSS_FLOOR, F32_GRAD_FLOOR = 10.0, 1e-6, 1e-6


@dataclass(frozen=True)
class Check:
    """One compared quantity: its rule, the largest difference, and what failed if anything.

    A check that is not ``gating`` is reported but does not decide the verdict: a quality floor
    (e.g. a held-out accuracy) is a property of the tutorial's settings, not of the port.
    ``bound`` is the largest difference the rule allowed, where it is one number; a float32 check
    records ``torch_error`` (torch float32's largest distance from float64) and ``spread`` (the
    float64 ensemble's, ``None`` without one), so a sweep can count where the ensemble widened it.
    """

    quantity: str
    rule: str
    passed: bool
    max_abs_diff: float
    detail: str
    gating: bool = True
    bound: float | None = None
    torch_error: float | None = None
    spread: float | None = None

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


def ensemble_spread(ensemble: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Per entry, the largest ``|member - centre|`` of an ensemble ``[centre, *members]`` (its
    leading axis: the unperturbed run, then the perturbed ones; see ``parity.ensemble``). An
    entry where a run is NaN widens nothing (0): a perturbation that breaks the run proves no
    rounding error. ``shape``, when given, is checked against each run's."""
    ensemble = np.asarray(ensemble, np.float64)
    if ensemble.ndim == 0 or ensemble.shape[0] < 1:
        raise ValueError(f"an ensemble needs its centre run first, got shape {ensemble.shape}")
    if shape is not None and ensemble.shape[1:] != tuple(shape):
        raise ValueError(f"ensemble of shape {ensemble.shape} for a value of shape {shape}")
    centre, members = ensemble[0], ensemble[1:]
    if members.shape[0] == 0:
        return np.zeros_like(centre)
    diff = np.abs(members - centre[None])
    return np.where(np.isnan(diff).any(axis=0), 0.0, np.max(np.nan_to_num(diff), axis=0))


def float32_losses(
    jax_losses: Any, torch_losses: Any, reference64: Any, ensemble64: Any = None
) -> Check:
    """The float32 rule for a loss trajectory (see the module docstring): JAX float32 as close to
    the float64 run as torch float32 is, or as the perturbed float64 runs of ``ensemble64``
    (``[1 + members, steps]``: the port's unperturbed float64 run, then the perturbed ones) are
    from their centre at each step.

    >>> import numpy as np
    >>> truth = np.array([1.0, 0.5])
    >>> torch32 = truth + 1e-8
    >>> flipped = truth + np.array([0.0, 3e-4])  # a kink flip at step 1
    >>> float32_losses(flipped, torch32, truth).passed
    False
    >>> ensemble = np.stack([truth, truth + np.array([0.0, -2e-4]), truth])
    >>> float32_losses(flipped, torch32, truth, ensemble).passed
    True
    """
    jl, tl, rl = _trajectories(jax_losses, torch_losses, reference64)
    torch_drift = float(np.max(np.abs(tl - rl))) if tl.size else 0.0
    spread = np.zeros_like(rl)
    if ensemble64 is not None:
        runs = np.asarray(ensemble64, np.float64).reshape(-1, rl.size)
        spread = ensemble_spread(runs, rl.shape)
    diff = np.abs(jl - rl)
    floor = F32_LOSS_FLOOR * abs(rl[0]) if rl.size else 0.0
    bound = F32_DRIFT_FACTOR * np.maximum(torch_drift, spread) + floor
    largest = float(np.max(spread)) if spread.size else 0.0
    if ensemble64 is None:
        rule = f"|L_jax32 - L_64| <= 10*{torch_drift:.3g} + 1e-6|L_64(0)|"
    else:
        rule = f"|L_jax32 - L_64| <= 10*max({torch_drift:.3g}, s_t<={largest:.3g}) + 1e-6|L_64(0)|"
    check = _loss_check(diff, bound, rule, jl, rl, "float64")
    spread_value = None if ensemble64 is None else largest
    return replace(check, torch_error=torch_drift, spread=spread_value)


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


def _paired(label: str, **trees: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
    """The trees flattened to ``{dotted name: float64 array}``, checked to match name for name
    and shape for shape."""
    flats = {side: _flatten(tree) for side, tree in trees.items()}
    (first, names), *others = ((side, sorted(flat)) for side, flat in flats.items())
    for side, other in others:
        if other != names:
            raise ValueError(f"{label} trees differ: {first} {names} vs {side} {other}")
    for name in names:
        shapes = {side: flat[name].shape for side, flat in flats.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"{label} {name}: shapes differ, {shapes}")
    return list(flats.values())


def _max_abs(a: np.ndarray) -> float:
    """``max|a|``, 0 for an empty array; NaN entries are skipped (they fail elsewhere).

    ``fmax``/``fmin`` skip NaN and reduce without a temporary: on the cnn's 6.4M-entry fc1
    gradient this is 16x faster than taking ``abs`` and dropping the NaN first.
    """
    a = np.asarray(a, dtype=np.result_type(a, np.float32))
    largest = np.fmax.reduce(a, axis=None, initial=0.0)
    smallest = np.fmin.reduce(a, axis=None, initial=0.0)
    return float(max(largest, -smallest))


def _largest(flat: Mapping[str, np.ndarray]) -> float:
    """The largest ``|entry|`` over every named array: the scale of the all-array floor."""
    return max((_max_abs(a) for a in flat.values()), default=0.0)


def _value_check(
    quantity: str, rule: str, diff: np.ndarray, bound: float, shown: Mapping[str, np.ndarray]
) -> Check:
    """Judge ``max(diff) <= bound``; a failure names the worst index and ``shown``'s values
    there (NaN counts as the worst)."""
    max_diff = float(np.max(diff)) if diff.size else 0.0  # NaN if any entry is NaN
    passed = bool(max_diff <= bound)  # NaN compares False: it fails
    if passed:
        share = f", {max_diff / bound:.2g} of the bound" if bound > 0 else ""
        detail = f"max|d| {max_diff:.3g}{share} (bound {bound:.3g})"
    else:
        worst = np.where(np.isnan(diff), np.inf, diff)
        idx = np.unravel_index(int(np.argmax(worst)), diff.shape)
        values = ", ".join(f"{side} {float(a[idx])!r}" for side, a in shown.items())
        detail = (
            f"{quantity} breaks the rule at index {tuple(int(i) for i in idx)}: {values} "
            f"(|d| {diff[idx]:.3g} > bound {bound:.3g})"
        )
    return Check(quantity, rule, passed, max_diff, detail, bound=bound)


def float64_values(
    jax_values: Mapping[str, Any],
    torch_values: Mapping[str, Any],
    *,
    label: str = "value",
    rtol: float = F64_GRAD_RTOL,
    floor: float = F64_GRAD_FLOOR,
) -> list[Check]:
    """The float64 rule for named arrays (gradients, per-layer outputs), one check per name:
    ``max|v_jax - v_torch| <= rtol max|v_torch| + floor max_all|v_torch|``.

    ``max_all`` runs over every named array: an array whose exact value is 0 (a conv bias
    feeding a train-mode BatchNorm) holds pure rounding noise, which cannot agree relatively.
    Nested mappings are flattened to dotted names; both sides must have the same names and
    shapes (``ValueError`` otherwise). ``Check.max_abs_diff`` is ``max|v_jax - v_torch|``.

    >>> import numpy as np
    >>> torch = {"w": np.array([2.0, -1.0]), "b": np.array([3e-17])}
    >>> jax = {"w": np.array([2.0, -1.0 + 1e-15]), "b": np.array([-2e-16])}
    >>> [(c.quantity, c.passed) for c in float64_values(jax, torch, label="grad")]
    [('grad b', True), ('grad w', True)]
    >>> float64_values({"w": np.array([2.0, -1.1])}, torch)
    Traceback (most recent call last):
    ...
    ValueError: value trees differ: jax ['w'] vs torch ['b', 'w']
    """
    jv, tv = _paired(label, jax=jax_values, torch=torch_values)
    scale_all = _largest(tv)
    checks = []
    for name in sorted(tv):
        scale = _max_abs(tv[name])
        bound = rtol * scale + floor * scale_all
        rule = f"max|d| <= {rtol:g}*{scale:.3g} + {floor:g}*{scale_all:.3g}"
        diff = np.abs(jv[name] - tv[name])
        shown = {"jax": jv[name], "torch": tv[name]}
        checks.append(_value_check(f"{label} {name}", rule, diff, bound, shown))
    return checks


def float32_values(
    jax_values: Mapping[str, Any],
    torch_values: Mapping[str, Any],
    truth64: Mapping[str, Any],
    *,
    ensemble64: Mapping[str, Any] | None = None,
    label: str = "value",
    factor: float = F32_DRIFT_FACTOR,
    floor: float = F32_GRAD_FLOOR,
) -> list[Check]:
    """The float32 rule for named arrays, judged against float64 values from the same start:
    ``max|v_jax32 - v_64| <= factor max(max|v_torch32 - v_64|, s) + floor max_all|v_64|`` per
    name, ``s`` the largest ``|member - centre|`` of ``ensemble64`` (``{name: [1 + members,
    *shape]}``: the port's float64 run from the start, then its runs from perturbed starts; 0
    without it).

    JAX float32 must be as close to the exact value as torch float32 is, or as a float64 run
    from a start perturbed at float32's rounding level is (within ``factor``): two float32 sums
    of many terms round differently, each about as far from the truth, so they cannot be held
    to each other, and a kink that flips under such a perturbation moves the exact result
    itself. The floor, over every named array (see :func:`float64_values`), covers an exact
    value of 0 and a torch that happens to round exactly. ``Check.max_abs_diff`` is
    ``max|v_jax32 - v_64|``, ``Check.bound`` the bound.

    >>> import numpy as np
    >>> truth = {"w": np.array([1.0, 2.0]), "b": np.array([0.0])}
    >>> torch32 = {"w": np.array([1.0 + 2e-7, 2.0]), "b": np.array([3e-8])}
    >>> jax32 = {"w": np.array([1.0, 2.0 - 1e-6]), "b": np.array([-1e-7])}
    >>> [(c.quantity, c.passed) for c in float32_values(jax32, torch32, truth, label="grad")]
    [('grad b', True), ('grad w', True)]
    >>> bad = float32_values({"w": np.array([1.0, 2.01]), "b": np.array([0.0])}, torch32, truth)
    >>> print(bad[1].detail)
    value w breaks the rule at index (1,): jax 2.01, torch 2.0, float64 2.0 (|d| 0.01 > bound 4e-06)
    """
    jv, tv, rv = _paired(label, jax=jax_values, torch=torch_values, float64=truth64)
    members = _flatten(ensemble64) if ensemble64 is not None else {}
    if ensemble64 is not None and sorted(members) != sorted(rv):
        raise ValueError(f"{label} ensemble names {sorted(members)} differ from {sorted(rv)}")
    scale_all = _largest(rv)
    checks = []
    for name in sorted(rv):
        torch_error = _max_abs(tv[name] - rv[name])
        spread = _max_abs(ensemble_spread(members[name], rv[name].shape)) if members else 0.0
        bound = factor * max(torch_error, spread) + floor * scale_all
        drift = f"max({torch_error:.3g}, s={spread:.3g})" if members else f"{torch_error:.3g}"
        rule = f"max|jax32 - 64| <= {factor:g}*{drift} + {floor:g}*{scale_all:.3g}"
        diff = np.abs(jv[name] - rv[name])
        shown = {"jax": jv[name], "torch": tv[name], "float64": rv[name]}
        check = _value_check(f"{label} {name}", rule, diff, bound, shown)
        checks.append(replace(check, torch_error=torch_error, spread=spread if members else None))
    return checks


def float64_gradients(jax_grads: Mapping[str, Any], torch_grads: Mapping[str, Any]) -> list[Check]:
    """:func:`float64_values` for first-step gradients (both in jaxnets' layout)."""
    return float64_values(jax_grads, torch_grads, label="grad")


def float32_gradients(
    jax32: Mapping[str, Any],
    torch32: Mapping[str, Any],
    truth64: Mapping[str, Any],
    ensemble64: Mapping[str, Any] | None = None,
) -> list[Check]:
    """:func:`float32_values` for first-step gradients; ``truth64`` is torch's float64 gradient
    of the same start, ``ensemble64`` the perturbed float64 runs' (all in jaxnets' layout)."""
    return float32_values(jax32, torch32, truth64, ensemble64=ensemble64, label="grad")


def differences(
    jax_values: Mapping[str, Any], torch_values: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per name, ``max|v_jax - v_torch|`` and that over ``max|v_torch|`` (the absolute value
    where torch's is all 0): how far the two frameworks are apart in the same dtype, for the
    report; the rules are the functions above.

    >>> differences({"w": [1.0, 2.5]}, {"w": [1.0, 2.0]})
    ({'w': 0.5}, {'w': 0.25})
    """
    jv, tv = _paired("value", jax=jax_values, torch=torch_values)
    absolute, relative = {}, {}
    for name in sorted(tv):
        diff = np.abs(jv[name] - tv[name])
        absolute[name] = float(np.max(diff)) if diff.size else 0.0  # NaN shows as NaN
        scale = _max_abs(tv[name])
        relative[name] = absolute[name] / scale if scale else absolute[name]
    return absolute, relative
