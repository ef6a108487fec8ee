"""A class on one server: one heavy person queues many small jobs, then everyone else queues
one. How long does each light person wait, first come first served vs fair share?

Per mode (FAIR_SHARE=false, then true, in the same run): a fresh service on the embedded
defaults in a temporary folder (`python -m service api`, an API_TOKEN, the class added with
POST /people), the heavy person's jobs submitted, then one job for each of the others; only
then a worker starts (`python -m service worker`, one slot), so what runs first is the queue's
order alone. For each light person: the heavy person's jobs that started after theirs was
submitted and before it started (what they waited behind), and the seconds from submission to
start. The goal: nobody light waits behind more than two of the heavy person's jobs, and the
heavy person's jobs all still run.

    python bench/class.py                                     # 30 people, 20 heavy jobs
    python bench/class.py --people 6 --heavy-jobs 5           # small
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, free_port, running, service_env, wait

MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
TOKEN = "bench-class-teacher"
START_TIMEOUT = 120.0
RUN_TIMEOUT = 3600.0


@dataclass
class Wait:
    person: str
    behind_heavy: int
    """The heavy person's jobs that started while this one waited."""
    behind_all: int
    """Every job that started while this one waited."""
    seconds: float


def spec(name: str, *, epochs: int, train_size: int) -> dict[str, Any]:
    return {
        "name": name,
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
        "compile": {"optimizer": {"type": "Adam"}},
        "fit": {"epochs": epochs, "train_size": train_size, "validation_size": 500},
    }


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def run(fair: bool, *, people: int, heavy_jobs: int, epochs: int, train_size: int) -> list[Wait]:
    with tempfile.TemporaryDirectory(prefix="bench-class-") as folder:
        root = Path(folder)
        port = free_port()
        env = service_env(
            root,
            mnist=MNIST_PATH,
            port=port,
            API_TOKEN=TOKEN,
            FAIR_SHARE="true" if fair else "false",
            WORKER_SLOTS="1",
            MAX_QUEUED_PER_PERSON=str(max(heavy_jobs, 1)),
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with (
            running([sys.executable, "-m", "service", "api"], env, root / "api.log"),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
        ):

            def healthy() -> bool:
                try:
                    return http.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait(healthy, timeout=START_TIMEOUT, what="the API")
            names = ["heavy"] + [f"light{i:02d}" for i in range(1, people)]
            added = http.post("/people", json={"people": names}, headers=auth)
            added.raise_for_status()
            tokens = {p["name"]: p["token"] for p in added.json()["data"]}

            def submit(name: str, job: str) -> str:
                headers = {"Authorization": f"Bearer {tokens[name]}"}
                body = spec(job, epochs=epochs, train_size=train_size)
                response = http.post("/experiments", json=body, headers=headers)
                response.raise_for_status()
                return str(response.json()["id"])

            heavy = [submit("heavy", f"heavy-{i}") for i in range(heavy_jobs)]
            light = {name: submit(name, name) for name in names[1:]}
            with running([sys.executable, "-m", "service", "worker"], env, root / "worker.log"):

                def finished() -> list[dict[str, Any]] | None:
                    rows = [
                        http.get(f"/experiments/{i}").json() for i in heavy + list(light.values())
                    ]
                    done = all(r["status"] in ("succeeded", "failed", "cancelled") for r in rows)
                    return rows if done else None

                rows = wait(finished, timeout=RUN_TIMEOUT, what="every job")
        failed = [r["name"] for r in rows if r["status"] != "succeeded"]
        if failed:
            raise SystemExit(f"jobs did not succeed: {failed}")
        started = {r["id"]: _time(r["started_at"]) for r in rows}
        created = {r["id"]: _time(r["created_at"]) for r in rows}
        waits = []
        for name, job in light.items():
            during = [i for i in started if created[job] < started[i] < started[job]]
            waits.append(
                Wait(
                    person=name,
                    behind_heavy=sum(1 for i in during if i in heavy),
                    behind_all=len(during),
                    seconds=(started[job] - created[job]).total_seconds(),
                )
            )
        return waits


def report(label: str, waits: list[Wait]) -> str:
    behind = [w.behind_heavy for w in waits]
    seconds = [w.seconds for w in waits]
    return (
        f"{label:<26} light people: {len(waits):>3}  behind the heavy person's jobs: median "
        f"{statistics.median(behind):4.1f}, worst {max(behind):3d}  |  waited: median "
        f"{statistics.median(seconds):6.1f} s, worst {max(seconds):6.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=30, help="the class, the heavy one too")
    parser.add_argument("--heavy-jobs", type=int, default=20, help="jobs the heavy person queues")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--each", action="store_true", help="also print every light person")
    args = parser.parse_args()
    sizes = {"people": args.people, "heavy_jobs": args.heavy_jobs}
    fit = {"epochs": args.epochs, "train_size": args.train_size}
    print(
        f"{args.people} people, one queues {args.heavy_jobs} jobs, then the others one each; "
        "one slot"
    )
    for label, fair in (("first come, first served", False), ("fair share", True)):
        waits = run(fair, **sizes, **fit)
        print(report(label, waits), flush=True)
        if args.each:
            for w in waits:
                print(
                    f"    {w.person}: behind {w.behind_heavy} heavy ({w.behind_all} in all), "
                    f"{w.seconds:.1f} s"
                )


if __name__ == "__main__":
    main()
