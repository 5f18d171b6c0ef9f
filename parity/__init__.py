"""parity: run the PyTorch originals and the jaxnets ports on the same data and judge the match.

``python -m parity`` runs every experiment both ways and exits 0 only when every compared
quantity is within its rule (see ``parity.compare``).
"""
