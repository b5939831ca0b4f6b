"""Chat through the real path: simulator ⇄ WebSocket ⇄ twitchio ⇄ handlers ⇄ SQLite."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.simulator import Simulator
from tests.e2e.conftest import StartBot, audit

pytestmark = pytest.mark.timeout(120)


async def ask(
    sim: Simulator, user: str, text: str, expect: str, channel: str = "alice", within: float = 5.0
) -> str:
    """Say something as ``user`` and return the bot's reply that contains ``expect``."""
    mark = len(sim.sent)
    await sim.say(channel, user, text)
    reply = await sim.wait_for_reply(channel, contains=expect, after=mark, timeout=within)
    return reply.text


async def silent(
    sim: Simulator, user: str, text: str, channel: str = "alice", wait: float = 0.7
) -> None:
    """Say something and check the bot answers nothing."""
    mark = len(sim.sent)
    await sim.say(channel, user, text)
    await asyncio.sleep(wait)
    assert [m.text for m in sim.sent[mark:]] == []


async def seed(bot: object, sim: Simulator, **balances: int) -> None:
    """Give viewers points through the ledger (as an operator would)."""
    bank = bot.daemon.bank  # type: ignore[attr-defined]
    for login, points in balances.items():
        user = sim.world.ensure_user(login)
        await bank.credit(
            "alice",
            Viewer(user.id, user.login, user.display_name),
            points,
            kind=EntryType.ADD,
            actor="test",
        )


async def test_points_and_aliases(sim: Simulator, start_bot: StartBot) -> None:
    """!points, !<currency> and !<currency plural> answer with balance and rank."""
    bot = await start_bot()
    await seed(bot, sim, bob=1234, carol=5000, dave=1)
    assert await ask(sim, "bob", "!points", "bob") == "@bob, you have 1,234 cookies (rank #2)"
    assert "you have 5,000 cookies (rank #1)" in await ask(sim, "carol", "!COOKIES", "carol")
    assert "you have 1 cookie" in await ask(sim, "dave", "!cookie", "dave")
    assert "@erin" in await ask(sim, "erin", "!points bob", "1,234")


async def test_give_and_its_refusals(sim: Simulator, start_bot: StartBot) -> None:
    """!give moves points; self-gifts, unknown viewers, overdrafts and the cap are refused."""
    bot = await start_bot()
    await seed(bot, sim, bob=100, bobby=1)
    reply = await ask(sim, "bob", "!give @Bobby 40", "bobby")
    assert "40" in reply
    assert "can't give cookies to yourself" in await ask(sim, "bobby", "!give bobby 1", "bobby")
    assert "haven't seen nobody" in await ask(sim, "carol", "!give nobody 5", "carol")
    assert "haven't seen bob_" in await ask(sim, "erin", "!give bob_ 1", "erin")  # exact only
    await seed(bot, sim, dave=5)
    assert "only have 5 cookies" in await ask(sim, "dave", "!give bob 6", "dave")
    record = await bot.daemon.bank.viewer("alice", "bobby")
    assert record is not None and record.points == 41
    assert await audit(bot.config.database.path) == []


@pytest.mark.parametrize("amount", ["0", "-5", "1e5", "1.5", "abc", "99999999999999999999"])
async def test_malformed_amounts_change_nothing(
    sim: Simulator, start_bot: StartBot, amount: str
) -> None:
    """Every malformed amount of SPEC §5 gets a clear reply and changes nothing."""
    bot = await start_bot()
    await seed(bot, sim, bob=100, carol=1)
    reply = await ask(sim, "bob", f"!give carol {amount}", "bob")
    assert "is not a valid amount" in reply, reply
    for login, points in (("bob", 100), ("carol", 1)):
        record = await bot.daemon.bank.viewer("alice", login)
        assert record is not None and record.points == points


async def test_moderator_commands_and_permissions(sim: Simulator, start_bot: StartBot) -> None:
    """Mods add and remove; only the broadcaster sets; viewers are refused with a reason."""
    bot = await start_bot()
    sim.set_role("alice", "modmo", mod=True)
    await seed(bot, sim, bob=10)
    assert "bob" in await ask(sim, "modmo", "!addpoints bob 90", "bob")
    refused = await ask(sim, "modmo", "!removepoints bob 101", "bob")
    assert "bob only has 100 cookies, so nothing was removed" in refused
    assert "bob" in await ask(sim, "modmo", "!removepoints bob 30", "bob")
    assert "only moderators can use !addpoints" in await ask(
        sim, "viewer1", "!addpoints viewer1 5", "viewer1"
    )
    assert "only the broadcaster can use !setpoints" in await ask(
        sim, "modmo", "!setpoints bob 5", "modmo"
    )
    assert "bob" in await ask(sim, "alice", "!setpoints bob 5", "bob")
    record = await bot.daemon.bank.viewer("alice", "bob")
    assert record is not None and record.points == 5
    assert await audit(bot.config.database.path) == []


