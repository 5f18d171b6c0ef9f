"""Seed 003: autograd basics and the common losses, each lesson beside its torch form.

=========================  ===========================================================
torch                      JAX
=========================  ===========================================================
``x.requires_grad=True``   differentiate a function of ``x``: ``jax.grad(f)(x)``
``y.backward(); x.grad``   ``jax.grad`` returns the gradient instead of storing it
``y.backward()``, vector   fails in both: a gradient needs a scalar output
``y.backward(v)``          ``jax.vjp(f, x)[1](v)``: an explicit cotangent
``y.mean().backward()``    ``jax.grad(lambda x: f(x).mean())``: reduce first
``x.detach()``             ``jax.lax.stop_gradient(x)``
``.grad`` accumulates      gradients are fresh values; accumulate by adding them
``z.grad_fn`` graph        ``jax.make_jaxpr(f)(x)``: the traced program
=========================  ===========================================================

``lessons(inputs)`` computes every quantity the tutorial prints, by name, so ``parity`` can
compare them one by one with the torch original. ``main`` prints them.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import losses

Arrays = dict[str, jax.Array]
LOSSES = ("mse", "l1", "cross_entropy", "bce", "bce_with_logits")
REDUCTIONS = ("mean", "sum")


def square(x: ArrayLike) -> jax.Array:
    """``y = x ** 2``, the tutorial's function.

    Args:
      x: an array of any shape.

    Returns:
      ``x ** 2``, the shape of ``x``.

    >>> square(jnp.asarray([1.0, 2.0, 3.0], jnp.float32)).tolist()
    [1.0, 4.0, 9.0]
    """
    return jnp.square(x)


def scalar_grad(x: ArrayLike) -> jax.Array:
    """``x = tensor(1.0, requires_grad=True); (x**2).backward(); x.grad`` -> ``2x``.

    Args:
      x: a scalar, shape ``()``.

    Returns:
      ``2x``, shape ``()``.

    >>> float(scalar_grad(jnp.asarray(1.0, jnp.float32)))
    2.0
    """
    return jax.grad(square)(x)


def vector_grad_error(x: ArrayLike) -> str:
    """The tutorial's ``y.backward()`` on a vector ``y``, which fails.

    torch raises ``RuntimeError: grad can be implicitly created only for scalar outputs``;
    ``jax.grad`` raises a ``TypeError`` likewise.

    Args:
      x: a vector, shape ``(n,)``.

    Returns:
      The first line of JAX's error message.

    >>> vector_grad_error(jnp.asarray([1.0, 2.0, 3.0], jnp.float32))
    'Gradient only defined for scalar-output functions. Output had shape: (3,).'
    """
    try:
        jax.grad(square)(x)
    except TypeError as err:
        return str(err).splitlines()[0]
    raise AssertionError("jax.grad of a vector-valued function unexpectedly succeeded")


def vector_vjp(x: ArrayLike, cotangent: ArrayLike) -> jax.Array:
    """``y.backward(v)``: the vector-Jacobian product with an explicit cotangent ``v``.

    Args:
      x: ``(n,)`` input.
      cotangent: ``(n,)``, torch's ``gradient`` argument.

    Returns:
      ``2 * x * cotangent``, shape ``(n,)``.

    >>> x = jnp.asarray([1.0, 2.0, 3.0], jnp.float32)
    >>> vector_vjp(x, jnp.ones((3,), jnp.float32)).tolist()
    [2.0, 4.0, 6.0]
    """
    _, pullback = jax.vjp(square, x)
    return pullback(cotangent)[0]


def vector_mean_grad(x: ArrayLike) -> jax.Array:
    """``y.mean().backward()``: reduce to a scalar first; ``d mean(x**2) / dx = 2x / n``.

    Args:
      x: ``(n,)`` input.

    Returns:
      ``2x / n``, shape ``(n,)``.

    >>> g = vector_mean_grad(jnp.asarray([1.0, 2.0, 3.0], jnp.float32))
    >>> [round(v, 4) for v in g.tolist()]
    [0.6667, 1.3333, 2.0]
    """
    return jax.grad(lambda v: jnp.mean(square(v)))(x)


def detach_grad(x: ArrayLike) -> jax.Array:
    """``(y.detach() * x).sum()`` with ``y = x**2``.

    The detached factor is a constant, so the gradient is ``x**2`` instead of ``3 x**2``.

    Args:
      x: ``(n,)`` input.

    Returns:
      ``x ** 2``, shape ``(n,)``.

    >>> detach_grad(jnp.asarray([1.0, 2.0, 3.0], jnp.float32)).tolist()
    [1.0, 4.0, 9.0]
    """
    return jax.grad(lambda v: jnp.sum(jax.lax.stop_gradient(square(v)) * v))(x)


def accumulated_grad(x: ArrayLike, times: int) -> jax.Array:
    """What ``.grad`` holds after ``times`` calls of ``y.sum().backward()`` without ``zero_()``.

    JAX returns a fresh gradient per call, so accumulation is an explicit sum.

    Args:
      x: input of any shape.
      times: how many backward calls to accumulate.

    Returns:
      ``times * 2x``, the shape of ``x``.

    >>> accumulated_grad(jnp.asarray([1.0, 2.0, 3.0], jnp.float32), 3).tolist()
    [6.0, 12.0, 18.0]
    """
    grad_fn = jax.grad(lambda v: jnp.sum(square(v)))
    return sum((grad_fn(x) for _ in range(times)), jnp.zeros_like(jnp.asarray(x)))


def graph_grads(x: ArrayLike, y: ArrayLike) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``z = x * y; loss = z.sum(); loss.backward()``.

    Args:
      x: ``(n,)`` input.
      y: ``(n,)`` input.

    Returns:
      ``(loss, x.grad, y.grad)``: shape ``()``, then ``y`` and ``x`` themselves, ``(n,)`` each.

    >>> x = jnp.asarray([1.0, 2.0, 3.0], jnp.float32)
    >>> y = jnp.asarray([4.0, 5.0, 6.0], jnp.float32)
    >>> loss, grad_x, grad_y = graph_grads(x, y)
    >>> float(loss), grad_x.tolist(), grad_y.tolist()
    (32.0, [4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
    """
    loss, (grad_x, grad_y) = jax.value_and_grad(lambda a, b: jnp.sum(a * b), argnums=(0, 1))(x, y)
    return loss, grad_x, grad_y


