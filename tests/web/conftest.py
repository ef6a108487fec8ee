"""Fixtures of the lab page's browser tests: one service for the whole run (each test makes
its own experiments, named or tagged so that others' do not matter), one chromium, a fresh
tab per test, and screenshots.

With LAB_SCREENSHOTS set to a folder (docs/screenshots for the README), every screenshot a
test takes is saved there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, Lab, start_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = start_lab(tmp_path_factory.mktemp("lab"))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """A fresh tab on a URL; collects console errors and page errors into `page.errors`."""
    contexts: list[Any] = []

    def open_(url: str, *, width: int = 1280, height: int = 900, bypass_csp: bool = False) -> Any:
        # bypass_csp: only for a test that injects a script of its own (the axe audit); the
        # page's Content-Security-Policy holds everywhere else.
        context = browser.new_context(
            viewport={"width": width, "height": height}, bypass_csp=bypass_csp
        )
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any, str], Path]:
    folder = tmp_path_factory.mktemp("screenshots")
    publish = os.environ.get("LAB_SCREENSHOTS")

    def save(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if publish:
            Path(publish).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(publish) / path.name)
        return path

    return save
