"""What importing the API loads: nothing of the worker (its supervisor, the training process).

TensorFlow itself is welcome: the API serves predictions with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def modules_after_importing_the_api() -> set[str]:
    """`sys.modules` of a fresh interpreter that imported `service.api.app` and nothing else."""
    script = "import json, sys, service.api.app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    return modules_after_importing_the_api()


def test_the_api_imports_nothing_from_the_worker(loaded: set[str]) -> None:
    assert sorted(name for name in loaded if name.split(".")[:2] == ["service", "worker"]) == []
