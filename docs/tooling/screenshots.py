"""Regenerate docs/images and docs/screenshots from a real service, in one command:

    MNIST_PATH=/path/to/mnist.npz python docs/tooling/screenshots.py

Starts `python -m service` (API and two worker slots) on a free port over a temporary
database and model store, trains what the README and the learner's tutorial show (the
notebook's LeakyReLU net for 5 epochs, its BatchNormalization and Dropout nets, a deep sigmoid
net for the vanishing-gradient chart, and the batchnorm study), saves the charts from the
service's own routes (docs/images), and takes the lab page's screenshots with Playwright and
Debian's chromium (CHROMIUM, default /usr/bin/chromium) at 1280 px and, for the phone row,
390 px (docs/screenshots). PNGs are reduced to 256 colours to keep the repository small.
Takes 5 to 10 minutes on two cores; the figures the docs quote beside the pictures (test
accuracies, epochs) are printed at the end to check against the text.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from service.spec.notebook import notebook_layers

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FINISHED = ("succeeded", "failed", "cancelled")
SGD = {"type": "SGD", "learning_rate": 0.001}
SOFTMAX = {"type": "Dense", "units": 10, "activation": "softmax"}
FLATTEN = {"type": "Flatten"}


# The README's worked example and the learner's tutorial: the notebook's three nets (one
# definition, service/spec/notebook.py), with the epochs those pages show.
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "leaky-relu-sgd": {
        "layers": notebook_layers("leaky_relu"),
        "fit": {"epochs": 5, "batch_size": 32, "validation_size": 5000, "seed": 42},
    },
    "batchnorm-sgd": {"layers": notebook_layers("batchnorm"), "fit": {"epochs": 10, "seed": 42}},
    "dropout-sgd": {"layers": notebook_layers("dropout"), "fit": {"epochs": 5, "seed": 42}},
    "deep-sigmoid": {
        "layers": [
            FLATTEN,
            *[
                {
                    "type": "Dense",
                    "units": 100,
                    "activation": "sigmoid",
                    "kernel_initializer": "random_normal",
                }
                for _ in range(8)
            ],
            SOFTMAX,
        ],
        "fit": {"epochs": 5, "seed": 42},
    },
}
STUDY = {"name": "batchnorm-question", "preset": "batchnorm", "epochs": 3, "max_parallel": 2}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(check: Callable[[], Any], *, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := check():
            return answer
        time.sleep(1.0)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


class Service:
    """`python -m service` over a temporary folder, and a client for it."""

    def __init__(self, folder: Path, mnist_path: str) -> None:
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
            "QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
            "MODELS_DIR": str(folder / "models"),
            "WORK_DIR": str(folder / "work"),
            "MNIST_PATH": mnist_path,
            "PORT": str(port),
            "WORKER_SLOTS": "2",
        }
        self.log = (folder / "service.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=120)
        _wait(self._up, what="the service to start", timeout=180)

    def _up(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def submit(self, name: str, spec: dict[str, Any]) -> str:
        body = {"name": name, "compile": {"optimizer": SGD}, **spec}
        response = self.http.post("/experiments", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    def finished(self, experiment_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            body: dict[str, Any] = self.http.get(f"/experiments/{experiment_id}").json()
            return body if body["status"] in FINISHED else None

        answer: dict[str, Any] = _wait(done, what=experiment_id, timeout=1800)
        return answer

    def get(self, path: str) -> bytes:
        response = self.http.get(path)
        response.raise_for_status()
        return response.content

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def save_png(data: bytes, path: Path) -> None:
    """A PNG reduced to at most 256 colours: a screenshot's flat colours survive it."""
    image = Image.open(io.BytesIO(data))
    if image.mode not in ("L", "P"):
        image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    print(f"  {path.relative_to(ROOT)}: {image.size[0]}x{image.size[1]}, {path.stat().st_size:,} B")


def save_charts(service: Service, ids: dict[str, str], images: Path) -> None:
    leaky, sigmoid = ids["leaky-relu-sgd"], ids["deep-sigmoid"]
    charts = {
        "confusion.svg": f"/experiments/{leaky}/confusion.svg",
        "layers-leaky-relu.svg": f"/experiments/{leaky}/layers.svg",
        "layers-deep-sigmoid.svg": f"/experiments/{sigmoid}/layers.svg",
    }
    for name, route in charts.items():
        (images / name).write_bytes(service.get(route))
        print(f"  docs/images/{name}: {(images / name).stat().st_size:,} B")
    save_png(service.get(f"/experiments/{leaky}/mistakes.png?n=15"), images / "mistakes.png")


def _shoot(page: Any, path: Path, *, height: int | None = None, top: str | None = None) -> None:
    """The page from its top (or from element `top`), `height` px of it (None: all of it)."""
    page.wait_for_timeout(500)  # let the last chart settle
    y = 0.0
    if top is not None:
        y = max(0.0, page.locator(top).first.bounding_box()["y"] - 16)
    if height is None:
        data = page.screenshot(full_page=True)
    else:
        width = page.viewport_size["width"]
        clip = {"x": 0, "y": y, "width": width, "height": height}
        data = page.screenshot(full_page=True, clip=clip)
    save_png(data, path)


