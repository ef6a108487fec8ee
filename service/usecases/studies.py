"""Studies: create one (every trial validated before any is queued), advance it as its trials
end, cancel, delete, and report its progress and leaderboard."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import repository
from service.db import studies as store
from service.db.ownership import OwnerFilter
from service.db.session import Database
from service.domain import (
    EpochRecord,
    Experiment,
    PlannedTrial,
    Status,
    Study,
    StudyDefinition,
    StudyStatus,
    TrialHead,
)
from service.errors import NotCancellable, NotDeletable, SpecRejected
from service.jobs.queue import JobQueue
from service.maintenance import disk
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import normalised_spec, spec_hash
from service.storage import ModelStore
from service.studies import samplers
from service.studies.leaderboard import DEFAULT_THRESHOLD, StudyReport, leaderboard_row, ranked
from service.studies.objective import maximises
from service.studies.presets import preset
from service.studies.rebuild import trial_records
from service.studies.request import StudyRequest
from service.studies.space import Dimension, Params, SpaceError, apply, corners, describe, grid_size
from service.usecases.prediction import Predictions
from service.usecases.removal import remove_experiments
from service.usecases.submission import check_limits, check_queue_room, deliver

log = logging.getLogger(__name__)

ACTIVE = (Status.QUEUED, Status.RUNNING)
# A tpe study's trials are drawn later; these many corners of its space are checked up front.
MAX_CORNERS_CHECKED = 256
_SPACE = TypeAdapter(dict[str, Dimension])


# Creating ------------------------------------------------------------------------------------
def _trial_rejected(number: int, label: str, problems: list[dict[str, Any]]) -> SpecRejected:
    details = [
        {**problem, "loc": ["body", "trials", number, *problem["loc"][1:]]} for problem in problems
    ]
    message = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'][1:]) or 'body'}: {problem['msg']}"
        for problem in problems[:5]
    )
    return SpecRejected(f"trial {number} ({label}): {message}", details=details)


def validate_trial(
    spec: dict[str, Any], *, number: int, label: str, settings: Settings | None
) -> ExperimentSpec:
    """The trial's spec as POST /experiments would take it: the same checks, the trial named.

    Limits are checked when `settings` are given (they were, for every trial, at creation).
    """
    try:
        valid = ExperimentSpec.model_validate(spec)
    except ValidationError as error:
        problems = [
            {"loc": ["body", *item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise _trial_rejected(number, label, problems) from None
    if settings is not None:
        try:
            check_limits(valid, settings)
        except SpecRejected as error:
            raise _trial_rejected(number, label, error.details) from None
    return valid


@dataclass(frozen=True)
class _Resolved:
    name: str
    base: dict[str, Any]
    space: dict[str, Any]
    plan: list[tuple[Params, str]] | None
    n_trials: int


def _too_many(count: int, settings: Settings) -> SpecRejected:
    return SpecRejected(
        f"the study has {count} trials, over the limit of {settings.max_study_trials} "
        "(MAX_STUDY_TRIALS); vary fewer values or ask for fewer n_trials",
        details=[{"loc": ["body", "space"], "msg": "too many trials", "type": "limit"}],
    )


def _resolve(body: StudyRequest, settings: Settings) -> _Resolved:
    """The base spec (with the overrides), the space and, unless tpe, every trial's params."""
    if body.preset is not None:
        chosen = preset(body.preset)
        base = chosen.base
        space: dict[str, Any] = {chosen.path: [v.value for v in chosen.variants]}
        plan: list[tuple[Params, str]] | None = [
            ({chosen.path: v.value}, v.label) for v in chosen.variants
        ]
        name = body.name or body.preset
    else:
        assert body.base is not None
        base = {k: v for k, v in body.base.items() if k not in ("name", "description")}
        space = {
            path: _SPACE.dump_python({path: dim}, mode="json")[path]
            for path, dim in body.space.items()
        }
        try:
            count = grid_size(body.space) if body.sampler == "grid" else body.n_trials or 0
        except SpaceError as error:
            raise SpecRejected(str(error)) from None
        if count > settings.max_study_trials:
            raise _too_many(count, settings)
        drawn = samplers.plan(body.sampler, body.space, n_trials=count, seed=body.seed)
        plan = [(params, describe(params)) for params in drawn] if drawn is not None else None
        name = body.name or f"{body.sampler} over {', '.join(body.space)}"
    fit = dict(base.get("fit") or {})
    if body.epochs is not None:
        fit["epochs"] = body.epochs
    if body.train_size is not None:
        fit["train_size"] = body.train_size
    base = {**base, "fit": fit}
    n_trials = len(plan) if plan is not None else body.n_trials or 0
    if n_trials > settings.max_study_trials:
        raise _too_many(n_trials, settings)
    return _Resolved(name=name[:160], base=base, space=space, plan=plan, n_trials=n_trials)


