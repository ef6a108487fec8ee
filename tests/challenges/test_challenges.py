"""The class challenge over HTTP: rules named in their 422s, the allowance, closing by hand and
by time, the leaderboard's order, ties and shake-up, and no student read of anything measured
on the private half (the full test accuracy, the evaluation, the private score) before the
close, through any route the OpenAPI document lists."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.api.app import create_app
from service.challenges.scoring import halves
from service.config import Settings
from service.db import challenges as store
from service.db import insight, leases
from service.insight.evaluation import evaluate_probabilities
from service.storage import model_key
from service.usecases import challenges
from tests.factories import tiny_spec
from tests.helpers import claim, runtime_of, save_untrained_model

TOKEN = "teacher-secret"
TEACHER = {"Authorization": f"Bearer {TOKEN}"}
TEST_IMAGES = 10_000
SEALED_ACCURACY = 0.87654321  # distinctive: any body that shows it leaked it


@pytest.fixture
def lab(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_token=TOKEN))) as client:
        yield client


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/challenges", json={"name": "MNIST under 100k", **body}, headers=TEACHER
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _enter(client: TestClient, challenge_id: str, spec: dict[str, Any] | None = None) -> Any:
    return client.post(
        f"/challenges/{challenge_id}/entries", json=spec or tiny_spec(), headers=TEACHER
    )


def _entry_as(client: TestClient, challenge_id: str, person: str) -> str:
    """An entry made by `person` (the use case: one token stands for everyone over HTTP)."""
    runtime = runtime_of(client)
    from service.schemas.experiments import ExperimentCreate

    return challenges.enter(
        challenge_id=challenge_id,
        draft=ExperimentCreate.model_validate(tiny_spec()).draft(),
        entrant=person,
        entrant_name=person,
        settings=runtime.settings,
        db=runtime.db,
        queue=runtime.queue,
        now=datetime.now(UTC),
    ).id


def _hits(client: TestClient, challenge_id: str, *, public: float, private: float) -> np.ndarray:
    """Which test images an entry reads right, so that it scores exactly `public` and
    `private` on the challenge's (secret) halves."""
    with runtime_of(client).db.scope() as session:
        seed = store.split_seed(session, challenge_id)
    public_half, private_half = halves(seed)
    correct = np.zeros(TEST_IMAGES, dtype=bool)
    correct[public_half[: round(public * len(public_half))]] = True
    correct[private_half[: round(private * len(private_half))]] = True
    return correct


def _succeed(client: TestClient, experiment_id: str, correct: np.ndarray, tmp_path: Path) -> None:
    """Finish an entry as a worker would: the model stored, the row succeeded, the evaluation
    saved (from probabilities that are right exactly where `correct` says)."""
    runtime = runtime_of(client)
    attempt = claim(client, experiment_id)
    uri = runtime.store.put_file(
        save_untrained_model(tmp_path / "m.keras"), model_key(experiment_id)
    )
    labels = np.arange(TEST_IMAGES) % 10
    predicted = np.where(correct, labels, (labels + 1) % 10)
    probabilities = np.full((TEST_IMAGES, 10), 0.01)
    probabilities[np.arange(TEST_IMAGES), predicted] = 0.91
    evaluation = evaluate_probabilities(
        probabilities, labels, np.zeros((TEST_IMAGES, 28, 28), dtype=np.uint8)
    )
    with runtime.db.scope() as session:
        assert leases.succeed(
            session,
            experiment_id=experiment_id,
            attempt=attempt,
            test_loss=0.4321,
            test_accuracy=SEALED_ACCURACY,
            model_uri=uri,
            versions={},
        )
        insight.save_evaluation(session, experiment_id=experiment_id, evaluation=evaluation)


def test_every_broken_rule_is_named_with_the_entrys_value(lab: TestClient) -> None:
    challenge = _create(
        lab,
        rules={
            "max_params": 1000,
            "max_epochs": 1,
            "train_size": 5000,
            "allowed_layers": ["Flatten", "Dense"],
            "allowed_optimizers": ["SGD"],
        },
    )
    spec = tiny_spec()  # Adam, 2 epochs, 2,000 images, 7,850 parameters
    spec["layers"].insert(1, {"type": "Dropout", "rate": 0.2})
    refused = _enter(lab, challenge["id"], spec)
    assert refused.status_code == 422, refused.text
    messages = [problem["msg"] for problem in refused.json()["details"]]
    assert any(m.startswith("rule max_params:") and "7,850" in m for m in messages), messages
    assert any(m.startswith("rule max_epochs:") and "2 epochs" in m for m in messages)
    assert any(m.startswith("rule train_size:") and "2,000" in m for m in messages)
    assert any(m.startswith("rule allowed_layers:") and "Dropout" in m for m in messages)
    assert any(m.startswith("rule allowed_optimizers:") and "Adam" in m for m in messages)
    assert lab.get("/experiments").json()["count"] == 0


