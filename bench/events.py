"""Do open event streams slow predictions? /predict p50 with 200 open /events streams vs none.

Starts `python -m service api` on temporary files, trains the LeakyReLU net briefly with a
worker (as bench/predict.py does), then alternates rounds: wrk POSTs /predict over one
connection with no stream open, then with STREAMS clients holding GET /events open (an asyncio
loop in this process, idle but for what the server sends). The issue's goal: p50 moves by at
most 10%. Needs `wrk` (Debian: apt-get install -y wrk).

    MNIST_PATH=../shared/data/mnist.npz python bench/events.py [--streams 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
from harness import Run, free_port, running, service_env, wait, wrk
from predict import DEFAULT_MNIST, train, up

GOAL_RATIO = 1.10


class OpenStreams:
    """`count` GET /events held open by one asyncio loop in a thread, reading what comes."""

    def __init__(self, base_url: str, count: int) -> None:
        self.base_url = base_url
        self.count = count
        self.connected = 0
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))

    async def _one(self, http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/events") as response:
            assert response.status_code == 200, response.status_code
            self.connected += 1
            async for _ in response.aiter_lines():
                pass

    async def _run(self) -> None:
        self.stopping = asyncio.Event()
        limits = httpx.Limits(max_connections=self.count + 10)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=None, limits=limits) as http:
            tasks = [asyncio.create_task(self._one(http)) for _ in range(self.count)]
            await self.stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> OpenStreams:
        self.thread.start()
        wait(lambda: self.connected == self.count, timeout=60, what=f"{self.count} streams")
        return self

    def __exit__(self, *_: object) -> None:
        assert self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    with np.load(args.mnist) as data:
        image = data["x_test"][0]

    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        port = free_port()
        env = service_env(workdir, mnist=args.mnist, port=port)
        url = f"http://127.0.0.1:{port}"
        api_log = workdir / "api.log"
        api = stack.enter_context(running([sys.executable, "-m", "service", "api"], env, api_log))
        up(url, api, api_log)
        with httpx.Client(base_url=url, timeout=60) as http:
            model = train(http, env, workdir, ["leaky_relu"])["leaky_relu"]

        def predict(label: str, seconds: float) -> Run:
            return wrk(
                f"{url}/predict",
                body=json.dumps({"image": image.tolist(), "model": model}).encode(),
                headers={"Content-Type": "application/json"},
                connections=1,
                seconds=seconds,
                label=label,
                scratch=workdir,
            )

        predict("warm-up", 2)
        runs: list[tuple[Run, Run]] = []
        for number in range(1, args.rounds + 1):
            quiet = predict(f"{number}: no stream", args.seconds)
            with OpenStreams(url, args.streams):
                busy = predict(f"{number}: {args.streams} streams", args.seconds)
            runs.append((quiet, busy))

    print(
        f"\nPOST /predict over one connection (wrk), with and without {args.streams} open "
        f"GET /events; {os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}"
    )
    for quiet, busy in runs:
        print(quiet.line())
        print(busy.line())
    ratios = [busy.p50_ms / quiet.p50_ms for quiet, busy in runs]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(
        "p50 with streams / without: "
        + ", ".join(f"{value:.3f}" for value in ratios)
        + f" (median {ratio:.3f}; goal <= {GOAL_RATIO:.2f}: {verdict})"
    )


if __name__ == "__main__":
    main()
