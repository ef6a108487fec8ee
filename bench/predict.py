"""Serving speed: POST /predict on the real service against a naive server calling model.predict.

Trains one model with a real worker into a temporary store, then serves that saved model twice:
with `python -m service api` and with bench/naive_server.py (the same FastAPI and uvicorn, the
model loaded once, `model.predict` per request). Both get the same single-image JSON bodies of
MNIST test digits: first from one sequential client (latency), then from concurrent clients
(throughput), after a warm-up, alternating for a few rounds. Prints p50/p99/max, req/s and the
server's CPU time per request (steadier than latency on a shared machine) for each, the
throughput ratio, and the goals: sequential p50 <= 2 ms and p99 <= 10 ms, and at least 20x the
naive server's throughput. Cleans up and exits by itself.

    MNIST_PATH=../shared/data/mnist.npz python bench/predict.py --requests 3000 --clients 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from harness import REPO, Figures, free_port, load, running, service_env, wait

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
FINISHED = ("succeeded", "failed", "cancelled")
JSON = {"content-type": "application/json"}
GOAL_P50_MS = 2.0
GOAL_P99_MS = 10.0
GOAL_RATIO = 20.0


def leaky_relu_spec(epochs: int, train_size: int | None) -> dict[str, Any]:
    """The notebook's LeakyReLU MLP (266,610 parameters), trained briefly: speed, not accuracy."""
    return {
        "name": "bench-predict-leaky-relu",
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 300, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            {"type": "Dense", "units": 100, "kernel_initializer": "he_normal"},
            {"type": "LeakyReLU"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.001}},
        "fit": {
            "epochs": epochs,
            "batch_size": 32,
            "validation_size": 5000,
            "train_size": train_size,
            "seed": 42,
        },
    }