def _checked_plan(
    resolved: _Resolved, body: StudyRequest, settings: Settings
) -> list[PlannedTrial] | None:
    """Validate every trial before any is queued; the planned ones with their summaries."""
    if resolved.plan is None:
        points = corners(body.space)[:MAX_CORNERS_CHECKED]
        for number, params in enumerate(points):
            _build(resolved.base, params, number=number, label=describe(params), settings=settings)
        return None
    valid = [
        (
            params,
            label,
            _build(resolved.base, params, number=number, label=label, settings=settings),
        )
        for number, (params, label) in enumerate(resolved.plan)
    ]
    from service.ml.build import dry_run  # TensorFlow loads on first use, not at import

    return [
        PlannedTrial(params=params, label=label, summary=dry_run(spec))
        for params, label, spec in valid
    ]


def _build(
    base: dict[str, Any], params: Params, *, number: int, label: str, settings: Settings | None
) -> ExperimentSpec:
    try:
        spec = apply(base, params)
    except SpaceError as error:
        raise SpecRejected(f"trial {number} ({label}): {error}") from None
    return validate_trial(spec, number=number, label=label, settings=settings)


def create_study(
    *, body: StudyRequest, settings: Settings, db: Database, queue: JobQueue, client_id: str
) -> Study:
    disk.ensure_room(settings)
    resolved = _resolve(body, settings)
    plan = _checked_plan(resolved, body, settings)
    definition = StudyDefinition(
        base=resolved.base,
        space=resolved.space,
        sampler=body.sampler,
        objective=body.objective,
        n_trials=resolved.n_trials,
        max_parallel=body.max_parallel,
        seed=body.seed,
        max_attempts=settings.max_attempts,
        preset=body.preset,
        pruner=body.pruner.model_dump(mode="json") if body.pruner is not None else None,
    )
    with db.scope() as session:
        check_queue_room(
            session, settings, client_id=client_id, adding=min(body.max_parallel, resolved.n_trials)
        )
        study = store.create_study(
            session, name=resolved.name, client_id=client_id, definition=definition, plan=plan
        )
    advance(db, queue, study.id)
    return study


# Advancing ------------------------------------------------------------------------------------
def _next_trial(
    session: Session, study: Study, trials: list[Experiment], number: int
) -> tuple[Params, str, dict[str, Any] | None]:
    if study.plan is not None:
        planned = study.plan[number]
        return planned.params, planned.label, planned.summary
    definition = study.definition
    objective = definition.objective
    space = _SPACE.validate_python(definition.space)
    records = trial_records(
        trials, repository.histories(session, [t.id for t in trials]), objective
    )
    params = samplers.ask_tpe(
        space,
        records,
        maximise=maximises(objective),
        seed=definition.seed,
        n_trials=definition.n_trials,
    )
    # Summaries come from building the net with Keras; that is not for a worker's main process.
    return params, describe(params), None


def advance(db: Database, queue: JobQueue, study_id: str) -> list[str]:
    """Create the study's next trials, up to max_parallel active, and deliver them.

    Idempotent, and safe with several workers: it runs under the study's row lock, counts what
    exists, and the (study, trial number) index refuses a duplicate in any case.
    """
    created: list[Experiment] = []
    with db.scope() as session:
        study = store.lock_running(session, study_id)
        if study is None:
            return []
        definition = study.definition
        trials = store.trials(session, study_id)
        active = sum(trial.status in ACTIVE for trial in trials)
        while len(trials) < definition.n_trials and active < definition.max_parallel:
            number = len(trials)
            params, label, summary = _next_trial(session, study, trials, number)
            spec = _build(definition.base, params, number=number, label=label, settings=None)
            trial = store.create_trial(
                session,
                study=study,
                number=number,
                name=f"{study.name} #{number}: {label}"[:200],
                params=params,
                spec=normalised_spec(spec),
                spec_hash=spec_hash(spec),
                summary=summary,
                max_attempts=definition.max_attempts,
            )
            trials.append(trial)
            created.append(trial)
            active += 1
        if len(trials) >= definition.n_trials and active == 0:
            store.set_status(session, study_id, StudyStatus.FINISHED)
    # After the commit, as for a lone experiment; a lost delivery is re-sent by the sweep.
    for trial in created:
        deliver(db=db, queue=queue, experiment_id=trial.id)
    return [trial.id for trial in created]


