"""A worker counts requests to stop, not signals: one request that reaches it twice (directly,
and forwarded by the API that embeds it) is one. The real signals are in test_shutdown.py."""

from __future__ import annotations

import signal

import pytest

from service.worker.consumer import StopRequests
from service.worker.lifeline import FORWARDED_STOP_SIGNAL

TERMINAL = signal.SIGINT
SYSTEMD = signal.SIGTERM


@pytest.mark.parametrize(
    ("received", "requests"),
    [
        ([TERMINAL], 1),
        ([FORWARDED_STOP_SIGNAL], 1),  # SIGTERM to `python -m service` alone
        ([TERMINAL, FORWARDED_STOP_SIGNAL], 1),  # Ctrl-C: the group's SIGINT, then the API's
        ([SYSTEMD, FORWARDED_STOP_SIGNAL], 1),  # systemd's stop of the whole unit
        ([FORWARDED_STOP_SIGNAL, SYSTEMD], 1),  # the same, the other way round
        ([TERMINAL, FORWARDED_STOP_SIGNAL, TERMINAL, FORWARDED_STOP_SIGNAL], 2),  # Ctrl-C twice
        ([FORWARDED_STOP_SIGNAL, FORWARDED_STOP_SIGNAL], 2),  # the API signalled twice
        ([SYSTEMD, SYSTEMD], 2),  # the worker alone, twice
    ],
)
def test_one_request_reaching_the_worker_twice_counts_once(
    received: list[signal.Signals], requests: int
) -> None:
    stop = StopRequests()
    for signum in received:
        stop.received(signum)
    assert stop.count == requests
