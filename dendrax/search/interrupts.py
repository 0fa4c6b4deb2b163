"""Signals as interrupts: SIGTERM and SIGHUP stop a search the way Ctrl-C does.

A scheduler's or ``timeout``'s SIGTERM, or a closed terminal's SIGHUP, would otherwise
kill the process on the spot: the log stays valid (every line is written whole), but
nothing is printed and nothing outside dendrax is told (an Optuna study keeps its trials
RUNNING). :func:`signals_as_interrupts` turns them into :class:`Terminated`, a
KeyboardInterrupt, so every ``finally`` and ``except BaseException`` on the way out runs
as for Ctrl-C. Pure Python.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Sequence

# The signals a search treats like Ctrl-C besides SIGINT (SIGHUP does not exist on Windows).
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The process received ``signum`` (SIGTERM, SIGHUP): stop like Ctrl-C. The command
    line exits with the conventional status 128 + signum (143, 129)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"received {signal_name(self.signum)}")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_interrupts(signals: Sequence[int] = STOP_SIGNALS,
                          only_default: bool = True) -> Iterator[None]:
    """While the block runs, each of ``signals`` raises :class:`Terminated` in the main
    thread. ``only_default``: leave alone a signal whose handler someone else installed
    (a library must not override its caller's). Does nothing outside the main thread
    (only it may set handlers); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in signals:
            current = signal.getsignal(signum)
            if only_default and current not in (signal.SIG_DFL, None):
                continue
            previous[signum] = current
            signal.signal(signum, _raise_terminated)
        yield
    finally:
        for signum, handler in previous.items():
            try:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
