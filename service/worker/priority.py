"""Lowering a training process's CPU priority, every thread of it.

On Linux a nice value belongs to a thread: `os.nice` in `main` reached only the main thread and
the threads started after it. Those that importing the training module had already started
(OpenBLAS's pool from numpy, TensorFlow's) kept niceness 0 and competed with the API as equals.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TASKS = Path("/proc/self/task")


def lower_priority(niceness: int) -> None:
    """Every thread of this process at `niceness` (at least), and those it starts later:
    a new thread inherits its creator's."""
    if not TASKS.is_dir():  # not Linux: there a nice value is the whole process's
        with contextlib.suppress(OSError):
            os.nice(niceness)
        return
    for task in TASKS.iterdir():
        with contextlib.suppress(OSError, ValueError):  # a thread that has just ended
            thread = int(task.name)
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, max(current, niceness))
