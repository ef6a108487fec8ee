"""Die with the parent: no orphan keeps training or holding memory after its supervisor is gone."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading

log = logging.getLogger(__name__)

PARENT_PID_ENV = "SERVICE_PARENT_PID"
POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


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
