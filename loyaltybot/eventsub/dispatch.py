"""Once-only processing and dispatch of EventSub notifications, whatever carried them.

A transport (``webhook``, or the WebSocket of SPEC §6.1) hands each verified message
here. A notification has its whole effect in ONE transaction that also records its
message id in ``processed_events``: the effect happens at most once, also across
restarts, and a duplicate changes nothing. The effect is the handler a feature registered
for the event's class (``Feature.eventsub()``); first sight of the viewers the event names
happens in the same transaction. Notifications that arrive together share one commit,
each inside its own savepoint.

A handler runs on the writer thread, inside the transaction; it returns what to do after
the commit (log, tell the live state), or None.

Features also say which of their event classes they need for a channel right now
(``register(..., wanted=)``): the WebSocket transport subscribes to those only
(``wanted``), the webhook to every class handled (``handled``); ``kinds`` turns a class
into its subscription. Counters are kept per transport, and what the dashboard shows
(last event, revocations) goes to ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import structlog

from loyaltybot.config import Config
from loyaltybot.db import Store, Tx, savepoint
from loyaltybot.eventsub.events import (
    Event,
    Notification,
    OtherEvent,
    Revocation,
    Subscription,
    User,
    named_viewers,
)
from loyaltybot.eventsub.kinds import BY_EVENT, Kind, kinds_of
from loyaltybot.eventsub.status import EventSubStatus, Revoked
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.points.first_sight import write_seen

log = structlog.get_logger(__name__)

SOURCE = "eventsub"  # processed_events.source
PROCESSED_RETENTION_MS = 7 * 24 * 3600 * 1000  # far beyond the 10-minute freshness window
MAX_REVOCATIONS_KEPT = 256
MAX_GROUP = 256  # notifications committed together at most

AfterCommit = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Routed:
    """A notification for one of our channels, as a handler sees it."""

    channel: str
    channel_id: int
    message_id: str
    timestamp: float  # when Twitch sent it (Unix seconds)
    event: Event


@dataclass(frozen=True, slots=True)
class Missed:
    """An event a feature fetched again after a WebSocket gap (SPEC §6.1). ``key`` stands
    in for the message id, so it is handled once, also across restarts; a feature keys it
    by what makes the effect once-only too (``redemption:<id>``)."""

    key: str
    event: Event


Handler = Callable[[Tx, Routed], AfterCommit | None]
"""Applies one event inside the notification's transaction; may return an after-commit."""

RevocationListener = Callable[[Subscription], None]

Wanted = Callable[[str], Awaitable[Collection[type]]]
"""channel -> the event classes a feature needs there now (of those it handles)."""

WEBHOOK: Final = "webhook"
WEBSOCKET: Final = "websocket"


@dataclass
class TransportStats:
    """One transport's counters (``/metrics``, by transport)."""

    notifications: int = 0  # handed to the dispatcher
    duplicates: int = 0
    processed: int = 0
    failed: int = 0
    revocations: int = 0
    reconnects: int = 0  # WebSocket: a new session after a lost connection
    session_reconnects: int = 0  # WebSocket: Twitch's session_reconnect followed
    gaps: int = 0  # WebSocket: connections lost (events may have been missed)
    recovered: int = 0  # redemptions fetched from Helix after a gap and handled
    malformed: int = 0  # frames refused


@dataclass
class EventSubStats:
    """Counters for /metrics."""

    received: int = 0
    rejected: dict[int, int] = field(default_factory=dict)  # by HTTP status (webhook)
    duplicates: int = 0
    processed: int = 0
    failed: int = 0
    revocations: int = 0
    transports: dict[str, TransportStats] = field(default_factory=dict)

    def of(self, transport: str) -> TransportStats:
        found = self.transports.get(transport)
        if found is None:
            found = self.transports[transport] = TransportStats()
        return found


