"""A challenge's leaderboard: one row per person, their best entry.

While open, each person's best entry by public score (ties to the earlier entry) ranked by that
score. After the close, the same entries ranked by their private score, with the public rank
beside it: the shake-up a learner should see once. The entry is chosen on the public half
only, so picking it never looks at the private half.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain import ChallengeEntry


@dataclass(frozen=True)
class Standing:
    rank: int | None
    """None for a person none of whose entries is scored yet."""
    entrant: str
    entrant_name: str
    entries_used: int
    best: ChallengeEntry | None
    public_rank: int | None
    """After the close: where this entry stood on the public leaderboard."""


def _public_order(entry: ChallengeEntry) -> tuple[float, object, str]:
    assert entry.public_score is not None
    return (-entry.public_score, entry.created_at, entry.experiment_id)


def _private_order(entry: ChallengeEntry) -> tuple[float, object, str]:
    assert entry.private_score is not None
    return (-entry.private_score, entry.created_at, entry.experiment_id)


def standings(entries: list[ChallengeEntry], *, closed: bool) -> list[Standing]:
    by_person: dict[str, list[ChallengeEntry]] = {}
    for entry in entries:
        by_person.setdefault(entry.entrant, []).append(entry)
    best: dict[str, ChallengeEntry] = {}
    for entrant, own in by_person.items():
        scored = [entry for entry in own if entry.public_score is not None]
        if scored:
            best[entrant] = min(scored, key=_public_order)
    public = sorted(best.values(), key=_public_order)
    public_rank = {entry.entrant: rank for rank, entry in enumerate(public, start=1)}
    ranked = (
        sorted((entry for entry in public if entry.private_score is not None), key=_private_order)
        if closed
        else public
    )
    rows = [
        Standing(
            rank=rank,
            entrant=entry.entrant,
            entrant_name=entry.entrant_name,
            entries_used=len(by_person[entry.entrant]),
            best=entry,
            public_rank=public_rank[entry.entrant] if closed else None,
        )
        for rank, entry in enumerate(ranked, start=1)
    ]
    listed = {row.entrant for row in rows}
    rows.extend(
        Standing(
            rank=None,
            entrant=entrant,
            entrant_name=own[0].entrant_name,
            entries_used=len(own),
            best=None,
            public_rank=None,
        )
        for entrant, own in by_person.items()
        if entrant not in listed
    )
    return rows
