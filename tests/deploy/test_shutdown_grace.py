"""The compose file gives each worker time to drain: its stop_grace_period is longer than the
worker's SHUTDOWN_GRACE_SECONDS plus the time to release its claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from service.config import Settings
from service.worker.consumer import RELEASE_SECONDS

REPO = Path(__file__).resolve().parents[2]
_DURATION = re.compile(r"(?:(\d+)m)?(?:(\d+)s)?")


def seconds(duration: str) -> float:
    match = _DURATION.fullmatch(duration)
    assert duration, "empty compose duration"
    assert match, f"unexpected compose duration {duration!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


@pytest.mark.parametrize("name", ["worker", "worker-gpu"])
def test_stop_grace_period_covers_the_shutdown_grace(name: str) -> None:
    service = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][name]
    grace = float(service.get("environment", {}).get("SHUTDOWN_GRACE_SECONDS", 0) or 0)
    grace = grace or Settings.model_fields["shutdown_grace_seconds"].default
    assert grace + RELEASE_SECONDS <= seconds(service["stop_grace_period"]), service
