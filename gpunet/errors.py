"""What the user is told: errors they can cause and fix (the CLI prints them as one line and exits 2), the
few words quoted from a foreign exception, and notes on stderr (stdout stays the book's transcript)."""

import sys
import unicodedata


class GpunetError(Exception):
    """Base class of gpunet's user-facing errors; shown as one line (:func:`printable`) whatever paths it names."""

    def __str__(self) -> str:
        return printable(super().__str__())


class ConfigError(GpunetError, ValueError):
    """An invalid setting (sizes, eta, batch size, dtype, ...)."""


class DataError(GpunetError):
    """A file or peer that cannot be used as it is: ``DataError(path, why)`` reads ``"{path}: {why}"``
    (``DataError(message)`` for what names no one file)."""

    def __init__(self, path, why: str | None = None):
        super().__init__(str(path) if why is None else f"{path}: {why}")
        self.path = None if why is None else path


UNSHOWN = ("Cc", "Cf", "Zl", "Zp", "Cs")  # control, format (bidi overrides), line breaks, undecodable bytes


def printable(text: str, keep: str = "") -> str:
    """Returns ``text`` as a terminal shows it as it is: every control or format character (an escape or a
    newline in a path, a bidi override), line separator and undecodable byte (a surrogate from the file system)
    written as a Python escape, ``\\n``; those in ``keep`` are left as they are."""
    return "".join(
        c.encode("unicode_escape", "backslashreplace").decode("ascii")
        if c not in keep and unicodedata.category(c) in UNSHOWN
        else c
        for c in text
    )


def error_line(message: str) -> str:
    """The one error formatter: what the CLI prints for an error the user can fix (then exits 2)."""
    return f"gpunet: error: {printable(message)}"


def one_line(e: BaseException, limit: int = 200) -> str:
    """A foreign exception (CuPy, numba, requests, Dask, ...) as the few words a one-line message quotes:
    its type, then the first line of its text with white space folded, cut to ``limit`` characters."""
    lines = str(e).strip().splitlines()
    text = " ".join(lines[0].split())[:limit] if lines else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def say(*args, **kwargs) -> None:
    """A note for the user on stderr, so stdout stays the book's transcript."""
    print("gpunet:", *(printable(str(a)) for a in args), file=sys.stderr, **kwargs)
