"""Data: the device-side batch plan training uses, and a torch-compatible host loader apart.

:mod:`jaxnets.data.plan` cuts each epoch into batches inside the compiled training step;
:mod:`jaxnets.data.loader` is ``torch.utils.data``'s ``DataLoader``, ``default_collate`` and
``default_convert`` on the host, with the same cut. Both are re-exported here.
:mod:`jaxnets.data.transforms` (imported on its own) holds torchvision's image transforms as pure
functions of ``(key, image)`` on channels-last images, for augmenting batches inside a step.
"""

from jaxnets.data.loader import (
    ArrayDataset,
    DataLoader,
    batch_indices,
    default_collate,
    default_convert,
)
from jaxnets.data.plan import FULL_BATCH, Plan, epoch_order, epoch_orders

__all__ = [
    "FULL_BATCH",
    "ArrayDataset",
    "DataLoader",
    "Plan",
    "batch_indices",
    "default_collate",
    "default_convert",
    "epoch_order",
    "epoch_orders",
]
