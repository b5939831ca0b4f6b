"""Time, injected: schedulers and cooldowns take a Clock so tests run without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


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


class Deadlines:
    """A background task that settles what is due: when the next deadline passes, when
    woken (something new got a deadline), and at least every ``idle`` seconds. Contests
    close, duels expire and heists run on it; at start-up, ``settle`` catches up first."""

    def __init__(
        self,
        settle: Callable[[], Awaitable[None]],
        next_at: Callable[[], Awaitable[int | None]],
        now_ms: Callable[[], int],
        *,
        idle: float,
        name: str,
    ) -> None:
        self._settle = settle
        self._next_at = next_at
        self._now_ms = now_ms
        self._idle = idle
        self._name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something got a deadline: look at the next one now."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._settle()
                at = await self._next_at()
            except Exception:
                log.exception("deadlines_failed", timer=self._name)
                at = None
            delay = self._idle
            if at is not None:
                delay = min(delay, max(0.0, (at - self._now_ms()) / 1000))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay + 0.01)
