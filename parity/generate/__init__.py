"""Generate the port: a torch model's readable Flax NNX source on ``jaxnets.nn``, proven by
``check_port`` in the same call.

Files by job: ``trace`` (the fx front end: one graph per module class, shapes on every node),
``layout`` (layouts as axis permutations), ``layers`` (torch layers as ``jaxnets.nn``
constructor calls, the layouts they take), ``ops`` and ``dims`` (torch ops as ``jnp`` /
functional code; ``dims`` those that name dimensions), ``values`` (what the writer knows of each
value), ``emit`` (the classes: which, their ``__init__``, the module's text), ``call`` (a class's
``__call__``), ``names`` (the user's names and the lines' final text), ``port``
(:func:`generate_port`, :class:`GeneratedPort`), ``command`` (``python -m parity port``).
"""

from parity.generate.port import GeneratedPort, generate_port
from parity.generate.trace import GenerateError

__all__ = ["GenerateError", "GeneratedPort", "generate_port"]
