"""Disk: what the service uses and has left (/health, /metrics), and the guard that refuses
new trainings (507) when the disk is nearly full instead of letting them fail mid-epoch."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.maintenance.disk import DiskReporter, free_bytes
from service.storage import model_key
from tests.factories import tiny_spec
from tests.helpers import publish, runtime_of, save_untrained_model, submit

FULL = 2**62  # more free space than any disk has: the guard always sees a full disk


def test_trainings_are_refused_with_507_when_the_disk_is_nearly_full(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings(min_free_disk_bytes=FULL))) as client:
        experiment = client.post("/experiments", json=tiny_spec())
        study = client.post(
            "/studies", json={"preset": "optimizers", "epochs": 1, "train_size": 500}
        )
        listed = client.get("/experiments").json()
    for refused in (experiment, study):
        assert refused.status_code == 507, refused.text
        body = refused.json()
        assert body["error"] == "insufficient_storage"
        assert "MIN_FREE_DISK_BYTES" in body["detail"]
        assert "python -m service gc" in body["detail"]
    assert listed["count"] == 0  # nothing was stored that a worker would then fail to save


def test_the_guard_lets_trainings_in_while_space_remains(client: TestClient) -> None:
    assert runtime_of(client).settings.min_free_disk_bytes > 0
    submit(client)


def test_health_reports_the_store_the_database_and_free_disk(client: TestClient, tmp_path) -> None:
    experiment_id = publish(client, save_untrained_model(tmp_path / "m.keras"))
    model_bytes = runtime_of(client).store.size(model_key(experiment_id))
    disk = client.get("/health").json()["disk"]
    assert disk["store_bytes"] >= model_bytes
    assert disk["database_bytes"] > 0
    assert disk["free_bytes"] > 0
    assert disk["min_free_bytes"] == runtime_of(client).settings.min_free_disk_bytes
    assert disk["low"] is False


def test_metrics_report_disk_use(client: TestClient, tmp_path) -> None:
    publish(client, save_untrained_model(tmp_path / "m.keras"))
    text = client.get("/metrics").text
    for gauge in ("mnist_store_bytes", "mnist_database_bytes", "mnist_disk_free_bytes"):
        line = next(line for line in text.splitlines() if line.startswith(f"{gauge} "))
        assert float(line.split()[1]) > 0, line


def test_a_report_is_reused_within_its_ttl_and_measured_again_after(
    client: TestClient, tmp_path
) -> None:
    runtime = runtime_of(client)
    reporter = DiskReporter(runtime.settings, runtime.store, runtime.db, ttl=3600)
    before = reporter.report()
    publish(client, save_untrained_model(tmp_path / "m.keras"))
    assert reporter.report() is before
    fresh = DiskReporter(runtime.settings, runtime.store, runtime.db, ttl=0)
    assert fresh.report().store_bytes > before.store_bytes


def test_free_space_is_read_where_folders_will_be_made(
    make_settings: Callable[..., Settings], tmp_path
) -> None:
    not_yet = make_settings(work_dir=str(tmp_path / "a" / "b" / "c"))
    free = free_bytes(not_yet)
    assert free is not None
    assert free > 0
