"""The tutorials' `curl` examples run against a live `python -m service api`, so they stay true.

Each shell block of the learner's tutorial made only of `curl` commands (no `…` placeholder)
runs in bash, with `localhost:8000` pointed at the live API, and `ID`, `A`, `B`, `C` naming
fresh experiments (no worker: they stay queued). A `curl` wrapper records every answer's
status: an example the API refuses as malformed (400, 404, 405, 413, 415, 422) or that breaks
it (5xx) fails the test; 409 and 202 (a queued experiment has no evaluation yet) are answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import REPO, ServiceProcess, free_port, wait_for

PAGES = [REPO / "docs" / "tutorials" / "learner.md"]
BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)
REFUSED = {400, 404, 405, 413, 415, 422}
# Records each answer's status and URL in $CODES instead of printing it.
WRAPPER = """set -euo pipefail
curl() {
    command curl -sS -o "$BODY" -w '%{http_code} %{method} %{url_effective}\\n' "$@" >>"$CODES"
}
"""


def runnable_blocks(page: Path) -> list[str]:
    blocks = []
    for block in BLOCK.findall(page.read_text()):
        # A command starts a line at column 0; its JSON body's lines are indented or quoted.
        commands = [line for line in block.splitlines() if re.match(r"^[a-z]", line)]
        if commands and all(c.startswith("curl ") for c in commands) and "…" not in block:
            blocks.append(block)
    return blocks


def test_the_learner_tutorials_curl_examples_work(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    assert shutil.which("curl"), "the documentation's examples need curl on PATH"
    blocks = [block for page in PAGES for block in runnable_blocks(page)]
    assert len(blocks) >= 4, "the learner's tutorial lost its curl examples"
    port = free_port()
    api = start_service(make_settings(port=port), "api")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(base), timeout=120, what=f"the API to answer ({api.log_path})")

    codes = tmp_path / "codes"
    for number, block in enumerate(blocks):
        ids = {name: _submit(base, f"docs-{number}-{name}") for name in ("ID", "A", "B", "C")}
        script = WRAPPER + block.replace("localhost:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "BODY": str(tmp_path / "body"), "CODES": str(codes)}
            | ids,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"block {number} failed: {done.stderr}\n{block}"
    answers = codes.read_text().splitlines()
    assert len(answers) >= 15
    bad = [a for a in answers if int(a.split()[0]) in REFUSED or a.startswith("5")]
    assert not bad, bad


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _submit(base: str, name: str) -> str:
    answer = httpx.post(f"{base}/experiments", json=tiny_spec() | {"name": name}, timeout=60)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])
