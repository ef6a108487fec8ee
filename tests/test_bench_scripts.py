"""Every benchmark script still starts: its imports resolve and its flags parse.

The suite times nothing (benchmarks print figures), but a script that no longer imports is a
figure nobody can reproduce: bench/events.py once imported helpers bench/predict.py had lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The scripts; the modules they share (harness.py, train_profile.py) run through them.
SCRIPTS = sorted(
    path.name for path in BENCH.glob("*.py") if 'if __name__ == "__main__":' in path.read_text()
)


def test_every_script_is_checked() -> None:
    assert {"predict.py", "events.py", "history_latency.py", "study.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_starts_and_describes_its_flags(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


TINY_GROWTH = ["--experiments", "200", "--studies", "2", "--trials", "10", "--epochs", "3"]
TINY_GROWTH += ["--repeat", "2", "--explain"]


def test_growth_runs_small_end_to_end(tmp_path: Path) -> None:
    """The growth bench seeds, serves, times every read and explains the slowest, tiny."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "growth.py"), *TINY_GROWTH],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "list: deep page (cursor at 100)" in done.stdout
    assert "study leaderboard (10 trials)" in done.stdout
    assert "per 1,000 experiments (sqlite)" in done.stdout
    assert "SEARCH" in done.stdout or "SCAN" in done.stdout  # a query plan
