"""A warm training process per worker slot: the slot's end of the pipe between them.

Each slot keeps one `python -m service.worker.training --serve` (spawned, never forked; it dies
with its worker) and sends it one job at a time (protocol.py; serve.py is the process's end).

The supervisor keeps its role: whenever it must stop a training (lost lease, wall-time limit,
cancel grace, the end of a shutdown's grace) it kills the process, and if the process dies
mid-job its exit code settles the attempt as a dead one-shot process's would. Either way the
slot's next job gets a fresh process. One that trained TRAINING_PROCESS_JOBS jobs exits too,
and its replacement starts at once, so the slot's next job finds it warm.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.worker.lifeline import child_env, shielded_spawn
from service.worker.protocol import ANSWER_BYTES, COMMAND, EXIT_OK, Job, read_answer
from service.worker.title import ROOM

log = logging.getLogger(__name__)

# How long a process whose pipe was closed may take to exit before it is killed.
CLOSE_GRACE_SECONDS = 10.0


class TrainingHost:
    """The supervisor's end: one warm training process, trained one job at a time."""

    def __init__(self, process: subprocess.Popen[bytes], answers: int) -> None:
        self.process = process
        self._answers = answers
        self.jobs = 0
        """Jobs sent to it so far."""
        self._ended: int | None = EXIT_OK
        """How the last job sent ended; None while it runs."""
        self.idle_since = time.monotonic()
        """When it last became idle (started, or answered a job)."""

    @classmethod
    def start(cls) -> TrainingHost:
        """Spawn a warm training process; it dies with this process (and with this thread,
        the parent-death signal's unit: call it from the slot's own thread)."""
        answers, answers_there = os.pipe()
        with shielded_spawn():  # a signal to the whole service is its supervisor's to handle
            process = subprocess.Popen(
                [*COMMAND, "--serve", str(answers_there), ROOM],
                stdin=subprocess.PIPE,
                pass_fds=(answers_there,),
                env=child_env(),
            )
        os.close(answers_there)  # the child's copy is the only write end: its death is EOF
        log.debug("training process %s started", process.pid)
        return cls(process, answers)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def idle(self) -> bool:
        """Alive and not training: it may take the slot's next job."""
        return self._ended is not None and self.alive

    def send(self, experiment_id: str, attempt: int | None) -> bool:
        """Hand it a job; False when it cannot take one (it died, or it is busy)."""
        if not self.idle or self.process.stdin is None:
            return False
        try:
            self.process.stdin.write(Job(experiment_id, attempt).line())
            self.process.stdin.flush()
        except (OSError, ValueError):  # it died after the check: a broken (or closed) pipe
            return False
        self.jobs += 1
        self._ended = None
        return True

    def wait(self, timeout: float) -> int | None:
        """How the job ended, once it has: the process's answer, or, if it died, its own exit
        code (negative: killed by that signal); None while it still trains."""
        if self._ended is not None:
            return self._ended
        ready, _, _ = select.select([self._answers], [], [], timeout)
        if not ready:
            return None
        answered = read_answer(os.read(self._answers, ANSWER_BYTES))
        # No answer: the pipe's end, the process is gone, or going.
        self._ended = answered if answered is not None else self.process.wait()
        self.idle_since = time.monotonic()
        return self._ended

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def stop(self) -> int:
        """End the job now: its answer if it gave one already, else kill the process (it
        ignores SIGTERM, see lifeline.py) and end the job with its exit code."""
        answered = self.wait(0)
        if answered is not None:
            return answered
        kill(self.process)
        self._ended = self.process.returncode
        return self._ended

    def close(self) -> None:
        """Let it go: an idle process exits when its pipe closes; a busy or lingering one is
        killed."""
        if not self.idle:
            kill(self.process)
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            kill(self.process)
        with contextlib.suppress(OSError):
            os.close(self._answers)
        log.debug("training process %s closed after %d job(s)", self.pid, self.jobs)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL `process` and reap it."""
    if process.poll() is not None:
        return
    process.kill()
    process.wait()


class Hosts:
    """Each worker slot's warm training process, kept from one of its jobs to the next.

    Whoever takes a process out of the table closes it: its slot (after its last job, or when
    it died), or the worker's main thread (idle too long, or the worker stops); a slot sends a
    job only under the lock, so a process is never closed as it is handed one.
    """

    def __init__(self, *, jobs_per_host: int, idle_seconds: float) -> None:
        self.jobs_per_host = jobs_per_host
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._by_slot: dict[int, TrainingHost] = {}
        self._closed = False
        """The worker stops: no replacement starts any more."""

    def dispatch(self, experiment_id: str, attempt: int | None) -> TrainingHost:
        """Send the job to this slot's process, a fresh one if it has none or it died while
        idle. If even a fresh one cannot take it, that process's `wait` tells how it died."""
        slot = threading.get_ident()
        with self._lock:
            host = self._by_slot.pop(slot, None)
            if host is not None and host.send(experiment_id, attempt):
                self._by_slot[slot] = host
                return host
        if host is not None:
            log.warning(
                "training process %s is gone (exit code %s); starting another",
                host.pid,
                host.process.poll(),
            )
            host.close()
        host = TrainingHost.start()
        host.send(experiment_id, attempt)
        with self._lock:
            self._by_slot[slot] = host
        return host

    @contextmanager
    def job(self, experiment_id: str, attempt: int | None) -> Iterator[TrainingHost]:
        """The slot's process, sent the job (`dispatch`; attempt None: the experiment's
        evaluation); `release`d when the block ends."""
        host = self.dispatch(experiment_id, attempt)
        try:
            yield host
        finally:
            self.release(host)

    def release(self, host: TrainingHost) -> None:
        """After a job: keep the process for the slot's next one, unless it was stopped or
        died, or has trained `jobs_per_host` jobs. One that trained its share exits, and its
        replacement starts now, warming up while the slot hands its job over and claims the
        next, so that job finds it ready (a stopped or dead one is replaced when needed)."""
        if host.idle and host.jobs < self.jobs_per_host:
            return
        recycled = host.idle
        if not self._take_out(lambda slot, kept: kept is host):
            return  # the worker's main thread took it out (idle, or the worker stops)
        host.close()
        if recycled:
            self._start_replacement()

    def _start_replacement(self) -> None:
        slot = threading.get_ident()
        with self._lock:
            if self._closed or slot in self._by_slot:
                return
        try:
            replacement = TrainingHost.start()  # in the slot's thread: it dies with this thread
        except OSError:  # no memory or processes to spare now: the next job starts one
            log.exception("could not start the replacement training process")
            return
        with self._lock:
            if not self._closed and slot not in self._by_slot:
                self._by_slot[slot] = replacement
                return
        replacement.close()  # the worker stopped meanwhile

    def close_idle(self) -> None:
        """Let the processes go that waited `idle_seconds` for a job: an idle worker gives
        their memory back (about a gigabyte each), and the next job starts a fresh one."""
        deadline = time.monotonic() - self.idle_seconds
        for host in self._take_out(lambda slot, kept: kept.idle and kept.idle_since < deadline):
            log.info(
                "training process %s waited %g s for a job; closing it", host.pid, self.idle_seconds
            )
            host.close()

    def close(self) -> None:
        """Let every slot's process go (the worker stops)."""
        with self._lock:
            self._closed = True
        for host in self._take_out(lambda slot, kept: True):
            host.close()

    def _take_out(self, which: Callable[[int, TrainingHost], bool]) -> list[TrainingHost]:
        with self._lock:
            taken = {slot: host for slot, host in self._by_slot.items() if which(slot, host)}
            for slot in taken:
                del self._by_slot[slot]
        return list(taken.values())
