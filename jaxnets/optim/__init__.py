"""``torch.optim`` optimisers and learning-rate schedulers as optax transformations and schedules.

``jaxnets.optim.<name>(lr, **torch_kwargs)`` takes ``torch.optim.<Name>``'s arguments under the
same names, order and defaults, and ``optax.apply_updates(params, updates)`` with it reproduces
``torch.optim.<Name>.step()`` step for step, option for option: :func:`sgd`, :func:`adam`,
:func:`adamw`, :func:`rmsprop`, :func:`adagrad`, :func:`adadelta`, :func:`adamax`, :func:`nadam`
and :func:`radam`. Each is a chain of optax's own transforms (``scale``, ``add_decayed_weights``,
``trace``, ``scale_by_learning_rate``) around a ``scale_by_torch_*`` transform wherever torch's
arithmetic differs from optax's (first-step momentum, where ``eps`` goes, AMSGrad's maximum,
RAdam's switch). ``lr`` is a float or an optax schedule of the step count, counted from 0 like
torch's scheduler steps; :func:`step_lr`, :func:`multi_step_lr`, :func:`exponential_lr`,
:func:`cosine_annealing_lr`, :func:`linear_lr` and :func:`one_cycle_lr` are torch's schedulers as
such schedules.

Not carried over from torch:

- ``foreach``, ``fused``, ``capturable`` and ``differentiable`` select torch kernels or autograd
  behaviour and have no meaning for a jitted pure function; the arithmetic followed is torch's
  ``_single_tensor_*`` path. Where one of them sat positionally before ``maximize`` (RMSprop),
  ``maximize`` is keyword-only here.
- ``lr`` as a ``Tensor``: each optimiser raises ``TypeError`` when built unless ``lr`` is a real
  number (a 0-d NumPy or JAX array counts as the float it holds) or a schedule.
- Parameter groups (use ``optax.multi_transform`` or ``optax.masked``), sparse gradients
  (Adagrad) and complex parameters.
- ``OneCycleLR(cycle_momentum=True)``: only its learning rate is reproduced.

Numerics: per-step scalars (bias corrections, NAdam's ``mu_product``) are computed in float64
when x64 is enabled, else float32, then cast to each parameter's dtype, so float32 parameters and
state stay float32. torch computes them in Python floats, but keeps ``step`` and NAdam's
``mu_product`` as tensors of its default dtype (float32 unless ``torch.set_default_dtype``
says float64). With float64 everywhere, 50-step trajectories agree with torch to 1e-12 relative
or better, element by element; the differences are rounding (e.g. ``-lr`` is applied last here,
folded into torch's ``step_size``). torch's SGD accepts a NaN ``lr`` (it checks ``lr < 0``);
here, as in torch's other optimisers, NaN is rejected.
"""

from jaxnets.optim._adam import (
    AdamaxState,
    AdamState,
    NadamState,
    RadamState,
    adam,
    adamax,
    adamw,
    nadam,
    radam,
    scale_by_torch_adam,
    scale_by_torch_adamax,
    scale_by_torch_nadam,
    scale_by_torch_radam,
)
from jaxnets.optim._adaptive import (
    AdadeltaState,
    AdagradState,
    RmspropState,
    adadelta,
    adagrad,
    rmsprop,
    scale_by_torch_adadelta,
    scale_by_torch_adagrad,
    scale_by_torch_rms,
)
from jaxnets.optim._common import ScalarOrSchedule
from jaxnets.optim._schedules import (
    cosine_annealing_lr,
    exponential_lr,
    linear_lr,
    multi_step_lr,
    one_cycle_lr,
    step_lr,
)
from jaxnets.optim._sgd import SgdState, scale_by_torch_momentum, sgd

__all__ = [
    "AdadeltaState",
    "AdagradState",
    "AdamState",
    "AdamaxState",
    "NadamState",
    "RadamState",
    "RmspropState",
    "ScalarOrSchedule",
    "SgdState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "cosine_annealing_lr",
    "exponential_lr",
    "linear_lr",
    "multi_step_lr",
    "nadam",
    "one_cycle_lr",
    "radam",
    "rmsprop",
    "scale_by_torch_adadelta",
    "scale_by_torch_adagrad",
    "scale_by_torch_adam",
    "scale_by_torch_adamax",
    "scale_by_torch_momentum",
    "scale_by_torch_nadam",
    "scale_by_torch_radam",
    "scale_by_torch_rms",
    "sgd",
    "step_lr",
]
