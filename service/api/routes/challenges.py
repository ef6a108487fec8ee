"""Challenges: a teacher sets one up, students enter specs, everyone watches the leaderboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from service import spreadsheets
from service.api.deps import (
    ClientIdDep,
    DatabaseDep,
    QueueDep,
    Reader,
    ReaderDep,
    SettingsDep,
    Teacher,
    TeacherDep,
    TokenFirstRoute,
    Writer,
    WriterDep,
)
from service.db import challenges as store
from service.schemas.challenges import (
    ChallengeCreate,
    ChallengePublic,
    ChallengesPublic,
    LeaderboardPublic,
    StandingPublic,
    YourEntriesPublic,
)
from service.schemas.errors import error_responses
from service.schemas.experiments import (
    ExperimentCreate,
    ExperimentPublic,
    ExperimentValidated,
    validated,
)
from service.usecases import challenges
from service.usecases.submission import validate_experiment

router = APIRouter(route_class=TokenFirstRoute, prefix="/challenges", tags=["challenges"])
ChallengeId = Annotated[str, Path(min_length=1, max_length=64, description="the challenge's id")]


def _now() -> datetime:
    return datetime.now(UTC)


def _public(challenge: challenges.Challenge, now: datetime) -> ChallengePublic:
    return ChallengePublic.of(challenge, now=now, tag=challenges.challenge_tag(challenge.id))


@router.post(
    "",
    response_model=ChallengePublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer, Teacher],
    responses=error_responses(401, 403, 422),
)
def create_challenge(body: ChallengeCreate, db: DatabaseDep) -> ChallengePublic:
    """Set up a challenge: its rules, each person's allowance, and when it closes."""
    challenge = challenges.create_challenge(
        db,
        name=body.name,
        description=body.description,
        rules=body.rules.to_domain(),
        max_entries_per_person=body.max_entries_per_person,
        closes_at=body.closes_at,
    )
    return _public(challenge, _now())


@router.get("", response_model=ChallengesPublic, dependencies=[Reader])
def list_challenges(db: DatabaseDep) -> ChallengesPublic:
    now = _now()
    with db.scope() as session:
        found = store.list_challenges(session)
    return ChallengesPublic(data=[_public(challenge, now) for challenge in found])


@router.get(
    "/{challenge_id}",
    response_model=ChallengePublic,
    dependencies=[Reader],
    responses=error_responses(401, 404, 422),
)
def read_challenge(challenge_id: ChallengeId, db: DatabaseDep) -> ChallengePublic:
    with db.scope() as session:
        challenge = store.get_challenge(session, challenge_id)
    return _public(challenge, _now())


@router.post(
    "/{challenge_id}/entries",
    response_model=ExperimentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Writer],
    responses=error_responses(401, 404, 409, 413, 422, 429),
)
def enter_challenge(
    challenge_id: ChallengeId,
    spec_in: ExperimentCreate,
    settings: SettingsDep,
    db: DatabaseDep,
    queue: QueueDep,
    caller: WriterDep,
) -> ExperimentPublic:
    """Enter a spec, exactly as POST /experiments takes it: checked against the rules, then
    trained as an ordinary experiment tagged with the challenge (and owned by its entrant)."""
    experiment = challenges.enter(
        challenge_id=challenge_id,
        draft=spec_in.draft(),
        entrant=caller.client_id,
        entrant_name=caller.name or caller.client_id,
        settings=settings,
        db=db,
        queue=queue,
        now=_now(),
    )
    return ExperimentPublic.of(experiment)


@router.post(
    "/{challenge_id}/entries/validate",
    response_model=ExperimentValidated,
    dependencies=[Writer],
    responses=error_responses(401, 404, 409, 413, 422, 429),
)
def validate_entry(
    challenge_id: ChallengeId,
    spec_in: ExperimentCreate,
    settings: SettingsDep,
    db: DatabaseDep,
    client: ClientIdDep,
) -> ExperimentValidated:
    """Check an entry as POST .../entries would (open, allowance, every rule, then the Keras
    dry run) without training it: the page checks the rules as a learner types."""
    spec = spec_in.draft().spec
    challenges.check_entry(db, challenge_id=challenge_id, spec=spec, entrant=client, now=_now())
    return validated(spec, validate_experiment(spec, settings))


@router.post(
    "/{challenge_id}/close",
    response_model=ChallengePublic,
    dependencies=[Writer, Teacher],
    responses=error_responses(401, 403, 404, 422),
)
def close_challenge(challenge_id: ChallengeId, db: DatabaseDep) -> ChallengePublic:
    """No more entries; the leaderboard ranks by the private half from now on."""
    return _public(challenges.close_challenge(db, challenge_id, now=_now()), _now())


_CSV_COLUMNS = (
    "rank",
    "person",
    "score",
    "public_score",
    "private_score",
    "public_rank",
    "entries_used",
    "experiment_id",
    "params",
    "epochs",
    "entered_at",
)


@router.get(
    "/{challenge_id}/leaderboard",
    response_model=LeaderboardPublic,
    dependencies=[Reader],
    responses={
        200: {"content": {"text/csv": {}}, "description": "as CSV with ?format=csv"},
        **error_responses(401, 404, 422),
    },
)
def read_leaderboard(
    challenge_id: ChallengeId,
    db: DatabaseDep,
    teacher: TeacherDep,
    caller: ReaderDep,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: one line per person, for grading")
    ] = "json",
) -> LeaderboardPublic | Response:
    """One row per person, their best entry: by the public half while open; after the close
    by the private half, with the public rank beside it."""
    board = challenges.leaderboard(db, challenge_id, now=_now(), teacher=teacher)
    rows = [_standing(row, board) for row in board.standings]
    mine = board.entries_of(caller.client_id)
    allowance = board.challenge.max_entries_per_person
    body = LeaderboardPublic(
        challenge=_public(board.challenge, _now()),
        ranked_by="private" if board.closed else "public",
        rows=rows,
        yours=YourEntriesPublic(
            entries_used=len(mine),
            entries_left=max(0, allowance - len(mine)) if allowance is not None else None,
            experiment_ids=[entry.experiment_id for entry in mine],
        ),
    )
    if format == "csv":
        return Response(_csv(rows), media_type="text/csv; charset=utf-8")
    return body


def _standing(row: challenges.Standing, board: challenges.Leaderboard) -> StandingPublic:
    best = row.best
    private = best.private_score if best is not None and board.shows_private else None
    public = best.public_score if best is not None else None
    return StandingPublic(
        rank=row.rank,
        person=row.entrant_name,
        score=private if board.closed else public,
        public_score=public,
        private_score=private,
        public_rank=row.public_rank,
        entries_used=row.entries_used,
        experiment_id=best.experiment_id if best else None,
        params=best.params if best else None,
        epochs=best.epochs if best else None,
        entered_at=best.created_at if best else None,
    )


def _csv(rows: list[StandingPublic]) -> str:
    values = (row.model_dump(mode="json") for row in rows)
    return spreadsheets.as_csv(_CSV_COLUMNS, ([v[name] for name in _CSV_COLUMNS] for v in values))
