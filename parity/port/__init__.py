"""Any torch module against its NNX port: copy weights across, train both, judge, name what broke.

:func:`load_torch` and :func:`to_torch` move a state dict between a ``torch.nn.Module`` and a
``jaxnets.nn`` model by torch path (``jaxnets.nn.load_state_dict`` owns the layouts).
:func:`check_port` casts both to float64 and/or float32, loads the torch weights into a copy of
the NNX model, trains both on the same batches (the torch optimiser and scheduler translated to
``jaxnets.optim``), and judges with ``parity.compare``'s rules every module's output at the first
step, every parameter's first-step gradient, the loss trajectory and the buffers after the run;
:func:`assert_port` raises when anything breaks its rule. Everything that can be refused is
refused before anything runs: modules that do not match path for path, an optimiser or option
``jaxnets.optim`` does not carry over, inputs in the wrong layout. Training with dropout on (or
any random draw in ``forward``) is compared: torch's draws are recorded and replayed into the
port through ``jaxnets.nn.random``.

The package is split by job: ``load`` (weights across), ``torch_side`` (borrow, train and record
the torch module), ``draws`` (torch's random draws, recorded and replayed), ``jax_side`` (the NNX
copy and its compiled step), ``check`` (orchestration), ``report`` (rows, verdict, first
divergence; it applies ``parity.compare``'s rules).
"""

from parity.port.check import assert_port, check_port
from parity.port.jax_side import StructureError
from parity.port.load import load_torch, to_torch
from parity.port.report import PortReport

__all__ = ["StructureError", "PortReport", "load_torch", "to_torch", "check_port", "assert_port"]