def wait_up(base_url: str, child: subprocess.Popen[bytes], log_path: Path) -> None:
    def up() -> bool:
        if child.poll() is not None:
            raise SystemExit(f"{base_url} exited with {child.returncode}; see {log_path}")
        try:
            return httpx.get(f"{base_url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait(up, timeout=300, what=f"{base_url} to start (log: {log_path})")


def train_model(http: httpx.Client, env: dict[str, str], workdir: Path, args: Any) -> Path:
    """Submit the spec, let a real worker train it, stop the worker; the saved model's path."""
    response = http.post("/experiments", json=leaky_relu_spec(args.epochs, args.train_size))
    if response.status_code != 202:
        raise SystemExit(f"POST /experiments: {response.status_code} {response.text}")
    experiment_id: str = response.json()["id"]
    started = time.perf_counter()
    with running([sys.executable, "-m", "service", "worker"], env, workdir / "worker.log"):

        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(f"/experiments/{experiment_id}").json()
            return body if body["status"] in FINISHED else None

        body = wait(finished, timeout=1800, what=f"training (log: {workdir / 'worker.log'})")
    if body["status"] != "succeeded":
        raise SystemExit(f"training {body['status']}: {body.get('error')}")
    print(
        f"trained {body['name']} in {time.perf_counter() - started:.0f} s "
        f"(worker start included): test accuracy {body['test_accuracy']:.4f}"
    )
    return workdir / "models" / "experiments" / experiment_id / "model.keras"


def bodies(mnist_path: str, count: int) -> list[bytes]:
    """Single-image requests of MNIST test digits, 28 rows of 0-255 integers, pre-encoded."""
    with np.load(mnist_path) as data:
        images = data["x_test"][:count]
    return [json.dumps({"image": image.tolist()}).encode() for image in images]


def drive(base_url: str, requests: list[bytes], *, total: int, clients: int, label: str) -> Figures:
    """`total` POST /predict of these bodies, taken in turn, over `clients` connections."""

    def send(http: httpx.Client, number: int) -> httpx.Response:
        return http.post("/predict", content=requests[number % len(requests)], headers=JSON)

    return load(base_url, send, total=total, clients=clients, label=label)


def agreement(service_url: str, naive_url: str, requests: list[bytes]) -> int:
    """How many of these images the two servers read as different digits (should be 0)."""
    with httpx.Client(timeout=60) as http:
        differ = 0
        for body in requests:
            ours = http.post(f"{service_url}/predict", content=body, headers=JSON).json()
            theirs = http.post(f"{naive_url}/predict", content=body, headers=JSON).json()
            differ += ours["digit"] != theirs["digit"]
    return differ


@dataclass
class Server:
    name: str
    url: str
    pid: int
    requests: int  # per measurement: the naive server is far slower


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(
    servers: list[Server], requests: list[bytes], clients: int, number: int
) -> list[Figures]:
    """Sequential, then concurrent; each server right after the other so both see one load."""
    figures = []
    for many in (1, clients):
        for server in servers:
            used = cpu_seconds(server.pid)
            label = f"{server.name}, {many} client{'s' * (many > 1)} #{number}"
            measured = drive(server.url, requests, total=server.requests, clients=many, label=label)
            measured.server_cpu = cpu_seconds(server.pid) - used
            figures.append(measured)
    return figures


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="service requests per run")
    parser.add_argument(
        "--naive-requests", type=int, default=100, help="naive-server requests per run"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both")
    parser.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    parser.add_argument("--images", type=int, default=500, help="distinct test images sent")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=None, help="default: all 55,000")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    args = parser.parse_args()
    requests = bodies(args.mnist, args.images)

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        port, naive_port = free_port(), free_port()
        env = service_env(workdir, mnist=args.mnist, port=port, WORKER_SLOTS="1")
        service_url = f"http://127.0.0.1:{port}"
        naive_url = f"http://127.0.0.1:{naive_port}"
        api_log = workdir / "api.log"
        api = stack.enter_context(running([sys.executable, "-m", "service", "api"], env, api_log))
        wait_up(service_url, api, api_log)
        with httpx.Client(base_url=service_url, timeout=60) as http:
            model_path = train_model(http, env, workdir, args)
        naive_log = workdir / "naive.log"
        naive = stack.enter_context(
            running(
                [
                    sys.executable,
                    "bench/naive_server.py",
                    "--model",
                    str(model_path),
                    "--port",
                    str(naive_port),
                ],
                env,
                naive_log,
            )
        )
        wait_up(naive_url, naive, naive_log)

        differ = agreement(service_url, naive_url, requests[:50])
        drive(service_url, requests, total=args.warmup, clients=1, label="warm-up")
        drive(naive_url, requests, total=max(20, args.warmup // 10), clients=1, label="warm-up")

        servers = [
            Server("service", service_url, api.pid, args.requests),
            Server("naive", naive_url, naive.pid, args.naive_requests),
        ]
        runs = [
            one_round(servers, requests, args.clients, number)
            for number in range(1, args.rounds + 1)
        ]

    print(
        f"\nPOST /predict, one 28x28 image per request (0-255 JSON), {args.images} distinct "
        f"MNIST test images; {os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"the two servers read {differ} of 50 images differently")
    for run in runs:
        for figures in run:
            print(figures.line())
    sequential = [run[0] for run in runs]
    p50 = statistics.median(figures.p50_ms for figures in sequential)
    p99 = statistics.median(figures.p99_ms for figures in sequential)
    ratios = [service.rate / naive.rate for _, _, service, naive in runs]
    ratio = statistics.median(ratios)
    print(
        f"\nsequential latency (median over rounds): p50 {p50:.2f} ms "
        f"(goal <= {GOAL_P50_MS:g}: {verdict(p50 <= GOAL_P50_MS)}), p99 {p99:.2f} ms "
        f"(goal <= {GOAL_P99_MS:g}: {verdict(p99 <= GOAL_P99_MS)})"
    )
    print(
        f"throughput ratio with {args.clients} clients: "
        + ", ".join(f"{value:.1f}x" for value in ratios)
        + f" (median {ratio:.1f}x; goal >= {GOAL_RATIO:g}x: {verdict(ratio >= GOAL_RATIO)})"
    )


if __name__ == "__main__":
    main()
