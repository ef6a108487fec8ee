"""Fault injection on the scaled setup: small experiments train through a series of faults.

PostgreSQL and Redis (local, as `bash .ci/run services` starts them) sit behind TCP proxies
that this script cuts and restores; an API and two workers (one slot each) reach them only
through the proxies. While small experiments train, it injects, one after another:

  kill -9 of a worker (a new one replaces it), SIGTERM of the other (it drains; a new one
  replaces it), a 5 s database outage, a 5 s Redis outage, an API restart,

each only once a training has recorded an epoch; whenever fewer than --backlog experiments
are unfinished before a fault, it submits more, so every fault lands while trainings run however
fast the machine is. Then it stops everything and checks: every experiment succeeded, each epoch
recorded exactly once, no two training processes of one experiment ever alive at once (sampled
from /proc every 0.1 s) nor two attempts' recorded intervals overlapping, and no process of the
run left behind. It prints the figures and exits non-zero when a check fails. Every wait is
bounded, and the whole run by --timeout: a wait that runs out says what it waited for and what
it saw, and the run's logs are kept. CI's scaled step runs a small one.

    PYTHONPATH=. python bench/faults.py
    PYTHONPATH=. python bench/faults.py --experiments 4 --epochs 2 --timeout 300

It uses the benchmarks' own database and Redis database (BENCH_DATABASE_URL, BENCH_QUEUE_URL,
as bench/scale.py), emptied first.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, free_port, start
from scale import DATABASE_URL, MNIST_PATH, QUEUE_URL, reset_database
from sqlalchemy.engine import make_url

sys.path.insert(0, str(REPO))
from tests.tcp_proxy import TcpProxy  # the repository root is on the path now

RUN_MARKER = "FAULT_RUN"
START_TIMEOUT = 120.0
# A fresh worker's cold TensorFlow start and one epoch, on a loaded machine.
FAULT_WAIT_SECONDS = 300.0
RUN_TIMEOUT = 900.0
STOP_SECONDS = 60.0
OUTAGE_SECONDS = 5.0
PAUSE_SECONDS = 4.0
SAMPLE_SECONDS = 0.1
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 30.0
UNFINISHED = ("queued", "running")
TRAINING = "service.worker.training"


def spec(name: str, epochs: int) -> dict[str, Any]:
    """Epochs of a second or so: each experiment lives through a fault or two."""
    return {
        "name": name,
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {"optimizer": "Adam"},
        "fit": {"epochs": epochs, "batch_size": 32, "train_size": 8000, "validation_size": 1000},
    }


# Processes of this run ---------------------------------------------------------------------------


def _run_processes(token: str) -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of the live processes whose environment carries the
    run's marker (every process the run started, and everything they started)."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if f"{RUN_MARKER}={token}".encode() not in (entry / "environ").read_bytes().split(
                b"\0"
            ):
                continue
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state not in ("Z", "X"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found[int(entry.name)] = (int(ppid), cmdline)
    return found


@dataclass
class Life:
    """One attempt's training as the sampler saw it (a warm process trains several, one after
    another, each under its own command line)."""

    experiment_id: str
    attempt: int
    first: float
    last: float


@dataclass
class Sampler:
    """Samples the run's training processes every SAMPLE_SECONDS, in a thread."""

    token: str
    lives: dict[tuple[int, str, int], Life] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            now = time.monotonic()
            processes = _run_processes(self.token)
            for pid, (ppid, cmdline) in processes.items():
                words = cmdline.split()
                # A fork of a training that has not exec'd yet (TensorFlow runs `uname`) shows
                # its parent's command line: only the training itself counts.
                if TRAINING not in words or TRAINING in processes.get(ppid, (0, ""))[1]:
                    continue
                job = words[words.index(TRAINING) + 1 :][:2]
                if len(job) < 2 or job[0] == "--serve":  # a warm process between jobs
                    continue
                experiment_id, attempt = job
                key = (pid, experiment_id, int(attempt))
                life = self.lives.setdefault(key, Life(experiment_id, int(attempt), now, now))
                life.last = now

    def overlaps(self) -> list[str]:
        """Two training processes of one experiment seen alive in the same sample window."""
        found = []
        by_experiment: dict[str, list[Life]] = {}
        for life in self.lives.values():
            by_experiment.setdefault(life.experiment_id, []).append(life)
        for experiment_id, lives in by_experiment.items():
            lives.sort(key=lambda life: life.first)
            for before, after in itertools.pairwise(lives):
                if after.first <= before.last:
                    found.append(
                        f"{experiment_id}: attempts {before.attempt} and {after.attempt} overlap"
                    )
        return found


