"""Learning-curve pictures: valid SVG with one line per series and every finished epoch on it."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.charts import LEGEND_CHARS, PALETTE, WIDTH, _nice_ticks
from service.config import Settings
from service.db import claims, leases
from service.db.session import Database
from service.domain import EpochRecord
from tests.factories import tiny_spec

SVG_NS = "{http://www.w3.org/2000/svg}"


def _trained(client: TestClient, settings: Settings, name: str, losses: list[float]) -> str:
    """An experiment with these epochs recorded, as a worker would have recorded them."""
    spec = tiny_spec(epochs=len(losses))
    spec["name"] = name
    experiment_id: str = client.post("/experiments", json=spec).json()["id"]
    db = Database(settings.database_url)
    with db.scope() as session:
        claim = claims.claim(session, experiment_id=experiment_id, worker="t", lease_seconds=60)
        assert claim is not None
    for epoch, loss in enumerate(losses, start=1):
        record = EpochRecord(epoch, loss, 1 - loss / 3, loss * 1.1, 1 - loss / 2.5, 0.5, 1)
        with db.scope() as session:
            leases.record_epoch(
                session, experiment_id=experiment_id, attempt=1, record=record, lease_seconds=60
            )
    db.dispose()
    return experiment_id


def _polylines(svg: str) -> list[list[tuple[float, float]]]:
    root = ElementTree.fromstring(svg)
    return [
        [tuple(map(float, point.split(","))) for point in line.attrib["points"].split()]  # type: ignore[misc]
        for line in root.iter(f"{SVG_NS}polyline")
    ]


def test_history_chart_draws_training_and_validation(
    client: TestClient, settings: Settings
) -> None:
    experiment_id = _trained(client, settings, "leaky", [2.0, 1.0, 0.6, 0.5])
    response = client.get(f"/experiments/{experiment_id}/history.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    lines = _polylines(response.text)
    assert [len(line) for line in lines] == [4, 4]
    training = lines[0]
    assert training[0][1] < training[-1][1]  # a falling loss is drawn going down (y grows down)
    assert "leaky: loss (running)" in response.text
    assert ">validation 0.5500<" in response.text  # the final value, in the legend
    accuracy = client.get(
        f"/experiments/{experiment_id}/history.svg", params={"metric": "accuracy"}
    )
    assert accuracy.status_code == 200
    assert "leaky: accuracy" in accuracy.text


def test_compare_chart_draws_one_line_per_experiment(
    client: TestClient, settings: Settings
) -> None:
    fast = _trained(client, settings, "adam", [0.5, 0.3, 0.2])
    slow = _trained(client, settings, "sgd", [1.5, 1.0, 0.8, 0.7, 0.6])
    response = client.get("/compare.svg", params={"ids": [fast, slow], "metric": "val_loss"})
    assert response.status_code == 200
    # Each run's training curve (thin), then its validation curve; legend lines after.
    assert [len(line) for line in _polylines(response.text)][:4] == [3, 3, 5, 5]
    # The legend names each run and gives its final values on the line under its name.
    assert ">adam<" in response.text
    assert ">final 0.2200, train 0.2000<" in response.text
    assert ">final 0.6600, train 0.6000<" in response.text
    alone = client.get(
        "/compare.svg", params={"ids": f"{fast},{slow}", "metric": "val_loss", "training": False}
    )
    assert [len(line) for line in _polylines(alone.text)][:2] == [3, 5]


def test_compare_legend_fits_long_names_and_keeps_final_values(
    client: TestClient, settings: Settings
) -> None:
    long = "leaky-relu-sgd-with-he-normal-and-a-very-long-description"
    a = _trained(client, settings, long, [0.5, 0.3])
    b = _trained(client, settings, "batchnorm-sgd", [0.4, 0.25])

    root = ElementTree.fromstring(client.get("/compare.svg", params={"ids": [a, b]}).text)
    texts = [element.text or "" for element in root.iter(f"{SVG_NS}text")]

    shown = next(text for text in texts if text.startswith("leaky-relu-sgd"))
    assert shown.endswith("…")
    assert len(shown) <= LEGEND_CHARS
    assert "batchnorm-sgd" in texts
    assert "final 0.8800, train 0.9000" in texts
    assert "final 0.9000, train 0.9167" in texts


def test_compare_tells_more_than_eight_runs_apart(client: TestClient, settings: Settings) -> None:
    ids = [_trained(client, settings, f"run-{i}", [1.0 - i / 20, 0.5]) for i in range(12)]
    response = client.get("/compare.svg", params={"ids": [*ids[:6], ",".join(ids[6:])]})

    assert response.status_code == 200
    root = ElementTree.fromstring(response.text)
    bold = [
        (line.attrib["stroke"], line.attrib.get("stroke-dasharray"))
        for line in root.iter(f"{SVG_NS}polyline")
        if "stroke-opacity" not in line.attrib
        and len(line.attrib["points"].split()) == 2
        and line.attrib["stroke"] in PALETTE
    ]
    runs = bold[: len(ids)]
    assert len(set(runs)) == len(ids)  # a colour and dash pair of its own
    assert {colour for colour, _ in runs} <= set(PALETTE)


@pytest.mark.parametrize("path", ["/experiments/{a}/history.png", "/compare.png?ids={a}&ids={b}"])
def test_every_chart_has_a_png_variant(client: TestClient, settings: Settings, path: str) -> None:
    a = _trained(client, settings, "adam", [0.5, 0.3, 0.2])
    b = _trained(client, settings, "sgd", [1.5, 1.0, 0.8, 0.7, 0.6])
    response = client.get(path.format(a=a, b=b))

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (WIDTH, 420)
    assert len(image.getcolors(1 << 20) or []) > 50  # curves, text and axes, not a blank


def test_chart_without_epochs_says_so(client: TestClient) -> None:
    experiment_id = client.post("/experiments", json=tiny_spec()).json()["id"]
    response = client.get(f"/experiments/{experiment_id}/history.svg")
    assert response.status_code == 200
    assert "no finished epochs yet" in response.text
    assert _polylines(response.text) == []


def test_chart_errors(client: TestClient) -> None:
    assert client.get("/experiments/nope/history.svg").status_code == 404
    assert client.get("/compare.svg", params={"ids": ["nope"]}).status_code == 404
    assert client.get("/compare.svg").status_code == 422
    too_many = client.get("/compare.svg", params={"ids": ",".join(f"x{i}" for i in range(25))})
    assert too_many.status_code == 422
    assert "1 to 24" in too_many.json()["detail"]
    bad_metric = client.get("/compare.svg", params={"ids": ["x"], "metric": "f1"})
    assert bad_metric.status_code == 422


@pytest.mark.parametrize(
    ("low", "high"), [(0.0, 1.0), (0.69, 0.86), (0.4, 1.87), (5.0, 5.0), (-1.0, 3e5)]
)
def test_ticks_cover_the_data(low: float, high: float) -> None:
    ticks = _nice_ticks(low, high)
    assert ticks[0] <= low
    assert ticks[-1] >= high
    assert 2 <= len(ticks) <= 12
