"""torch's transformer: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``,
``TransformerEncoder``, ``TransformerDecoder`` and ``Transformer``.

Submodules carry torch's names (``self_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``,
..., ``encoder.layers.0``, ``encoder.norm``), so :func:`~jaxnets.nn.state.state_dict` gives
torch's keys and :func:`~jaxnets.nn.state.named_modules` torch's module paths. Inputs are in
torch's layout: sequence-first ``(S, N, E)``, batch-first ``(N, S, E)`` with ``batch_first``, or
unbatched ``(S, E)``. Masks as :class:`~jaxnets.nn.attention.MultiheadAttention` takes them
(bool True = masked out, float added).

The values are those of torch's regular (autograd) path. torch's inference fast paths (no
autograd, eval mode, ``batch_first``), which change kernels but not the formula, are not
separate here; one of them does change values: with ``src_key_padding_mask`` torch's encoder then
runs on nested tensors and returns zeros at padded positions, while here (as torch with autograd)
those positions hold the computed values. ``enable_nested_tensor`` and ``mask_check`` are
accepted for that reason and change nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.attention import MultiheadAttention
from jaxnets.nn.dropout import Dropout
from jaxnets.nn.functional import activation as F_act
from jaxnets.nn.linear import Linear
from jaxnets.nn.norm import LayerNorm
from jaxnets.nn.state import _tensors, _torch_shape

__all__ = [
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
]

Activation = str | Callable[[jax.Array], jax.Array]


def _gelu(x: jax.Array) -> jax.Array:
    """torch's exact (erf) GELU, ``F.gelu``'s default."""
    return jax.nn.gelu(x, approximate=False)


def _activation(activation: Activation) -> Callable[[jax.Array], jax.Array]:
    if isinstance(activation, str):
        if activation == "relu":
            return F_act.relu
        if activation == "gelu":
            return _gelu
        raise ValueError(f"activation should be relu/gelu, not {activation}")
    if not callable(activation):
        raise TypeError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


def _definition_order(copy: Any, original: Any) -> None:
    """Give ``copy`` (a clone of ``original``) the original's attribute order, recursively.

    ``nnx.clone`` rebuilds attributes in sorted order, while torch's names and ``state_dict``
    order follow definition order (:mod:`jaxnets.nn.state` walks attributes in order).
    """
    if isinstance(original, nnx.List):
        for a, b in zip(copy, original, strict=True):
            _definition_order(a, b)
        return
    if not isinstance(original, nnx.Module):
        return
    attributes, order = vars(copy), {name: i for i, name in enumerate(vars(original))}
    items = sorted(attributes.items(), key=lambda item: order.get(item[0], len(order)))
    attributes.clear()
    attributes.update(items)
    for name, value in vars(original).items():
        other = attributes.get(name)
        if isinstance(value, nnx.Module):
            _definition_order(other, value)
        elif isinstance(value, list | tuple):
            for a, b in zip(other, value, strict=True):
                _definition_order(a, b)
        elif isinstance(value, dict):
            for key, b in value.items():
                _definition_order(other[key], b)


def _clones(module: nnx.Module, n: int) -> list[nnx.Module]:
    """``n`` independent deep copies of ``module`` (torch's ``_get_clones``).

    The copies start with the module's parameters, as torch's ``deepcopy``; their dropout streams
    are folded with the copy's index so that the layers draw different masks (torch draws all from
    one global generator).
    """
    copies = []
    for index in range(positive("num_layers", n)):
        copy = nnx.clone(module)
        _definition_order(copy, module)
        keys = nnx.state(copy, nnx.RngKey)
        nnx.update(copy, jax.tree.map(lambda key, i=index: jax.random.fold_in(key, i), keys))
        copies.append(copy)
    return copies


def _batch_axis(x: jax.Array, batch_first: bool) -> int | None:
    return None if x.ndim == 2 else (0 if batch_first else 1)


def _causal_hint(
    mask: ArrayLike | None,
    is_causal: bool | None,
    x: jax.Array,
    batch_first: bool,
    key_padding_mask: ArrayLike | None,
) -> tuple[Any, bool]:
    """torch's ``_detect_is_causal_mask`` for the stacks' ``is_causal=None``.

    torch compares a square ``mask`` with the causal mask and, when equal, passes the hint on;
    its attention then drops the mask (unless a key padding mask is given) for the same values.
    Here the mask stays (a data-dependent branch cannot pick a kernel under ``jit``), and the
    only thing the hint changes, the mask's gradient, is reproduced: none when it is causal.
    """
    if is_causal is not None or mask is None:
        return mask, bool(is_causal)
    mask = jnp.asarray(mask)
    size = x.shape[0] if x.ndim == 2 else x.shape[1 if batch_first else 0]
    if key_padding_mask is not None or mask.dtype == jnp.bool_ or mask.shape != (size, size):
        return mask, False
    upper = jnp.triu(jnp.ones((size, size), jnp.bool_), k=1)
    causal = jnp.all(jnp.where(upper, mask == -jnp.inf, mask == 0))
    return jnp.where(causal, jax.lax.stop_gradient(mask), mask), False


class TransformerEncoderLayer(nnx.Module):
    """``torch.nn.TransformerEncoderLayer``: self-attention then a feed-forward block.

    ``norm_first=False`` (torch's default): ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``;
    ``norm_first=True``: ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``, with
    ``ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))`` and ``sa`` ``self_attn``
    (without weights) then ``dropout1``. ``activation`` is ``"relu"``, ``"gelu"`` (exact, erf)
    or a callable (an NNX module there becomes the child ``activation``, as in torch). Arguments,
    defaults and submodule names as torch; ``bias=False`` drops every linear and norm bias.

    >>> layer = TransformerEncoderLayer(8, 2, 16, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((5, 3, 8), jnp.float32)).shape
    (5, 3, 8)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = F_act.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.self_attn = MultiheadAttention(
            d_model,
            nhead,
            dropout=dropout,
            bias=bias,
            batch_first=batch_first,
            dtype=dtype,
            rngs=rngs,
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rngs=rngs)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rngs=rngs)
        self.dropout2 = Dropout(dropout, rngs=rngs)
        self.activation = _activation(activation)

    def __call__(
        self,
        src: ArrayLike,
        src_mask: ArrayLike | None = None,
        src_key_padding_mask: ArrayLike | None = None,
        is_causal: bool = False,
    ) -> jax.Array:
        """``src`` ``(S, N, E)`` (``(N, S, E)`` with ``batch_first``, ``(S, E)`` unbatched);
        ``src_mask`` ``(S, S)`` or ``(N*nhead, S, S)``, ``src_key_padding_mask`` ``(N, S)``
        (``(S,)``); ``is_causal`` is torch's hint that ``src_mask`` is the causal mask."""
        x = jnp.asarray(src)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: jax.Array, mask: Any, key_padding_mask: Any, is_causal: bool
    ) -> jax.Array:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x: jax.Array) -> jax.Array:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(nnx.Module):
    """``torch.nn.TransformerDecoderLayer``: self-attention, attention over ``memory``
    (``multihead_attn``), then a feed-forward block.

    ``norm_first=False``: ``x = norm1(x + sa(x)); x = norm2(x + mha(x, memory));
    x = norm3(x + ff(x))``; ``norm_first=True`` normalises each block's input instead and adds
    its output. Dropouts ``dropout1``/``dropout2``/``dropout3`` follow the three blocks and
    ``dropout`` sits inside ``ff``, as :class:`TransformerEncoderLayer`'s. Arguments, defaults and
    submodule names as torch.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = F_act.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        def attention() -> MultiheadAttention:
            return MultiheadAttention(
                d_model,
                nhead,
                dropout=dropout,
                batch_first=batch_first,
                bias=bias,
                dtype=dtype,
                rngs=rngs,
            )

        self.self_attn = attention()
        self.multihead_attn = attention()
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rngs=rngs)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rngs=rngs)
        self.dropout2 = Dropout(dropout, rngs=rngs)
        self.dropout3 = Dropout(dropout, rngs=rngs)
        self.activation = _activation(activation)

    def __call__(
        self,
        tgt: ArrayLike,
        memory: ArrayLike,
        tgt_mask: ArrayLike | None = None,
        memory_mask: ArrayLike | None = None,
        tgt_key_padding_mask: ArrayLike | None = None,
        memory_key_padding_mask: ArrayLike | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        """``tgt`` ``(T, N, E)``, ``memory`` ``(S, N, E)`` (batch-first or unbatched alike);
        ``tgt_mask`` ``(T, T)``, ``memory_mask`` ``(T, S)`` (or per head), key padding masks
        ``(N, T)`` and ``(N, S)``; the ``*_is_causal`` flags are torch's hints."""
        x = jnp.asarray(tgt)
        memory = jnp.asarray(memory)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(
                x
                + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            )
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(
        self, x: jax.Array, mask: Any, key_padding_mask: Any, is_causal: bool
    ) -> jax.Array:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout1(x)

    def _mha_block(
        self, x: jax.Array, memory: jax.Array, mask: Any, key_padding_mask: Any, is_causal: bool
    ) -> jax.Array:
        x = self.multihead_attn(
            x,
            memory,
            memory,
            attn_mask=mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)

    def _ff_block(self, x: jax.Array) -> jax.Array:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


