"""First sight: a viewer is known the moment the bot first sees them (SPEC §4).

Every scenario starts from an empty database and uses only what users do: viewers chat,
join and lurk; a moderator acts on them at once.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time

import aiohttp
import pytest

from loyaltybot.simulator import BROADCASTER_SCOPES, Simulator
from loyaltybot.simulator.server import REDEMPTION_ADD
from tests.e2e.conftest import CLIENT_SECRET, RunningBot, StartBot, audit

pytestmark = pytest.mark.timeout(120)


async def ask(
    sim: Simulator, user: str, text: str, expect: str, channel: str = "alice", within: float = 5.0
) -> str:
    mark = len(sim.sent)
    await sim.say(channel, user, text)
    return (await sim.wait_for_reply(channel, contains=expect, after=mark, timeout=within)).text


async def first_sight(bot: RunningBot) -> dict[str, float]:
    """The first-sight counters, read from /metrics over HTTP as an operator would."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{bot.daemon.web_url}/metrics") as response,
    ):
        text = await response.text()
    found = re.findall(r'^loyaltybot_first_sight_total\{what="(\w+)"\} (\S+)$', text, re.M)
    return {what: float(value) for what, value in found}


@pytest.fixture
def modded(sim: Simulator) -> Simulator:
    sim.set_role("alice", "modmo", mod=True)
    return sim


