"""Decompression amplification on /predict: images that weigh little but would decode into
far more pixels are refused from their headers, before any of them is decoded, and a request
naming no model decodes nothing at all."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from service.api.app import create_app
from service.config import Settings
from tests.helpers import publish, save_untrained_model


def _bilevel_png(side: int) -> str:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts images whose pixels Pillow decodes (ImageFile.load), as a spy: loads still run."""
    loads: list[int] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(image: ImageFile.ImageFile) -> Any:
        loads.append(1)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return loads


def test_bombs_naming_no_model_are_refused_without_decoding(
    client: TestClient, decoded: list[int]
) -> None:
    response = client.post("/predict", json={"images_base64": [_bilevel_png(5000)] * 256})
    assert response.status_code == 404
    assert decoded == []


def test_bombs_for_a_real_model_are_refused_from_their_headers(
    client: TestClient, decoded: list[int], tmp_path: Path
) -> None:
    publish(client, save_untrained_model(tmp_path / "model.keras"))
    response = client.post("/predict", json={"images_base64": [_bilevel_png(5000)] * 256})
    assert response.status_code == 413
    assert "MAX_IMAGE_PIXELS" in response.json()["detail"]
    assert decoded == []


def test_a_request_whose_images_add_up_to_too_many_pixels_is_refused_before_decoding(
    settings: Settings, make_settings: Callable[..., Settings], decoded: list[int], tmp_path: Path
) -> None:
    limits = make_settings(max_image_pixels=1_000_000, max_request_pixels=4_000_000)
    with TestClient(create_app(limits)) as client:
        publish(client, save_untrained_model(tmp_path / "model.keras"))
        images = [_bilevel_png(1000)] * 5  # each within its limit, 5 M pixels together
        response = client.post("/predict", json={"images_base64": images})
        assert response.status_code == 413
        detail = response.json()["detail"]
        assert "images_base64[4]" in detail
        assert "MAX_REQUEST_PIXELS" in detail
        assert decoded == []
        upload = [("file", (f"{i}.png", base64.b64decode(images[0]))) for i in range(5)]
        assert client.post("/predict/upload", files=upload).status_code == 413
        assert decoded == []
