"""PRELOAD_MODELS: a model that becomes `best`, `latest` or an alias's target is loaded in the
background as soon as the change feed shows it, and until it is warm the name answers from the
model it named before, briefly; an experiment id always answers from exactly that model.

The model store is the real one read as a remote one, with a gate at the boundary (`get_file`):
a load can be held mid-way, or made to fail, whoever started it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import metrics
from service.db import repository
from service.serving.preloader import ModelPreloader
from service.storage import ModelStore, model_key
from tests.helpers import publish, put_alias, runtime_of, save_untrained_model, wait_for

IMAGE = [[0.0] * 28 for _ in range(27)] + [[1.0] * 28]
WAIT = 120.0  # a bound for a load on a busy machine, never a timing claim


class GatedStore(ModelStore):
    """The test's model store read as a remote one. After `hold` every read waits until
    `release`; after `break_reads` every read fails as a disk or network would. `read` lists
    the keys read since either was called."""

    def __init__(self, real: ModelStore) -> None:
        super().__init__(real.url)
        self.is_local = False
        self.read: list[str] = []
        self._entered = threading.Semaphore(0)
        self._gate: threading.Event | None = None
        self._broken = False

    def hold(self) -> None:
        self._count_reads_from_now()
        self._gate = threading.Event()

    def release(self) -> None:
        assert self._gate is not None
        self._gate.set()

    def break_reads(self) -> None:
        self._count_reads_from_now()
        self._broken = True

    def _count_reads_from_now(self) -> None:
        self.read = []
        self._entered = threading.Semaphore(0)

    def wait_read(self) -> str:
        """The key of the next read that reached the store (held or broken)."""
        assert self._entered.acquire(timeout=WAIT), "no load reached the store"
        return self.read[-1]

    def get_file(self, key: str, local_path: str | Path) -> Path:
        self.read.append(key)
        self._entered.release()
        if self._broken:
            raise OSError("the model store is down")
        if self._gate is not None:
            assert self._gate.wait(WAIT), "the test never released the load"
        return super().get_file(key, local_path)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(app_with: Callable[..., TestClient]) -> TestClient:
    return app_with(preload_models=True, events_poll_seconds=0.05)


@pytest.fixture
def store(client: TestClient) -> GatedStore:
    loader = runtime_of(client).predictions.loader
    gated = GatedStore(loader.store)
    loader.store = gated
    return gated


@pytest.fixture
def preloader(client: TestClient) -> ModelPreloader:
    preloader = runtime_of(client).predictions.preloader
    assert preloader is not None
    return preloader


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return save_untrained_model(tmp_path / "model.keras")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def answered_by(client: TestClient, model: str) -> str:
    response = client.post("/predict", json={"image": IMAGE, "model": model})
    assert response.status_code == 200, response.text
    experiment_id: str = response.json()["model"]["experiment_id"]
    return experiment_id


def warm(client: TestClient, experiment_id: str) -> bool:
    return experiment_id in runtime_of(client).predictions.loader.cache


def loads_by_requests() -> float:
    value: float = metrics.MODEL_LOADS.labels("request")._value.get()
    return value


def serving(client: TestClient, model_file: Path) -> str:
    """A first model, preloaded, that `best` and `latest` have answered with."""
    first = publish(client, model_file, name="first", test_accuracy=0.8)
    wait_for(lambda: warm(client, first), timeout=WAIT, what="the first model preloaded")
    assert answered_by(client, "latest") == answered_by(client, "best") == first
    return first


def test_a_model_that_becomes_best_latest_or_an_alias_target_is_warm_before_anyone_asks(
    client: TestClient, store: GatedStore, model_file: Path
) -> None:
    requests_loaded = loads_by_requests()
    first = publish(client, model_file, name="first", test_accuracy=0.9)
    wait_for(lambda: warm(client, first), timeout=WAIT, what="best and latest preloaded")

    newer = publish(client, model_file, name="newer", test_accuracy=0.8)
    wait_for(lambda: warm(client, newer), timeout=WAIT, what="the new latest preloaded")

    runtime_of(client).predictions.loader.evict(first)
    put_alias(client, "production", first)
    wait_for(lambda: warm(client, first), timeout=WAIT, what="the alias's target preloaded")

    assert answered_by(client, "best") == first
    assert answered_by(client, "latest") == newer
    assert answered_by(client, "production") == first
    assert loads_by_requests() == requests_loaded


def test_a_name_answers_from_its_previous_model_while_its_new_one_loads(
    client: TestClient,
    store: GatedStore,
    preloader: ModelPreloader,
    model_file: Path,
    pool: ThreadPoolExecutor,
) -> None:
    before = serving(client, model_file)
    requests_loaded = loads_by_requests()

    store.hold()
    after = publish(client, model_file, name="after", test_accuracy=0.95)
    assert store.wait_read() == model_key(after)  # the preloader's load, held mid-way

    assert answered_by(client, "latest") == before
    assert answered_by(client, "best") == before
    upload = client.post(
        "/predict/upload", files={"file": ("d.png", b"", "image/png")}, data={"model": "latest"}
    )
    assert upload.status_code == 422  # refused for the image, not held by the load
    # The id itself answers from exactly that model: its request waits for the load.
    exact: Future[str] = pool.submit(answered_by, client, after)

    store.release()
    assert exact.result(WAIT) == after
    assert preloader.wait_idle(WAIT)
    assert answered_by(client, "latest") == answered_by(client, "best") == after
    assert loads_by_requests() == requests_loaded
    assert store.read == [model_key(after)]  # one load, shared by the request for the id


def test_a_name_answers_from_its_previous_model_only_briefly(
    client: TestClient,
    store: GatedStore,
    preloader: ModelPreloader,
    model_file: Path,
    pool: ThreadPoolExecutor,
) -> None:
    clock = Clock()
    preloader.clock = clock
    before = serving(client, model_file)

    store.hold()
    after = publish(client, model_file, name="after", test_accuracy=0.95)
    assert store.wait_read() == model_key(after)
    assert answered_by(client, "latest") == before

    clock.now += preloader.max_stale_seconds + 1
    latest: Future[str] = pool.submit(answered_by, client, "latest")
    store.release()
    assert latest.result(WAIT) == after


def test_a_failed_background_load_is_left_to_the_request_path_and_its_message(
    client: TestClient, store: GatedStore, preloader: ModelPreloader, model_file: Path
) -> None:
    serving(client, model_file)

    store.break_reads()
    broken = publish(client, model_file, name="broken", test_accuracy=0.95)
    assert store.wait_read() == model_key(broken)  # the preloader's try
    assert preloader.wait_idle(WAIT)

    for name in ("latest", "best"):
        response = client.post("/predict", json={"image": IMAGE, "model": name})
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "model_store_unavailable"
        assert f"reading the model of experiment {broken}" in response.json()["detail"]
    assert store.read.count(model_key(broken)) == 3  # each request tried again


def test_an_experiment_deleted_by_another_api_process_is_dropped_from_this_ones_cache(
    client: TestClient, model_file: Path
) -> None:
    served = serving(client, model_file)
    with runtime_of(client).db.scope() as session:  # as another API process deletes it
        repository.delete_experiment(session, served)

    wait_for(lambda: not warm(client, served), timeout=WAIT, what="the model dropped")
    response = client.post("/predict", json={"image": IMAGE, "model": "latest"})
    assert response.status_code == 404, response.text


def test_what_names_name_now_loads_first_then_what_they_moved_past(
    client: TestClient, store: GatedStore, preloader: ModelPreloader, model_file: Path
) -> None:
    serving(client, model_file)
    store.hold()
    held = publish(client, model_file, name="held", test_accuracy=0.9)  # best and latest
    assert store.wait_read() == model_key(held)
    # While the thread loads, requests that find `latest` moved queue its new model.
    passed = publish(client, model_file, name="passed", test_accuracy=0.5)
    wait_for(lambda: queued_by_asking(client, preloader, passed), timeout=WAIT, what="queued")
    newest = publish(client, model_file, name="newest", test_accuracy=0.5)
    wait_for(lambda: queued_by_asking(client, preloader, newest), timeout=WAIT, what="queued")

    assert preloader.pending() == [newest, passed]
    store.release()
    assert preloader.wait_idle(WAIT)
    assert store.read == [model_key(held), model_key(newest), model_key(passed)]


def test_a_model_that_succeeded_is_preloaded_though_no_name_named_it_when_looked_at(
    client: TestClient, store: GatedStore, preloader: ModelPreloader, model_file: Path
) -> None:
    # Two finish while the thread is busy: when it looks again, `latest` has moved past the
    # first, which its owner asks for by id next.
    serving(client, model_file)
    store.hold()
    held = publish(client, model_file, name="held", test_accuracy=0.9)
    assert store.wait_read() == model_key(held)
    passed = publish(client, model_file, name="passed", test_accuracy=0.5)
    newest = publish(client, model_file, name="newest", test_accuracy=0.5)
    requests_loaded = loads_by_requests()

    store.release()
    wait_for(lambda: warm(client, passed), timeout=WAIT, what="the passed model preloaded")
    assert model_key(newest) in store.read
    assert answered_by(client, passed) == passed
    assert loads_by_requests() == requests_loaded


def queued_by_asking(client: TestClient, preloader: ModelPreloader, experiment_id: str) -> bool:
    answered_by(client, "latest")  # from the model before while the new one waits to load
    return experiment_id in preloader.pending()
