"""The simulator's EventSub over WebSocket (reference §7), against a plain aiohttp client.

Each test shortens the one timer it is about (keepalive, ping, subscribe deadline,
reconnect grace) so the whole module runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from loyaltybot.simulator import BROADCASTER_SCOPES, NoSubscription, Simulator, payloads

REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"
NANO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
NO_SESSION = "websocket transport session does not exist or has already disconnected"


# ---- a plain client -------------------------------------------------------------------------


class Client:
    """One connection, read the way a test wants: the next JSON message, or the close."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.raw: list[str] = []

    async def next(self, *, keepalives: bool = False, within: float = 3.0) -> dict[str, Any]:
        """The next JSON message (keepalives skipped unless asked for)."""
        async with asyncio.timeout(within):  # one deadline: a Ping restarts receive()'s own
            return await self._next(keepalives)

    async def _next(self, keepalives: bool) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"expected a message, got {msg.type!r} {msg.data!r}")
            self.raw.append(msg.data)
            data: dict[str, Any] = json.loads(msg.data)
            if keepalives or data["metadata"]["message_type"] != "session_keepalive":
                return data

    async def closed(self, within: float = 3.0) -> tuple[int, str]:
        """The close frame's code and reason (messages before it are skipped)."""
        async with asyncio.timeout(within):
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.CLOSE:
                    return msg.data, str(msg.extra)
                if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    raise AssertionError(f"closed without a close frame: {msg.type!r}")

    async def quiet(self, within: float) -> None:
        """Nothing but keepalives arrives for ``within`` seconds."""
        try:
            data = await self.next(within=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {data['metadata']['message_type']}")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    sim.eventsub_ws.ping_interval = 60.0  # quiet unless a test is about pings
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    sim.add_channel("bob")
    yield sim
    await sim.close()


# Every client stays referenced until its test ends: aiohttp closes the connection of a
# client websocket that is garbage-collected, which would look like the client leaving.
_CLIENTS: list[Client] = []


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
    _CLIENTS.clear()


async def open_client(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Client:
    client = Client(await http.ws_connect(url, **kwargs))
    _CLIENTS.append(client)
    return client


async def connect(
    http: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[Client, dict[str, Any]]:
    """A connection and its first message (the welcome)."""
    client = await open_client(http, url, **kwargs)
    return client, await client.next()


async def subscribe(
    http: aiohttp.ClientSession,
    sim: Simulator,
    token: str,
    session_id: str,
    kind: str = REDEMPTION_ADD,
    condition: dict[str, str] | None = None,
    version: str = "1",
) -> tuple[int, Any]:
    body = {
        "type": kind,
        "version": version,
        "condition": condition or {"broadcaster_user_id": sim.user("alice").id},
        "transport": {"method": "websocket", "session_id": session_id},
    }
    headers = {"Authorization": f"Bearer {token}", "Client-Id": sim.client_id}
    async with http.post(
        sim.api_url + "/eventsub/subscriptions", json=body, headers=headers
    ) as response:
        return response.status, await response.json()


async def listing(
    http: aiohttp.ClientSession, sim: Simulator, token: str, **params: str
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Client-Id": sim.client_id}
    async with http.get(
        sim.api_url + "/eventsub/subscriptions", headers=headers, params=params
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def session_id(welcome: dict[str, Any]) -> str:
    sid: str = welcome["payload"]["session"]["id"]
    return sid


# ---- the connection ---------------------------------------------------------------------------


async def test_welcome_format(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """The first message is a session_welcome shaped like the docs' example (§7.2)."""
    _, welcome = await connect(http, sim.eventsub_ws_url)
    assert list(welcome) == ["metadata", "payload"]
    meta = welcome["metadata"]
    assert list(meta) == ["message_id", "message_type", "message_timestamp"]
    assert meta["message_type"] == "session_welcome"
    assert NANO_STAMP.fullmatch(meta["message_timestamp"])
    session = welcome["payload"]["session"]
    assert list(session) == [
        "id", "status", "connected_at", "keepalive_timeout_seconds", "reconnect_url",
    ]  # fmt: skip
    assert (session["status"], session["keepalive_timeout_seconds"], session["reconnect_url"]) == (
        "connected",
        10,
        None,
    )
    assert NANO_STAMP.fullmatch(session["connected_at"])
    (live,) = await sim.eventsub_ws.wait_session()
    assert live.id == session["id"]
    (delivery,) = sim.eventsub_ws.deliveries
    assert (delivery.message_type, delivery.message_id, delivery.session_id, delivery.sent) == (
        "session_welcome",
        meta["message_id"],
        live.id,
        True,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 10), ("30", 30), ("5", 10), ("9999", 600), ("29.6", 30), ("-3", 10)],
)
async def test_keepalive_timeout_is_clamped(
    sim: Simulator, http: aiohttp.ClientSession, query: str, expected: int
) -> None:
    """A numeric keepalive_timeout_seconds becomes the nearest acceptable value (§7.1)."""
    url = sim.eventsub_ws_url + (f"?keepalive_timeout_seconds={query}" if query else "")
    _, welcome = await connect(http, url)
    assert welcome["payload"]["session"]["keepalive_timeout_seconds"] == expected


async def test_keepalive_timeout_not_a_number(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A value that is not a number is refused before the upgrade (a [U] case: decided)."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(sim.eventsub_ws_url + "?keepalive_timeout_seconds=soon")
    assert caught.value.status == 400


async def test_keepalive_timing(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A keepalive goes out after 0.8 x the window without a notification; a notification
    restarts that window."""
    sim.eventsub_ws.keepalive_bounds = (1, 600)
    loop = asyncio.get_running_loop()
    client, welcome = await connect(http, sim.eventsub_ws_url + "?keepalive_timeout_seconds=1")
    welcomed_at = loop.time()
    assert welcome["payload"]["session"]["keepalive_timeout_seconds"] == 1
    keepalive = await client.next(keepalives=True)
    first_gap = loop.time() - welcomed_at
    assert keepalive == {"metadata": keepalive["metadata"], "payload": {}}
    assert list(keepalive["metadata"]) == ["message_id", "message_type", "message_timestamp"]
    assert keepalive["metadata"]["message_type"] == "session_keepalive"
    assert 0.7 <= first_gap <= 1.2  # 0.8 s, with room for a busy machine
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    assert (await subscribe(http, sim, token, session_id(welcome), "stream.online"))[0] == 202
    await asyncio.sleep(0.4)
    await sim.stream_online("alice")
    assert (await client.next(keepalives=True))["metadata"]["message_type"] == "notification"
    notified_at = loop.time()
    assert (await client.next(keepalives=True))["metadata"]["message_type"] == "session_keepalive"
    assert 0.65 <= loop.time() - notified_at <= 1.2


async def test_pings_pongs_and_4002(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """The server pings; a client that answers stays, one that does not gets 4002. A
    client's own Ping is answered, not taken for inbound traffic."""
    sim.eventsub_ws.ping_interval = 0.1
    sim.eventsub_ws.pong_timeout = 0.3
    polite, welcome = await connect(http, sim.eventsub_ws_url)
    await polite.ws.ping(b"are you there")
    reading = asyncio.create_task(polite.quiet(0.8))  # aiohttp answers Pings while reading
    deaf, _ = await connect(http, sim.eventsub_ws_url, autoping=False)
    assert await deaf.closed() == (4002, "failed ping pong")
    await reading
    session = sim.eventsub_ws.session(session_id(welcome))
    assert not session.closed
    assert session.pings_sent >= 3
    assert session.pongs_received >= 3
    assert session.client_pings == 1


@pytest.mark.parametrize("frame", ["text", "binary"])
async def test_inbound_traffic_closes_4001(
    sim: Simulator, http: aiohttp.ClientSession, frame: str
) -> None:
    """Anything the client sends but Ping/Pong closes it with 4001; its subscriptions die."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    _, created = await subscribe(http, sim, token, session_id(welcome))
    if frame == "text":
        await client.ws.send_str('{"hello":"twitch"}')
    else:
        await client.ws.send_bytes(b"\x00")
    assert await client.closed() == (4001, "sent inbound traffic")
    (sub,) = (await listing(http, sim, token))["data"]
    assert sub["id"] == created["data"][0]["id"]
    assert sub["status"] == "websocket_received_inbound_traffic"
    assert NANO_STAMP.fullmatch(sub["transport"]["disconnected_at"])


async def test_unused_connection_closes_4003(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """No subscription within the deadline: 4003. One subscription in time keeps it open."""
    sim.eventsub_ws.subscribe_timeout = 0.3
    idle, _ = await connect(http, sim.eventsub_ws_url)
    busy, welcome = await connect(http, sim.eventsub_ws_url)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    assert (await subscribe(http, sim, token, session_id(welcome)))[0] == 202
    assert await idle.closed() == (4003, "connection unused")
    await busy.quiet(0.3)
    assert sim.eventsub_ws.session(session_id(welcome)).open


# ---- Helix ------------------------------------------------------------------------------------


async def test_create_answers_202_enabled(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A subscription is enabled at once; the 202 body has the transport with connected_at."""
    _, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    status, body = await subscribe(http, sim, token, sid)
    assert status == 202
    (created,) = body["data"]
    assert list(created) == [
        "id", "status", "type", "version", "condition", "created_at", "transport", "cost",
    ]  # fmt: skip
    assert created["status"] == "enabled"
    assert created["transport"] == {
        "method": "websocket",
        "session_id": sid,
        "connected_at": welcome["payload"]["session"]["connected_at"],
    }
    assert (created["cost"], body["total"], body["total_cost"], body["max_total_cost"]) == (
        0,
        1,
        0,
        10,
    )
    (sub,) = await sim.eventsub_ws.wait_enabled(session_id=sid)
    assert sub.id == created["id"]


async def test_create_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """App token, no or unknown session, another user on the session, missing scope, someone
    else's channel and duplicates are refused with Twitch's codes (§7.4)."""
    alice_token = sim.issue_token("alice", BROADCASTER_SCOPES)
    bob_token = sim.issue_token("bob", BROADCASTER_SCOPES)
    _, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    status, body = await subscribe(http, sim, sim.issue_app_token(), sid)
    assert (status, body["message"]) == (400, "invalid transport and auth combination")
    assert body["error"] == "Bad Request"
    assert (await subscribe(http, sim, alice_token, "AQoQnot-a-session"))[1]["message"] == (
        NO_SESSION
    )
    assert (await subscribe(http, sim, alice_token, ""))[0] == 400
    no_scope = sim.issue_token("alice", [])
    status, body = await subscribe(http, sim, no_scope, sid)
    assert status == 403
    assert "channel:read:redemptions" in body["message"]
    bob_channel = {"broadcaster_user_id": sim.user("bob").id}
    assert (await subscribe(http, sim, alice_token, sid, condition=bob_channel))[0] == 403
    assert (await subscribe(http, sim, alice_token, sid))[0] == 202
    status, body = await subscribe(http, sim, alice_token, sid)
    assert (status, body["message"]) == (409, "subscription already exists")
    status, body = await subscribe(http, sim, bob_token, sid, "stream.online", bob_channel)
    assert (status, body["message"]) == (
        400,
        "websocket transport cannot have subscriptions created by different users",
    )
    anyone = sim.issue_token("mybot", [])
    other_client, other = await connect(http, sim.eventsub_ws_url)
    alice_online = {"broadcaster_user_id": sim.user("alice").id}
    status, body = await subscribe(
        http, sim, anyone, session_id(other), "stream.online", alice_online
    )
    assert status == 202  # no scope needed for stream.online: any user token
    await other_client.ws.close()
    await sim.eventsub_ws.wait_closed(session_id(other))
    status, body = await subscribe(http, sim, anyone, session_id(other), "stream.raid")
    assert status == 400  # an unknown type is refused before the transport is looked at
    status, body = await subscribe(
        http, sim, anyone, session_id(other), "stream.offline", alice_online
    )
    assert (status, body["message"]) == (400, NO_SESSION)


async def test_limits(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Per connection, connections per user token, and total cost (§7.5), each set small."""
    ctl = sim.eventsub_ws
    ctl.max_per_session = 2
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    _, first = await connect(http, sim.eventsub_ws_url)
    sid = session_id(first)
    for kind in (REDEMPTION_ADD, "stream.online"):
        assert (await subscribe(http, sim, token, sid, kind))[0] == 202
    assert (await subscribe(http, sim, token, sid, "stream.offline"))[0] == 429
    for _ in range(2):
        _, welcome = await connect(http, sim.eventsub_ws_url)
        assert (await subscribe(http, sim, token, session_id(welcome)))[0] == 202
    _, fourth = await connect(http, sim.eventsub_ws_url)
    status, body = await subscribe(http, sim, token, session_id(fourth))
    assert (status, body["message"]) == (429, "number of websocket transports limit exceeded")
    ctl.max_per_session = 300
    ctl.max_total_cost = 1
    for login in ("carol", "dave"):
        sim.add_channel(login)  # never authorized the client: stream.online costs 1
    carol = {"broadcaster_user_id": sim.user("carol").id}
    status, body = await subscribe(http, sim, token, sid, "stream.offline", carol)
    assert (status, body["data"][0]["cost"], body["total_cost"]) == (202, 1, 1)
    dave = {"broadcaster_user_id": sim.user("dave").id}
    assert (await subscribe(http, sim, token, sid, "stream.offline", dave))[0] == 429


async def test_list_and_delete(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A user token lists its own WebSocket subscriptions, ended ones with disconnected_at;
    Delete takes a user token."""
    alice = sim.issue_token("alice", BROADCASTER_SCOPES)
    client, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    _, redemption = await subscribe(http, sim, alice, sid)
    _, online = await subscribe(http, sim, alice, sid, "stream.online")
    body = await listing(http, sim, alice)
    assert (body["total"], body["total_cost"], body["max_total_cost"], body["pagination"]) == (
        2,
        0,
        10,
        {},
    )
    assert {s["status"] for s in body["data"]} == {"enabled"}
    assert "disconnected_at" not in body["data"][0]["transport"]
    assert (await listing(http, sim, alice, type="stream.online"))["total"] == 1
    assert (await listing(http, sim, sim.issue_token("bob")))["data"] == []
    assert (await listing(http, sim, sim.issue_app_token()))["data"] == []
    url = sim.api_url + "/eventsub/subscriptions"
    online_id = online["data"][0]["id"]
    for token, expected in ((sim.issue_token("bob"), 404), (alice, 204), (alice, 404)):
        headers = {"Authorization": f"Bearer {token}", "Client-Id": sim.client_id}
        async with http.delete(url, headers=headers, params={"id": online_id}) as response:
            assert response.status == expected
    await client.ws.close()
    await sim.eventsub_ws.wait_closed(sid)
    (ended,) = (await listing(http, sim, alice))["data"]
    assert ended["id"] == redemption["data"][0]["id"]
    assert ended["status"] == "websocket_disconnected"
    assert NANO_STAMP.fullmatch(ended["transport"]["disconnected_at"])
    assert (await listing(http, sim, alice, status="enabled"))["data"] == []


# ---- notifications ---------------------------------------------------------------------------


async def test_notification_format(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A redemption arrives as §7.2's notification: metadata with the subscription type and
    version, the webhook's event body, a websocket transport. It is recorded."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    _, created = await subscribe(http, sim, token, sid)
    sim.add_reward("alice", "Hydrate", cost=100, prompt="drink water", client_id=sim.client_id)
    sim.add_user("cooler_user", display_name="Cooler_User")
    redemption = await sim.redeem("alice", "cooler_user", "hydrate", "pogchamp")
    assert redemption.deliveries == []  # no webhook subscription
    message = await client.next()
    meta = message["metadata"]
    assert list(meta) == [
        "message_id", "message_type", "message_timestamp", "subscription_type",
        "subscription_version",
    ]  # fmt: skip
    assert (meta["message_type"], meta["subscription_type"], meta["subscription_version"]) == (
        "notification",
        REDEMPTION_ADD,
        "1",
    )
    assert NANO_STAMP.fullmatch(meta["message_timestamp"])
    assert list(message["payload"]) == ["subscription", "event"]
    sub = message["payload"]["subscription"]
    assert list(sub) == [
        "id", "status", "type", "version", "cost", "condition", "transport", "created_at",
    ]  # fmt: skip
    assert sub["id"] == created["data"][0]["id"]
    assert sub["transport"] == {"method": "websocket", "session_id": sid}
    reward = sim.find_reward("alice", "hydrate")
    assert message["payload"]["event"] == payloads.redemption_event(
        redemption_id=redemption.id,
        broadcaster=sim.user("alice"),
        user=sim.user("cooler_user"),
        reward_id=reward.id,
        title="Hydrate",
        cost=100,
        prompt="drink water",
        user_input="pogchamp",
        redeemed_at=redemption.redeemed_at,
        status="unfulfilled",
    )
    delivery = sim.eventsub_ws.deliveries[-1]
    assert (delivery.message_id, delivery.session_id, delivery.subscription_id) == (
        meta["message_id"],
        sid,
        sub["id"],
    )
    assert delivery.sent and not delivery.duplicate
    assert delivery.text == client.raw[-1]


async def test_world_events_reach_websocket(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Every Simulator event helper, and eventsub.send with a fixed id, reach WebSocket
    subscriptions; with no webhook subscription that is not a NoSubscription."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    alice = {"broadcaster_user_id": sim.user("alice").id}
    kinds = ["stream.online", "stream.offline", "channel.subscribe", "channel.subscription.gift"]
    for kind in [*kinds, "channel.cheer"]:
        assert (await subscribe(http, sim, token, sid, kind, alice))[0] == 202
    follow = {**alice, "moderator_user_id": sim.user("alice").id}
    assert (await subscribe(http, sim, token, sid, "channel.follow", follow, "2"))[0] == 202
    raid = {"to_broadcaster_user_id": sim.user("alice").id}
    assert (await subscribe(http, sim, token, sid, "channel.raid", raid))[0] == 202
    await sim.eventsub_ws.wait_enabled(7, session_id=sid)
    assert await sim.stream_online("alice") == []  # the webhook deliveries: none
    await sim.follow("alice", "fan")
    await sim.subscribe("alice", "fan", 2000)
    await sim.gift_subs("alice", "santa", ["kid1"])
    await sim.cheer("alice", "fan", 100, "nice")
    await sim.raid("alice", "other_streamer", 42)
    await sim.stream_offline("alice")
    event = payloads.stream_offline_event(broadcaster=sim.user("alice"))
    assert await sim.eventsub.send("stream.offline", event, message_id="fixed-id") == []
    got = [await client.next() for _ in range(9)]
    assert [m["metadata"]["subscription_type"] for m in got] == [
        "stream.online", "channel.follow", "channel.subscribe", "channel.subscribe",
        "channel.subscription.gift", "channel.cheer", "channel.raid", "stream.offline",
        "stream.offline",
    ]  # fmt: skip
    assert got[1]["metadata"]["subscription_version"] == "2"
    assert got[-1]["metadata"]["message_id"] == "fixed-id"
    assert got[6]["payload"]["event"]["viewers"] == 42
    with pytest.raises(NoSubscription):
        await sim.eventsub.send("channel.update", alice)


async def test_resend_is_a_duplicate(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """resend() sends the same frame again: same message id, same timestamp, same body."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    await subscribe(http, sim, token, session_id(welcome), "stream.online")
    await sim.stream_online("alice")
    first = await client.next()
    again = await sim.eventsub_ws.resend(first["metadata"]["message_id"])
    assert await client.next() == first
    assert client.raw[-1] == client.raw[-2]
    assert again.duplicate and again.sent
    with pytest.raises(KeyError):
        await sim.eventsub_ws.resend("no-such-message")


async def test_silence_and_resume(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A silenced session gets no keepalive and no notification (they are lost, recorded
    as dropped), while pings go on; after resume a keepalive comes at once."""
    ctl = sim.eventsub_ws
    ctl.keepalive_bounds = (1, 600)
    ctl.ping_interval = 0.1
    client, welcome = await connect(http, sim.eventsub_ws_url + "?keepalive_timeout_seconds=1")
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    await subscribe(http, sim, token, sid, "stream.online")
    ctl.silence(sid)
    pings = ctl.session(sid).pings_sent
    await sim.stream_online("alice")
    with pytest.raises(TimeoutError):
        await client.next(keepalives=True, within=1.3)
    assert ctl.deliveries[-1].dropped
    assert not ctl.deliveries[-1].sent
    assert ctl.session(sid).pings_sent > pings
    loop = asyncio.get_running_loop()
    resumed = loop.time()
    ctl.resume(sid)
    assert (await client.next(keepalives=True))["metadata"]["message_type"] == "session_keepalive"
    assert loop.time() - resumed < 0.5
    ctl.silence(sid, 0.5)
    await sim.stream_offline("alice")  # no subscription for it: nothing either way
    await sim.stream_online("alice")
    silenced = loop.time()
    keepalive = await client.next(keepalives=True)
    assert keepalive["metadata"]["message_type"] == "session_keepalive"
    assert loop.time() - silenced >= 0.4


# ---- reconnect -------------------------------------------------------------------------------


async def test_reconnect_flow(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """session_reconnect: the old connection gets events until the new welcome (a new
    session id); then the subscriptions are on the new session and events go there."""
    ctl = sim.eventsub_ws
    old_client, welcome = await connect(http, sim.eventsub_ws_url)
    old_id = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    for kind in ("stream.online", "stream.offline"):
        await subscribe(http, sim, token, old_id, kind)
    reconnect = await ctl.send_reconnect(old_id, hold_welcome=True)
    message = await old_client.next()
    assert message["metadata"]["message_type"] == "session_reconnect"
    assert list(message["metadata"]) == ["message_id", "message_type", "message_timestamp"]
    session = message["payload"]["session"]
    assert list(session) == [
        "id", "status", "keepalive_timeout_seconds", "reconnect_url", "connected_at",
    ]  # fmt: skip
    assert (session["id"], session["status"], session["keepalive_timeout_seconds"]) == (
        old_id,
        "reconnecting",
        None,
    )
    assert session["reconnect_url"] == reconnect.url
    assert reconnect.url.startswith(sim.eventsub_ws_url + "?reconnect_id=")
    new_client = await open_client(http, session["reconnect_url"])
    await reconnect.wait_connected()
    await sim.stream_online("alice")  # between the reconnect message and the new welcome
    between = await old_client.next()
    assert between["payload"]["subscription"]["transport"]["session_id"] == old_id
    await new_client.quiet(0.2)
    reconnect.release_welcome()
    new_welcome = await new_client.next()
    new_id = session_id(new_welcome)
    assert new_welcome["metadata"]["message_type"] == "session_welcome"
    assert new_id != old_id
    assert new_welcome["payload"]["session"]["reconnect_url"] is None
    assert (await reconnect.wait_welcomed()).id == new_id
    assert len(ctl.subscriptions_of(new_id)) == 2
    assert ctl.subscriptions_of(old_id) == []
    listed = await listing(http, sim, token)
    assert {s["transport"]["session_id"] for s in listed["data"]} == {new_id}
    await sim.stream_offline("alice")
    after = await new_client.next()
    assert after["payload"]["subscription"]["transport"]["session_id"] == new_id
    await old_client.quiet(0.1)
    await old_client.ws.close()
    old = await ctl.wait_closed(old_id)
    assert (old.closed_by, old.successor is ctl.session(new_id)) == ("client", True)
    assert len(ctl.subscriptions_of(new_id)) == 2  # closing the old one loses nothing
    assert [s.id for s in ctl.open_sessions()] == [new_id]


async def test_reconnect_grace_closes_old_4004(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A client that never closes the old connection gets 4004 on it; the new keeps all."""
    ctl = sim.eventsub_ws
    old_client, welcome = await connect(http, sim.eventsub_ws_url)
    old_id = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    await subscribe(http, sim, token, old_id)
    reconnect = await ctl.send_reconnect(old_id, grace=0.3)
    _, new_welcome = await connect(http, reconnect.url)
    assert await old_client.closed() == (4004, "client reconnect grace time expired")
    assert len(ctl.subscriptions_of(session_id(new_welcome))) == 1


async def test_reconnect_not_followed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Nobody connects to the reconnect URL in time: 4004, the subscriptions die, and the
    URL is no good afterwards (4007), as is a made-up one."""
    ctl = sim.eventsub_ws
    old_client, welcome = await connect(http, sim.eventsub_ws_url)
    old_id = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    await subscribe(http, sim, token, old_id)
    reconnect = await ctl.send_reconnect(old_id, grace=0.2)
    assert await old_client.closed() == (4004, "client reconnect grace time expired")
    (sub,) = (await listing(http, sim, token))["data"]
    assert sub["status"] == "websocket_failed_to_reconnect"
    for url in (reconnect.url, sim.eventsub_ws_url + "?reconnect_id=made-up"):
        late = await open_client(http, url)
        assert await late.closed() == (4007, "invalid reconnect attempt")


# ---- revocation and closes ----------------------------------------------------------------------


async def test_revocation(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A revocation names the subscription and its new status; nothing follows for it."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    _, created = await subscribe(http, sim, token, sid)
    await subscribe(http, sim, token, sid, "stream.online")
    sub_id = created["data"][0]["id"]
    with pytest.raises(ValueError, match="status"):
        await sim.eventsub_ws.revoke(sub_id, "because")
    await sim.eventsub_ws.revoke(sub_id, "user_removed")
    message = await client.next()
    assert list(message["metadata"]) == [
        "message_id", "message_type", "message_timestamp", "subscription_type",
        "subscription_version",
    ]  # fmt: skip
    assert message["metadata"]["message_type"] == "revocation"
    assert list(message["payload"]) == ["subscription"]
    revoked = message["payload"]["subscription"]
    assert (revoked["id"], revoked["status"], revoked["transport"]) == (
        sub_id,
        "user_removed",
        {"method": "websocket", "session_id": sid},
    )
    sim.add_reward("alice", "Hydrate")
    await sim.redeem("alice", "fan", "Hydrate")
    await sim.stream_online("alice")
    assert (await client.next())["metadata"]["subscription_type"] == "stream.online"
    assert await sim.eventsub_ws.revoke(sub_id) is None  # already revoked: nothing sent
    statuses = {s["type"]: s["status"] for s in (await listing(http, sim, token))["data"]}
    assert statuses[REDEMPTION_ADD] == "user_removed"


@pytest.mark.parametrize(
    ("code", "reason", "status"),
    [
        (4000, "internal server error", "websocket_internal_error"),
        (4001, "sent inbound traffic", "websocket_received_inbound_traffic"),
        (4002, "failed ping pong", "websocket_failed_ping_pong"),
        (4003, "connection unused", "websocket_connection_unused"),
        (4004, "client reconnect grace time expired", "websocket_failed_to_reconnect"),
        (4005, "network timeout", "websocket_network_timeout"),
        (4006, "network error", "websocket_network_error"),
        (4007, "invalid reconnect attempt", "websocket_failed_to_reconnect"),
    ],
)
async def test_close_codes(
    sim: Simulator, http: aiohttp.ClientSession, code: int, reason: str, status: str
) -> None:
    """close() sends each of Twitch's codes with twitch-cli's text; the subscriptions end."""
    client, welcome = await connect(http, sim.eventsub_ws_url)
    sid = session_id(welcome)
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    await subscribe(http, sim, token, sid)
    await sim.eventsub_ws.close(sid, code)
    assert await client.closed() == (code, reason)
    (sub,) = (await listing(http, sim, token))["data"]
    assert sub["status"] == status
    assert sim.eventsub_ws.session(sid).close_code == code


async def test_close_rejects_other_codes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    _, welcome = await connect(http, sim.eventsub_ws_url)
    with pytest.raises(ValueError, match="4000"):
        await sim.eventsub_ws.close(session_id(welcome), 1000)


async def test_drop_and_client_close_end_subscriptions(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A TCP drop or the client's own close ends the session: its subscriptions are
    disabled, not carried to the next connection, and events no longer reach them."""
    ctl = sim.eventsub_ws
    token = sim.issue_token("alice", BROADCASTER_SCOPES)
    dropped, first = await connect(http, sim.eventsub_ws_url)
    await subscribe(http, sim, token, session_id(first), "stream.online")
    await ctl.drop(session_id(first))
    msg = await dropped.ws.receive(3.0)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    closing, second = await connect(http, sim.eventsub_ws_url)
    assert (await subscribe(http, sim, token, session_id(second), "stream.online"))[0] == 202
    await closing.ws.close()
    await ctl.wait_closed(session_id(second))
    statuses = sorted(s["status"] for s in (await listing(http, sim, token))["data"])
    assert statuses == ["websocket_disconnected", "websocket_network_error"]
    assert await sim.stream_online("alice") == []
    assert not [d for d in ctl.deliveries if d.message_type == "notification"]
    _, third = await connect(http, sim.eventsub_ws_url)
    assert ctl.subscriptions_of(session_id(third)) == []