def graph_text(x: ArrayLike, y: ArrayLike) -> str:
    """JAX's view of the graph that torch records in ``grad_fn``: the traced program.

    Args:
      x: ``(n,)`` input.
      y: ``(n,)`` input.

    Returns:
      The jaxpr of ``sum(x * y)`` as text.

    >>> text = graph_text(jnp.ones((3,), jnp.float32), jnp.ones((3,), jnp.float32))
    >>> "mul" in text, "reduce_sum" in text
    (True, True)
    """
    return str(jax.make_jaxpr(lambda a, b: jnp.sum(a * b))(x, y))


def _loss(name: str, input: jax.Array, target: jax.Array, reduction: str) -> jax.Array:
    functions = {
        "mse": losses.mse_loss,
        "l1": losses.l1_loss,
        "cross_entropy": losses.cross_entropy,
        "bce": losses.binary_cross_entropy,
        "bce_with_logits": losses.binary_cross_entropy_with_logits,
    }
    return functions[name](input, target, reduction=reduction)


def loss_inputs(inputs: Arrays) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``(input, target)`` for each loss, from the drawn arrays.

    Regression pairs for ``mse`` and ``l1``, logits with class indices for ``cross_entropy``,
    probabilities with binary targets for ``bce``, logits with binary targets for
    ``bce_with_logits``.

    Args:
      inputs: the arrays of :func:`draw_inputs`.

    Returns:
      ``{loss name: (input, target)}``; inputs are ``(batch, classes)``, class indices
      ``(batch,)``.

    >>> pairs = loss_inputs(draw_inputs(jax.random.key(0), batch=2, classes=3))
    >>> {name: (i.shape, t.shape) for name, (i, t) in pairs.items()}["cross_entropy"]
    ((2, 3), (2,))
    >>> sorted(pairs) == sorted(LOSSES)
    True
    """
    return {
        "mse": (inputs["prediction"], inputs["regression_target"]),
        "l1": (inputs["prediction"], inputs["regression_target"]),
        "cross_entropy": (inputs["logits"], inputs["classes"]),
        "bce": (jax.nn.sigmoid(inputs["binary_logits"]), inputs["binary_target"]),
        "bce_with_logits": (inputs["binary_logits"], inputs["binary_target"]),
    }


def lessons(inputs: Arrays) -> Arrays:
    """Every lesson's result by name.

    Args:
      inputs: holds ``x_scalar``, ``x_vector``, ``cotangent``, ``graph_x``, ``graph_y`` and the
        loss inputs (see :func:`draw_inputs` and :func:`loss_inputs`).

    Returns:
      ``{name: array}``: the gradient lessons (shapes of their inputs), the graph's loss and
      gradients, and for each loss and reduction its value (``()``) and its gradient with respect
      to the input (``<loss>_<reduction>`` and ``<loss>_<reduction>_grad``).

    >>> out = lessons(draw_inputs(jax.random.key(0), batch=2, classes=3))
    >>> len(out), float(out["scalar_grad"]), out["mse_mean"].shape, out["mse_mean_grad"].shape
    (28, 2.0, (), (2, 3))
    """
    x_vector = inputs["x_vector"]
    out = {
        "scalar_grad": scalar_grad(inputs["x_scalar"]),
        "vector_vjp": vector_vjp(x_vector, inputs["cotangent"]),
        "vector_mean_grad": vector_mean_grad(x_vector),
        "detach_grad": detach_grad(x_vector),
        "accumulated_grad_x3": accumulated_grad(x_vector, 3),
    }
    out["graph_loss"], out["graph_grad_x"], out["graph_grad_y"] = graph_grads(
        inputs["graph_x"], inputs["graph_y"]
    )
    for name, (input, target) in loss_inputs(inputs).items():
        for reduction in REDUCTIONS:
            value, grad = jax.value_and_grad(_loss, argnums=1)(name, input, target, reduction)
            out[f"{name}_{reduction}"] = value
            out[f"{name}_{reduction}_grad"] = grad
    return out


def draw_inputs(
    key: jax.Array, dtype: jnp.dtype = jnp.float32, batch: int = 4, classes: int = 5
) -> Arrays:
    """Random inputs for :func:`lessons` (the scalar and vector are the tutorial's 1.0 and [1,2,3]).

    Args:
      key: a ``jax.random.key``.
      dtype: floating dtype of every array but the class indices.
      batch: rows of the loss inputs.
      classes: columns of the loss inputs, and the number of classes.

    Returns:
      ``x_scalar: ()``, ``x_vector``, ``cotangent``, ``graph_x``, ``graph_y``: ``(3,)``, integer
      ``classes: (batch,)`` and the other loss inputs ``(batch, classes)``.

    >>> inputs = draw_inputs(jax.random.key(0), batch=2, classes=3)
    >>> inputs["x_vector"].tolist(), inputs["logits"].shape, inputs["classes"].shape
    ([1.0, 2.0, 3.0], (2, 3), (2,))
    """
    keys = jax.random.split(key, 8)
    return {
        "x_scalar": jnp.asarray(1.0, dtype),
        "x_vector": jnp.asarray([1.0, 2.0, 3.0], dtype),
        "cotangent": jnp.ones((3,), dtype),
        "graph_x": jax.random.normal(keys[0], (3,), dtype),
        "graph_y": jax.random.normal(keys[1], (3,), dtype),
        "prediction": jax.random.normal(keys[2], (batch, classes), dtype),
        "regression_target": jax.random.normal(keys[3], (batch, classes), dtype),
        "logits": jax.random.normal(keys[4], (batch, classes), dtype),
        "classes": jax.random.randint(keys[5], (batch,), 0, classes),
        "binary_logits": jax.random.normal(keys[6], (batch, classes), dtype),
        "binary_target": jax.random.bernoulli(keys[7], 0.5, (batch, classes)).astype(dtype),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: print every lesson as the tutorial does, then each loss's value per reduction.

    The lessons are the scalar gradient, the vector ``backward()`` error, the VJP, the mean's
    gradient, ``detach``, accumulation over three calls and the traced graph; nothing is saved.
    The only option is ``--seed``; run ``python -m jaxnets.lessons.autograd_basics --help``.
    ``argv`` defaults to ``sys.argv``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    inputs = draw_inputs(jax.random.key(args.seed))
    print("x = 1.0, y = x**2, x.grad:", float(scalar_grad(inputs["x_scalar"])))
    print("vector y.backward():", vector_grad_error(inputs["x_vector"]))
    print(
        "y.backward(ones) via jax.vjp:",
        vector_vjp(inputs["x_vector"], inputs["cotangent"]).tolist(),
    )
    print("y.mean().backward():", vector_mean_grad(inputs["x_vector"]).tolist())
    print("detach: grad of (y.detach()*x).sum():", detach_grad(inputs["x_vector"]).tolist())
    print(
        "three backward() calls without zero_():", accumulated_grad(inputs["x_vector"], 3).tolist()
    )
    print("graph of loss = (x*y).sum():\n" + graph_text(inputs["graph_x"], inputs["graph_y"]))
    results = lessons(inputs)
    for name in LOSSES:
        for reduction in REDUCTIONS:
            value = float(results[f"{name}_{reduction}"])
            print(f"{name:16} reduction={reduction:4}  loss {value:.6f}")


if __name__ == "__main__":
    main()
