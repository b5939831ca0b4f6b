"""EventSub over WebSocket (SPEC §6.1, twitch-reference.md §7): the transport for a bot
with no public HTTPS address.

One connection per channel, made with that broadcaster's user token: Twitch refuses
subscriptions of two users on one session. A channel's life:

1. connect to ``twitch.eventsub_ws_url?keepalive_timeout_seconds=30``; the first message
   must be ``session_welcome``;
2. within Twitch's 10 s, create the subscriptions the features need for the channel now
   (``Dispatcher.wanted``: redemptions, stream online/offline, the bonuses switched on)
   with transport ``{"method": "websocket", "session_id": ...}``; later, every minute and
   on reload, create what became needed (a bonus switched on);
3. hand every notification to the dispatcher, which processes each message id once, in
   the transaction of its effect, also across restarts; a revocation is logged and shown,
   and that type is not created again until a reload;
4. silence (no notification or keepalive; Pings do not count) longer than the welcome's
   keepalive plus a few seconds, or a close, is a lost connection: a new connection and
   session, the subscriptions created again, backing off 1 s, 2 s ... 60 s on repeated
   failures. Twitch replays nothing lost meanwhile: the gap is logged and shown, and the
   features fetch what Twitch can still tell (``eventsub_missed``: the unfulfilled
   redemptions of the bot's own rewards) and hand it over under once-only keys;
5. ``session_reconnect``: open ``reconnect_url`` as given at once, keep reading the old
   connection until the new one's welcome, then close the old one. The subscriptions
   carry over, so none is created; a message on both is handled once (message ids).

Nothing but Pongs (aiohttp answers Pings) is ever sent on the socket. A bad frame is one
log line and changes nothing. A channel without a usable broadcaster token is shown as
such; chat and earning do not depend on this transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import structlog
from yarl import URL

from loyaltybot.clock import Clock
from loyaltybot.config import Config
from loyaltybot.eventsub.dispatch import WEBSOCKET, Dispatcher, Missed
from loyaltybot.eventsub.events import Malformed, Notification, Revocation
from loyaltybot.eventsub.frames import MAX_FRAME_CHARS, Keepalive, Reconnect, Welcome, parse_frame
from loyaltybot.eventsub.kinds import Kind
from loyaltybot.eventsub.status import ChannelState, Gap, SubscriptionState
from loyaltybot.twitch.clients import TwitchClients
from loyaltybot.twitch.helix import Helix, HelixError

log = structlog.get_logger(__name__)

KEEPALIVE_SECONDS: Final = 30  # asked for in the URL (SPEC §6.1)
SUBSCRIBE_WITHIN: Final = 9.0  # Twitch closes an unused connection after 10 s
WELCOME_WITHIN: Final = 10.0  # from connecting to the welcome
RECONNECT_WELCOME_WITHIN: Final = 30.0  # Twitch's grace after session_reconnect
BACKOFF: Final = (1.0, 60.0)
RESYNC_SECONDS: Final = 60.0
MAX_IN_FLIGHT: Final = 256  # notifications being committed per connection, at most

# Twitch's close codes (reference §7.3): what each means to the operator. Every one of
# them ends the session; a new connection follows, with backoff.
CLOSE_CODES: Final = {
    4000: "Twitch had an internal server error",
    4001: "Twitch says the bot sent a message (it only answers Pings): please report it",
    4002: "Twitch says a Ping was not answered",
    4003: "Twitch closed an unused connection (no subscription within 10 s)",
    4004: "the reconnect grace time after session_reconnect expired",
    4005: "network timeout",
    4006: "network error",
    4007: "Twitch refused the reconnect URL",
}

Recover = Callable[[str, str], Awaitable[Sequence[Missed]]]
"""(channel, broadcaster id) -> events Twitch can still tell after a gap."""


def slack(keepalive: float) -> float:
    """How much longer than the keepalive window silence may last: a few seconds."""
    return min(5.0, keepalive / 2)


def describe_close(code: int | None, reason: str) -> str:
    """One line for a close frame: the code, what it means, Twitch's words."""
    meaning = CLOSE_CODES.get(code or 0, "the connection was closed")
    said = f" ({reason[:80]})" if reason else ""
    return f"close {code}: {meaning}{said}"


