"""Slow work that must not be lost: persisted with its cause, run after it, resumed on restart.

The webhook has to answer Twitch within seconds, but a redemption may need a chat line, a
POST to a local service or a Helix status update. Those are decided inside the same
transaction as the redemption's effect (``enqueue``), so they exist exactly when the
effect does; the ``Worker`` runs them afterwards with bounded concurrency and deletes
each row in the transaction that records its result. A crash at any point leaves the
row pending, and the next start runs it again (at least once: receivers of forwards get
the redemption id to deduplicate with).

A kind's handler either returns (done, optionally with a transaction to run as the row
is deleted), raises ``Retry`` (try again after a backoff, up to the kind's limit) or
``GiveUp`` (never will succeed). Work that runs out of attempts is kept as ``dead``, and
work older than its kind allows (a chat line nobody wants an hour late) as ``expired``:
visible to the operator, never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from loyaltybot.clock import Clock, to_ms
from loyaltybot.db import Store, Tx

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WorkItem:
    id: int
    kind: str
    channel_id: int
    payload: Mapping[str, Any]
    attempts: int  # attempts made before this one
    created_at: int  # ms


@dataclass(frozen=True, slots=True)
class WorkQueued:
    """Commit effect: new work exists (wakes the worker)."""

    id: int


class Retry(Exception):
    """The work failed this time; ``reason`` is short and safe to log. ``after`` is how
    many seconds the other side asked us to wait (an HTTP 429's ``retry_after``): the next
    attempt waits at least that long, and at most ``MAX_RETRY_AFTER_SECONDS``."""

    def __init__(self, reason: str, *, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class GiveUp(Exception):
    """The work can never succeed (e.g. no token, the resource is gone)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Finish = Callable[[Tx], None]
Handler = Callable[[WorkItem], Awaitable[Finish | None]]


@dataclass(frozen=True)
class WorkKind:
    """How to run one kind of work."""

    run: Handler
    max_attempts: Callable[[WorkItem], int] = lambda item: 10
    max_age_ms: int | None = None  # older work is expired instead of run
    on_give_up: Callable[[Tx, WorkItem, str], None] | None = None  # in the 'dead' transaction


def enqueue(
    tx: Tx, kind: str, channel_id: int, payload: Mapping[str, Any], *, delay_ms: int = 0
) -> int:
    """Record work inside the caller's transaction; it runs only if that commits."""
    cursor = tx.conn.execute(
        "INSERT INTO pending_work (kind, channel_id, payload, not_before, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (kind, channel_id, json.dumps(payload), tx.now_ms + delay_ms, tx.now_ms, tx.now_ms),
    )
    work_id = int(cursor.lastrowid or 0)
    tx.effects.append(WorkQueued(work_id))
    return work_id


def prune(tx: Tx, keep_ms: int) -> int:
    """Forget dead and expired work older than ``keep_ms`` (it was logged when it died)."""
    return tx.conn.execute(
        "DELETE FROM pending_work WHERE state <> 'pending' AND updated_at < ?",
        (tx.now_ms - keep_ms,),
    ).rowcount


MAX_RETRY_AFTER_SECONDS = 300.0  # a wait asked by the other side is honoured up to this


def default_backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: 2, 4, 8, ... at most five minutes."""
    return float(min(300, 2**attempts))


@dataclass(frozen=True, slots=True)
class WorkCounts:
    pending: int
    dead: int
    expired: int


def counts(conn: sqlite3.Connection) -> WorkCounts:
    found = dict(conn.execute("SELECT state, count(*) FROM pending_work GROUP BY state").fetchall())
    return WorkCounts(found.get("pending", 0), found.get("dead", 0), found.get("expired", 0))


@dataclass
class _Stats:
    done: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs due pending work, at most ``concurrency`` items at once.

    Every task it starts is tracked; ``close`` waits for them (up to a grace period) and
    cancels the rest, whose rows simply stay pending for the next start.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        kinds: Mapping[str, WorkKind],
        *,
        concurrency: int = 8,
        backoff: Callable[[int], float] = default_backoff,
        max_idle_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._kinds = dict(kinds)
        self._concurrency = concurrency
        self._backoff = backoff
        self._max_idle = max_idle_seconds
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # A read that started before an item finished may still list it: remember which
        # read was the latest when each item finished, until a later read has begun.
        self._reads = 0
        self._finished: dict[int, int] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self.stats = _Stats()
        store.on_commit(self._on_commit)

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._loop_task is None:
            self._closing = False
            self._loop_task = asyncio.create_task(self._run(), name="pending-work")

    async def close(self, grace: float = 5.0) -> None:
        """Stop taking work; let running items finish for ``grace`` seconds, then cancel."""
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        running = list(self._inflight.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until nothing is due or running (for tests and benchmarks; bound it with
        ``asyncio.timeout``)."""
        while True:
            self._idle.clear()
            self._wake.set()
            await self._idle.wait()
            if not self._inflight and not await self._store.read(self._has_due):
                return

    def _on_commit(self, effects: Sequence[object], external: bool) -> None:
        if external or any(isinstance(e, WorkQueued) for e in effects):
            self._wake.set()

    # ---- the loop -------------------------------------------------------------------

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    def _has_due(self, conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT 1 FROM pending_work WHERE state = 'pending' AND not_before <= ? LIMIT 1",
            (self._now_ms(),),
        ).fetchone()
        return row is not None

    def _due(self, conn: sqlite3.Connection) -> tuple[list[WorkItem], int | None]:
        """Due items (enough to fill every slot, some may already be running) and when the
        next one falls due."""
        now = self._now_ms()
        limit = self._concurrency
        rows = conn.execute(
            "SELECT id, kind, channel_id, payload, attempts, created_at FROM pending_work"
            " WHERE state = 'pending' AND not_before <= ? ORDER BY not_before, id LIMIT ?",
            (now, limit),
        ).fetchall()
        (next_due,) = conn.execute(
            "SELECT min(not_before) FROM pending_work WHERE state = 'pending' AND not_before > ?",
            (now,),
        ).fetchone()
        items = [WorkItem(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]
        return items, next_due

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            free = self._concurrency - len(self._inflight)
            timeout: float | None = self._max_idle
            if free > 0:
                self._reads += 1
                read = self._reads
                try:
                    items, next_due = await self._store.read(self._due)
                except Exception:
                    log.exception("pending_work_read_failed")
                    items, next_due = [], None
                stale = {i for i, seen in self._finished.items() if seen >= read}
                self._finished = {i: self._finished[i] for i in stale}
                started = 0
                for item in items:
                    if item.id in self._inflight or item.id in stale or started >= free:
                        continue
                    started += 1
                    task = asyncio.create_task(self._execute(item), name=f"work-{item.id}")
                    self._inflight[item.id] = task
                if started == 0 and not self._inflight:
                    self._idle.set()
                if next_due is not None:
                    timeout = min(self._max_idle, max(0.0, (next_due - self._now_ms()) / 1000))
                if started and started == free:
                    timeout = None  # full: a finishing task wakes us
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _execute(self, item: WorkItem) -> None:
        kind = self._kinds.get(item.kind)
        try:
            if kind is None:
                await self._bury(item, "dead", f"unknown kind {item.kind}", None)
                return
            if kind.max_age_ms is not None and self._now_ms() - item.created_at > kind.max_age_ms:
                await self._bury(item, "expired", "too old to run", None)
                return
            try:
                finish = await kind.run(item)
            except Retry as exc:
                await self._failed(item, kind, exc.reason, exc.after)
            except GiveUp as exc:
                await self._bury(item, "dead", exc.reason, kind.on_give_up)
            except Exception as exc:
                log.exception("pending_work_crashed", work_id=item.id, kind=item.kind)
                await self._failed(item, kind, type(exc).__name__)
            else:
                await self._store.write(lambda tx: self._done(tx, item, finish))
                self.stats.done += 1
                self.stats.by_kind[item.kind] = self.stats.by_kind.get(item.kind, 0) + 1
        except asyncio.CancelledError:
            raise
        except Exception:  # the store itself failed: the row stays pending
            log.exception("pending_work_not_recorded", work_id=item.id, kind=item.kind)
        finally:
            self._finished[item.id] = self._reads
            self._inflight.pop(item.id, None)
            self._wake.set()

    @staticmethod
    def _done(tx: Tx, item: WorkItem, finish: Finish | None) -> None:
        deleted = tx.conn.execute(
            "DELETE FROM pending_work WHERE id = ? AND state = 'pending'", (item.id,)
        ).rowcount
        if deleted and finish is not None:
            finish(tx)

    async def _failed(
        self, item: WorkItem, kind: WorkKind, reason: str, after: float | None = None
    ) -> None:
        attempts = item.attempts + 1
        if attempts >= kind.max_attempts(item):
            await self._bury(item, "dead", reason, kind.on_give_up, attempts)
            return
        asked = min(max(0.0, after or 0.0), MAX_RETRY_AFTER_SECONDS)
        delay_ms = to_ms(max(self._backoff(attempts), asked))
        log.warning(
            "pending_work_retry", work_id=item.id, kind=item.kind, attempt=attempts, reason=reason
        )

        def run(tx: Tx) -> None:
            tx.conn.execute(
                "UPDATE pending_work SET attempts = ?, not_before = ?, updated_at = ?,"
                " last_error = ? WHERE id = ? AND state = 'pending'",
                (attempts, tx.now_ms + delay_ms, tx.now_ms, reason[:200], item.id),
            )

        await self._store.write(run)
        self.stats.retried += 1

    async def _bury(
        self,
        item: WorkItem,
        state: str,
        reason: str,
        on_give_up: Callable[[Tx, WorkItem, str], None] | None,
        attempts: int | None = None,
    ) -> None:
        level = log.info if state == "expired" else log.error
        level(f"pending_work_{state}", work_id=item.id, kind=item.kind, reason=reason)

        def run(tx: Tx) -> None:
            changed = tx.conn.execute(
                "UPDATE pending_work SET state = ?, attempts = ?, updated_at = ?, last_error = ?"
                " WHERE id = ? AND state = 'pending'",
                (
                    state,
                    item.attempts + 1 if attempts is None else attempts,
                    tx.now_ms,
                    reason[:200],
                    item.id,
                ),
            ).rowcount
            if changed and on_give_up is not None:
                on_give_up(tx, item, reason)

        await self._store.write(run)
        if state == "dead":
            self.stats.dead += 1
        else:
            self.stats.expired += 1
