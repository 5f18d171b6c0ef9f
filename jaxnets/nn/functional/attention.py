"""torch.nn.functional's attention: ``scaled_dot_product_attention`` and
``multi_head_attention_forward``, with torch's values and gradients.

Masks follow torch's two conventions, which are opposite: in ``scaled_dot_product_attention`` a
bool ``attn_mask`` is True where a key *takes part*; in ``multi_head_attention_forward`` (and
``nn.MultiheadAttention``) a bool ``attn_mask`` or ``key_padding_mask`` is True where a key is
*masked out*. Float masks are added to the scores in both.

A query row whose every key is masked gives torch's answers: zeros (and zero gradients) from
``scaled_dot_product_attention``, whose math reference on CPU takes a "safe" softmax; NaN from
``multi_head_attention_forward`` with ``need_weights=True``, which takes the plain softmax of a
row of ``-inf``.

Dropout draws through :mod:`jaxnets.nn.random` from the ``dropout`` stream of an NNX ``rngs``
(an ``nnx.Rngs``, a stream or a key); JAX's and torch's random streams differ, so results with
``dropout_p > 0`` match torch's in distribution only, or exactly where torch's draws are replayed
(``parity.check_port``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets.nn import random

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

RngSource = random.RngSource


def _needs_rngs(rngs: RngSource, what: str) -> None:
    if rngs is None and random.active() is None:
        raise ValueError(
            f"{what} with dropout_p > 0 needs random numbers: pass rngs=nnx.Rngs(dropout=...) "
            "(or a stream or key), or dropout_p=0.0"
        )


def _dropout(x: jax.Array, p: float, rngs: RngSource, what: str) -> jax.Array:
    """torch's ``dropout(x, p, train=True)``: zero with probability ``p``, scale by ``1/(1-p)``."""
    if p == 1.0:
        return jnp.zeros_like(x)
    _needs_rngs(rngs, what)
    # The weights are in torch's axes (torch's may group (N*H, L, S) where these are 4-D).
    keep = random.bernoulli(1.0 - p, x.shape, rngs=rngs, layout="torch")
    scale = jnp.asarray(1.0 / (1.0 - p), x.dtype)
    return x * jnp.where(keep, scale, jnp.zeros((), x.dtype))


def _check_dropout(dropout_p: float) -> float:
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout_p must be between 0 and 1, got {dropout_p}")
    return float(dropout_p)


def _pad_rank(a: jax.Array, ndim: int) -> jax.Array:
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


