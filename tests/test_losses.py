"""``jaxnets.losses`` on its own: exact values worked out by hand or by brute force, jit and
vmap, float32 kept float32, and torch's errors and warnings. The comparison with torch itself is
in ``tests/parity/test_losses_torch.py``."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import losses

R = np.random.default_rng(0)


# Inputs are built with numpy and results turned into numpy before any indexing: every eager
# JAX operation on a new shape is a compilation, and those dominate the running time.
def f64(*shape: int, scale: float = 1.0) -> jax.Array:
    return jnp.asarray(R.standard_normal(shape) * scale)


def probs(*shape: int) -> jax.Array:
    return jnp.asarray(R.uniform(0.05, 0.95, shape))


def sign(x: jax.Array) -> jax.Array:
    return jnp.asarray(np.sign(np.asarray(x)))


def log_softmax_np(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def close(a, b, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# One representative call per loss: (name, args, kwargs). All inputs are (3, 4)-shaped or derived
# from it, so the compiled cores are shared with the parity tests.
X, Y = f64(3, 4), f64(3, 4)
TARGET = jnp.array([0, 3, 1])
LOGP_CTC = jnp.asarray(log_softmax_np(R.standard_normal((6, 3, 5))))
CALLS = [
    ("l1_loss", (X, Y), {}),
    ("mse_loss", (X, Y), {}),
    ("smooth_l1_loss", (X, Y), {"beta": 0.5}),
    ("huber_loss", (X, Y), {"delta": 0.5}),
    ("cross_entropy", (X, TARGET), {"label_smoothing": 0.1}),
    ("nll_loss", (X, TARGET), {}),
    ("binary_cross_entropy", (probs(3, 4), probs(3, 4)), {}),
    ("binary_cross_entropy_with_logits", (X, probs(3, 4)), {"pos_weight": jnp.full(4, 2.0)}),
    ("kl_div", (X, probs(3, 4)), {"reduction": "batchmean"}),
    ("poisson_nll_loss", (X, jnp.asarray(np.abs(np.asarray(Y)) * 3)), {}),
    ("gaussian_nll_loss", (X, Y, probs(3, 4)), {}),
    ("soft_margin_loss", (X, sign(Y)), {}),
    ("multilabel_soft_margin_loss", (X, (sign(Y) + 1) / 2), {}),
    ("hinge_embedding_loss", (X, sign(Y)), {}),
    ("margin_ranking_loss", (X, Y, sign(Y)), {"margin": 0.1}),
    ("cosine_embedding_loss", (X, Y, jnp.array([1, -1, 1])), {"margin": 0.2}),
    ("triplet_margin_loss", (X, Y, f64(3, 4)), {"swap": True}),
    ("triplet_margin_with_distance_loss", (X, Y, f64(3, 4)), {"swap": True}),
    ("multi_margin_loss", (X, TARGET), {"margin": 0.5}),
    ("multilabel_margin_loss", (X, jnp.array([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3]])), {}),
    (
        "ctc_loss",
        (
            LOGP_CTC,
            jnp.array([[1, 2, 2, 3], [4, 4, 0, 0], [3, 1, 4, 2]]),
            jnp.array([6, 5, 4]),
            jnp.array([3, 2, 0]),
        ),
        {},
    ),
]
NAMES = [c[0] for c in CALLS]


def test_every_torch_loss_is_exported_with_torch_signature():
    import inspect

    assert sorted(losses.__all__) == sorted(NAMES)
    # The signatures (names, order, defaults) as torch 2.13 spells them.
    expected = {
        "l1_loss": "(input, target, size_average=None, reduce=None, reduction='mean', weight=None)",
        "smooth_l1_loss": (
            "(input, target, size_average=None, reduce=None, reduction='mean', beta=1.0)"
        ),
        "huber_loss": "(input, target, reduction='mean', delta=1.0, weight=None)",
        "cross_entropy": (
            "(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, "
            "reduction='mean', label_smoothing=0.0)"
        ),
        "binary_cross_entropy_with_logits": (
            "(input, target, weight=None, size_average=None, reduce=None, reduction='mean', "
            "pos_weight=None)"
        ),
        "kl_div": "(input, target, size_average=None, reduce=None, reduction='mean', "
        "log_target=False)",
        "poisson_nll_loss": (
            "(input, target, log_input=True, full=False, size_average=None, eps=1e-08, "
            "reduce=None, reduction='mean')"
        ),
        "gaussian_nll_loss": "(input, target, var, full=False, eps=1e-06, reduction='mean')",
        "margin_ranking_loss": (
            "(input1, input2, target, margin=0, size_average=None, reduce=None, reduction='mean')"
        ),
        "triplet_margin_loss": (
            "(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, "
            "size_average=None, reduce=None, reduction='mean')"
        ),
        "triplet_margin_with_distance_loss": (
            "(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False, "
            "reduction='mean')"
        ),
        "multi_margin_loss": (
            "(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, "
            "reduction='mean')"
        ),
        "ctc_loss": (
            "(log_probs, targets, input_lengths, target_lengths, blank=0, reduction='mean', "
            "zero_infinity=False)"
        ),
    }
    for name, sig in expected.items():
        params = inspect.signature(getattr(losses, name)).parameters.values()
        got = str(inspect.Signature([p.replace(annotation=p.empty) for p in params]))
        assert got == sig, name


# --- exact values ------------------------------------------------------------------------------
def test_pointwise_formulas():
    x, y = np.array([0.0, 0.3, -2.0, 1.5]), np.array([0.0, 0.0, 0.5, 0.0])
    d = x - y
    close(losses.l1_loss(x, y, reduction="none"), np.abs(d))
    close(losses.mse_loss(x, y, reduction="sum"), np.sum(d**2))
    beta = 0.5
    sl1 = np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)
    close(losses.smooth_l1_loss(x, y, beta=beta, reduction="none"), sl1)
    delta = 0.5
    hub = np.where(np.abs(d) < delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))
    close(losses.huber_loss(x, y, delta=delta, reduction="none"), hub)
    w = np.array([1.0, 2.0, 0.5, 0.0])
    close(losses.l1_loss(x, y, weight=w), np.sum(np.abs(d) * w) / w.sum())
    close(losses.huber_loss(x, y, weight=w, delta=delta), np.mean(hub * w))


def _grad_sum(fn, x, *rest, **kw):
    return np.asarray(jax.grad(lambda x: fn(x, *rest, reduction="sum", **kw))(jnp.asarray(x)))


def test_kinks_take_torch_subgradients():
    # (3, 4) inputs with the kinks in the first row, so the compiled cores are the shared ones.
    zeros = jnp.zeros((3, 4))
    x = np.full((3, 4), 3.0)
    x[0] = [0.0, 0.5, -0.5, 2.0]
    # |x| at 0 -> 0; smooth L1 / Huber at the threshold -> the linear part's slope.
    close(_grad_sum(losses.l1_loss, x, zeros)[0], [0.0, 1.0, -1.0, 1.0])
    close(_grad_sum(losses.smooth_l1_loss, x, zeros, beta=0.5)[0], [0.0, 1.0, -1.0, 1.0])
    close(_grad_sum(losses.huber_loss, x, zeros, delta=0.5)[0], [0.0, 0.5, -0.5, 0.5])
    # clamp_min passes the gradient at 0 (x == margin) ...
    hinge = _grad_sum(losses.hinge_embedding_loss, np.where(x == 0.5, 1.0, x), -jnp.ones((3, 4)))
    close(hinge[0], [-1.0, -1.0, -1.0, 0.0])
    # ... while multi_margin's kernel tests z > 0 strictly (z == 0 for class 1 here).
    mm = np.zeros((3, 4))
    mm[0] = [1.0, 0.0, 2.0, -5.0]
    close(_grad_sum(losses.multi_margin_loss, mm, jnp.array([0, 1, 2]))[0], [-1 / 4, 0.0, 1 / 4, 0])


def test_cross_entropy_and_nll_by_hand():
    x = np.array([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0], [1.0, 3.0, -2.0, 0.0]])
    t = np.array([0, 3, 1])
    lsm = log_softmax_np(x)
    picked = -lsm[np.arange(3), t]
    close(losses.cross_entropy(x, t, reduction="none"), picked)
    w = np.array([0.5, 1.0, 2.0, 4.0])
    close(losses.cross_entropy(x, t, weight=w), np.sum(picked * w[t]) / w[t].sum())
    # ignore_index drops the sample from the loss and from the weighted mean's denominator.
    close(
        losses.cross_entropy(x, np.array([0, -100, 1]), weight=w),
        (picked[0] * w[0] + picked[2] * w[1]) / (w[0] + w[1]),
    )
    ls = 0.2
    smooth = -lsm.sum(1)
    expected = (1 - ls) * picked.mean() + ls / 4 * smooth.mean()
    close(losses.cross_entropy(x, t, label_smoothing=ls), expected)
    # Probability targets: -sum(p * log_softmax) averaged over samples.
    p = np.exp(log_softmax_np(R.standard_normal((3, 4))))
    close(losses.cross_entropy(x, p), -(p * lsm).sum() / 3)
    close(losses.nll_loss(lsm, t, reduction="sum"), picked.sum())


def test_class_losses_edge_cases():
    x = f64(3, 4)
    all_ignored = jnp.full(3, -100)
    assert np.isnan(losses.cross_entropy(x, all_ignored))
    assert np.isnan(losses.nll_loss(x, all_ignored))
    assert float(losses.nll_loss(x, all_ignored, reduction="sum")) == 0.0
    g = jax.grad(lambda x: losses.cross_entropy(x, all_ignored))(x)
    close(g, np.zeros((3, 4)))  # NaN loss, but no NaN gradient: torch's behaviour
    empty = jnp.zeros((0, 4))
    assert np.isnan(losses.cross_entropy(empty, jnp.zeros(0, dtype=jnp.int32)))
    assert losses.cross_entropy(empty, jnp.zeros(0, dtype=jnp.int32), reduction="none").shape == (
        0,
    )
    # Unbatched input and K-dimensional input.
    assert losses.cross_entropy(f64(4), jnp.array(2), reduction="none").shape == ()
    k = R.standard_normal((2, 4, 2, 3))
    kt = R.integers(0, 4, (2, 2, 3))
    flat = losses.cross_entropy(
        jnp.asarray(np.moveaxis(k, 1, -1).reshape(-1, 4)),
        jnp.asarray(kt.reshape(-1)),
        reduction="none",
    )
    k_dim = losses.cross_entropy(jnp.asarray(k), jnp.asarray(kt), reduction="none")
    close(k_dim, np.asarray(flat).reshape(2, 2, 3))


def test_extreme_logits_stay_finite():
    big = np.zeros((3, 4))
    big[0] = [1e4, -1e4, 0.0, 1.0]
    big = jnp.asarray(big)
    labels = jnp.asarray((np.arange(12).reshape(3, 4) % 2).astype(np.float64))
    for fn, args in [
        (losses.cross_entropy, (big, jnp.array([1, 0, 2]))),
        (losses.binary_cross_entropy_with_logits, (big, labels)),
        (losses.multilabel_soft_margin_loss, (big, labels)),
        # torch overflows to inf here (log1p(exp(1e4))); the softplus form does not.
        (losses.soft_margin_loss, (big, 2 * labels - 1)),
    ]:
        value, grad = jax.value_and_grad(lambda x, fn=fn, args=args: fn(x, *args[1:]))(args[0])
        assert np.isfinite(value), fn.__name__
        assert np.all(np.isfinite(grad)), fn.__name__
    row = losses.cross_entropy(big, jnp.array([1, 0, 2]), reduction="none")
    close(np.asarray(row)[0], 2e4)


def test_binary_cross_entropy_uses_torch_backward():
    x, y = np.full((3, 4), 0.5), np.full((3, 4), 0.5)
    x[0], y[0] = [0.0, 0.3, 1.0, 0.0], [1.0, 0.5, 1.0, 0.0]
    # Forward: log clamped at -100.
    close(np.asarray(losses.binary_cross_entropy(x, y, reduction="none"))[0, 0], 100.0)
    g = _grad_sum(losses.binary_cross_entropy, x, jnp.asarray(y))
    eps = float(np.float32(1e-12))
    close(g, (x - y) / np.maximum((1 - x) * x, eps))
    # With logits: sigmoid(x) - y, not the derivative of the (equivalent) stable forward.
    z = np.zeros((3, 4))
    z[0, :2] = [20.0, -3.0]
    g = _grad_sum(losses.binary_cross_entropy_with_logits, z, jnp.ones((3, 4)))
    close(g, 1 / (1 + np.exp(-z)) - 1, atol=1e-15)


def test_kl_poisson_gaussian_by_hand():
    logq = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    pointwise = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - logq), 0.0)
    close(losses.kl_div(logq, p, reduction="batchmean"), pointwise.sum() / 2)
    close(
        losses.kl_div(logq, np.log(p + 1e-300), reduction="sum", log_target=True), pointwise.sum()
    )
    x, t = np.array([0.5, 1.0, 2.0]), np.array([0.0, 1.0, 5.0])
    stirling = np.array([0.0, 0.0, 5 * np.log(5) - 5 + 0.5 * np.log(2 * np.pi * 5)])
    close(losses.poisson_nll_loss(x, t, full=True, reduction="none"), np.exp(x) - t * x + stirling)
    close(
        losses.poisson_nll_loss(x, t, log_input=False, eps=0.1, reduction="none"),
        x - t * np.log(x + 0.1),
    )
    # Variance clamped at eps for the value, but the gradient reaches var unclamped.
    var = jnp.array([1e-9, 2.0])
    gx, gv = jax.grad(
        lambda m, v: losses.gaussian_nll_loss(m, jnp.zeros(2), v, reduction="sum"), (0, 1)
    )(jnp.array([0.1, 0.2]), var)
    vc = np.array([1e-6, 2.0])
    close(gx, np.array([0.1, 0.2]) / vc)
    close(gv, 0.5 * (1 / vc - np.array([0.01, 0.04]) / vc**2), rtol=1e-9)


def test_margin_losses_by_hand():
    # torch's documented examples.
    x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
    close(losses.multilabel_margin_loss(x, jnp.array([[3, 0, -1, 1]])), 0.85, rtol=1e-6)
    close(losses.multi_margin_loss(x, jnp.array([3])), 0.325, rtol=1e-6)
    a, b = jnp.array([[3.0, 4.0]]), jnp.array([[4.0, 3.0]])
    close(losses.cosine_embedding_loss(a, b, jnp.array([1])), 1 - 24 / 25, rtol=1e-10)
    close(losses.cosine_embedding_loss(a, b, jnp.array([-1]), margin=0.9), 24 / 25 - 0.9, rtol=1e-9)
    anchor, pos, neg = jnp.zeros((1, 2)), jnp.array([[3.0, 4.0]]), jnp.array([[1.0, 0.0]])
    close(losses.triplet_margin_loss(anchor, pos, neg, eps=0.0), 5.0)
    # swap: the positive is closer to the negative than the anchor is.
    close(losses.triplet_margin_loss(anchor, pos, jnp.array([[3.0, 3.0]]), eps=0.0, swap=True), 5.0)
    # Any distance: L1 gives 1 + 7 - 1; the default is the p=2, eps=1e-6 triplet margin loss.
    l1 = lambda x, y: jnp.sum(jnp.abs(x - y), axis=-1)  # noqa: E731
    close(losses.triplet_margin_with_distance_loss(anchor, pos, neg, distance_function=l1), 7.0)
    traced = jax.jit(
        lambda a: losses.triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1)
    )
    close(traced(anchor), 7.0)
    close(
        losses.triplet_margin_with_distance_loss(anchor, pos, neg, margin=0.5, swap=True),
        losses.triplet_margin_loss(anchor, pos, neg, margin=0.5, swap=True),
    )
    # swap: d(a, neg) = 9 but d(pos, neg) = 1, so the hinge is 1 + 7 - 1.
    far = jnp.array([[-4.0, -5.0]])
    close(losses.triplet_margin_with_distance_loss(anchor, pos, far, distance_function=l1), 0.0)
    close(
        losses.triplet_margin_with_distance_loss(
            anchor, pos, jnp.array([[4.0, 4.0]]), distance_function=l1, swap=True
        ),
        7.0,
    )
    close(
        losses.margin_ranking_loss(
            jnp.array([1.0, 0.0]),
            jnp.array([0.0, 1.0]),
            jnp.array([1.0, 1.0]),
            margin=0.5,
            reduction="none",
        ),
        [0.0, 1.5],
    )


def _ctc_brute_force(logp: np.ndarray, target: list[int], blank: int):
    """-log p(target) and the per-frame posterior of every class, over all T**C paths."""
    t_len, n_classes = logp.shape
    total, post = 0.0, np.zeros_like(logp)
    for path in itertools.product(range(n_classes), repeat=t_len):
        collapsed = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in collapsed if c != blank] != target:
            continue
        p = math.exp(sum(logp[t, c] for t, c in enumerate(path)))
        total += p
        for t, c in enumerate(path):
            post[t, c] += p
    return -math.log(total), post / total


@pytest.mark.parametrize(
    ("target", "blank"), [([1, 2], 0), ([1, 1], 0), ([], 0), ([2], 1), ([0, 2, 0], 1)]
)
def test_ctc_matches_brute_force(target, blank):
    logp = log_softmax_np(R.standard_normal((5, 3)))
    nll, post = _ctc_brute_force(logp, target, blank)
    # Unbatched input, targets padded to one width so that all cases share a compilation.
    args = (jnp.array([target + [0] * (3 - len(target))]), jnp.array(5), jnp.array(len(target)))
    value = losses.ctc_loss(jnp.asarray(logp), *args, blank=blank, reduction="sum")
    close(value, nll, rtol=1e-10)
    grad = jax.grad(lambda lp: losses.ctc_loss(lp, *args, blank=blank, reduction="sum"))(
        jnp.asarray(logp)
    )
    # torch's convention: exp(log_probs) - posterior (the gradient through a log_softmax).
    close(grad, np.exp(logp) - post, rtol=1e-9, atol=1e-12)


CTC_TARGETS = jnp.array([[1, 1, 2, 0], [2, 0, 0, 0], [3, 4, 4, 1]])


def test_ctc_lengths_and_infinity():
    lp, tg, tl = LOGP_CTC, CTC_TARGETS, jnp.array([3, 1, 4])

    def ctc(il, **kw):
        return losses.ctc_loss(lp, tg, il, tl, **kw)

    nll = np.asarray(ctc(jnp.array([3, 6, 6]), reduction="none"))  # 3 frames can't align "1 1 2"
    assert np.isinf(nll[0]) and np.all(np.isfinite(nll[1:]))
    close(ctc(jnp.array([3, 6, 6]), reduction="none", zero_infinity=True), [0.0, *nll[1:]])
    g = jax.grad(lambda lp: losses.ctc_loss(lp, tg, jnp.array([3, 6, 6]), tl, zero_infinity=True))(
        lp
    )
    close(np.asarray(g)[:, 0], np.zeros((6, 5)))
    # "mean" divides by the target lengths before averaging.
    close(ctc(jnp.array([3, 6, 6]), zero_infinity=True), (nll[1] / 1 + nll[2] / 4) / 3)
    # Frames past an input length get no gradient; concatenated targets equal padded ones.
    g = np.asarray(jax.grad(lambda lp: ctc(jnp.array([6, 2, 5])))(lp))
    close(g[2:, 1], np.zeros((4, 5)))
    close(g[5:, 2], np.zeros((1, 5)))
    il, tl = jnp.array([6, 4, 5]), jnp.array([4, 2, 1])
    concat = losses.ctc_loss(lp, jnp.array([1, 1, 2, 2, 3, 4, 4]), il, tl, reduction="none")
    padded = jnp.array([[1, 1, 2, 2], [3, 4, 0, 0], [4, 0, 0, 0]])
    close(concat, losses.ctc_loss(lp, padded, il, tl, reduction="none"))


# --- jit, vmap, dtypes ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS, ids=NAMES)
def test_jit_of_vmap_matches_eager(name, args, kwargs):
    """One compiled program per loss. (Gradients run compiled everywhere else: each loss's
    arithmetic is itself a jitted core.)"""
    fn = getattr(losses, name)
    # A leading batch of two different problems, mapped over every argument.
    host = [np.asarray(a) for a in args]
    other = [a[::-1] if a.ndim and name != "ctc_loss" else a for a in host]
    stacked = [jnp.asarray(np.stack([a, b])) for a, b in zip(host, other, strict=True)]
    mapped = jax.jit(jax.vmap(lambda *a: fn(*a, **kwargs)))(*stacked)
    eager = [fn(*args, **kwargs), fn(*map(jnp.asarray, other), **kwargs)]
    close(mapped, np.stack([np.asarray(e) for e in eager]), rtol=1e-13)


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS, ids=NAMES)
def test_float32_stays_float32(name, args, kwargs):
    fn = getattr(losses, name)
    args32 = [np.asarray(a) for a in args]
    args32 = [jnp.asarray(a.astype(np.float32) if a.dtype == np.float64 else a) for a in args32]
    value, grad = jax.value_and_grad(lambda x: fn(x, *args32[1:], **kwargs))(args32[0])
    assert value.dtype == jnp.float32
    assert grad.dtype == jnp.float32
    close(value, fn(*args, **kwargs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "mse_loss",
        "cross_entropy",
        "binary_cross_entropy",
        "gaussian_nll_loss",
        "margin_ranking_loss",
    ],
)
def test_float64_targets_do_not_promote_float32_input(name):
    _, args, kwargs = CALLS[NAMES.index(name)]
    value, grad = jax.value_and_grad(lambda x: getattr(losses, name)(x, *args[1:], **kwargs))(
        jnp.asarray(np.asarray(args[0]).astype(np.float32))
    )
    assert value.dtype == grad.dtype == jnp.float32


def test_cross_entropy_compiles_to_one_program_without_host_callbacks():
    x = jax.ShapeDtypeStruct((4096, 1000), jnp.float32)
    t = jax.ShapeDtypeStruct((4096,), jnp.int32)
    for f in (losses.cross_entropy, jax.value_and_grad(losses.cross_entropy)):
        lowered = jax.jit(f).lower(x, t)
        text = lowered.as_text()
        assert "callback" not in text
        assert "custom_call" not in text
        # The function's own name carries "callback"-free metadata; look for the op itself.
        assert "custom-call" not in lowered.compile().as_text()
    # And it runs: one executable call, no host round trips in between.
    logits = jax.random.normal(jax.random.key(0), (4096, 1000), jnp.float32)
    labels = jax.random.randint(jax.random.key(1), (4096,), 0, 1000)
    value = jax.jit(losses.cross_entropy)(logits, labels)
    assert value.dtype == jnp.float32 and np.isfinite(value)


# --- errors and warnings -------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS, ids=NAMES)
def test_unknown_reduction(name, args, kwargs):
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        getattr(losses, name)(*args, **{**kwargs, "reduction": "average"})


def test_deprecated_arguments_warn_and_map():
    x, y = f64(3, 4), f64(3, 4)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        summed = losses.mse_loss(x, y, size_average=False)
    close(summed, losses.mse_loss(x, y, reduction="sum"))
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert losses.nll_loss(x, TARGET, reduce=False).shape == (3,)
    with pytest.warns(UserWarning, match="'elementwise_mean' is deprecated"):
        close(losses.l1_loss(x, y, reduction="elementwise_mean"), losses.l1_loss(x, y))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        losses.kl_div(x, probs(3, 4))


def test_pointwise_shape_errors():
    x = f64(3, 4)
    with pytest.warns(UserWarning, match="Using a target size"):
        assert losses.l1_loss(x, f64(4), reduction="none").shape == (3, 4)
    with pytest.raises(ValueError, match="cannot be broadcast"), pytest.warns(UserWarning):
        losses.mse_loss(x, f64(5))
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        losses.l1_loss(x, x, weight=jnp.ones(4))
    with pytest.raises(ValueError, match="negative values for beta"):
        losses.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="non-positive values for delta"):
        losses.huber_loss(x, x, delta=0.0)
    with pytest.raises(TypeError, match="floating point input"):
        losses.mse_loss(jnp.array([1, 2]), jnp.array([1, 2]))
    with pytest.raises(TypeError, match="Integral"):
        losses.kl_div(x, jnp.ones((3, 4), dtype=jnp.int32), reduction="sum")


def test_gaussian_nll_errors():
    x = f64(3, 4)
    with pytest.raises(ValueError, match="negative"):
        losses.gaussian_nll_loss(x, x, -1.0)
    with pytest.raises(ValueError, match="negative"):
        losses.gaussian_nll_loss(x, x, -np.ones((3, 4)))
    with pytest.raises(ValueError, match="incorrect size"):
        losses.gaussian_nll_loss(x, x, np.ones((3, 2)))
    # Values are not checked under jit (the variance is a tracer there).
    jax.jit(losses.gaussian_nll_loss)(x, x, -np.ones((3, 4)))


def test_class_index_errors():
    x = f64(3, 4)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        losses.cross_entropy(x, jnp.array([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        losses.nll_loss(x, jnp.array([0, -1, 1]))
    # Under jit the indices are tracers: no check, as documented; the result is NaN instead.
    assert np.isnan(jax.jit(losses.cross_entropy)(x, jnp.array([0, 4, 1])))
    traced = jax.jit(lambda t: losses.multilabel_margin_loss(x, t, reduction="none"))
    assert np.isnan(np.asarray(traced(jnp.array([[1, 4, -1, 0]] * 3)))).all()
    with pytest.raises(TypeError, match="integer type"):
        losses.nll_loss(x, jnp.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integer type"):  # float target of the wrong shape
        losses.cross_entropy(x, jnp.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="Expected floating point type for target"):
        losses.cross_entropy(x, jnp.zeros((3, 4), dtype=jnp.int32))
    with pytest.raises(ValueError, match="ignore_index is not supported"):
        losses.cross_entropy(x, probs(3, 4), ignore_index=0)
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        losses.cross_entropy(x, TARGET, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        losses.cross_entropy(x, probs(3, 4), label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight tensor should be defined"):
        losses.cross_entropy(x, TARGET, weight=jnp.ones(3))
    with pytest.raises(ValueError, match="batch_size"):
        losses.nll_loss(x, jnp.array([0, 1]))
    with pytest.raises(ValueError, match="multi-target"):
        losses.nll_loss(x, jnp.zeros((3, 2), dtype=jnp.int32))
    with pytest.raises(ValueError, match="Expected target size"):
        losses.cross_entropy(f64(2, 4, 3), jnp.zeros((2, 5), dtype=jnp.int32))
    with pytest.raises(ValueError, match="1D target must have size 1"):
        losses.nll_loss(f64(4), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="Expected 1 or more dimensions"):
        losses.cross_entropy(jnp.array(1.0), jnp.array(0))


def test_binary_cross_entropy_errors():
    x = probs(3, 4)
    above, below = np.asarray(x) + 1.0, np.asarray(x) - 1.0
    with pytest.raises(ValueError, match="input should be between 0 and 1"):
        losses.binary_cross_entropy(above, x)
    with pytest.raises(ValueError, match="target should be between 0 and 1"):
        losses.binary_cross_entropy(x, below)
    jax.jit(losses.binary_cross_entropy)(above, x)  # not checked while tracing
    with pytest.raises(ValueError, match="different to the input size"):
        losses.binary_cross_entropy(x, probs(4))
    with pytest.raises(TypeError, match="floating point target"):
        losses.binary_cross_entropy(x, jnp.ones((3, 4), dtype=jnp.int32))
    with pytest.raises(ValueError, match="broadcast shape"):
        losses.binary_cross_entropy(x, x, weight=jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="must be the same as input size"):
        losses.binary_cross_entropy_with_logits(x, probs(4))
    with pytest.raises(ValueError, match="broadcast shape"):
        losses.binary_cross_entropy_with_logits(x, x, pos_weight=jnp.ones(3))


def test_margin_loss_errors():
    x = f64(3, 4)
    with pytest.raises(ValueError, match="broadcast shape"):
        losses.soft_margin_loss(f64(4), x)
    with pytest.raises(ValueError, match="class dimension"):
        losses.multilabel_soft_margin_loss(jnp.array(1.0), jnp.array(1.0))
    with pytest.raises(ValueError, match="same dimension"):
        losses.margin_ranking_loss(f64(3), f64(3), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="multi-target"):
        losses.cosine_embedding_loss(x, x, jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="1D target tensor expects 2D input"):
        losses.cosine_embedding_loss(f64(4), f64(4), jnp.ones(1))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        losses.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        losses.triplet_margin_loss(x, x, f64(4))
    with pytest.raises(ValueError, match="margin must be greater than 0, got -1.0"):
        losses.triplet_margin_with_distance_loss(x, x, x, margin=-1.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        losses.triplet_margin_with_distance_loss(x, f64(4), x, distance_function=jnp.subtract)
    with pytest.raises(TypeError, match="distance_function must be a callable"):
        losses.triplet_margin_with_distance_loss(x, x, x, distance_function=2)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        losses.triplet_margin_with_distance_loss(x, x, x, reduction="elementwise_mean")
    with pytest.raises(TypeError, match="floating point input"):
        losses.triplet_margin_with_distance_loss(jnp.ones((2, 3), jnp.int32), x[:2, :3], x[:2, :3])
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        losses.multi_margin_loss(x, TARGET, p=3)
    with pytest.raises(ValueError, match="one-dimensional"):
        losses.multi_margin_loss(x, TARGET, weight=jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="inconsistent weight size"):
        losses.multi_margin_loss(x, TARGET, weight=jnp.ones(3))
    with pytest.raises(ValueError, match="Expected target size"):
        losses.multi_margin_loss(x, jnp.array([0, 1]))
    with pytest.raises(ValueError, match="target out of range"):
        losses.multi_margin_loss(x, jnp.array([0, 1, 4]))
    with pytest.raises(ValueError, match="non-empty vector or matrix"):
        losses.multi_margin_loss(f64(2, 3, 4), jnp.zeros(2, dtype=jnp.int32))
    with pytest.raises(ValueError, match="inconsistent target size"):
        losses.multilabel_margin_loss(x, jnp.zeros((3, 3), dtype=jnp.int32))
    with pytest.raises(ValueError, match="out of range"):
        losses.multilabel_margin_loss(x, jnp.array([[1, -1, 7, 0]] * 3))


def test_ctc_errors():
    lp = np.asarray(LOGP_CTC)
    tg, il, tl = np.array([[1, 2, 2, 3]] * 3), np.array([6, 5, 4]), np.array([3, 2, 1])
    with pytest.raises(ValueError, match="blank must be in label range"):
        losses.ctc_loss(lp, tg, il, tl, blank=5)
    with pytest.raises(ValueError, match="must not be empty"):
        losses.ctc_loss(lp[:, :0], tg[:0], il[:0], tl[:0])
    with pytest.raises(ValueError, match=r"\(T, N, C\) or \(T, C\)"):
        losses.ctc_loss(lp[None], tg, il, tl)
    with pytest.raises(TypeError, match="input_lengths must be integral"):
        losses.ctc_loss(lp, tg, np.array([6.0, 5.0, 4.0]), tl)
    with pytest.raises(ValueError, match="target_lengths must be of size batch_size"):
        losses.ctc_loss(lp, tg, il, tl[:2])
    with pytest.raises(ValueError, match="input_lengths to have value at most 6"):
        losses.ctc_loss(lp, tg, il + 1, tl)
    with pytest.raises(ValueError, match="at least 0"):
        losses.ctc_loss(lp, tg, il, tl - 2)
    with pytest.raises(ValueError, match="size at least 5 at dimension 1"):
        losses.ctc_loss(lp, tg, il, np.array([5, 1, 1]))
    with pytest.raises(ValueError, match="size 6 at dimension 0"):
        losses.ctc_loss(lp, np.array([1, 2, 3, 4, 1]), il, tl)
    with pytest.raises(ValueError, match="target labels"):
        losses.ctc_loss(lp, np.array([[1, 2, 9, 3]] * 3), il, tl)
