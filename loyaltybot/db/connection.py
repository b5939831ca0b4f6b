"""The store: one writer connection, one reader connection, both aiosqlite.

Every write is a plain function ``fn(tx) -> T`` that the writer runs inside one
``BEGIN IMMEDIATE ... COMMIT`` on its own thread: check and change happen in the same
transaction, nothing else can interleave, and a second process (the CLI) is serialised
by SQLite's lock and ``busy_timeout``. Writes queued while the writer is busy are run back
to back in one trip to the writer thread, each still its own transaction: that is what
lets 64 concurrent transfers reach the raw SQLite rate instead of paying a thread hop and
a loop wake-up each (measured in bench/ledger.py).

Commit listeners see each transaction's effects in commit order, on the event loop,
before the writer's callers resume; the ledger keeps its in-memory standings with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import structlog

from loyaltybot.clock import Clock, SystemClock, to_ms
from loyaltybot.db import migrations

log = structlog.get_logger(__name__)

T = TypeVar("T")
Synchronous = Literal["normal", "full"]
CommitListener = Callable[[Sequence[object], bool], None]

MAX_BATCH = 128


@dataclass
class Tx:
    """One write transaction: its connection, its timestamp, and what it did.

    ``effects`` is how a write function tells commit listeners what changed; they are
    delivered only if the transaction commits.
    """

    conn: sqlite3.Connection
    now_ms: int
    effects: list[object] = field(default_factory=list)


@contextlib.contextmanager
def savepoint(tx: Tx, name: str = "effect") -> Iterator[None]:
    """All or nothing inside the transaction, commit effects included: a cost is never
    kept when the action it paid for fails, nor one notification's half-effect when it
    shares a transaction with others."""
    effects = len(tx.effects)
    tx.conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        tx.conn.execute(f"ROLLBACK TO {name}")
        tx.conn.execute(f"RELEASE {name}")
        del tx.effects[effects:]
        raise
    tx.conn.execute(f"RELEASE {name}")


class StoreClosed(RuntimeError):
    pass


async def _in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the connection's own thread, in one hop.

    aiosqlite exposes this only as ``_execute`` (every public method is built on it);
    using it here, and only here, keeps a transaction to one trip instead of one per
    statement. The version range in pyproject.toml pins the aiosqlite we tested.
    """
    result: T = await conn._execute(fn, *args)  # type: ignore[no-untyped-call]
    return result


class Store:
    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        clock: Clock,
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._lock = asyncio.Lock()  # the writer token: one drain at a time
        self._pending: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._listeners: list[CommitListener] = []
        self._data_version: int | None = None
        self._closed = False

    # ---- writes ---------------------------------------------------------------------

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in its own BEGIN IMMEDIATE transaction; its exception rolls it back."""
        if self._closed:
            raise StoreClosed("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="store-writer")
        return await future

    def on_commit(self, listener: CommitListener) -> None:
        """``listener(effects, external_change)`` after each committed write, in order.

        ``external_change`` is true when another process wrote since our last commit.
        """
        self._listeners.append(listener)

    async def _drain(self) -> None:
        async with self._lock:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                # A caller that gave up before its write started gets no write.
                batch = [(fn, fut) for fn, fut in batch if not fut.done()]
                if not batch:
                    continue
                try:
                    external, outcomes = await _in_thread(
                        self._writer, self._run_batch, [fn for fn, _ in batch]
                    )
                except BaseException as exc:  # the writer thread itself failed
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, fut), (ok, value, effects) in zip(batch, outcomes, strict=True):
                    if ok:
                        self._notify(effects, external)
                        external = False
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
                if external:  # nothing committed in this batch, but someone else wrote
                    self._notify([], True)

    def _run_batch(
        self, fns: list[Callable[[Tx], Any]]
    ) -> tuple[bool, list[tuple[bool, Any, list[object]]]]:
        """On the writer thread: each function in its own transaction."""
        conn = self._writer._conn
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        external = self._data_version is not None and version != self._data_version
        outcomes: list[tuple[bool, Any, list[object]]] = []
        for fn in fns:
            tx = Tx(conn, to_ms(self._clock.now()))
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    value = fn(tx)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except BaseException as exc:
                outcomes.append((False, exc, []))
            else:
                outcomes.append((True, value, tx.effects))
        self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        return external, outcomes

    def _notify(self, effects: Sequence[object], external: bool) -> None:
        for listener in self._listeners:
            try:
                listener(effects, external)
            except Exception:
                log.exception("commit_listener_failed", listener=repr(listener))

    async def check_external_changes(self) -> None:
        """Let listeners hear of another process's writes even when we write nothing."""
        await self.write(lambda tx: None)

    # ---- reads ----------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader connection inside one read transaction (one snapshot)."""
        if self._closed:
            raise StoreClosed("the store is closed")

        def run() -> T:
            conn = self._reader._conn
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await _in_thread(self._reader, run)

    async def ping(self) -> None:
        """Does the database answer? (``/healthz``)"""
        await self.read(lambda c: c.execute("SELECT 1").fetchone())

    async def backup(self, destination: Path) -> None:
        """A consistent copy of the live database, written beside ``destination`` and
        renamed into place so a half-written backup never carries its name."""
        partial = destination.with_name(f".{destination.name}.partial")

        def run() -> None:
            target = sqlite3.connect(partial)
            try:
                self._reader._conn.backup(target)
            finally:
                target.close()
            os.replace(partial, destination)

        try:
            await _in_thread(self._reader, run)
        finally:
            partial.unlink(missing_ok=True)

    # ---- lifecycle ------------------------------------------------------------------

    async def close(self) -> None:
        """Finish every queued write, then close both connections."""
        if self._closed:
            return
        self._closed = True
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        await self._reader.close()
        await self._writer.close()


async def open_store(
    path: str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    synchronous: Synchronous = "normal",
    busy_timeout_ms: int = 5000,
    migrate: bool = True,
) -> Store:
    """Open (creating if needed) and migrate the database.

    Raises:
        SchemaTooNew: the file was written by a newer loyaltybot.
    """
    clock = clock or SystemClock()
    path = Path(path)
    writer = await aiosqlite.connect(path, isolation_level=None)
    try:
        await _in_thread(writer, _configure, writer._conn, busy_timeout_ms, synchronous, "WAL")
        if migrate:
            applied = await _in_thread(writer, migrations.migrate, writer._conn, to_ms(clock.now()))
            for migration in applied:
                log.info("migration_applied", version=migration.version, name=migration.name)
        else:
            await _in_thread(writer, migrations.check_version, writer._conn)
        reader = await aiosqlite.connect(path, isolation_level=None)
        await _in_thread(reader, _configure, reader._conn, busy_timeout_ms, synchronous, None)
    except BaseException:
        await writer.close()
        raise
    return Store(path, writer, reader, clock)


def integrity_of(path: Path) -> str:
    """SQLite's own check of a database file (a backup): "ok", or what is wrong."""
    check = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (result,) = check.execute("PRAGMA integrity_check").fetchone()
    finally:
        check.close()
    return str(result)


def _configure(
    conn: sqlite3.Connection, busy_timeout_ms: int, synchronous: str, journal: str | None
) -> None:
    """Per-connection settings; the writer also sets WAL (stored in the file), the reader
    becomes query-only."""
    pragmas = [
        f"busy_timeout = {int(busy_timeout_ms)}",
        "foreign_keys = ON",
        f"synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}",
        "cache_size = -32000",  # 32 MB of page cache per connection
        "temp_store = MEMORY",
    ]
    pragmas.append(f"journal_mode = {journal}" if journal else "query_only = ON")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}").fetchall()
