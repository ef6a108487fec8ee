"""What the lab page's browser tests share: a real `python -m service` on a free port with an
HTTP client beside it (`Lab`), Debian's chromium for Playwright, and small page helpers.

The fixtures built on these (`lab`, `browser`, `open_page`, `screenshots`) are in
tests/web/conftest.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from tests.helpers import MNIST_PATH, ServiceProcess, free_port, wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Every browser test module sets `pytestmark = needs_chromium`.
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM}")
TOKEN = "lab-secret"
QUICK_FIT = {"epochs": 2, "batch_size": 64, "train_size": 1000, "validation_size": 1000, "seed": 42}
FINISHED = ("succeeded", "failed", "cancelled")


def lab_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'service.db'}",
        "queue_url": f"sqlite:///{root / 'queue.db'}",
        "models_dir": str(root / "models"),
        "work_dir": str(root / "work"),
        "mnist_path": MNIST_PATH,
        "port": free_port(),
        "events_poll_seconds": 0.2,
        "heartbeat_seconds": 1.0,
        "lease_seconds": 6.0,
    }
    values.update(overrides)
    return Settings(**values)


class Lab:
    """A running service and an HTTP client for it."""

    def __init__(self, settings: Settings, process: ServiceProcess) -> None:
        self.settings = settings
        self.process = process
        self.url = f"http://127.0.0.1:{settings.port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def wait_ready(self) -> None:
        def up() -> bool:
            try:
                return self.http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=120, interval=0.3, what=f"the service ({self.process.log()[-2000:]})")

    def submit(
        self,
        name: str,
        *,
        tags: tuple[str, ...] = (),
        layers: list[dict[str, Any]] | None = None,
        **fit: Any,
    ) -> str:
        spec = {
            "name": name,
            "tags": list(tags),
            "layers": layers
            or [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
            "compile": {"optimizer": {"type": "Adam"}},
            "fit": {**QUICK_FIT, **fit},
        }
        headers = {"Authorization": f"Bearer {TOKEN}"} if self.settings.api_token else {}
        response = self.http.post("/experiments", json=spec, headers=headers)
        assert response.status_code == 202, response.text
        experiment_id: str = response.json()["id"]
        return experiment_id

    def status(self, experiment_id: str) -> str:
        status: str = self.http.get(f"/experiments/{experiment_id}").json()["status"]
        return status

    def wait_finished(self, experiment_id: str) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            body: dict[str, Any] = self.http.get(f"/experiments/{experiment_id}").json()
            return body if body["status"] in FINISHED else None

        result: dict[str, Any] = wait_for(finished, timeout=240, interval=0.5, what=experiment_id)
        return result

    def cancel(self, experiment_id: str) -> None:
        response = self.http.post(f"/experiments/{experiment_id}/cancel")
        assert response.status_code in (200, 202), response.text

    def wait_for_a_model(self) -> None:
        """Until some model is servable; one is trained when none is on its way."""
        if not self.http.get("/models").json()["count"]:
            self.wait_finished(self.submit("a-model-to-draw-for", epochs=1))
        wait_for(lambda: self.http.get("/models").json()["count"], timeout=240, what="a model")

    def stop(self) -> None:
        self.http.close()
        self.process.stop()


def start_lab(root: Path, *args: str, **overrides: Any) -> Lab:
    root.mkdir(parents=True, exist_ok=True)
    settings = lab_settings(root, **overrides)
    lab = Lab(settings, ServiceProcess(list(args), settings, root / "service.log"))
    lab.wait_ready()
    return lab


def circles(page: Any, title: str) -> int:
    """How many points a chart of the page draws."""
    return int(page.locator(f"figure[data-title='{title}'] svg circle").count())


def mnist_png(index: int) -> bytes:
    """Test image `index` of MNIST as a PNG file's bytes."""
    with np.load(MNIST_PATH) as data:
        image = data["x_test"][index]
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()
