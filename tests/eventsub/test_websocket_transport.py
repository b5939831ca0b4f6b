"""The WebSocket transport against a scripted Twitch: what the simulator will not do on
purpose (garbage frames), and the rules checked frame by frame: nothing but Pongs is sent,
Pings are no sign of life, every close code of reference §7.3 leads to a new session with
backoff, subscriptions are created only for what the features want.

The real dispatcher over a real SQLite file; Helix's Create Subscription and the socket
are one aiohttp app on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from structlog.testing import capture_logs

from loyaltybot.clock import SystemClock
from loyaltybot.config import Secret
from loyaltybot.db import open_store
from loyaltybot.eventsub.dispatch import Dispatcher
from loyaltybot.eventsub.events import STREAM_ONLINE, Follow, StreamOffline, StreamOnline
from loyaltybot.eventsub.status import EventSubStatus
from loyaltybot.eventsub.websocket import EventSubWebSocket
from loyaltybot.points.bank import Bank
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import StaticToken

pytestmark = pytest.mark.timeout(60)

BROADCASTER_ID = "1337"
Script = Callable[["Conn"], Awaitable[None]]


def message(kind: str, payload: dict[str, Any], **metadata: str) -> str:
    meta = {
        "message_id": str(uuid.uuid4()),
        "message_type": kind,
        "message_timestamp": "2024-01-01T00:00:00.000000000Z",
        **metadata,
    }
    return json.dumps({"metadata": meta, "payload": payload})


def welcome(session_id: str, keepalive: int = 1) -> str:
    session = {"id": session_id, "status": "connected", "keepalive_timeout_seconds": keepalive}
    return message("session_welcome", {"session": {**session, "reconnect_url": None}})


def stream_online(message_id: str | None = None) -> str:
    sub = {
        "id": "sub-1",
        "status": "enabled",
        "type": STREAM_ONLINE,
        "version": "1",
        "condition": {"broadcaster_user_id": BROADCASTER_ID},
        "transport": {"method": "websocket", "session_id": "S"},
    }
    event = {
        "id": "9001",
        "broadcaster_user_id": BROADCASTER_ID,
        "broadcaster_user_login": "alice",
        "broadcaster_user_name": "Alice",
        "type": "live",
        "started_at": "2024-01-01T00:00:00Z",
    }
    extra = {"message_id": message_id} if message_id else {}
    return message("notification", {"subscription": sub, "event": event}, **extra)


@dataclass
class Conn:
    """One client connection as the fake Twitch sees it."""

    ws: web.WebSocketResponse
    session_id: str
    received: list[WSMsgType] = field(default_factory=list)  # what the client sent
    pongs: int = 0

    async def keepalives(self, every: float = 0.3) -> None:
        while not self.ws.closed:
            await self.ws.send_str(message("session_keepalive", {}))
            await asyncio.sleep(every)


@dataclass
class FakeTwitch:
    scripts: list[Script]
    conns: list[Conn] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    refuse: int | None = None  # answer every Create Subscription with this status
    url: str = ""

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = Conn(ws, f"S{len(self.conns) + 1}")
        self.conns.append(conn)
        script = self.scripts[min(len(self.conns), len(self.scripts)) - 1]
        runner = asyncio.create_task(script(conn))
        async for msg in ws:
            conn.received.append(msg.type)
            if msg.type is WSMsgType.PONG:
                conn.pongs += 1
        runner.cancel()
        return ws

    async def create(self, request: web.Request) -> web.Response:
        if self.refuse is not None:
            return web.json_response({"message": "missing scope"}, status=self.refuse)
        body = await request.json()
        self.created.append(body)
        data = {"id": str(uuid.uuid4()), "status": "enabled", **body}
        return web.json_response({"data": [data], "total": len(self.created)}, status=202)


@pytest.fixture
async def fake() -> AsyncIterator[Callable[..., Awaitable[FakeTwitch]]]:
    runners: list[web.AppRunner] = []

    async def start(*scripts: Script) -> FakeTwitch:
        twitch = FakeTwitch(list(scripts))
        app = web.Application()
        app.router.add_get("/ws", twitch.socket)
        app.router.add_post("/helix/eventsub/subscriptions", twitch.create)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        twitch.url = f"127.0.0.1:{runner.addresses[0][1]}"
        return twitch

    yield start
    for runner in runners:
        await runner.cleanup()


@dataclass
class Running:
    transport: EventSubWebSocket
    dispatcher: Dispatcher
    seen: list[object]


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    closers: list[Callable[[], Awaitable[None]]] = []

    async def start(
        twitch: FakeTwitch,
        *,
        wanted: set[type] | None = None,
        backoff: tuple[float, float] = (0.05, 0.4),
        resync_every: float = 60.0,
    ) -> Running:
        store = await open_store(tmp_path / "bot.db", clock=SystemClock())
        bank = Bank(store)
        await bank.ensure_channels(["alice"])
        dispatcher = Dispatcher(
            store=store, bank=bank, channels=["alice"], status=EventSubStatus("websocket")
        )
        seen: list[object] = []

        def handle(tx: object, routed: Any) -> None:
            seen.append(routed.event)

        async def wants(channel: str) -> frozenset[type]:
            return frozenset(wanted if wanted is not None else {StreamOnline, StreamOffline})

        dispatcher.register(dict.fromkeys((StreamOnline, StreamOffline, Follow), handle), wants)
        await dispatcher.start()
        http = aiohttp.ClientSession()
        token = StaticToken(Secret("token"))
        clients = SimpleNamespace(
            tokens=SimpleNamespace(
                broadcaster=lambda channel: SimpleNamespace(user_id=BROADCASTER_ID), problems={}
            ),
            broadcaster=lambda channel: Helix(http, f"http://{twitch.url}/helix", "cid", token),
        )

        async def nothing(channel: str, broadcaster_id: str) -> list[Any]:
            return []

        transport = EventSubWebSocket(
            dispatcher,
            clients=clients,  # type: ignore[arg-type]  # the two calls it makes
            http=http,
            url=f"ws://{twitch.url}/ws",
            clock=SystemClock(),
            recover=nothing,
            backoff=backoff,
            resync_every=resync_every,
        )
        transport.start(["alice"])

        async def close() -> None:
            await transport.close()
            await dispatcher.close()
            await http.close()
            await store.close()

        closers.append(close)
        return Running(transport, dispatcher, seen)

    yield start
    for close in closers:
        await close()


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s")


# ---- the scripts ------------------------------------------------------------------------------


async def healthy(conn: Conn) -> None:
    await conn.ws.send_str(welcome(conn.session_id))
    await conn.keepalives()


# ---- tests ------------------------------------------------------------------------------------


async def test_subscribes_to_what_the_features_want_and_sends_nothing_but_pongs(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """After the welcome: the wanted kinds, with the session id and the broadcaster's id;
    a Ping is answered with a Pong, and the client sends nothing else."""

    async def pinged(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        await conn.ws.ping(b"are you there")
        await conn.keepalives()

    twitch = await fake(pinged)
    running = await run(twitch)
    await until(lambda: len(twitch.created) == 2 and twitch.conns[0].pongs == 1)
    assert [c["type"] for c in twitch.created] == ["stream.online", "stream.offline"]
    assert twitch.created[0]["transport"] == {"method": "websocket", "session_id": "S1"}
    assert twitch.created[0]["condition"] == {"broadcaster_user_id": BROADCASTER_ID}
    await asyncio.sleep(0.5)
    assert twitch.conns[0].received == [WSMsgType.PONG]
    state = running.dispatcher.status.channel("alice")
    assert (state.state, state.session_id) == ("connected", "S1")
    assert {t: s.status for t, s in state.subscriptions.items()} == {
        "stream.online": "enabled",
        "stream.offline": "enabled",
    }


async def test_bad_frames_are_one_line_each_and_change_nothing(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """Garbage, a binary frame and a notification without an event are logged and
    dropped; the connection stays, and the next good notification is handled."""

    async def garbage(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        await conn.ws.send_str("{not json")
        await conn.ws.send_bytes(b"\x00\x01")
        broken = json.loads(stream_online())
        del broken["payload"]["event"]
        await conn.ws.send_str(json.dumps(broken))
        await conn.ws.send_str(stream_online())
        await conn.keepalives()

    twitch = await fake(garbage)
    with capture_logs() as logs:
        running = await run(twitch)
        await until(lambda: len(running.seen) == 1)
    bad = [e for e in logs if e["event"] == "eventsub_ws_bad_frame"]
    assert [e["reason"] for e in bad] == [
        "the frame is not JSON",
        "a binary frame",
        "notification without an event",
    ]
    assert running.transport.stats.malformed == 3
    assert len(twitch.conns) == 1 and not any(e["log_level"] == "error" for e in logs)
    assert isinstance(running.seen[0], StreamOnline)


async def test_pings_are_no_sign_of_life(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """Pings but no keepalive past the window (1 s + 0.5 s): the connection is dead, a new
    one is opened and subscribed again; the gap is shown."""

    async def pings_only(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        while not conn.ws.closed:
            await conn.ws.ping()
            await asyncio.sleep(0.2)

    twitch = await fake(pings_only, healthy)
    running = await run(twitch)
    await until(lambda: len(twitch.conns) == 2 and len(twitch.created) == 4, within=10)
    assert twitch.created[2]["transport"]["session_id"] == "S2"
    state = running.dispatcher.status.channel("alice")
    assert state.reconnects == 1 and len(state.gaps) == 1
    assert "silent for 1.5 s" in state.gaps[0].cause
    assert twitch.conns[0].pongs >= 3  # answered, and still taken for dead


@pytest.mark.parametrize("code", range(4000, 4008))
async def test_every_close_code_leads_to_a_new_session(
    code: int, fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """Twitch closes with 4000..4007: logged with its meaning, then a new connection whose
    subscriptions are created again."""

    async def closed(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        await asyncio.sleep(0.1)
        await conn.ws.close(code=code, message=b"closing")

    twitch = await fake(closed, healthy)
    with capture_logs() as logs:
        running = await run(twitch)
        await until(lambda: len(twitch.conns) == 2 and len(twitch.created) == 4)
    [closed_line] = [e for e in logs if e["event"] == "eventsub_ws_closed_by_twitch"]
    assert closed_line["cause"].startswith(f"close {code}: ")
    assert running.dispatcher.status.channel("alice").session_id == "S2"


async def test_failures_back_off_doubling(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """A server that never welcomes: each attempt waits at least twice as long as the one
    before, up to the ceiling (here 0.1 s doubling to 0.8 s), and no longer."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def refuse(conn: Conn) -> None:
        times.append(loop.time())
        await conn.ws.close(code=4000)

    twitch = await fake(refuse)
    await run(twitch, backoff=(0.1, 0.8))
    await until(lambda: len(times) >= 6, within=15)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    waits = (0.1, 0.2, 0.4, 0.8, 0.8)
    assert all(g >= w - 0.01 for g, w in zip(gaps, waits, strict=False)), gaps
    assert gaps[4] < 1.6, gaps  # the ceiling holds


