"""Ctrl-C, SIGTERM, SIGHUP and the other stop signals (STOP_SIGNALS): each stops a run as
KeyboardInterrupt, none cuts a write in half, and the exit status is 128 + the signal."""

from __future__ import annotations

import contextlib
import signal
import threading

# The signals that end a command as Ctrl-C does (its write finished, its state kept, exit 128 + the signal):
# every one whose default is to end the process silently and that a user, a terminal or a scheduler sends.
# SIGHUP: a closed terminal or ssh drop; SIGTERM: docker stop, kill; SIGXCPU: a CPU-time limit (batch
# schedulers warn with it); SIGUSR1/2 and SIGALRM: schedulers' "time is nearly up". Not SIGQUIT (a core
# dump, asked for), SIGPIPE (Python turns it into BrokenPipeError), SIGKILL/SIGSTOP (cannot be caught).
_STOPS = ("SIGHUP", "SIGTERM", "SIGXCPU", "SIGUSR1", "SIGUSR2", "SIGALRM")
STOP_SIGNALS = tuple(getattr(signal, name) for name in _STOPS if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C (SIGTERM from ``docker stop``, SIGHUP from a closed terminal, ...),
    handled exactly as Ctrl-C is; the exit status is 128 + ``signum``."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, every stop signal that would end the process silently raises :class:`Terminated` (a
    KeyboardInterrupt), also as PID 1 in a container; one the process was started ignoring (``nohup`` ignores
    SIGHUP), or that the caller's code handles (a test runner's SIGALRM timeout), is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, handler in previous.items():
        if handler == signal.SIG_DFL:
            signal.signal(s, _raise_terminated)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_held: list[int] | None = None  # the signals held by the outermost uninterrupted() under way


@contextlib.contextmanager
def uninterrupted():
    """Finish a write before a stop signal takes effect: the signal is held, then raised after it."""
    global _held
    if _held is not None or threading.current_thread() is not threading.main_thread():
        yield  # already held by an enclosing block, or signals cannot be handled here
        return
    _held = held = []
    mine = (signal.SIG_DFL, _raise_terminated)  # a signal ignored, or handled by the caller's code, is left alone
    stops = [s for s in STOP_SIGNALS if signal.getsignal(s) in mine]
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, *stops)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _held = None
    for signum in held:
        if signum != signal.SIGINT:
            raise Terminated(signum)
    if held:
        raise KeyboardInterrupt()