def advance_after_trial(db: Database, queue: JobQueue, experiment_id: str) -> None:
    """A worker's call once a job ended: if it was a study's trial, start the next ones."""
    with db.scope() as session:
        study_id = store.study_of(session, experiment_id)
    if study_id is not None:
        advance(db, queue, study_id)


def advance_studies(db: Database, queue: JobQueue) -> None:
    """The sweep's pass: every running study, in case the worker that should have advanced it
    died first (or a trial ended without a worker, e.g. cancelled while queued)."""
    with db.scope() as session:
        running = store.running_study_ids(session)
    for study_id in running:
        try:
            advance(db, queue, study_id)
        except Exception:  # one broken study must not stop the others advancing
            log.exception("could not advance study %s", study_id)


# Cancelling and deleting ------------------------------------------------------------------
def cancel_study(db: Database, study_id: str) -> Study:
    """No new trials; queued ones never start, running ones stop within an epoch."""
    with db.scope() as session:
        study = store.get_study(session, study_id)
        if study.status is not StudyStatus.RUNNING:
            raise NotCancellable(
                f"study {study_id} already {study.status.value}; only a running study can be "
                "cancelled"
            )
        store.set_status(session, study_id, StudyStatus.CANCELLED)
        for trial in store.trials(session, study_id):
            if trial.status in ACTIVE:
                repository.request_cancel(session, trial.id)
        return store.get_study(session, study_id)


def delete_study(
    *, study_id: str, db: Database, predictions: Predictions, model_store: ModelStore
) -> None:
    """Delete a study whose trials have all ended, with every trial and its model files."""
    with db.scope() as session:
        study = store.get_study(session, study_id)
        trials = store.trials(session, study_id)
        if any(trial.status in ACTIVE for trial in trials) or study.status is StudyStatus.RUNNING:
            raise NotDeletable(
                f"study {study_id} still has trials to run or running; cancel it first "
                f"(POST /studies/{study_id}/cancel), then delete it once they have stopped"
            )
    remove_experiments(
        experiment_ids=[trial.id for trial in trials],
        db=db,
        predictions=predictions,
        store=model_store,
    )
    with db.scope() as session:
        store.delete_study(session, study_id)


# Reporting ----------------------------------------------------------------------------------
def progress(trials: Sequence[Experiment | TrialHead]) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for trial in trials:
        counts[trial.status.value] += 1
    return counts


def report(session: Session, study_id: str, *, threshold: float = DEFAULT_THRESHOLD) -> StudyReport:
    study = store.get_study(session, study_id)
    trials = store.trial_heads(session, study_id)
    histories = repository.histories(session, [trial.id for trial in trials])
    objective = study.definition.objective
    rows = [
        leaderboard_row(
            trial,
            histories[trial.id],
            varied=trial.trial_params or {},
            label=trial_label(study, number, trial),
            objective=objective,
            threshold=threshold,
        )
        for number, trial in enumerate(trials)
    ]
    return StudyReport(study=study, progress=progress(trials), leaderboard=ranked(rows, objective))


def list_studies(
    session: Session, *, limit: int, offset: int, owner: OwnerFilter | None = None
) -> tuple[list[StudyReport], int]:
    """Studies newest first (of `owner` when given), each with its progress (no leaderboard)."""
    found, count = store.list_studies(session, limit=limit, offset=offset, owner=owner)
    counts = store.progress(session, [study.id for study in found])
    return [
        StudyReport(study=study, progress=counts[study.id], leaderboard=[]) for study in found
    ], count


def curves(session: Session, study_id: str) -> tuple[Study, list[tuple[str, list[EpochRecord]]]]:
    """Each trial's label (what was varied) and history, in trial order."""
    study = store.get_study(session, study_id)
    trials = store.trial_heads(session, study_id)
    histories = repository.histories(session, [trial.id for trial in trials])
    return study, [
        (trial_label(study, number, trial), histories[trial.id])
        for number, trial in enumerate(trials)
    ]


def trial_label(study: Study, number: int, trial: Experiment | TrialHead) -> str:
    """A planned trial's label (a preset's `Adam`), else what was varied, in a few words."""
    if study.plan is not None and number < len(study.plan):
        return study.plan[number].label
    return describe(trial.trial_params or {}) or trial.name
