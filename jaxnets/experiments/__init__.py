"""One module per ported tutorial; each exposes pure functions, a jitted ``train`` and ``main``.

``linear_regression`` (seed 002), ``mlp`` (seed 000) and ``cnn`` (seed 001).
"""