def scaled_dot_product_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    attn_mask: ArrayLike | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    rngs: RngSource = None,
) -> jax.Array:
    """``torch.nn.functional.scaled_dot_product_attention``: ``softmax(q k^T * scale + mask) v``.

    Shapes as torch: ``query (..., Hq, L, E)``, ``key (..., H, S, E)``, ``value (..., H, S, Ev)``
    (at least 2-D; leading axes broadcast) give ``(..., Hq, L, Ev)``. ``attn_mask`` broadcasts to
    ``(..., Hq, L, S)``: bool True = the key takes part, float = added to the scores (``-inf``
    masks). ``is_causal`` masks keys after the query's position, aligned top-left (row ``i`` sees
    keys ``0..i``) as torch's ``CausalBias``; it excludes ``attn_mask``. ``scale`` defaults to
    ``1/sqrt(E)``. ``enable_gqa`` lets ``Hq`` be a multiple of ``H``: query head ``h`` uses key
    head ``h // (Hq // H)`` (torch's ``repeat_interleave``). A row with every key masked gives
    zeros and passes no gradient, as torch's math reference.

    Without dropout on float32 (and lower) inputs the work is ``jax.nn.dot_product_attention``
    (its softmax runs in float32, exact there; float64 takes the explicit form so as not to lose
    precision); dropout (``dropout_p > 0``, drawn from ``rngs``' ``dropout`` stream, needed then)
    or ``Ev != E`` also take the explicit form.

    >>> q = jnp.ones((2, 3, 4), jnp.float32)
    >>> scaled_dot_product_attention(q, q, jnp.arange(24.0, dtype=jnp.float32).reshape(2, 3, 4),
    ...                              is_causal=True)[0, :, 0].tolist()
    [0.0, 2.0, 4.0]
    """
    q, k, v = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    dropout_p = _check_dropout(dropout_p)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(
            "scaled_dot_product_attention expects query, key and value of at least 2-D "
            f"(..., L, E), got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if not (q.dtype == k.dtype == v.dtype) or not jnp.issubdtype(q.dtype, jnp.floating):
        raise TypeError(
            "scaled_dot_product_attention expects query, key and value of one floating dtype, "
            f"got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    L, E = q.shape[-2:]
    S, Ev = v.shape[-2:]
    if k.shape[-1] != E or k.shape[-2] != S:
        raise ValueError(
            f"scaled_dot_product_attention: key must be (..., S, E) with E={E} of the query and "
            f"S={S} of the value, got query {q.shape}, key {k.shape}, value {v.shape}"
        )
    if is_causal and attn_mask is not None:
        raise ValueError(
            "scaled_dot_product_attention: an explicit attn_mask should not be set when "
            "is_causal=True"
        )
    if dropout_p > 0.0 and rngs is None:
        _needs_rngs(rngs, "scaled_dot_product_attention")  # say so before any work

    # Leading axes: the batch axes broadcast; the head axis too, unless GQA groups it.
    if enable_gqa:
        if q.ndim < 3 or k.ndim < 3 or v.ndim < 3:
            raise ValueError("enable_gqa=True needs a head axis: query, key, value (..., H, L, E)")
        hq, hk = q.shape[-3], k.shape[-3]
        if v.shape[-3] != hk or hq % hk:
            raise ValueError(
                "enable_gqa=True needs key and value heads equal and dividing the query heads, "
                f"got query {hq}, key {hk}, value {v.shape[-3]} heads"
            )
        batch = jnp.broadcast_shapes(q.shape[:-3], k.shape[:-3], v.shape[:-3])
        q = jnp.broadcast_to(q, (*batch, *q.shape[-3:]))
        k = jnp.broadcast_to(k, (*batch, *k.shape[-3:]))
        v = jnp.broadcast_to(v, (*batch, *v.shape[-3:]))
    else:
        try:
            lead = jnp.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        except ValueError:
            raise ValueError(
                "scaled_dot_product_attention: the leading axes of query, key and value do not "
                f"broadcast: {q.shape}, {k.shape}, {v.shape} (enable_gqa=True groups heads)"
            ) from None
        q = jnp.broadcast_to(q, (*lead, L, E))
        k = jnp.broadcast_to(k, (*lead, S, E))
        v = jnp.broadcast_to(v, (*lead, S, Ev))
    lead = q.shape[:-2]  # (*batch, Hq) or the broadcast leading axes
    weights_shape = (*lead, L, S)

    keep = bias = None  # keep: bool, True = takes part; bias: float, added
    if attn_mask is not None:
        mask = jnp.asarray(attn_mask)
        try:
            jnp.broadcast_shapes(mask.shape, weights_shape)
        except ValueError:
            raise ValueError(
                f"attn_mask of shape {mask.shape} does not broadcast to the attention weights' "
                f"shape {weights_shape}"
            ) from None
        if mask.ndim > len(weights_shape):
            raise ValueError(
                f"attn_mask of shape {mask.shape} has more axes than the attention weights "
                f"{weights_shape}"
            )
        mask = _pad_rank(mask, len(weights_shape))
        if mask.dtype == jnp.bool_:
            keep = mask
        elif mask.dtype == q.dtype:
            # -inf entries are masked keys: as a bool mask they keep every path finite.
            keep = mask != -jnp.inf
            bias = jnp.where(keep, mask, jnp.zeros((), mask.dtype))
        else:
            raise TypeError(
                f"attn_mask must be bool or of the query's dtype {q.dtype}, got {mask.dtype}"
            )
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    # A row with no key left: torch's safe softmax gives it zeros.
    dead = None if keep is None else ~jnp.any(keep, axis=-1, keepdims=True)

    fused = dropout_p == 0.0 and Ev == E and q.dtype != jnp.float64
    if fused:
        out = _dot_product_attention(q, k, v, keep, bias, is_causal, scale, enable_gqa)
        if dead is not None:
            # jax.nn.dot_product_attention averages the values of a row with no key left.
            out = jnp.where(dead, jnp.zeros((), out.dtype), out)
    else:
        if enable_gqa:
            groups = q.shape[-3] // k.shape[-3]
            k = jnp.repeat(k, groups, axis=-3)
            v = jnp.repeat(v, groups, axis=-3)
        root = jnp.asarray(math.sqrt(scale), q.dtype)
        # torch's math reference scales query and key by sqrt(scale) each.
        scores = jnp.einsum("...le,...se->...ls", q * root, k * root)
        if bias is not None:
            scores = scores + jnp.broadcast_to(bias, scores.shape)
        if is_causal:
            keep = jnp.tril(jnp.ones((L, S), jnp.bool_)).reshape((1,) * len(lead) + (L, S))
        if keep is not None:
            scores = jnp.where(keep, scores, jnp.asarray(-jnp.inf, scores.dtype))
        if dead is not None:
            scores = jnp.where(dead, jnp.zeros((), scores.dtype), scores)
        weights = jax.nn.softmax(scores, axis=-1)
        if dead is not None:
            weights = jnp.where(dead, jnp.zeros((), weights.dtype), weights)
        if dropout_p > 0.0:
            weights = _dropout(weights, dropout_p, rngs, "scaled_dot_product_attention")
        out = jnp.einsum("...ls,...sv->...lv", weights, v)
    return out


def _dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    keep: jax.Array | None,
    bias: jax.Array | None,
    is_causal: bool,
    scale: float,
    grouped: bool,
) -> jax.Array:
    """``jax.nn.dot_product_attention`` on torch's ``(..., H, L, E)`` layout.

    Its layout is ``(B, L, H, E)``; the leading axes fold into ``B`` and the last into ``H``.
    Masks keep a size-1 batch or head axis where they have one.
    """
    lead = q.shape[:-2]
    L, E = q.shape[-2:]
    S = k.shape[-2]
    heads_q = lead[-1] if lead else 1
    heads_k = k.shape[-3] if grouped else heads_q
    batch = math.prod(lead[:-1]) if lead else 1

    def to_blhe(a: jax.Array, heads: int) -> jax.Array:
        return a.reshape(batch, heads, a.shape[-2], a.shape[-1]).transpose(0, 2, 1, 3)

    def to_bhls(m: jax.Array | None) -> jax.Array | None:
        if m is None:
            return None
        m = jnp.broadcast_to(m, (*m.shape[:-2], L, S))
        m_heads = m.shape[-3] if lead else 1
        if m_heads not in (1, heads_q):
            m = jnp.broadcast_to(m, (*m.shape[:-3], heads_q, L, S))
            m_heads = heads_q
        if all(n == 1 for n in m.shape[:-3]):
            return m.reshape(1, m_heads, L, S)
        m = jnp.broadcast_to(m, (*lead[:-1], m_heads, L, S))
        return m.reshape(batch, m_heads, L, S)

    out = jax.nn.dot_product_attention(
        to_blhe(q, heads_q),
        to_blhe(k, heads_k),
        to_blhe(v, heads_k),
        bias=to_bhls(bias),
        mask=to_bhls(keep),
        scale=scale,
        is_causal=is_causal,
    )
    return out.transpose(0, 2, 1, 3).reshape(*lead, L, v.shape[-1])


def _canonical_mask(mask: ArrayLike | None, name: str, dtype: jnp.dtype) -> jax.Array | None:
    """torch's ``_canonical_mask``: a bool mask (True = masked out) as ``-inf``/``0`` floats."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.dtype == jnp.bool_:
        return jnp.where(mask, jnp.asarray(-jnp.inf, dtype), jnp.zeros((), dtype))
    if not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}")
    if mask.dtype != dtype:
        raise TypeError(f"{name} must be bool or of the query's dtype {dtype}, got {mask.dtype}")
    return mask


def _shape_check(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    key_padding_mask: jax.Array | None,
    attn_mask: jax.Array | None,
    num_heads: int,
) -> bool:
    """torch's ``_mha_shape_check``: whether the input is batched, or a ValueError."""
    if query.ndim not in (2, 3):
        raise ValueError(
            f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
            "query tensor"
        )
    batched = query.ndim == 3
    kind = "batched (3-D)" if batched else "unbatched (2-D)"
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(
            f"For {kind} `query`, expected `key` and `value` to be {query.ndim}-D but found "
            f"{key.ndim}-D and {value.ndim}-D tensors respectively"
        )
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise ValueError(
            f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
            f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor instead"
        )
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise ValueError(
                f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                f"{attn_mask.ndim}-D tensor instead"
            )
        if not batched and attn_mask.ndim == 3:
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.shape != expected:
                raise ValueError(
                    f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape}"
                )
    return batched


