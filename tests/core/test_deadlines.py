"""Deadlines settles what is due when the next deadline passes or when woken, and keeps
going after a failure."""

from __future__ import annotations

import asyncio
import time

from loyaltybot.clock import Deadlines


async def test_it_settles_at_the_deadline_when_woken_and_after_a_failure() -> None:
    settled: list[float] = []
    deadlines: list[int | None] = [None]
    failures = [1]

    async def settle() -> None:
        settled.append(time.monotonic())
        if failures:
            failures.pop()
            raise RuntimeError("a bad moment")

    async def next_at() -> int | None:
        return deadlines[0]

    timer = Deadlines(settle, next_at, lambda: int(time.time() * 1000), idle=0.5, name="t")
    timer.start()
    await asyncio.sleep(0.1)
    assert len(settled) == 1  # failed: logged, the timer waits idle and goes on
    await asyncio.sleep(0.5)
    assert len(settled) == 2  # idle check
    deadlines[0] = int(time.time() * 1000) + 30_000
    timer.wake()  # a far deadline: only the wake itself settles
    await asyncio.sleep(0.1)
    assert len(settled) == 3
    deadlines[0] = int(time.time() * 1000) + 100
    timer.wake()
    await asyncio.sleep(0.3)
    assert len(settled) >= 5  # woken, then at the deadline 100 ms later
    await timer.close()
