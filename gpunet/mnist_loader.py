"""The book's ``mnist_loader``, where the book's readers import it: :mod:`gpunet.book.mnist_loader`."""

from .book.mnist_loader import load_data, load_data_wrapper, vectorized_result

__all__ = ["load_data", "load_data_wrapper", "vectorized_result"]
