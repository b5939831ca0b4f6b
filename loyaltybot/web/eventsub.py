"""``POST {eventsub_path}``: Twitch's EventSub webhook (SPEC §6), written on aiohttp.

A request is read with a size limit (413), verified (``twitch.eventsub``: 403 for a bad
signature or a stale timestamp, 400 for malformed headers or bodies), then:

- a ``webhook_callback_verification`` is answered with the challenge as text/plain;
- a ``revocation`` is logged and remembered, and nothing we hold is touched;
- a ``notification`` has its effect in ONE transaction that also records its message
  id in ``processed_events``: the effect happens at most once, also across restarts,
  and a duplicate is answered 204 without doing anything.

Nothing slow happens before the answer: chat lines, forwards and Helix status updates
are pending rows written in that same transaction and run afterwards by the
``Worker``, which resumes them after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

import aiohttp
import structlog
from aiohttp import web

from loyaltybot import events, rewards
from loyaltybot.clock import Clock
from loyaltybot.config import Secret
from loyaltybot.db import Tx, jobs
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.points.first_sight import write_seen
from loyaltybot.reward_delivery import ChatSend, HelixFor, RewardDelivery
from loyaltybot.rewards import RedemptionOutcome, Rewards
from loyaltybot.twitch import eventsub
from loyaltybot.twitch.eventsub import (
    Challenge,
    Notification,
    OtherEvent,
    RedemptionAdded,
    Rejected,
    Revocation,
    StreamOffline,
    StreamOnline,
    Subscription,
    User,
)

log = structlog.get_logger(__name__)

SOURCE = "eventsub"  # processed_events.source
MAX_BODY_BYTES = 64 * 1024
PROCESSED_RETENTION_MS = 7 * 24 * 3600 * 1000  # far beyond the 10-minute freshness window
DEAD_WORK_RETENTION_MS = 30 * 24 * 3600 * 1000
PRUNE_EVERY_SECONDS = 3600.0
MAX_REVOCATIONS_KEPT = 256
MAX_GROUP = 256  # notifications committed together at most

LiveListener = Callable[[str, bool], None]
"""``(channel, live)``: called after a stream.online / stream.offline has been recorded."""

RevocationListener = Callable[[Subscription], None]


@dataclass
class EventSubStats:
    """Counters for /metrics."""

    received: int = 0
    rejected: dict[int, int] = field(default_factory=dict)  # by HTTP status
    duplicates: int = 0
    processed: int = 0
    failed: int = 0
    revocations: int = 0


@dataclass(frozen=True, slots=True)
class _Duplicate:
    pass


@dataclass(frozen=True, slots=True)
class _LiveChange:
    channel: str
    live: bool


_DUPLICATE = _Duplicate()
_Result = _Duplicate | RedemptionOutcome | events.BonusOutcome | _LiveChange | None
_Waiting = tuple[Notification, str | None, "asyncio.Future[_Result]"]


class EventSubService:
    """The webhook, the dispatch of notifications, and the worker for what follows.

    Wire it with ``app.router.add_routes(service.routes())``, ``await service.start()``
    before serving and ``await service.close()`` after the web server stopped.
    """

    def __init__(
        self,
        *,
        bank: Bank,
        rewards: Rewards,
        secret: str | Secret,
        channels: Iterable[str],
        clock: Clock,
        path: str = "/twitch/eventsub",
        session: aiohttp.ClientSession | None = None,
        chat: ChatSend | None = None,
        helix_for: HelixFor | None = None,
        max_body: int = MAX_BODY_BYTES,
        concurrency: int = 8,
        backoff: Callable[[int], float] = jobs.default_backoff,
        chat_max_age: float | None = None,
    ) -> None:
        self._bank = bank
        self._store = bank.store
        self.rewards = rewards
        self._secret = _key(secret)
        self._channels = frozenset(channels)
        self._clock = clock
        self.path = path
        self._session = session
        self._own_session = session is None
        self._chat = chat
        self._helix_for = helix_for
        self._max_body = max_body
        self._concurrency = concurrency
        self._backoff = backoff
        self._chat_max_age = chat_max_age
        self._by_broadcaster: dict[str, str] = {}
        self._live: dict[str, tuple[float, bool]] = {}
        self._live_listeners: list[LiveListener] = []
        self._revocation_listeners: list[RevocationListener] = []
        self.revoked: OrderedDict[str, Subscription] = OrderedDict()
        self.stats = EventSubStats()
        self.worker: jobs.Worker | None = None
        self.delivery: RewardDelivery | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    # ---- wiring -----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.path, self.handle)]

    def add_live_listener(self, listener: LiveListener) -> None:
        self._live_listeners.append(listener)

    def add_revocation_listener(self, listener: RevocationListener) -> None:
        self._revocation_listeners.append(listener)

    def live(self, channel: str) -> bool | None:
        """The last stream state EventSub told us, or None if it has not."""
        state = self._live.get(channel)
        return None if state is None else state[1]

    def set_chat(self, chat: ChatSend | None) -> None:
        self._chat = chat
        if self.delivery is not None:
            self.delivery.chat = chat
            if self.worker is not None:
                self.worker.wake()

    def update(
        self, *, channels: Iterable[str] | None = None, secret: str | Secret | None = None
    ) -> None:
        """Apply a reloaded config (rewards are updated on ``self.rewards``). A new secret
        only verifies subscriptions created with it: Twitch signs with the secret given
        when subscribing."""
        if channels is not None:
            self._channels = frozenset(channels)
        if secret is not None:
            self._secret = _key(secret)

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

    async def start(self) -> None:
        """Load what the database knows, then start the worker (which resumes any work a
        previous run left pending)."""
        rows = await self._store.read(
            lambda c: c.execute(
                "SELECT twitch_id, login FROM channels WHERE twitch_id IS NOT NULL"
            ).fetchall()
        )
        self._by_broadcaster.update({str(twitch_id): login for twitch_id, login in rows})
        if self._session is None:
            self._session = aiohttp.ClientSession()
        options = {} if self._chat_max_age is None else {"chat_max_age": self._chat_max_age}
        self.delivery = RewardDelivery(
            session=self._session, chat=self._chat, helix_for=self._helix_for, **options
        )
        self.worker = jobs.Worker(
            self._store,
            self._clock,
            self.delivery.kinds(),
            concurrency=self._concurrency,
            backoff=self._backoff,
        )
        self.worker.start()
        self._pruner = asyncio.create_task(self._prune_forever(), name="eventsub-prune")

    async def close(self, grace: float = 5.0) -> None:
        """Finish the notifications being committed, stop the worker (unfinished work
        stays pending for the next start). Stop the web server first."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self.worker is not None:
            await self.worker.close(grace)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ---- the handler ------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.received += 1
        body = await self._read_body(request)
        if body is None:
            return self._reject(request, 413, "body too large")
        try:
            message = eventsub.verify(request.headers, body, self._secret, self._clock.now())
        except Rejected as exc:
            return self._reject(request, exc.status, exc.reason)
        if isinstance(message, Challenge):
            log.info(
                "eventsub_challenge_answered",
                subscription_type=message.subscription.type,
                subscription_id=message.subscription.id,
            )
            return web.Response(text=message.challenge, content_type="text/plain")
        if isinstance(message, Revocation):
            await self._revocation(message)
            return web.Response(status=204)
        return await self._notification(message)

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The raw body, or None when it is larger than the limit."""
        if request.content_length is not None and request.content_length > self._max_body:
            return None
        body = bytearray()
        while chunk := await request.content.read(self._max_body + 1 - len(body)):
            body += chunk
            if len(body) > self._max_body:
                return None
        return bytes(body)

    def _reject(self, request: web.Request, status: int, reason: str) -> web.Response:
        self.stats.rejected[status] = self.stats.rejected.get(status, 0) + 1
        log.warning("eventsub_rejected", status=status, reason=reason, remote=request.remote)
        return web.Response(status=status, text=reason)

    async def _revocation(self, message: Revocation) -> None:
        subscription = message.subscription
        fresh = await self._store.write(lambda tx: _record_message(tx, message.message_id))
        self.revoked[subscription.id] = subscription
        while len(self.revoked) > MAX_REVOCATIONS_KEPT:
            self.revoked.popitem(last=False)
        if not fresh:
            return
        self.stats.revocations += 1
        log.warning(
            "eventsub_subscription_revoked",
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

    async def _notification(self, message: Notification) -> web.Response:
        channel = self._channel_for(message)
        try:
            result = await self._commit(message, channel)
        except Exception:
            self.stats.failed += 1
            log.exception(
                "eventsub_notification_failed",
                message_id=message.message_id,
                subscription_type=message.subscription.type,
            )
            return web.Response(status=500, text="internal error")
        if isinstance(result, _Duplicate):
            self.stats.duplicates += 1
            log.debug("eventsub_duplicate", message_id=message.message_id)
            return web.Response(status=204)
        self.stats.processed += 1
        self._report(message, channel, result)
        return web.Response(status=204)

    async def _commit(self, message: Notification, channel: str | None) -> _Result:
        """Apply a notification in a transaction shared with the others waiting now.

        Notifications that arrive while a commit is under way are applied together, each
        inside its own savepoint (its effect and its message id stand or fall together),
        and committed once: the commit, not the statements, is what costs the most.
        """
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
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

    def _apply_group(self, tx: Tx, group: list[_Waiting]) -> list[_Result | Exception]:
        outcomes: list[_Result | Exception] = []
        for message, channel, _ in group:
            try:
                with rewards.savepoint(tx, "notification"):
                    outcomes.append(self._apply(tx, message, channel))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _channel_for(self, message: Notification) -> str | None:
        """Which configured channel an event is for: by broadcaster id, else by login."""
        event = message.event
        broadcaster: User | None = getattr(event, "broadcaster", None)
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

    def _apply(self, tx: Tx, message: Notification, channel: str | None) -> _Result:
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
        named = [v for v in eventsub.named_viewers(event) if v.login not in excluded]
        if named:  # first sight: whoever an event names is known from now on
            write_seen(tx, channel_id, named)
        if isinstance(event, RedemptionAdded):
            return self.rewards.handle(tx, channel, event)
        if isinstance(event, StreamOnline | StreamOffline):
            return _LiveChange(channel, isinstance(event, StreamOnline))
        return events.apply_bonus(tx, channel_id, channel, event, message.message_id)

    def _report(self, message: Notification, channel: str | None, result: _Result) -> None:
        """After the commit: log what happened, tell the live-state listeners."""
        if isinstance(message.event, OtherEvent):
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
        if isinstance(result, _LiveChange):
            self._set_live(result.channel, result.live, message.timestamp)
        elif isinstance(result, RedemptionOutcome):
            emit = log.warning if result.status is rewards.Status.UNMATCHED else log.info
            emit(
                "redemption_handled" if result.action else "redemption_unmatched",
                channel=result.channel,
                redemption_id=result.redemption_id,
                reward=result.reward,
                action=result.action,
                status=str(result.status),
                outcome=result.outcome,
                twitch_status=result.twitch_status,
            )
        elif isinstance(result, events.BonusOutcome):
            log.info(
                "event_bonus",
                channel=result.channel,
                kind=result.kind,
                user_id=result.user_id,
                amount=result.amount,
                outcome=result.outcome,
            )
        elif result is None and isinstance(message.event, RedemptionAdded):
            log.info("redemption_seen_before", redemption_id=message.event.id)

    def _set_live(self, channel: str, live: bool, at: float) -> None:
        previous = self._live.get(channel)
        if previous is not None and previous[0] > at:
            log.info("eventsub_stale_stream_state_ignored", channel=channel, live=live)
            return
        self._live[channel] = (at, live)
        log.info("stream_state", channel=channel, live=live)
        for listener in self._live_listeners:
            try:
                listener(channel, live)
            except Exception:
                log.exception("live_listener_failed", channel=channel)

    # ---- housekeeping -----------------------------------------------------------------

    async def prune(self) -> None:
        """Forget what can no longer matter: message ids far older than the freshness
        window (a replay of one is refused as stale), cooldowns that ran out, and dead work
        kept for a month."""
        await self._store.write(_prune)

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("eventsub_prune_failed")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)


def _key(secret: str | Secret) -> bytes:
    return (secret.reveal() if isinstance(secret, Secret) else secret).encode()


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
    rewards.prune(tx)
    jobs.prune(tx, DEAD_WORK_RETENTION_MS)
