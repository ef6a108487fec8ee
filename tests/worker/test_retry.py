"""RetryPolicy: the waits between tries, and when it gives up (a fake clock, no sleeping)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.worker.retry import RetryPolicy


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(
    times: int, error: type[Exception] = ConnectionError
) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error("down")
        return "done"

    return attempt, calls


def test_the_delays_double_from_the_first_up_to_the_cap() -> None:
    policy = RetryPolicy(max_seconds=1.0)
    assert [policy.delay(failures) for failures in range(1, 6)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert RetryPolicy(max_seconds=10, first_seconds=1, factor=3).delay(3) == 9


def test_a_call_that_recovers_returns_after_the_waits() -> None:
    time = FakeTime()
    attempt, calls = failing(3)
    result = RetryPolicy(max_seconds=1.0).call(
        attempt,
        retry_on=(ConnectionError,),
        deadline=10.0,
        what="a write",
        clock=time.clock,
        sleep=time.sleep,
    )
    assert result == "done"
    assert len(calls) == 4
    assert time.slept == [0.25, 0.5, 1.0]


def test_no_try_starts_after_the_deadline() -> None:
    time = FakeTime()
    attempt, calls = failing(100)
    with pytest.raises(ConnectionError):
        RetryPolicy(max_seconds=1.0).call(
            attempt,
            retry_on=(ConnectionError,),
            deadline=2.0,
            what="a write",
            clock=time.clock,
            sleep=time.sleep,
        )
    # Tries at 0, 0.25, 0.75, 1.75; the next would start at 2.75.
    assert time.slept == [0.25, 0.5, 1.0]
    assert len(calls) == 4


def test_other_errors_are_not_retried() -> None:
    time = FakeTime()
    attempt, calls = failing(1, error=ValueError)
    with pytest.raises(ValueError, match="down"):
        RetryPolicy(max_seconds=1.0).call(
            attempt,
            retry_on=(ConnectionError,),
            deadline=10.0,
            what="a write",
            clock=time.clock,
            sleep=time.sleep,
        )
    assert len(calls) == 1
    assert time.slept == []


def test_a_policy_is_a_value() -> None:
    assert RetryPolicy(max_seconds=1.0) == RetryPolicy(max_seconds=1.0)
    with pytest.raises(AttributeError):
        RetryPolicy(max_seconds=1.0).max_seconds = 2.0  # type: ignore[misc]