class TimedOut(Exception):
    """A wait of the run ran out; the message says what it waited for and what it saw."""


class Run:
    """The API, the workers and the proxies of one fault-injection run."""

    def __init__(self, root: Path, epochs: int, *, backlog: int, timeout: float) -> None:
        self.root = root
        self.epochs = epochs
        self.backlog = backlog
        self.deadline = time.monotonic() + timeout
        self.ids: list[str] = []
        self.token = uuid.uuid4().hex
        self.port = free_port()
        database = make_url(DATABASE_URL)
        queue = make_url(QUEUE_URL)
        self.db_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
        self.redis_proxy = TcpProxy(queue.host or "127.0.0.1", queue.port or 6379)
        self.database_url = database.set(
            host="127.0.0.1", port=self.db_proxy.port
        ).render_as_string(hide_password=False)
        self.queue_url = str(queue.set(host="127.0.0.1", port=self.redis_proxy.port))
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.events: list[tuple[float, str]] = []
        self.began = time.monotonic()
        self.sampler = Sampler(self.token)
        self._names = 0

    def wait(
        self,
        predicate: Callable[[], Any],
        *,
        bound: float,
        what: str,
        seen: Callable[[], str] | None = None,
    ) -> Any:
        """The predicate's first truthy value, within `bound` seconds and the run's deadline;
        says every PROGRESS_SECONDS what it still waits for, and raises TimedOut naming it
        (with `seen()`, what it saw last) when none comes."""
        began = time.monotonic()
        deadline = min(began + bound, self.deadline)
        said = began
        while True:
            value = predicate()
            if value:
                return value
            now = time.monotonic()
            if now > deadline:
                limit = "the run's --timeout" if deadline == self.deadline else f"{bound:.0f} s"
                detail = f"; {seen()}" if seen else ""
                raise TimedOut(
                    f"gave up after {now - began:.0f} s ({limit}) waiting for {what}{detail}"
                )
            if now - said >= PROGRESS_SECONDS:
                said = now
                self.note(f"still waiting for {what}" + (f": {seen()}" if seen else ""))
            time.sleep(POLL_SECONDS)

    def note(self, event: str) -> None:
        self.events.append((time.monotonic() - self.began, event))
        print(f"  {time.monotonic() - self.began:6.1f} s  {event}", flush=True)

    def env(self, **values: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            QUEUE_URL=self.queue_url,
            MODELS_DIR=str(self.root / "models"),
            MNIST_PATH=MNIST_PATH,
            PORT=str(self.port),
            LEASE_SECONDS="10",
            HEARTBEAT_SECONDS="2",
            SWEEP_SECONDS="2",
            SHUTDOWN_GRACE_SECONDS="30",
            TRAINING_THREADS="1",
            WORKER_SLOTS="1",
            LOG_LEVEL="INFO",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(REPO),
            **{RUN_MARKER: self.token},
            **values,
        )
        return env

    def start_api(self) -> None:
        self._names += 1
        env = self.env(WORK_DIR=str(self.root / "api-work"))
        log = self.root / f"api-{self._names}.log"
        self.api = start([sys.executable, "-m", "service", "api"], env, log)
        self.wait(self._healthy, bound=START_TIMEOUT, what=f"the API to answer (log: {log})")

    def _healthy(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> str:
        self._names += 1
        label = f"worker-{self._names}"
        env = self.env(WORK_DIR=str(self.root / f"work-{label}"), WORKER_LABEL=label)
        log = self.root / f"{label}.log"
        self.workers[label] = start([sys.executable, "-m", "service", "worker"], env, log)
        self.wait(
            lambda: f"worker {label}:" in log.read_text(errors="replace"),
            bound=START_TIMEOUT,
            what=f"{label} to start (log: {log})",
        )
        return label

    def get(self, path: str) -> Any:
        """GET through outages and restarts: retried until it answers."""

        def answer() -> Any:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = self.http.get(path)
                if response.status_code == 200:
                    return response.json()
            return None

        return self.wait(answer, bound=START_TIMEOUT, what=f"GET {path} to answer 200")

    def submit(self, count: int) -> None:
        """`count` more experiments; each POST retried (with its Idempotency-Key, so a retry
        creates nothing twice) until it answers 202."""
        for _ in range(count):
            name = f"fault-{len(self.ids)}"

            def post(name: str = name) -> str | None:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    response = self.http.post(
                        "/experiments",
                        json=spec(name, self.epochs),
                        headers={"Idempotency-Key": f"{self.token}-{name}"},
                    )
                    if response.status_code == 202:
                        experiment_id: str = response.json()["id"]
                        return experiment_id
                return None

            self.ids.append(self.wait(post, bound=START_TIMEOUT, what=f"POST of {name}"))

    def counts(self) -> dict[str, int]:
        """How many experiments are queued and running."""
        return {
            status: self.get(f"/experiments?status={status}&limit=1")["count"]
            for status in UNFINISHED
        }

    def training_worker(self) -> str | None:
        """A worker that has a training running which recorded an epoch, if any."""
        for experiment in self.get("/experiments?status=running&limit=50")["data"]:
            if experiment["epochs_done"] >= 1 and experiment["worker"] in self.workers:
                worker: str = experiment["worker"]
                return worker
        return None

    def await_training(self, fault: str) -> str:
        """A worker with a training that recorded an epoch, submitting more experiments whenever
        fewer than the backlog are unfinished (a fast machine finishes the first ones early)."""

        def ready() -> str | None:
            unfinished = sum(self.counts().values())
            if unfinished < self.backlog:
                self.submit(self.backlog - unfinished)
                self.note(f"{self.backlog - unfinished} more submitted ({len(self.ids)} in all)")
            return self.training_worker()

        def seen() -> str:
            return f"experiments {self.counts()}, workers {sorted(self.workers)}"

        worker: str = self.wait(
            ready,
            bound=FAULT_WAIT_SECONDS,
            what=f"a training with an epoch done, before the {fault}",
            seen=seen,
        )
        return worker

    def finished(self) -> bool:
        return not any(self.counts().values())

    # Faults ------------------------------------------------------------------------------------
    def kill_worker(self, label: str) -> None:
        process = self.workers.pop(label)
        trainings = [
            pid for pid, (ppid, _) in _run_processes(self.token).items() if ppid == process.pid
        ]
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.note(f"kill -9 {label} (trainings {trainings})")
        self.wait(
            lambda: not set(trainings) & set(_run_processes(self.token)),
            bound=10,
            what=f"the trainings of the killed {label} to exit",
        )
        self.note(f"{label}'s trainings gone; {self.start_worker()} started")

    def terminate_worker(self, label: str) -> None:
        process = self.workers.pop(label)
        process.send_signal(signal.SIGTERM)
        self.note(f"SIGTERM {label}")
        self.wait_exit(process, f"{label} to drain and exit after SIGTERM")
        self.note(
            f"{label} drained and exited ({process.returncode}); {self.start_worker()} started"
        )

    def outage(self, proxy: TcpProxy, what: str) -> None:
        self.note(f"{what} cut for {OUTAGE_SECONDS:g} s")
        proxy.cut_for(OUTAGE_SECONDS)
        self.note(f"{what} restored")

    def restart_api(self) -> None:
        assert self.api is not None
        self.api.send_signal(signal.SIGTERM)
        self.wait_exit(self.api, "the API to exit after SIGTERM")
        self.note("API stopped")
        self.start_api()
        self.note("API restarted")

    def wait_exit(self, process: subprocess.Popen[bytes], what: str) -> None:
        self.wait(lambda: process.poll() is not None, bound=STOP_SECONDS, what=what)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.api]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers.values(), self.api]:
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_SECONDS)
        self.http.close()
        self.db_proxy.close()
        self.redis_proxy.close()


