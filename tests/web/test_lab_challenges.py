"""The Challenges view in a real browser: an entry made from the new-experiment form with the
challenge's rules checked as the learner types, the live leaderboard filling as it finishes,
and the final board with its public ranks after the close; at a desktop's and a phone's width.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser import Lab, needs_chromium

pytestmark = needs_chromium


def test_an_entry_from_the_form_keeps_the_rules_and_reaches_the_live_leaderboard(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    created = lab.http.post(
        "/challenges",
        json={
            "name": "Browser cup",
            "rules": {"max_epochs": 1, "train_size": 1000, "allowed_optimizers": ["Adam", "SGD"]},
            "max_entries_per_person": 3,
        },
    )
    assert created.status_code == 201, created.text
    challenge = created.json()

    board = open_page(f"{lab.url}/#/challenges/{challenge['id']}")
    board.wait_for_selector("#my-entries")
    assert "at most 1 epochs" in board.inner_text(".rules")
    assert "null" not in board.inner_text("main")  # no entries yet, and nothing odd shown

    page = open_page(f"{lab.url}/#/new?challenge={challenge['id']}&preset=dropout")
    page.wait_for_selector("#f-name")
    assert page.input_value("#f-challenge") == challenge["id"]
    page.fill("#f-name", "browser-cup-entry")
    for name, value in [("train_size", 1000), ("validation_size", 1000)]:
        page.fill(f"#f-fit-{name}", str(value))
        page.dispatch_event(f"#f-fit-{name}", "change")
    # The preset's 10 epochs break the rule: said beside the field, as the learner types.
    page.wait_for_selector(".field-error[data-for='fit.epochs']")
    assert "rule max_epochs" in page.inner_text(".field-error[data-for='fit.epochs']")
    screenshots(page, "challenge-entry")
    page.fill("#f-fit-epochs", "1")
    page.dispatch_event("#f-fit-epochs", "change")
    page.wait_for_selector(".field-error", state="detached")
    page.wait_for_selector("td.total-params:text('266,610')")  # the dry run passes the rules
    page.click("button[type=submit]")
    page.wait_for_url("**/#/experiments/*")
    entry = page.url.rsplit("/", 1)[-1]
    assert lab.wait_finished(entry)["status"] == "succeeded"

    # The board the other tab holds open fills in from the event stream, without a reload.
    board.wait_for_selector("#leaderboard tr[data-person] td.num:text('1')", timeout=60_000)
    row = board.inner_text("#leaderboard tbody tr")
    assert "0." in row  # a public score
    screenshots(board, "challenge-live")

    board.wait_for_selector("#my-entries:text('1 made, 2 left.')")
    board.on("dialog", lambda dialog: dialog.accept())
    board.click("#close-challenge")
    board.wait_for_selector("text=Final: ranked by the private half")
    assert board.locator("#leaderboard th", has_text="Public rank").count() == 1
    screenshots(board, "challenge-final")

    phone = open_page(f"{lab.url}/#/challenges/{challenge['id']}", width=390, height=844)
    phone.wait_for_selector("#leaderboard")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    assert phone.locator("#leaderboard th:visible").all_inner_texts() == [
        "Rank",
        "Person",
        "Private score",
        "Public rank",
        "Entries",
    ]
    assert "null" not in phone.inner_text("main")
    screenshots(phone, "challenge-phone")
    listing = open_page(f"{lab.url}/#/challenges")
    listing.wait_for_selector(f"#challenges tr[data-id='{challenge['id']}']")
    assert "closed" in listing.inner_text(f"#challenges tr[data-id='{challenge['id']}']")
    for opened in (board, page, phone, listing):
        assert [e for e in opened.errors if "status of 422" not in e] == []
