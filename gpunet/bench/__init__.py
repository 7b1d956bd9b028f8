"""Speed: ``gpunet bench`` times every epoch kernel on every device (:mod:`.timing`) against the book's own
loop (:mod:`gpunet.book.reference`) and the peers a reader would use instead (:mod:`.peers`)."""

from __future__ import annotations

from .timing import BOOK_CONFIGS, HEADER, format_row, run, usable

__all__ = ["BOOK_CONFIGS", "HEADER", "format_row", "run", "usable"]
