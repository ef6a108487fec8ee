"""The documentation site's tooling: `python -m service docs` serves a built site, and the
README splitter puts every section on a page with links that resolve there.

(`mkdocs build --strict` itself runs in CI's `docs` step: it needs the `.[docs]` extra.)
"""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from service.config import Settings
from tests.helpers import REPO


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_serves_a_built_site_and_prints_its_url(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>MNIST lab docs</h1>")
    command = [sys.executable, "-m", "service", "docs", "--no-build", "--docs-port", "0"]
    with subprocess.Popen(
        [*command, "--site-dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as served:
        try:
            assert served.stdout is not None
            line = served.stdout.readline()
            assert line.startswith(f"docs: serving {tmp_path} on http://127.0.0.1:")
            url = line.split(" on ", 1)[1].split()[0]
            assert httpx.get(url, timeout=10).text == "<h1>MNIST lab docs</h1>"
        finally:
            served.send_signal(signal.SIGINT)
            assert served.wait(timeout=30) == 0


def test_docs_refuses_a_folder_without_a_built_site(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "docs", "--no-build", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "holds no built site" in done.stderr


README = """# MNIST lab

Front matter.

## Quick start

Run it. See [Configuration](#configuration) and ![shot](docs/screenshots/draw.png).

```sh
# not a heading: a shell comment
python -m service
```

## A section nobody sorted yet

Keep me, and [the bench](bench/train.py), but not `[code](x.py)`.

## Configuration

The table.

### The log

Lines.
"""


def test_split_puts_every_section_on_a_page_with_working_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text(README)
    docs = tmp_path / "docs"
    splitter = _load("split_readme", REPO / "docs" / "tooling" / "split_readme.py")
    assert splitter.main(str(tmp_path / "README.md"), str(docs)) == 0
    learner = (docs / "tutorials" / "learner.md").read_text()
    settings = (docs / "reference" / "settings.md").read_text()
    # The unknown section lands after the section before it, never dropped.
    assert "## A section nobody sorted yet" in learner
    assert "# not a heading: a shell comment" in learner
    assert "Front matter" not in learner
    assert "### The log" in settings
    # Links: an anchor follows its heading's page, a docs/ file is relative to the page,
    # a repository file outside the site becomes code, code spans stay as they are.
    # (Configuration is its page's one section: its title stands for the heading.)
    assert "[Configuration](../reference/settings.md)" in learner
    assert "## Configuration" not in settings
    assert "![shot](../screenshots/draw.png)" in learner
    assert "the bench (`bench/train.py`)" in learner
    assert "`[code](x.py)`" in learner
    assert "A section nobody sorted yet" in capsys.readouterr().err


def test_the_readme_is_a_short_front_door_whose_links_resolve() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    targets = re.findall(r"\]\(((?:docs/)[^)#\s]+)", readme)
    assert len(targets) >= 10, "the README lost its links into the site"
    missing = [target for target in targets if not (REPO / target).is_file()]
    assert not missing, missing


def test_the_reference_names_every_route_and_every_setting() -> None:
    hooks = _load("docs_hooks", REPO / "docs" / "hooks.py")
    document = hooks.openapi()
    routes = hooks.routes_markdown(document)
    for path, item in document["paths"].items():
        for method in item.keys() & set(hooks.METHODS):
            assert f"### `{method.upper()} {path}`" in routes
    assert "Bearer &lt;API_TOKEN&gt;" in routes  # not swallowed as an HTML tag
    settings = hooks.settings_markdown()
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in settings
    assert "| `MODELS_STORAGE_OPTIONS` | dict | `{}` |" in settings
