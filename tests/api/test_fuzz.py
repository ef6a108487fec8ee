"""Schemathesis against the service's own OpenAPI schema, every check it has (`--checks all`):
no 5xx, every answer as declared, no request the schema allows refused (nor one it forbids
accepted), 405 with its Allow header.

The database is seeded with an experiment in every state a worker can leave one in, so the
reads answer with real bodies and not only 404s. No worker runs: a POST only queues.

Two passes over every operation:
- `test_api_answers_as_declared`: schemathesis alone (coverage phase, then fuzzing), with the
  ids it makes up;
- `test_seeded_experiments_answer_as_declared`: the same operations aimed at the seeded ids,
  and POST /experiments sent specs the service accepts, which random JSON almost never is.

The schema is the one `create_app()` serves; each test then calls its own app, started on the
test's settings. Examples are bounded so the file stays well under a minute and a half.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.api.app import create_app
from service.config import Settings
from service.db import claims, leases, repository
from service.db.migrations import upgrade_to_head
from service.db.session import Database
from service.domain import EpochRecord, Status, utcnow
from service.schemas.experiments import ExperimentCreate
from service.spec.fingerprint import normalised_spec
from service.storage import ModelStore, model_key, store_from_settings
from tests import factories

# The first accepted POST imports TensorFlow for its dry run: seconds on a loaded machine.
REQUEST_TIMEOUT = 120.0
# Hypothesis keeps the app across examples on purpose: its database is the state under test.
FUZZ = hypothesis.settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OPENAPI = create_app(Settings()).openapi()
# Event streams never end, and a whole-body check cannot wait for them: tests/events has theirs.
schema = schemathesis.openapi.from_dict(OPENAPI).exclude(path_regex=r"/events$")

# Where a seeded experiment can stand in for what schemathesis makes up.
ID_PATH_PARAMETERS = {"experiment_id", "name"}
ID_QUERY_PARAMETERS = {"ids"}
ID_BODY_FIELDS = {"experiment_id", "model"}


def _body_fields(operation: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    found: set[str] = set()
    for media in content.values():
        body = media.get("schema", {})
        if "$ref" in body:
            body = OPENAPI["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        found |= set(body.get("properties", {}))
    return found


def _aimable(method: str, path: str) -> bool:
    """Whether the seeded test has anything of its own to send this operation."""
    if (method, path) == ("post", "/experiments"):
        return True
    operation = OPENAPI["paths"][path][method]
    names = {parameter["name"] for parameter in operation.get("parameters", [])}
    return bool(
        names & (ID_PATH_PARAMETERS | ID_QUERY_PARAMETERS)
        or _body_fields(operation) & ID_BODY_FIELDS
    )


AIMABLE = sorted(
    f"{method.upper()} {path}"
    for path, operations in OPENAPI["paths"].items()
    for method in operations
    if _aimable(method, path)
)

TINY_SUMMARY = {
    "layers": [
        {"name": "flatten", "type": "Flatten", "output_shape": [None, 784], "params": 0},
        {"name": "dense", "type": "Dense", "output_shape": [None, 10], "params": 7850},
    ],
    "total_params": 7850,
    "trainable_params": 7850,
    "non_trainable_params": 0,
}
STATES = ["queued", "requeued", "running", "succeeded", "failed", "lost", "cancelled"]
SPEC_FACTORIES: list[Callable[..., dict[str, Any]]] = [
    factories.tiny_spec,
    factories.conv_spec,
    factories.leaky_relu_spec,
    factories.batchnorm_spec,
    factories.dropout_spec,
]


@dataclass(frozen=True)
class Seeded:
    app: FastAPI
    ids: dict[str, str]


def epoch(number: int, attempt: int) -> EpochRecord:
    return EpochRecord(
        epoch=number,
        loss=1.0 / number,
        accuracy=0.9,
        val_loss=None if number == 1 else 0.5,
        val_accuracy=None if number == 1 else 0.85,
        seconds=1.5,
        attempt=attempt,
    )


def seed(db: Database, store: ModelStore, model: Path, max_attempts: int) -> dict[str, str]:
    """One experiment per state, written the way the API and the workers write them.

    The succeeded one gets `model` as its trained model, so predictions have one to serve.
    """
    spec = normalised_spec(ExperimentCreate.model_validate(factories.tiny_spec()).draft().spec)
    ids: dict[str, str] = {}
    for state in STATES:
        with db.scope() as session:
            ids[state] = repository.create_experiment(
                session,
                name=f"seed-{state}",
                description=f"left {state}" if state != "queued" else None,
                spec=spec,
                summary=TINY_SUMMARY,
                client_id="fuzz",
                max_attempts=max_attempts,
            ).id
    lease = {"lease_seconds": 60.0}
    # First, while nothing else runs: lease after lease lost until the attempts are spent.
    for worker in range(max_attempts):
        with db.scope() as session:
            assert claims.claim(session, experiment_id=ids["lost"], worker=f"w{worker}", **lease)
        with db.scope() as session:
            leases.sweep(session, now=utcnow() + timedelta(minutes=5))
    with db.scope() as session:
        for state in ("requeued", "running", "succeeded", "failed"):
            assert claims.claim(session, experiment_id=ids[state], worker="w1", **lease)
            for number in (1, 2):
                leases.record_epoch(
                    session,
                    experiment_id=ids[state],
                    attempt=1,
                    record=epoch(number, attempt=1),
                    **lease,
                )
        leases.release(session, experiment_id=ids["requeued"], attempt=1, reason="exit code -9")
        leases.succeed(
            session,
            experiment_id=ids["succeeded"],
            attempt=1,
            test_loss=0.3,
            test_accuracy=0.91,
            model_uri=store.put_file(model, model_key(ids["succeeded"])),
            versions={"tensorflow": "2.19.0", "keras": "3.9.0"},
        )
        diverged = replace(epoch(3, attempt=1), loss=math.nan, accuracy=None)
        leases.record_epoch(
            session, experiment_id=ids["failed"], attempt=1, record=diverged, **lease
        )
        leases.finish(
            session,
            experiment_id=ids["failed"],
            attempt=1,
            status=Status.FAILED,
            error="training diverged at epoch 3",
        )
        repository.request_cancel(session, ids["cancelled"])
        repository.request_cancel(session, ids["running"])  # flagged, its worker not yet told
    with db.scope() as session:
        states = {state: repository.get_experiment(session, ids[state]).status for state in ids}
    assert states == {
        "queued": Status.QUEUED,
        "requeued": Status.QUEUED,
        "running": Status.RUNNING,
        "succeeded": Status.SUCCEEDED,
        "failed": Status.FAILED,
        "lost": Status.FAILED,
        "cancelled": Status.CANCELLED,
    }
    return ids


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny net, built but never trained: its predictions are as servable as any."""
    from service.ml.build import build_model  # TensorFlow, once per session

    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_model(ExperimentCreate.model_validate(factories.tiny_spec())).save(path)
    return path


