"""gnnmask: untrained tickets and sparse training for deep graph neural networks."""

__version__ = "0.1.0"