async def test_addpoints_all_pays_everyone_present(sim: Simulator, start_bot: StartBot) -> None:
    """!addpoints all credits every viewer present now, not the bot or the broadcaster."""
    bot = await start_bot()
    sim.set_role("alice", "modmo", mod=True)
    for login in ("v1", "v2", "v3"):
        await sim.say("alice", login, "hello")
    await asyncio.sleep(0.3)
    reply = await ask(sim, "modmo", "!addpoints all 7", "modmo")
    assert "4" in reply  # v1..v3 and modmo chatted
    for login in ("v1", "v2", "v3", "modmo"):
        record = await bot.daemon.bank.viewer("alice", login)
        assert record is not None and record.points == 7
    assert await bot.daemon.bank.viewer("alice", "mybot") is None


async def test_leaderboard_and_watchtime(sim: Simulator, start_bot: StartBot) -> None:
    """!leaderboard and !top list the top 5; !watchtime answers."""
    bot = await start_bot()
    await seed(bot, sim, **{f"p{i}": i * 10 for i in range(1, 8)})
    board = await ask(sim, "p1", "!leaderboard", "p7")
    assert board.index("p7") < board.index("p6") and "p2" not in board
    assert "p7" in await ask(sim, "p2", "!top", "p7")
    assert "p3" in await ask(sim, "p3", "!watchtime", "p3")


async def test_read_cooldown_ignores_repeats(sim: Simulator, start_bot: StartBot) -> None:
    """A viewer's repeated !points within 5 s gets no second answer."""
    bot = await start_bot()
    await seed(bot, sim, bob=1)
    await ask(sim, "bob", "!points", "bob")
    await silent(sim, "bob", "!points")
    assert bot.daemon.chat.connected


async def test_give_cooldown_says_how_long(sim: Simulator, start_bot: StartBot) -> None:
    """A second !give within 30 s is refused with the time to wait."""
    bot = await start_bot()
    await seed(bot, sim, bob=100, carol=1)
    await ask(sim, "bob", "!give carol 1", "carol")
    assert "please wait" in await ask(sim, "bob", "!give carol 1", "bob")


async def test_unknown_commands_and_plain_chat_are_ignored(
    sim: Simulator, start_bot: StartBot
) -> None:
    """Only our commands get answers."""
    await start_bot()
    await silent(sim, "bob", "!unknowncommand")
    await silent(sim, "bob", "hello there")


@pytest.mark.slow
async def test_burst_of_500_commands_never_breaks_twitch_limits(
    sim: Simulator, start_bot: StartBot
) -> None:
    """500 commands at once: replies leave within Twitch's limits, late ones are dropped."""
    bot = await start_bot()
    users = sim.add_users(500, prefix="burst")
    start = time.monotonic()
    await asyncio.gather(*(sim.say("alice", u.login, "!points") for u in users))
    await asyncio.sleep(33)  # long enough for every reply to leave or go stale
    assert sim.rate_report() == []
    sent = [m for m in sim.sent if m.at >= start]
    assert 90 <= len(sent) <= 106  # 100 per 30 s as a moderator, with our safety margin
    counters = bot.daemon.outbox.counters
    assert counters.sent == len(sent)
    assert counters.dropped_stale + counters.sent + counters.dropped_overflow == 500


async def test_recovers_from_a_dropped_connection(sim: Simulator, start_bot: StartBot) -> None:
    """After a TCP drop the bot reconnects, rejoins, and answers again."""
    bot = await start_bot()
    await seed(bot, sim, bob=1, carol=2)
    await ask(sim, "bob", "!points", "bob")
    assert await sim.drop_connections() >= 1
    for _ in range(100):
        await asyncio.sleep(0.1)
        if bot.daemon.chat.connected and "alice" in bot.daemon.chat.joined:
            break
    assert "carol" in await ask(sim, "carol", "!points", "carol", within=10)


async def test_recovers_from_reconnect_and_rejoins_every_channel(
    sim: Simulator, start_bot: StartBot
) -> None:
    """RECONNECT: every configured channel is rejoined, not only the first ones."""
    sim.add_channel("bob_tv", bot_login="mybot", bot_role="moderator")
    bot = await start_bot({"alice": {}, "bob_tv": {}})
    await sim.send_reconnect()
    for _ in range(150):
        await asyncio.sleep(0.1)
        if bot.daemon.chat.joined >= {"alice", "bob_tv"} and bot.daemon.chat.connected:
            break
    assert "dora" in await ask(sim, "dora", "!points", "dora", channel="bob_tv", within=10)


async def test_audit_passes_after_chat(sim: Simulator, start_bot: StartBot, tmp_path: Path) -> None:
    """The books balance after a mix of chat commands, also after a restart."""
    bot = await start_bot()
    await seed(bot, sim, bob=100)
    await sim.say("alice", "carol", "hi")
    await asyncio.sleep(0.2)
    await ask(sim, "bob", "!give carol 5", "carol")
    assert await bot.stop() == 0
    assert await audit(tmp_path / "bot.db") == []