# Each fault, by name, given the worker of a training that has recorded an epoch.
FAULTS: list[tuple[str, Callable[[Run, str], None]]] = [
    ("kill -9 of a worker", lambda run, worker: run.kill_worker(worker)),
    ("SIGTERM of a worker", lambda run, worker: run.terminate_worker(worker)),
    ("database outage", lambda run, _: run.outage(run.db_proxy, "PostgreSQL")),
    ("Redis outage", lambda run, _: run.outage(run.redis_proxy, "Redis")),
    ("API restart", lambda run, _: run.restart_api()),
]


def inject(run: Run) -> None:
    for name, fault in FAULTS:
        fault(run, run.await_training(name))
        time.sleep(PAUSE_SECONDS)


def check(run: Run) -> list[str]:
    """Every failed check, as a sentence; prints the figures."""
    problems: list[str] = []
    ids = run.ids
    experiments = [run.get(f"/experiments/{experiment_id}") for experiment_id in ids]
    statuses = Counter(experiment["status"] for experiment in experiments)
    attempts = Counter(len(experiment["attempts"]) for experiment in experiments)
    endings = Counter(
        attempt["outcome"].split(":")[0]
        for experiment in experiments
        for attempt in experiment["attempts"]
    )
    epochs = 0
    for experiment in experiments:
        if experiment["status"] != "succeeded":
            problems.append(f"{experiment['id']} {experiment['status']}: {experiment['error']}")
        history = run.get(f"/experiments/{experiment['id']}/history")["epochs"]
        epochs += len(history)
        if [epoch["epoch"] for epoch in history] != list(range(1, run.epochs + 1)):
            problems.append(f"{experiment['id']}: epochs {[e['epoch'] for e in history]}")
        spans = [
            (
                datetime.fromisoformat(a["started_at"]),
                a["ended_at"] and datetime.fromisoformat(a["ended_at"]),
            )
            for a in experiment["attempts"]
        ]
        for (_, ended), (started, _) in itertools.pairwise(spans):
            if ended is None or ended > started:
                problems.append(f"{experiment['id']}: recorded attempts overlap {spans}")
    problems.extend(run.sampler.overlaps())
    print(f"\nexperiments      {dict(statuses)} of {len(ids)}")
    print(f"epochs recorded  {epochs} (expected {len(ids) * run.epochs}, each exactly once)")
    print(f"attempts per experiment  {dict(sorted(attempts.items()))}")
    print(f"attempt endings  {dict(endings)}")
    for experiment in experiments:
        for attempt in experiment["attempts"][:-1]:
            print(f"  {experiment['name']} attempt {attempt['number']}: {attempt['outcome']}")
    print(f"trainings seen  {len(run.sampler.lives)}; overlaps {len(run.sampler.overlaps())}")
    return problems


