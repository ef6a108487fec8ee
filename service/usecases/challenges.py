"""Challenges: create and close them, enter a spec under their rules, score and rank entries."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from service.challenges import scoring
from service.challenges.leaderboard import Standing, standings

__all__ = ["Challenge", "Leaderboard", "Standing"]
from service.challenges.rules import broken_rules
from service.config import Settings
from service.db import challenges as store
from service.db.session import Database
from service.domain import (
    MAX_TAGS,
    Challenge,
    ChallengeEntry,
    Experiment,
    ExperimentDraft,
    Rules,
    utcnow,
)
from service.errors import ChallengeClosed, EntriesUsedUp, SpecRejected
from service.jobs.queue import JobQueue
from service.spec.experiment import ExperimentSpec
from service.usecases.submission import submit_experiment

log = logging.getLogger(__name__)


def challenge_tag(challenge_id: str) -> str:
    """The tag every entry carries, so the lists and compare views find a challenge's runs."""
    return f"challenge-{challenge_id[:12]}"


def create_challenge(
    db: Database,
    *,
    name: str,
    description: str | None,
    rules: Rules,
    max_entries_per_person: int | None,
    closes_at: datetime | None,
) -> Challenge:
    with db.scope() as session:
        challenge = store.create_challenge(
            session,
            name=name,
            description=description,
            rules=rules,
            max_entries_per_person=max_entries_per_person,
            closes_at=closes_at,
            split_seed=scoring.draw_seed(),
        )
    log.info("challenge %s %r created", challenge.id, challenge.name)
    return challenge


def close_challenge(db: Database, challenge_id: str, *, now: datetime) -> Challenge:
    with db.scope() as session:
        challenge = store.close_challenge(session, challenge_id, now=now)
        store.unseal_closed(session, now=now)
    log.info("challenge %s %r closed", challenge.id, challenge.name)
    return challenge


def _tagged(draft: ExperimentDraft, challenge_id: str) -> ExperimentDraft:
    tags = tuple(dict.fromkeys((*draft.tags, challenge_tag(challenge_id))))
    if len(tags) > MAX_TAGS:
        problem = f"give at most {MAX_TAGS} tags; got {len(tags)}"
        raise SpecRejected(
            "an entry carries its challenge's tag besides its own; give one tag fewer",
            details=[{"type": "tags", "loc": ["tags"], "msg": problem, "input": list(tags)}],
        )
    return replace(draft, tags=tags)


def check_entry(
    db: Database, *, challenge_id: str, spec: ExperimentSpec, entrant: str, now: datetime
) -> tuple[Challenge, int]:
    """What an entry is checked against before it trains: the challenge is open, the person
    has entries left, the spec keeps every rule. The challenge and the entries used so far."""
    with db.scope() as session:
        challenge = store.get_challenge(session, challenge_id)
        used = store.count_entries(session, challenge_id=challenge_id, entrant=entrant)
    if not challenge.is_open(now):
        closed = challenge.closed_at or challenge.closes_at
        assert closed is not None
        raise ChallengeClosed(
            f"challenge {challenge.name!r} closed at {closed:%Y-%m-%d %H:%M} UTC and takes no "
            "more entries; its final leaderboard is at "
            f"GET /challenges/{challenge_id}/leaderboard"
        )
    allowance = challenge.max_entries_per_person
    if allowance is not None and used >= allowance:
        raise EntriesUsedUp(
            f"you have made all {allowance} entries challenge {challenge.name!r} allows; your "
            "best one stands on the leaderboard"
        )
    problems = broken_rules(challenge.rules, spec)
    if problems:
        raise SpecRejected("; ".join(problem["msg"] for problem in problems), details=problems)
    return challenge, used


def enter(
    *,
    challenge_id: str,
    draft: ExperimentDraft,
    entrant: str,
    entrant_name: str,
    settings: Settings,
    db: Database,
    queue: JobQueue,
    now: datetime,
) -> Experiment:
    """Check the challenge is open, the person's allowance and every rule; then train the spec
    as an ordinary experiment, tagged with the challenge, and record it as an entry."""
    challenge, used = check_entry(
        db, challenge_id=challenge_id, spec=draft.spec, entrant=entrant, now=now
    )
    allowance = challenge.max_entries_per_person
    experiment = submit_experiment(
        draft=_tagged(draft, challenge_id),
        settings=settings,
        db=db,
        queue=queue,
        client_id=entrant,
    ).experiment
    with db.scope() as session:
        store.add_entry(
            session,
            challenge_id=challenge_id,
            experiment_id=experiment.id,
            entrant=entrant,
            entrant_name=entrant_name,
        )
    log.info(
        "challenge %s: entry %s by %s (%d of %s)",
        challenge_id,
        experiment.id,
        entrant_name,
        used + 1,
        allowance if allowance is not None else "unlimited",
    )
    return experiment


def unseal_closed(db: Database, queue: JobQueue) -> None:
    """Give the entries of challenges whose closes_at passed their full test scores back: run
    after every sweep, so that it happens within SWEEP_SECONDS of the close whoever looks."""
    with db.scope() as session:
        store.unseal_closed(session, now=utcnow())


def score_pending(db: Database, challenge_id: str) -> None:
    """Score the entries evaluated since the last look, on both halves, once each."""
    with db.scope() as session:
        pending = store.unscored(session, challenge_id)
        if not pending:
            return
        seed = store.split_seed(session, challenge_id)
        for experiment_id, correct in pending:
            scores = scoring.score(base64.b64decode(correct), seed)
            store.save_scores(
                session, experiment_id=experiment_id, public=scores.public, private=scores.private
            )


@dataclass(frozen=True)
class Leaderboard:
    challenge: Challenge
    closed: bool
    standings: list[Standing]
    shows_private: bool
    """Private scores are shown once the challenge closed, and to a teacher at any time."""
    entries: list[ChallengeEntry]
    """Every entry, oldest first."""

    def entries_of(self, entrant: str) -> list[ChallengeEntry]:
        return [entry for entry in self.entries if entry.entrant == entrant]


def leaderboard(db: Database, challenge_id: str, *, now: datetime, teacher: bool) -> Leaderboard:
    score_pending(db, challenge_id)
    with db.scope() as session:
        store.unseal_closed(session, now=now)  # a closes_at that passed since the last look
        challenge = store.get_challenge(session, challenge_id)
        entries = store.entries(session, challenge_id)
    closed = not challenge.is_open(now)
    return Leaderboard(
        challenge=challenge,
        closed=closed,
        standings=standings(entries, closed=closed),
        shows_private=closed or teacher,
        entries=entries,
    )
