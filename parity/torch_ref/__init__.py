"""The PyTorch originals, one module per experiment, each the tutorial's code after a seed.

Each ``run`` draws in the tutorial's order and dtype (float32) right after
``torch.manual_seed(seed)``, so the numbers are the tutorial's own; a float64 run casts those same
draws up, which makes it the exact-arithmetic reference for the float32 run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Reference:
    """What a torch run hands to the comparison, all as NumPy in torch's own layouts.

    ``params`` is the initial ``state_dict``, ``inputs`` the data, ``losses`` one ``loss.item()``
    per optimiser step, ``grads`` the gradient of the first step, keyed like ``params``, and
    ``metrics`` any end-of-run figures (e.g. held-out accuracy).
    """

    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    losses: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def numpy(tensor: torch.Tensor) -> np.ndarray:
    """A detached host copy."""
    return tensor.detach().cpu().numpy().copy()


def leaf(tensor: torch.Tensor, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``tensor`` cast to the run's dtype/device as a fresh leaf that requires grad."""
    return tensor.to(dtype=dtype, device=device).detach().requires_grad_(True)