class TransformerEncoder(nnx.Module):
    """``torch.nn.TransformerEncoder``: ``num_layers`` copies of ``encoder_layer`` then ``norm``.

    The layers are independent deep copies (they start equal, as torch's), held in the
    ``nnx.List`` ``layers`` (torch's ``ModuleList``: paths ``layers``, ``layers.0``, ...).
    ``is_causal=None`` (torch's default) detects a causal ``mask`` as torch does, with torch's
    values and gradients (:func:`_causal_hint`). ``enable_nested_tensor`` and ``mask_check`` concern
    torch's nested-tensor inference path and are accepted without effect (module docstring).
    """

    def __init__(
        self,
        encoder_layer: nnx.Module,
        num_layers: int,
        norm: nnx.Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        self.layers = nnx.List(_clones(encoder_layer, num_layers))
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def __call__(
        self,
        src: ArrayLike,
        mask: ArrayLike | None = None,
        src_key_padding_mask: ArrayLike | None = None,
        is_causal: bool | None = None,
    ) -> jax.Array:
        """Each layer's ``forward(output, src_mask=mask, src_key_padding_mask=..., is_causal=...)``
        in turn, then ``norm``."""
        output = jnp.asarray(src)
        batch_first = getattr(getattr(self.layers[0], "self_attn", None), "batch_first", False)
        mask, is_causal = _causal_hint(mask, is_causal, output, batch_first, src_key_padding_mask)
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                src_key_padding_mask=src_key_padding_mask,
                is_causal=is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(nnx.Module):
    """``torch.nn.TransformerDecoder``: ``num_layers`` copies of ``decoder_layer`` then ``norm``.

    Layers as :class:`TransformerEncoder`'s; ``tgt_is_causal=None`` detects a causal ``tgt_mask``
    as torch does.
    """

    def __init__(self, decoder_layer: nnx.Module, num_layers: int, norm: nnx.Module | None = None):
        self.layers = nnx.List(_clones(decoder_layer, num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def __call__(
        self,
        tgt: ArrayLike,
        memory: ArrayLike,
        tgt_mask: ArrayLike | None = None,
        memory_mask: ArrayLike | None = None,
        tgt_key_padding_mask: ArrayLike | None = None,
        memory_key_padding_mask: ArrayLike | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        """Each layer's ``forward`` in turn on ``(output, memory)``, then ``norm``."""
        output = jnp.asarray(tgt)
        batch_first = getattr(getattr(self.layers[0], "self_attn", None), "batch_first", False)
        tgt_mask, tgt_is_causal = _causal_hint(
            tgt_mask, tgt_is_causal, output, batch_first, tgt_key_padding_mask
        )
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


def _xavier_uniform_all(module: nnx.Module, rngs: nnx.Rngs) -> None:
    """torch's ``Transformer._reset_parameters``: ``xavier_uniform_`` every parameter of more
    than one axis, fans taken from its torch layout (``(out, in, *kernel)``)."""
    for variable, entry in _tensors(module).values():
        if not isinstance(variable, nnx.Param):
            continue
        shape = _torch_shape(variable, entry)
        if len(shape) < 2:
            continue
        receptive = math.prod(shape[2:])
        bound = math.sqrt(6.0 / (shape[0] * receptive + shape[1] * receptive))
        draw = jax.random.uniform(rngs.params(), shape, variable.dtype, -bound, bound)
        variable[...] = entry.to_jax(draw)


class Transformer(nnx.Module):
    """``torch.nn.Transformer``: a :class:`TransformerEncoder` and a :class:`TransformerDecoder`.

    Each stack has ``num_*_layers`` copies of its layer and a final ``LayerNorm`` (unless
    ``custom_encoder``/``custom_decoder`` replaces it); then, as torch, every parameter of more
    than one axis (custom modules' included) is re-drawn with ``xavier_uniform_``. ``__call__`` is
    torch's ``forward(src, tgt, ...)``: ``memory = encoder(src, ...)``, ``decoder(tgt, memory,
    ...)``; shapes ``(S, N, E)``/``(T, N, E)`` (batch-first with ``batch_first``, or unbatched).
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = F_act.relu,
        custom_encoder: nnx.Module | None = None,
        custom_decoder: nnx.Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        options = (dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, *options, bias, dtype=dtype, rngs=rngs)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, *options, bias, dtype=dtype, rngs=rngs)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
            self.decoder = TransformerDecoder(layer, num_decoder_layers, norm)
        _xavier_uniform_all(self, rngs)
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def __call__(
        self,
        src: ArrayLike,
        tgt: ArrayLike,
        src_mask: ArrayLike | None = None,
        tgt_mask: ArrayLike | None = None,
        memory_mask: ArrayLike | None = None,
        src_key_padding_mask: ArrayLike | None = None,
        tgt_key_padding_mask: ArrayLike | None = None,
        memory_key_padding_mask: ArrayLike | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        """torch's ``forward``: the decoder's output for ``tgt`` attending to encoded ``src``."""
        src, tgt = jnp.asarray(src), jnp.asarray(tgt)
        if src.ndim == 3 and tgt.ndim == 3:
            axis = _batch_axis(src, self.batch_first)
            if src.shape[axis] != tgt.shape[axis]:
                raise ValueError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
        """torch's causal mask ``(sz, sz)``: ``-inf`` above the diagonal, ``0`` elsewhere.

        >>> Transformer.generate_square_subsequent_mask(3).tolist()
        [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
        """
        upper = jnp.triu(jnp.ones((sz, sz), jnp.bool_), k=1)
        return jnp.where(upper, jnp.asarray(-jnp.inf, dtype), jnp.zeros((), dtype))
