"""/health under the costliest uploads one client may send, with and without the decoding budget.

Trains a small net (one short epoch, a real worker), then starts `python -m service api` twice on
the same database: with the default budget (DECODE_PIXELS_PER_SECOND) and with none (0). For
each, wrk sends the costliest upload the limits accept (two SIDE x SIDE palette PNGs with
transparency: at 4096, MAX_REQUEST_PIXELS in all, 0.67 s of CPU each) to /predict/upload over
CONNECTIONS connections from one address (one client), while this script times /health every
50 ms. Prints /health's p50/p99/max and the uploads answered and refused (429) per second (counted
by the service's /metrics; wrk's errors are its non-2xx answers and its 5 s timeouts).

    MNIST_PATH=../shared/data/mnist.npz python bench/decoding.py --connections 16 --seconds 10
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, free_port, running, wait, wrk
from PIL import Image

from service.spec.notebook import notebook_layers

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
BOUNDARY = "bench-decoding-boundary"
HEALTH_EVERY = 0.05


def costly_png(side: int) -> bytes:
    """A palette PNG with a transparent colour and a stroke: small to send, all to decode."""
    image = Image.new("P", (side, side), 0)
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image.paste(1, (side // 2 - side // 20, side // 4, side // 2 + side // 20, 3 * side // 4))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, transparency=0)
    return buffer.getvalue()


def upload_body(png: bytes, model: str) -> tuple[bytes, dict[str, str]]:
    """multipart/form-data with the PNG twice as `file` and the model."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{i}.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + png
        + b"\r\n"
        for i in range(2)
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'
        f"--{BOUNDARY}--\r\n".encode()
    )
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class HealthProbe:
    """GET /health every HEALTH_EVERY seconds on a thread; the latencies in ms."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                http.get("/health")
                self.latencies.append((time.perf_counter() - started) * 1000)
                self._stop.wait(HEALTH_EVERY)


def train(http: httpx.Client, env: dict[str, str], workdir: Path) -> str:
    spec = {
        "name": "bench-decoding",
        "layers": notebook_layers("dropout"),
        "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.01}},
        "fit": {"epochs": 1, "train_size": 1000, "seed": 42},
    }
    response = http.post("/experiments", json=spec)
    if response.status_code != 202:
        raise SystemExit(f"POST /experiments: {response.status_code} {response.text}")
    experiment_id: str = response.json()["id"]
    with running([sys.executable, "-m", "service", "worker"], env, workdir / "worker.log"):

        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(f"/experiments/{experiment_id}").json()
            return body if body["status"] in ("succeeded", "failed", "cancelled") else None

        body = wait(finished, timeout=1800, what="the training (log: worker.log)")
    if body["status"] != "succeeded":
        raise SystemExit(f"the training {body['status']}: {body.get('error')}")
    return experiment_id


def answered(url: str) -> dict[str, float]:
    """How many uploads the service answered so far, by status (from its /metrics)."""
    found: dict[str, float] = {}
    pattern = re.compile(
        r'^http_requests_total\{method="POST",route="/predict/upload",status="(\d+)"\} (\S+)$'
    )
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        match = pattern.match(line)
        if match:
            found[match[1]] = float(match[2])
    return found


def up(url: str, log: Path) -> None:
    def answers() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait(answers, timeout=300, what=f"{url} to start (log: {log})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16, help="of the one costly client")
    parser.add_argument("--seconds", type=float, default=10.0, help="per mode")
    parser.add_argument("--side", type=int, default=4096, help="of each PNG, in pixels")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    png = costly_png(args.side)

    with tempfile.TemporaryDirectory(prefix="bench-decoding-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{workdir / 'service.db'}",
            "QUEUE_URL": f"sqlite:///{workdir / 'queue.db'}",
            "MODELS_DIR": str(workdir / "models"),
            "WORK_DIR": str(workdir / "work"),
            "MNIST_PATH": args.mnist,
            "LOG_LEVEL": "WARNING",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        modes = {"budget": {}, "no budget": {"DECODE_PIXELS_PER_SECOND": "0"}}
        urls = {}
        for mode, extra in modes.items():
            port = free_port()
            urls[mode] = f"http://127.0.0.1:{port}"
            log = workdir / f"api-{mode.replace(' ', '-')}.log"
            mode_env = {**env, **extra, "PORT": str(port)}
            stack.enter_context(running([sys.executable, "-m", "service", "api"], mode_env, log))
            up(urls[mode], log)
        with httpx.Client(base_url=urls["budget"], timeout=60) as http:
            model = train(http, env, workdir)
        body, headers = upload_body(png, model)
        print(
            f"costly upload: 2 x {args.side}x{args.side} palette PNGs, {len(body):,} bytes; "
            f"{args.connections} connections of one client, {args.seconds:g} s per mode"
        )
        for mode, url in urls.items():
            before = answered(url)
            with HealthProbe(url) as probe:
                run = wrk(
                    f"{url}/predict/upload",
                    body=body,
                    headers=headers,
                    connections=args.connections,
                    seconds=args.seconds,
                    label=mode,
                    scratch=workdir,
                )
            health = sorted(probe.latencies)
            p99 = health[min(len(health) - 1, int(0.99 * len(health)))]
            after = answered(url)
            count = {code: after[code] - before.get(code, 0) for code in after}
            print(
                f"{mode:<10} /health p50={statistics.median(health):7.1f} ms  p99={p99:7.1f} ms  "
                f"max={health[-1]:7.1f} ms ({len(health)} probes)  uploads answered "
                f"{count.get('200', 0) / args.seconds:5.2f}/s, refused (429) "
                f"{count.get('429', 0) / args.seconds:6.1f}/s, all by status {count}, "
                f"wrk errors {run.errors}"
            )


if __name__ == "__main__":
    main()
