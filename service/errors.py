"""The one exception root of the service, the HTTP status each error maps to, and the error body.

ServiceError (500)
├── NotFound (404)
│   ├── ExperimentNotFound (404)
│   ├── ModelNotFound (404)
│   ├── StudyNotFound (404)
│   ├── PersonNotFound (404)
│   └── ChallengeNotFound (404)
├── Conflict (409)
│   ├── NotCancellable (409)
│   ├── NotDeletable (409)
│   ├── ModelNotReady (409)
│   ├── NoEvaluation (409)
│   ├── IdempotencyMismatch (409)
│   ├── NameTaken (409)
│   ├── ChallengeClosed (409)
│   └── RestoreTargetNotEmpty (409)
├── InvalidInput (422)
│   ├── SpecRejected (422)
│   ├── BadImage (422)
│   ├── CodeUnreadable (422)
│   ├── NothingToTrain (422)
│   ├── InvalidCursor (422)
│   └── SnapshotError (422)
├── TooLarge (413)
├── TooMany (429)
│   ├── QueueFull (429)
│   ├── TrainingTimeUsed (429)
│   ├── EntriesUsedUp (429)
│   └── DecodingBudgetSpent (429)
├── Unauthorized (401)
├── Forbidden (403)
│   └── SealedUntilClose (403)
├── InsufficientStorage (507)
├── Unavailable (503)
│   ├── DataUnavailable (503)
│   ├── UnsafeKey (503)
│   ├── StoreUnavailable (503)
│   ├── UnknownRevision (503)
│   ├── MigrationRefused (503)
│   └── DatabaseMissing (503)
└── TrainingFailed (500)

`tests/test_errors.py` keeps this tree and the classes in step.
"""

from __future__ import annotations

from typing import Any, ClassVar


def error_body(code: str, detail: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of every error answer (`ErrorPublic`); `details` only when there are some."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if details is not None:
        body["details"] = details
    return body


class ServiceError(Exception):
    """Something asked of the service could not be done; the message says what to change.

    A subclass names its machine-readable `code` and, where it differs from its parent's, its
    HTTP `status`: `class QueueFull(TooMany, code="queue_full")`.
    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, *, code: str, status: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = code
        if status is not None:
            cls.status_code = status

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ServiceError, code="not_found", status=404):
    """No such thing: the id or name is unknown, or it was deleted."""


class ExperimentNotFound(NotFound, code="experiment_not_found"):
    """No experiment has this id."""


class ModelNotFound(NotFound, code="model_not_found"):
    """No model has this alias."""


class StudyNotFound(NotFound, code="study_not_found"):
    """No study has that id."""


class ChallengeNotFound(NotFound, code="challenge_not_found"):
    """No challenge has that id."""


class Conflict(ServiceError, code="conflict", status=409):
    """The request is well formed, but the thing's current state does not allow it."""


class NotCancellable(Conflict, code="not_cancellable"):
    """The experiment has already finished."""


class NotDeletable(Conflict, code="not_deletable"):
    """The experiment is still queued or running; cancel it first."""


class ModelNotReady(Conflict, code="model_not_ready"):
    """The experiment has no trained model to serve (yet, or any more)."""


class NoEvaluation(Conflict, code="evaluation_unavailable"):
    """The experiment has no model to evaluate, or its evaluation failed."""


class IdempotencyMismatch(Conflict, code="idempotency_key_reused"):
    """An Idempotency-Key came back with a different request than the one it was first sent with."""


class ChallengeClosed(Conflict, code="challenge_closed"):
    """The challenge is closed: it takes no more entries."""


class RestoreTargetNotEmpty(Conflict, code="restore_target_not_empty"):
    """The database or the model store to restore into already holds work."""


class InvalidInput(ServiceError, code="invalid_input", status=422):
    """A value the client sent is not acceptable; the message names it."""


class SpecRejected(InvalidInput, code="invalid_spec"):
    """The experiment spec is well typed but describes a net Keras would not build or train."""


class BadImage(InvalidInput, code="invalid_image"):
    """An image to recognise could not be decoded or does not look like a digit image."""


class CodeUnreadable(InvalidInput, code="code_refused"):
    """Keras code (a cell, a notebook) says something the spec cannot hold, or tries to run
    code; the message names the line and column and what would work."""


class NothingToTrain(InvalidInput, code="nothing_to_train"):
    """The code or notebook builds no Sequential model that it compiles."""


class InvalidCursor(InvalidInput, code="invalid_cursor"):
    """A list's `cursor` that is not a next_cursor this service wrote for that order."""


class SnapshotError(InvalidInput, code="invalid_snapshot"):
    """A backup folder is missing, damaged, or not a snapshot of this service."""


class TooLarge(ServiceError, code="too_large", status=413):
    """A request body or an image is over its size limit."""


class TooMany(ServiceError, code="too_many", status=429):
    """The client has too much in flight; try again once some of it has finished."""


class QueueFull(TooMany, code="queue_full"):
    """Too many of the client's experiments are queued."""


class TrainingTimeUsed(TooMany, code="training_time_used"):
    """The person trained their minutes for today; the message says when the day resets."""


class EntriesUsedUp(TooMany, code="challenge_entries_used_up"):
    """The person has made all the entries the challenge allows."""


class Unauthorized(ServiceError, code="unauthorized", status=401):
    """A write came without the API token, or with a wrong one."""


class Forbidden(ServiceError, code="forbidden", status=403):
    """The caller is known but may not do this: someone else's work, or a teacher's action."""


class SealedUntilClose(Forbidden, code="sealed_until_close"):
    """A challenge entry's full test-set results are shown to students once it closes."""


class DecodingBudgetSpent(TooMany, code="decoding_budget_spent"):
    """The client decoded its share of image pixels for now; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PersonNotFound(NotFound, code="person_not_found"):
    """No person with that id."""


class NameTaken(Conflict, code="name_taken"):
    """Another person of the class already has that name."""


class InsufficientStorage(ServiceError, code="insufficient_storage", status=507):
    """The disk is nearly full (MIN_FREE_DISK_BYTES): new trainings wait until space is freed."""


class Unavailable(ServiceError, code="unavailable", status=503):
    """Something the service depends on is missing or misconfigured; an operator must act."""


class DataUnavailable(Unavailable, code="data_unavailable"):
    """MNIST cannot be read: MNIST_PATH is wrong, or the download failed."""


class UnsafeKey(Unavailable, code="unsafe_store_key"):
    """A model-store key or URI would leave the store (MODELS_URL changed, or a forged key)."""


class StoreUnavailable(Unavailable, code="model_store_unavailable"):
    """The model store did not answer or failed (a network or disk error); try again later."""


class UnknownRevision(Unavailable, code="unknown_database_revision"):
    """The database was migrated by a newer version of the service; this one will not start."""


class DatabaseMissing(Unavailable, code="database_missing"):
    """The database an operator's command was pointed at is not there or holds no schema."""


class MigrationRefused(Unavailable, code="migration_refused"):
    """An upgrade would have left rows that refer to missing rows; it was rolled back."""


class TrainingFailed(ServiceError, code="training_failed"):
    """Raised inside a training process; its message is what the user reads on the experiment."""
