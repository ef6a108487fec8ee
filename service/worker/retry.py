"""Retrying with backoff, as one value: how long to wait before each try, and when to stop.

A database call that fails (a blip, a failover) is tried again after FIRST_DELAY_SECONDS,
doubling up to a cap (the heartbeat interval), while a deadline allows: the training process's
fenced writes, the supervisor's heartbeat and its settling of an ended attempt all use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.25

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Wait `first_seconds` before the first retry, `factor` times longer before each next
    one, never more than `max_seconds`."""

    max_seconds: float
    first_seconds: float = FIRST_DELAY_SECONDS
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row (counted from 1)."""
        return min(self.first_seconds * self.factor ** max(failures - 1, 0), self.max_seconds)

    def call(
        self,
        attempt: Callable[[], T],
        *,
        retry_on: tuple[type[BaseException], ...],
        deadline: float,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """`attempt()`, tried again after each `retry_on` error while the next try would
        start by `deadline` (on `clock`); past that, the last error is raised."""
        failures = 0
        while True:
            try:
                return attempt()
            except retry_on as error:
                failures += 1
                delay = self.delay(failures)
                if clock() + delay > deadline:
                    raise
                log.warning("%s failed (%s); retrying in %.2f s", what, type(error).__name__, delay)
                sleep(delay)
