"""Latency of GET /experiments/{id}/history while two worker slots train, against a quiet baseline.

Starts `python -m service` (API + embedded worker with 2 slots) on temporary files. wrk (compiled,
so the load generator does not compete as a second Python for the CPUs) reads the histories
with nothing training, then while queued jobs train; the slots' epochs per minute are counted
with no reads and during the reads, so the training's cost of staying responsive shows too.
Prints p50/p99/max and requests per second. `--env NAME=VALUE` passes a setting to the service
(e.g. TRAINING_NICENESS=0 for an untuned comparison). Needs `wrk` (apt-get install -y wrk).

    MNIST_PATH=../shared/data/mnist.npz python bench/history_latency.py
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from harness import REPO, Run, free_port, running, service_env, wait, wrk

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
def service(
    workdir: Path, *, slots: int, mnist: str, extra: dict[str, str]
) -> Iterator[tuple[str, Path]]:
    """`python -m service` on temporary files; yields its base URL and its log file."""
    port = free_port()
    env = service_env(workdir, mnist=mnist, port=port, WORKER_SLOTS=str(slots), **extra)
    log_path = workdir / "service.log"
    with running([sys.executable, "-m", "service"], env, log_path):
        yield f"http://127.0.0.1:{port}", log_path


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


def epoch_rate(http: httpx.Client, ids: list[str], seconds: float) -> float:
    """Epochs the slots record per minute over the next `seconds`."""
    before = epochs_recorded(http, ids)
    time.sleep(seconds)
    return (epochs_recorded(http, ids) - before) * 60 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--jobs", type=int, default=4, help="jobs queued for the loaded runs")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per queued job")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra service setting, e.g. TRAINING_NICENESS=0 for the untuned comparison",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    extra = dict(item.split("=", 1) for item in args.env)

    with (
        tempfile.TemporaryDirectory(prefix="history-latency-") as tmp,
        service(Path(tmp), slots=args.slots, mnist=args.mnist, extra=extra) as (url, log_path),
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        workdir = Path(tmp)

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

        def reads(label: str, ids: list[str]) -> Run:
            return wrk(
                url,
                paths=[f"/experiments/{i}/history" for i in ids],
                connections=args.clients,
                seconds=args.seconds,
                label=label,
                scratch=workdir,
            )

        # Baseline: a finished experiment's history, with nothing training.
        done = submit(epochs=2)
        wait(lambda: status(done) in FINISHED, timeout=600, what="the baseline job")
        wait(
            lambda: http.get("/health").json()["checks"]["pending_jobs"] == 0,
            timeout=60,
            what="an empty queue",
        )
        time.sleep(2)  # let its training process exit
        reads("warm-up", [done])
        quiet = reads("idle (no training)", [done])

        # Loaded: the same reads, spread over the jobs, while the slots train.
        ids = [submit(args.epochs) for _ in range(args.jobs)]

        def training() -> int:
            running = [i for i in ids if status(i) == "running"]
            epochs = sum(
                len(http.get(f"/experiments/{i}/history").json()["epochs"]) for i in running
            )
            return len(running) if len(running) == args.slots and epochs > 0 else 0

        wait(training, timeout=600, what=f"{args.slots} jobs to be training")
        alone = epoch_rate(http, ids, args.seconds)
        before = epochs_recorded(http, ids)
        with sampling(lambda: running_count(http)) as running:
            loaded = reads(f"while {args.slots} slots train", [done, *ids])
        during = (epochs_recorded(http, ids) - before) * 60 / args.seconds
        for experiment_id in ids:
            if status(experiment_id) not in FINISHED:
                http.post(f"/experiments/{experiment_id}/cancel")

    settings = " ".join(args.env) or "defaults"
    print(
        f"\nGET /experiments/{{id}}/history with wrk, {args.clients} connections, "
        f"{args.seconds:g} s per run, {os.cpu_count()} CPUs, service settings: {settings}"
    )
    print(quiet.line(width=22))
    print(loaded.line(width=22))
    print(
        f"training: {alone:.1f} epochs/min with no reads, {during:.1f} while read "
        f"({during / alone:.0%}); jobs running min {min(running)} / mean "
        f"{statistics.mean(running):.1f} of {args.slots} slots; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
