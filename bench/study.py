"""The `optimizers` study preset end to end: wall time with one and with two worker slots, and
how much of each trial is process start-up rather than training.

Runs the service on its embedded defaults (`python -m service`: API and one worker, SQLite)
in a temporary folder, posts the preset with `max_parallel` equal to the slots, and waits for
the study to finish. Per trial, "training" is the sum of its epochs' seconds and "start-up and
the rest" is the rest of its running time (a fresh interpreter importing TensorFlow, loading
MNIST, building the model, then evaluating and saving it).

    python bench/study.py                               # epochs 3, train_size 10000
    python bench/study.py --epochs 1 --train-size 2000  # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, free_port, running, wait

MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
START_TIMEOUT = 120.0
STUDY_TIMEOUT = 3600.0


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_study(slots: int, *, epochs: int, train_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-study-") as folder:
        root = Path(folder)
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{root / 'service.db'}",
            QUEUE_URL=f"sqlite:///{root / 'queue.db'}",
            MODELS_DIR=str(root / "models"),
            WORK_DIR=str(root / "work"),
            MNIST_PATH=MNIST_PATH,
            PORT=str(port),
            WORKER_SLOTS=str(slots),
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        with (
            running([sys.executable, "-m", "service"], env, root / "service.log"),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
        ):

            def healthy() -> bool:
                try:
                    return http.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait(healthy, timeout=START_TIMEOUT, what="the service")
            started = time.perf_counter()
            body = {
                "preset": "optimizers",
                "epochs": epochs,
                "train_size": train_size,
                "max_parallel": slots,
            }
            created = http.post("/studies", json=body)
            created.raise_for_status()
            study_id = created.json()["id"]

            def finished() -> dict[str, Any] | None:
                study: dict[str, Any] = http.get(f"/studies/{study_id}").json()
                return study if study["status"] != "running" else None

            study = wait(finished, timeout=STUDY_TIMEOUT, what="the study")
            wall = time.perf_counter() - started
            running_seconds, training_seconds = [], []
            for row in study["leaderboard"]:
                trial = http.get(f"/experiments/{row['experiment_id']}").json()
                epochs_done = http.get(f"/experiments/{row['experiment_id']}/history").json()
                running_seconds.append(_seconds(trial["started_at"], trial["finished_at"]))
                training_seconds.append(sum(e["seconds"] for e in epochs_done["epochs"]))
            print(
                f"  {slots} slot(s): leaderboard "
                + ", ".join(
                    f"{row['label']} {row['objective']:.3f}" for row in study["leaderboard"]
                )
            )
    return {
        "wall": wall,
        "trial": statistics.mean(running_seconds),
        "training": statistics.mean(training_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10000)
    args = parser.parse_args()
    print(f"optimizers preset: 8 trials, epochs {args.epochs}, train_size {args.train_size}")
    results = {
        slots: run_study(slots, epochs=args.epochs, train_size=args.train_size) for slots in (1, 2)
    }
    for slots, figures in results.items():
        rest = figures["trial"] - figures["training"]
        print(
            f"{slots} slot(s): wall {figures['wall']:.1f} s; per trial {figures['trial']:.1f} s "
            f"running, of which training {figures['training']:.1f} s and start-up and the rest "
            f"{rest:.1f} s ({rest / figures['trial']:.0%})"
        )
    print(f"two slots vs one: {results[1]['wall'] / results[2]['wall']:.2f}x")


if __name__ == "__main__":
    main()
