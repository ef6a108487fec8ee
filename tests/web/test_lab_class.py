"""A class in a real browser: signing in with a personal token, a student's "Mine", and the
teacher's Class view (people, the queue in the order it will run, cancel on any job, live).

Its own service with an API_TOKEN and no worker, so that the queue stays as submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import TOKEN, Lab, needs_chromium, start_lab

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, str]]]:
    lab = start_lab(tmp_path_factory.mktemp("class"), "api", api_token=TOKEN)
    added = lab.http.post(
        "/people",
        json={"people": ["alice", "bob", {"name": "tess", "role": "teacher"}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert added.status_code == 201, added.text
    tokens = {person["name"]: person["token"] for person in added.json()["data"]}
    yield lab, tokens
    lab.stop()


def submit_as(lab: Lab, token: str, name: str) -> str:
    spec = {
        "name": name,
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10, "activation": "softmax"}],
        "compile": {"optimizer": {"type": "Adam"}},
        "fit": {"epochs": 1, "train_size": 1000, "validation_size": 500},
    }
    response = lab.http.post(
        "/experiments", json=spec, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def sign_in(page: Any, token: str) -> None:
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-dialog input[name=token]", token)
    page.click("#token-dialog button[type=submit]")


def queue_ids(page: Any) -> list[str]:
    return [
        str(i)
        for i in page.eval_on_selector_all(
            "#class-queue tbody tr[data-id]", "rs => rs.map(r => r.dataset.id)"
        )
    ]


def test_a_teacher_signs_in_and_sees_the_class_and_its_queue_in_run_order(
    school: tuple[Lab, dict[str, str]],
    open_page: Callable[..., Any],
    screenshots: Callable[[Any, str], Path],
) -> None:
    lab, tokens = school
    first = submit_as(lab, tokens["alice"], "cv-alice-1")
    second = submit_as(lab, tokens["alice"], "cv-alice-2")
    bobs = submit_as(lab, tokens["bob"], "cv-bob-1")
    page = open_page(f"{lab.url}/#/class")
    sign_in(page, tokens["tess"])
    page.wait_for_selector("#who-name:has-text('Signed in as tess (teacher)')")
    assert page.is_visible("#class-link")
    page.wait_for_selector("#class-people tr[data-person='alice']")
    assert page.inner_text("#class-people tr[data-person='alice'] td.queued") == "2"
    assert page.inner_text("#class-people tr[data-person='bob'] td.queued") == "1"
    # What the term's work takes on disk, and what is left (GET /health).
    page.wait_for_selector("#class-disk:has-text('database')")
    assert "free" in page.inner_text("#class-disk")
    # Fair share: bob's one job runs before alice's second.
    page.wait_for_function(
        "() => document.querySelectorAll('#class-queue tbody tr[data-id]').length >= 3"
    )
    order = [i for i in queue_ids(page) if i in {first, second, bobs}]
    assert order == [first, bobs, second]
    screenshots(page, "class")

    page.click(f"#class-queue tr[data-id='{second}'] button.cancel")  # anyone's job
    page.wait_for_selector(f"#class-queue tr[data-id='{second}']", state="detached")
    page.wait_for_selector("#class-people tr[data-person='alice'] td.queued:has-text('1')")
    assert lab.status(second) == "cancelled"
    assert page.errors == []


def test_a_student_signs_in_sees_mine_and_no_class_view(
    school: tuple[Lab, dict[str, str]], open_page: Callable[..., Any]
) -> None:
    lab, tokens = school
    own = submit_as(lab, tokens["bob"], "mine-bob")
    other = submit_as(lab, tokens["alice"], "mine-alice")
    page = open_page(f"{lab.url}/#/experiments")
    sign_in(page, tokens["bob"])
    page.wait_for_selector("#who-name:has-text('Signed in as bob (student)')")
    assert not page.is_visible("#class-link")
    page.wait_for_selector(f"tr[data-id='{other}']")  # everyone's work by default
    assert "by alice" in page.inner_text(f"tr[data-id='{other}']")
    page.check("#mine")
    page.wait_for_selector(f"tr[data-id='{other}']", state="detached")
    assert page.is_visible(f"tr[data-id='{own}']")
    assert page.url.endswith("owner=me")
    assert page.errors == []
