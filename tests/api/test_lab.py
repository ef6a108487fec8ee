"""What the lab page needs from the API: the page, offline docs, the validate-only dry run."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests import factories


def test_the_page_carries_its_config_and_asks_for_no_external_asset(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    config = re.search(r'<script type="application/json" id="lab-config">(.*?)</script>', page.text)
    assert config is not None
    values = json.loads(config.group(1))
    assert values["token_required"] is False
    assert set(values["presets"]) == {"leaky_relu", "batchnorm", "dropout"}
    assert "https://" not in page.text


def test_docs_and_redoc_load_their_assets_from_the_service(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets, path
        for asset in assets:
            assert asset.startswith("/"), f"{path} loads {asset} from elsewhere"
            if asset.startswith("/static/"):
                assert client.get(asset).status_code == 200, asset


def test_validate_answers_the_summary_and_queues_nothing(client: TestClient) -> None:
    answer = client.post("/experiments/validate", json=factories.leaky_relu_spec())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["summary"]["total_params"] == 266_610
    assert body["spec"]["fit"]["batch_size"] == 32  # defaults filled in
    assert client.get("/experiments").json()["count"] == 0


def test_validate_names_the_field_it_refuses(client: TestClient) -> None:
    spec = factories.dropout_spec()
    spec["layers"][1]["rate"] = 1.5
    answer = client.post("/experiments/validate", json=spec)
    assert answer.status_code == 422
    locs = [detail["loc"] for detail in answer.json()["details"]]
    assert any(loc[:3] == ["body", "layers", 1] and loc[-1] == "rate" for loc in locs), locs


def test_validate_applies_the_submission_limits(client: TestClient) -> None:
    spec = factories.leaky_relu_spec()
    spec["fit"]["epochs"] = 10_000
    answer = client.post("/experiments/validate", json=spec)
    assert answer.status_code == 422
    assert ["body", "fit", "epochs"] in [detail["loc"] for detail in answer.json()["details"]]
