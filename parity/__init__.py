"""parity: run the PyTorch originals and the jaxnets ports on the same data and judge the match.

``python -m parity`` runs every experiment both ways and exits 0 only when every compared
quantity is within its rule (see ``parity.compare``). For any torch module and its NNX port,
:func:`load_torch` / :func:`to_torch` copy the weights across and :func:`check_port` /
:func:`assert_port` train both side by side and name the first layer that diverges (see
``parity.port``). :func:`generate_port` writes the port itself: readable NNX source from a
torch model, loaded with its weights and checked the same way (see ``parity.generate``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_torch", "to_torch", "check_port", "assert_port", "generate_port"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``import parity`` (and parity.compare) stays free of torch and JAX.
    if name == "generate_port":
        from parity import generate

        return generate.generate_port
    if name in __all__:
        from parity import port

        return getattr(port, name)
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