@pytest.fixture
def seeded(settings: Settings, untrained_model: Path) -> Iterator[Seeded]:
    db = Database(settings.database_url)
    upgrade_to_head(settings.database_url, db.engine)
    try:
        ids = seed(db, store_from_settings(settings), untrained_model, settings.max_attempts)
    finally:
        db.dispose()
    yield Seeded(app=create_app(settings), ids=ids)
    # Schemathesis starts the app's lifespan on first call and keeps it for the process.
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


# What JSON Schema cannot state, so a body the schema allows may still be refused for it (and
# only for it): the rules across a spec's fields (layers that fit together, a split that leaves
# images on both sides, one clipping, the deployment's caps), by their error types ...
CROSS_FIELD_SPEC_RULES = frozenset(
    {"architecture", "split", "validation", "clipping", "reduce_lr_on_plateau", "limit", "range"}
    # Keras's own to_json() (in place of layers): an object or its text, which Keras's
    # deserializer reads; JSON Schema cannot look inside a string that holds JSON.
    | {"keras_json"}
    # A schedule's values one more than its boundaries, which increase: JSON Schema cannot
    # relate one array's length to another's, nor order an array's items.
    | {"schedule"}
    # A challenge's closes_at still to come: JSON Schema has no clock.
    | {"in_the_past"}
)
# ... what only the use case can find: a study's paths that lead nowhere in its base, a trial
# or a net Keras would not build or train (SpecRejected), an image with no digit in it, a list's
# cursor that this service did not write (the schema states its alphabet, not its author) ...
BEYOND_THE_SCHEMA = frozenset({"invalid_spec", "invalid_image", "invalid_cursor"})
# ... what Python code says (a cell that does not parse, or builds and fits no model): the code
# is a string to JSON Schema ...
CODE_RULES = frozenset({"code_refused", "nothing_to_train"})
# ... and an infer tensor whose data and shape must agree, with rows of one length.
TENSOR_RULES = (
    "flat or nested row by row",
    "values; shape",
    "is not an image batch",
    "holds no image",
    "pixel values",
    "0 to 255",
)


