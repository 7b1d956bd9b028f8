"""The book's ``network2``, where the book's readers import it: :mod:`gpunet.book.network2`."""

from .book.network2 import CrossEntropyCost, Network, QuadraticCost, load, vectorized_result

__all__ = ["CrossEntropyCost", "Network", "QuadraticCost", "load", "vectorized_result"]
