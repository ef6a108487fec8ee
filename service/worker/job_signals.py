"""How a training process routes its supervisor's signals (protocol.py) to the job in progress.

A warm training process trains many jobs in turn: it routes the signals to the job in progress
and drops them between jobs, so a signal meant for a job that has just ended never reaches the
next one.
"""

from __future__ import annotations

import signal
import threading

from service.worker.protocol import CANCEL_SIGNAL, DRAIN_SIGNAL


class JobSignals:
    """What the supervisor asked of the attempt in progress, by signal: cancel, or drain."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.drain = threading.Event()


def listen(signals: JobSignals | None) -> None:
    """Route CANCEL_SIGNAL and DRAIN_SIGNAL to the attempt in progress; with None (between the
    jobs of a warm process) drop them: a late signal belongs to the job that ended."""
    if signals is None:
        signal.signal(CANCEL_SIGNAL, signal.SIG_IGN)
        signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
        return
    signal.signal(CANCEL_SIGNAL, lambda *_: signals.cancel.set())
    signal.signal(DRAIN_SIGNAL, lambda *_: signals.drain.set())
