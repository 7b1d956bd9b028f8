"""Standard streams that cannot end a command: closed (``>&-``), full (``>/dev/full``), a reader gone (``| head``)
or a terminal hung up. The work goes on and saves what was asked; the failure is remembered, and said (or
not) in the exit status once the command is done."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys

from ..errors import error_line, printable


class Guarded(io.TextIOBase):
    """A text stream whose first failed write (or flush) is kept in ``failure`` and whose later output is dropped;
    with ``escape``, what it is given is written :func:`~gpunet.errors.printable` but for its lines and tabs, so
    no name from a user or a file can move the cursor, recolour or reorder the terminal.

    The descriptor under a failed stream is pointed at /dev/null, so the interpreter's last flush at exit (of
    what the stream still buffers) cannot fail again."""

    def __init__(self, stream, escape: bool = False):
        self.stream, self.escape = stream, escape
        self.failure: OSError | None = None

    def _guard(self, call, *args):
        if self.failure is not None or self.stream is None:
            return None
        try:
            return call(*args)
        except (OSError, ValueError) as e:  # ValueError: I/O on a closed file
            self.failure = e if isinstance(e, OSError) else OSError(errno.EBADF, "closed")
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, self.stream.fileno())
                os.close(null)
            return None

    def write(self, text: str) -> int:
        given = len(text)
        if self.stream is not None:
            text = printable(text, keep="\n\t") if self.escape else text
            encoding = self.encoding or "utf-8"
            try:  # a name the encoding cannot show (an undecodable byte in a path) as an escape, not a failure
                text.encode(encoding)
            except (UnicodeEncodeError, LookupError):
                text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
            self._guard(self.stream.write, text)
        return given

    def flush(self) -> None:
        if self.stream is not None:
            self._guard(self.stream.flush)

    def isatty(self) -> bool:
        return bool(self.stream is not None and self._guard(self.stream.isatty))

    def writable(self) -> bool:
        return True

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


def _open_closed_descriptors() -> None:
    """Descriptors 0-2 closed at start (``>&-``) get /dev/null, so no file the command opens takes their number."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
                if null != fd:
                    os.close(null)


@contextlib.contextmanager
def guarded():
    """While inside, sys.stdout and sys.stderr are :class:`Guarded`; yields the guard of stdout."""
    _open_closed_descriptors()
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Guarded(out, escape=True), Guarded(err)  # stderr: notes are escaped, bars are not
    try:
        yield sys.stdout
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = out, err


def status_after(stdout: Guarded, status: int) -> int:
    """The exit status, once stdout has failed: the command's own if it failed, 141 for a reader gone
    (``| head``, as Unix tools), else 2 with one line (the output was lost, the files asked for are kept)."""
    failure = stdout.failure
    if failure is None or status != 0:
        return status
    if failure.errno == errno.EPIPE:
        return 141
    print(
        error_line(
            f"standard output failed ({failure.strerror or failure}); its lines were lost, the files "
            "asked for are written"
        ),
        file=sys.stderr,
    )
    return 2
