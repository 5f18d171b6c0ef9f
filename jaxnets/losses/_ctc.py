"""Connectionist temporal classification loss, forward-backward in log space over ``lax.scan``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxnets.losses._common import _check_reduction, _float_array, _is_concrete, _reduce

# Default-width ints (as jnp.arange makes), so index arithmetic never mixes widths.
_INT = jax.dtypes.canonicalize_dtype(jnp.int64)


def _shift(a: jax.Array, k: int, fill: float) -> jax.Array:
    """``a[:, s - k]`` along the state axis (``k < 0`` looks ahead), ``fill`` off the end."""
    if abs(k) >= a.shape[1]:
        return jnp.full_like(a, fill)
    pad = jnp.full((a.shape[0], abs(k)), fill, dtype=a.dtype)
    if k > 0:
        return jnp.concatenate([pad, a[:, :-k]], axis=1)
    return jnp.concatenate([a[:, -k:], pad], axis=1)


def _logsumexp3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    # The same arithmetic as torch's kernel, so both round alike.
    m = jnp.maximum(jnp.maximum(a, b), c)
    m = jnp.where(m == -jnp.inf, jnp.zeros_like(m), m)
    return jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m)) + m


def _extended_labels(targets: jax.Array, target_lengths: jax.Array, blank: int) -> jax.Array:
    """``l'``: blanks interleaved with the labels, ``(N, 2S + 1)``; blank past each length."""
    n, s_max = targets.shape
    states = jnp.arange(2 * s_max + 1)
    if s_max == 0:
        return jnp.full((n, 1), blank, dtype=_INT)
    labels = jnp.take(targets, jnp.clip((states - 1) // 2, 0, s_max - 1), axis=1)
    odd = (states % 2 == 1)[None, :]
    inside = states[None, :] <= 2 * target_lengths[:, None]
    return jnp.where(odd & inside, labels, jnp.full_like(labels, blank))


def _ctc_alpha(lp_lab: jax.Array, lab: jax.Array, tl: jax.Array) -> jax.Array:
    """log alpha for every t, ``(T, N, S')``."""
    n_states = lab.shape[1]
    states = jnp.arange(n_states)[None, :]
    neg_inf = jnp.full(lp_lab.shape[1:], -jnp.inf, dtype=lp_lab.dtype)
    first = (states == 0) | ((states == 1) & (tl[:, None] > 0))
    alpha0 = jnp.where(first, lp_lab[0], neg_inf)
    skip = (states > 1) & (lab != _shift(lab, 2, -1))

    def step(prev, lp_t):
        la2 = _shift(prev, 1, -jnp.inf)
        la3 = jnp.where(skip, _shift(prev, 2, -jnp.inf), neg_inf)
        new = _logsumexp3(prev, la2, la3) + lp_t
        return new, new

    _, rest = lax.scan(step, alpha0, lp_lab[1:])
    return jnp.concatenate([alpha0[None], rest], axis=0)


def _ctc_forward(lp, targets, il, tl, blank):
    n = lp.shape[1]
    lab = _extended_labels(targets, tl, blank)
    lp_lab = jnp.take_along_axis(lp, jnp.broadcast_to(lab[None], (lp.shape[0], *lab.shape)), 2)
    alpha = _ctc_alpha(lp_lab, lab, tl)
    last = alpha[jnp.clip(il - 1, 0, lp.shape[0] - 1), jnp.arange(n)]
    l1 = jnp.take_along_axis(last, (2 * tl)[:, None], axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(2 * tl - 1, 0)[:, None], axis=1)[:, 0]
    l2 = jnp.where(tl > 0, l2, jnp.full_like(l2, -jnp.inf))
    m = jnp.maximum(l1, l2)
    m = jnp.where(m == -jnp.inf, jnp.zeros_like(m), m)
    ll = jnp.where(tl == 0, l1, jnp.log(jnp.exp(l1 - m) + jnp.exp(l2 - m)) + m)
    # No frames: the empty target has likelihood 1, any other target 0.
    ll = jnp.where(il == 0, jnp.where(tl == 0, 0.0, -jnp.inf).astype(ll.dtype), ll)
    return -ll, (lab, lp_lab, alpha)


@jax.custom_vjp
def _ctc_nll(lp, targets, il, tl, blank, zero_infinity):
    return _ctc_forward(lp, targets, il, tl, blank)[0]


def _ctc_nll_fwd(lp, targets, il, tl, blank, zero_infinity):
    nll, (lab, lp_lab, alpha) = _ctc_forward(lp, targets, il, tl, blank)
    return nll, (lp, il, tl, nll, lab, lp_lab, alpha, blank, zero_infinity)


def _ctc_nll_bwd(res, g):
    # torch's _ctc_loss_backward: beta by the mirrored recursion, then
    # grad = (exp(lp) - exp(logsumexp_{s: l'(s)=c}(alpha + beta) + nll - lp)) * g for t < length.
    # The exp(lp) term is torch's convention (the gradient through a log_softmax in front of
    # it), so the result is not the plain derivative of the returned loss with respect to lp.
    lp, il, tl, nll, lab, lp_lab, alpha, blank, zero_infinity = res
    t_len, n, n_classes = lp.shape
    states = jnp.arange(lab.shape[1])[None, :]
    neg_inf = jnp.full(lab.shape, -jnp.inf, dtype=lp.dtype)
    end = 2 * tl[:, None]
    step2 = states < end
    step3 = (states < end - 1) & (lab != _shift(lab, -2, -1))
    valid = states <= end
    final = (states == end) | ((states == end - 1) & (tl[:, None] > 0))

    def step(nxt, inp):
        t, lp_t = inp
        lb2 = jnp.where(step2, _shift(nxt, -1, -jnp.inf), neg_inf)
        lb3 = jnp.where(step3, _shift(nxt, -2, -jnp.inf), neg_inf)
        rec = _logsumexp3(nxt, lb2, lb3) + lp_t
        at_end = (t == il - 1)[:, None]
        before = (t < il - 1)[:, None] & valid
        beta = jnp.where(at_end, jnp.where(final, lp_t, neg_inf), jnp.where(before, rec, neg_inf))
        return beta, beta

    _, beta = lax.scan(step, neg_inf, (jnp.arange(t_len), lp_lab), reverse=True)
    ab = alpha + beta
    # torch writes (rather than log-adds) the last frame's two states; they only collide when the
    # last label is the blank itself, and then the blank state's share is dropped.
    last_is_blank = jnp.take_along_axis(lab, jnp.maximum(end - 1, 0), axis=1) == blank
    drop = (jnp.arange(t_len)[:, None, None] == (il - 1)[None, :, None]) & (
        (states == end) & (tl[:, None] > 0) & last_is_blank
    )[None]
    ab = jnp.where(drop, -jnp.inf, ab)
    peak = jnp.max(ab, axis=2, keepdims=True)
    peak = jnp.where(peak == -jnp.inf, jnp.zeros_like(peak), peak)
    t_idx = jnp.broadcast_to(jnp.arange(t_len)[:, None, None], ab.shape)
    n_idx = jnp.broadcast_to(jnp.arange(n)[None, :, None], ab.shape)
    c_idx = jnp.broadcast_to(lab[None], ab.shape)
    summed = jnp.zeros_like(lp).at[t_idx, n_idx, c_idx].add(jnp.exp(ab - peak))
    log_ab = jnp.log(summed) + peak
    grad = (jnp.exp(lp) - jnp.exp(log_ab + nll[None, :, None] - lp)) * g[None, :, None]
    keep = (jnp.arange(t_len)[:, None] < il[None, :]) & ((nll != jnp.inf) | ~zero_infinity)[None]
    grad = jnp.where(keep[:, :, None], grad, jnp.zeros_like(grad))
    return grad, None, None, None, None, None


_ctc_nll.defvjp(_ctc_nll_fwd, _ctc_nll_bwd)


@partial(jax.jit, static_argnames=("width",))
def _ctc_core(lp, targets, il, tl, blank, zero_infinity, width):
    """Per-sample losses; ``width`` pads concatenated targets (``None``: already padded)."""
    batched = lp.ndim == 3
    if not batched:
        lp = lp[:, None, :]
    n = lp.shape[1]
    il = il.reshape(n).astype(_INT)
    tl = tl.reshape(n).astype(_INT)
    targets = targets.astype(_INT)
    if width is not None:
        offsets = jnp.cumsum(tl) - tl
        idx = offsets[:, None] + jnp.arange(width)[None, :]
        if targets.shape[0]:
            targets = jnp.take(targets, jnp.clip(idx, 0, targets.shape[0] - 1))
        else:
            targets = jnp.zeros((n, width), dtype=_INT)
    nll = _ctc_nll(lp, targets, il, tl, blank, zero_infinity)
    nll = jnp.where(zero_infinity & (nll == jnp.inf), jnp.zeros_like(nll), nll)
    # "mean" divides each loss by its target length, at least 1.
    lengths = jnp.maximum(tl, 1).astype(nll.dtype)
    if not batched:
        return nll.reshape(()), lengths.reshape(())
    return nll, lengths


def _lengths(name: str, lengths: ArrayLike, n: int) -> jax.Array:
    lengths = jnp.asarray(lengths)
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"{name} must be integral")
    if lengths.size != n:
        raise ValueError(f"{name} must be of size batch_size")
    return lengths


def ctc_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    input_lengths: ArrayLike,
    target_lengths: ArrayLike,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> jax.Array:
    """Connectionist temporal classification loss, as ``torch.nn.functional.ctc_loss``.

    The negative log likelihood of each target sequence under all its alignments, by the alpha
    recursion in log space (``lax.scan`` over time, vectorised over the batch).

    Args:
      log_probs: ``(T, N, C)`` or unbatched ``(T, C)`` log-probabilities (e.g. ``log_softmax``).
      targets: padded ``(N, S)`` class indices, or all targets concatenated ``(sum(lengths),)``.
        Integer or float (truncated to integers, as torch does).
      input_lengths: ``(N,)`` (``()`` when unbatched) integers ``<= T``.
      target_lengths: ``(N,)`` (``()`` when unbatched) integers, at most ``S`` when padded.
      blank: the blank's class index.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides each loss by its
        target length (at least 1) and averages over the batch.
      zero_infinity: replace infinite losses (inputs too short to align the target) and their
        gradients by zero.

    Returns:
      A scalar, or ``(N,)`` for ``reduction="none"`` (``()`` when unbatched). The gradient with
      respect to ``log_probs`` is torch's: ``exp(log_probs) - posterior`` per frame, zero past
      each input length, NaN for infinite losses unless ``zero_infinity``.

    Lengths and targets are checked against ``T``, ``S`` and ``C`` only when their values are
    concrete (traced, values out of range give meaningless losses); unlike torch, out-of-range
    target labels raise (torch reads arbitrary memory). Under ``jit``/``vmap`` with
    concatenated targets the padded width is ``len(targets)``, not the longest target, since
    the lengths are not known while tracing.

    >>> lp = jnp.log(jnp.array([[0.5, 0.5], [0.5, 0.5]]))
    >>> round(float(ctc_loss(lp, jnp.array([1]), jnp.array(2), jnp.array(1))), 4)
    0.2877
    """
    reduction = _check_reduction(reduction)
    lp = _float_array("ctc_loss", log_probs, "log_probs")
    if lp.ndim not in (2, 3):
        raise ValueError(
            f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got {lp.shape}"
        )
    batched = lp.ndim == 3
    t_len, n, n_classes = lp.shape if batched else (lp.shape[0], 1, lp.shape[1])
    if lp.size == 0:
        raise ValueError("log_probs tensor must not be empty")
    if not 0 <= blank < n_classes:
        raise ValueError("blank must be in label range")
    il = _lengths("input_lengths", input_lengths, n)
    tl = _lengths("target_lengths", target_lengths, n)
    tg = jnp.asarray(targets)
    if tg.ndim not in (1, 2):
        raise ValueError(f"ctc_loss: targets must be 1-D or 2-D, got shape {tg.shape}")
    if not (jnp.issubdtype(tg.dtype, jnp.integer) or jnp.issubdtype(tg.dtype, jnp.floating)):
        raise TypeError(f"ctc_loss: expected integer targets, got {tg.dtype}")
    if tg.ndim == 2 and tg.shape[0] != n:
        raise ValueError(
            f"Expected tensor to have size {n} at dimension 0, but got size {tg.shape[0]} for "
            "argument #2 'targets'"
        )
    concrete = _is_concrete(il, tl, tg)
    if concrete:
        il_np = np.asarray(il).reshape(n).astype(np.int64)
        tl_np = np.asarray(tl).reshape(n).astype(np.int64)
        tg_np = np.asarray(tg).astype(np.int64)
        if (il_np < 0).any():
            raise ValueError(
                f"Expected input_lengths to have value at least 0, but got value {il_np.min()}"
            )
        if (il_np > t_len).any():
            raise ValueError(
                f"Expected input_lengths to have value at most {t_len}, but got value {il_np.max()}"
            )
        if (tl_np < 0).any():
            raise ValueError(
                f"Expected target_lengths to have value at least 0, but got value {tl_np.min()}"
            )
        if tg.ndim == 1 and tl_np.sum() != tg.shape[0]:
            raise ValueError(
                f"Expected tensor to have size {tl_np.sum()} at dimension 0, but got size "
                f"{tg.shape[0]} for argument #2 'targets'"
            )
        if tg.ndim == 2 and tl_np.max() > tg.shape[1]:
            raise ValueError(
                f"Expected tensor to have size at least {tl_np.max()} at dimension 1, but got "
                f"size {tg.shape[1]} for argument #2 'targets'"
            )
        if tg.ndim == 1:
            used = tg_np
        else:
            used = tg_np[np.arange(tg.shape[1])[None, :] < tl_np[:, None]]
        if ((used < 0) | (used >= n_classes)).any():
            raise ValueError(f"ctc_loss: target labels must lie in [0, {n_classes})")
    width = None
    if tg.ndim == 1 and concrete:
        # Known lengths: pad on the host, so that both target layouts share one compilation.
        cols = np.arange(int(tl_np.max(initial=0)))[None, :]
        used = cols < tl_np[:, None]
        padded = np.zeros(used.shape, dtype=np.int64)
        padded[used] = tg_np[((np.cumsum(tl_np) - tl_np)[:, None] + cols)[used]]
        tg = jnp.asarray(padded)
    elif tg.ndim == 1:
        # Traced lengths: the longest target is unknown, so pad to the total length.
        width = tg.shape[0]
    nll, lengths = _ctc_core(lp, tg, il, tl, blank, zero_infinity, width=width)
    if reduction == "mean":
        return jnp.mean(nll / lengths)
    return _reduce(nll, reduction)
