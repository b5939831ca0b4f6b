"""EventSub over WebSocket (reference §7): Twitch's session server at ``GET /eventsub/ws``.

A connection gets a ``session_welcome`` (``?keepalive_timeout_seconds=`` honoured, clamped
to 10..600), then ``session_keepalive`` whenever no notification went out for 0.8 x that
window, and WebSocket Pings it must answer (4002 otherwise). Anything the client sends
but Pings and Pongs closes it with 4001; no subscription within ``subscribe_timeout``
closes it with 4003. Helix creates subscriptions on a session with the transport
``{"method": "websocket", "session_id": …}`` and a user token (``EventSub.create`` hands
those requests here); they are ``enabled`` at once and die with their connection, except
across a ``session_reconnect``, which moves them to the new session when its welcome goes
out.

The controls a test needs to be hard on a client are methods of ``EventSubWs``
(``sim.eventsub_ws``): ``resend`` (a duplicate with the same message id), ``silence``
and ``resume`` (a connection that looks dead), ``send_reconnect`` (with ``hold_welcome``
to slip a notification in between), ``revoke``, ``close`` (4000..4007) and ``drop``, and
``wait_session``/``wait_enabled``/``wait_closed``. Every message sent is in
``deliveries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog
from aiohttp import WSMsgType, web

from loyaltybot.clock import Clock
from loyaltybot.simulator.eventsub import EventSub, TypeSpec, matches_condition
from loyaltybot.simulator.httputil import HelixError, helix_error_response
from loyaltybot.simulator.world import Token, World, rfc3339

log = structlog.get_logger(__name__)

ENABLED: Final = "enabled"
DISCONNECTED: Final = "websocket_disconnected"
FAILED_TO_RECONNECT: Final = "websocket_failed_to_reconnect"
NETWORK_ERROR: Final = "websocket_network_error"
GOING_AWAY: Final = 1001

# Close codes with the reason text twitch-cli sends (reference §7.3), and the status the
# connection's subscriptions get in Get EventSub Subscriptions afterwards.
CLOSE_REASONS: Final[Mapping[int, str]] = {
    4000: "internal server error",
    4001: "sent inbound traffic",
    4002: "failed ping pong",
    4003: "connection unused",
    4004: "client reconnect grace time expired",
    4005: "network timeout",
    4006: "network error",
    4007: "invalid reconnect attempt",
}
CLOSE_STATUS: Final[Mapping[int, str]] = {
    4000: "websocket_internal_error",
    4001: "websocket_received_inbound_traffic",
    4002: "websocket_failed_ping_pong",
    4003: "websocket_connection_unused",
    4004: FAILED_TO_RECONNECT,
    4005: "websocket_network_timeout",
    4006: NETWORK_ERROR,
    4007: FAILED_TO_RECONNECT,
    GOING_AWAY: DISCONNECTED,
}
REVOCATION_STATUSES: Final = ("authorization_revoked", "user_removed", "version_removed")

_KEEP_ENDED_SESSIONS = 1000
_KEEP_DISABLED_SUBSCRIPTIONS = 10_000


def _json(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class WsSubscription:
    """A subscription with the WebSocket transport; ``session_id`` follows reconnects."""

    id: str
    type: str
    version: str
    condition: dict[str, str]
    session_id: str
    client_id: str
    user_id: str  # whose token created it
    created_at: str
    connected_at: str
    status: str = ENABLED
    cost: int = 0
    disconnected_at: str | None = None

    @property
    def owner(self) -> tuple[str, str]:
        return (self.client_id, self.user_id)

    def to_json(self) -> dict[str, Any]:
        """As Helix answers Create and Get (with ``connected_at``, ``disconnected_at``)."""
        transport: dict[str, Any] = {
            "method": "websocket",
            "session_id": self.session_id,
            "connected_at": self.connected_at,
        }
        if self.disconnected_at is not None:
            transport["disconnected_at"] = self.disconnected_at
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "version": self.version,
            "condition": self.condition,
            "created_at": self.created_at,
            "transport": transport,
            "cost": self.cost,
        }

    def envelope(self) -> dict[str, Any]:
        """As a notification's ``subscription`` object (reference §7.2 key order)."""
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "version": self.version,
            "cost": self.cost,
            "condition": self.condition,
            "transport": {"method": "websocket", "session_id": self.session_id},
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class WsDelivery:
    """One JSON message the simulator meant to send on a connection, and what became of it."""

    message_id: str
    message_type: str  # session_welcome | session_keepalive | notification | ...
    session_id: str
    timestamp: str  # metadata.message_timestamp
    text: str  # the frame, verbatim
    at: float  # the simulator clock's monotonic time
    subscription_id: str | None = None
    subscription_type: str | None = None
    sent: bool = False  # written to the socket
    dropped: bool = False  # withheld: the session was silenced
    duplicate: bool = False  # a ``resend``
    error: str | None = None  # not sent: the connection had ended

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


