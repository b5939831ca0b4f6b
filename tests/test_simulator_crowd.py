"""Simulated viewers: deterministic chat and presence, commands, throughput, redemptions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from loyaltybot.simulator import BROADCASTER_SCOPES, Crowd, Simulator, populate_demo


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    yield sim
    await sim.close()


def transcript(crowd: Crowd, messages: int) -> list[tuple[str, str, str]]:
    return [(e.kind, e.user.login, e.text) for e in crowd.next_events(messages)]


async def test_same_seed_same_crowd() -> None:
    """Two crowds with one seed produce the same roles, joins, leaves and messages."""
    runs = []
    for _ in range(2):
        sim = Simulator()
        sim.add_channel("alice")
        crowd = Crowd(sim, "alice", viewers=300, seed=7)
        runs.append((transcript(crowd, 2000), sorted(crowd.mods), len(sim.channel("alice").subs)))
    assert runs[0] == runs[1]
    other = Simulator()
    other.add_channel("alice")
    assert transcript(Crowd(other, "alice", viewers=300, seed=8), 2000) != runs[0][0]


async def test_crowd_uses_the_commands(sim: Simulator) -> None:
    """Viewers check points, give to each other (now and then wrongly); mods add points."""
    crowd = Crowd(sim, "alice", viewers=300, seed=1, mods=0.1)
    events = await crowd.step(3000)
    texts = [e.text for e in events if e.kind == "message"]
    assert len(texts) == 3000 == crowd.stats.messages
    assert {"!points", "!give", "!addpoints", "!watchtime"} <= set(crowd.stats.commands)
    gives = [t for t in texts if t.startswith("!give @")]
    assert all(len(t.split()) == 3 for t in gives)
    assert any(not t.split()[2].isdigit() for t in gives)  # some bad amounts, for the error paths
    mods = {u.login for u in crowd.users if u.id in crowd.mods}
    adders = {e.user.login for e in events if e.text.startswith("!addpoints")}
    assert adders
    assert adders <= mods
    assert {e.kind for e in events} == {"message", "join", "part"}
    channel = sim.channel("alice")
    assert len(channel.vips) > 0
    assert len(channel.subs) > 0


async def test_present_viewers_are_the_chatters(sim: Simulator) -> None:
    """After joins and leaves, Get Chatters holds exactly the present viewers."""
    crowd = Crowd(sim, "alice", viewers=200, seed=3, churn=0.2)
    for _ in range(5):
        await crowd.step(200)
        chatters = {u.login for _, u in sim.channel("alice").chatters.items()}
        assert chatters == {u.login for u in crowd.present}
    assert crowd.stats.parts > 0


async def test_sustains_500_messages_per_second(sim: Simulator) -> None:
    """At rate=500 a connected client receives about 500 tagged PRIVMSGs per second."""
    token = sim.issue_token("mybot")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(sim.irc_url)
        await ws.send_str(
            f"PASS oauth:{token}\r\nNICK mybot\r\n"
            "CAP REQ :twitch.tv/tags twitch.tv/commands\r\nJOIN #alice\r\n"
        )
        crowd = Crowd(sim, "alice", viewers=2000, rate=500, seed=2)
        received = 0
        cpu = time.process_time()
        await crowd.start()
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            msg = await asyncio.wait_for(ws.receive(), 2)
            received += msg.data.count(" PRIVMSG #alice :")
        elapsed = time.monotonic() - started
        await crowd.stop()
        cpu = time.process_time() - cpu
        await ws.close()
    assert received >= 0.85 * 500 * elapsed, (received, elapsed)
    print(f"crowd: {received / elapsed:.0f} msg/s received, {cpu / elapsed:.0%} of a core")


async def test_crowd_redeems_when_subscribed(sim: Simulator) -> None:
    """With a reward and an enabled redemption subscription, the crowd redeems now and then."""
    got: list[dict[str, object]] = []

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        if "challenge" in body:
            return web.Response(text=body["challenge"], content_type="text/plain")
        got.append(body["event"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        world = await populate_demo(sim, ["alice"], viewers=50, rate=20, start_crowds=False)
        assert world.broadcaster_tokens["alice"]
        assert world.bot_token
        sim.add_reward("alice", "Hydrate", cost=10, client_id=sim.client_id)
        crowd = Crowd(sim, "alice", viewers=50, rate=20, seed=4, redeem_every=0.05, prefix="x")
        await crowd.start()
        await asyncio.sleep(0.2)
        assert crowd.stats.redemptions == 0  # nobody subscribed yet
        sim.issue_token("alice", BROADCASTER_SCOPES)
        body = {
            "type": "channel.channel_points_custom_reward_redemption.add",
            "version": "1",
            "condition": {"broadcaster_user_id": sim.channel("alice").id},
            "transport": {
                "method": "webhook",
                "callback": f"http://127.0.0.1:{runner.addresses[0][1]}/hook",
                "secret": "0123456789abc",
            },
        }
        headers = {"Authorization": f"Bearer {sim.issue_app_token()}", "Client-Id": sim.client_id}
        async with (
            aiohttp.ClientSession() as http,
            http.post(sim.api_url + "/eventsub/subscriptions", json=body, headers=headers) as r,
        ):
            assert r.status == 202
        await sim.eventsub.wait_enabled()
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got
        assert got[0]["reward"]["title"] == "Hydrate"  # type: ignore[index]
        assert crowd.stats.messages > 0
    finally:
        await sim.close()
        await runner.cleanup()
