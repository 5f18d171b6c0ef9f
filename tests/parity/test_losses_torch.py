"""``jaxnets.losses`` against ``torch.nn.functional`` run in the same test.

Every case runs the torch loss and its JAX port on the same inputs, in float64 (and the
unreduced ones in float32 too), and compares the value and the gradients of the differentiated
arguments (a random cotangent of the output's shape is pulled back through both, so
``reduction="none"`` is checked in full).
float64 must agree to 1e-10 relative (1e-12 absolute for entries that cancel to ~0); float32 to
ten times ``torch.testing.assert_close``'s defaults. The warnings torch emits (deprecated
arguments, broadcasting, ``kl_div``'s ``"mean"``) must be emitted by the port as well.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jaxnets import losses

TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1.3e-5, "atol": 1e-4}}
REDUCTIONS = ("none", "mean", "sum")
# Shared shapes, so the compiled kernels of one case serve the next: N=3 samples, C=4 classes.
MAIN, KDIM, UNBATCHED, EMPTY, SCALAR = (3, 4), (2, 4, 3), (4,), (0, 4), ()

rng = np.random.default_rng(0)
CASES: list[Any] = []


_F32_SEEN: set[str] = set()


def add(fname: str, desc: str, args: list, kwargs: dict | None = None, diff=(0,), f32=None):
    """Register a case; ``diff`` lists the positional indices or keyword names to differentiate.

    Every case runs in float64. float32 runs each loss's first unreduced case of the main shape
    (whose gradient checks every element) and the cases marked ``f32=True``: every new shape,
    dtype and option structure costs compilations, so float32 does not repeat the whole matrix.
    """
    kwargs = kwargs or {}
    if f32 is None:
        f32 = (
            kwargs.get("reduction") == "none"
            and np.shape(args[0]) in (MAIN, (6, 3, 5))
            and fname not in _F32_SEEN
        )
    if f32:
        _F32_SEEN.add(fname)
    for dtype in ("float64", "float32") if f32 else ("float64",):
        CASES.append(
            pytest.param(fname, args, kwargs, tuple(diff), dtype, id=f"{fname}-{desc}-{dtype}")
        )


def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return np.asarray(rng.standard_normal(shape) * scale)


def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    return np.asarray(rng.uniform(low, high, shape))


def ints(high: int, *shape: int, low: int = 0) -> np.ndarray:
    return rng.integers(low, high, shape).astype(np.int64)


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def with_kinks(x: np.ndarray, y: np.ndarray, threshold: float | None) -> np.ndarray:
    """x with one entry at the target exactly and, given a threshold, two at +-threshold."""
    x = x.copy()
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    if flat_x.size:
        flat_x[0] = flat_y[0]
    if threshold is not None and flat_x.size >= 3:
        flat_y[1:3] = 0.25
        flat_x[1], flat_x[2] = 0.25 + threshold, 0.25 - threshold
    return x


# --- pointwise regression losses -------------------------------------------------------------
for fname, key, thresholds in [
    ("l1_loss", None, [None]),
    ("mse_loss", None, [None]),
    ("smooth_l1_loss", "beta", [1.0, 0.0, 0.5, 2.0]),
    ("huber_loss", "delta", [1.0, 0.5, 2.0]),
]:
    for thr in thresholds:
        opts = {} if key is None else {key: thr}
        tag = "" if key is None else f"{key}{thr}-"
        # The other shapes only change the (shared, elementwise) broadcasting: two losses do.
        shapes = {"2d": MAIN, "kdim": KDIM, "scalar": SCALAR, "empty": EMPTY}
        if thr != thresholds[0] or fname in ("mse_loss", "huber_loss"):
            shapes = {"2d": MAIN}
        for sname, shape in shapes.items():
            for red in REDUCTIONS:
                y = normal(*shape)
                x = with_kinks(normal(*shape), y, thr or None)
                add(fname, f"{tag}{sname}-{red}", [x, y], {**opts, "reduction": red}, (0, 1))
    add(fname, "broadcast", [normal(*MAIN), normal(*UNBATCHED)], {}, (0, 1))
    if fname == "l1_loss":
        add(fname, "broadcast-up", [normal(*UNBATCHED), normal(*MAIN)], {}, (0, 1))
    if fname != "huber_loss":
        add(fname, "legacy-sum", [normal(*MAIN), normal(*MAIN)], {"size_average": False})
        add(fname, "legacy-none", [normal(*MAIN), normal(*MAIN)], {"reduce": False})
        add(fname, "legacy-mean", [normal(*MAIN), normal(*MAIN)], {"size_average": True})
        add(
            fname,
            "elementwise_mean",
            [normal(*MAIN), normal(*MAIN)],
            {"reduction": "elementwise_mean"},
        )
for fname in ("l1_loss", "mse_loss", "huber_loss"):
    for red in REDUCTIONS:
        y = normal(*MAIN)
        add(
            fname,
            f"weight-{red}",
            [with_kinks(normal(*MAIN), y, None), y],
            {"weight": uniform(*MAIN), "reduction": red},
            (0, 1),
        )

# --- kl_div, poisson, gaussian ---------------------------------------------------------------
for sname, shape in {"2d": MAIN, "kdim": KDIM, "scalar": SCALAR, "empty": EMPTY}.items():
    for log_target in (False, True) if shape == MAIN else (False,):
        for red in ("none", "sum", "batchmean", "mean") if shape == MAIN else ("none", "batchmean"):
            x = log_softmax(normal(*shape), -1) if shape else np.array(-0.7)
            t = uniform(*shape)
            if t.size and not log_target:
                t.reshape(-1)[0] = 0.0
            if log_target:
                t = np.asarray(np.log(t + 0.1))
            diff = (0, 1) if log_target else (0,)
            add(
                "kl_div",
                f"{sname}-log{log_target}-{red}",
                [x, t],
                {"reduction": red, "log_target": log_target},
                diff,
            )
add("kl_div", "broadcast", [normal(*MAIN), uniform(*UNBATCHED)], {"reduction": "sum"})
add(
    "kl_div",
    "legacy-batchmean",
    [normal(*MAIN), uniform(*MAIN)],
    {"size_average": False, "reduction": "batchmean"},
)
add("kl_div", "legacy-none", [normal(*MAIN), uniform(*MAIN)], {"reduce": False})

COUNTS = np.array([[0.0, 1.0, 0.5, 3.0], [7.0, 2.0, 1.0, 0.0], [4.0, 1.5, 12.0, 1.0]])
for log_input in (True, False):
    for full in (False, True):
        for red in REDUCTIONS:
            x = normal(*MAIN) if log_input else uniform(*MAIN, low=0.1, high=3.0)
            add(
                "poisson_nll_loss",
                f"log{log_input}-full{full}-{red}",
                [x, COUNTS],
                {"log_input": log_input, "full": full, "reduction": red},
            )
add("poisson_nll_loss", "eps", [uniform(*MAIN), COUNTS], {"log_input": False, "eps": 0.5})
add("poisson_nll_loss", "broadcast", [normal(*MAIN), COUNTS[0]], {"reduction": "none"})
add("poisson_nll_loss", "legacy", [normal(*MAIN), COUNTS], {"size_average": False})
add("poisson_nll_loss", "empty", [normal(*EMPTY), np.zeros(EMPTY)])

for vname, var in {
    "full": uniform(*MAIN, low=0.2, high=2.0),
    "short": uniform(3, low=0.2, high=2.0),
    "one": uniform(3, 1, low=0.2, high=2.0),
    "clamped": np.array([[1e-9, 0.5, 1e-7, 2.0]] * 3),
}.items():
    for red in REDUCTIONS:
        add(
            "gaussian_nll_loss",
            f"var-{vname}-{red}",
            [normal(*MAIN), normal(*MAIN), var],
            {"reduction": red},
            (0, 1, 2),
        )
    add(
        "gaussian_nll_loss",
        f"var-{vname}-full",
        [normal(*MAIN), normal(*MAIN), var],
        {"full": True, "reduction": "none"},
        (0, 1, 2),
    )
add("gaussian_nll_loss", "var-float", [normal(*MAIN), normal(*MAIN), 0.7], {}, (0, 1))
add("gaussian_nll_loss", "var-float-eps", [normal(*MAIN), normal(*MAIN), 1e-3], {"eps": 0.1})
add(
    "gaussian_nll_loss",
    "unbatched-scalar-var",
    [normal(4), normal(4), np.array(0.3)],
    {},
    (0, 1, 2),
)
add(
    "gaussian_nll_loss",
    "target-broadcast",
    [normal(*MAIN), normal(4), uniform(3, 1)],
    {"reduction": "none"},
    (0, 1, 2),
)
add("gaussian_nll_loss", "empty", [normal(*EMPTY), normal(*EMPTY), uniform(*EMPTY)])


# --- binary cross entropies ------------------------------------------------------------------
def probs(*shape: int) -> np.ndarray:
    """Probabilities with an exact 0 and 1 (the clamped logs and the clamped backward)."""
    p = uniform(*shape, low=0.02, high=0.98)
    flat = p.reshape(-1)
    flat[: min(2, flat.size)] = [0.0, 1.0][: min(2, flat.size)]
    return p


def targets01(*shape: int) -> np.ndarray:
    t = uniform(*shape)
    flat = t.reshape(-1)
    flat[: min(4, flat.size)] = [0.0, 1.0, 1.0, 0.0][: min(4, flat.size)]
    return t


for sname, shape in {"2d": MAIN, "1d": UNBATCHED, "scalar": SCALAR, "empty": EMPTY}.items():
    for red in REDUCTIONS:
        add(
            "binary_cross_entropy",
            f"{sname}-{red}",
            [probs(*shape), targets01(*shape)],
            {"reduction": red},
            (0, 1),
        )
        if shape == MAIN:  # the other shapes run in binary_cross_entropy and large-logits
            add(
                "binary_cross_entropy_with_logits",
                f"{sname}-{red}",
                [normal(*shape, scale=3.0), targets01(*shape)],
                {"reduction": red},
                (0, 1),
            )
for wname, w in {"w-class": uniform(4), "w-full": uniform(*MAIN), "w-col": uniform(3, 1)}.items():
    for red in REDUCTIONS:
        add(
            "binary_cross_entropy",
            f"{wname}-{red}",
            [probs(*MAIN), targets01(*MAIN)],
            {"weight": w, "reduction": red},
            (0, 1),
        )
        if wname != "w-col":
            add(
                "binary_cross_entropy_with_logits",
                f"{wname}-{red}",
                [normal(*MAIN, scale=3.0), targets01(*MAIN)],
                {"weight": w, "reduction": red},
                (0, 1),
            )
for pname, pw in {"pw-class": uniform(4, high=3.0), "pw-full": uniform(*MAIN, high=3.0)}.items():
    for red in REDUCTIONS:
        add(
            "binary_cross_entropy_with_logits",
            f"{pname}-{red}",
            [normal(*MAIN, scale=3.0), targets01(*MAIN)],
            {"pos_weight": pw, "reduction": red},
            (0, 1),
            f32=pname == "pw-class" and red == "none",
        )
add(
    "binary_cross_entropy_with_logits",
    "pw-and-weight",
    [normal(*MAIN, scale=3.0), targets01(*MAIN)],
    {"pos_weight": uniform(4, high=3.0), "weight": uniform(*MAIN)},
    (0, 1),
)
add(
    "binary_cross_entropy_with_logits",
    "large-logits",
    [np.array([30.0, -30.0, 20.0, -20.0]), np.array([1.0, 0.0, 0.3, 0.7])],
    {"reduction": "none"},
    (0, 1),
)
add("binary_cross_entropy", "legacy", [probs(*MAIN), targets01(*MAIN)], {"reduce": False})
add(
    "binary_cross_entropy_with_logits",
    "legacy",
    [normal(*MAIN), targets01(*MAIN)],
    {"size_average": False},
)

# --- cross entropy and nll -------------------------------------------------------------------
CLASS_SHAPES = {  # input shape, target shape
    "2d": (MAIN, (3,)),
    "unbatched": (UNBATCHED, ()),
    "kdim1": (KDIM, (2, 3)),
    "kdim2": ((2, 4, 2, 3), (2, 2, 3)),
    "empty": (EMPTY, (0,)),
}


def class_targets(shape: tuple[int, ...], ignored: int | None = None) -> np.ndarray:
    t = ints(4, *shape)
    if ignored is not None and t.size:
        t.reshape(-1)[::3] = ignored
    return t


for fname in ("cross_entropy", "nll_loss"):
    for sname, (xs, ts) in CLASS_SHAPES.items():
        main = sname == "2d"
        if fname == "nll_loss":
            smoothings = (0.0,)
        elif main:
            smoothings = (0.0, 0.2, 1.0)
        else:
            smoothings = (0.0, 0.2) if sname in ("unbatched", "kdim1") else (0.2,)
        for ls in smoothings:
            opts = {"label_smoothing": ls} if ls else {}
            tag = f"-ls{ls}" if ls else ""
            for red in REDUCTIONS:
                x = normal(*xs, scale=2.0)
                if fname == "nll_loss":
                    x = log_softmax(x, 0 if len(xs) == 1 else 1)
                opts["reduction"] = red
                f32 = main and red == "none" and ls in (0.0, 0.2)
                add(fname, f"{sname}{tag}-{red}", [x, class_targets(ts)], dict(opts), f32=f32)
                add(
                    fname,
                    f"{sname}{tag}-ignored-{red}",
                    [x, class_targets(ts, -100)],
                    {**opts, "weight": uniform(4, low=0.1), "reduction": red},
                )
                if main:
                    add(
                        fname,
                        f"{sname}{tag}-weight-{red}",
                        [x, class_targets(ts)],
                        {**opts, "weight": uniform(4, low=0.1), "reduction": red},
                    )
                    add(
                        fname,
                        f"{sname}{tag}-ignore1-{red}",
                        [x, class_targets(ts)],
                        {**opts, "ignore_index": 1, "reduction": red},
                    )
    for ls in (0.0, 0.2) if fname == "cross_entropy" else (0.0,):
        for red in REDUCTIONS:
            add(
                fname,
                f"all-ignored-ls{ls}-{red}",
                [normal(*MAIN), np.full(3, -100)],
                {"label_smoothing": ls, "reduction": red} if ls else {"reduction": red},
            )
    add(fname, "legacy", [normal(*MAIN), class_targets((3,))], {"size_average": False})
# Shared by cross_entropy (same code path): a uint8 target, and unbatched input with a (1,)
# target, where torch's backward fails, so only the value is compared.
add("nll_loss", "uint8-target", [normal(*MAIN), class_targets((3,)).astype(np.uint8)])
add("nll_loss", "unbatched-target1", [normal(4), class_targets((1,))], {}, ())

for sname, shape in {"2d": MAIN, "unbatched": UNBATCHED, "kdim1": KDIM, "empty": EMPTY}.items():
    axis = 0 if len(shape) == 1 else 1
    for ls, weighted in (
        ((0.3, True),) if shape != MAIN else ((0.0, False), (0.3, False), (0.0, True), (0.3, True))
    ):
        for red in REDUCTIONS:
            p = np.exp(log_softmax(normal(*shape), axis))
            opts = {"label_smoothing": ls, "reduction": red}
            if weighted:
                opts["weight"] = uniform(4)
            add(
                "cross_entropy",
                f"probs-{sname}-ls{ls}{'-weight' if weighted else ''}-{red}",
                [normal(*shape, scale=2.0), p],
                opts,
                (0, 1),
            )
add(
    "cross_entropy",
    "large-logits",
    [
        np.array([[1e4, -1e4, 0.0, 1.0], [-1e4, 1e4, 5.0, 0.0], [0.0, 0.0, -1e4, 1e4]]),
        np.array([1, 1, 3]),
    ],
    {"reduction": "none"},
)

# --- margin losses ---------------------------------------------------------------------------
SIGNS = np.array([[1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0]])
for red in REDUCTIONS:
    add("soft_margin_loss", f"2d-{red}", [normal(*MAIN, scale=2.0), SIGNS], {"reduction": red})
    add("soft_margin_loss", f"scalar-{red}", [np.array(0.3), np.array(-1.0)], {"reduction": red})
    add("soft_margin_loss", f"broadcast-{red}", [normal(*MAIN), SIGNS[0]], {"reduction": red})
    for wname, w in {"": None, "-w-class": uniform(4), "-w-full": uniform(*MAIN)}.items():
        add(
            "multilabel_soft_margin_loss",
            f"2d{wname}-{red}",
            [normal(*MAIN, scale=2.0), (SIGNS > 0).astype(float)],
            {"weight": w, "reduction": red},
            (0, 1),
        )
    add(
        "multilabel_soft_margin_loss",
        f"unbatched-{red}",
        [normal(4), uniform(4)],
        {"reduction": red},
        (0, 1),
    )
    add(
        "multilabel_soft_margin_loss",
        f"kdim-{red}",
        [normal(*KDIM), uniform(*KDIM)],
        {"reduction": red},
        (0, 1),
    )
    add(
        "multilabel_soft_margin_loss",
        f"empty-{red}",
        [normal(*EMPTY), uniform(*EMPTY)],
        {"reduction": red},
    )
    for margin in (1.0, 0.5, -0.5):
        x = normal(*MAIN, scale=2.0)
        x[0, 1] = margin  # exactly on the hinge, target -1
        t = SIGNS.copy()
        t[2, 0] = 0.0  # neither +1 nor -1: torch adds both terms
        add(
            "hinge_embedding_loss", f"m{margin}-{red}", [x, t], {"margin": margin, "reduction": red}
        )
    add("hinge_embedding_loss", f"broadcast-{red}", [normal(*MAIN), SIGNS[1]], {"reduction": red})
    for margin in (0.0, 0.5):
        x1, x2, t = normal(4), normal(4), np.array([1.0, -1.0, 1.0, -1.0])
        x1[0], x2[0] = 1.0, 0.5  # -t * (x1 - x2) + 0.5 == 0: on the hinge for margin 0.5
        x1[1], x2[1] = 0.25, 0.25  # on the hinge for margin 0
        add(
            "margin_ranking_loss",
            f"m{margin}-{red}",
            [x1, x2, t],
            {"margin": margin, "reduction": red},
            (0, 1, 2),
        )
    add(
        "margin_ranking_loss",
        f"2d-{red}",
        [normal(*MAIN), normal(*MAIN), SIGNS],
        {"margin": 0.2, "reduction": red},
        (0, 1),
    )
    add(
        "margin_ranking_loss",
        f"broadcast-{red}",
        [normal(3, 1), normal(1, 4), SIGNS],
        {"reduction": red},
        (0, 1),
    )
    add(
        "margin_ranking_loss",
        f"scalar-{red}",
        [np.array(0.4), np.array(0.9), np.array(1.0)],
        {"reduction": red},
        (0, 1),
    )
    for margin in (0.0, 0.3, -0.2):
        a, b = normal(*MAIN), normal(*MAIN)
        a[2] = 0.0  # zero vector: the 1e-12 guard decides
        b[1] = a[1] * 2.0  # parallel pair
        add(
            "cosine_embedding_loss",
            f"m{margin}-{red}",
            [a, b, np.array([1, -1, -1])],
            {"margin": margin, "reduction": red},
            (0, 1),
        )
    add(
        "cosine_embedding_loss",
        f"unbatched-{red}",
        [normal(4), normal(4), np.array(-1)],
        {"reduction": red},
        (0, 1),
    )
    add(
        "cosine_embedding_loss",
        f"broadcast-{red}",
        [normal(*MAIN), normal(1, 4), np.array([1.0, -1.0, -1.0])],
        {"reduction": red, "margin": -0.5},
        (0, 1),
    )
    add(
        "cosine_embedding_loss",
        f"empty-{red}",
        [normal(*EMPTY), normal(*EMPTY), np.zeros(0, dtype=np.int64)],
        {"reduction": red},
    )

# p=2 here; the other orders run on the edge cases below, whose second half is random.
add(
    "triplet_margin_loss",
    "p2",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"reduction": "none"},
    (0, 1, 2),
)
add(
    "triplet_margin_loss",
    "swap",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"swap": True, "reduction": "none"},
    (0, 1, 2),
    f32=True,
)
for red in ("mean", "sum"):
    add(
        "triplet_margin_loss",
        red,
        [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
        {"reduction": red, "swap": True},
        (0, 1, 2),
    )
for sname, shapes in {
    "unbatched": [UNBATCHED] * 3,
    "broadcast": [MAIN, (1, 4), MAIN],
    "scalar": [SCALAR] * 3,
}.items():
    add("triplet_margin_loss", sname, [normal(*s) for s in shapes], {"margin": 0.5}, (0, 1, 2))
# Rows of length-3 vectors: a distance of exactly 0, a hinge at exactly 0 (margin 1), a swap
# tie, an inf-norm tie; with eps=0 the subgradients decide.
EDGE_A = np.concatenate([np.zeros((4, 3)), normal(4, 3)]).reshape(KDIM)
EDGE_P = np.concatenate([[[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [1, -1, 0]], normal(4, 3)])
EDGE_N = np.concatenate([[[0.5, 0, 0], [2, 0, 0], [1, 0, 0], [0.5, 0, 0]], normal(4, 3)])
EDGE_P, EDGE_N = EDGE_P.reshape(KDIM), EDGE_N.reshape(KDIM)
for p in (2, 1, 3, 1.5, 0.5, math.inf, 0):
    # With swap, the rows without a swap tie behave as without it, so one run covers both.
    add(
        "triplet_margin_loss",
        f"edges-p{p}",
        [EDGE_A, EDGE_P, EDGE_N],
        {"p": p, "swap": True, "eps": 0.0, "reduction": "none"},
        (0, 1, 2),
        f32=p == 1.5,
    )
add(
    "triplet_margin_loss",
    "legacy",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"reduce": False},
    (0, 1, 2),
)


# Distances written once for both frameworks (operators and methods torch and JAX share).
def l1_distance(x, y):
    return abs(x - y).sum(-1)


def squared_distance(x, y):
    return ((x - y) ** 2).sum(-1)


def cosine_distance(x, y):
    return 1 - (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1)) ** 0.5


TWD = "triplet_margin_with_distance_loss"
add(TWD, "default", [normal(*MAIN), normal(*MAIN), normal(*MAIN)], {"reduction": "none"}, (0, 1, 2))
add(
    TWD,
    "default-swap",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"swap": True, "margin": 0.5, "reduction": "none"},
    (0, 1, 2),
)
for red in ("mean", "sum"):
    add(
        TWD,
        red,
        [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
        {"reduction": red, "swap": True},
        (0, 1, 2),
    )
for sname, shapes in {
    "unbatched": [UNBATCHED] * 3,
    "broadcast": [MAIN, (1, 4), MAIN],
    "scalar": [SCALAR] * 3,
}.items():
    add(TWD, sname, [normal(*s) for s in shapes], {"margin": 2.0}, (0, 1, 2))
add(
    TWD,
    "l1-swap",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"distance_function": l1_distance, "swap": True, "reduction": "none"},
    (0, 1, 2),
    f32=True,
)
add(
    TWD,
    "cosine",
    [normal(*MAIN), normal(*MAIN), normal(*MAIN)],
    {"distance_function": cosine_distance, "margin": 0.5, "reduction": "none"},
    (0, 1, 2),
    f32=True,
)
add(
    TWD,
    "cosine-broadcast-mean",
    [normal(*MAIN), normal(1, 4), normal(*MAIN)],
    {"distance_function": cosine_distance, "swap": True},
    (0, 1, 2),
)
# Rows of length-3 vectors under the squared distance: a distance of 0, a hinge at exactly 0
# (without swap) and a swap tie (with it); the second half is random.
TWD_A = np.concatenate([np.zeros((4, 3)), normal(4, 3)]).reshape(KDIM)
TWD_P = np.concatenate([[[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [1, 0, 0]], normal(4, 3)])
TWD_N = np.concatenate([[[0.5, 0, 0], [1, 1, 0], [1, 0, 0], [3, 0, 0]], normal(4, 3)])
for swap in (False, True):
    add(
        TWD,
        f"edges-squared-swap{swap}",
        [TWD_A, TWD_P.reshape(KDIM), TWD_N.reshape(KDIM)],
        {"distance_function": squared_distance, "swap": swap, "reduction": "none"},
        (0, 1, 2),
    )

MM_X = np.array([[1.0, 0.0, 2.0, -0.5], [0.3, 0.2, -0.4, 1.5], [0.0, 0.0, 0.0, 0.0]])
MM_T = np.array([0, 3, 2])  # row 0 puts a hinge at exactly 0 (margin 1)
for p in (1, 2):
    for margin in (1.0, 0.5):
        for red in REDUCTIONS:
            for wname, w in {"": None, "-weight": uniform(4, low=0.1)}.items():
                add(
                    "multi_margin_loss",
                    f"p{p}-m{margin}{wname}-{red}",
                    [MM_X + normal(*MAIN, scale=0.1) * (margin != 1.0), MM_T],
                    {"p": p, "margin": margin, "weight": w, "reduction": red},
                )
    if p == 1:
        add("multi_margin_loss", "unbatched", [normal(4), np.array(2)], {"reduction": "none"})
    else:
        add(
            "multi_margin_loss",
            "unbatched-target1",
            [normal(4), np.array([1])],
            {"p": 2, "reduction": "none"},
        )
add("multi_margin_loss", "scalar-input", [np.array(0.4), np.array(0)], {"reduction": "none"})
# torch's "mean" and "sum" of an empty batch read uninitialised memory, so only "none".
add(
    "multi_margin_loss",
    "empty-none",
    [normal(*EMPTY), np.zeros(0, dtype=np.int64)],
    {"reduction": "none"},
)
add("multi_margin_loss", "legacy", [normal(*MAIN), MM_T], {"size_average": False})

# Row 0: two labels then -1; row 1: a repeated label; row 2: empty list; the 1.0s in row 0 of
# ML_X put hinges at exactly 0.
ML_T = np.array([[3, 0, -1, 1], [0, 0, -1, -1], [-1, 2, 1, 0]])
ML_X = np.array([[1.0, 0.0, 2.0, 1.0], [0.3, 0.2, -0.4, 1.5], [0.5, 0.1, 0.2, 0.3]])
for red in REDUCTIONS:
    add("multilabel_margin_loss", f"2d-{red}", [ML_X, ML_T], {"reduction": red})
    add(
        "multilabel_margin_loss",
        f"random-{red}",
        [normal(*MAIN), np.array([[1, 2, 3, 0]] * 3)],
        {"reduction": red},
    )
    add("multilabel_margin_loss", f"unbatched-{red}", [normal(4), ML_T[0]], {"reduction": red})
add("multilabel_margin_loss", "scalar-input", [np.array(0.4), np.array(0)], {"reduction": "none"})
add(
    "multilabel_margin_loss",
    "empty-none",
    [normal(*EMPTY), np.zeros(EMPTY, dtype=np.int64)],
    {"reduction": "none"},
)


# --- ctc ---------------------------------------------------------------------------------
def ctc_lp(*shape: int) -> np.ndarray:
    return log_softmax(normal(*shape, scale=1.5), -1)


LP = (6, 3, 5)  # T, N, C
PADDED = np.array([[1, 2, 2, 3], [4, 4, 0, 0], [3, 1, 4, 2]])
for red in REDUCTIONS:
    for zi in (False, True):
        opts = {"reduction": red, "zero_infinity": zi}
        add(
            "ctc_loss",
            f"padded-{red}-zi{zi}",
            [ctc_lp(*LP), PADDED, np.array([6, 5, 4]), np.array([3, 2, 0])],
            opts,
        )
        add(
            "ctc_loss",
            f"concat-{red}-zi{zi}",
            [
                ctc_lp(*LP),
                np.array([1, 2, 2, 4, 4, 3, 1]),
                np.array([6, 4, 5]),
                np.array([4, 2, 1]),
            ],
            opts,
            f32=False,
        )
        # Too short to align (3 labels with a repeat need 4 frames), and zero frames.
        add(
            "ctc_loss",
            f"impossible-{red}-zi{zi}",
            [ctc_lp(*LP), PADDED, np.array([3, 0, 0]), np.array([3, 0, 2])],
            opts,
        )
    add(
        "ctc_loss",
        f"unbatched-{red}",
        [ctc_lp(6, 5), np.array([2, 3, 3]), np.array(6), np.array(3)],
        {"reduction": red},
    )
    add(
        "ctc_loss",
        f"unbatched-padded-{red}",
        [ctc_lp(6, 5), np.array([[2, 1, 3]]), np.array(5), np.array(2)],
        {"reduction": red},
    )
    add(
        "ctc_loss",
        f"blank4-{red}",
        [
            ctc_lp(*LP),
            np.array([[1, 2, 0, 3], [0, 0, 3, 3], [2, 2, 2, 1]]),
            np.array([6, 6, 6]),
            np.array([3, 2, 1]),
        ],
        {"blank": 4, "reduction": red},
    )
    # Labels equal to the blank, the last one included (torch's backward special-cases it).
    add(
        "ctc_loss",
        f"label-is-blank-{red}",
        [
            ctc_lp(*LP),
            np.array([[1, 0, 2, 0], [2, 0, 0, 0], [3, 3, 0, 1]]),
            np.array([6, 5, 6]),
            np.array([3, 2, 3]),
        ],
        {"reduction": red},
    )
    add(
        "ctc_loss",
        f"unnormalised-{red}",
        [normal(*LP), PADDED, np.array([6, 6, 5]), np.array([4, 1, 2])],
        {"reduction": red},
    )
add(
    "ctc_loss",
    "empty-targets",
    [ctc_lp(*LP), np.zeros(0, dtype=np.int64), np.array([6, 3, 1]), np.array([0, 0, 0])],
    {"reduction": "none"},
)
add(
    "ctc_loss",
    "elementwise_mean",
    [ctc_lp(*LP), PADDED, np.array([6, 5, 4]), np.array([3, 2, 1])],
    {"reduction": "elementwise_mean"},
)


# --- the check ---------------------------------------------------------------------------------
def _torch_value(v: Any, dtype: str, grad: bool) -> Any:
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return torch.tensor(v.astype(dtype)).requires_grad_(grad)
        return torch.tensor(v)
    return v


def _jax_value(v: Any, dtype: str) -> Any:
    if isinstance(v, np.ndarray):
        return jnp.asarray(v.astype(dtype) if v.dtype.kind == "f" else v)
    return v


def _user_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    # The first words identify the warning; the rest quotes shapes, spelt differently.
    return sorted(str(w.message).split("(")[0] for w in record if w.category is UserWarning)


@pytest.mark.parametrize(("fname", "args", "kwargs", "diff", "dtype"), CASES)
def test_matches_torch(fname, args, kwargs, diff, dtype):
    tol = TOL[dtype]
    pos = [i for i in diff if isinstance(i, int)]
    kws = [k for k in diff if isinstance(k, str)]

    t_args = [_torch_value(a, dtype, i in pos) for i, a in enumerate(args)]
    t_kw = {k: _torch_value(v, dtype, k in kws) for k, v in kwargs.items()}
    with warnings.catch_warnings(record=True) as t_warn:
        warnings.simplefilter("always")
        t_out = getattr(F, fname)(*t_args, **t_kw)
    cot = np.random.default_rng(1).standard_normal(tuple(t_out.shape)).astype(dtype)
    if t_out.requires_grad:
        t_out.backward(torch.tensor(cot))
    leaves = [t_args[i] for i in pos] + [t_kw[k] for k in kws]
    t_grads = [np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy() for leaf in leaves]

    j_args = [_jax_value(a, dtype) for a in args]
    j_kw = {k: _jax_value(v, dtype) for k, v in kwargs.items()}

    def loss(*wrt):
        a, kw = list(j_args), dict(j_kw)
        for i, v in zip(pos + kws, wrt, strict=True):
            if isinstance(i, int):
                a[i] = v
            else:
                kw[i] = v
        return getattr(losses, fname)(*a, **kw)

    with warnings.catch_warnings(record=True) as j_warn:
        warnings.simplefilter("always")
        j_out, vjp = jax.vjp(loss, *([j_args[i] for i in pos] + [j_kw[k] for k in kws]))
    j_grads = vjp(jnp.asarray(cot))

    assert _user_warnings(j_warn) == _user_warnings(t_warn)
    assert j_out.dtype == np.dtype(dtype)
    assert j_out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(np.asarray(j_out), t_out.detach().numpy(), **tol)
    for j_g, t_g in zip(j_grads, t_grads, strict=True):
        assert j_g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(np.asarray(j_g), t_g, **tol)


@pytest.mark.parametrize("fname", losses.__all__)
def test_signature_matches_torch(fname):
    """Same parameter names, order, kinds and defaults as torch.nn.functional."""

    def spec(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert spec(getattr(losses, fname)) == spec(getattr(F, fname))
