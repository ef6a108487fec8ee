"""Two worker slots, ten queued jobs: all finish, never more than two at once, in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import ServiceProcess, wait_for

FINISHED = ("succeeded", "failed", "cancelled")
JOBS = 10
SLOTS = 2
# Ten cold TensorFlow starts, two at a time, on a shared 2-core machine.
TIMEOUT = 600.0


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at one instant (one ending as another starts: 1)."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda event: (event[0], event[1]),  # at a tie, the end comes first
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps_not_touches() -> None:
    t = [datetime(2026, 1, 1, 0, 0, second) for second in range(6)]
    assert most_at_once([(t[0], t[1]), (t[1], t[2]), (t[2], t[3])]) == 1
    assert most_at_once([(t[0], t[3]), (t[1], t[4]), (t[2], t[5])]) == 3
    assert most_at_once([(t[0], t[5]), (t[1], t[2]), (t[3], t[4])]) == 2


@pytest.mark.usefixtures("settings")  # wipes PostgreSQL and Redis in the scaled run
def test_two_slots_run_ten_jobs_two_at_a_time_in_submission_order(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
) -> None:
    settings = make_settings(worker_slots=SLOTS)
    with TestClient(create_app(settings)) as client:
        worker = start_service(settings, "worker")
        submitted = []
        for _ in range(JOBS):
            created = client.post("/experiments", json=tiny_spec(epochs=1, train_size=1000))
            assert created.status_code == 202, created.text
            submitted.append(created.json()["id"])

        def all_finished() -> list[dict[str, Any]] | None:
            assert worker.process.poll() is None, worker.log()[-4000:]
            bodies = [client.get(f"/experiments/{i}").json() for i in submitted]
            return bodies if all(b["status"] in FINISHED for b in bodies) else None

        finished: list[dict[str, Any]] = wait_for(
            all_finished, timeout=TIMEOUT, interval=0.5, what="all ten jobs to finish"
        )
        assert [e["status"] for e in finished] == ["succeeded"] * JOBS, worker.log()[-4000:]

    attempts = []
    for experiment in finished:
        (attempt,) = experiment["attempts"]  # no job was lost and retried
        attempts.append(attempt)
    intervals = [
        (datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(a["ended_at"]))
        for a in attempts
    ]
    assert most_at_once(intervals) == SLOTS, intervals  # both slots used, never a third

    # Started in submission order; two slots taking work at the same moment may swap a pair
    # of neighbours, nothing more.
    start_order = sorted(range(JOBS), key=lambda index: intervals[index][0])
    assert all(abs(index - position) <= 1 for position, index in enumerate(start_order)), (
        start_order
    )
    assert len({a["worker"] for a in attempts}) == 1
