"""When a queued experiment should start and how long a running one has left, computed on read.

Running: the epochs still to go times the experiment's own mean seconds per epoch so far (early
stopping may end it sooner). Queued: the queue is served oldest first by WORKER_SLOTS slots; each
slot is free when its running experiment's estimate (plus the evaluation and save that follow
its last epoch) runs out, and each queued experiment ahead takes a whole job's time: its epochs
times the median seconds per epoch of the most recently recorded epochs (any experiment's: a
net not yet started has no pace of its own), plus the median time recent jobs took beyond their
epochs (building the model, evaluating it on the test set, saving it). Epochs alone made a
queue of two-epoch jobs wait 1.65x the estimate.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain import EpochRecord, Experiment, JobTiming, Status


@dataclass(frozen=True)
class Overhead:
    """What a job takes beyond its epochs, from recently finished jobs (0 before any)."""

    per_job: float = 0.0
    """Building, evaluating and saving: a whole job's time less its epochs'."""
    after_epochs: float = 0.0
    """The part after the last epoch: evaluating and saving."""


def job_overhead(timings: Sequence[JobTiming]) -> Overhead:
    """The medians over `timings`: one slow start (a cold TensorFlow) does not sway it."""
    if not timings:
        return Overhead()
    return Overhead(
        per_job=statistics.median(max(t.seconds - t.epoch_seconds, 0.0) for t in timings),
        after_epochs=statistics.median(t.after_last_epoch for t in timings),
    )


@dataclass(frozen=True)
class Estimate:
    queue_position: int | None = None
    """1 for the next experiment to start; None unless queued."""
    estimated_start: datetime | None = None
    """When a slot should take it; None unless queued, or with no epoch timed yet."""
    seconds_left: float | None = None
    """Running: until its last epoch ends; None before its first epoch has been timed."""


# What Keras's fit() runs when it is not told.
DEFAULT_EPOCHS = 10


def planned_epochs(experiment: Experiment) -> int:
    return epochs_asked(experiment.spec.get("fit", {}).get("epochs"))


def epochs_asked(value: int | None) -> int:
    """The epochs a spec's fit asks for: `value`, or fit()'s default when it does not say."""
    return int(DEFAULT_EPOCHS if value is None else value)


def seconds_per_epoch(epochs: Sequence[EpochRecord]) -> float | None:
    return mean_seconds([record.seconds for record in epochs])


def mean_seconds(seconds: Sequence[float]) -> float | None:
    """The mean of epochs' durations; None for none. (A sequence, not a generator: fmean then
    takes its length instead of counting as it sums.)"""
    return statistics.fmean(seconds) if seconds else None


def estimate(
    active: Sequence[Experiment],
    epochs: Mapping[str, Sequence[EpochRecord]],
    *,
    typical_epoch_seconds: float | None,
    slots: int,
    now: datetime,
    overhead: Overhead = Overhead(),
) -> dict[str, Estimate]:
    """An estimate for each of `active` (queued and running, oldest first)."""
    answers: dict[str, Estimate] = {}
    free_in: list[float | None] = []
    for experiment in active:
        if experiment.status is not Status.RUNNING:
            continue
        done = epochs.get(experiment.id, ())
        pace = seconds_per_epoch(done)
        left = None if pace is None else max(planned_epochs(experiment) - len(done), 0) * pace
        answers[experiment.id] = Estimate(seconds_left=left)
        if left is None and typical_epoch_seconds is not None:
            left = planned_epochs(experiment) * typical_epoch_seconds + overhead.per_job
        elif left is not None:
            left += overhead.after_epochs
        free_in.append(left)
    slot_times: list[float] | None = None
    if typical_epoch_seconds is not None and None not in free_in:
        slot_times = [t for t in free_in if t is not None]
        slot_times += [0.0] * max(slots - len(slot_times), 0)
        heapq.heapify(slot_times)
    position = 0
    for experiment in active:
        if experiment.status is not Status.QUEUED:
            continue
        position += 1
        start = None
        if slot_times and typical_epoch_seconds is not None:
            offset = heapq.heappop(slot_times)
            start = now + timedelta(seconds=offset)
            job = planned_epochs(experiment) * typical_epoch_seconds + overhead.per_job
            heapq.heappush(slot_times, offset + job)
        answers[experiment.id] = Estimate(queue_position=position, estimated_start=start)
    return answers


def typical_seconds(recent: Sequence[float]) -> float | None:
    """The pace assumed for a net that has not started: the median of recent epochs."""
    return statistics.median(recent) if recent else None
