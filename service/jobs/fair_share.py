"""Fair share: which queued job a free slot takes, and so the order the queue will run in.

Not the oldest job, but the oldest job of the client (a person; an anonymous address; the
API_TOKEN holder) who has used the least training time recently. Past use decays with a
half-life (FAIR_SHARE_HALF_LIFE), as Slurm's fair-share factor does: a second of training an
hour ago counts half a second now. Ties (everyone at zero, say) go to the earlier submission,
so a quiet queue is first-come-first-served as before. A study's trials are its owner's.

Pure functions of plain values: the database gathers the values (`service.db.claims`, which
sums `decayed_seconds` in SQL), the claim and the queue's estimates both order by `fair_order`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.config import Settings

DEFAULT_JOB_SECONDS = 1.0
"""What a job adds to its client's usage in the projected order when its length is unknown:
enough that a client's next job waits its turn behind everyone at the same usage."""


@dataclass(frozen=True)
class Policy:
    """How the queue is served."""

    half_life: float = 3600.0
    """FAIR_SHARE_HALF_LIFE, seconds."""
    max_running: int | None = None
    """MAX_RUNNING_PER_PERSON."""
    fair: bool = True
    """FAIR_SHARE; False: first come, first served (the oldest job, whoever's)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            half_life=settings.fair_share_half_life,
            max_running=settings.max_running_per_person,
            fair=settings.fair_share,
        )


@dataclass(frozen=True)
class Waiting:
    """A queued job as fair share sees it."""

    experiment_id: str
    client_id: str
    created_at: datetime
    seconds: float = DEFAULT_JOB_SECONDS
    """Its expected training time, added to its client's usage once it is placed."""


@dataclass(frozen=True)
class Span:
    """A stretch of training one client's job ran (an attempt); `ended_at` None: still running."""

    client_id: str
    started_at: datetime
    ended_at: datetime | None


def decayed_seconds(span: Span, *, now: datetime, half_life: float) -> float:
    """The span's training seconds, each weighted 2^-(age / half_life): the integral of the
    decay over the span."""
    end = min(span.ended_at or now, now)
    start = min(span.started_at, end)
    newest = (now - end).total_seconds()
    oldest = (now - start).total_seconds()
    scale = half_life / math.log(2)
    return scale * (2 ** (-newest / half_life) - 2 ** (-oldest / half_life))


def decayed_usage(spans: Iterable[Span], *, now: datetime, half_life: float) -> dict[str, float]:
    """Each client's recent training time, decayed."""
    usage: dict[str, float] = {}
    for span in spans:
        seconds = decayed_seconds(span, now=now, half_life=half_life)
        usage[span.client_id] = usage.get(span.client_id, 0.0) + seconds
    return usage


def fair_order(
    waiting: Sequence[Waiting],
    usage: Mapping[str, float],
    running: Mapping[str, int] | None = None,
    *,
    max_running: int | None = None,
) -> list[Waiting]:
    """The order `waiting` will start in: each next job is the oldest of the client with the
    least usage (then the fewest running, then the earliest submission); placing a job adds
    its expected seconds to its client's usage. A client at `max_running` waits until everyone
    else's jobs are placed."""
    queues: dict[str, list[Waiting]] = {}
    for job in sorted(waiting, key=lambda job: (job.created_at, job.experiment_id)):
        queues.setdefault(job.client_id, []).append(job)
    used = dict(usage)
    busy = dict(running or {})
    order: list[Waiting] = []
    while queues:

        def rank(client: str) -> tuple[bool, float, int, datetime, str]:
            head = queues[client][0]
            at_limit = max_running is not None and busy.get(client, 0) >= max_running
            return (
                at_limit,
                used.get(client, 0.0),
                busy.get(client, 0),
                head.created_at,
                head.experiment_id,
            )

        client = min(queues, key=rank)
        job = queues[client].pop(0)
        if not queues[client]:
            del queues[client]
        order.append(job)
        used[client] = used.get(client, 0.0) + max(job.seconds, DEFAULT_JOB_SECONDS)
    return order


def may_start(job: Waiting, running: Mapping[str, int], *, max_running: int | None) -> bool:
    """Whether the job's client has a running slot left under MAX_RUNNING_PER_PERSON."""
    return max_running is None or running.get(job.client_id, 0) < max_running
