"""The lab page in a real browser: Debian's chromium driven by Playwright, against a real
`python -m service` (API and worker) on a free port (fixtures in tests/web/conftest.py).

Each test saves a screenshot of its view; with LAB_SCREENSHOTS set to a folder
(docs/screenshots for the README), they are saved there too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser import TOKEN, Lab, circles, mnist_png, needs_chromium, start_lab

pytestmark = needs_chromium


def test_every_view_loads_without_console_errors(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    page = open_page(lab.url)
    page.wait_for_selector("table#experiments")
    # Nobody signed in: the header offers signing in, not out (a button's display once beat
    # its `hidden`).
    assert page.is_visible("#sign-in")
    assert not page.is_visible("#sign-out")
    for hash_, ready in [
        ("#/new", "table.summary"),
        ("#/studies", "form#new-study"),
        ("#/compare", "h1:text('Compare')"),
        ("#/draw", "canvas.pad"),
        ("#/experiments", "table#experiments"),
    ]:
        page.goto(f"{lab.url}/{hash_}")
        page.wait_for_selector(ready)
    docs = open_page(f"{lab.url}/docs")
    docs.wait_for_selector(".swagger-ui .info", timeout=30_000)
    redoc = open_page(f"{lab.url}/redoc")
    redoc.wait_for_selector("h1", timeout=30_000)
    assert page.errors == []
    assert docs.errors == []
    assert redoc.errors == []


def test_a_notebook_preset_from_the_form_trains_with_its_curve_growing_live(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    page = open_page(f"{lab.url}/#/new")
    page.click("button[data-preset='dropout']")
    page.wait_for_selector("td.total-params:text('266,610')")
    page.fill("#f-name", "dropout-quick")
    for name, value in [("epochs", 2), ("train_size", 1000), ("validation_size", 1000)]:
        page.fill(f"#f-fit-{name}", str(value))
        page.dispatch_event(f"#f-fit-{name}", "change")
    page.fill("#f-layers-1-rate", "1.5")  # a 422 shows beside its field
    page.dispatch_event("#f-layers-1-rate", "change")
    page.wait_for_selector(".field-error[data-for='layers.1.rate']")
    screenshots(page, "new-experiment")
    page.fill("#f-layers-1-rate", "0.2")
    page.dispatch_event("#f-layers-1-rate", "change")
    page.wait_for_selector(".field-error", state="detached")
    page.click("button[type=submit]")

    page.wait_for_url("**/#/experiments/*")
    page.wait_for_function(
        '() => document.querySelectorAll("figure svg circle").length >= 4', timeout=240_000
    )
    first = circles(page, "Accuracy")
    page.wait_for_selector("h1 .badge.succeeded", timeout=240_000)
    assert 2 <= first <= 4  # one epoch (training + validation) seen before the second came
    assert circles(page, "Accuracy") == 4
    assert page.locator("dl.facts dd").nth(1).inner_text() == "epoch 2 of 2"
    screenshots(page, "experiment")
    # The browser logs the refused dry run of rate 1.5 itself; nothing else may be logged.
    assert [error for error in page.errors if "status of 422" not in error] == []


def test_the_form_takes_the_new_layers_clipping_and_a_schedule(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    page = open_page(f"{lab.url}/#/new?preset=leaky_relu")
    page.wait_for_selector("td.total-params")
    assert "null" not in page.inner_text("main")  # no open challenge to enter: nothing shown
    page.select_option("select[data-loc='layers.2.type']", "PReLU")
    page.wait_for_selector("#f-layers-2-alpha_initializer")
    schedule = json.dumps(
        {
            "type": "ExponentialDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 100,
            "decay_rate": 0.9,
        }
    )
    for field, value in [
        ("#f-compile-optimizer-learning_rate", schedule),
        ("#f-compile-optimizer-clipnorm", "1"),
    ]:
        page.fill(field, value)
        page.dispatch_event(field, "change")
    # PReLU learns one slope per unit of the Dense before it: 300 more parameters.
    page.wait_for_selector("td.total-params:text('266,910')")
    assert page.locator(".field-error").count() == 0
    page.fill("#f-layers-1-kernel_regularizer", "{l2: 0.01}")
    page.dispatch_event("#f-layers-1-kernel_regularizer", "change")
    page.wait_for_selector(".field-error[data-for='layers.1.kernel_regularizer']")
    assert page.errors == []


def test_a_preset_study_from_the_page_fills_its_leaderboard_live(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    page = open_page(f"{lab.url}/#/studies")
    page.select_option("#s-preset", "dropout")
    page.fill("#s-name", "dropout-question")
    page.fill("#s-epochs", "1")
    page.fill("#s-train_size", "500")
    page.fill("#s-max_parallel", "2")
    page.click("form#new-study button[type=submit]")
    page.wait_for_url("**/#/studies/*")
    page.wait_for_selector("#leaderboard tbody tr")
    # No reload from here on: the page polls the study until both trials have ended.
    page.wait_for_function(
        "() => document.querySelectorAll(`#leaderboard tr[data-status='succeeded']`).length === 2",
        timeout=300_000,
    )
    page.wait_for_selector("h1 .badge.finished", timeout=60_000)
    assert page.locator("#leaderboard tbody tr").count() == 2
    labels = page.locator("#leaderboard tbody td:nth-child(2) a").all_inner_texts()
    assert sorted(labels) == ["with Dropout", "without Dropout"]
    # One epoch a trial draws no curve: the page says so instead of a column of dots.
    assert page.locator("#curves-one-epoch").count() == 1
    assert page.locator("img.study-curves").count() == 0
    screenshots(page, "study")
    page.goto(f"{lab.url}/#/studies")
    page.wait_for_selector("#studies tr[data-status='finished']")
    screenshots(page, "studies")
    assert page.errors == []


def test_a_finished_experiment_shows_its_evaluation_and_diagnostics(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    experiment_id = lab.submit("adam-insight", epochs=2, tags=("insight", "adam"))
    lab.wait_finished(experiment_id)
    page = open_page(f"{lab.url}/#/experiments/{experiment_id}")
    page.wait_for_function(
        "() => document.querySelector('#evaluation img.confusion')?.naturalWidth > 0",
        timeout=120_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#evaluation img.mistakes')?.naturalWidth > 0"
    )
    page.wait_for_function("() => document.querySelector('#layer-health img')?.naturalWidth > 0")
    assert page.locator("#diagnostics h2:text('Diagnostics')").count() == 1
    assert sorted(page.locator("dl.facts .tag").all_inner_texts()) == ["adam", "insight"]
    for label in ("notebook.py", "notebook.ipynb", "Trained model (.keras)"):
        assert page.locator(f".downloads a:text('{label}')").count() == 1
    assert page.locator("button:text('Rerun')").count() == 1
    screenshots(page, "experiment-insight")
    assert page.errors == []


def test_cancel_from_the_page_ends_it_cancelled(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    experiment_id = lab.submit("long-one", epochs=50, train_size=2000)
    page = open_page(f"{lab.url}/#/experiments/{experiment_id}")
    page.wait_for_selector("h1 .badge.running", timeout=120_000)
    page.click("button:text('Cancel')")
    page.wait_for_selector("h1 .badge.cancelled", timeout=60_000)
    assert lab.http.get(f"/experiments/{experiment_id}").json()["status"] == "cancelled"
    assert page.errors == []


def test_two_experiments_compared_show_both_curves(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    first = lab.submit("adam-a", seed=1)
    second = lab.submit("adam-b", seed=2, batch_size=32)
    lab.wait_finished(first)
    lab.wait_finished(second)
    page = open_page(f"{lab.url}/#/experiments")
    page.wait_for_selector(f"tr[data-id='{first}']")
    page.check(f"tr[data-id='{first}'] input[type=checkbox]")
    page.check(f"tr[data-id='{second}'] input[type=checkbox]")
    screenshots(page, "experiments")
    page.click("button:text('Compare selected')")
    chart = "figure[data-title='Validation accuracy'] svg"
    page.wait_for_selector(f"{chart} path[data-series='adam-b']")
    assert page.locator(f"{chart} path[data-series='adam-a']").count() == 1
    assert page.locator("th:text('fit.batch_size')").count() == 1
    screenshots(page, "compare")
    assert page.errors == []


def test_a_stroke_on_the_canvas_gets_a_digit_and_ten_bars(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    lab.wait_for_a_model()
    page = open_page(f"{lab.url}/#/draw")
    pad = page.wait_for_selector("canvas.pad")
    box = pad.bounding_box()
    x, y, size = box["x"], box["y"], box["width"]
    page.mouse.move(x + size * 0.5, y + size * 0.15)
    page.mouse.down()
    for step in range(1, 21):  # a "1": one stroke down the middle
        page.mouse.move(x + size * 0.5, y + size * (0.15 + 0.035 * step))
    page.mouse.up()
    page.wait_for_selector("#digit")
    assert page.locator("#bars .bar").count() == 10
    assert page.evaluate(
        "Array.from(document.querySelector('canvas.seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 === 0 && v > 128)"
    )
    screenshots(page, "draw")
    assert page.errors == []


def test_a_png_upload_gets_the_digit_predict_gives(
    lab: Lab, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    lab.wait_for_a_model()
    png = mnist_png(0)
    expected = lab.http.post("/predict/upload", files={"file": ("seven.png", png)}).json()
    path = tmp_path / "seven.png"
    path.write_bytes(png)
    page = open_page(f"{lab.url}/#/draw")
    page.set_input_files("input[type=file]", str(path))
    page.wait_for_selector("#digit")
    assert page.inner_text("#digit") == str(expected["predictions"][0]["digit"])
    assert page.errors == []


def test_with_api_token_the_page_asks_for_it_once(
    open_page: Callable[..., Any],
    tmp_path: Path,
    screenshots: Callable[[Any, str], Path],
) -> None:
    locked = start_lab(tmp_path / "locked", "api", api_token=TOKEN, protect_reads=True)
    try:
        page = open_page(locked.url)
        page.wait_for_selector("#token-dialog[open]")
        screenshots(page, "token")
        page.fill("#token-dialog input[name=token]", TOKEN)
        page.click("#token-dialog button[type=submit]")
        page.wait_for_selector("table#experiments")
        assert page.evaluate("sessionStorage.getItem('mnist-lab-token')") == TOKEN
        page.goto(f"{locked.url}/#/new")
        page.wait_for_selector("table.summary")  # a write (the dry run) with the kept token
        assert not page.locator("#token-dialog[open]").count()
        assert page.errors == []
    finally:
        locked.stop()
