"""Seed 004, tensor basics: torch's creation functions and tensor attributes, in JAX terms.

=============================  ==========================================================
torch                          JAX
=============================  ==========================================================
``torch.tensor(data)``         ``jnp.array(data)`` (copies)
``torch.from_numpy(a)``        ``jnp.asarray(a)``: copies to the device; no shared memory
``zeros/ones/full(shape)``     ``jnp.zeros/ones/full(shape)``
``arange(start, end, step)``   ``jnp.arange(start, end, step)``
``linspace(a, b, steps)``      ``jnp.linspace(a, b, steps)`` (both ends included)
``logspace(a, b, steps)``      ``jnp.logspace(a, b, steps, base=10.0)``
``eye(n, m)``                  ``jnp.eye(n, m)``
``normal(mean, std)``          ``mean + std * jax.random.normal(key, shape)``
``bernoulli(p)``               ``jax.random.bernoulli(key, p).astype(p.dtype)``
``t.data``                     ``t`` itself: arrays are immutable values
``t.dtype / shape / device``   ``x.dtype / x.shape / x.devices()``
``t.grad`` after backward      ``jax.grad(f)(x)``: a returned value, never stored on ``x``
``t.grad_fn``                  ``jax.make_jaxpr(f)(x)``: the traced program
``t.requires_grad``            which arguments you differentiate (``argnums``)
``t.is_leaf``                  the function's inputs are the leaves; everything else is
                               an intermediate of the traced program
=============================  ==========================================================

Default dtypes differ: torch makes integer tensors int64, JAX int32 unless ``jax_enable_x64``
is on. Floats are float32 in both (JAX: float64 with x64 and Python floats).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def created(key: jax.Array) -> dict[str, jax.Array]:
    """Each creation function of the tutorial, with the arguments ``torch`` would take.

    Random draws use ``key`` split once per use, never reused.

    Args:
      key: a ``jax.random.key``.

    Returns:
      ``{name: array}``, e.g. ``zeros``, ``ones``, ``full``: ``(2, 3)``, ``eye``: ``(3, 4)``,
      ``linspace``: ``(5,)``.

    >>> arrays = created(jax.random.key(0))
    >>> arrays["linspace"].tolist(), arrays["arange"].tolist(), arrays["eye"].shape
    ([-1.0, -0.5, 0.0, 0.5, 1.0], [0, 3, 6, 9], (3, 4))
    """
    key_normal, key_bernoulli = jax.random.split(key)
    probabilities = jnp.full((2, 3), 0.5, jnp.float32)
    return {
        "tensor": jnp.array([[1.0, 2.0], [3.0, 4.0]], jnp.float32),
        "from_numpy": jnp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "zeros": jnp.zeros((2, 3), jnp.float32),
        "ones": jnp.ones((2, 3), jnp.float32),
        "full": jnp.full((2, 3), 7.5, jnp.float32),
        "arange": jnp.arange(0, 10, 3),
        "arange_float": jnp.arange(0.0, 1.0, 0.25, dtype=jnp.float32),
        "linspace": jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float32),
        "logspace": jnp.logspace(0.0, 3.0, 4, dtype=jnp.float32),
        "eye": jnp.eye(3, 4, dtype=jnp.float32),
        "normal": 1.0 + 2.0 * jax.random.normal(key_normal, (2, 3), jnp.float32),
        "bernoulli": jax.random.bernoulli(key_bernoulli, probabilities).astype(jnp.float32),
    }


def default_dtypes() -> dict[str, str]:
    """The dtype JAX picks without being told, for integer data, float data and ``arange``.

    Returns:
      ``{case: dtype name}``; the names depend on whether ``jax_enable_x64`` is on.

    >>> sorted(default_dtypes())
    ['arange(int)', 'float list', 'integer list', 'zeros']
    >>> default_dtypes()["integer list"] == ("int64" if jax.config.jax_enable_x64 else "int32")
    True
    """
    return {
        "integer list": str(jnp.array([1, 2, 3]).dtype),
        "float list": str(jnp.array([1.0, 2.0]).dtype),
        "arange(int)": str(jnp.arange(3).dtype),
        "zeros": str(jnp.zeros(2).dtype),
    }


def attributes(x: ArrayLike) -> dict[str, object]:
    """The tutorial's eight tensor attributes, answered for an array ``x`` and ``f = sum(x**2)``.

    Args:
      x: an array of any shape.

    Returns:
      ``{attribute: answer}``; ``grad`` is ``2x``, the shape of ``x``.

    >>> answers = attributes(jnp.asarray([1.0, 2.0, 3.0], jnp.float32))
    >>> answers["shape"], str(answers["dtype"]), answers["grad"].tolist()
    ((3,), 'float32', [2.0, 4.0, 6.0])
    """
    x = jnp.asarray(x)

    def f(v):
        return jnp.sum(v**2)

    return {
        "data": x,
        "dtype": x.dtype,
        "shape": x.shape,
        "device": sorted(str(d) for d in x.devices()),
        "grad": jax.grad(f)(x),
        "grad_fn": str(jax.make_jaxpr(f)(x)),
        "requires_grad": "differentiated argument 0 of f (argnums=0)",
        "is_leaf": "x is an input of f, so a leaf; v**2 is an intermediate",
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: print every created array (name, dtype, values), the default dtypes and the
    attributes of a small float32 vector; nothing is saved.

    The only option is ``--seed``; run ``python -m jaxnets.lessons.tensor_basics --help``.
    ``argv`` defaults to ``sys.argv``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, value in created(jax.random.key(args.seed)).items():
        print(f"{name:13} {value.dtype!s:8} {value.tolist()}")
    print("default dtypes:", default_dtypes())
    for name, value in attributes(jnp.array([1.0, 2.0, 3.0], jnp.float32)).items():
        print(f"{name:13} {value}")


if __name__ == "__main__":
    main()