def _multi_head_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    *,
    num_heads: int,
    kernels: tuple[jax.Array, jax.Array, jax.Array],
    biases: tuple[jax.Array, jax.Array, jax.Array] | None,
    bias_k: jax.Array | None,
    bias_v: jax.Array | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_kernel: jax.Array,
    out_bias: jax.Array | None,
    training: bool = True,
    key_padding_mask: ArrayLike | None = None,
    need_weights: bool = True,
    attn_mask: ArrayLike | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
    static_k: ArrayLike | None = None,
    static_v: ArrayLike | None = None,
    rngs: RngSource = None,
) -> tuple[jax.Array, jax.Array | None]:
    """torch's ``multi_head_attention_forward`` with JAX-layout weights (what the layer holds).

    ``kernels`` are the query, key and value projections ``(E_in, E)`` (``x @ kernel``),
    ``biases`` their ``(E,)`` biases, ``out_kernel`` ``(E, E)``; ``bias_k``/``bias_v`` hold
    ``E`` values (any shape). Inputs are sequence-first ``(L, N, E)`` or unbatched ``(L, E)``.
    """
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    kpm = None if key_padding_mask is None else jnp.asarray(key_padding_mask)
    mask = None if attn_mask is None else jnp.asarray(attn_mask)
    batched = _shape_check(query, key, value, kpm, mask, num_heads)
    if not batched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        kpm = None if kpm is None else kpm[None]
    tgt_len, bsz, embed_dim = query.shape
    dtype = query.dtype
    if key.shape[1] != bsz or value.shape[1] != bsz or key.shape[0] != value.shape[0]:
        raise ValueError(
            "key and value must share the query's batch size and each other's length, got "
            f"query {query.shape}, key {key.shape}, value {value.shape}"
        )
    q_kernel, k_kernel, v_kernel = kernels
    for name, x, w in (
        ("query", query, q_kernel),
        ("key", key, k_kernel),
        ("value", value, v_kernel),
    ):
        if x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"multi_head_attention: {name} has {x.shape[-1]} features, its projection "
                f"expects {w.shape[0]}"
            )
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")

    kpm = _canonical_mask(kpm, "key_padding_mask", dtype)
    if is_causal and mask is None:
        raise ValueError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
            "module method `generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and kpm is None and not need_weights:
        # torch then trusts the hint: the causal mask replaces attn_mask.
        mask = None
    else:
        mask = _canonical_mask(mask, "attn_mask", dtype)
        if kpm is not None:
            is_causal = False

    def project(x: jax.Array, kernel: jax.Array, index: int) -> jax.Array:
        y = x @ kernel
        if biases is None:
            return y
        return y + jnp.broadcast_to(biases[index], y.shape)

    q = project(query, q_kernel, 0)
    k = project(key, k_kernel, 1)
    v = project(value, v_kernel, 2)
    src_len = k.shape[0]

    if mask is not None:
        if mask.ndim == 2:
            if mask.shape != (tgt_len, src_len):
                raise ValueError(
                    f"The shape of the 2D attn_mask is {mask.shape}, but should be "
                    f"{(tgt_len, src_len)}."
                )
            mask = mask.reshape(1, 1, tgt_len, src_len)
        else:
            expected = (bsz * num_heads, tgt_len, src_len)
            if mask.shape != expected:
                raise ValueError(
                    f"The shape of the 3D attn_mask is {mask.shape}, but should be {expected}."
                )
            mask = mask.reshape(bsz, num_heads, tgt_len, src_len)

    def pad_key_axis(m: jax.Array | None) -> jax.Array | None:
        return None if m is None else jnp.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, 1)])

    if (bias_k is None) != (bias_v is None):
        raise ValueError("bias_k and bias_v must be given together")
    if bias_k is not None:
        if static_k is not None or static_v is not None:
            raise ValueError("bias cannot be added to static key or value")
        k = jnp.concatenate([k, jnp.broadcast_to(bias_k.reshape(1, 1, -1), (1, bsz, embed_dim))])
        v = jnp.concatenate([v, jnp.broadcast_to(bias_v.reshape(1, 1, -1), (1, bsz, embed_dim))])
        mask, kpm = pad_key_axis(mask), pad_key_axis(kpm)

    def heads(x: jax.Array) -> jax.Array:  # (T, N, E) -> (N, H, T, head_dim), torch's order
        return x.reshape(x.shape[0], bsz, num_heads, head_dim).transpose(1, 2, 0, 3)

    def static(x: ArrayLike, name: str) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim != 3 or x.shape[0] != bsz * num_heads or x.shape[2] != head_dim:
            raise ValueError(
                f"{name} must be (N*num_heads, S, head_dim) = ({bsz * num_heads}, S, {head_dim}), "
                f"got {x.shape}"
            )
        return x.reshape(bsz, num_heads, x.shape[1], head_dim)

    q = heads(q)
    k = heads(k) if static_k is None else static(static_k, "static_k")
    v = heads(v) if static_v is None else static(static_v, "static_v")
    if add_zero_attn:
        zeros = jnp.zeros((bsz, num_heads, 1, head_dim), k.dtype)
        k = jnp.concatenate([k, zeros], axis=2)
        v = jnp.concatenate([v, zeros], axis=2)
        mask, kpm = pad_key_axis(mask), pad_key_axis(kpm)
    src_len = k.shape[2]
    if kpm is not None:
        if kpm.shape != (bsz, src_len):
            raise ValueError(
                f"key_padding_mask must be (N, S) = {(bsz, src_len)} (after bias_k and "
                f"add_zero_attn), got {kpm.shape}"
            )
        kpm = kpm.reshape(bsz, 1, 1, src_len)
        if mask is None:
            mask = jnp.broadcast_to(kpm, (bsz, num_heads, 1, src_len))
        else:
            shape = (bsz, num_heads, tgt_len, src_len)
            mask = jnp.broadcast_to(mask, shape) + jnp.broadcast_to(kpm, shape)

    dropout_p = _check_dropout(dropout_p) if training else 0.0
    if need_weights:
        # torch's explicit path: a plain softmax (a fully masked row is NaN, as there).
        q_scaled = q * jnp.asarray(math.sqrt(1.0 / float(head_dim)), dtype)
        weights = q_scaled @ k.swapaxes(-1, -2)
        if mask is not None:
            weights = jnp.broadcast_to(mask, weights.shape) + weights
        weights = jax.nn.softmax(weights, axis=-1)
        if dropout_p > 0.0:
            weights = _dropout(weights, dropout_p, rngs, "multi_head_attention")
        out = weights @ v
    else:
        weights = None
        out = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal, rngs=rngs)
    out = out.transpose(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim) @ out_kernel
    if out_bias is not None:
        out = out + jnp.broadcast_to(out_bias, out.shape)
    if weights is not None and average_attn_weights:
        weights = jnp.mean(weights, axis=1)
    if not batched:
        out = out[:, 0]
        weights = None if weights is None else weights[0]
    return out, weights


