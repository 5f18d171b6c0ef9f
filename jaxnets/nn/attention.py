"""``MultiheadAttention``: torch's layer over
:func:`jaxnets.nn.functional.attention.multi_head_attention_forward`."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive, probability
from jaxnets.nn.functional.attention import RngSource, _multi_head_attention
from jaxnets.nn.init import torch_uniform
from jaxnets.nn.linear import Linear
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["MultiheadAttention"]


def _xavier_uniform(fan_in: int, fan_out: int) -> nnx.Initializer:
    """torch's ``init.xavier_uniform_``: ``U(±sqrt(6 / (fan_in + fan_out)))``."""
    return torch_uniform(math.sqrt(6.0 / (fan_in + fan_out)))


def _reshaped(attr: str) -> TorchEntry:
    """torch's ``(1, 1, E)`` ``bias_k``/``bias_v``, held as ``(E,)``."""
    return TorchEntry(attr, lambda a: a.reshape(-1), lambda a: a.reshape(1, 1, -1))


class MultiheadAttention(nnx.Module):
    """``torch.nn.MultiheadAttention`` with ``(in, out)`` projection kernels.

    Arguments and defaults as torch. With ``kdim == vdim == embed_dim`` (the default) the three
    input projections are one kernel ``in_proj_kernel`` ``(E, 3E)`` (torch's ``in_proj_weight``
    ``(3E, E)`` transposed; query, key, value in that order); otherwise ``q_proj_kernel``
    ``(E, E)``, ``k_proj_kernel`` ``(kdim, E)``, ``v_proj_kernel`` ``(vdim, E)``.
    ``in_proj_bias`` ``(3E,)``, ``bias_k``/``bias_v`` ``(E,)`` (torch's ``(1, 1, E)``) and
    ``out_proj`` (a :class:`~jaxnets.nn.linear.Linear`) complete torch's ``state_dict``, in its
    order. Initialised as torch: ``xavier_uniform_`` projections, zero biases, ``xavier_normal_``
    ``bias_k``/``bias_v``, ``out_proj`` weight as ``Linear``'s.

    ``__call__`` is torch's ``forward``: ``query (L, N, E)`` (``(N, L, E)`` with
    ``batch_first``, ``(L, E)`` unbatched), ``key``/``value`` likewise with ``S``; bool masks
    True = masked out, float masks added; ``key_padding_mask`` ``(N, S)``, ``attn_mask``
    ``(L, S)`` or ``(N*num_heads, L, S)``. It returns ``(attn_output, attn_weights)`` as torch:
    the weights averaged over heads ``(N, L, S)`` (per head ``(N, num_heads, L, S)`` with
    ``average_attn_weights=False``), ``None`` with ``need_weights=False``. In training mode
    (``deterministic=False``, what ``model.train()`` sets; the default) the attention weights
    take dropout drawn from the ``dropout`` stream of ``rngs``; ``model.eval()`` turns it off.

    >>> mha = MultiheadAttention(4, 2, rngs=nnx.Rngs(0))
    >>> x = jnp.ones((3, 2, 4), jnp.float32)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 2, 4), (2, 3, 3))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.embed_dim = positive("embed_dim", embed_dim)
        self.kdim = embed_dim if kdim is None else positive("kdim", kdim)
        self.vdim = embed_dim if vdim is None else positive("vdim", vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = positive("num_heads", num_heads)
        self.dropout = probability("dropout", dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError(
                f"embed_dim must be divisible by num_heads, got {embed_dim} and {num_heads}"
            )
        self.add_zero_attn = add_zero_attn
        # Training mode, as torch modules start; model.eval() sets it.
        self.deterministic = False
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_kernel = nnx.Param(
                _xavier_uniform(E, 3 * E)(rngs.params(), (E, 3 * E), dtype)
            )
        else:
            self.q_proj_kernel = nnx.Param(_xavier_uniform(E, E)(rngs.params(), (E, E), dtype))
            self.k_proj_kernel = nnx.Param(
                _xavier_uniform(self.kdim, E)(rngs.params(), (self.kdim, E), dtype)
            )
            self.v_proj_kernel = nnx.Param(
                _xavier_uniform(self.vdim, E)(rngs.params(), (self.vdim, E), dtype)
            )
        self.in_proj_bias = nnx.Param(jnp.zeros((3 * E,), dtype)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, rngs=rngs)
        if bias:
            self.out_proj.bias[...] = jnp.zeros((E,), dtype)
        if add_bias_kv:
            # xavier_normal_ of a (1, 1, E) tensor: fan_in = fan_out = E.
            std = math.sqrt(1.0 / E)
            self.bias_k = nnx.Param(std * jax.random.normal(rngs.params(), (E,), dtype))
            self.bias_v = nnx.Param(std * jax.random.normal(rngs.params(), (E,), dtype))
        else:
            self.bias_k = self.bias_v = None
        self.rngs = rngs.dropout.fork()

    def torch_state(self) -> dict[str, TorchEntry]:
        """torch's keys: the projections' weights (transposed), ``in_proj_bias``, ``bias_k``,
        ``bias_v`` (reshaped to ``(1, 1, E)``); ``out_proj`` is a child."""
        if self._qkv_same_embed_dim:
            entries = {"in_proj_weight": transposed("in_proj_kernel", (1, 0))}
        else:
            entries = {
                f"{name}_proj_weight": transposed(f"{name}_proj_kernel", (1, 0))
                for name in ("q", "k", "v")
            }
        if self.in_proj_bias is not None:
            entries["in_proj_bias"] = same("in_proj_bias")
        if self.bias_k is not None:
            entries["bias_k"] = _reshaped("bias_k")
            entries["bias_v"] = _reshaped("bias_v")
        return entries

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support."""
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(
        self,
        query: ArrayLike,
        key: ArrayLike,
        value: ArrayLike,
        key_padding_mask: ArrayLike | None = None,
        need_weights: bool = True,
        attn_mask: ArrayLike | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        *,
        rngs: RngSource = None,
    ) -> tuple[jax.Array, jax.Array | None]:
        """torch's ``forward``; ``rngs`` (a ``Rngs``, a stream or a key) overrides the layer's
        own dropout stream."""
        query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
        transpose = self.batch_first and query.ndim == 3
        if transpose:
            query, key, value = (x.swapaxes(0, 1) for x in (query, key, value))
        E = self.embed_dim
        if query.shape[-1:] != (E,):
            raise ValueError(
                f"MultiheadAttention expected query with embed_dim={E} features, got shape "
                f"{query.shape}"
            )
        if self._qkv_same_embed_dim:
            kernel = self.in_proj_kernel[...]
            kernels = (kernel[:, :E], kernel[:, E : 2 * E], kernel[:, 2 * E :])
        else:
            kernels = (self.q_proj_kernel[...], self.k_proj_kernel[...], self.v_proj_kernel[...])
        biases = None
        if self.in_proj_bias is not None:
            b = self.in_proj_bias[...]
            biases = (b[:E], b[E : 2 * E], b[2 * E :])
        out, weights = _multi_head_attention(
            query,
            key,
            value,
            num_heads=self.num_heads,
            kernels=kernels,
            biases=biases,
            bias_k=None if self.bias_k is None else self.bias_k[...],
            bias_v=None if self.bias_v is None else self.bias_v[...],
            add_zero_attn=self.add_zero_attn,
            dropout_p=self.dropout,
            out_kernel=self.out_proj.kernel[...],
            out_bias=None if self.out_proj.bias is None else self.out_proj.bias[...],
            training=not self.deterministic,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
            rngs=self.rngs if rngs is None else rngs,
        )
        if transpose:
            out = out.swapaxes(0, 1)
        return out, weights