@dataclass(eq=False)
class WsSession:
    """One client connection and the session Twitch gave it."""

    id: str
    url: str  # ws://host:port/eventsub/ws, where reconnect URLs point
    connected_at: str
    keepalive_timeout: int
    ws: web.WebSocketResponse = field(repr=False)
    transport: asyncio.Transport | None = field(default=None, repr=False)
    status: str = "connected"  # connected | reconnecting | the status its subscriptions got
    owner: tuple[str, str] | None = None  # (client id, user id) of its subscriptions
    welcomed: bool = False
    ever_subscribed: bool = False
    closed: bool = False
    closed_by: Literal["server", "client", "network"] | None = None
    close_code: int | None = None
    reconnect_of: WsSession | None = field(default=None, repr=False)
    successor: WsSession | None = field(default=None, repr=False)
    pings_sent: int = 0
    pongs_received: int = 0
    client_pings: int = 0
    silent_until: float | None = None  # loop time; math.inf: until ``resume``
    ping_while_silent: bool = True
    last_message_at: float = 0.0  # loop time of the last welcome, keepalive or notification
    tasks: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    pong: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def open(self) -> bool:
        """Welcomed, not ended, and not yet replaced by a reconnect's new session."""
        return self.welcomed and not self.closed and self.successor is None

    def silent(self, now: float) -> bool:
        if self.silent_until is not None and now >= self.silent_until:
            self.silent_until = None
        return self.silent_until is not None


@dataclass(eq=False)
class WsReconnect:
    """A ``session_reconnect`` in flight: its URL, the old session and, once it connects,
    the new one. With ``hold_welcome`` the new welcome waits for ``release_welcome``."""

    token: str
    url: str
    old: WsSession
    hold_welcome: bool
    message: WsDelivery | None = None
    new: WsSession | None = None
    used: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    welcomed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_connected(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline)
    ) -> WsSession:
        """The new connection, once the client has opened ``url``."""
        await asyncio.wait_for(self.connected.wait(), timeout)
        return self._new()

    def _new(self) -> WsSession:
        if self.new is None:  # set before the events above
            raise RuntimeError("the reconnect has no new connection")
        return self.new

    def release_welcome(self) -> None:
        """Let a held welcome go out (subscriptions move to the new session then)."""
        self.released.set()

    async def wait_welcomed(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline)
    ) -> WsSession:
        """The new session, once its welcome went out and the subscriptions moved."""
        await asyncio.wait_for(self.welcomed.wait(), timeout)
        return self._new()


