"""A desk: chat requests that arrive together are committed together.

5,000 ``!ticket`` or ``!bet`` lines in a second would be 5,000 transactions, each waiting
for the single writer. At a desk, whatever is waiting when the writer is free goes in one
transaction (at most ``max_group``), each request in its own savepoint: a refused one
changes nothing and costs the others nothing, and each caller gets its own outcome.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

from loyaltybot.clock import Clock
from loyaltybot.db.connection import Store, Tx, savepoint

R = TypeVar("R")
O = TypeVar("O")  # noqa: E741
LATENCY_SAMPLES = 10_000  # the last requests' line-to-commit times kept for /metrics


@dataclass
class DeskStats:
    """Counters for /metrics."""

    committed: int = 0  # requests committed
    refused: int = 0  # counted by the feature: which errors are refusals is its business
    groups: int = 0  # transactions they took
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def quantile(self, q: float) -> float:
        """Line-to-commit seconds at quantile ``q`` of the last requests (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def each_in_savepoint(
    tx: Tx, name: str, requests: Sequence[R], apply: Callable[[R], O]
) -> list[O | Exception]:
    """``apply`` each request in its own savepoint: its outcome, or the error that undid it."""
    outcomes: list[O | Exception] = []
    for request in requests:
        try:
            with savepoint(tx, name):
                outcomes.append(apply(request))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _apply(
    group: Callable[[Tx, Sequence[R]], list[O | Exception]], requests: Sequence[R], tx: Tx
) -> list[O | Exception]:
    return group(tx, requests)


@dataclass(slots=True)
class _Waiting(Generic[R, O]):
    request: R
    received_at: float
    future: asyncio.Future[O]


class Desk(Generic[R, O]):
    """Commits requests in groups. ``group(tx, requests)`` gives one outcome (or error)
    per request, in order (``each_in_savepoint``); ``committed(outcome)`` counts one."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        group: Callable[[Tx, Sequence[R]], list[O | Exception]],
        *,
        name: str,
        max_group: int,
        stats: DeskStats | None = None,
        committed: Callable[[O], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._group = group
        self._name = name
        self._max_group = max_group
        self._committed = committed
        self.stats = stats or DeskStats()
        self._waiting: list[_Waiting[R, O]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, request: R, received_at: float | None = None) -> O:
        """The request's outcome once its group is committed; its error if it was refused
        (then nothing of it happened). ``received_at`` (monotonic): when it arrived."""
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        at = self._clock.monotonic() if received_at is None else received_at
        self._waiting.append(_Waiting(request, at, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name=self._name)
        return await future

    async def close(self) -> None:
        """Finish the requests being committed (at stop)."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)

    async def _commit_waiting(self) -> None:
        while self._waiting:
            waiting = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            requests = [w.request for w in waiting]
            try:
                outcomes = await self._store.write(partial(_apply, self._group, requests))
            except Exception as exc:  # the transaction itself failed: none of them happened
                for w in waiting:
                    if not w.future.done():
                        w.future.set_exception(exc)
                continue
            now = self._clock.monotonic()
            self.stats.groups += 1
            for w, outcome in zip(waiting, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    if not w.future.done():
                        w.future.set_exception(outcome)
                    continue
                self.stats.committed += 1  # it stands, even if its caller gave up
                self.stats.latencies.append(max(0.0, now - w.received_at))
                if self._committed is not None:
                    self._committed(outcome)
                if not w.future.done():
                    w.future.set_result(outcome)