def multi_head_attention_forward(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: ArrayLike | None,
    in_proj_bias: ArrayLike | None,
    bias_k: ArrayLike | None,
    bias_v: ArrayLike | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: ArrayLike,
    out_proj_bias: ArrayLike | None,
    training: bool = True,
    key_padding_mask: ArrayLike | None = None,
    need_weights: bool = True,
    attn_mask: ArrayLike | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: ArrayLike | None = None,
    k_proj_weight: ArrayLike | None = None,
    v_proj_weight: ArrayLike | None = None,
    static_k: ArrayLike | None = None,
    static_v: ArrayLike | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
    *,
    rngs: RngSource = None,
) -> tuple[jax.Array, jax.Array | None]:
    """``torch.nn.functional.multi_head_attention_forward``, weights in torch's layout.

    Inputs are sequence-first ``(L, N, E)``, ``(S, N, E_k)``, ``(S, N, E_v)`` or unbatched
    ``(L, E)``...; ``in_proj_weight`` is ``(3E, E)`` (or ``q/k/v_proj_weight`` ``(E, E_in)`` with
    ``use_separate_proj_weight``), ``out_proj_weight`` ``(E, E)``, as torch's ``F.linear`` takes
    them. Masks (bool True = masked out, or float added): ``key_padding_mask`` ``(N, S)``
    (``(S,)`` unbatched), ``attn_mask`` ``(L, S)`` or ``(N*num_heads, L, S)``. ``is_causal`` is
    torch's hint: it needs ``attn_mask`` and, with ``need_weights=False`` and no
    ``key_padding_mask``, replaces it by the causal mask. Returns ``(attn_output (L, N, E),
    attn_weights)``: weights ``(N, L, S)`` averaged over heads (``(N, num_heads, L, S)`` with
    ``average_attn_weights=False``) after dropout, or ``None`` with ``need_weights=False`` (the
    work then goes through :func:`scaled_dot_product_attention`). Dropout applies when
    ``training`` and ``dropout_p > 0``, drawn from ``rngs``.

    >>> x = jnp.ones((3, 2, 4), jnp.float32)
    >>> out, w = multi_head_attention_forward(
    ...     x, x, x, 4, 2, jnp.eye(12, 4, dtype=jnp.float32), None, None, None, False, 0.0,
    ...     jnp.eye(4, dtype=jnp.float32), None)
    >>> out.shape, w.shape
    ((3, 2, 4), (2, 3, 3))
    """
    q0 = jnp.asarray(query)
    if q0.ndim in (2, 3) and q0.shape[-1] != embed_dim_to_check:
        raise ValueError(
            f"was expecting embedding dimension of {embed_dim_to_check}, but got {q0.shape[-1]}"
        )
    embed_dim = embed_dim_to_check
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(
                "use_separate_proj_weight=True needs q_proj_weight, k_proj_weight and v_proj_weight"
            )
        kernels = tuple(jnp.asarray(w).T for w in (q_proj_weight, k_proj_weight, v_proj_weight))
    else:
        if in_proj_weight is None:
            raise ValueError("use_separate_proj_weight is False but in_proj_weight is None")
        w = jnp.asarray(in_proj_weight)
        if w.shape != (3 * embed_dim, embed_dim):
            raise ValueError(
                f"in_proj_weight must be (3E, E) = {(3 * embed_dim, embed_dim)}, got {w.shape}"
            )
        kernels = tuple(w[i * embed_dim : (i + 1) * embed_dim].T for i in range(3))
    for name, kernel in zip(("q", "k", "v"), kernels, strict=True):
        if kernel.shape[1] != embed_dim:
            raise ValueError(
                f"{name} projection weight must have {embed_dim} rows, got {kernel.T.shape}"
            )
    biases = None
    if in_proj_bias is not None:
        b = jnp.asarray(in_proj_bias)
        if b.shape != (3 * embed_dim,):
            raise ValueError(f"in_proj_bias must be ({3 * embed_dim},), got {b.shape}")
        biases = tuple(b[i * embed_dim : (i + 1) * embed_dim] for i in range(3))
    return _multi_head_attention(
        query,
        key,
        value,
        num_heads=num_heads,
        kernels=kernels,
        biases=biases,
        bias_k=None if bias_k is None else jnp.asarray(bias_k),
        bias_v=None if bias_v is None else jnp.asarray(bias_v),
        add_zero_attn=add_zero_attn,
        dropout_p=dropout_p,
        out_kernel=jnp.asarray(out_proj_weight).T,
        out_bias=None if out_proj_bias is None else jnp.asarray(out_proj_bias),
        training=training,
        key_padding_mask=key_padding_mask,
        need_weights=need_weights,
        attn_mask=attn_mask,
        average_attn_weights=average_attn_weights,
        is_causal=is_causal,
        static_k=static_k,
        static_v=static_v,
        rngs=rngs,
    )
