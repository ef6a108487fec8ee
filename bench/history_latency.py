"""Latency of GET /experiments/{id}/history while two worker slots train, against a quiet baseline.

Starts `python -m service` (API + embedded worker with 2 slots) on temporary files, measures the
reads once with nothing training, then again while queued jobs train, and prints p50/p99/max
and requests per second for both. Cleans up and exits by itself.

    MNIST_PATH=../shared/data/mnist.npz python bench/history_latency.py --requests 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, Figures, free_port, load, running, service_env, wait

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
FINISHED = ("succeeded", "failed", "cancelled")


def job_spec(epochs: int) -> dict[str, Any]:
    """Epochs of a second or two each: long enough to keep both slots busy while we measure."""
    return {
        "name": "history-latency",
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 128, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {"optimizer": {"type": "Adam"}},
        "fit": {"epochs": epochs, "batch_size": 32, "train_size": 20_000, "validation_size": 2000},
    }


@contextmanager
def service(workdir: Path, *, slots: int, mnist: str) -> Iterator[tuple[str, Path]]:
    """`python -m service` on temporary files; yields its base URL and its log file."""
    port = free_port()
    env = service_env(workdir, mnist=mnist, port=port, WORKER_SLOTS=str(slots))
    log_path = workdir / "service.log"
    with running([sys.executable, "-m", "service"], env, log_path):
        yield f"http://127.0.0.1:{port}", log_path


def hammer(base_url: str, ids: list[str], *, requests: int, clients: int, label: str) -> Figures:
    """`requests` GETs of these experiments' histories, in turn, over `clients` connections."""

    def send(http: httpx.Client, number: int) -> httpx.Response:
        return http.get(f"/experiments/{ids[number % len(ids)]}/history")

    return load(base_url, send, total=requests, clients=clients, label=label)


def running_count(http: httpx.Client) -> int:
    count: int = http.get("/experiments", params={"status": "running", "limit": 1}).json()["count"]
    return count


def epochs_recorded(http: httpx.Client, ids: list[str]) -> int:
    return sum(len(http.get(f"/experiments/{i}/history").json()["epochs"]) for i in ids)


@contextmanager
def sampling(measure: Callable[[], int], every: float = 0.5) -> Iterator[list[int]]:
    """Call `measure` every `every` seconds in the background; the values, once the block ends."""
    values: list[int] = []
    stopped = threading.Event()

    def run() -> None:
        while not stopped.is_set():
            values.append(measure())
            stopped.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield values
    finally:
        stopped.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="GETs per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--jobs", type=int, default=6, help="jobs queued for the loaded run")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per queued job")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="history-latency-") as tmp,
        service(Path(tmp), slots=args.slots, mnist=args.mnist) as (base_url, log_path),
        httpx.Client(base_url=base_url, timeout=120) as http,
    ):

        def up() -> bool:
            try:
                return http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait(up, timeout=180, what=f"the service to start (log: {log_path})")

        def submit(epochs: int) -> str:
            response = http.post("/experiments", json=job_spec(epochs))
            if response.status_code != 202:
                raise SystemExit(f"POST /experiments: {response.status_code} {response.text}")
            experiment_id: str = response.json()["id"]
            return experiment_id

        def status(experiment_id: str) -> str:
            value: str = http.get(f"/experiments/{experiment_id}").json()["status"]
            return value

        # Baseline: a finished experiment's history, with nothing training.
        done = submit(epochs=2)
        wait(lambda: status(done) in FINISHED, timeout=600, what="the baseline job")
        wait(
            lambda: http.get("/health").json()["checks"]["pending_jobs"] == 0,
            timeout=60,
            what="an empty queue",
        )
        time.sleep(2)  # let its training process exit
        quiet = hammer(
            base_url,
            [done],
            requests=args.requests,
            clients=args.clients,
            label="idle (no training)",
        )

        # Loaded: the same reads, spread over the jobs, while both slots train.
        ids = [submit(args.epochs) for _ in range(args.jobs)]

        def training() -> int:
            running = [i for i in ids if status(i) == "running"]
            epochs = sum(
                len(http.get(f"/experiments/{i}/history").json()["epochs"]) for i in running
            )
            return len(running) if len(running) == args.slots and epochs > 0 else 0

        wait(training, timeout=600, what=f"{args.slots} jobs to be training")
        epochs_before = epochs_recorded(http, ids)
        with sampling(lambda: running_count(http)) as running:
            loaded = hammer(
                base_url,
                [done, *ids],
                requests=args.requests,
                clients=args.clients,
                label=f"while {args.slots} slots train",
            )
        epochs_during = epochs_recorded(http, ids) - epochs_before
        for experiment_id in ids:
            if status(experiment_id) not in FINISHED:
                http.post(f"/experiments/{experiment_id}/cancel")

    print(
        f"GET /experiments/{{id}}/history, {args.clients} concurrent clients, "
        f"{args.requests} requests each run, {os.cpu_count()} CPUs"
    )
    print(quiet.line(width=22))
    print(loaded.line(width=22))
    print(
        f"during the loaded run: {epochs_during} epochs recorded, jobs running "
        f"min {min(running)} / mean {statistics.mean(running):.1f} of {args.slots} slots "
        f"({len(running)} samples); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
