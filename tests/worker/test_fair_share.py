"""Fair share with real workers: one person's queue of jobs does not hold the others back.

One slot (the order is exact), then two lone workers (the claim is one transaction in the
database; in the scaled CI pass on PostgreSQL + Redis). Every job is submitted before the
workers start, so what runs first is the claim's choice alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import ADMIN, Class, ServiceProcess, submit, wait_finished, wait_for

HEAVY_JOBS = 4
LABELS = ("host-a", "host-b")
# Cold TensorFlow starts on a shared 2-core machine.
FINISH_TIMEOUT = 300.0
READY_TIMEOUT = 120.0


def quick_spec() -> dict[str, Any]:
    return tiny_spec(epochs=1, train_size=1000)


def start_worker(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    root: Path,
    label: str,
) -> ServiceProcess:
    """A lone one-slot worker as if on its own machine: its own work directory and label."""
    settings = make_settings(work_dir=str(root / f"work-{label}"), worker_label=label)
    worker = start_service(settings, "worker")
    wait_for(
        lambda: f"worker {label}:" in worker.log(),
        timeout=READY_TIMEOUT,
        interval=0.1,
        what=f"worker {label} to start consuming",
    )
    return worker


LIGHT = ("alice", "bob")


def _class_queue(client: TestClient) -> tuple[Class, list[str], dict[str, str]]:
    """`heavy` queues HEAVY_JOBS jobs, then each light person one."""
    school = Class(client)
    for name in ("heavy", *LIGHT):
        school.add(name)
    heavy = [
        submit(client, quick_spec(), headers=school.as_("heavy"))["id"] for _ in range(HEAVY_JOBS)
    ]
    light = {name: submit(client, quick_spec(), headers=school.as_(name))["id"] for name in LIGHT}
    return school, heavy, light


def _started_order(client: TestClient, ids: list[str]) -> list[str]:
    finished = [wait_finished(client, i, timeout=FINISH_TIMEOUT) for i in ids]
    assert [e["status"] for e in finished] == ["succeeded"] * len(ids), finished
    return [e["id"] for e in sorted(finished, key=lambda e: e["started_at"])]


def test_one_slot_starts_the_light_people_before_the_heavy_persons_rest(
    settings: Settings,
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    class_settings = make_settings(api_token=ADMIN, worker_slots=1)
    with TestClient(create_app(class_settings)) as client:
        _, heavy, light = _class_queue(client)
        fair = [heavy[0], light["alice"], light["bob"], *heavy[1:]]
        listed = client.get("/experiments?status=queued&limit=200").json()["data"]
        positions = {e["id"]: e["queue_position"] for e in listed}
        assert sorted(positions, key=lambda i: positions[i]) == fair  # the page's order
        worker = start_service(class_settings, "worker")
        assert _started_order(client, heavy + list(light.values())) == fair, worker.log()[-3000:]
    assert f"experiment {light['alice']} starts on worker" in worker.log()
    assert "by alice" in worker.log()


def test_two_workers_on_one_queue_start_each_light_person_early(
    settings: Settings,
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    class_settings = make_settings(api_token=ADMIN)
    with TestClient(create_app(class_settings)) as client:
        _, heavy, light = _class_queue(client)
        workers = [start_worker(make_settings, start_service, tmp_path, label) for label in LABELS]
        order = _started_order(client, heavy + list(light.values()))
        for name, experiment_id in light.items():
            before = [i for i in order[: order.index(experiment_id)] if i in heavy]
            assert len(before) <= 1, (name, order, [w.log()[-2000:] for w in workers])
