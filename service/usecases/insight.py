"""What insight routes ask for: an evaluation (made on request when missing), layer health,
diagnostics. The API never evaluates a model itself: a worker does, sent through the queue."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db import challenges, insight, repository
from service.db.session import Database
from service.domain import Status, utcnow
from service.errors import NoEvaluation, SealedUntilClose
from service.insight.diagnostics import Finding, diagnose
from service.insight.evaluation import Evaluation
from service.jobs.queue import JobQueue

EVALUATION_RETRY_SECONDS = 300.0
"""An evaluation asked for this long ago and still pending lost its delivery or its worker
(one takes seconds): the next request sends another worker."""


def evaluation_or_request(
    *, db: Database, queue: JobQueue, experiment_id: str, reveal_sealed: bool = False
) -> Evaluation | None:
    """The experiment's evaluation; None when it is being made (asked for now, or earlier).

    An entry of a challenge still open is sealed: its evaluation covers the private half of
    the test set, so only a teacher (`reveal_sealed`) reads it before the close."""
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
        if not reveal_sealed and challenges.is_sealed(session, experiment_id, now=utcnow()):
            raise SealedUntilClose(
                f"experiment {experiment_id} is an entry of a challenge still open: its test-set "
                "evaluation (which covers the private half) is shown once the challenge closes; "
                "its public score is on the challenge's leaderboard"
            )
        if experiment.status is not Status.SUCCEEDED:
            raise NoEvaluation(
                f"experiment {experiment_id} is {experiment.status.value}; only a succeeded "
                "experiment has a trained model to evaluate on the test set"
            )
        state = insight.evaluation_state(session, experiment_id)
        if state is not None and state.evaluation is not None:
            return state.evaluation
        if state is not None and state.status is insight.EvaluationStatus.FAILED:
            raise NoEvaluation(
                f"the evaluation of experiment {experiment_id} failed: {state.error}"
            )
        send = insight.request_evaluation(
            session, experiment_id=experiment_id, stale_after=EVALUATION_RETRY_SECONDS
        )
    if send:
        queue.enqueue_evaluation(experiment_id)
    return None


def diagnostics(session: Session, experiment_id: str) -> list[Finding]:
    """Findings from the epochs and layer health recorded so far (a running experiment too)."""
    status, history = repository.history(session, experiment_id)
    layers = insight.layer_history(session, experiment_id)
    return diagnose(history, layers, finished=status.is_finished)
