"""Summary lines: what a burst did, said in one chat line instead of one reply each.

5,000 ``!ticket`` lines in a second cannot each be answered (Twitch allows a bot 20 or
100 lines in 30 s). The first line of a burst goes out ``first_after`` seconds after its
first accepted request, the next not before ``every`` seconds after the last one; when
the round changes (a new giveaway, a new contest), what was pending is said first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from loyaltybot.clock import Clock

log = structlog.get_logger(__name__)

P = TypeVar("P")


class Summaries(Generic[P]):
    """Per channel: one pending tally (``P``) of one round, said by ``line`` when due."""

    def __init__(
        self,
        say: Callable[[str, str], Awaitable[object]],
        clock: Clock,
        line: Callable[[str, P], str],
        *,
        name: str,
        first_after: float = 1.0,
        every: float = 5.0,
    ) -> None:
        self._say = say
        self._clock = clock
        self._line = line
        self._name = name
        self._first_after = first_after
        self._every = every
        self._pending: dict[str, tuple[int, P]] = {}
        self._last_sent: dict[str, float] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self.lines = 0  # summary lines handed to chat

    async def pending(self, channel: str, round_id: int, new: Callable[[], P]) -> P:
        """The channel's tally for ``round_id`` to add to (another round's is said first);
        its line is due on the schedule above."""
        held = self._pending.get(channel)
        if held is not None and held[0] != round_id:
            await self.flush(channel)
            held = None
        if held is None:
            held = self._pending[channel] = (round_id, new())
        if channel not in self._timers:
            now = self._clock.monotonic()
            due = max(now + self._first_after, self._last_sent.get(channel, -1e9) + self._every)
            self._timers[channel] = asyncio.create_task(
                self._later(channel, due - now), name=f"{self._name}-{channel}"
            )
        return held[1]

    async def flush(self, channel: str) -> None:
        """Say what is pending now (before the round closes, so the order holds)."""
        timer = self._timers.pop(channel, None)
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self._send(channel)

    async def close(self) -> None:
        for channel in list(self._timers):
            timer = self._timers.pop(channel)
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _later(self, channel: str, delay: float) -> None:
        try:
            await self._clock.sleep(max(0.0, delay))
        finally:
            if self._timers.get(channel) is asyncio.current_task():
                del self._timers[channel]
        await self._send(channel)

    async def _send(self, channel: str) -> None:
        held = self._pending.pop(channel, None)
        if held is None:
            return
        self._last_sent[channel] = self._clock.monotonic()
        self.lines += 1
        try:
            await self._say(channel, self._line(channel, held[1]))
        except Exception:
            log.exception("summary_failed", summary=self._name, channel=channel)
