"""Trainings and evaluations yield the CPU: every thread of theirs runs at TRAINING_NICENESS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Prints the niceness of every thread of the process once `setup` has run.
NICENESS_OF_THREADS = """
import json, os
niceness = {os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}
print(json.dumps(sorted(niceness)))
"""


def niceness_after(setup: str, **env: str) -> list[int]:
    script = textwrap.dedent(setup) + NICENESS_OF_THREADS
    environ = {name: value for name, value in os.environ.items() if name != "TRAINING_NICENESS"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    values: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return values


def test_every_thread_started_before_is_lowered_too() -> None:
    # numpy starts OpenBLAS's pool on import: those threads must not keep niceness 0.
    setup = """
    import threading, numpy
    started = threading.Event()
    threading.Thread(target=started.wait, daemon=True).start()
    from service.worker.priority import lower_priority
    lower_priority(12)
    """
    assert niceness_after(setup) == [12]


@pytest.mark.parametrize("module", ["training", "evaluation"])
def test_training_and_evaluation_processes_take_the_configured_niceness(module: str) -> None:
    # Wrong arguments: `main` prints its usage and returns once the priority is lowered.
    setup = f"""
    from service.worker import {module}
    assert {module}.main([]) == 2
    """
    assert niceness_after(setup, TRAINING_NICENESS="7") == [7]


def test_by_default_trainings_take_only_the_cpu_the_api_leaves() -> None:
    setup = """
    from service.worker import training
    assert training.main([]) == 2
    """
    assert niceness_after(setup) == [19]