def _stopped(signum: int, _frame: object) -> None:
    raise TimedOut(f"the script itself was stopped ({signal.Signals(signum).name})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=12, help="submitted at the start")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--backlog",
        type=int,
        default=4,
        help="before each fault, submit more while fewer experiments than this are unfinished",
    )
    parser.add_argument(
        "--timeout", type=float, default=RUN_TIMEOUT, help="seconds the whole run may take"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stopped)  # from `timeout` or CI: clean up all the same
    reset_database(DATABASE_URL)
    with tempfile.TemporaryDirectory(prefix="faults-") as folder:
        root = Path(folder)
        subprocess.run(
            [sys.executable, "-m", "service", "migrate"],
            env={**os.environ, "DATABASE_URL": DATABASE_URL, "PYTHONPATH": str(REPO)},
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        run = Run(root, args.epochs, backlog=args.backlog, timeout=args.timeout)
        problems: list[str] = []
        try:
            run.start_api()
            first, second = run.start_worker(), run.start_worker()
            run.sampler.start()
            run.submit(args.experiments)
            run.note(f"{len(run.ids)} experiments submitted; workers {first}, {second}")
            inject(run)
            run.wait(
                run.finished,
                bound=args.timeout,
                what="every experiment to finish",
                seen=lambda: f"experiments {run.counts()} of {len(run.ids)}",
            )
            run.note(f"every experiment finished ({len(run.ids)})")
            problems = check(run)
        except TimedOut as timed_out:
            run.note(f"TIMED OUT: {timed_out}")
            problems = [str(timed_out)]
        finally:
            run.stop()
            run.sampler.stopped.set()
        time.sleep(1)
        left = _run_processes(run.token)
        print(f"processes left behind  {len(left)}")
        problems.extend(f"orphan {pid}: {cmd}" for pid, (_, cmd) in left.items())
        for pid in left:  # reported above; not left running after the script
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        print(f"wall time  {time.monotonic() - run.began:.0f} s")
        for problem in problems:
            print(f"FAILED: {problem}")
        if problems:
            shutil.copytree(root, f"{root}-kept")
            print(f"logs: {root}-kept (kept: the run failed)")
        print("ok" if not problems else f"{len(problems)} check(s) failed")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
