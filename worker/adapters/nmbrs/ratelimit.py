"""Client-side protection of Nmbrs' fair-use limit: token bucket (calls/s) plus a cap on calls in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class RateLimiter:
    """At most `rate_per_s` call starts per second (bursts up to `burst`) and `max_concurrency` in flight.

    Nmbrs documents '150 calls per second; if exceeded a delay of half a second will occur', shared with
    other users of the environment, so the default burst is 1: calls are spaced evenly, never bunched.
    """

    def __init__(
        self,
        rate_per_s: float,
        max_concurrency: int,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or max_concurrency < 1 or burst < 1:
            raise ValueError("rate_per_s > 0, max_concurrency >= 1 and burst >= 1 are required")
        self._rate = rate_per_s
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(max_concurrency)

    async def _take(self) -> None:
        # The lock makes waiters queue in order; each one sleeps just long enough for its own token.
        async with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self._rate)
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
            self._tokens -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight slot for the duration of a call, started no faster than the rate allows."""
        async with self._in_flight:
            await self._take()
            yield
