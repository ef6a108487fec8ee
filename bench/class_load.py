"""A class at work on one server: how fast are predictions while its models train?

Per mode (PRELOAD_MODELS=false, then true, in the same run): a fresh `python -m service` on
the embedded defaults (SQLite, the API and a worker with two slots) in a temporary folder, an
API_TOKEN, and the class added with POST /people. For `--seconds`, every student in turn
submits a small two-epoch job and, until it finishes, polls it and predicts (one MNIST test
image as pixel lists, against `best`, `latest` and their own latest model, in turn), with one
event stream open throughout; a teacher lists the experiments and the people and draws a
comparison chart of the newest runs. Then nothing more is submitted, and what is left
unfinished is counted.

Printed per mode: p50/p95/p99 of each route, failed requests (a 5xx, or no answer), the jobs'
waits (submitted to started, submitted to finished), and the models loaded on the request
path and in the background (`mnist_model_loads_total`). The goal: /predict p99 <= 50 ms with
preloading.

    python bench/class_load.py                            # 30 students, 120 s a mode
    python bench/class_load.py --students 10 --seconds 40 # small
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from harness import REPO, free_port, running, service_env, wait

MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
TOKEN = "bench-class-load-teacher"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 10.0
PREDICT_EVERY = 0.4  # seconds between a student's predictions
POLL_EVERY = 1.0  # seconds between a student's looks at their job
TEACHER_EVERY = 2.0  # seconds between the teacher's rounds
PREDICTED = ("best", "latest", "own")
SEED = 1
LAG_SLEEP = 0.01  # seconds the client's lag probe sleeps
FINISHED = frozenset({"succeeded", "failed", "cancelled", "pruned"})


@dataclass
class Figures:
    """What one mode measured."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """4xx answers by route and status (a 404 for `best` before any model exists)."""
    jobs: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    loads: dict[str, float] = field(default_factory=dict)
    server_predict: dict[float, float] = field(default_factory=dict)
    """The service's own count of /predict answers within each latency bound (seconds), and
    the total under `inf`: what it took the server, without the network or this client."""
    lags: list[float] = field(default_factory=list)
    """How late the client's event loops woke from short sleeps: their own share of every
    latency they measure."""
    client_processes: int = 1

    def add(self, part: Figures) -> None:
        """Another client process's raw samples: percentiles over the merge are exact."""
        for route, values in part.seconds.items():
            self.seconds[route].extend(values)
        for route, count in part.failed.items():
            self.failed[route] += count
        for route, count in part.refused.items():
            self.refused[route] += count
        self.jobs.extend(part.jobs)
        self.lags.extend(part.lags)

    def portable(self) -> Figures:
        """These figures with plain dicts, which pickle (a defaultdict's factory here does not)."""
        return Figures(
            seconds=dict(self.seconds),
            failed=dict(self.failed),
            refused=dict(self.refused),
            jobs=self.jobs,
            lags=self.lags,
        )


def spec(name: str, *, epochs: int, train_size: int) -> dict[str, Any]:
    """A small net, seeded alike for everyone as a class's exercise is: the runs tie."""
    return {
        "name": name,
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
        "compile": {"optimizer": {"type": "Adam"}},
        "fit": {"epochs": epochs, "train_size": train_size, "validation_size": 500, "seed": SEED},
    }


