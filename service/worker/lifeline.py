"""A supervised child's ties to its supervisor: it dies with it, and obeys it alone.

No orphan keeps training or holding memory after its supervisor is gone. And a signal meant for
the whole service (Ctrl-C in a terminal: SIGINT to the process group; systemd's stop: SIGTERM to
every process of the unit) does not stop a training half-way: its supervisor, which got the
signal too, decides when and how the training stops (finish the epoch, or a kill).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

PARENT_PID_ENV = "SERVICE_PARENT_PID"
POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1
# What a terminal or a service manager sends every process of the service to stop it.
GROUP_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How `python -m service` passes each stop request it gets on to its embedded worker: not as
# SIGTERM, which a signal to the whole group has delivered to the worker already.
FORWARDED_STOP_SIGNAL = signal.SIGUSR1


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must die with this process."""
    env = dict(os.environ if environ is None else environ)
    env[PARENT_PID_ENV] = str(os.getpid())
    return env


def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the polling thread still covers it
        pass


def watch_parent() -> None:
    """If started by a supervisor (SERVICE_PARENT_PID), exit the moment it is gone.

    The kernel's parent-death signal is immediate; the polling thread covers the case where the
    parent died before the signal was armed, and platforms without prctl.
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    parent = int(expected)
    _set_pdeathsig()

    def poll() -> None:
        while True:
            if os.getppid() != parent:
                log.error("supervisor %s is gone; exiting", parent)
                os._exit(70)
            threading.Event().wait(POLL_SECONDS)

    if os.getppid() != parent:
        os._exit(70)
    threading.Thread(target=poll, name="lifeline", daemon=True).start()


@contextmanager
def shielded_spawn() -> Iterator[None]:
    """While entered, the calling thread blocks GROUP_STOP_SIGNALS, and so does a child it
    spawns meanwhile (a signal mask survives exec): from its first instruction until it calls
    `obey_supervisor_only`, such a signal waits instead of killing it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def obey_supervisor_only() -> None:
    """In a child started by a supervisor (SERVICE_PARENT_PID), ignore GROUP_STOP_SIGNALS (one
    that waited since `shielded_spawn` is dropped): the supervisor stops it through its own
    channel, and if the supervisor dies, `watch_parent` ends it. Run by hand, it keeps them."""
    if os.environ.get(PARENT_PID_ENV):
        for signum in GROUP_STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, GROUP_STOP_SIGNALS)