class _OpenFailed(Exception):
    """No session: the reason, safe to log."""


@dataclass(eq=False)
class _Connection:
    ws: aiohttp.ClientWebSocketResponse
    session_id: str
    keepalive: int
    alive_at: float  # loop time of the last welcome, keepalive or other message
    ended: asyncio.Future[str] = field(repr=False)  # why the connection is over
    replaced: bool = False  # closed by us after a session_reconnect's welcome
    reader: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass
class _Ended:
    cause: str
    last_alive: float  # wall clock
    healthy: bool  # was welcomed and subscribed: the backoff starts again at 1 s
    fatal: str | None = None  # do not connect again until a reload


class EventSubWebSocket:
    """The WebSocket transport: one ``ChannelSocket`` per channel, feeding ``dispatcher``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        clients: TwitchClients,
        http: aiohttp.ClientSession,
        url: str,
        clock: Clock,
        recover: Recover,
        keepalive: int = KEEPALIVE_SECONDS,
        subscribe_within: float = SUBSCRIBE_WITHIN,
        backoff: tuple[float, float] = BACKOFF,
        resync_every: float = RESYNC_SECONDS,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.dispatcher = dispatcher
        self.clients = clients
        self.http = http
        self.url = url
        self.clock = clock
        self.recover = recover
        self.keepalive = keepalive
        self.subscribe_within = subscribe_within
        self.backoff = backoff
        self.resync_every = resync_every
        self.max_in_flight = max_in_flight
        self.stats = dispatcher.stats.of(WEBSOCKET)
        self.sockets: dict[str, ChannelSocket] = {}

    def start(self, channels: Iterable[str]) -> None:
        """A connection for each channel (each works on its own from now on)."""
        for channel in channels:
            if channel not in self.sockets or self.sockets[channel].finished:
                self.sockets[channel] = ChannelSocket(self, channel)

    async def apply(self, config: Config) -> None:
        """A reload: channels come and go; revoked types may be created again; channels
        that had no usable token (or stopped) try again."""
        wanted, url = list(config.channels), config.twitch.eventsub_ws_url
        if url != self.url:
            self.url = url
            for socket in self.sockets.values():
                await socket.close()
            self.sockets.clear()
        for gone in set(self.sockets) - set(wanted):
            await self.sockets.pop(gone).close()
            self.dispatcher.status.forget(gone)
        for channel in wanted:
            running = self.sockets.get(channel)
            if running is None or running.finished:
                self.sockets[channel] = ChannelSocket(self, channel)
            else:
                running.reloaded()

    async def close(self) -> None:
        """Stop every channel; notifications being committed finish first."""
        await asyncio.gather(*(s.close() for s in self.sockets.values()), return_exceptions=True)

    def socket_url(self) -> str:
        return str(URL(self.url).update_query(keepalive_timeout_seconds=self.keepalive))


class ChannelSocket:
    """One channel's connection(s), from the first welcome to the daemon's stop."""

    def __init__(self, transport: EventSubWebSocket, channel: str) -> None:
        self.t = transport
        self.channel = channel
        self.state: ChannelState = transport.dispatcher.status.channel(channel)
        self.state.transport = WEBSOCKET
        self.revoked: set[str] = set()  # types not created again until a reload
        self.refused: set[str] = set()  # types Twitch refused for the token (401/403): same
        self.current: _Connection | None = None
        self._following: asyncio.Task[None] | None = None
        self._resync = asyncio.Event()
        self._fatal: str | None = None
        self._healthy = False
        self._in_flight = asyncio.Semaphore(transport.max_in_flight)
        self._tasks: set[asyncio.Task[object]] = set()
        self._broadcaster_id: str | None = None
        self._task = asyncio.create_task(self._run(), name=f"eventsub-ws-{channel}")

    @property
    def finished(self) -> bool:
        return self._task.done()

    def reloaded(self) -> None:
        """Revoked subscriptions may be created again; create what is missing now."""
        self.revoked.clear()
        self.refused.clear()
        self._resync.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._drain()

    # ---- the channel's life ----------------------------------------------------------

    async def _run(self) -> None:
        delay = self.t.backoff[0]
        gap: Gap | None = None
        try:
            while True:
                token = self.t.clients.tokens.broadcaster(self.channel)
                helix = self.t.clients.broadcaster(self.channel)
                if token is None or helix is None:
                    self._no_token()
                    return
                ended = await self._session(helix, token.user_id, gap)
                if ended.fatal is not None:
                    self._stop(ended.fatal)
                    return
                if ended.healthy:  # a working session ended: one gap until the next one
                    delay = self.t.backoff[0]
                    gap = self._lost(ended)
                else:  # an attempt failed: the same outage (or not connected yet) goes on
                    self._failed(ended, delay, gap)
                await self.t.clock.sleep(delay)
                delay = min(self.t.backoff[1], delay * 2)
        finally:
            await self._close_all()

    async def _session(self, helix: Helix, broadcaster_id: str, gap: Gap | None) -> _Ended:
        """One session, followed through session_reconnects, until it is lost."""
        self.state.state = "connecting" if gap is None else "reconnecting"
        self._fatal, self._healthy = None, False
        try:
            conn = await self._open(self.t.socket_url(), WELCOME_WITHIN)
        except _OpenFailed as exc:
            return _Ended(str(exc), self.t.clock.now(), healthy=False)
        self.current = conn
        if gap is not None:
            self.t.stats.reconnects += 1
            self.state.reconnects += 1
        self.state.state = "connected"
        self.state.problem = None
        self.state.connected_since = self.t.clock.now()
        self.state.session_id = conn.session_id
        self.state.keepalive_seconds = conn.keepalive
        log.info(
            "eventsub_ws_connected",
            channel=self.channel,
            session_id=conn.session_id,
            keepalive_seconds=conn.keepalive,
        )
        await self._learn_broadcaster(broadcaster_id)
        subscribing = asyncio.create_task(self._subscriptions(helix, broadcaster_id, conn, gap))
        try:
            cause = await self._watch()
        finally:
            subscribing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscribing
        last = (self.current or conn).alive_at
        silent_for = max(0.0, asyncio.get_running_loop().time() - last)
        return _Ended(cause, self.t.clock.now() - silent_for, self._healthy, self._fatal)

    async def _watch(self) -> str:
        """Until the session is over: its connection ended and no reconnect replaced it."""
        while True:
            conn = self.current
            if conn is None:
                return "no connection"
            cause = await asyncio.shield(conn.ended)
            following = self._following
            if following is not None and not following.done():
                await asyncio.wait({following})
            if self.current is conn:
                return cause

    def _lost(self, ended: _Ended) -> Gap:
        """The connection is gone; Twitch replays nothing sent until the next session."""
        self.t.stats.gaps += 1
        gap = Gap(since=ended.last_alive, cause=ended.cause)
        self.state.gaps.append(gap)
        self.state.state = "reconnecting"
        self.state.connected_since = None
        self.state.session_id = None
        for sub in self.state.subscriptions.values():
            if sub.status == "enabled":
                sub.status, sub.detail, sub.at = "lost", "the connection ended", self.t.clock.now()
        log.warning(
            "eventsub_ws_connection_lost",
            channel=self.channel,
            cause=ended.cause,
            note="events sent until a new session is subscribed may be missed:"
            " Twitch replays nothing",
        )
        return gap

    def _failed(self, ended: _Ended, retry_in: float, gap: Gap | None) -> None:
        """No working session this time; the next attempt comes after ``retry_in``."""
        self.state.state = "connecting" if gap is None else "reconnecting"
        self.state.connected_since = None
        self.state.session_id = None
        self.state.problem = f"no EventSub session yet: {ended.cause}; retrying"
        log.warning(
            "eventsub_ws_attempt_failed",
            channel=self.channel,
            cause=ended.cause,
            retry_in_seconds=retry_in,
        )

    def _no_token(self) -> None:
        problem = self.t.clients.tokens.problems.get(self.channel) or (
            f"no broadcaster token for #{self.channel}: run"
            f" `loyaltybot auth --channel {self.channel}`"
        )
        self.state.state = "no token"
        self.state.problem = problem
        log.warning(
            "eventsub_ws_channel_without_token",
            channel=self.channel,
            problem=problem,
            note="chat and earning go on; channel points, stream state and bonuses need it",
        )

    def _stop(self, problem: str) -> None:
        self.state.state = "stopped"
        self.state.problem = problem
        self.state.connected_since = None
        self.state.session_id = None
        log.error("eventsub_ws_stopped", channel=self.channel, problem=problem)

    async def _learn_broadcaster(self, broadcaster_id: str) -> None:
        if broadcaster_id and broadcaster_id != self._broadcaster_id:
            await self.t.dispatcher.set_broadcaster_ids({self.channel: broadcaster_id})
            self._broadcaster_id = broadcaster_id

    # ---- connections -----------------------------------------------------------------

    async def _open(self, url: str, within: float) -> _Connection:
        """Connect and read the welcome; the connection's reader runs from then on.

        Raises:
            _OpenFailed: no connection, or its first message was not a welcome.
        """
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            async with asyncio.timeout(within):
                ws = await self.t.http.ws_connect(
                    url,
                    autoping=True,  # Pongs: the only thing this client sends
                    heartbeat=None,  # no Pings of our own
                    max_msg_size=MAX_FRAME_CHARS * 4,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                )
                first = await ws.receive()
        except TimeoutError:
            await _close_quietly(ws)
            raise _OpenFailed(f"no session_welcome within {within:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            await _close_quietly(ws)
            raise _OpenFailed(f"cannot connect: {type(exc).__name__}: {exc}") from None
        if first.type is aiohttp.WSMsgType.CLOSE:
            raise _OpenFailed(describe_close(first.data, str(first.extra or "")))
        try:
            if first.type is not aiohttp.WSMsgType.TEXT:
                raise Malformed("the first message is not text")
            welcome = parse_frame(first.data)
            if not isinstance(welcome, Welcome):
                raise Malformed("the first message is not a session_welcome")
        except Malformed as exc:
            self.t.stats.malformed += 1
            await _close_quietly(ws)
            raise _OpenFailed(str(exc)) from None
        loop = asyncio.get_running_loop()
        conn = _Connection(
            ws, welcome.session_id, welcome.keepalive_seconds, loop.time(), loop.create_future()
        )
        conn.reader = asyncio.create_task(self._read(conn), name=f"eventsub-ws-{self.channel}-read")
        return conn

    async def _read(self, conn: _Connection) -> None:
        """Every message of one connection, until it closes or falls silent."""
        cause = "the connection ended"
        try:
            while True:
                deadline = conn.alive_at + conn.keepalive + slack(conn.keepalive)
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await conn.ws.receive()
                except TimeoutError:
                    window = conn.keepalive + slack(conn.keepalive)
                    cause = f"silent for {window:g} s (keepalive {conn.keepalive} s)"
                    break
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self._on_text(conn, message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    self._bad_frame("a binary frame")
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    cause = describe_close(message.data, str(message.extra or ""))
                    log.warning("eventsub_ws_closed_by_twitch", channel=self.channel, cause=cause)
                    break
                else:  # CLOSING, CLOSED, ERROR: the socket is gone
                    cause = "replaced after session_reconnect" if conn.replaced else cause
                    break
        except Exception as exc:  # never let one connection's trouble end the channel
            cause = f"{type(exc).__name__}: {exc}"
            log.exception("eventsub_ws_reader_failed", channel=self.channel)
        finally:
            await _close_quietly(conn.ws)
            if not conn.ended.done():
                conn.ended.set_result(cause)

    async def _on_text(self, conn: _Connection, text: str) -> None:
        try:
            frame = parse_frame(text)
        except Malformed as exc:
            self._bad_frame(str(exc))
            return
        conn.alive_at = asyncio.get_running_loop().time()
        if isinstance(frame, Notification):
            await self._in_flight.acquire()
            self._spawn(self._deliver(frame))
        elif isinstance(frame, Keepalive):
            return
        elif isinstance(frame, Revocation):
            self._spawn(self._revoked(frame))
        elif isinstance(frame, Reconnect):
            self._follow(conn, frame)
        else:  # a second welcome: nothing to do with it
            log.info("eventsub_ws_unexpected_welcome", channel=self.channel)

    def _bad_frame(self, reason: str) -> None:
        self.t.stats.malformed += 1
        log.warning("eventsub_ws_bad_frame", channel=self.channel, reason=reason)

    async def _deliver(self, notification: Notification) -> None:
        try:
            with contextlib.suppress(Exception):  # logged by the dispatcher; nothing stayed
                await self.t.dispatcher.deliver(notification, transport=WEBSOCKET)
        finally:
            self._in_flight.release()

    async def _revoked(self, revocation: Revocation) -> None:
        subscription = revocation.subscription
        self.revoked.add(subscription.type)
        self.state.subscriptions[subscription.type] = SubscriptionState(
            subscription.type,
            "revoked",
            subscription.id,
            f"{subscription.status}: not created again until a reload",
            self.t.clock.now(),
        )
        await self.t.dispatcher.revocation(revocation, transport=WEBSOCKET)

    def _follow(self, old: _Connection, reconnect: Reconnect) -> None:
        """session_reconnect: the new connection, at once, at the URL as given."""
        if self._following is not None and not self._following.done():
            log.info("eventsub_ws_reconnect_already_following", channel=self.channel)
            return
        self._following = asyncio.create_task(self._switch(old, reconnect.url))

    async def _switch(self, old: _Connection, url: str) -> None:
        self.state.state = "reconnecting (session_reconnect)"
        try:
            new = await self._open(url, RECONNECT_WELCOME_WITHIN)
        except _OpenFailed as exc:
            log.warning("eventsub_ws_reconnect_failed", channel=self.channel, reason=str(exc))
            await _close_quietly(old.ws)  # a new session with new subscriptions instead
            return
        self.current = new
        old.replaced = True
        self.t.stats.session_reconnects += 1
        self.state.session_reconnects += 1
        self.state.session_id = new.session_id
        self.state.keepalive_seconds = new.keepalive
        self.state.state = "connected"
        log.info(
            "eventsub_ws_session_reconnected",
            channel=self.channel,
            old_session_id=old.session_id,
            session_id=new.session_id,
        )
        await _close_quietly(old.ws)  # only now, after the new welcome

    async def _close_all(self) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        conn = self.current
        if conn is not None:
            await _close_quietly(conn.ws)
            if conn.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await conn.reader

    def _spawn(self, coro: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        """Let notifications being committed finish (a stop never cuts one in half)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- subscriptions ---------------------------------------------------------------

    async def _subscriptions(
        self, helix: Helix, broadcaster_id: str, conn: _Connection, gap: Gap | None
    ) -> None:
        """Create them within Twitch's deadline, catch up after a gap, then keep them."""
        kinds = [
            kind
            for kind in await self.t.dispatcher.wanted(self.channel)
            if kind.type not in self.revoked | self.refused
        ]
        self.state.subscriptions = {
            t: s for t, s in self.state.subscriptions.items() if t in self.revoked | self.refused
        }
        started = asyncio.get_running_loop().time()
        results = await self._create(helix, broadcaster_id, conn.session_id, kinds)
        enabled = [s.type for s in results if s.status == "enabled"]
        refused = [s for s in results if s.status != "enabled"]
        if kinds and not enabled and all(s.http_status in (401, 403) for s in refused):
            self._fatal = (
                f"Twitch refused every subscription of #{self.channel} ({refused[0].detail});"
                f" run `loyaltybot auth --channel {self.channel}`, then reload"
            )
            await _close_quietly(conn.ws)
            return
        log.info(
            "eventsub_ws_subscribed",
            channel=self.channel,
            session_id=conn.session_id,
            types=enabled,
            failed=[s.type for s in refused],
            seconds=round(asyncio.get_running_loop().time() - started, 3),
        )
        self._healthy = True
        if gap is not None:
            gap.until = self.t.clock.now()
        recovered = await self._catch_up(broadcaster_id)
        if gap is not None:
            gap.recovered = recovered
            log.warning(
                "eventsub_events_may_have_been_missed",
                channel=self.channel,
                cause=gap.cause,
                down_seconds=round(gap.until - gap.since, 1) if gap.until else None,
                recovered_redemptions=recovered,
                note="Twitch replays nothing sent while the connection was down; unfulfilled"
                " redemptions of the bot's own rewards were fetched again",
            )
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync.wait(), self.t.resync_every)
            self._resync.clear()
            await self._resubscribe(helix, broadcaster_id)

    async def _catch_up(self, broadcaster_id: str) -> int:
        try:
            missed = await self.t.recover(self.channel, broadcaster_id)
            if not missed:
                return 0
            return await self.t.dispatcher.deliver_missed(
                missed, transport=WEBSOCKET, now=self.t.clock.now()
            )
        except Exception:
            log.exception("eventsub_catch_up_failed", channel=self.channel)
            return 0

    async def _resubscribe(self, helix: Helix, broadcaster_id: str) -> None:
        """Create what became needed (a bonus switched on, a revoked type after a reload)."""
        conn = self.current
        if conn is None or conn.ended.done():
            return
        have = {t for t, s in self.state.subscriptions.items() if s.status == "enabled"}
        skip = have | self.revoked | self.refused
        kinds = [k for k in await self.t.dispatcher.wanted(self.channel) if k.type not in skip]
        if kinds:
            created = await self._create(helix, broadcaster_id, conn.session_id, kinds)
            log.info(
                "eventsub_ws_subscriptions_added",
                channel=self.channel,
                types=[s.type for s in created if s.status == "enabled"],
                failed=[s.type for s in created if s.status != "enabled"],
            )

    async def _create(
        self, helix: Helix, broadcaster_id: str, session_id: str, kinds: Sequence[Kind]
    ) -> list[SubscriptionState]:
        """Create subscriptions on the session, all at once, within the deadline."""
        transport = {"method": "websocket", "session_id": session_id}
        tasks = {
            kind.type: asyncio.create_task(self._create_one(helix, broadcaster_id, kind, transport))
            for kind in kinds
        }
        if tasks:
            await asyncio.wait(tasks.values(), timeout=self.t.subscribe_within)
        results = []
        for kind in kinds:
            task = tasks[kind.type]
            if task.done() and not task.cancelled() and task.exception() is None:
                state = task.result()
            else:
                task.cancel()
                state = SubscriptionState(
                    kind.type,
                    "failed",
                    detail=f"not created within {self.t.subscribe_within:g} s",
                    at=self.t.clock.now(),
                )
            if state.http_status in (401, 403):
                self.refused.add(kind.type)
            self.state.subscriptions[kind.type] = state
            results.append(state)
        return results

    async def _create_one(
        self, helix: Helix, broadcaster_id: str, kind: Kind, transport: dict[str, str]
    ) -> SubscriptionState:
        now = self.t.clock.now()
        try:
            answer = await helix.request(
                "POST", "/eventsub/subscriptions", json=kind.body(broadcaster_id, transport)
            )
        except HelixError as exc:
            if exc.status == 409:  # it exists on this session already
                return SubscriptionState(kind.type, "enabled", detail="existed already", at=now)
            detail = f"HTTP {exc.status}: {exc.message}" if exc.status else exc.message
            if exc.status == 403 and kind.scopes:
                detail = (
                    f"the token of {self.channel} lacks {' or '.join(kind.scopes)}: run"
                    f" `loyaltybot auth --channel {self.channel}`"
                )
            log.warning(
                "eventsub_ws_subscription_failed",
                channel=self.channel,
                type=kind.type,
                status=exc.status,
                reason=detail,
            )
            return SubscriptionState(
                kind.type, "failed", detail=detail[:300], at=now, http_status=exc.status
            )
        data = answer.get("data") if isinstance(answer, dict) else None
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        status = str(item.get("status") or "enabled")
        return SubscriptionState(kind.type, status, str(item.get("id") or "") or None, at=now)


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse | None) -> None:
    if ws is not None and not ws.closed:
        with contextlib.suppress(Exception):
            await ws.close()
