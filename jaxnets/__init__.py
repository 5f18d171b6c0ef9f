"""jaxnets: classic PyTorch training tutorials as pure-function JAX.

The library never imports torch. ``parity`` (a sibling package) runs the PyTorch originals and
proves that these ports produce the same gradients and loss trajectories.
"""

__version__ = "0.1.0"
