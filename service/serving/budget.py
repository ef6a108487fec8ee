"""Each client's budget of decoded pixels: a token bucket, so that one client cannot starve
the rest of the CPU by sending the costliest images it is allowed, over many connections.

Decoding an encoded image costs CPU in proportion to its pixels (two 4096x4096 palette PNGs
with transparency, the most MAX_REQUEST_PIXELS lets through, take 0.67 s). A client's bucket
holds up to `burst` pixels and refills at `rate` pixels a second; a request whose images
(counted from their headers, before any decoding) need more than the bucket holds is refused,
429 with the seconds until they would fit. A person drawing or uploading photos of digits
never comes near it: the defaults let through two of the largest requests at once, then one
every four seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from service.errors import DecodingBudgetSpent

# Past this many clients, those whose buckets are full again are forgotten (a full bucket is
# what a new client gets anyway), so the table stays small however many addresses call.
MAX_REMEMBERED = 10_000


class DecodingBudget:
    """Token buckets of pixels, one per client; safe to charge from several threads."""

    def __init__(
        self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client: (pixels left, when)
        self._lock = threading.Lock()

    def charge(self, client: str, pixels: int) -> None:
        """Take `pixels` from the client's bucket, or raise DecodingBudgetSpent if it has not
        that many (taking nothing)."""
        if self.rate <= 0:
            return  # DECODE_PIXELS_PER_SECOND=0: no budget
        with self._lock:
            now = self.clock()
            left = self._left(client, now)
            if pixels > left:
                wait = math.ceil((min(pixels, self.burst) - left) / self.rate)
                raise DecodingBudgetSpent(
                    f"this client has decoded its share of image pixels for now "
                    f"({self.rate:,.0f} a second, DECODE_PIXELS_PER_SECOND); these images need "
                    f"{pixels:,} and {left:,.0f} are left: retry in {wait} s, or send smaller "
                    "images",
                    retry_after=max(wait, 1),
                )
            self._buckets[client] = (left - pixels, now)
            if len(self._buckets) > MAX_REMEMBERED:
                self._forget_full(now)

    def _left(self, client: str, now: float) -> float:
        bucket = self._buckets.get(client)
        if bucket is None:
            return self.burst
        pixels, when = bucket
        return min(self.burst, pixels + (now - when) * self.rate)

    def _forget_full(self, now: float) -> None:
        full = [client for client in self._buckets if self._left(client, now) >= self.burst]
        for client in full:
            del self._buckets[client]
