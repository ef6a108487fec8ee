"""An axe-core audit of every view of the lab page at a page's width and a phone's: no
violation of any impact (a scrollable <pre> that a keyboard cannot reach, a table header
without text, text too pale to read, ...).

axe-core is not a Python package: `.ci/run browser` installs it with npm into .ci/axe (or point
AXE_CORE at an axe.min.js).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Lab, needs_chromium

pytestmark = needs_chromium

AXE_CORE = Path(
    os.environ.get(
        "AXE_CORE",
        Path(__file__).parents[2] / ".ci" / "axe" / "node_modules" / "axe-core" / "axe.min.js",
    )
)
STUDY = {
    "name": "axe-study",
    "base": {
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {"optimizer": {"type": "SGD", "learning_rate": 0.01}},
        "fit": {"epochs": 1, "batch_size": 64, "train_size": 1000, "validation_size": 1000},
    },
    "sampler": "grid",
    "space": {"compile.optimizer.learning_rate": [0.01, 0.1]},
    "n_trials": 2,
    "max_parallel": 1,
}
BATCHNORM_NET = [
    {"type": "Flatten"},
    {"type": "BatchNormalization"},
    {"type": "Dense", "units": 32, "activation": "relu"},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]
AUDIT = """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_CORE.is_file():
        pytest.fail(f"no axe-core at {AXE_CORE}: run `.ci/run browser`, or set AXE_CORE")
    return AXE_CORE.read_text()


@pytest.fixture(scope="module")
def views(lab: Lab) -> dict[str, tuple[str, str]]:
    """Each view with a selector that says it has drawn, over experiments that trained."""
    plain = lab.submit("axe-plain", epochs=2)
    other = lab.submit("axe-other", epochs=2, layers=BATCHNORM_NET)
    study = lab.http.post("/studies", json=STUDY)
    assert study.status_code in (200, 201, 202), study.text
    for experiment_id in (plain, other):
        lab.wait_finished(experiment_id)
    study_id = study.json()["id"]
    challenge = lab.http.post("/challenges", json={"name": "axe-cup", "max_entries_per_person": 2})
    assert challenge.status_code == 201, challenge.text
    return {
        "experiments": ("#/experiments", "table#experiments tbody tr"),
        "experiment": (f"#/experiments/{plain}", "#layer-health img.layers"),
        "new": ("#/new", "table.summary"),
        "compare": (f"#/compare?ids={plain},{other}", "#differences"),
        "studies": ("#/studies", "#studies tbody tr"),
        "study": (f"#/studies/{study_id}", "h1"),
        "draw": ("#/draw", "canvas.pad"),
        "challenges": ("#/challenges", "#challenges tbody tr"),
        "challenge": (f"#/challenges/{challenge.json()['id']}", "#leaderboard"),
        "class": ("#/class", "#class-people"),
    }


@pytest.mark.parametrize("width", [1280, 390])
def test_every_view_has_no_accessibility_violation(
    lab: Lab,
    open_page: Callable[..., Any],
    axe_source: str,
    views: dict[str, tuple[str, str]],
    width: int,
) -> None:
    found = {}
    for name, (route, ready) in views.items():
        page = open_page(f"{lab.url}/{route}", width=width, bypass_csp=True)
        page.wait_for_selector(ready)
        page.add_script_tag(content=axe_source)
        violations = page.evaluate(AUDIT)
        if violations:
            found[name] = violations
    assert found == {}


def test_on_a_phone_the_leaderboard_answers_first_and_the_study_list_fits(
    lab: Lab, open_page: Callable[..., Any], views: dict[str, tuple[str, str]]
) -> None:
    route, _ = views["study"]
    page = open_page(f"{lab.url}/{route}", width=390)
    page.wait_for_selector("#leaderboard tbody tr")
    right = page.evaluate("() => document.documentElement.clientWidth")
    for header in ("Test accuracy", "Epochs to"):
        box = page.locator(f"#leaderboard th:has-text('{header}')").bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= right, header
    studies = open_page(f"{lab.url}/#/studies", width=390)
    studies.wait_for_selector("#studies tbody tr")
    created = studies.locator("#studies th:has-text('Created')").bounding_box()
    assert created is not None
    assert created["x"] + created["width"] <= right
