"""The supervisor's loop against a fake training process and a real SQLite database.

A scripted host stands in for the training process (host.Hosts in production), so the loop's
signals, kills and settlements are checked in a second; the policy behind them is checked rule
by rule in test_supervision_policy.py, the real processes in test_shutdown.py and the others.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.config import Settings
from service.db import challenges, repository
from service.db.session import Database
from service.domain import Experiment, Rules, Status
from service.worker.protocol import CANCEL_SIGNAL, DRAIN_SIGNAL, EXIT_DRAINED
from service.worker.supervisor import Shutdown, Supervisor
from tests.helpers import create_queued


class FakeHost:
    """A training process that answers `answer(signals received)` on each wait (None: it
    still trains), and exits killed by SIGKILL when stopped."""

    def __init__(self, answer: Callable[[list[int]], int | None]) -> None:
        self.answer = answer
        self.signals: list[int] = []
        self.waits = 0
        self.stopped = False

    def wait(self, timeout: float) -> int | None:
        self.waits += 1
        return self.answer(self.signals)

    def signal(self, signum: int) -> None:
        self.signals.append(signum)

    def stop(self) -> int:
        self.stopped = True
        return -signal.SIGKILL


class FakeHosts:
    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.jobs: list[tuple[str, int]] = []
        self.given_back = False

    @contextmanager
    def job(self, experiment_id: str, attempt: int) -> Iterator[FakeHost]:
        self.jobs.append((experiment_id, attempt))
        yield self.host
        self.given_back = True


class FakeClock:
    """Time that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def supervise(
    settings: Settings,
    db: Database,
    host: FakeHost,
    *,
    experiment_id: str | None = None,
    shutdown: Shutdown | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[Experiment, list[str], FakeHosts]:
    """Run one job (a queued experiment with one attempt, unless given) on `host`."""
    experiment_id = experiment_id or create_queued(db, max_attempts=1)
    requeued: list[str] = []
    hosts = FakeHosts(host)
    supervisor = Supervisor(
        settings=settings,
        db=db,
        worker="test",
        hosts=hosts,
        requeue=requeued.append,
        shutdown=shutdown,
        **({"clock": clock} if clock else {}),
    )
    supervisor.run_job(experiment_id)
    with db.scope() as session:
        return repository.get_experiment(session, experiment_id), requeued, hosts


def test_a_drained_training_is_released_for_free_and_delivered_again(
    settings: Settings, db: Database
) -> None:
    shutdown = Shutdown()

    def answer(signals: list[int]) -> int | None:
        shutdown.draining.set()  # the worker is asked to stop while the epoch runs
        return EXIT_DRAINED if DRAIN_SIGNAL in signals else None

    host = FakeHost(answer)
    experiment, requeued, hosts = supervise(settings, db, host, shutdown=shutdown)
    assert host.signals == [DRAIN_SIGNAL]
    assert not host.stopped
    assert experiment.status is Status.QUEUED
    assert experiment.max_attempts - experiment.attempt == 1  # one attempt, and not spent
    assert requeued == [experiment.id]
    assert hosts.jobs == [(experiment.id, 1)]
    assert hosts.given_back


def test_a_training_that_dies_spends_its_attempt(settings: Settings, db: Database) -> None:
    host = FakeHost(lambda signals: -signal.SIGKILL)
    experiment, requeued, _ = supervise(settings, db, host)
    assert experiment.status is Status.FAILED
    assert experiment.error is not None
    assert "killed by SIGKILL" in experiment.error
    assert requeued == []


def test_past_the_wall_time_the_training_is_killed_and_failed(
    settings: Settings, db: Database
) -> None:
    host = FakeHost(lambda signals: None)  # it never ends by itself
    settings = settings.model_copy(update={"max_train_seconds": 30.0})
    # Each reading of the clock is a second later: heartbeats go, then the limit passes.
    experiment, _, _ = supervise(settings, db, host, clock=FakeClock(step=1.0))
    assert host.stopped
    assert experiment.status is Status.FAILED
    assert experiment.error is not None
    assert "wall-time limit (MAX_TRAIN_SECONDS)" in experiment.error


def test_the_shutdown_hurry_kills_the_training_and_still_releases_for_free(
    settings: Settings, db: Database
) -> None:
    shutdown = Shutdown()

    def answer(signals: list[int]) -> int | None:
        shutdown.draining.set()
        if signals:  # drained, yet the epoch takes longer than the grace
            shutdown.hurry.set()
        return None

    host = FakeHost(answer)
    experiment, requeued, _ = supervise(settings, db, host, shutdown=shutdown)
    assert host.signals == [DRAIN_SIGNAL]
    assert host.stopped
    assert experiment.status is Status.QUEUED
    assert requeued == [experiment.id]


def test_a_job_delivered_while_draining_is_left_for_another_worker(
    settings: Settings, db: Database
) -> None:
    shutdown = Shutdown()
    shutdown.draining.set()
    host = FakeHost(lambda signals: None)
    experiment, requeued, hosts = supervise(settings, db, host, shutdown=shutdown)
    assert hosts.jobs == []
    assert experiment.status is Status.QUEUED
    assert experiment.attempt == 0
    assert requeued == [experiment.id]


def test_a_cancel_asked_through_the_database_is_signalled_then_enforced(
    settings: Settings, db: Database
) -> None:
    experiment_id = create_queued(db, max_attempts=1)

    def answer(signals: list[int]) -> int | None:
        if not signals:  # someone presses Cancel; the training ignores the signal
            with db.scope() as session:
                repository.request_cancel(session, experiment_id)
        return None

    host = FakeHost(answer)
    experiment, _, _ = supervise(
        settings, db, host, experiment_id=experiment_id, clock=FakeClock(step=1.0)
    )
    assert host.signals == [CANCEL_SIGNAL]
    assert host.stopped  # after CANCEL_GRACE_SECONDS
    assert experiment.status is Status.CANCELLED


def test_a_challenge_entry_is_stopped_at_its_rules_wall_time(
    settings: Settings, db: Database
) -> None:
    """A challenge's max_train_seconds is enforced while training, below MAX_TRAIN_SECONDS."""
    with db.scope() as session:
        challenge = challenges.create_challenge(
            session,
            name="fast nets",
            description=None,
            rules=Rules(max_train_seconds=12.0),
            max_entries_per_person=None,
            closes_at=None,
            split_seed=1,
        )
    entry = create_queued(db, max_attempts=1)
    with db.scope() as session:
        challenges.add_entry(
            session, challenge_id=challenge.id, experiment_id=entry, entrant="a", entrant_name="a"
        )
    host = FakeHost(lambda signals: None)  # it never ends by itself
    settings = settings.model_copy(update={"max_train_seconds": 3600.0})
    clock = FakeClock(step=1.0)
    experiment, _, _ = supervise(settings, db, host, experiment_id=entry, clock=clock)
    assert host.stopped
    assert experiment.status is Status.FAILED
    assert experiment.error is not None
    assert "12 s wall-time limit (the challenge's max_train_seconds rule)" in experiment.error
    assert clock.now < 60  # stopped at the rule, long before the setting's hour
