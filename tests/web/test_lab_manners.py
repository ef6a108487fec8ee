"""What using the lab page as a learner turned up, each in a real browser: the curves card
follows the status, chart axes stay within what a metric can take, the comparison lists only
the spec paths that read differently, a refusal shows beside the field or layer it names, and
the pad shows the photo an answer is about.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.browser import Lab, mnist_png, needs_chromium

pytestmark = needs_chromium

DROPOUT_NET = [
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.2},
    {"type": "Dense", "units": 10, "activation": "softmax"},
]


def test_the_curves_card_follows_the_status_from_queued_to_running(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    ahead = lab.submit("tm-ahead", epochs=50, train_size=2000)
    waiting = lab.submit("tm-waiting", epochs=50, train_size=2000)
    page = open_page(f"{lab.url}/#/experiments/{waiting}")
    page.wait_for_selector("#curves-waiting:text('Queued')")
    lab.cancel(ahead)
    page.wait_for_selector("h1 .badge.running", timeout=120_000)
    # Drawn with the status: the card no longer says it is queued (a worker takes seconds to
    # start TensorFlow and finish an epoch, which redrew it before).
    assert page.locator("#curves-waiting:text('Queued')").count() == 0
    assert "null" not in page.locator("#view > div").first.inner_text()  # no stray text in its head
    lab.cancel(waiting)
    lab.wait_finished(waiting)
    assert page.errors == []


def test_chart_axes_stay_within_what_each_metric_can_take(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    page = open_page(f"{lab.url}/#/experiments")
    page.wait_for_selector("table#experiments")
    ticks = page.evaluate(
        """async () => {
            const { learningCurves } = await import("/static/js/chart.js");
            const epochs = [
              { epoch: 1, loss: 0.45, accuracy: 0.862, val_loss: 0.27, val_accuracy: 0.92 },
              { epoch: 2, loss: 0.013, accuracy: 0.9996, val_loss: 0.22, val_accuracy: 0.955 },
            ];
            const charts = learningCurves(epochs);
            const read = (title) => [...charts.querySelectorAll(
              `figure[data-title=${title}] text.tick`)].map((text) => text.textContent);
            return { loss: read("Loss"), accuracy: read("Accuracy") };
        }"""
    )
    for labels in ticks.values():
        values = [float(label) for label in labels]
        steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
        assert len(steps) == 1  # evenly spaced...
        assert len({len(label) for label in labels}) == 1  # ...and written alike, e.g. 0.90
    assert float(ticks["accuracy"][-1]) <= 1  # never 1.006
    assert float(ticks["loss"][0]) >= 0  # never -0.02
    assert page.errors == []


def test_the_comparison_says_how_the_layers_differ_and_only_the_paths_that_do(
    lab: Lab, open_page: Callable[..., Any], screenshots: Callable[[Any, str], Path]
) -> None:
    plain = lab.submit("tm-plain", epochs=1)
    dropout = lab.submit("tm-dropout", epochs=1, layers=DROPOUT_NET)
    lab.wait_finished(plain)
    lab.wait_finished(dropout)
    page = open_page(f"{lab.url}/#/compare?ids={plain},{dropout}")
    page.wait_for_selector("#differences tbody tr")
    rows = page.eval_on_selector_all(
        "#differences tbody tr",
        "rows => rows.map((row) => [...row.children].map((c) => c.textContent))",
    )
    # The layers aligned as a diff aligns them, said as a learner says it; no layers[i] paths.
    assert rows[0] == [
        "layers",
        "Flatten, Dense 10 softmax",
        "Flatten, Dropout 0.2, Dense 10 softmax",
    ]
    assert rows[1] == ["layers against tm-plain", "\u2013", "+ Dropout 0.2 after Flatten"]
    assert not [path for path, *_ in rows[2:] if path.startswith("layers")], rows
    assert all(len(set(values)) == 2 for _, *values in rows), rows
    assert page.errors == []


def test_a_refusal_shows_beside_the_field_or_layer_it_names(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    page = open_page(f"{lab.url}/#/new?preset=leaky_relu")
    page.wait_for_selector("td.total-params")
    # A rule over the whole of fit, which names the field that breaks it.
    page.fill("#f-fit-train_size", "70000")
    page.dispatch_event("#f-fit-train_size", "change")
    error = page.wait_for_selector(".field-error[data-for='fit.train_size']")
    assert "train_size 70000" in error.inner_text()
    page.fill("#f-fit-train_size", "")
    page.dispatch_event("#f-fit-train_size", "change")
    page.wait_for_selector(".field-error", state="detached")
    # A rule over the whole net, which names its last layer: shown under that layer, [5].
    page.select_option("select[data-loc='layers.5.activation']", "")
    error = page.wait_for_selector(".layer[data-loc='layers.5'] + .field-error")
    assert error.inner_text().startswith("layers[5] (Dense)")
    assert page.inner_text(".layer[data-loc='layers.5'] .index") == "[5]"
    assert page.locator("#new-experiment .notice").count() == 0
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_the_pad_shows_the_photo_an_answer_is_about(
    lab: Lab, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    lab.wait_for_a_model()
    photo = tmp_path / "seven.png"
    photo.write_bytes(mnist_png(0))
    junk = tmp_path / "junk.png"
    junk.write_text("not a picture")
    page = open_page(f"{lab.url}/#/draw")
    page.wait_for_selector("canvas.pad")
    page.set_input_files("input[type=file]", str(photo))
    page.wait_for_selector("#digit")
    dark = (
        "Array.from(document.querySelector('canvas.pad').getContext('2d')"
        ".getImageData(0, 0, 280, 280).data).some((v, i) => i % 4 === 0 && v < 128)"
    )
    assert page.evaluate(dark)  # MNIST's black background, drawn in the pad
    assert page.inner_text("#quick").startswith(f"reads {page.inner_text('#digit')}")

    page.set_input_files("input[type=file]", str(junk))
    page.wait_for_selector("p.error:text('not an image')")
    assert page.locator("#digit").count() == 0  # no answer left over from the seven
    page.click("button:text('Clear')")
    assert page.input_value("input[type=file]") == ""
    assert page.inner_text("p.error") == ""
    assert not page.evaluate(dark)
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_an_alias_pointed_from_the_experiment_page_serves_its_model(
    lab: Lab, open_page: Callable[..., Any]
) -> None:
    experiment_id = lab.submit("tm-aliased", epochs=1)
    lab.wait_finished(experiment_id)
    page = open_page(f"{lab.url}/#/experiments/{experiment_id}")
    page.fill("#alias-form input[name=alias]", "no spaces allowed")
    page.click("#alias-form button[type=submit]")
    page.wait_for_selector(".notice.bad:text('Alias:')")  # the service's reason, on the page
    page.fill("#alias-form input[name=alias]", "tm-demo")
    page.click("#alias-form button[type=submit]")
    page.wait_for_selector("dl.facts dd:text('tm-demo')")
    assert lab.http.get("/models/tm-demo").json()["experiment_id"] == experiment_id
    page.click("a:text('draw a digit for it')")
    page.wait_for_selector("canvas.pad")
    assert page.input_value("#model") == "tm-demo"
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_a_rerun_names_its_original(lab: Lab, open_page: Callable[..., Any]) -> None:
    original = lab.submit("tm-original", epochs=1)
    lab.wait_finished(original)
    page = open_page(f"{lab.url}/#/experiments/{original}")
    page.click("button:text('Rerun')")
    page.wait_for_selector("#rerun-of:text('tm-original')")
    assert original not in page.url
    assert page.errors == []


def test_the_dry_run_summary_fits_beside_the_form(lab: Lab, open_page: Callable[..., Any]) -> None:
    page = open_page(f"{lab.url}/#/new?preset=batchnorm")
    page.wait_for_selector("td.total-params:text('271,346')")
    table = page.query_selector(".split > .sticky .table-wrap")
    assert table.evaluate("(frame) => frame.scrollWidth <= frame.clientWidth")  # Parameters too
    lines = table.eval_on_selector_all(
        "tbody td:nth-child(2)",
        """cells => cells.map((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            return range.getClientRects().length;
        })""",
    )
    assert set(lines) == {1}  # "(None, 784)" on one line
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # down to the fit fields
    top = page.evaluate("document.querySelector('.split > .sticky').getBoundingClientRect().top")
    assert 0 <= top < 900  # the summary is still in view
    assert page.errors == []