def refused_for_a_rule_the_schema_cannot_state(response: Any) -> bool:
    if response.status_code not in (400, 422):
        return False
    body = response.json()
    if "error" in body and set(body) == {"error"}:  # the v2 protocol's error body
        return any(rule in body["error"] for rule in TENSOR_RULES)
    if body.get("error") in BEYOND_THE_SCHEMA | CODE_RULES:
        return True
    details = body.get("details") or []
    return bool(details) and all(
        isinstance(item, dict) and item.get("type") in CROSS_FIELD_SPEC_RULES for item in details
    )


# Uploads whose file holds a format of its own: a notebook's JSON, a CSV of people.
FILE_UPLOADS = frozenset({"/notebooks", "/people/upload"})


def uploaded_file_refused(case: schemathesis.Case, response: Any) -> bool:
    """A file's bytes are a string to JSON Schema, which cannot say they hold a notebook's JSON
    or a CSV with a name on each line (the notebook's JSON body has its schema)."""
    return (
        case.method == "POST"
        and case.path in FILE_UPLOADS
        and case.media_type == "multipart/form-data"
        and response.status_code == 422
        and response.json().get("error") == "invalid_input"
    )


def call_and_validate_all(case: schemathesis.Case, app: FastAPI, *, aimed: bool = False) -> None:
    """Every check; positive data acceptance too, unless the refusal is for a rule above.

    `aimed`: a seeded id or spec replaced what schemathesis generated. If that was the part it
    had made invalid, the case still carries the record of that mutation (schemathesis reads
    it, not the values, to judge what the case breaks), so a request now valid but for extra
    query parameters, which the service ignores, would count as invalid data accepted. Invalid
    data is `test_api_answers_as_declared`'s to send, with nothing replaced."""
    response = case.call(app=app, timeout=REQUEST_TIMEOUT)
    exempt = refused_for_a_rule_the_schema_cannot_state(response) or uploaded_file_refused(
        case, response
    )
    excluded = [positive_data_acceptance] if exempt else []
    if aimed:
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded, transport_kwargs={"app": app})


@schema.parametrize()
@FUZZ
def test_api_answers_as_declared(case: schemathesis.Case, seeded: Seeded) -> None:
    call_and_validate_all(case, seeded.app)


@schema.include(name=AIMABLE).parametrize()
@schema.given(
    state=st.sampled_from(STATES),
    # Two or more and distinct, as the schema says: a repeated id counts once.
    compared=st.lists(st.sampled_from(STATES), min_size=2, max_size=len(STATES), unique=True),
    spec=st.builds(
        lambda factory, epochs, seed: factory(fit={"epochs": epochs, "seed": seed}),
        st.sampled_from(SPEC_FACTORIES),
        st.integers(1, 100),
        st.integers(0, 2**31 - 1),
    ),
)
# Schema examples are the first test's to send: schemathesis cannot mix them with `given`.
@hypothesis.settings(FUZZ, max_examples=3, phases=[Phase.reuse, Phase.generate, Phase.shrink])
def test_seeded_experiments_answer_as_declared(
    case: schemathesis.Case,
    seeded: Seeded,
    state: str,
    compared: list[str],
    spec: dict[str, Any],
) -> None:
    aimed = False
    for name in ID_PATH_PARAMETERS & set(case.path_parameters or {}):
        if case.method == "GET" or name != "name":  # PUT and DELETE /models/{name} take aliases
            case.path_parameters[name] = seeded.ids[state]
            aimed = True
    for name in ID_QUERY_PARAMETERS & set(case.query or {}):
        case.query[name] = [seeded.ids[other] for other in compared]
        aimed = True
    if isinstance(case.body, dict):
        for name in ID_BODY_FIELDS & set(case.body):
            case.body[name] = seeded.ids[state]
            aimed = True
    if case.method == "POST" and case.path == "/experiments":
        case.body = spec
        aimed = True
    call_and_validate_all(case, seeded.app, aimed=aimed)


# What the fuzzing (and reading the code it pointed at) found wrong once, pinned. -------------


