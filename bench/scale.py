"""Scale-out on PostgreSQL + Redis: jobs per minute with one worker and with two, and dispatch.

Starts a lone API (`python -m service api`) and lone workers (`python -m service worker`), each
worker pinned to one core with `taskset` and training with one thread, queues small one-epoch
jobs, and prints jobs finished per minute for each configuration, their ratio, and the
dispatch latency (POST /experiments to status running) with an idle worker.

    python bench/scale.py                   # 12 jobs per configuration, 5 latency samples
    python bench/scale.py --jobs 6 --samples 3

It never touches the test database or queue: it uses its own PostgreSQL database (created if
absent, emptied before each configuration) and Redis database 1. Set BENCH_DATABASE_URL /
BENCH_QUEUE_URL to point elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, empty_postgres, free_port, start, stop, wait
from sqlalchemy.engine import make_url

from service.jobs.queue import JobQueue

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
)
QUEUE_URL = os.environ.get("BENCH_QUEUE_URL", "redis://127.0.0.1:6379/1")
MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
# Small: a cold TensorFlow start, one short epoch and an evaluation, as a CI job would be.
SPEC: dict[str, Any] = {
    "name": "bench-scale",
    "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
    "compile": {
        "optimizer": {"type": "Adam"},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 1, "batch_size": 64, "train_size": 1000, "validation_size": 500},
}
FINISHED = ("succeeded", "failed", "cancelled")
START_TIMEOUT = 120.0
JOB_TIMEOUT = 600.0


# The database and queue of the benchmark -----------------------------------------------------


def reset_database(url: str) -> None:
    """Create the benchmark database if absent, then empty it (the API migrates it again)."""
    target = make_url(url)
    if not target.get_backend_name().startswith("postgresql"):
        raise SystemExit(f"BENCH_DATABASE_URL must be PostgreSQL, not {url!r}")
    empty_postgres(url)
    JobQueue(QUEUE_URL).flush()


# Processes -------------------------------------------------------------------------------------


class Deployment:
    """A lone API and lone workers, started from this script and killed when it leaves."""

    def __init__(self, root: Path, http: httpx.Client, port: int) -> None:
        self.root = root
        self.http = http
        self.port = port
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.workers: dict[str, int] = {}

    def env(self, **values: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=DATABASE_URL,
            QUEUE_URL=QUEUE_URL,
            MODELS_DIR=str(self.root / "models"),
            MNIST_PATH=MNIST_PATH,
            PORT=str(self.port),
            LOG_LEVEL="INFO",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONUNBUFFERED="1",
            **values,
        )
        return env

    def _start(self, command: list[str], env: dict[str, str], name: str) -> Path:
        log = self.root / f"{name}.log"
        # One group per process: stopping a worker takes its trainings along.
        self.processes.append((start(command, env, log), log))
        return log

    def start_api(self) -> None:
        env = self.env(WORK_DIR=str(self.root / "api-work"))
        log = self._start([sys.executable, "-m", "service", "api"], env, "api")

        def healthy() -> bool:
            self.check_alive()
            try:
                return self.http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait(healthy, timeout=START_TIMEOUT, what=f"the API (log: {log})")

    def start_worker(self, core: int) -> str:
        """A worker pinned to `core`; its training processes inherit the pinning."""
        label = f"bench-core{core}"
        env = self.env(
            WORK_DIR=str(self.root / f"work-{label}"),
            WORKER_LABEL=label,
            WORKER_SLOTS="1",
            TRAINING_THREADS="1",
        )
        command = ["taskset", "-c", str(core), sys.executable, "-m", "service", "worker"]
        log = self._start(command, env, label)
        self.workers[label] = self.processes[-1][0].pid

        def consuming() -> bool:
            self.check_alive()
            return f"worker {label}:" in log.read_text(errors="replace")

        wait(consuming, timeout=START_TIMEOUT, what=f"worker {label} (log: {log})")
        return label

    def idle(self) -> bool:
        """No worker has a training process left (one that wrote its outcome may still be
        tearing TensorFlow down). Each worker leads its own process group, its trainings in it."""
        groups = set(self.workers.values())
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                pid = int(stat.parent.name)
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) in groups and pid not in groups:
                    return False
        return True

    def check_alive(self) -> None:
        for process, log in self.processes:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{log.name}: exited with {process.returncode}\n{tail}")

    def submit(self) -> str:
        created = self.http.post("/experiments", json=SPEC)
        created.raise_for_status()
        experiment_id: str = created.json()["id"]
        return experiment_id

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        self.check_alive()
        body: dict[str, Any] = self.http.get(f"/experiments/{experiment_id}").json()
        return body

    def wait_all(self, ids: list[str]) -> list[dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + JOB_TIMEOUT * len(ids)
        while len(done) < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"jobs did not finish: {sorted(set(ids) - set(done))}")
            for experiment_id in ids:
                if experiment_id not in done:
                    body = self.experiment(experiment_id)
                    if body["status"] in FINISHED:
                        done[experiment_id] = body
            time.sleep(0.25)
        return [done[i] for i in ids]

    def stop(self) -> None:
        for process, _ in self.processes:
            stop(process)


@contextlib.contextmanager
def deployment(workers: list[int]) -> Iterator[Deployment]:
    """A fresh database, an API, and one pinned worker per core in `workers`, all warm."""
    reset_database(DATABASE_URL)
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-") as root,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):
        running = Deployment(Path(root), http, port)
        try:
            running.start_api()
            for core in workers:
                running.start_worker(core)
            yield running
        finally:
            running.stop()


# Measurements ----------------------------------------------------------------------------------


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def throughput(cores: list[int], jobs: int) -> float:
    """Jobs per minute, from the first job's creation to the last one's end (server times)."""
    with deployment(cores) as running:
        ids = [running.submit() for _ in range(jobs)]
        finished = running.wait_all(ids)
    failed = [e["id"] for e in finished if e["status"] != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} job(s) did not succeed: {failed}")
    span = max(_at(e["finished_at"]) for e in finished) - min(
        _at(e["created_at"]) for e in finished
    )
    per_minute = jobs / (span.total_seconds() / 60)
    by_worker: dict[str, int] = {}
    for experiment in finished:
        by_worker[experiment["worker"]] = by_worker.get(experiment["worker"], 0) + 1
    print(
        f"  {len(cores)} worker(s) on core(s) {cores}: {jobs} jobs in "
        f"{span.total_seconds():.1f} s = {per_minute:.2f} jobs/min  (per worker: {by_worker})"
    )
    return per_minute


def dispatch_latency(samples: int) -> tuple[list[float], list[float]]:
    """POST -> running as a client sees it, and created_at -> started_at (the claim)."""
    observed: list[float] = []
    claimed: list[float] = []
    with deployment([0]) as running:
        for _ in range(samples):
            # Idle means no training process left, not merely the last outcome written.
            wait(running.idle, timeout=JOB_TIMEOUT, what="the worker to be idle")
            time.sleep(1.0)  # and back in its blocking read of the queue
            posted = time.perf_counter()
            experiment_id = running.submit()
            while running.experiment(experiment_id)["status"] == "queued":
                time.sleep(0.005)
            observed.append(time.perf_counter() - posted)
            (experiment,) = running.wait_all([experiment_id])
            claimed.append(
                (_at(experiment["started_at"]) - _at(experiment["created_at"])).total_seconds()
            )
    print(f"  samples (s): client {_rounded(observed)}, claim {_rounded(claimed)}")
    return observed, claimed


def _rounded(seconds: list[float]) -> list[float]:
    return [round(value, 3) for value in seconds]


def _summary(seconds: list[float]) -> str:
    return f"p50 {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=12, help="jobs per configuration")
    parser.add_argument("--samples", type=int, default=5, help="dispatch latency samples")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: each worker is pinned to its own")

    print(f"database {DATABASE_URL}, queue {QUEUE_URL}, load average {os.getloadavg()}")
    print(f"throughput, {args.jobs} one-epoch jobs on {SPEC['fit']['train_size']} images:")
    one = throughput([0], args.jobs)
    two = throughput([0, 1], args.jobs)
    print(f"  two workers / one worker: {two / one:.2f}x")

    observed, claimed = dispatch_latency(args.samples)
    print(f"dispatch latency with an idle worker, {args.samples} samples:")
    print(f"  POST /experiments -> status running (client): {_summary(observed)}")
    print(f"  created_at -> started_at (the claim):          {_summary(claimed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
