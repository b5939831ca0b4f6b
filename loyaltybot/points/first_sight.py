"""First sight (SPEC §4, DESIGN invariant 8): a viewer is a row from the moment we see them.

Chat, IRC JOIN, the chatter list and EventSub all report the viewers they see here. A
viewer the channel already knows (``Bank``'s user id -> login map, kept in commit order)
costs one dictionary look-up and no write; a new or renamed one is queued, and everyone
queued within ``WINDOW`` seconds is written in one transaction. A look-up by login that
may be waiting on such a write (``settle``) flushes at once instead of waiting for the
window, so a moderator's ``!addpoints newviewer 500`` typed right after the viewer's
first line finds them.

JOIN lines carry only a login: those are first matched against the database, then asked
of Twitch (``Lookup``, injected by the daemon: Get Users) in the same flush.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from loyaltybot.db import Store, Tx
from loyaltybot.points import viewers
from loyaltybot.points.viewers import Viewer

log = structlog.get_logger(__name__)

WINDOW = 0.25  # seconds new viewers wait to be written together (a burst is one write)
MAX_LOGINS_PER_FLUSH = 1_000  # JOIN-only logins resolved per flush; the rest wait
MAX_PENDING = 5_000_000  # viewers queued at most; past it, the tick writes them instead

Lookup = Callable[[Sequence[str]], Awaitable[Sequence[Viewer]]]
"""Logins -> the Twitch users they name (unknown logins are left out)."""
Listener = Callable[[str, Sequence[Viewer]], None]
"""``(channel, viewers)`` after their rows were committed."""


@dataclass(frozen=True, slots=True)
class ViewersSeen:
    """Commit effect: these viewers have rows now (user id -> login)."""

    channel_id: int
    logins: Mapping[str, str]


@dataclass
class FirstSightStats:
    """For /metrics: how many viewers first sight wrote, in how many transactions."""

    writes: int = 0
    viewers: int = 0
    lookups: int = 0
    failures: int = 0


def write_seen(tx: Tx, channel_id: int, seen: Sequence[Viewer]) -> None:
    """The one write of first sight: create the rows, follow renames, nothing else."""
    viewers.insert_seen(tx.conn, channel_id, seen, tx.now_ms)
    tx.effects.append(ViewersSeen(channel_id, {v.user_id: v.login for v in seen}))


class FirstSight:
    """Batches the writes that make newly seen viewers known (one per viewer, at most)."""

    def __init__(
        self,
        store: Store,
        channel_id: Callable[[str], int],
        known: Callable[[int], Mapping[str, str] | None],
        excluded: Callable[[str], frozenset[str]] = lambda channel: frozenset(),
        *,
        window: float = WINDOW,
    ) -> None:
        self._store = store
        self._channel_id = channel_id
        self._known = known
        self._excluded = excluded
        self._window = window
        self._lookup: Lookup | None = None
        self._listeners: list[Listener] = []
        self._pending: dict[str, dict[str, Viewer]] = {}  # channel -> user id -> viewer
        self._writing: dict[str, dict[str, Viewer]] = {}  # what the flush under way writes
        self._logins: dict[str, set[str]] = {}  # channel -> JOIN-only logins
        self._count = 0
        self._next: asyncio.Future[None] | None = None  # done when what is queued is written
        self._current: asyncio.Future[None] | None = None  # the flush under way
        self._now = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = FirstSightStats()

    def set_lookup(self, lookup: Lookup | None) -> None:
        self._lookup = lookup

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # ---- what the edges report ---------------------------------------------------------

    def see(self, channel: str, viewer: Viewer) -> None:
        """A viewer seen now (chat, an event). Cheap when they are known already; the
        channel's excluded logins (bot, broadcaster, ignored users) are not viewers."""
        try:
            known = self._known(self._channel_id(channel))
        except LookupError:
            return
        if known is not None and known.get(viewer.user_id) == viewer.login:
            return
        if viewer.login not in self._excluded(channel):
            self._queue(channel, viewer)

    def see_chatters(self, channel: str, chatters: Mapping[str, tuple[str, str]]) -> None:
        """The chatter list (user id -> (login, display name)): one pass, new ones queued."""
        try:
            known = self._known(self._channel_id(channel)) or {}
        except LookupError:
            return
        excluded = self._excluded(channel)
        for user_id, (login, name) in chatters.items():
            if known.get(user_id) != login and login not in excluded:
                self._queue(channel, Viewer(user_id, login, name))

    def see_login(self, channel: str, login: str) -> None:
        """A login with no user id (IRC JOIN): found in the database or asked of Twitch."""
        if login in self._excluded(channel):
            return
        logins = self._logins.setdefault(channel, set())
        if login not in logins and self._count < MAX_PENDING:
            logins.add(login)
            self._count += 1
            self._schedule()

    def _queue(self, channel: str, viewer: Viewer) -> None:
        writing = self._writing.get(channel)
        if writing is not None and writing.get(viewer.user_id) == viewer:
            return  # its write is under way: one write per new viewer, not one per line
        pending = self._pending.setdefault(channel, {})
        queued = pending.get(viewer.user_id)
        if queued == viewer:
            return
        if queued is None:
            if self._count >= MAX_PENDING:
                return
            self._count += 1
        pending[viewer.user_id] = viewer
        self._schedule()

    # ---- waiting -----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._next is not None or self._current is not None

    async def settle(self) -> None:
        """Return once every viewer seen before this call is written (or failed to be).

        Look-ups by login call this first: it cuts the batching window short."""
        waits = [f for f in (self._current, self._next) if f is not None]
        if not waits:
            return
        if self._next is not None:
            self._now.set()
        await asyncio.gather(*(asyncio.shield(f) for f in waits))

    async def close(self) -> None:
        """Write what is queued; later sightings are ignored (the daemon is stopping)."""
        self._closed = True
        await self.settle()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)

    # ---- the flush -----------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._closed:
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="first-sight")

    async def _run(self) -> None:
        while self._next is not None:
            if not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), self._window)
            self._now.clear()
            round_done, self._next = self._next, None
            pending, logins = self._pending, self._logins
            self._pending, self._logins, self._count = {}, {}, 0
            self._writing = pending
            self._current = round_done
            try:
                await self._flush(pending, logins)
            except Exception:  # not known then: the next sighting queues them again
                self.stats.failures += 1
                log.exception("first_sight_failed", viewers=sum(map(len, pending.values())))
            finally:
                self._writing = {}
                self._current = None
                if not round_done.done():
                    round_done.set_result(None)

    async def _flush(
        self, pending: dict[str, dict[str, Viewer]], logins: dict[str, set[str]]
    ) -> None:
        batch: dict[str, list[Viewer]] = {c: list(v.values()) for c, v in pending.items() if v}
        known: dict[str, list[Viewer]] = {}  # JOIN-only logins the database already knew
        for channel, wanted in logins.items():
            stored, found = await self._resolve(channel, wanted)
            known[channel] = stored
            if found:
                batch.setdefault(channel, []).extend(found)
        batch = {c: v for c, v in batch.items() if self._known_channel(c)}
        if batch:

            def run(tx: Tx) -> None:
                for channel, seen in batch.items():
                    write_seen(tx, self._channel_id(channel), seen)

            await self._store.write(run)
            self.stats.writes += 1
            self.stats.viewers += sum(map(len, batch.values()))
        for channel in batch.keys() | known.keys():
            seen = [*batch.get(channel, ()), *known.get(channel, ())]
            for listener in self._listeners:
                try:
                    listener(channel, seen)
                except Exception:
                    log.exception("first_sight_listener_failed", channel=channel)

    def _known_channel(self, channel: str) -> bool:
        try:
            self._channel_id(channel)
        except LookupError:
            return False
        return True

    async def _resolve(
        self, channel: str, wanted: set[str]
    ) -> tuple[list[Viewer], list[Viewer]]:
        """JOIN-only logins: (known to the database, new from Twitch). The known need no
        write, but the listeners hear of them (presence learns their ids)."""
        try:
            channel_id = self._channel_id(channel)
        except LookupError:
            return [], []
        logins = sorted(wanted)[:MAX_LOGINS_PER_FLUSH]
        stored = await self._store.read(lambda c: viewers.logins_known(c, channel_id, logins))
        known = [Viewer(user_id, login, login) for login, user_id in stored.items()]
        missing = [login for login in logins if login not in stored]
        if not missing or self._lookup is None:
            return known, []
        self.stats.lookups += 1
        try:
            found = await self._lookup(missing)
        except Exception as exc:  # Twitch unreachable: the earning tick resolves them later
            log.warning("first_sight_lookup_failed", channel=channel, error=str(exc)[:200])
            return known, []
        asked = set(missing)
        return known, [v for v in found if v.login in asked]
