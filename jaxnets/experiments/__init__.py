"""The trainable tutorials, one module each, all implementing the same protocol (``_protocol``).

``catalog`` lists them with their defaults; ``registry`` imports them by name.
"""
