"""The one exception root of the service, and the HTTP status each error maps to.

ServiceError
├── NotFound (404)            ExperimentNotFound, ModelNotFound, StudyNotFound
├── Conflict (409)            NotCancellable, NotDeletable, ModelNotReady
├── InvalidInput (422)        SpecRejected, BadImage
├── TooLarge (413)            BodyTooLarge
├── TooMany (429)             QueueFull
├── Unauthorized (401)        MissingToken, WrongToken
└── Unavailable (503)         DataUnavailable
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Something a client asked for could not be done; the message says what to change."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class StudyNotFound(NotFound):
    code = "study_not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class NotCancellable(Conflict):
    code = "not_cancellable"


class NotDeletable(Conflict):
    code = "not_deletable"


class ModelNotReady(Conflict):
    code = "model_not_ready"


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class SpecRejected(InvalidInput):
    code = "invalid_spec"


class BadImage(InvalidInput):
    code = "invalid_image"


class TooLarge(ServiceError):
    status_code = 413
    code = "too_large"


class TooMany(ServiceError):
    status_code = 429
    code = "too_many"


class QueueFull(TooMany):
    code = "queue_full"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Unavailable(ServiceError):
    status_code = 503
    code = "unavailable"


class DataUnavailable(Unavailable):
    code = "data_unavailable"


class TrainingFailed(Exception):
    """Raised inside a training process; its message is what the user reads on the experiment."""
