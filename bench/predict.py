"""Serving speed with wrk: POST /predict and the v2 infer beside an empty endpoint's ceiling.

Trains the nets asked for (one short epoch each: speed, not accuracy) with a real worker, then
starts `python -m service api` twice, with micro-batching on and off (PREDICT_BATCHING), and
bench/empty_server.py (the same JSON parsed, a constant answered). wrk, a compiled load
generator that shares nothing with the servers' Python, sends one 28x28 MNIST digit per
request (0-255 JSON; for v2 the binary tensor form tritonclient sends) over 1, 8, 32 and 64
connections. Prints p50/p99 and req/s of each run, each ratio to the ceiling measured in the
same run, and the goals: /predict p50 <= 0.6 ms at 1 connection, >= 2,000 req/s and >= 60% of
the ceiling at 8, v2 within 10% of /predict. Needs `wrk` (Debian: apt-get install -y wrk).

    MNIST_PATH=../shared/data/mnist.npz python bench/predict.py --nets batchnorm,conv
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from harness import REPO, Run, free_port, running, wait, wrk

from service.spec.notebook import notebook_layers

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
FINISHED = ("succeeded", "failed", "cancelled")
HEAVY_NETS: dict[str, list[dict[str, Any]]] = {
    "conv": [
        {"type": "Reshape", "target_shape": [28, 28, 1]},
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
        {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 128, "activation": "relu"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
    "dense2048x3": [
        {"type": "Flatten"},
        *[{"type": "Dense", "units": 2048, "activation": "relu"} for _ in range(3)],
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
}
GOAL_P50_MS = 0.6
GOAL_RATE = 2000.0
GOAL_SHARE = 0.6
GOAL_V2 = 0.9


def layers(net: str) -> list[dict[str, Any]]:
    return HEAVY_NETS[net] if net in HEAVY_NETS else notebook_layers(net)


def train(
    http: httpx.Client, env: dict[str, str], workdir: Path, nets: list[str]
) -> dict[str, str]:
    """Each net trained one epoch on 2,000 images by a real worker; net -> experiment id."""
    ids = {}
    for net in nets:
        spec = {
            "name": f"bench-{net}",
            "layers": layers(net),
            "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.001}},
            "fit": {"epochs": 1, "train_size": 2000, "seed": 42},
        }
        response = http.post("/experiments", json=spec)
        if response.status_code != 202:
            raise SystemExit(f"POST /experiments {net}: {response.status_code} {response.text}")
        ids[net] = response.json()["id"]
    with running([sys.executable, "-m", "service", "worker"], env, workdir / "worker.log"):
        for net, experiment_id in ids.items():

            def finished(experiment_id: str = experiment_id) -> dict[str, Any] | None:
                body: dict[str, Any] = http.get(f"/experiments/{experiment_id}").json()
                return body if body["status"] in FINISHED else None

            body = wait(finished, timeout=1800, what=f"training {net} (log: worker.log)")
            if body["status"] != "succeeded":
                raise SystemExit(f"training {net} {body['status']}: {body.get('error')}")
    return ids


def up(url: str, child: subprocess.Popen[bytes], log: Path) -> None:
    def answers() -> bool:
        if child.poll() is not None:
            raise SystemExit(f"{url} exited with {child.returncode}; see {log}")
        try:
            return httpx.get(f"{url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait(answers, timeout=300, what=f"{url} to start (log: {log})")


def v2_body(image: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """What tritonclient sends with its defaults: a binary UINT8 input, binary outputs."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "shape": [1, 28, 28],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 784},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + image.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="batchnorm,leaky_relu,conv", help="comma-separated")
    parser.add_argument("--connections", default="1,8,32,64")
    parser.add_argument("--seconds", type=float, default=4.0, help="per wrk run")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH") or str(DEFAULT_MNIST))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    nets = args.nets.split(",")
    connections = [int(n) for n in args.connections.split(",")]
    with np.load(args.mnist) as data:
        image = data["x_test"][0]

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        ports = {"on": free_port(), "off": free_port(), "empty": free_port()}
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{workdir / 'service.db'}",
            "QUEUE_URL": f"sqlite:///{workdir / 'queue.db'}",
            "MODELS_DIR": str(workdir / "models"),
            "WORK_DIR": str(workdir / "work"),
            "MNIST_PATH": args.mnist,
            "MAX_PARAMS": "20000000",
            "LOG_LEVEL": "WARNING",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for mode in ("on", "off"):
            log = workdir / f"api-{mode}.log"
            mode_env = {
                **env,
                "PORT": str(ports[mode]),
                "PREDICT_BATCHING": str(mode == "on").lower(),
            }
            child = stack.enter_context(
                running([sys.executable, "-m", "service", "api"], mode_env, log)
            )
            up(urls[mode], child, log)
        empty_log = workdir / "empty.log"
        empty = stack.enter_context(
            running(
                [sys.executable, "bench/empty_server.py", "--port", str(ports["empty"])],
                env,
                empty_log,
            )
        )
        up(urls["empty"], empty, empty_log)
        with httpx.Client(base_url=urls["on"], timeout=60) as http:
            ids = train(http, env, workdir, nets)

        json_headers = {"Content-Type": "application/json"}
        ceilings = {
            c: wrk(
                f"{urls['empty']}/predict",
                body=json.dumps({"image": image.tolist()}).encode(),
                headers=json_headers,
                connections=c,
                seconds=args.seconds,
                label="empty endpoint (ceiling)",
                scratch=workdir,
            )
            for c in connections
        }
        results: dict[tuple[str, str, int], Run] = {}
        for net in nets:
            body = json.dumps({"image": image.tolist(), "model": ids[net]}).encode()
            v2, v2_headers = v2_body(image)
            for mode in ("on", "off"):
                for c in connections:
                    label = f"{net} %s, batching {mode}"
                    predict_url = f"{urls[mode]}/predict"
                    post = partial(
                        wrk,
                        predict_url,
                        body=body,
                        headers=json_headers,
                        connections=c,
                        scratch=workdir,
                    )
                    post(seconds=1, label="warm-up")
                    results[(net, f"predict-{mode}", c)] = post(
                        seconds=args.seconds, label=label % "/predict"
                    )
                    if c <= 8:
                        results[(net, f"v2-{mode}", c)] = wrk(
                            f"{urls[mode]}/v2/models/{ids[net]}/infer",
                            body=v2,
                            headers=v2_headers,
                            connections=c,
                            seconds=args.seconds,
                            label=label % "v2 infer",
                            scratch=workdir,
                        )

    print(
        f"\none 28x28 digit per request; wrk -t1, {args.seconds:g} s per run; "
        f"{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}\n"
    )
    for c in connections:
        print(ceilings[c].line(None))
    for (_, _, c), run in results.items():
        print(run.line(ceilings[c]))
    headline = nets[0]
    print(f"\ngoals ({headline}, batching as it wins):")
    for mode in ("on", "off"):
        one, eight = (
            results[(headline, f"predict-{mode}", 1)],
            results[(headline, f"predict-{mode}", 8)],
        )
        v2_eight = results.get((headline, f"v2-{mode}", 8))
        share = eight.rate / ceilings[8].rate
        print(
            f"  batching {mode}: p50 at 1 connection {one.p50_ms:.2f} ms "
            f"(<= {GOAL_P50_MS}: {verdict(one.p50_ms <= GOAL_P50_MS)}); "
            f"{eight.rate:.0f} req/s at 8 "
            f"(>= {GOAL_RATE:.0f}: {verdict(eight.rate >= GOAL_RATE)}), "
            f"{share:.0%} of the ceiling "
            f"(>= {GOAL_SHARE:.0%}: {verdict(share >= GOAL_SHARE)})"
            + (
                f"; v2 at 8 is {v2_eight.rate / eight.rate:.0%} of /predict "
                f"(>= {GOAL_V2:.0%}: {verdict(v2_eight.rate >= GOAL_V2 * eight.rate)})"
                if v2_eight
                else ""
            )
        )


if __name__ == "__main__":
    main()
