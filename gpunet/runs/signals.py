"""Ctrl-C and SIGTERM: both stop a run as KeyboardInterrupt, and neither cuts a write in half."""

from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a scheduler), handled exactly as Ctrl-C is; the exit status is 143."""


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), also as PID 1 in a container."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_held: list[int] | None = None  # the signals held by the outermost uninterrupted() under way


@contextlib.contextmanager
def uninterrupted():
    """Finish a write before Ctrl-C or SIGTERM takes effect: the signal is held, then raised after it."""
    global _held
    if _held is not None or threading.current_thread() is not threading.main_thread():
        yield  # already held by an enclosing block, or signals cannot be handled here
        return
    _held = held = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _held = None
    if signal.SIGTERM in held:
        raise Terminated()
    if held:
        raise KeyboardInterrupt()
