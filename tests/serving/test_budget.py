"""The decoding budget as a policy: token buckets of pixels per client, on a clock we move."""

from __future__ import annotations

import pytest

from service.errors import DecodingBudgetSpent
from service.serving.budget import MAX_REMEMBERED, DecodingBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_spends_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    budget = DecodingBudget(rate=100, burst=1000, clock=clock)
    budget.charge("a", 600)
    budget.charge("a", 400)
    with pytest.raises(DecodingBudgetSpent) as refused:
        budget.charge("a", 250)
    assert refused.value.retry_after == 3  # 250 pixels at 100 a second
    assert refused.value.status_code == 429
    assert "DECODE_PIXELS_PER_SECOND" in refused.value.message
    clock.now += 2.4
    with pytest.raises(DecodingBudgetSpent) as again:  # a refusal takes nothing
        budget.charge("a", 250)
    assert again.value.retry_after == 1
    clock.now += 0.1
    budget.charge("a", 250)


def test_clients_have_their_own_buckets() -> None:
    budget = DecodingBudget(rate=1, burst=1000, clock=Clock())
    budget.charge("a", 1000)
    with pytest.raises(DecodingBudgetSpent):
        budget.charge("a", 1)
    budget.charge("b", 1000)


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    budget = DecodingBudget(rate=100, burst=1000, clock=clock)
    budget.charge("a", 1000)
    clock.now += 3600
    budget.charge("a", 1000)
    with pytest.raises(DecodingBudgetSpent):
        budget.charge("a", 1)


def test_a_zero_rate_is_no_budget() -> None:
    budget = DecodingBudget(rate=0, burst=1000, clock=Clock())
    for _ in range(10):
        budget.charge("a", 10_000)


def test_full_buckets_are_forgotten_once_many_clients_called() -> None:
    clock = Clock()
    budget = DecodingBudget(rate=1000, burst=1000, clock=clock)
    for index in range(MAX_REMEMBERED):
        budget.charge(f"client-{index}", 1)
    clock.now += 1  # their buckets are full again
    budget.charge("busy", 1000)
    assert list(budget._buckets) == ["busy"]
    with pytest.raises(DecodingBudgetSpent):  # and the one still spending is remembered
        budget.charge("busy", 1000)
