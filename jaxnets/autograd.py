"""Custom backward passes as ``jax.custom_vjp``: what ``torch.autograd.Function`` is for.

Seed 004 names two reasons to write a backward by hand: the function is not differentiable (its
derivative is zero almost everywhere, or undefined), or a constraint should act on the gradient
chain. The textbook cases of each are here:

* ``round_ste`` / ``sign_ste``: straight-through estimators. The forward quantises; the backward
  passes the cotangent through unchanged (``round``) or inside ``|x| <= 1`` (``sign``, the
  hard-tanh estimator), instead of the true derivative 0.
* ``clip_gradient``: the identity forward, with the cotangent clamped to ``[-bound, bound]``
  on its way back: a constraint on the gradient chain.
* ``gradient_penalty``: the identity forward; the backward adds ``weight * x``, the gradient of
  ``weight/2 * ||x||^2``, as if an L2 penalty term were in the loss.

A ``torch.autograd.Function`` returns one gradient per input of ``forward``; a ``custom_vjp``
returns one cotangent per differentiable argument, and hyper-parameters are
``nondiff_argnums``, so they get none.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["round_ste", "sign_ste", "clip_gradient", "gradient_penalty"]


@jax.custom_vjp
def round_ste(x: ArrayLike) -> jax.Array:
    """``round(x)`` (half to even, as ``torch.round``) with the straight-through gradient 1.

    >>> float(jax.grad(lambda v: round_ste(v) * 3.0)(jnp.float32(0.3)))
    3.0
    """
    return jnp.round(x)


def _round_fwd(x):
    return jnp.round(x), None


def _round_bwd(_, cotangent):
    return (cotangent,)


round_ste.defvjp(_round_fwd, _round_bwd)


@jax.custom_vjp
def sign_ste(x: ArrayLike) -> jax.Array:
    """``sign(x)`` with the hard-tanh straight-through gradient: 1 where ``|x| <= 1``, else 0.

    >>> jax.grad(lambda v: sign_ste(v).sum())(jnp.array([-2.0, 0.5, 1.0], jnp.float32)).tolist()
    [0.0, 1.0, 1.0]
    """
    return jnp.sign(x)


def _sign_fwd(x):
    return jnp.sign(x), x


def _sign_bwd(x, cotangent):
    return (jnp.where(jnp.abs(x) <= 1, cotangent, jnp.zeros_like(cotangent)),)


sign_ste.defvjp(_sign_fwd, _sign_bwd)


def clip_gradient(x: ArrayLike, bound: float) -> jax.Array:
    """Identity on the way forward; the cotangent is clamped to ``[-bound, bound]`` going back.

    >>> jax.grad(lambda v: (clip_gradient(v, 0.5) * 3.0).sum())(jnp.ones(2, jnp.float32)).tolist()
    [0.5, 0.5]
    """
    if not bound > 0:
        raise ValueError(f"bound must be > 0, got {bound!r}")
    return _clip_gradient(jnp.asarray(x), float(bound))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _clip_gradient(x: jax.Array, bound: float) -> jax.Array:
    return x


def _clip_fwd(x, bound):
    return x, None


def _clip_bwd(bound, _, cotangent):
    return (jnp.clip(cotangent, -bound, bound),)


_clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def gradient_penalty(x: ArrayLike, weight: float) -> jax.Array:
    """Identity forward; the backward adds ``weight * x`` (an L2 penalty's gradient).

    >>> jax.grad(lambda v: gradient_penalty(v, 0.1).sum())(jnp.array([2.0], jnp.float32)).tolist()
    [1.2000000476837158]
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    return _gradient_penalty(jnp.asarray(x), float(weight))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _gradient_penalty(x: jax.Array, weight: float) -> jax.Array:
    return x


def _penalty_fwd(x, weight):
    return x, x


def _penalty_bwd(weight, x, cotangent):
    return (cotangent + weight * x,)


_gradient_penalty.defvjp(_penalty_fwd, _penalty_bwd)
