"""The tutorials' `curl` examples run against a live `python -m service api`, so they stay true.

Each shell block of the learner's and the teacher's tutorials made only of `curl` commands (no
`…` placeholder) runs in bash, with `localhost:8000` pointed at the live API, and `ID`, `A`,
`B`, `C` naming fresh experiments (no worker: they stay queued); on the teacher's page `ID`
names a fresh challenge and `STUDY` a fresh study. A `curl` wrapper records every answer's
status: an example the API refuses as malformed or unauthorised (400, 401, 403, 404, 405, 413,
415, 422) or that breaks it (5xx) fails the test; 409 and 202 (a queued experiment has no
evaluation yet) are answers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import REPO, ServiceProcess, free_port, wait_for

TUTORIALS = REPO / "docs" / "tutorials"
TOKEN = "teacher-token"  # what $API_TOKEN and $TOKEN hold (the API itself is open)
BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)
REFUSED = {400, 401, 403, 404, 405, 413, 415, 422}
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
        commands = [line for line in block.splitlines() if re.match(r"^[A-Za-z]", line)]
        if commands and all(c.startswith("curl ") for c in commands) and "…" not in block:
            blocks.append(block)
    return blocks


@pytest.mark.parametrize(("page", "least"), [("learner.md", 4), ("teacher.md", 3)])
def test_a_tutorials_curl_examples_work(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
    page: str,
    least: int,
) -> None:
    assert shutil.which("curl"), "the documentation's examples need curl on PATH"
    blocks = runnable_blocks(TUTORIALS / page)
    assert len(blocks) >= least, f"{page} lost its curl examples"
    teacher = page == "teacher.md"
    port = free_port()
    api = start_service(make_settings(port=port), "api")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(base), timeout=120, what=f"the API to answer ({api.log_path})")
    (tmp_path / "my_net.json").write_text(json.dumps(tiny_spec()))

    codes = tmp_path / "codes"
    for number, block in enumerate(blocks):
        ids = {name: _submit(base, f"docs-{number}-{name}") for name in ("ID", "A", "B", "C")}
        if teacher:
            ids |= _teacher_ids(base) | {"API_TOKEN": TOKEN, "TOKEN": TOKEN}
        # A closing time in an example is in the future when written, not forever.
        block = re.sub(r'"closes_at": "[^"]*"', f'"closes_at": "{_next_year()}"', block)
        _run_block(block, port, tmp_path, ids)
    _check_answers(codes, 2 * len(blocks))


def test_the_class_tutorials_people_examples_work(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """The people block (it sets T= first) on a service with the teacher's API_TOKEN."""
    text = (TUTORIALS / "teacher.md").read_text()
    blocks = [block for block in BLOCK.findall(text) if "localhost:8000/people" in block]
    assert len(blocks) == 1, "the teacher's tutorial lost its people example"
    port = free_port()
    api = start_service(make_settings(port=port, api_token=TOKEN), "api")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(base), timeout=120, what=f"the API to answer ({api.log_path})")
    (tmp_path / "class.csv").write_text("name,role\ncarol,student\n")
    added = httpx.post(
        f"{base}/people",
        json={"people": ["docs-person"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert added.status_code == 201, added.text
    person = str(added.json()["data"][0]["id"])
    _run_block(blocks[0], port, tmp_path, {"API_TOKEN": TOKEN, "ID": person})
    _check_answers(tmp_path / "codes", 5)


def _run_block(block: str, port: int, folder: Path, variables: dict[str, str]) -> None:
    script = WRAPPER + block.replace("localhost:8000", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "BODY": str(folder / "body"), "CODES": str(folder / "codes")}
        | variables,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"this block failed: {done.stderr}\n{block}"


def _check_answers(codes: Path, least: int) -> None:
    answers = codes.read_text().splitlines()
    assert len(answers) >= least
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


def _teacher_ids(base: str) -> dict[str, str]:
    challenge = httpx.post(f"{base}/challenges", json={"name": "docs"}, timeout=60)
    assert challenge.status_code == 201, challenge.text
    study = httpx.post(
        f"{base}/studies",
        json={"preset": "optimizers", "epochs": 1, "train_size": 1000},
        timeout=60,
    )
    assert study.status_code == 202, study.text
    return {"ID": str(challenge.json()["id"]), "STUDY": str(study.json()["id"])}


def _next_year() -> str:
    return (datetime.now(UTC) + timedelta(days=365)).isoformat(timespec="seconds")
