"""Micro-batching on the event loop: single images for one warm model that arrive together are
answered by one forward pass.

The first request for a model yields to the loop once (one `asyncio.sleep(0)`); the requests
whose bytes were read in the same moment reach the batcher meanwhile and join it. Nothing waits
on a timer, so a lone request pays one loop turn (microseconds), never a window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from service import metrics

Forward = Callable[[np.ndarray], np.ndarray]
Waiter = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]


class MicroBatcher:
    """Per model key, the requests waiting on the first one's forward pass."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[Waiter]] = {}

    async def forward(self, key: str, forward: Forward, image: np.ndarray) -> np.ndarray:
        """float32 [1, 28, 28] -> [1, 10], through one pass shared with whoever came alongside."""
        waiting = self._waiting.get(key)
        if waiting is not None:
            future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
            waiting.append((image, future))
            return await future
        waiting = self._waiting[key] = []
        try:
            await asyncio.sleep(0)
        finally:
            # Even if this request was cancelled while it yielded, the others get their answers.
            del self._waiting[key]
        if not waiting:
            metrics.FORWARD_BATCH.observe(1)
            return forward(image)
        batch = np.concatenate([image, *(other for other, _ in waiting)])
        metrics.FORWARD_BATCH.observe(len(batch))
        try:
            probabilities = forward(batch)
        except BaseException as error:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            raise
        for row, (_, future) in enumerate(waiting, start=1):
            if not future.done():  # a follower whose client left was cancelled
                future.set_result(probabilities[row : row + 1])
        return probabilities[:1]
