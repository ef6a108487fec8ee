"""The spec hash: equal for the same training however it was written, different otherwise."""

from __future__ import annotations

import hashlib
import json

from service.schemas.experiments import ExperimentCreate
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import normalised_spec, spec_hash
from service.usecases.submission import request_digest
from tests.factories import tiny_spec


def spec(**changes: object) -> ExperimentSpec:
    body = tiny_spec()
    body.pop("name")
    body.update(changes)
    return ExperimentSpec.model_validate(body)


def test_defaults_written_or_left_out_hash_alike() -> None:
    short = spec(compile={"optimizer": "adam"})
    spelled_out = spec(
        compile={
            "metrics": ["accuracy"],
            "loss": "sparse_categorical_crossentropy",
            "optimizer": {"type": "Adam", "learning_rate": 0.001, "beta_2": 0.999},
        }
    )
    assert spec_hash(short) == spec_hash(spelled_out)
    assert normalised_spec(short) == normalised_spec(spelled_out)


def test_what_changes_training_changes_the_hash() -> None:
    base = spec_hash(spec())
    assert spec_hash(spec(fit=tiny_spec(seed=43)["fit"])) != base
    assert spec_hash(spec(compile={"optimizer": {"type": "Adam", "learning_rate": 0.01}})) != base


def test_the_hash_is_sha256_hex_of_the_spec_alone() -> None:
    digest = spec_hash(spec())
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert set(normalised_spec(spec())) == {"layers", "compile", "fit"}


def test_a_draft_sets_the_spec_apart_from_what_describes_the_run() -> None:
    body = ExperimentCreate.model_validate({**tiny_spec(), "description": "d", "tags": ["a", "b"]})
    draft = body.draft()
    assert (draft.name, draft.description, draft.tags) == (body.name, "d", ("a", "b"))
    assert type(draft.spec) is ExperimentSpec
    assert normalised_spec(draft.spec) == body.model_dump(
        mode="json", exclude={"name", "description", "tags"}
    )
    revalidated = ExperimentSpec.model_validate(draft.spec.model_dump())
    assert spec_hash(draft.spec) == spec_hash(revalidated)


def test_the_idempotency_digest_is_the_whole_bodys_as_before_drafts() -> None:
    """Keys stored before submissions took drafts still match the same body."""
    body = ExperimentCreate.model_validate({**tiny_spec(), "tags": ["class-3"]})
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert request_digest(body.draft()) == hashlib.sha256(canonical.encode()).hexdigest()