def test_body_that_is_not_utf8_is_422_like_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/experiments", content=b'{"name": "\xc3("}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "utf-8" in body["detail"]


def test_broken_multipart_is_422_like_malformed_json(client: TestClient) -> None:
    boundary = "7807597e60538a6c99ae7fb5caa2dd9a"
    response = client.post(
        "/predict/upload",
        content=f"--{boundary}\r\n-1.3e-275--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


def chunked(data: bytes, size: int = 512) -> Iterator[bytes]:
    """A body sent without Content-Length, as a streaming client sends it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_body_over_the_limit_is_413(
    settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    spec = factories.tiny_spec()
    spec["description"] = "x" * 4000
    with TestClient(create_app(make_settings(max_body_bytes=2048))) as small:
        response = small.post(
            "/experiments",
            content=chunked(json.dumps(spec).encode()),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "too_large"
        assert "MAX_BODY_BYTES" in response.json()["detail"]


def test_chunked_body_under_the_limit_reaches_the_app_whole(client: TestClient) -> None:
    spec = factories.tiny_spec(epochs=0)
    spec["description"] = "x" * 1500  # several chunks, the bad field in the last
    response = client.post(
        "/experiments",
        content=chunked(json.dumps(spec).encode()),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "fit.epochs" in response.json()["detail"]


def test_405_names_every_method_the_path_takes(client: TestClient) -> None:
    """Starlette's own Allow named the first route of the path only (GET, not DELETE)."""
    for path, allowed in (
        ("/studies", "GET, POST"),
        (f"/studies/{'0' * 32}", "DELETE, GET"),
        ("/models/production", "DELETE, GET, PUT"),
    ):
        response = client.request("PATCH", path)
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == allowed
        assert response.json()["detail"] == f"PATCH is not allowed here; use {allowed}"


def test_405_names_the_methods_of_the_route_the_path_resolves_to(client: TestClient) -> None:
    """/experiments/validate is also a /experiments/{experiment_id}, but the static route comes
    first: GET or DELETE there reach another route, so only POST is allowed at it."""
    response = client.options("/experiments/validate")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"


def test_one_path_template_per_url_so_no_method_hides_another() -> None:
    """PUT /models/x was declared under /models/{alias}, GET under /models/{reference}: a client
    of the second saw PUT undeclared, yet answered 422 rather than 405."""
    templates = [re.sub(r"\{[^}]*\}", "{}", path) for path in OPENAPI["paths"]]
    assert len(set(templates)) == len(templates)
    assert set(OPENAPI["paths"]["/models/{name}"]) == {"get", "put", "delete"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {"image": [[0] * 28] * 28, "images": [[[0] * 28] * 28]}),
        ("/predict", {}),
        ("/studies", {"preset": "optimizers", "base": factories.tiny_spec()}),
        ("/studies", {"preset": "optimizers", "sampler": "random", "n_trials": 2}),
        ("/studies", {"base": factories.tiny_spec(), "space": {"fit.seed": [1]}, "sampler": "tpe"}),
        ("/experiments/validate", {**factories.tiny_spec(), "tags": [" "]}),
        ("/experiments/validate", {**factories.tiny_spec(), "model": {"class_name": "x"}}),
        ("/notebooks", {"": []}),
        ("/notebooks", {"cells": [{"cell_type": "heading", "source": "# x"}]}),
        ("/v2/models/{name}/infer", None),
    ],
)
def test_bodies_the_service_refuses_are_outside_the_schema(
    client: TestClient, path: str, body: Any
) -> None:
    """Each refusal the fuzzing met in a body its schema allowed, now stated in the schema."""
    body_schema = OPENAPI["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    # Rooted beside the components, so that their $refs resolve.
    validator = jsonschema.Draft202012Validator(
        {"components": OPENAPI["components"], **body_schema["schema"]}
    )
    assert not validator.is_valid(body)
    response = client.post(
        path.format(name="best"),
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text


def test_a_window_side_given_as_a_whole_float_is_the_integer() -> None:
    """JSON (and the schema's "integer") counts 3.0 as an integer; the spec refused it."""
    spec = factories.conv_spec()
    for layer in spec["layers"]:
        if layer["type"] == "Conv2D":
            layer["kernel_size"] = 3.0
    created = ExperimentCreate.model_validate(spec)
    assert any(getattr(layer, "kernel_size", None) == 3 for layer in created.layers)


def test_the_schema_and_the_check_agree_on_what_a_blank_name_is() -> None:
    """JSON Schema's `\\S` is ECMA's, which differs from Python's on U+001C-U+001F and U+FEFF:
    schemathesis found a name of U+001E that the schema allowed and the service refused. The
    pattern spells its class out, with no shorthand whose meaning differs between the two."""
    pattern = ExperimentCreate.model_json_schema()["properties"]["name"]["pattern"]
    assert not re.search(r"\\[sSwWdDbB]", pattern)
    assert all(
        bool(re.fullmatch(pattern, chr(code))) is not chr(code).isspace() for code in range(0x10000)
    )
    for name in ("\x1e", "\x85 ", "\u3000", "\ufeff", "net"):
        accepted = True
        try:
            ExperimentCreate.model_validate({**factories.tiny_spec(), "name": name})
        except ValidationError:
            accepted = False
        assert accepted is bool(re.search(pattern, name)), repr(name)
