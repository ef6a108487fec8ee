"""Every runnable example of README.md, docs/tutorials/ and docs/how-to/ runs against a live
service, in page order, so the documentation stays true.

A runnable example is a fenced `sh`, `bash`, `shell` or `python` block (`json` and `text`
blocks are answers, shown, not run). An HTML comment right above a block, one per line, tells
this test what it needs (the reader of the Markdown sees it; the site does not):

    <!-- example: skip: REASON -->       not run; the reason is required (it installs, starts
                                         the service, needs PostgreSQL, ...)
    <!-- example: replace OLD => NEW --> run with OLD (a placeholder such as `…`) replaced by NEW,
                                         which may name a shell variable the page has by then
    <!-- example: keep NAME=PATH -->     after the block, $NAME is PATH in its answers: `id` or
                                         `data.0.id` in the last JSON answer, `2:id` in its second,
                                         `$VAR` the shell variable VAR at the block's end
    <!-- example: worker -->             the block waits on training: queued experiments are
                                         cancelled and a worker runs for this block alone

Blocks run in a fresh bash (`python` blocks in this Python) in one working folder per page
holding the inputs a reader brings (FILES: my_net.json, cell.py, chapter11.ipynb, my-digit.png,
digit.png), `localhost:8000` pointing at the live API and `python` and `mnist-lab` on PATH.
Each page starts with $TRAINED, a tiny experiment trained before the pages run, and $API_TOKEN
(the teacher's: the teacher's page runs on its own service, started with it). A `curl` wrapper
records every answer's status: one the API refuses as malformed or unauthorised (400, 401, 403,
404, 405, 413, 415, 422) or that breaks it (5xx) fails the test; 409 and 202 are answers. Any
other command fails the test by its exit status.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from tests.factories import tiny_spec
from tests.helpers import REPO, STROKE, ServiceProcess, free_port, notebook_of, wait_for

TOKEN = "teacher-token"  # the teacher service's API_TOKEN
# The open service's pages, in the order they run: notebook.md adds people, after which every
# write needs a token, so it goes last.
OPEN_PAGES = [
    "README.md",
    "docs/tutorials/learner.md",
    "docs/how-to/reproduce.md",
    "docs/how-to/v2.md",
    "docs/how-to/observe.md",
    "docs/how-to/develop.md",
    "docs/tutorials/operator.md",
    "docs/how-to/notebook.md",
]
TEACHER_PAGES = ["docs/tutorials/teacher.md"]
RUNNABLE = {"sh", "bash", "shell", "python"}
# Directives, then a fence, indented alike when the block sits in a list.
FENCE = re.compile(
    r"((?:^[ \t]*<!-- example: [^\n]*-->\n)*)^([ \t]*)```(\w*)\n(.*?)^\2```", re.S | re.M
)
DIRECTIVE = re.compile(r"<!-- example: (.*?) -->")
REFUSED = {400, 401, 403, 404, 405, 413, 415, 422}
# Records each answer's status and URL in $CODES and keeps its body as $ANSWERS/N.
WRAPPER = """set -euo pipefail
curl() {
    local n
    n=$(( $(cat "$ANSWERS/count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" >"$ANSWERS/count"
    command curl -w '%{stderr}%{http_code} %{method} %{url_effective}\\n' "$@" 2>>"$CODES" \\
        | tee "$ANSWERS/$n"
}
"""
CLOSES_AT = re.compile(r'"closes_at": "[^"]*"')


@dataclass
class Example:
    page: str
    line: int
    language: str
    code: str
    skip: str | None = None
    replace: list[tuple[str, str]] = field(default_factory=list)
    keep: dict[str, str] = field(default_factory=dict)
    worker: bool = False

    def runnable_code(self) -> str:
        code = self.code
        for old, new in self.replace:
            assert old in code, f"{self.where()}: replace {old!r}: not in the block"
            code = code.replace(old, new)
        # A closing time in an example is in the future when written, not forever.
        return CLOSES_AT.sub(f'"closes_at": "{_next_year()}"', code)

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def examples(page: str) -> list[Example]:
    text = (REPO / page).read_text()
    found = []
    for match in FENCE.finditer(text):
        comments, indent, language, code = match.groups()
        if language not in RUNNABLE:
            continue
        code = textwrap.dedent(code) if indent else code
        example = Example(page, text[: match.start(3)].count("\n") + 1, language, code)
        for directive in DIRECTIVE.findall(comments):
            _read_directive(example, directive)
        found.append(example)
    return found


def _read_directive(example: Example, directive: str) -> None:
    verb, _, rest = directive.partition(" ")
    if verb == "skip:":
        example.skip = rest.strip()
    elif verb == "replace":
        old, arrow, new = rest.partition(" => ")
        assert arrow, f"{example.where()}: replace OLD => NEW, not {directive!r}"
        example.replace.append((old, new))
    elif verb == "keep":
        for item in rest.split():
            name, _, path = item.partition("=")
            example.keep[name] = path
    elif directive == "worker":
        example.worker = True
    else:
        raise AssertionError(f"{example.where()}: unknown directive {directive!r}")


ALL_PAGES = OPEN_PAGES + TEACHER_PAGES


def test_every_runnable_block_is_run_or_says_why_not() -> None:
    """The pages' runnable blocks, each run by the live tests below or skipped with a reason;
    a placeholder left in a block that runs would fail there, so it is caught here first."""
    pages = {"README.md"} | {
        str(path.relative_to(REPO))
        for folder in ("docs/tutorials", "docs/how-to")
        for path in (REPO / folder).glob("*.md")
    }
    assert pages == set(ALL_PAGES), "a page is missing from OPEN_PAGES or TEACHER_PAGES"
    for page in ALL_PAGES:
        for example in examples(page):
            if example.skip is not None:
                assert example.skip, f"{example.where()}: skip needs a reason"
                continue
            code = example.runnable_code()
            assert "…" not in code, f"{example.where()}: a placeholder `…` is left: replace it"


@dataclass
class Live:
    """One live API (and a worker when a block needs one) and what the pages keep."""

    settings: Settings
    start_service: Callable[..., ServiceProcess]
    folder: Path
    token: str | None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> None:
        api = self.start_service(self.settings, "api")
        wait_for(self._up, timeout=180, what=f"the API to answer ({api.log_path})")
        spec = tiny_spec(epochs=1, train_size=500) | {"name": "trained"}
        answer = httpx.post(
            f"{self.base}/experiments", json=spec, headers=self.headers(), timeout=60
        )
        assert answer.status_code == 202, answer.text
        self.variables["TRAINED"] = trained = str(answer.json()["id"])
        with self.worker():
            wait_for(
                lambda: self._status(trained) == "succeeded",
                timeout=300,
                what="the tiny experiment to train",
            )

    @contextlib.contextmanager
    def worker(self) -> Iterator[None]:
        process = self.start_service(self.settings, "worker")
        try:
            yield
        finally:
            process.stop()

    def cancel_queued(self) -> None:
        queued = httpx.get(
            f"{self.base}/experiments",
            params={"status": "queued", "limit": 200},
            headers=self.headers(),
            timeout=60,
        ).json()["data"]
        for item in queued:
            httpx.post(
                f"{self.base}/experiments/{item['id']}/cancel", headers=self.headers(), timeout=60
            )

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def _status(self, experiment_id: str) -> str:
        answer = httpx.get(
            f"{self.base}/experiments/{experiment_id}", headers=self.headers(), timeout=60
        )
        status = str(answer.json()["status"])
        assert status not in {"failed", "cancelled"}, answer.text
        return status


def _bring_inputs(folder: Path) -> None:
    """What a reader brings: a spec, a Keras cell, a notebook and two digit images."""
    folder.mkdir(parents=True, exist_ok=True)
    # Keeps the teacher's challenge rules (train_size 55000): it is entered, never trained.
    spec = tiny_spec(epochs=1, train_size=55000) | {"name": "my-net"}
    (folder / "my_net.json").write_text(json.dumps(spec))
    (folder / "cell.py").write_text(
        "model = keras.Sequential([keras.layers.Flatten(), "
        'keras.layers.Dense(10, activation="softmax")])\n'
        'model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")\n'
        "model.fit(X_train[:400], y_train[:400], epochs=1, validation_split=0.25)\n"
    )
    (folder / "chapter11.ipynb").write_text(json.dumps(notebook_of(tiny_spec(epochs=1))))
    for name in ("my-digit.png", "digit.png"):
        Image.fromarray(np.array(STROKE, dtype=np.uint8)).save(folder / name)


def _run_pages(live: Live, pages: list[str]) -> None:
    codes = live.folder / "codes"
    ran = 0
    for page in pages:  # observe.md and develop.md hold no block to run
        work = live.folder / page.replace("/", "-")
        _bring_inputs(work)
        for example in examples(page):
            if example.skip is not None:
                continue
            if example.worker:
                live.cancel_queued()
                with live.worker():
                    _run(example, live, work)
            else:
                _run(example, live, work)
            ran += 1
    assert ran >= len(pages), "the pages lost their examples"
    answers = codes.read_text().splitlines()
    bad = [a for a in answers if re.match(r"\d{3} ", a) and _refused(int(a[:3]))]
    assert not bad, bad


def _refused(status: int) -> bool:
    return status in REFUSED or status >= 500


def _run(example: Example, live: Live, work: Path) -> None:
    port = str(live.settings.port)
    code = example.runnable_code()
    for local in ("localhost:8000", "127.0.0.1:8000"):
        code = code.replace(local, f"127.0.0.1:{port}")
    answers = work / f"answers-{example.line}"
    answers.mkdir()
    env = (
        {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(work),
            "CODES": str(live.folder / "codes"),
            "ANSWERS": str(answers),
            "MNIST_LAB_URL": live.base,
            "API_TOKEN": TOKEN,
            "PYTHONPATH": str(REPO),
            "DIGIT": json.dumps(STROKE),
            "PIXELS": json.dumps([value for row in STROKE for value in row]),
        }
        | _settings_env(live.settings)
        | live.variables
    )
    if example.language == "python":
        command = [sys.executable, "-c", code]
    else:
        kept = "".join(
            f'printf "%s=%s\\n" {name} "{path}" >>"$ANSWERS/kept"\n'
            for name, path in example.keep.items()
            if path.startswith("$")
        )
        command = ["bash", "-c", WRAPPER + code + "\n" + kept]
    done = subprocess.run(
        command, cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{example.where()} failed:\n{done.stderr}\n{code}"
    live.variables |= _kept(example, answers)


def _kept(example: Example, answers: Path) -> dict[str, str]:
    kept: dict[str, str] = {}
    shell = answers / "kept"
    if shell.exists():
        kept |= dict(line.split("=", 1) for line in shell.read_text().splitlines())
    count = int((answers / "count").read_text()) if (answers / "count").exists() else 0
    for name, path in example.keep.items():
        if path.startswith("$"):
            continue
        number, _, steps = path.rpartition(":")
        body: Any = json.loads((answers / (number or str(count))).read_text())
        for step in steps.split("."):
            body = body[int(step)] if isinstance(body, list) else body[step]
        kept[name] = str(body)
    return kept


def _settings_env(settings: Settings) -> dict[str, str]:
    """The service's settings, so that `python -m service backup` reads its database."""
    names = ("database_url", "queue_url", "models_dir", "work_dir", "mnist_path")
    return {name.upper(): str(getattr(settings, name)) for name in names}


@pytest.mark.parametrize(
    ("pages", "token"), [(OPEN_PAGES, None), (TEACHER_PAGES, TOKEN)], ids=["open", "teacher"]
)
def test_the_pages_examples_work_against_a_live_service(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
    pages: list[str],
    token: str | None,
) -> None:
    assert shutil.which("curl"), "the documentation's examples need curl on PATH"
    settings = make_settings(port=free_port(), api_token=token)
    live = Live(settings, start_service, tmp_path / "pages", token)
    live.folder.mkdir()
    live.start()
    _run_pages(live, pages)


def _next_year() -> str:
    return (datetime.now(UTC) + timedelta(days=365)).isoformat(timespec="seconds")
