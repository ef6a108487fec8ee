"""Micro-batching: single images that arrive together share one forward pass; a lone one is
answered by its own, without waiting on anything but one turn of the loop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from service.serving.batching import MicroBatcher


class Counting:
    """A forward pass that records each batch it is given: image i answers row [i, i, ...]."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return np.repeat(batch[:, :1, 0], 10, axis=1)


def image(value: float) -> np.ndarray:
    return np.full((1, 28, 28), value, dtype=np.float32)


def test_requests_that_arrive_together_share_one_pass_and_get_their_own_rows() -> None:
    forward = Counting()
    batcher = MicroBatcher()

    async def together() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.forward("m", forward, image(i)) for i in range(5)))

    answers = asyncio.run(together())
    assert forward.batches == [5]
    assert [float(answer[0, 0]) for answer in answers] == [0, 1, 2, 3, 4]
    assert all(answer.shape == (1, 10) for answer in answers)


def test_a_lone_request_and_other_models_have_their_own_pass() -> None:
    forward = Counting()
    batcher = MicroBatcher()

    async def apart() -> None:
        await batcher.forward("m", forward, image(1))
        await asyncio.gather(
            batcher.forward("m", forward, image(2)), batcher.forward("n", forward, image(3))
        )

    asyncio.run(apart())
    assert forward.batches == [1, 1, 1]


def test_a_failed_pass_fails_every_request_in_it() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("graph failed")

    batcher = MicroBatcher()

    async def together() -> list[object]:
        return await asyncio.gather(
            *(batcher.forward("m", broken, image(i)) for i in range(3)), return_exceptions=True
        )

    results = asyncio.run(together())
    assert all(isinstance(result, RuntimeError) for result in results)
    with pytest.raises(RuntimeError):
        asyncio.run(batcher.forward("m", broken, image(0)))
