"""The experiments list in a real browser: tags in its rows, a click on one filters the list by
it (with the status filter and the sort), the filter kept in the URL and followed by the live
updates; and the list fits a phone's width.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.domain import Status
from tests.browser import Lab, needs_chromium

pytestmark = needs_chromium

ROWS = "#experiments tbody tr[data-id]"


def wait_rows(page: Any, ids: set[str]) -> None:
    """Until the list shows exactly these experiments."""
    page.wait_for_function(
        """ids => JSON.stringify([...document.querySelectorAll("#experiments tbody tr[data-id]")]
            .map((row) => row.dataset.id).sort()) === JSON.stringify(ids)""",
        arg=sorted(ids),
    )


def active_tags(page: Any) -> list[str]:
    return [
        str(tag)
        for tag in page.eval_on_selector_all(
            "#tag-filter .tag.active", "tags => tags.map((tag) => tag.dataset.tag)"
        )
    ]


def test_tags_show_in_the_list_and_a_click_on_one_filters_by_it(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    both = lab.submit("tl-both", tags=("tl-red", "tl-blue"))
    red = lab.submit("tl-red-only", tags=("tl-red",))
    blue = lab.submit("tl-blue-only", tags=("tl-blue",))
    page = open_page(f"{lab.url}/#/experiments")
    page.wait_for_selector(f"tr[data-id='{both}']")
    chips = page.locator(f"tr[data-id='{both}'] .tag").all_inner_texts()
    assert sorted(chips) == ["tl-blue", "tl-red"]

    page.click(f"tr[data-id='{both}'] button.tag[data-tag='tl-red']")
    wait_rows(page, {both, red})
    assert page.url.endswith("#/experiments?tag=tl-red")
    assert active_tags(page) == ["tl-red"]
    page.click(f"tr[data-id='{both}'] button.tag[data-tag='tl-blue']")  # and tl-blue: both
    wait_rows(page, {both})
    assert page.url.endswith("#/experiments?tag=tl-red&tag=tl-blue")
    screenshots(page, "experiments-tagged")

    page.reload()  # the URL alone says what to show
    page.wait_for_selector(ROWS)
    wait_rows(page, {both})
    assert active_tags(page) == ["tl-red", "tl-blue"]
    page.click("#tag-filter .tag[data-tag='tl-red'] button.remove")
    wait_rows(page, {both, blue})
    assert active_tags(page) == ["tl-blue"]
    page.go_back()  # Back undoes the removal
    wait_rows(page, {both})

    page.goto(f"{lab.url}/#/experiments/{red}")  # an experiment's tags lead to the list too
    page.click("dl.facts a.tag:text('tl-red')")
    wait_rows(page, {both, red})
    assert page.errors == []


def test_the_tag_filter_combines_with_status_and_sort_and_survives_a_reload(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    kept = lab.submit("tc-b-kept", tags=("tc-combo",), epochs=1)
    stopped = [lab.submit(f"tc-{x}-stopped", tags=("tc-combo",), epochs=30) for x in "ac"]
    for experiment_id in stopped:
        lab.cancel(experiment_id)
    for experiment_id in stopped:
        assert lab.wait_finished(experiment_id)["status"] == "cancelled"
    page = open_page(f"{lab.url}/#/experiments?tag=tc-combo")
    page.wait_for_selector(f"tr[data-id='{kept}']")
    options = page.eval_on_selector_all(
        "select[aria-label='Status'] option", "options => options.map((o) => o.value)"
    )
    assert options == ["", *(status.value for status in Status)]  # "pruned" among them
    page.select_option("select[aria-label='Status']", "cancelled")
    wait_rows(page, set(stopped))
    page.click("th[data-key='name'] button.sort")
    assert page.url.endswith("#/experiments?tag=tc-combo&status=cancelled&sort=name")

    page.reload()
    page.wait_for_selector(ROWS)
    wait_rows(page, set(stopped))
    assert page.input_value("select[aria-label='Status']") == "cancelled"
    assert page.get_attribute("th[data-key='name']", "aria-sort") == "ascending"
    names = page.locator(f"{ROWS} td.name a").all_inner_texts()
    assert names == ["tc-a-stopped", "tc-c-stopped"]
    assert page.errors == []


def test_live_updates_keep_to_the_tag_filter(lab: Lab, open_page: Callable[..., Any]) -> None:
    page = open_page(f"{lab.url}/#/experiments?tag=tv-live")
    page.wait_for_selector("#experiments td.empty:text('No experiment is tagged tv-live.')")
    outside = lab.submit("tv-outside", tags=("tv-other",), epochs=1)
    inside = lab.submit("tv-inside", tags=("tv-live",), epochs=1)
    # No reload: the new experiment with the tag appears and trains to the end in the list.
    page.wait_for_selector(f"tr[data-id='{inside}'][data-status='succeeded']", timeout=240_000)
    # The other was queued first, so all of its events came before: none of them showed it.
    assert lab.status(outside) == "succeeded"
    wait_rows(page, {inside})
    assert page.errors == []


def test_on_a_phone_the_list_fits_the_screen(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    lab.submit("a-rather-long-experiment-name", tags=("phone", "narrow"), epochs=1)
    page = open_page(f"{lab.url}/#/experiments", width=390, height=844)
    page.wait_for_selector(ROWS)
    table, frame, window = page.evaluate(
        """[document.querySelector("#experiments").scrollWidth,
            document.querySelector("#experiments").parentElement.clientWidth,
            document.documentElement.scrollWidth]"""
    )
    assert table <= frame
    assert window <= 390
    assert page.locator(f"{ROWS} td.name .show-narrow .badge").first.is_visible()
    screenshots(page, "experiments-phone")
    assert page.errors == []