def test_an_entry_trains_as_an_experiment_tagged_with_its_challenge(lab: TestClient) -> None:
    challenge = _create(lab, rules={"train_size": 2000, "allowed_optimizers": ["Adam"]})
    entered = _enter(lab, challenge["id"])
    assert entered.status_code == 202, entered.text
    assert entered.json()["status"] == "queued"
    assert challenge["tag"] in entered.json()["tags"]
    listed = lab.get("/experiments", params={"tag": challenge["tag"]}).json()
    assert [row["id"] for row in listed["data"]] == [entered.json()["id"]]


def test_the_allowance_is_counted_per_person(lab: TestClient) -> None:
    challenge = _create(lab, max_entries_per_person=2)
    first = _enter(lab, challenge["id"]).json()["id"]
    yours = lab.get(f"/challenges/{challenge['id']}/leaderboard", headers=TEACHER).json()["yours"]
    assert yours == {"entries_used": 1, "entries_left": 1, "experiment_ids": [first]}
    assert _enter(lab, challenge["id"]).status_code == 202
    third = _enter(lab, challenge["id"])
    assert third.status_code == 429
    assert "all 2 entries" in third.json()["detail"]
    _entry_as(lab, challenge["id"], "someone-else")  # another person's allowance is their own


def test_closed_by_hand_or_by_time_it_takes_no_more_entries(lab: TestClient) -> None:
    by_hand = _create(lab)
    closed = lab.post(f"/challenges/{by_hand['id']}/close", headers=TEACHER)
    assert closed.status_code == 200
    assert closed.json()["open"] is False
    refused = _enter(lab, by_hand["id"])
    assert refused.status_code == 409
    assert "takes no more entries" in refused.json()["detail"]

    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    by_time = _create(lab, closes_at=soon)
    assert by_time["open"] is True
    assert 3500 < by_time["seconds_left"] <= 3600
    with runtime_of(lab).db.scope() as session:  # an hour passes
        session.execute(
            text("UPDATE challenges SET closes_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(seconds=1), "id": by_time["id"]},
        )
    assert _enter(lab, by_time["id"]).status_code == 409
    assert lab.get(f"/challenges/{by_time['id']}").json()["open"] is False


def test_a_challenge_needs_the_teachers_token_and_a_future_close(lab: TestClient) -> None:
    assert lab.post("/challenges", json={"name": "x"}).status_code == 401
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    late = lab.post("/challenges", json={"name": "x", "closes_at": past}, headers=TEACHER)
    assert late.status_code == 422
    assert "in the past" in late.text
    assert (
        lab.post(
            "/challenges",
            json={"name": "x", "rules": {"allowed_layers": ["Lambda"]}},
            headers=TEACHER,
        ).status_code
        == 422
    )
    assert lab.get("/challenges/nope").status_code == 404


def test_leaderboard_best_entry_per_person_ties_to_the_earlier_and_the_shake_up(
    lab: TestClient, tmp_path: Path
) -> None:
    challenge = _create(lab)
    cid = challenge["id"]
    scores = {
        # person: [(public, private) per entry, in the order entered]
        "ada": [(0.90, 0.70), (0.95, 0.60)],  # best public 0.95; privately worse
        "bob": [(0.92, 0.97)],
        "cy": [(0.92, 0.50)],  # ties bob's public 0.92, entered later
    }
    entry_of: dict[tuple[str, int], str] = {}
    for person, entries in scores.items():
        for number, (public, private) in enumerate(entries):
            experiment_id = _entry_as(lab, cid, person)
            _succeed(lab, experiment_id, _hits(lab, cid, public=public, private=private), tmp_path)
            entry_of[person, number] = experiment_id
    queued = _entry_as(lab, cid, "dee")  # not trained yet: listed, unranked

    board = lab.get(f"/challenges/{cid}/leaderboard").json()
    assert board["ranked_by"] == "public"
    rows = [(r["rank"], r["person"], r["score"], r["entries_used"]) for r in board["rows"]]
    assert rows == [
        (1, "ada", 0.95, 2),
        (2, "bob", 0.92, 1),
        (3, "cy", 0.92, 1),
        (None, "dee", None, 1),
    ]
    assert all(row["private_score"] is None for row in board["rows"])  # a student's view
    assert board["rows"][0]["experiment_id"] == entry_of["ada", 1]
    teacher = lab.get(f"/challenges/{cid}/leaderboard", headers=TEACHER).json()
    assert [row["private_score"] for row in teacher["rows"][:3]] == [0.6, 0.97, 0.5]

    lab.post(f"/challenges/{cid}/close", headers=TEACHER)
    final = lab.get(f"/challenges/{cid}/leaderboard").json()
    assert final["ranked_by"] == "private"
    shaken = [(r["rank"], r["person"], r["score"], r["public_rank"]) for r in final["rows"]]
    assert shaken == [
        (1, "bob", 0.97, 2),
        (2, "ada", 0.6, 1),
        (3, "cy", 0.5, 3),
        (None, "dee", None, None),
    ]
    assert queued not in {row["experiment_id"] for row in final["rows"]}

    csv = lab.get(f"/challenges/{cid}/leaderboard", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("rank,person,score,public_score,private_score,public_rank")
    assert lines[1].startswith("1,bob,0.97,0.92,0.97,2,1,")


def _get_routes(openapi: dict[str, Any]) -> list[str]:
    return [path for path, operations in openapi["paths"].items() if "get" in operations]


def test_no_student_read_shows_anything_measured_on_the_private_half_before_the_close(
    lab: TestClient, tmp_path: Path
) -> None:
    challenge = _create(lab)
    cid = challenge["id"]
    entry = _entry_as(lab, cid, "ada")
    private = 0.7318
    _succeed(lab, entry, _hits(lab, cid, public=0.9, private=private), tmp_path)
    assert (
        lab.put("/models/ada-best", json={"experiment_id": entry}, headers=TEACHER).status_code
        == 200
    )
    lab.get(f"/challenges/{cid}/leaderboard")  # scores the entry

    values = {
        "experiment_id": entry,
        "challenge_id": cid,
        "reference": "ada-best",
        "alias": "ada-best",
        "model": "ada-best",
        "kind": "svg",
        "metric": "val_accuracy",
    }
    openapi = lab.get("/openapi.json").json()
    read = 0
    for route in _get_routes(openapi):
        if route.startswith("/studies/{"):
            continue  # an entry is never a study's trial
        path = re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[1]), route)
        if "{" in path:
            continue
        if route.endswith("/events") or route == "/events":
            continue  # streams: their first events come from the same change log, tested below
        response = lab.get(path, params={"experiments": entry, "ids": entry})
        read += 1
        body = response.text
        assert str(SEALED_ACCURACY) not in body, f"GET {path} shows the full test accuracy"
        assert "0.4321" not in body, f"GET {path} shows the full test loss"
        assert str(private) not in body, f"GET {path} shows the private score"
        if route.startswith("/experiments/{experiment_id}/") and response.status_code == 403:
            assert "challenge still open" in response.json()["detail"]
    assert read > 20, "the OpenAPI document lists the service's read routes"
    assert lab.get(f"/experiments/{entry}/evaluation").status_code == 403
    # The change log the event streams replay never carried the number.
    with runtime_of(lab).db.scope() as session:
        payloads = session.execute(text("SELECT payload FROM changes")).scalars().all()
    assert not any(str(SEALED_ACCURACY) in payload for payload in payloads)
    # A teacher reads the evaluation; after the close, everyone does, and the scores return.
    assert lab.get(f"/experiments/{entry}/evaluation", headers=TEACHER).status_code == 200
    lab.post(f"/challenges/{cid}/close", headers=TEACHER)
    assert lab.get(f"/experiments/{entry}").json()["test_accuracy"] == SEALED_ACCURACY
    assert lab.get(f"/experiments/{entry}/evaluation").status_code == 200
    assert lab.get(f"/challenges/{cid}/leaderboard").json()["rows"][0]["private_score"] == private