class Outcome:
    """What ``deliver`` did with a notification."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"


_DUPLICATE = object()
_Waiting = tuple[Notification, str | None, "asyncio.Future[object]"]


class Dispatcher:
    """Routes notifications to channels and handlers, once each; keeps revocations."""

    def __init__(
        self,
        *,
        store: Store,
        bank: Bank,
        channels: Mapping[str, object],
        status: EventSubStatus | None = None,
    ) -> None:
        self._store = store
        self._bank = bank
        self._channels = frozenset(channels)
        self._handlers: dict[type, Handler] = {}
        self._wanted: list[tuple[frozenset[type], Wanted | None]] = []
        self.status = status or EventSubStatus(WEBHOOK)
        self._by_broadcaster: dict[str, str] = {}
        self._revocation_listeners: list[RevocationListener] = []
        self.revoked: OrderedDict[str, Subscription] = OrderedDict()
        self.stats = EventSubStats()
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    # ---- wiring -----------------------------------------------------------------------

    def register(self, handlers: Mapping[type, Handler], wanted: Wanted | None = None) -> None:
        """Handlers by event class; one feature per class. ``wanted(channel)`` says which
        of them the feature needs there now (None: all, always).

        Raises:
            ValueError: two features handle one class.
        """
        for kind, handler in handlers.items():
            if kind in self._handlers:
                raise ValueError(f"two handlers for {kind.__name__}")
            self._handlers[kind] = handler
        if handlers:
            self._wanted.append((frozenset(handlers), wanted))

    def handles(self, kind: type) -> bool:
        return kind in self._handlers

    def handled(self) -> list[Kind]:
        """Every kind of event some feature handles (what the webhook subscribes to)."""
        return kinds_of(self._handlers)

    async def wanted(self, channel: str) -> list[Kind]:
        """The kinds the features need for this channel now (what a WebSocket subscribes
        to): a bonus that is off wants no subscription."""
        classes: set[type] = set()
        for handled, wanted in self._wanted:
            classes |= handled if wanted is None else handled & set(await wanted(channel))
        return kinds_of(classes)

    def add_revocation_listener(self, listener: RevocationListener) -> None:
        self._revocation_listeners.append(listener)

    def set_channels(self, channels: Mapping[str, object]) -> None:
        self._channels = frozenset(channels)

    async def apply(self, config: Config) -> None:
        """A reload: events for channels the file no longer lists are not handled."""
        self.set_channels(config.channels)

    async def start(self) -> None:
        """Load the broadcaster ids the database knows."""
        rows = await self._store.read(
            lambda c: c.execute(
                "SELECT twitch_id, login FROM channels WHERE twitch_id IS NOT NULL"
            ).fetchall()
        )
        self._by_broadcaster.update({str(twitch_id): login for twitch_id, login in rows})

    async def close(self) -> None:
        """Finish the notifications being committed."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)

    async def set_broadcaster_ids(self, ids: Mapping[str, str]) -> None:
        """Channel login -> Twitch user id (from Helix); kept in ``channels.twitch_id``."""

        def run(tx: Tx) -> None:
            for login, twitch_id in ids.items():
                tx.conn.execute(
                    "UPDATE channels SET twitch_id = NULL WHERE twitch_id = ? AND login <> ?",
                    (twitch_id, login),
                )
                tx.conn.execute(
                    "UPDATE channels SET twitch_id = ? WHERE login = ?", (twitch_id, login)
                )

        await self._store.write(run)
        renamed = set(ids)
        self._by_broadcaster = {i: c for i, c in self._by_broadcaster.items() if c not in renamed}
        self._by_broadcaster.update({twitch_id: login for login, twitch_id in ids.items()})

    # ---- messages ---------------------------------------------------------------------

    async def revocation(self, message: Revocation, *, transport: str = WEBHOOK) -> bool:
        """Log and remember a revocation (once per message id); True if it was new."""
        subscription = message.subscription
        fresh = await self._store.write(lambda tx: _record_message(tx, message.message_id))
        self.revoked[subscription.id] = subscription
        while len(self.revoked) > MAX_REVOCATIONS_KEPT:
            self.revoked.popitem(last=False)
        if not fresh:
            return False
        self.stats.revocations += 1
        self.stats.of(transport).revocations += 1
        channel = self._channel_of_condition(subscription.condition)
        if channel is not None:
            self.status.channel(channel).revocations.append(
                Revoked(subscription.type, subscription.status, message.timestamp)
            )
        log.warning(
            "eventsub_subscription_revoked",
            channel=channel,
            transport=transport,
            subscription_id=subscription.id,
            subscription_type=subscription.type,
            status=subscription.status,
            condition=dict(subscription.condition),
        )
        for listener in self._revocation_listeners:
            try:
                listener(subscription)
            except Exception:
                log.exception("eventsub_revocation_listener_failed")
        return True

    async def deliver(self, message: Notification, *, transport: str = WEBHOOK) -> str:
        """Apply a notification once. Returns ``Outcome.PROCESSED`` or ``DUPLICATE``.

        Raises:
            Exception: the effect failed (nothing of it stayed; Twitch may resend).
        """
        counts = self.stats.of(transport)
        counts.notifications += 1
        channel = self._channel_for(message)
        try:
            result = await self._commit(message, channel)
        except Exception:
            self.stats.failed += 1
            counts.failed += 1
            log.exception(
                "eventsub_notification_failed",
                message_id=message.message_id,
                subscription_type=message.subscription.type,
            )
            raise
        if result is _DUPLICATE:
            self.stats.duplicates += 1
            counts.duplicates += 1
            log.debug("eventsub_duplicate", message_id=message.message_id, transport=transport)
            return Outcome.DUPLICATE
        self.stats.processed += 1
        counts.processed += 1
        self._report(message, channel, result)
        return Outcome.PROCESSED

    async def _commit(self, message: Notification, channel: str | None) -> object:
        """Apply a notification in a transaction shared with the others waiting now: the
        commit, not the statements, is what costs the most."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, channel, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name="eventsub-commit")
        return await future

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group = self._waiting[:MAX_GROUP]
            del self._waiting[:MAX_GROUP]
            try:
                outcomes = await self._store.write(partial(self._apply_group, group=group))
            except Exception as exc:
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _apply_group(self, tx: Tx, group: list[_Waiting]) -> list[object]:
        outcomes: list[object] = []
        for message, channel, _ in group:
            try:
                with savepoint(tx, "notification"):
                    outcomes.append(self._apply(tx, message, channel))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _channel_for(self, message: Notification) -> str | None:
        """Which configured channel an event is for: by broadcaster id, else by login."""
        broadcaster: User | None = getattr(message.event, "broadcaster", None)
        if broadcaster is None:
            return None
        channel = self._by_broadcaster.get(broadcaster.id)
        if channel is None and broadcaster.login in self._channels:
            channel = broadcaster.login
        if channel is None or channel not in self._channels:
            return None
        try:
            self._bank.channel_id(channel)
        except UnknownChannel:
            return None
        return channel

    def _apply(self, tx: Tx, message: Notification, channel: str | None) -> object:
        """The whole effect of one notification, in the transaction that records its id."""
        if not _record_message(tx, message.message_id):
            return _DUPLICATE
        if channel is None:
            return None
        channel_id = self._bank.channel_id(channel)
        event = message.event
        broadcaster: User = getattr(event, "broadcaster")  # noqa: B009 (every routed event has one)
        if broadcaster.id not in self._by_broadcaster:
            _learn_broadcaster(tx, channel_id, broadcaster.id)
        excluded = self._bank.excluded(channel)
        named = [v for v in named_viewers(event) if v.login not in excluded]
        if named:  # first sight: whoever an event names is known from now on
            write_seen(tx, channel_id, named)
        handler = self._handlers.get(type(event))
        if handler is None:
            return None
        return handler(
            tx, Routed(channel, channel_id, message.message_id, message.timestamp, event)
        )

    def _channel_of_condition(self, condition: Mapping[str, str]) -> str | None:
        for key in ("broadcaster_user_id", "to_broadcaster_user_id"):
            channel = self._by_broadcaster.get(condition.get(key, ""))
            if channel is not None:
                return channel
        return None

    def _report(self, message: Notification, channel: str | None, result: object) -> None:
        """After the commit: the handler's after-commit, or a line saying nobody acted."""
        if channel is not None:
            self.status.channel(channel).last_event = (
                message.subscription.type,
                message.timestamp,
            )
        if isinstance(message.event, OtherEvent) or not self.handles(type(message.event)):
            log.info("eventsub_event_ignored", subscription_type=message.subscription.type)
            return
        if channel is None:
            log.warning(
                "eventsub_event_for_unknown_channel",
                subscription_type=message.subscription.type,
                message_id=message.message_id,
            )
            return
        broadcaster: User = getattr(message.event, "broadcaster")  # noqa: B009
        self._by_broadcaster.setdefault(broadcaster.id, channel)
        if callable(result):
            try:
                result()
            except Exception:
                log.exception("eventsub_after_commit_failed", channel=channel)

    async def deliver_missed(
        self, missed: Sequence[Missed], *, transport: str, now: float
    ) -> int:
        """Events fetched again after a gap, each through ``deliver`` under its key;
        returns how many had an effect now (not seen before)."""
        results = await asyncio.gather(
            *(self.deliver(_recovered(m, now), transport=transport) for m in missed),
            return_exceptions=True,
        )
        processed = sum(1 for result in results if result == Outcome.PROCESSED)
        self.stats.of(transport).recovered += processed
        return processed

    # ---- housekeeping -----------------------------------------------------------------

    async def prune(self) -> None:
        """Forget message ids far older than the freshness window (a replay of one is
        refused as stale)."""
        await self._store.write(_prune)