def _loaded(page: Any, selector: str) -> None:
    page.wait_for_function(
        f"() => document.querySelector({selector!r})?.naturalWidth > 0", timeout=60_000
    )


def _draw_a_seven(page: Any) -> None:
    pad = page.wait_for_selector("canvas.pad")
    box = pad.bounding_box()
    x, y, size = box["x"], box["y"], box["width"]
    points = [(0.25 + 0.025 * i, 0.22) for i in range(21)]  # the bar
    points += [(0.75 - 0.014 * i, 0.22 + 0.03 * i) for i in range(1, 21)]  # the stem
    page.mouse.move(x + size * points[0][0], y + size * points[0][1])
    page.mouse.down()
    for px, py in points[1:]:
        page.mouse.move(x + size * px, y + size * py)
    page.mouse.up()
    page.wait_for_selector("#digit")


def take_screenshots(service: Service, ids: dict[str, str], study: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    url = service.url
    leaky = ids["leaky-relu-sgd"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        def tab(route: str, width: int = 1280, height: int = 900) -> Any:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(f"{url}/{route}")
            return page

        page = tab("#/experiments")
        for name in ("leaky-relu-sgd", "batchnorm-sgd", "dropout-sgd"):
            page.check(f"tr[data-id='{ids[name]}'] input[type=checkbox]")
        _shoot(page, out / "experiments.png", height=900)
        page.click("button:text('Compare selected')")
        page.wait_for_selector("figure[data-title='Validation accuracy'] svg path[data-series]")
        _shoot(page, out / "compare.png")

        page = tab(f"#/experiments/{leaky}")
        _loaded(page, "#evaluation img.confusion")
        _loaded(page, "#evaluation img.mistakes")
        _loaded(page, "#layer-health img")
        _shoot(page, out / "experiment.png", height=1000)
        _shoot(page, out / "experiment-insight.png", height=1200, top="#evaluation")

        page = tab("#/new?preset=leaky_relu")
        page.wait_for_selector("td.total-params:text('266,610')")
        page.fill("#f-name", "leaky-relu-sgd")
        _shoot(page, out / "new-experiment.png", height=1300)

        page = tab(f"#/studies/{study}")
        page.wait_for_selector("h1 .badge.finished", timeout=60_000)
        page.wait_for_selector("#leaderboard tbody tr")
        _shoot(page, out / "study.png")
        page = tab("#/studies")
        page.wait_for_selector("#studies tr[data-status='finished']")
        _shoot(page, out / "studies.png", height=900)

        page = tab("#/draw")
        _draw_a_seven(page)
        _shoot(page, out / "draw.png", height=900)

        phone = {"width": 390, "height": 844}
        page = tab("#/experiments", **phone)
        page.wait_for_selector("table#experiments")
        _shoot(page, out / "experiments-phone.png", height=844)
        page = tab(f"#/experiments/{leaky}", **phone)
        _loaded(page, "#evaluation img.confusion")
        _shoot(page, out / "experiment-phone.png", height=844)
        page = tab("#/draw", **phone)
        _draw_a_seven(page)
        _shoot(page, out / "draw-phone.png", height=844)
        browser.close()


def train_everything(service: Service) -> tuple[dict[str, str], str]:
    """Submit what is not in the database yet (a `--keep` folder keeps it), wait for all."""
    listed = service.http.get("/experiments", params={"limit": 100}).json()["data"]
    known = {row["name"]: row["id"] for row in listed}
    ids = {
        name: known.get(name) or service.submit(name, spec) for name, spec in EXPERIMENTS.items()
    }
    studies = service.http.get("/studies").json()["data"]
    study = next((row["id"] for row in studies if row["name"] == STUDY["name"]), None)
    if study is None:
        response = service.http.post("/studies", json=STUDY)
        response.raise_for_status()
        study = str(response.json()["id"])
    for name, experiment_id in ids.items():
        body = service.finished(experiment_id)
        print(
            f"  {name}: {body['status']}, {body['epochs_done']} epochs, "
            f"test accuracy {body['test_accuracy']}"
        )
    _wait(
        lambda: service.http.get(f"/studies/{study}").json()["status"] == "finished",
        what="the study",
        timeout=1800,
    )
    return ids, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="the service's folder: kept, and reused by a later run"
    )
    args = parser.parse_args()
    mnist_path = os.environ.get("MNIST_PATH")
    if not mnist_path:
        sys.exit("set MNIST_PATH to the MNIST .npz: the pictures show the real dataset")
    if not Path(CHROMIUM).exists():
        sys.exit(f"no browser at {CHROMIUM}: apt-get install chromium, or set CHROMIUM")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="mnist-lab-docs-"))
    folder.mkdir(parents=True, exist_ok=True)
    service = Service(folder, mnist_path)
    try:
        print("training (the README's and the learner's nets, and the batchnorm study)")
        ids, study = train_everything(service)
        print("charts")
        save_charts(service, ids, ROOT / "docs" / "images")
        print("screenshots")
        take_screenshots(service, ids, study, ROOT / "docs" / "screenshots")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
