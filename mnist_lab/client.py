"""The lab from Python, as if it were Keras: `lab.fit(model, epochs=5)` trains on the service and
returns a run whose `history` is Keras's `History.history`. Needs httpx and tqdm, not TensorFlow.

    Lab                  the service at a URL (MNIST_LAB_URL), with a token (MNIST_LAB_TOKEN)
    ├── fit / submit     a spec dict, Keras code, model.to_json(), or a keras.Sequential
    ├── study            a preset study; its leaderboard rows
    ├── experiments      the listing; compare(ids)
    Run                  one experiment: wait, history, evaluate, predict, summary, cancel
    Study                one study: wait, leaderboard
    LabError             every refusal: the HTTP status and the service's message
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = ("succeeded", "failed", "cancelled", "pruned")
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# A stream sends a keep-alive every 15 s; a read this long without one means it is gone.
STREAM_READ_SECONDS = 60.0
RECONNECTS = 20
STUDY_POLL_SECONDS = 1.0
PAGE_LIMIT = 200  # the most rows GET /experiments answers at once


class LabError(Exception):
    """The service refused or failed a request: `status` is the HTTP status (0 when it could not
    be reached), `message` the service's own words."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.body = body


def _rows(rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame when pandas is installed, else the list of dicts."""
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


class Lab:
    """A client of one MNIST lab service."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("MNIST_LAB_URL") or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get("MNIST_LAB_TOKEN") or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Lab({self.url!r})"

    # HTTP --------------------------------------------------------------------------------
    def request(self, method: str, path: str, **arguments: Any) -> Any:
        """The JSON (or text) the service answers; LabError for any refusal."""
        try:
            response = self._http.request(method, path, **arguments)
        except httpx.HTTPError as error:
            raise LabError(0, f"cannot reach the lab at {self.url}: {error}") from None
        if response.status_code >= 400:
            raise _refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def events(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) from a Server-Sent Events stream, resumed after a dropped connection."""
        last_id: str | None = None
        for _ in range(RECONNECTS):
            headers = {"Last-Event-ID": last_id} if last_id else {}
            timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_SECONDS)
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if response.status_code == 204:
                        return
                    if response.status_code >= 400:
                        response.read()
                        raise _refusal(response)
                    kind, data = "message", ""
                    for line in response.iter_lines():
                        if line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line.startswith("data:"):
                            data += line[5:].strip()
                        elif not line and data:
                            yield kind, json.loads(data)
                            kind, data = "message", ""
                    return
            except (httpx.TransportError, httpx.StreamError):
                continue  # resume from last_id
        raise LabError(0, f"the event stream {path} kept breaking; try again")

    # Experiments -------------------------------------------------------------------------
    def spec_of(self, model: Any) -> dict[str, Any]:
        """The request body for `model`: a spec dict, Keras code, model.to_json() (a string
        or its dict), or a keras.Sequential."""
        if isinstance(model, Mapping):
            body = dict(model)
            return {"model": body} if "class_name" in body else body
        if isinstance(model, str):
            if model.lstrip().startswith("{"):
                return {"model": model}
            read = self.request(
                "POST", "/experiments/from-code", params={"dry_run": "true"}, json={"code": model}
            )
            found: dict[str, Any] = read["experiments"][0]["spec"]
            return found
        if hasattr(model, "to_json"):
            return _keras_model(model)
        raise TypeError(
            "give a spec dict, Keras code (a string), model.to_json() or a keras.Sequential, "
            f"not {type(model).__name__}"
        )

    def submit(
        self,
        model: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        compile: Mapping[str, Any] | None = None,
        **fit: Any,
    ) -> Run:
        """Queue `model` (see spec_of); `fit` arguments (epochs=5, train_size=1000) override
        the spec's. Returns at once."""
        body = self.spec_of(model)
        body["name"] = name or body.get("name") or "from-python"
        if description is not None:
            body["description"] = description
        if tags:
            body["tags"] = list(tags)
        if compile is not None:
            body["compile"] = dict(compile)
        given = {key: value for key, value in fit.items() if value is not None}
        if given:
            body["fit"] = {**(body.get("fit") or {}), **given}
        return Run(self, self.request("POST", "/experiments", json=body))

    def fit(
        self,
        model: Any,
        epochs: int | None = None,
        name: str | None = None,
        *,
        wait: bool = True,
        progress: bool = True,
        **options: Any,
    ) -> Run:
        """Train `model` on the service as Keras's fit would: a progress bar per epoch with
        its metrics, then the run (its `history` like History.history). `wait=False`
        returns as soon as it is queued."""
        run = self.submit(model, name=name, epochs=epochs, **options)
        return run.wait(progress=progress) if wait else run

    def experiment(self, experiment_id: str) -> Run:
        return Run(self, self.request("GET", f"/experiments/{experiment_id}"))

    def experiments(
        self, *, status: str | None = None, tag: str | Sequence[str] | None = None, limit: int = 50
    ) -> Any:
        """The newest `limit` experiments, one row each (a DataFrame when pandas is installed);
        more than a page's 200 are read page after page, each from the last one's cursor."""
        params: dict[str, Any] = {"view": "compact"}
        if status:
            params["status"] = status
        if tag:
            params["tag"] = [tag] if isinstance(tag, str) else list(tag)
        rows: list[dict[str, Any]] = []
        while len(rows) < limit:
            wanted = min(limit - len(rows), PAGE_LIMIT)
            page = self.request("GET", "/experiments", params={**params, "limit": wanted})
            rows += page["data"]
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        return _rows(rows)

    def compare(self, ids: Sequence[str]) -> dict[str, Any]:
        """What differs between the runs, their scores and aligned histories."""
        found: dict[str, Any] = self.request("GET", "/compare", params={"ids": ",".join(ids)})
        return found

    def notebook(self, path: str | Path, *, dry_run: bool = False) -> list[Run]:
        """Every model an .ipynb trains, queued (or, with dry_run, only read)."""
        path = Path(path)
        read = self.request(
            "POST",
            "/notebooks",
            params={"dry_run": str(dry_run).lower()},
            files={"file": (path.name, path.read_bytes(), "application/x-ipynb+json")},
        )
        return [Run(self, item["experiment"]) for item in read["experiments"] if item["experiment"]]

    # Studies -----------------------------------------------------------------------------
    def study(
        self,
        preset: str,
        *,
        epochs: int | None = None,
        train_size: int | None = None,
        max_parallel: int = 1,
        wait: bool = True,
        progress: bool = True,
    ) -> Study:
        body: dict[str, Any] = {"preset": preset, "max_parallel": max_parallel}
        if epochs is not None:
            body["epochs"] = epochs
        if train_size is not None:
            body["train_size"] = train_size
        study = Study(self, self.request("POST", "/studies", json=body))
        return study.wait(progress=progress) if wait else study


def _refusal(response: httpx.Response) -> LabError:
    try:
        body = response.json()
    except ValueError:
        return LabError(response.status_code, response.text or response.reason_phrase)
    message = body.get("detail") if isinstance(body, dict) else None
    return LabError(response.status_code, str(message or body), body)


def _keras_model(model: Any) -> dict[str, Any]:
    """A keras.Sequential as the request: its to_json() (with its compile_config when it
    was compiled), its optimizer through keras.optimizers.serialize."""
    body: dict[str, Any] = {"model": json.loads(model.to_json())}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(model, "compiled", True):
        import keras

        body["compile"] = {
            "optimizer": keras.optimizers.serialize(optimizer),
            "loss": getattr(model, "loss", None) or "sparse_categorical_crossentropy",
        }
        body["model"].pop("compile_config", None)
    return body


class Run:
    """One experiment on the service."""

    def __init__(self, lab: Lab, data: dict[str, Any]) -> None:
        self.lab = lab
        self.data = data
        self.id: str = data["id"]

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.data.get('name')!r} {self.status}>"

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    def refresh(self) -> Run:
        self.data = self.lab.request("GET", f"/experiments/{self.id}")
        return self

    def wait(self, *, progress: bool = True) -> Run:
        """Until it has finished, with a bar over its epochs fed by the event stream."""
        epochs = int(self.data["spec"]["fit"]["epochs"])
        bar = tqdm(total=epochs, desc=self.name, unit="epoch", disable=not progress)
        seen: set[int] = set()
        try:
            for kind, data in self.lab.events(f"/experiments/{self.id}/events"):
                if kind == "epoch":
                    seen.add(int(data["epoch"]))
                    bar.update(len(seen) - bar.n)
                    shown = {m: data[m] for m in METRICS if data.get(m) is not None}
                    bar.set_postfix({m: f"{v:.4f}" for m, v in shown.items()}, refresh=True)
                elif kind == "status":
                    bar.set_description(f"{self.name} ({data['status']})")
        finally:
            bar.close()
        return self.refresh()

    @property
    def history(self) -> dict[str, list[float]]:
        """Each metric's value per epoch, as Keras's History.history holds them."""
        epochs = self.lab.request("GET", f"/experiments/{self.id}/history")["epochs"]
        found: dict[str, list[float]] = {}
        for metric in METRICS:
            values = [epoch[metric] for epoch in epochs]
            if epochs and all(value is not None for value in values):
                found[metric] = values
        return found

    def evaluate(self) -> list[float]:
        """[test loss, test accuracy], as model.evaluate gives them for the MNIST test set."""
        self.refresh()
        if self.data.get("test_loss") is None:
            raise LabError(
                409, f"experiment {self.id} has no test score ({self.status}); wait() for it"
            )
        return [float(self.data["test_loss"]), float(self.data["test_accuracy"])]

    def predict(self, images: Any) -> list[list[float]]:
        """Each image's 10 probabilities (as model.predict); images are 28x28 arrays."""
        listed = images.tolist() if hasattr(images, "tolist") else list(images)
        if listed and not isinstance(listed[0][0], list):
            listed = [listed]  # one image
        answer = self.lab.request("POST", "/predict", json={"images": listed, "model": self.id})
        return [prediction["probabilities"] for prediction in answer["predictions"]]

    def summary(self, print_fn: Any = print) -> None:
        """Keras's model.summary() table, from the service's build of the net."""
        print_fn(summary_text(self.data["summary"], self.name))

    def cancel(self) -> Run:
        self.data = self.lab.request("POST", f"/experiments/{self.id}/cancel")
        return self