class Class:
    """The students' and the teacher's clients, timing every request by its route."""

    def __init__(self, http: httpx.AsyncClient, figures: Figures, deadline: float) -> None:
        self.http = http
        self.figures = figures
        self.deadline = deadline

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    async def call(self, route: str, method: str, url: str, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, url, **options)
        except httpx.HTTPError:
            self.figures.failed[route] += 1
            return None
        self.figures.seconds[route].append(time.perf_counter() - started)
        if response.status_code >= 500:
            self.figures.failed[route] += 1
            return None
        if response.status_code >= 400:
            self.figures.refused[f"{route} {response.status_code}"] += 1
        return response

    async def student(self, token: str, index: int, image: list[list[int]], fit: Any) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        own: str | None = None
        turn = index  # the students do not all ask for the same model at once
        job = 0
        while not self.over():
            body = spec(f"s{index}-{job}", **fit)
            job += 1
            response = await self.call(
                "POST /experiments", "POST", "/experiments", json=body, headers=headers
            )
            if response is None or response.status_code != 202:
                await asyncio.sleep(POLL_EVERY)
                continue
            experiment_id = response.json()["id"]
            self.figures.jobs.append(experiment_id)
            next_poll = time.monotonic() + POLL_EVERY
            while not self.over():
                named = PREDICTED[turn % len(PREDICTED)]
                turn += 1
                model = (own or "latest") if named == "own" else named
                await self.call(
                    f"POST /predict ({named})",
                    "POST",
                    "/predict",
                    headers=headers,
                    json={"image": image, "model": model},
                )
                await asyncio.sleep(PREDICT_EVERY)
                if time.monotonic() < next_poll:
                    continue
                next_poll = time.monotonic() + POLL_EVERY
                polled = await self.call(
                    "GET /experiments/{id}", "GET", f"/experiments/{experiment_id}", headers=headers
                )
                status = polled.json()["status"] if polled is not None else None
                if status in FINISHED:
                    if status == "succeeded":
                        own = experiment_id
                    break

    async def stream(self, token: str) -> None:
        """One event stream per student, read until the run ends."""
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self.http.stream(
                "GET", "/events", headers=headers, timeout=None
            ) as response:
                async for _ in response.aiter_lines():
                    if self.over():
                        return
        except httpx.HTTPError:
            if not self.over():
                self.figures.failed["GET /events"] += 1

    async def lag(self) -> None:
        """Samples the client's own event-loop lag, the measurement error of every figure."""
        while not self.over():
            asked = time.perf_counter()
            await asyncio.sleep(LAG_SLEEP)
            self.figures.lags.append(time.perf_counter() - asked - LAG_SLEEP)

    async def teacher(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        while not self.over():
            listed = await self.call(
                "GET /experiments", "GET", "/experiments?order=-created&limit=50", headers=headers
            )
            await self.call("GET /people", "GET", "/people", headers=headers)
            if listed is not None and listed.status_code == 200:
                done = [r["id"] for r in listed.json()["data"] if r["status"] == "succeeded"]
                if done:
                    await self.call(
                        "GET /compare.svg",
                        "GET",
                        "/compare.svg",
                        params={"ids": ",".join(done[:5])},
                        headers=headers,
                    )
            await asyncio.sleep(TEACHER_EVERY)


def run(
    preload: bool,
    *,
    students: int,
    seconds: float,
    epochs: int,
    train_size: int,
    slots: int,
    cache_size: int | None,
    extra_env: dict[str, str],
    client_processes: int,
) -> Figures:
    figures = Figures(client_processes=client_processes)
    image = _image()
    with tempfile.TemporaryDirectory(prefix="bench-class-load-") as folder:
        root = Path(folder)
        port = free_port()
        env = service_env(
            root,
            mnist=MNIST_PATH,
            port=port,
            API_TOKEN=TOKEN,
            WORKER_SLOTS=str(slots),
            PRELOAD_MODELS="true" if preload else "false",
            **({"MODEL_CACHE_SIZE": str(cache_size)} if cache_size else {}),
            **extra_env,
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{port}"
        with running([sys.executable, "-m", "service"], env, root / "service.log"):
            with httpx.Client(base_url=base, timeout=60) as http:

                def healthy() -> bool:
                    try:
                        return http.get("/health").status_code == 200
                    except httpx.TransportError:
                        return False

                wait(healthy, timeout=START_TIMEOUT, what="the service")
                names = [f"student{i:02d}" for i in range(students)]
                added = http.post("/people", json={"people": names}, headers=auth)
                added.raise_for_status()
                tokens = [p["token"] for p in added.json()["data"]]
            fit = {"epochs": epochs, "train_size": train_size}
            deadline = time.monotonic() + seconds  # CLOCK_MONOTONIC: one clock for all processes
            students = list(enumerate(tokens))
            # Student i in client process i % N; the teacher in the first.
            shares = [
                (base, students[n::client_processes], image, fit, deadline, n == 0)
                for n in range(client_processes)
            ]
            if client_processes == 1:
                figures.add(_client(*shares[0]))
            else:
                # Forked: the children need nothing this process has not already imported.
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(client_processes, mp_context=context) as pool:
                    for part in pool.map(_client, *zip(*shares, strict=True)):
                        figures.add(part)
            with httpx.Client(base_url=base, timeout=60, headers=auth) as http:
                figures.rows = [http.get(f"/experiments/{i}").json() for i in figures.jobs]
                scraped = http.get("/metrics").text
                figures.loads = _loads(scraped)
                figures.server_predict = _server_predict(scraped)
    return figures


def _client(
    base: str,
    students: list[tuple[int, str]],
    image: Any,
    fit: Any,
    deadline: float,
    teaches: bool,
) -> Figures:
    """One client process's share of the class (and the teacher, if `teaches`), with its own
    event loop and lag probe."""
    figures = Figures()
    asyncio.run(_class(base, students, image, fit, deadline, teaches, figures))
    return figures.portable()


async def _class(
    base: str,
    students: list[tuple[int, str]],
    image: Any,
    fit: Any,
    deadline: float,
    teaches: bool,
    figures: Figures,
) -> None:
    limits = httpx.Limits(max_connections=4 * len(students) + 8)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        room = Class(http, figures, deadline)
        tasks = [asyncio.create_task(room.stream(token)) for _, token in students]
        working = [room.student(token, i, image, fit) for i, token in students]
        teaching = [room.teacher()] if teaches else []
        await asyncio.gather(*teaching, room.lag(), *working)
        for task in tasks:  # a quiet stream is waiting for its next event: end it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _image() -> list[list[int]]:
    with np.load(MNIST_PATH) as data:
        pixels: list[list[int]] = data["x_test"][0].tolist()
        return pixels


def _loads(text: str) -> dict[str, float]:
    found = {}
    for by in ("request", "preloader"):
        match = re.search(rf'^mnist_model_loads_total\{{by="{by}"\}} (\S+)$', text, re.M)
        found[by] = float(match.group(1)) if match else 0.0
    return found


def _server_predict(text: str) -> dict[float, float]:
    counts = {}
    for line in text.splitlines():
        if line.startswith("http_request_duration_seconds_bucket{") and (
            'method="POST"' in line and 'route="/predict"' in line
        ):
            bound = re.search(r'le="([^"]+)"', line)
            if bound:
                counts[float(bound.group(1))] = float(line.rsplit(" ", 1)[1])
    return counts


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        one = values[0] * 1000 if values else float("nan")
        return one, one, one
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def _stamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def report(label: str, figures: Figures) -> list[str]:
    lines = [f"== {label}"]
    total = sum(len(v) for v in figures.seconds.values())  # before the (all) row is added
    failed = sum(figures.failed.values())
    predicted = [v for route, v in figures.seconds.items() if route.startswith("POST /predict")]
    figures.seconds["POST /predict (all)"] = [value for values in predicted for value in values]
    for route in sorted(figures.seconds):
        p50, p95, p99 = _percentiles(figures.seconds[route])
        lines.append(
            f"  {route:<24} n={len(figures.seconds[route]):>6}  p50={p50:7.1f} ms  "
            f"p95={p95:7.1f} ms  p99={p99:7.1f} ms  failed={figures.failed.get(route, 0)}"
        )
    lines.append(f"  requests: {total}, failed: {failed} {dict(figures.failed) or ''}")
    if figures.refused:
        lines.append(f"  refused (4xx): {dict(figures.refused)}")
    started, finished = [], []
    for row in figures.rows:
        created, began, ended = (
            _stamp(row.get(k)) for k in ("created_at", "started_at", "finished_at")
        )
        if created and began:
            started.append((began - created).total_seconds())
        if created and ended and row["status"] == "succeeded":
            finished.append((ended - created).total_seconds())
    succeeded = sum(1 for row in figures.rows if row["status"] == "succeeded")
    lines.append(
        f"  jobs: {len(figures.rows)} submitted, {succeeded} succeeded, "
        f"{sum(1 for r in figures.rows if r['status'] not in FINISHED)} unfinished at the end"
    )
    for what, waits in (("submitted -> started", started), ("submitted -> finished", finished)):
        if waits:
            lines.append(
                f"  {what:<22} p50={statistics.median(waits):6.1f} s  "
                f"p95={_percentiles(waits)[1] / 1000:6.1f} s  max={max(waits):6.1f} s"
            )
    if figures.server_predict:
        total = figures.server_predict[float("inf")] or 1.0
        within = ", ".join(
            f"{count / total:.1%} within {bound * 1000:g} ms"
            for bound, count in sorted(figures.server_predict.items())
            if 0.005 <= bound <= 0.25
        )
        lines.append(f"  /predict as the service timed it: {within}")
    if figures.lags:
        _, lag95, lag99 = _percentiles(figures.lags)
        lines.append(
            f"  the client's event-loop lag ({figures.client_processes} process"
            f"{'es' if figures.client_processes > 1 else ''}): "
            f"p95={lag95:.1f} ms  p99={lag99:.1f} ms"
        )
    lines.append(
        f"  model loads: {figures.loads.get('request', 0):.0f} on the request path, "
        f"{figures.loads.get('preloader', 0):.0f} in the background"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=120.0, help="of class, per mode")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2, help="WORKER_SLOTS")
    parser.add_argument(
        "--cache-size", type=int, default=None, help="MODEL_CACHE_SIZE (default: the service's)"
    )
    parser.add_argument(
        "--modes",
        default="off,on",
        help="the modes to run, in order: PRELOAD_MODELS off or on, each optionally followed by "
        "settings of the service to compare, as in on+API_THREADS=4+API_SWITCH_INTERVAL_MS=1",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="client processes the students are dealt to (a class is many machines: one "
        "Python process for all adds its own event-loop lag to every latency)",
    )
    args = parser.parse_args()
    print(
        f"{args.students} students for {args.seconds:.0f} s a mode, {args.epochs}-epoch jobs on "
        f"{args.train_size} images, {args.slots} slots, {args.client_processes} client "
        f"process(es); load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for mode in args.modes.split(","):
        preload, *settings = mode.split("+")
        extra_env = dict(setting.split("=", 1) for setting in settings)
        figures = run(
            preload == "on",
            students=args.students,
            seconds=args.seconds,
            epochs=args.epochs,
            train_size=args.train_size,
            slots=args.slots,
            cache_size=args.cache_size,
            extra_env=extra_env,
            client_processes=args.client_processes,
        )
        label = f"PRELOAD_MODELS={'true' if preload == 'on' else 'false'}"
        label += "".join(f", {name}={value}" for name, value in extra_env.items())
        if args.cache_size:
            label += f", MODEL_CACHE_SIZE={args.cache_size}"
        print("\n".join(report(label, figures)), flush=True)
        print(f"  load average after: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
