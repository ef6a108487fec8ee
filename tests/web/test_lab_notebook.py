"""The new-experiment view reads a pasted Keras cell and a dropped .ipynb (never run), shows
what it read before anything is queued, loads one model into the form, queues a notebook's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser import Lab, needs_chromium
from tests.factories import NOTEBOOK_NETS
from tests.helpers import notebook_of

pytestmark = needs_chromium

CELL = """\
model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.Dense(300, activation="relu"),
    keras.layers.Dense(100, activation="relu"),
    keras.layers.Dense(10, activation="softmax")])
model.summary()
model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
model.fit(X_train, y_train, epochs=3, validation_data=(X_valid, y_valid))
"""


def test_a_pasted_cell_is_shown_then_loaded_into_the_form(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    page = open_page(f"{lab.url}/#/new")
    page.fill("#f-code", CELL)
    page.press("#f-code", "Tab")  # the browser's own change event
    page.wait_for_selector("#code-read li:text('266,610 parameters, 4 layers, SGD, 3 epochs')")
    assert "model.summary()" in page.inner_text("#code-read")
    screenshots(page, "from-a-cell")
    page.click("#code-read button")
    page.wait_for_function("() => document.querySelector('#f-fit-epochs').value === '3'")
    page.wait_for_selector("td.total-params:text('266,610')")
    page.fill("#f-code", "model = keras.Sequential([MyLayer()])")
    page.press("#f-code", "Tab")
    page.wait_for_selector("#code-read .notice.bad:text('line 1, column 27')")
    assert [error for error in page.errors if "status of 422" not in error] == []


def test_a_dropped_notebook_shows_its_models_and_queues_them(
    lab: Lab, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    bodies = [NOTEBOOK_NETS[net][0](fit={"epochs": 1}) for net in sorted(NOTEBOOK_NETS)]
    path = tmp_path / "three-nets.ipynb"
    path.write_text(json.dumps(notebook_of(*bodies)))
    page = open_page(f"{lab.url}/#/new")
    page.set_input_files("#f-notebook", str(path))
    page.wait_for_selector("#code-read button:text('Queue all 3')")
    text = page.inner_text("#code-read")
    assert "271,346 parameters" in text
    assert text.count("266,610 parameters") == 2
    page.click("#code-read button")
    page.wait_for_url("**/#/experiments?tag=three-nets")
    listed = lab.http.get("/experiments", params={"tag": "three-nets"}).json()["data"]
    assert len(listed) == 3
    for experiment in listed:
        lab.http.post(f"/experiments/{experiment['id']}/cancel")
