"""`python -m service`'s command line: flags override their environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service import __version__
from service.__main__ import FLAGS, apply_flags, build_parser
from service.config import Settings
from tests.helpers import REPO, ServiceProcess, free_port, wait_for


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_version_prints_the_package_version() -> None:
    assert _run("--version").strip() == f"python -m service {__version__}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            (),
            {"--host", "--port", "--workers", "--slots", "--database-url", "--queue-url"}
            | {"--access-log"},
        ),
        (
            ("api",),
            {"--host", "--port", "--workers", "--database-url", "--queue-url", "--access-log"},
        ),
        (("worker",), {"--slots", "--database-url", "--queue-url"}),
    ],
)
def test_help_lists_each_flag_with_its_variable(
    command: tuple[str, ...], expected: set[str]
) -> None:
    help_text = " ".join(_run(*command, "--help").split())
    for flag in FLAGS:
        if flag.name in expected:
            # A switch (bool) takes no value.
            shown = flag.name if flag.type is bool else f"{flag.name} {flag.variable}"
            assert shown in help_text
            assert f"(overrides ${flag.variable})" in help_text
        else:
            assert flag.name not in help_text


def test_flags_before_or_after_the_command_override_the_environment() -> None:
    environ = {"PORT": "8000", "HOST": "127.0.0.1", "WORKER_SLOTS": "1"}
    args = build_parser().parse_args(["--port", "9000", "api", "--host", "0.0.0.0"])
    apply_flags(args, environ)
    assert environ == {"PORT": "9000", "HOST": "0.0.0.0", "WORKER_SLOTS": "1"}

    args = build_parser().parse_args(["worker", "--slots", "3"])
    apply_flags(args, environ)
    assert environ["WORKER_SLOTS"] == "3"


def test_access_log_is_a_switch() -> None:
    environ: dict[str, str] = {}
    apply_flags(build_parser().parse_args(["api"]), environ)
    assert "ACCESS_LOG" not in environ
    apply_flags(build_parser().parse_args(["api", "--access-log"]), environ)
    assert environ["ACCESS_LOG"] == "true"
    assert Settings(access_log=environ["ACCESS_LOG"]).access_log


def test_a_bad_flag_value_is_refused_before_anything_starts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--port", "http"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert "argument --port: invalid int value: 'http'" in result.stderr


def _answers(port: int) -> Any:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_listens_on_the_port_its_flag_names_not_the_environment(
    settings: Settings, start_service: Callable[..., ServiceProcess]
) -> None:
    flagged, environment = free_port(), free_port()
    service = start_service(
        settings.model_copy(update={"port": environment}),
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(flagged),
        "--workers",
        "2",
    )
    wait_for(lambda: _answers(flagged), timeout=60, what=f"the API on port {flagged}")
    assert not _answers(environment)
    # uvicorn's supervisor and its two API processes.
    wait_for(lambda: len(service.children()) >= 2, timeout=30, what="two API processes")
    assert "2 process(es)" in service.log()
    assert os.environ.get("PORT") != str(flagged)  # the test process's own environment is untouched