def _recovered(missed: Missed, now: float) -> Notification:
    """A fetched-again event as a notification: its key is the message id."""
    kind = BY_EVENT.get(type(missed.event))
    subscription = Subscription(
        id="recovered",
        type=kind.type if kind is not None else "unknown",
        version=kind.version if kind is not None else "1",
        status="enabled",
        condition={},
        callback=None,
    )
    return Notification(missed.key, now, 0, subscription, missed.event)


def _record_message(tx: Tx, message_id: str) -> bool:
    """Claim a message id; False if it was processed before."""
    return bool(
        tx.conn.execute(
            "INSERT INTO processed_events (source, event_id, processed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source, event_id) DO NOTHING",
            (SOURCE, message_id, tx.now_ms),
        ).rowcount
    )


def _learn_broadcaster(tx: Tx, channel_id: int, twitch_id: str) -> None:
    """Remember a channel's Twitch id the first time an event names it."""
    with contextlib.suppress(sqlite3.IntegrityError):
        tx.conn.execute(
            "UPDATE channels SET twitch_id = ? WHERE id = ? AND twitch_id IS NULL",
            (twitch_id, channel_id),
        )


def _prune(tx: Tx) -> None:
    tx.conn.execute(
        "DELETE FROM processed_events WHERE source = ? AND processed_at < ?",
        (SOURCE, tx.now_ms - PROCESSED_RETENTION_MS),
    )