async def test_a_mod_gives_points_to_a_first_time_chatter_at_once(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A viewer's first line, then at once !addpoints: credited within a second."""
    sim = modded
    bot = await start_bot()
    await sim.say("alice", "newviewer", "hello, first time here!")
    started = time.monotonic()
    reply = await ask(sim, "modmo", "!addpoints newviewer 500", "newviewer", within=1.0)
    assert time.monotonic() - started < 1.0
    assert reply == "@modmo, gave newviewer 500 cookies; they now have 500 cookies."
    assert "newviewer has 500 cookies" in await ask(sim, "modmo", "!points newviewer", "500")
    assert await audit(bot.config.database.path) == []


async def test_a_first_time_chatter_receives_a_give_and_is_named_by_points(
    modded: Simulator, start_bot: StartBot
) -> None:
    """!give to a viewer who has only said hello works, and !points names them."""
    sim = modded
    bot = await start_bot()
    await sim.say("alice", "bob", "hi all")
    await ask(sim, "modmo", "!addpoints bob 100", "bob")
    assert "haven't seen newbie" in await ask(sim, "carol", "!points newbie", "newbie")
    await sim.say("alice", "newbie", "hey")
    assert "you gave 40 cookies to newbie" in await ask(sim, "bob", "!give newbie 40", "bob")
    assert "newbie has 40 cookies" in await ask(sim, "dave", "!points newbie", "newbie")
    assert "@newbie, you have 40 cookies" in await ask(sim, "newbie", "!points", "newbie")
    assert await audit(bot.config.database.path) == []


async def test_points_of_a_viewer_seen_only_in_chat_say_zero_not_unknown(
    modded: Simulator, start_bot: StartBot
) -> None:
    """!points <login> for a quiet first-time chatter answers 0, not "haven't seen"."""
    sim = modded
    await start_bot()
    await sim.say("alice", "quietone", "o/")
    reply = await ask(sim, "carol", "!points quietone", "quietone")
    assert reply == "@carol, quietone has 0 cookies"


async def test_a_viewer_known_only_from_join_can_receive_points(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A lurker whose only trace is an IRC JOIN is found by login (Twitch tells the id)."""
    sim = modded
    bot = await start_bot()
    lurker = sim.world.ensure_user("lurker")
    await sim.join("alice", "lurker")
    reply = await ask(sim, "modmo", "!addpoints lurker 25", "lurker")
    assert "gave lurker 25 cookies" in reply
    record = await bot.daemon.bank.viewer("alice", "lurker")
    assert record is not None and (record.user_id, record.points) == (lurker.id, 25)
    assert await audit(bot.config.database.path) == []


async def test_a_viewer_known_only_from_the_chatter_list_before_any_tick(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A lurker in the chatter list is known right after start, long before the first tick."""
    sim = modded
    sim.set_chatters("alice", ["silentbob"])
    bot = await start_bot(
        {"alice": {"currency_name": "cookie", "currency_name_plural": "cookies",
                   "interval_minutes": 60}}
    )
    for _ in range(100):
        if (await first_sight(bot)).get("viewers", 0) >= 1:
            break
        await asyncio.sleep(0.05)
    assert "gave silentbob 7 cookies" in await ask(sim, "modmo", "!addpoints silentbob 7", "bob")
    assert bot.daemon.earning.ticks == 0
    assert await audit(bot.config.database.path) == []


async def test_300_first_time_chatters_in_one_second_take_a_handful_of_writes(
    modded: Simulator, start_bot: StartBot
) -> None:
    """300 new viewers chatting within a second are all known after few transactions."""
    sim = modded
    bot = await start_bot()
    before = await first_sight(bot)
    logins = [f"fresh{i:03d}" for i in range(300)]
    started = time.monotonic()
    for i, login in enumerate(logins):
        await sim.say("alice", login, f"hello {i}")
        await asyncio.sleep(max(0.0, started + (i + 1) / 300 - time.monotonic()))
    assert time.monotonic() - started < 1.5
    for _ in range(100):
        after = await first_sight(bot)
        if after.get("viewers", 0) - before.get("viewers", 0) >= 300:
            break
        await asyncio.sleep(0.05)
    writes = after["writes"] - before.get("writes", 0)
    assert after["viewers"] - before.get("viewers", 0) == 300
    assert 1 <= writes <= 8, writes
    # every one of them is known by login, at once
    assert "fresh299 has 0 cookies" in await ask(sim, "modmo", "!points fresh299", "fresh299")
    for login in logins:
        assert await bot.daemon.bank.viewer("alice", login) is not None
    # and chatting again costs no write
    settled = await first_sight(bot)
    for login in logins[:50]:
        await sim.say("alice", login, "again")
    await asyncio.sleep(0.6)
    assert (await first_sight(bot))["writes"] == settled["writes"]
    assert await audit(bot.config.database.path) == []


async def test_a_renamed_viewer_keeps_their_points(
    modded: Simulator, start_bot: StartBot
) -> None:
    """The user id is the key: after a rename the new login holds the points, the old
    login is history and no longer names them."""
    sim = modded
    bot = await start_bot()
    await sim.say("alice", "oldname", "hi")
    await ask(sim, "modmo", "!addpoints oldname 30", "oldname")
    sim.world.rename_user("oldname", "newname")
    await sim.say("alice", "newname", "I have a new name")
    assert "newname has 30 cookies" in await ask(sim, "modmo", "!points newname", "newname")
    assert "haven't seen oldname" in await ask(sim, "modmo", "!points oldname", "oldname")
    assert await audit(bot.config.database.path) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_viewer_named_by_a_redemption_is_known(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A lurker who never chatted redeems a reward: from then on they are known by login."""
    sim = modded
    sim.add_reward("alice", "Say hi", cost=50)
    broadcaster = sim.issue_token("alice", scopes=list(BROADCASTER_SCOPES))  # alice authorised us
    port = free_port()
    bot = await start_bot(
        {"alice": {"currency_name": "cookie", "currency_name_plural": "cookies",
                   "broadcaster_token": broadcaster,
                   "rewards": [{"title": "Say hi", "action": "chat", "message": "hi {user}!"}]}},
        twitch={"client_secret": CLIENT_SECRET},
        web={"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}",
             "eventsub_secret": "first-sight-secret-0123"},
    )
    await sim.eventsub.wait_enabled(REDEMPTION_ADD, timeout=10)
    mark = len(sim.sent)
    await sim.redeem("alice", "shylurker", "Say hi")
    await sim.wait_for_reply("alice", contains="hi shylurker", after=mark, timeout=5)
    assert "gave shylurker 5 cookies" in await ask(sim, "modmo", "!addpoints shylurker 5", "shy")
    assert await audit(bot.config.database.path) == []

