"""What a supervisor and its training process agree on; both sides import this module.

The supervisor starts `python -m service.worker.training --serve <answers fd>` (COMMAND) and
sends it one job at a time, a line `<experiment_id> <attempt>` on its stdin; the process trains
it and answers a line with the job's exit code on the `answers` pipe (or, one-shot, `python -m
service.worker.training <experiment_id> <attempt>` exits with that code). A line
`<experiment_id> evaluate` asks for the evaluation of the experiment's trained model instead
(service/worker/evaluation.py: its own exit codes). While a job runs, the
supervisor may send CANCEL_SIGNAL or DRAIN_SIGNAL; it stops the process with SIGKILL. An attempt
keeps its local files in `attempt_dir`, which the supervisor removes after a killed training.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

COMMAND = [sys.executable, "-m", "service.worker.training"]

# Exit codes: how a job ended.
EXIT_OK = 0
"""The training wrote the experiment's outcome (succeeded, failed, cancelled, pruned)."""
EXIT_USAGE = 2
EXIT_LOST_LEASE = 3
"""Another attempt holds the job: this one wrote nothing more."""
EXIT_DRAINED = 4
"""Stopped after a finished epoch because its worker shuts down: requeue, the attempt is free."""
EXIT_INFRASTRUCTURE = 75
"""The database, the store or the network failed (EX_TEMPFAIL): requeue, nothing was written."""
EXIT_EVALUATION_FAILED = 1
"""An evaluation failed, and its failure is recorded."""

# Stop: the training is recorded cancelled (killed after CANCEL_GRACE_SECONDS if it lingers).
CANCEL_SIGNAL = signal.SIGUSR1
# The worker shuts down: finish (checkpoint and record) the current epoch, then stop.
DRAIN_SIGNAL = signal.SIGUSR2

ANSWER_BYTES = 32
"""Room enough for one answer line."""


EVALUATE = "evaluate"


@dataclass(frozen=True)
class Job:
    """One attempt of one experiment, or its evaluation, as the job line names it."""

    experiment_id: str
    attempt: int | None
    """The attempt to train; None: evaluate the experiment's trained model."""

    def line(self) -> bytes:
        what = EVALUATE if self.attempt is None else self.attempt
        return f"{self.experiment_id} {what}\n".encode()

    @classmethod
    def parse(cls, line: bytes) -> Job:
        experiment_id, what = line.decode().split()
        return cls(experiment_id, None if what == EVALUATE else int(what))


def answer(code: int) -> bytes:
    return f"{code}\n".encode()


def read_answer(data: bytes) -> int | None:
    """The exit code an answer carries; None for the pipe's end (the process is gone)."""
    return int(data) if data else None


def attempt_dir(work_dir: str | Path, experiment_id: str, attempt: int) -> Path:
    """Where one attempt keeps its local files: WORK_DIR/<experiment id>/attempt-<n>."""
    return Path(work_dir) / experiment_id / f"attempt-{attempt}"


def remove_local_files(local_dir: Path, *, experiment_finished: bool = False) -> None:
    """Remove an ended attempt's local files; every attempt's once the experiment finished.

    While the experiment may still run, only this attempt's folder goes: workers on one machine
    may share a WORK_DIR, and the attempt that took over a lost lease may be training from the
    same experiment folder. Once this attempt has finished the experiment no attempt runs again,
    so the folders that killed attempts could not remove go too.
    """
    if experiment_finished:
        shutil.rmtree(local_dir.parent, ignore_errors=True)
        return
    shutil.rmtree(local_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another attempt still works in it
        local_dir.parent.rmdir()