def test_the_halves_are_a_secret_even_split_of_the_test_set() -> None:
    public, private = halves(1234)
    assert len(public) == len(private) == TEST_IMAGES // 2
    assert set(public.tolist()).isdisjoint(private.tolist())
    assert sorted([*public.tolist(), *private.tolist()]) == list(range(TEST_IMAGES))
    assert halves(1234)[0].tolist() == public.tolist()
    assert halves(4321)[0].tolist() != public.tolist()
    challenge_json = str(halves)  # the seed itself is never part of an answer: see ChallengePublic
    assert "seed" not in challenge_json


def test_the_leaderboard_csv_keeps_a_name_that_would_start_a_formula_as_text(
    lab: TestClient,
) -> None:
    cid = _create(lab)["id"]
    _entry_as(lab, cid, '=HYPERLINK("http://x.example/","click")')
    csv = lab.get(f"/challenges/{cid}/leaderboard", params={"format": "csv"})
    assert csv.status_code == 200, csv.text
    assert '\'=HYPERLINK(""http://x.example/"",""click"")' in csv.text.splitlines()[1]


def test_a_challenge_closed_by_time_is_unsealed_by_the_workers_sweep(
    lab: TestClient, tmp_path: Path
) -> None:
    challenge = _create(lab, closes_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    entry = _entry_as(lab, challenge["id"], "ada")
    _succeed(lab, entry, _hits(lab, challenge["id"], public=0.5, private=0.5), tmp_path)
    assert lab.get(f"/experiments/{entry}").json()["test_accuracy"] is None
    runtime = runtime_of(lab)
    with runtime.db.scope() as session:  # the hour passes; nobody opens the challenge
        session.execute(
            text("UPDATE challenges SET closes_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(seconds=1), "id": challenge["id"]},
        )
    challenges.unseal_closed(runtime.db, runtime.queue)  # what each sweep runs
    assert lab.get(f"/experiments/{entry}").json()["test_accuracy"] == SEALED_ACCURACY