async def test_a_notification_on_two_connections_is_handled_once(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """session_reconnect: the same message id on the old and the new connection (Twitch's
    at-least-once) has one effect; the old connection is closed after the new welcome."""
    twitch: FakeTwitch

    async def old(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        await asyncio.sleep(0.2)
        session = {
            "id": conn.session_id,
            "status": "reconnecting",
            "keepalive_timeout_seconds": None,
            "reconnect_url": f"ws://{twitch.url}/ws?reconnect=1",
        }
        await conn.ws.send_str(message("session_reconnect", {"session": session}))
        await conn.ws.send_str(stream_online("same-id"))
        await conn.keepalives()

    async def new(conn: Conn) -> None:
        await asyncio.sleep(0.2)
        await conn.ws.send_str(welcome(conn.session_id))
        await conn.ws.send_str(stream_online("same-id"))
        await conn.keepalives()

    twitch = await fake(old, new)
    running = await run(twitch)
    await until(lambda: len(twitch.conns) == 2 and twitch.conns[0].ws.closed)
    await until(lambda: running.dispatcher.stats.duplicates == 1)
    assert len(running.seen) == 1
    assert len(twitch.created) == 2  # the subscriptions carried over: none created again
    state = running.dispatcher.status.channel("alice")
    assert (state.session_id, state.session_reconnects, state.reconnects) == ("S2", 1, 0)
    assert not state.gaps


async def test_a_refusal_of_every_subscription_for_the_token_stops_until_reload(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """403 for everything: no reconnect storm; the problem says to run auth, then reload."""
    twitch = await fake(healthy)
    twitch.refuse = 403
    running = await run(twitch, wanted={Follow})
    await until(lambda: running.dispatcher.status.channel("alice").state == "stopped")
    problem = running.dispatcher.status.channel("alice").problem or ""
    assert "lacks moderator:read:followers" in problem
    assert "`loyaltybot auth --channel alice`, then reload" in problem
    await asyncio.sleep(0.3)
    assert len(twitch.conns) == 1


async def test_one_outage_is_one_gap_however_many_attempts_fail(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """The connection drops, two attempts fail, the third works: one gap (closed when the
    new session is subscribed), one reconnect, and the failures said in the log."""

    async def dropped(conn: Conn) -> None:
        await conn.ws.send_str(welcome(conn.session_id))
        await asyncio.sleep(0.3)
        await conn.ws.close(code=4006)

    async def refused(conn: Conn) -> None:
        await conn.ws.close(code=4000)

    twitch = await fake(dropped, refused, refused, healthy)
    with capture_logs() as logs:
        running = await run(twitch)
        state = running.dispatcher.status.channel("alice")
        await until(lambda: state.session_id == "S4" and bool(state.gaps) and state.gaps[0].until)
    assert (len(state.gaps), state.reconnects) == (1, 1)
    assert state.gaps[0].cause.startswith("close 4006: network error")
    failed = [e for e in logs if e["event"] == "eventsub_ws_attempt_failed"]
    assert [e["cause"][:10] for e in failed] == ["close 4000", "close 4000"]
    assert running.transport.stats.gaps == 1


async def test_a_kind_wanted_later_is_subscribed_on_the_same_session(
    fake: Callable[..., Awaitable[FakeTwitch]], run: Callable[..., Awaitable[Running]]
) -> None:
    """A bonus switched on after the welcome: its subscription is created on the session
    at the next check, without a new connection."""
    twitch = await fake(healthy)
    wanted: set[type] = {StreamOnline}
    await run(twitch, wanted=wanted, resync_every=0.2)
    await until(lambda: len(twitch.created) == 1)
    wanted.add(Follow)
    await until(lambda: len(twitch.created) == 2)
    assert twitch.created[1]["type"] == "channel.follow"
    assert twitch.created[1]["transport"]["session_id"] == "S1"
    assert len(twitch.conns) == 1