class EventSubWs:
    """Twitch's EventSub WebSocket server. Attach with ``EventSubWs(world, clock, eventsub)``
    (``Simulator`` does) and mount ``handle`` at ``GET /eventsub/ws``.

    Knobs are plain attributes, read when they are needed, so a test may change them
    before a client connects: ``keepalive_bounds`` (what ``keepalive_timeout_seconds`` is
    clamped to), ``keepalive_ratio`` (a keepalive goes out after that fraction of the
    window without a notification), ``ping_interval``/``pong_timeout``,
    ``subscribe_timeout`` (4003), ``reconnect_grace`` (4004), ``max_per_session``,
    ``max_connections`` and ``max_total_cost`` (reference §7.5), ``close_timeout`` (how long
    a close waits for the client's close frame).
    """

    def __init__(
        self,
        world: World,
        clock: Clock,
        eventsub: EventSub,
        *,
        keepalive_default: int = 10,
        keepalive_bounds: tuple[int, int] = (10, 600),
        keepalive_ratio: float = 0.8,
        ping_interval: float = 5.0,
        pong_timeout: float = 10.0,
        subscribe_timeout: float = 10.0,
        reconnect_grace: float = 30.0,
        max_per_session: int = 300,
        max_connections: int = 3,
        max_total_cost: int = 10,
        close_timeout: float = 2.0,
        history: int = 50_000,
    ) -> None:
        self.world = world
        self.clock = clock
        self.eventsub = eventsub
        self.keepalive_default = keepalive_default
        self.keepalive_bounds = keepalive_bounds
        self.keepalive_ratio = keepalive_ratio
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_grace = reconnect_grace
        self.max_per_session = max_per_session
        self.max_connections = max_connections
        self.max_total_cost = max_total_cost
        self.close_timeout = close_timeout
        self.sessions: dict[str, WsSession] = {}  # every session, ended ones too (the last 1000)
        self.subscriptions: list[WsSubscription] = []
        self.deliveries: deque[WsDelivery] = deque(maxlen=history)
        self.reconnects: dict[str, WsReconnect] = {}
        self._changed = asyncio.Event()
        eventsub.websocket = self

    # ---- looking ------------------------------------------------------------------------

    def session(self, session_id: str) -> WsSession:
        found = self.sessions.get(session_id)
        if found is None:
            raise KeyError(f"no EventSub WebSocket session {session_id!r}")
        return found

    def open_sessions(self) -> list[WsSession]:
        """Welcomed sessions whose connection is up and not replaced by a reconnect."""
        return [s for s in self.sessions.values() if s.open]

    def subscriptions_of(self, session_id: str, *, enabled: bool = True) -> list[WsSubscription]:
        return [
            s
            for s in self.subscriptions
            if s.session_id == session_id and (not enabled or s.status == ENABLED)
        ]

    def matching(self, sub_type: str, event: Mapping[str, Any]) -> list[WsSubscription]:
        """Enabled subscriptions on a live connection that this event falls under."""
        found = []
        for sub in self.subscriptions:
            if sub.type != sub_type or sub.status != ENABLED:
                continue
            session = self.sessions.get(sub.session_id)
            if (
                session is not None
                and not session.closed
                and matches_condition(sub.condition, event)
            ):
                found.append(sub)
        return found

    async def wait_session(
        self,
        count: int = 1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline, like wait_for_reply)
    ) -> list[WsSession]:
        """Wait until ``count`` sessions are open (welcomed, up); returns them, oldest first."""
        await self._wait(lambda: len(self.open_sessions()) >= count, timeout, f"{count} sessions")
        return self.open_sessions()

    async def wait_enabled(
        self,
        count: int = 1,
        *,
        session_id: str | None = None,
        sub_type: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline, like wait_for_reply)
    ) -> list[WsSubscription]:
        """Wait until ``count`` subscriptions (on that session, of that type) are enabled."""

        def enabled() -> list[WsSubscription]:
            return [
                s
                for s in self.subscriptions
                if s.status == ENABLED
                and (session_id is None or s.session_id == session_id)
                and (sub_type is None or s.type == sub_type)
            ]

        await self._wait(lambda: len(enabled()) >= count, timeout, f"{count} enabled {sub_type}")
        return enabled()

    async def wait_closed(
        self,
        session_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline, like wait_for_reply)
    ) -> WsSession:
        """Wait until that session's connection has ended, however it ended."""
        session = self.session(session_id)
        await self._wait(lambda: session.closed, timeout, f"session {session_id} closed")
        return session

    async def _wait(self, done: Callable[[], bool], within: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"EventSub WebSocket: not {what} within {within}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _touch(self) -> None:
        self._changed.set()

    # ---- the connection ----------------------------------------------------------------

    def keepalive_from(self, query: Mapping[str, str]) -> int:
        """``keepalive_timeout_seconds`` as Twitch takes it: a number is rounded and clamped
        to the nearest acceptable value; anything else is a ValueError (reference §7.1)."""
        low, high = self.keepalive_bounds
        raw = query.get("keepalive_timeout_seconds", "").strip()
        value = float(raw) if raw else float(self.keepalive_default)
        if not math.isfinite(value):
            raise ValueError(raw)
        return min(high, max(low, round(value)))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /eventsub/ws``: one client connection, from welcome to close."""
        try:
            keepalive = self.keepalive_from(request.query)
        except ValueError:
            return helix_error_response(
                400, "keepalive_timeout_seconds must be a number of seconds (10 to 600)"
            )
        ws = web.WebSocketResponse(
            autoping=False, compress=False, max_msg_size=64 * 1024, timeout=self.close_timeout
        )
        await ws.prepare(request)
        reconnect: WsReconnect | None = None
        token = request.query.get("reconnect_id")
        if token is not None:
            reconnect = self.reconnects.get(token)
            if reconnect is None or reconnect.used or reconnect.old.closed:
                log.info("sim_eventsub_ws_invalid_reconnect")
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.close(code=4007, message=CLOSE_REASONS[4007].encode())
                return ws
            reconnect.used = True
            keepalive = reconnect.old.keepalive_timeout
        session = WsSession(
            id=_session_id(),
            url=str(request.url.with_scheme("ws").with_query(None)),
            connected_at=self._stamp(),
            keepalive_timeout=keepalive,
            ws=ws,
            transport=request.transport,
            reconnect_of=reconnect.old if reconnect is not None else None,
        )
        self.sessions[session.id] = session
        self._spawn(session, self._start(session, reconnect))
        self._spawn(session, self._ping_loop(session))
        log.debug("sim_eventsub_ws_connected", session=session.id, reconnect=token is not None)
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._close(session, 4001)
                elif msg.type is WSMsgType.PING:
                    session.client_pings += 1  # tolerated: reference §7.1 leaves it open
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    session.pongs_received += 1
                    session.pong.set()
                else:  # CLOSE (answered by aiohttp), CLOSING, CLOSED, ERROR
                    break
        except (ConnectionError, RuntimeError):
            pass
        finally:
            if not session.closed:
                session.close_code = ws.close_code
                self._end(session, DISCONNECTED, "client")
        return ws

    async def _start(self, session: WsSession, reconnect: WsReconnect | None) -> None:
        """The welcome (after a held reconnect is released), then the session's timers."""
        if reconnect is not None:
            reconnect.new = session
            reconnect.connected.set()
            self._touch()
            if reconnect.hold_welcome:
                await reconnect.released.wait()
            if reconnect.old.closed:  # ended before the new welcome: nothing to carry over
                await self._close(session, 4007)
                return
        message = self._message(
            "session_welcome",
            {
                "session": {
                    "id": session.id,
                    "status": "connected",
                    "connected_at": session.connected_at,
                    "keepalive_timeout_seconds": session.keepalive_timeout,
                    "reconnect_url": None,
                }
            },
        )
        async with session.lock:  # the welcome goes out before anything sent to the new session
            if reconnect is not None:
                self._move(reconnect.old, session)
            await self._write(session, message, "session_welcome", locked=True)
            session.welcomed = True
        self._touch()
        if reconnect is not None:
            reconnect.welcomed.set()
        self._spawn(session, self._keepalive_loop(session))
        if not session.ever_subscribed:
            self._spawn(session, self._unused_timer(session))

    def _move(self, old: WsSession, new: WsSession) -> None:
        """A reconnect's welcome: the old session's subscriptions now belong to the new one."""
        for sub in self.subscriptions_of(old.id):
            sub.session_id = new.id
            sub.connected_at = new.connected_at
        new.owner = old.owner
        new.ever_subscribed = old.ever_subscribed
        old.successor = new
        log.info("sim_eventsub_ws_reconnected", old=old.id, new=new.id)

    async def _keepalive_loop(self, session: WsSession) -> None:
        loop = asyncio.get_running_loop()
        while not session.closed and session.successor is None:
            session.wake.clear()
            now = loop.time()
            if session.silent(now):
                await _sleep_or_wake(session.wake, (session.silent_until or now) - now)
                continue
            due = session.last_message_at + self.keepalive_ratio * session.keepalive_timeout
            if due > now:
                await _sleep_or_wake(session.wake, due - now)
                continue
            await self._write(session, self._message("session_keepalive", {}), "session_keepalive")

    async def _ping_loop(self, session: WsSession) -> None:
        """Ping every ``ping_interval``; no Pong within ``pong_timeout`` closes with 4002."""
        loop = asyncio.get_running_loop()
        while not session.closed:
            await asyncio.sleep(self.ping_interval)
            if session.closed or (session.silent(loop.time()) and not session.ping_while_silent):
                continue
            session.pong.clear()
            try:
                await session.ws.ping()
            except (ConnectionError, RuntimeError):
                return
            session.pings_sent += 1
            try:
                await asyncio.wait_for(session.pong.wait(), self.pong_timeout)
            except TimeoutError:
                await self._close(session, 4002)
                return

    async def _unused_timer(self, session: WsSession) -> None:
        await asyncio.sleep(self.subscribe_timeout)
        if not session.ever_subscribed:
            await self._close(session, 4003)

    async def _grace_timer(self, reconnect: WsReconnect, grace: float) -> None:
        await asyncio.sleep(grace)
        await self._close(reconnect.old, 4004)

    def _spawn(self, session: WsSession, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)
        task.add_done_callback(_log_failure)

    # ---- sending -----------------------------------------------------------------------

    def _stamp(self) -> str:
        return rfc3339(self.clock.now(), nanos=True)

    def _message(
        self,
        message_type: str,
        payload: dict[str, Any],
        *,
        sub: WsSubscription | None = None,
        message_id: str | None = None,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "message_id": message_id or str(uuid.uuid4()),
            "message_type": message_type,
            "message_timestamp": timestamp or self._stamp(),
        }
        if sub is not None:  # notification and revocation only (reference §7.1)
            metadata["subscription_type"] = sub.type
            metadata["subscription_version"] = sub.version
        return {"metadata": metadata, "payload": payload}

    async def _write(
        self,
        session: WsSession,
        message: Mapping[str, Any],
        message_type: str,
        *,
        sub: WsSubscription | None = None,
        text: str | None = None,
        duplicate: bool = False,
        locked: bool = False,
    ) -> WsDelivery:
        """Send one message on a connection and record it (withheld while silenced)."""
        metadata = message["metadata"]
        delivery = WsDelivery(
            message_id=metadata["message_id"],
            message_type=message_type,
            session_id=session.id,
            timestamp=metadata["message_timestamp"],
            text=text if text is not None else _json(message),
            at=self.clock.monotonic(),
            subscription_id=sub.id if sub is not None else None,
            subscription_type=sub.type if sub is not None else None,
            duplicate=duplicate,
        )
        self.deliveries.append(delivery)
        loop = asyncio.get_running_loop()
        silenceable = message_type in ("session_keepalive", "notification", "revocation")
        if session.closed:
            delivery.error = "connection ended"
        elif silenceable and session.silent(loop.time()):
            delivery.dropped = True
        else:
            try:
                if locked:
                    await session.ws.send_str(delivery.text)
                else:
                    async with session.lock:
                        await session.ws.send_str(delivery.text)
                delivery.sent = True
            except (ConnectionError, RuntimeError) as exc:
                delivery.error = type(exc).__name__
            if message_type in ("session_welcome", "session_keepalive", "notification"):
                session.last_message_at = loop.time()  # what resets the client's timer, too
                session.wake.set()
        self._touch()
        return delivery

    async def notify(
        self,
        sub_type: str,
        event: Mapping[str, Any],
        *,
        message_id: str | None = None,
        timestamp: str | None = None,
    ) -> list[WsDelivery]:
        """A notification to every matching subscription (``EventSub.send``/``notify`` call
        this, so the ``Simulator`` event helpers reach WebSocket clients too)."""
        deliveries = []
        for sub in self.matching(sub_type, event):
            message = self._message(
                "notification",
                {"subscription": sub.envelope(), "event": dict(event)},
                sub=sub,
                message_id=message_id,
                timestamp=timestamp,
            )
            session = self.sessions[sub.session_id]
            deliveries.append(await self._write(session, message, "notification", sub=sub))
        return deliveries

    # ---- test controls -----------------------------------------------------------------

    async def resend(self, message_id: str) -> WsDelivery:
        """Send a message again, byte for byte (same message id and timestamp): Twitch's
        at-least-once. It goes to the session that now carries its subscription (after a
        reconnect, the new one), else to the session it first went to."""
        sent = (d for d in reversed(self.deliveries) if not d.duplicate)
        original = next((d for d in sent if d.message_id == message_id), None)
        if original is None:
            raise KeyError(f"no WebSocket message with id {message_id}")
        sub = next((s for s in self.subscriptions if s.id == original.subscription_id), None)
        target = self.sessions.get(original.session_id)
        if sub is not None and sub.status == ENABLED and sub.session_id in self.sessions:
            target = self.sessions[sub.session_id]
        if target is None:
            raise KeyError(f"the session of message {message_id} is gone")
        return await self._write(
            target,
            original.data,
            original.message_type,
            sub=sub,
            text=original.text,
            duplicate=True,
        )

    def silence(self, session_id: str, seconds: float | None = None, *, pings: bool = True) -> None:
        """No keepalives, notifications or revocations for ``seconds`` (None: until
        ``resume``); what would have gone out is recorded as ``dropped`` and never sent
        (Twitch replays nothing). Pings go on unless ``pings=False``: a client must not
        take Pings for a sign of life (SPEC §6.1)."""
        session = self.session(session_id)
        now = asyncio.get_running_loop().time()
        session.silent_until = math.inf if seconds is None else now + seconds
        session.ping_while_silent = pings
        session.wake.set()

    def resume(self, session_id: str) -> None:
        """End a ``silence``; a keepalive goes out at once if one is overdue."""
        session = self.session(session_id)
        session.silent_until = None
        session.wake.set()

    async def send_reconnect(
        self, session_id: str, *, hold_welcome: bool = False, grace: float | None = None
    ) -> WsReconnect:
        """``session_reconnect`` with a fresh ``reconnect_url`` (``?reconnect_id=<token>``).

        The old connection keeps getting events until the new one's welcome (a new session
        id) goes out; then its subscriptions move there. ``hold_welcome`` keeps that welcome
        back until ``release_welcome()``, so a test can emit an event in between. If the old
        connection is still open after ``grace`` seconds (default ``reconnect_grace``), it
        is closed with 4004; if the client never got to the new session by then, the
        subscriptions die with it.
        """
        old = self.session(session_id)
        if not old.open:
            raise ValueError(f"session {session_id} is not open")
        if old.status == "reconnecting":
            raise ValueError(f"session {session_id} was already told to reconnect")
        token = secrets.token_urlsafe(24)
        reconnect = WsReconnect(token, f"{old.url}?reconnect_id={token}", old, hold_welcome)
        self.reconnects[token] = reconnect
        old.status = "reconnecting"
        message = self._message(
            "session_reconnect",
            {
                "session": {
                    "id": old.id,
                    "status": "reconnecting",
                    "keepalive_timeout_seconds": None,
                    "reconnect_url": reconnect.url,
                    "connected_at": old.connected_at,
                }
            },
        )
        reconnect.message = await self._write(old, message, "session_reconnect")
        grace = self.reconnect_grace if grace is None else grace
        self._spawn(old, self._grace_timer(reconnect, grace))
        return reconnect

    async def revoke(
        self, subscription_id: str, status: str = "authorization_revoked"
    ) -> WsDelivery | None:
        """A ``revocation`` message for that subscription; nothing is sent for it afterwards.
        Returns the delivery (None, and no change, if it was no longer enabled)."""
        if status not in REVOCATION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(REVOCATION_STATUSES)}")
        sub = next((s for s in self.subscriptions if s.id == subscription_id), None)
        if sub is None:
            raise KeyError(f"no WebSocket subscription {subscription_id}")
        if sub.status != ENABLED:  # revoked already, or its connection ended
            return None
        sub.status = status
        self._touch()
        session = self.sessions.get(sub.session_id)
        if session is None or session.closed:
            return None
        message = self._message("revocation", {"subscription": sub.envelope()}, sub=sub)
        return await self._write(session, message, "revocation", sub=sub)

    async def close(self, session_id: str, code: int = 4000, reason: str | None = None) -> None:
        """Close a connection as Twitch would, with a 4000..4007 code and its reason text."""
        if code not in CLOSE_REASONS:
            raise ValueError(f"close code must be one of {sorted(CLOSE_REASONS)}")
        await self._close(self.session(session_id), code, reason)

    async def drop(self, session_id: str) -> None:
        """Cut the TCP connection without a close frame (a network failure)."""
        session = self.session(session_id)
        if session.closed:
            return
        self._end(session, NETWORK_ERROR, "network")
        if session.transport is not None:
            session.transport.abort()

    async def shutdown(self) -> None:
        """Close every connection (1001, going away) and stop every timer: ``sim.close()``."""
        sessions = [s for s in self.sessions.values() if not s.closed]
        await asyncio.gather(
            *(self._close(s, GOING_AWAY, "server going away") for s in sessions),
            return_exceptions=True,
        )
        for session in self.sessions.values():
            for task in list(session.tasks):
                task.cancel()
            for task in list(session.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _close(self, session: WsSession, code: int, reason: str | None = None) -> None:
        if session.closed:
            return
        session.close_code = code
        self._end(session, CLOSE_STATUS.get(code, DISCONNECTED), "server")
        log.info("sim_eventsub_ws_closed", session=session.id, code=code)
        text = reason if reason is not None else CLOSE_REASONS.get(code, "")
        with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
            await session.ws.close(code=code, message=text.encode())

    def _end(
        self, session: WsSession, status: str, by: Literal["server", "client", "network"]
    ) -> None:
        """The connection is over: its timers stop and its subscriptions are disabled."""
        session.closed = True
        session.closed_by = by
        session.status = status
        stamp = self._stamp()
        for sub in self.subscriptions_of(session.id):
            sub.status = status
            sub.disconnected_at = stamp
        current = asyncio.current_task()
        for task in list(session.tasks):
            if task is not current:
                task.cancel()
        session.wake.set()
        self._prune()
        self._touch()
        log.debug("sim_eventsub_ws_ended", session=session.id, status=status, by=by)

    def _prune(self) -> None:
        """Bounded history: the last 1000 ended sessions, 10,000 disabled subscriptions."""
        ended = [k for k, s in self.sessions.items() if s.closed]
        for key in ended[: max(0, len(ended) - _KEEP_ENDED_SESSIONS)]:
            del self.sessions[key]
        self.reconnects = {k: r for k, r in self.reconnects.items() if not r.old.closed}
        disabled = [s for s in self.subscriptions if s.status != ENABLED]
        if len(disabled) > _KEEP_DISABLED_SUBSCRIPTIONS:
            gone = {id(s) for s in disabled[: len(disabled) - _KEEP_DISABLED_SUBSCRIPTIONS]}
            self.subscriptions = [s for s in self.subscriptions if id(s) not in gone]

    # ---- Helix: create / list / delete ---------------------------------------------------

    def create(
        self,
        token: Token,
        kind: str,
        version: str,
        spec: TypeSpec,
        condition: Any,
        transport: Mapping[str, Any],
    ) -> dict[str, Any]:
        """POST /eventsub/subscriptions with the WebSocket transport (reference §7.4, §7.5)."""
        if token.user is None:
            raise HelixError(400, "invalid transport and auth combination")
        session_id = transport.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise HelixError(
                400,
                "The session_id field is required if you specify the WebSocket transport method",
            )
        session = self.sessions.get(session_id)
        if session is None or not session.open:
            raise HelixError(
                400, "websocket transport session does not exist or has already disconnected"
            )
        owner = (token.client_id, token.user.id)
        if session.owner is not None and session.owner != owner:
            raise HelixError(
                400, "websocket transport cannot have subscriptions created by different users"
            )
        checked = self.eventsub.check_condition(spec, kind, condition, token, authorize=False)
        self._authorize(spec, checked, token)
        here = self.subscriptions_of(session.id)
        if any(s.type == kind and s.version == version and s.condition == checked for s in here):
            raise HelixError(409, "subscription already exists")
        if len(here) >= self.max_per_session:
            raise HelixError(
                429, f"websocket transport limit of {self.max_per_session} subscriptions exceeded"
            )
        mine = [s for s in self.subscriptions if s.status == ENABLED and s.owner == owner]
        if not here and len({s.session_id for s in mine}) >= self.max_connections:
            raise HelixError(429, "number of websocket transports limit exceeded")
        cost = self._cost(spec, checked, token.client_id)
        if cost and sum(s.cost for s in mine) + cost > self.max_total_cost:
            raise HelixError(429, "total cost exceeded")
        sub = WsSubscription(
            id=str(uuid.uuid4()),
            type=kind,
            version=version,
            condition=checked,
            session_id=session.id,
            client_id=token.client_id,
            user_id=token.user.id,
            created_at=self._stamp(),
            connected_at=session.connected_at,
            cost=cost,
        )
        self.subscriptions.append(sub)
        session.owner = owner
        session.ever_subscribed = True
        self._touch()
        log.info("sim_eventsub_ws_subscribed", session=session.id, subscription=kind)
        mine.append(sub)
        return {
            "data": [sub.to_json()],
            "total": len(mine),
            "total_cost": sum(s.cost for s in mine),
            "max_total_cost": self.max_total_cost,
        }

    def _authorize(self, spec: TypeSpec, condition: Mapping[str, str], token: Token) -> None:
        """The user token itself must carry the type's scope and be the user who grants it."""
        if not self.eventsub.require_authorization or not spec.scopes:
            return
        if not set(spec.scopes) & set(token.scopes):
            raise HelixError(
                403,
                "subscription missing proper authorization: the token lacks"
                f" {' or '.join(spec.scopes)}",
            )
        user_id = token.user.id if token.user is not None else None
        if spec.authorizer and condition[spec.authorizer] != user_id:
            raise HelixError(
                403,
                f"subscription missing proper authorization: {spec.authorizer} must be the"
                " token's user",
            )

    def _cost(self, spec: TypeSpec, condition: Mapping[str, str], client_id: str) -> int:
        """0 when the type needs authorization or a user in the condition has authorized the
        client; 1 otherwise (reference §7.4)."""
        if spec.scopes:
            return 0
        users = (v for k, v in condition.items() if k.endswith("user_id"))
        return 0 if any((u, client_id) in self.world.grants for u in users) else 1

    def listing(self, token: Token, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /eventsub/subscriptions with a user token: the WebSocket subscriptions that
        user created with this client, ended ones too (with ``disconnected_at``)."""
        owner = (token.client_id, token.user.id if token.user else "")
        subs = [s for s in self.subscriptions if s.owner == owner]
        if query.get("status"):
            subs = [s for s in subs if s.status == query["status"]]
        if query.get("type"):
            subs = [s for s in subs if s.type == query["type"]]
        if query.get("user_id"):
            subs = [s for s in subs if query["user_id"] in s.condition.values()]
        if query.get("subscription_id"):
            subs = [s for s in subs if s.id == query["subscription_id"]]
        enabled = [s for s in self.subscriptions if s.owner == owner and s.status == ENABLED]
        return {
            "total": len(subs),
            "data": [s.to_json() for s in subs],
            "total_cost": sum(s.cost for s in enabled),
            "max_total_cost": self.max_total_cost,
            "pagination": {},
        }

    def delete(self, token: Token, sub_id: str) -> None:
        """DELETE /eventsub/subscriptions with a user token (204, or 404)."""
        owner = (token.client_id, token.user.id if token.user else "")
        for sub in self.subscriptions:
            if sub.id == sub_id and sub.owner == owner:
                self.subscriptions.remove(sub)
                self._touch()
                return
        raise HelixError(404, "subscription not found")


def _session_id() -> str:
    """Shaped like Twitch's (``AQoQ…``); only its uniqueness matters."""
    return "AQoQ" + secrets.token_urlsafe(21)


async def _sleep_or_wake(wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` (inf: until woken), or less if ``wake`` is set meanwhile."""
    if math.isinf(seconds):
        await wake.wait()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), max(0.0, seconds))


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.warning("sim_eventsub_ws_task_failed", error=f"{type(exc).__name__}: {exc}")