def summary_text(summary: Mapping[str, Any], name: str) -> str:
    """A summary as Keras prints it."""
    rows = [
        (
            f"{layer['name']} ({layer['type']})",
            str(tuple(layer["output_shape"])),
            f"{layer['params']:,}",
        )
        for layer in summary["layers"]
    ]
    header = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(row[i]) for row in [header, *rows]) + 2 for i in range(3)]
    rule = "-" * sum(widths)
    lines = [
        f'Model: "{name}"',
        rule,
        "".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        rule,
    ]
    lines += ["".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines += [
        rule,
        f" Total params: {summary['total_params']:,}",
        f" Trainable params: {summary['trainable_params']:,}",
        f" Non-trainable params: {summary['non_trainable_params']:,}",
    ]
    return "\n".join(lines)


class Study:
    """One study on the service: its trials and leaderboard."""

    def __init__(self, lab: Lab, data: dict[str, Any]) -> None:
        self.lab = lab
        self.data = data
        self.id: str = data["id"]

    def __repr__(self) -> str:
        return f"<Study {self.id} {self.data.get('name')!r} {self.data.get('status')}>"

    def refresh(self) -> Study:
        self.data = self.lab.request("GET", f"/studies/{self.id}")
        return self

    @property
    def finished(self) -> bool:
        return bool(self.data["status"] != "running")

    def wait(self, *, progress: bool = True, poll_seconds: float = STUDY_POLL_SECONDS) -> Study:
        """Until every trial has ended, with a bar over the trials."""
        bar = tqdm(
            total=int(self.data["n_trials"]),
            desc=str(self.data["name"]),
            unit="trial",
            disable=not progress,
        )
        try:
            while True:
                ended = sum(
                    count
                    for status, count in self.data["progress"].items()
                    if status not in ("queued", "running")
                )
                bar.update(ended - bar.n)
                if self.finished:
                    break
                time.sleep(poll_seconds)
                self.refresh()
        finally:
            bar.close()
        return self

    @property
    def leaderboard(self) -> Any:
        """Best first; a DataFrame when pandas is installed."""
        return _rows(list(self.refresh().data["leaderboard"]))
