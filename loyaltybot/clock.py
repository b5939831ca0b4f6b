"""Time, injected: schedulers and cooldowns take a Clock so tests run without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the Unix epoch (stored in the database)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, cooldowns)."""

    async def sleep(self, seconds: float) -> None:
        """Wait this long (backoff between retries); a fake clock just moves on."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; for tests and the simulator."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds


def to_ms(seconds: float) -> int:
    return round(seconds * 1000)
