"""Games end to end (SPEC §10.4): the real daemon against the simulator, from an empty
database. Every roll is the operating system's, so each test checks the outcome it got
against the rules and the roll the bot stated and recorded, to the point."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from decimal import Decimal
from typing import Any

import pytest

from loyaltybot.simulator import Simulator
from tests.e2e.conftest import RunningBot, StartBot, audit

pytestmark = pytest.mark.timeout(180)

GAMES: dict[str, Any] = {
    "enabled": ["gamble", "slots", "duel", "heist"],
    "min_bet": 5,
    "max_bet": 1000,
    "cooldown_seconds": 0,
    "slots_symbols": ["Kappa", "LUL"],
    "duel_accept_seconds": 2,
    "heist_join_seconds": 2,
    "heist_min_players": 3,
    "heist_success_percent": 50,
    "heist_payout_multiplier": 1.7,
    "heist_cooldown_seconds": 0,
}
ALICE = {
    "currency_name": "cookie",
    "currency_name_plural": "cookies",
    "command_cooldown_seconds": 0,
    "games": GAMES,
}


async def ask(sim: Simulator, user: str, text: str, expect: str | re.Pattern[str],
              within: float = 5.0) -> str:  # fmt: skip
    mark = len(sim.sent)
    await sim.say("alice", user, text)
    return (await sim.wait_for_reply("alice", contains=expect, after=mark, timeout=within)).text


async def said(sim: Simulator, mark: int, expect: str | re.Pattern[str],
               within: float = 5.0) -> str:  # fmt: skip
    return (await sim.wait_for_reply("alice", contains=expect, after=mark, timeout=within)).text


async def points(bot: RunningBot, login: str) -> int:
    record = await bot.daemon.bank.viewer("alice", login)
    return 0 if record is None else record.points


async def welcome(sim: Simulator, logins: list[str], each: int) -> None:
    for login in logins:
        await sim.say("alice", login, "hello!")
    await asyncio.sleep(0.3)
    await ask(sim, "modmo", f"!addpoints all {each}", "gave")


def rows(bot: RunningBot, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{bot.config.database.path}?mode=ro", uri=True) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def modded(sim: Simulator) -> Simulator:
    sim.set_role("alice", "modmo", mod=True)
    return sim


async def test_gamble_and_slots_state_their_roll_and_pay_by_it(
    modded: Simulator, start_bot: StartBot
) -> None:
    """Each reply states the roll; the balance moves by the rules for that roll; the roll
    is recorded with its round; half, all and N% are of the balance."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["gus"], 1000)
    balance = 1000
    for wager in ("100", "half", "10%", "50"):
        reply = await ask(sim, "gus", f"!gamble {wager}", "gus")
        roll = int(re.search(r"rolled (\d+)", reply)[1])  # type: ignore[index]
        bet = {"100": 100, "half": balance // 2, "10%": balance // 10, "50": 50}[wager]
        balance += bet if roll >= 51 else -bet
        assert f"you have {balance:,} cookies" in reply, reply
        assert await points(bot, "gus") == balance
    recorded = rows(bot, "SELECT roll FROM game_rolls ORDER BY game_round_id")
    assert len(recorded) == 4 and all(1 <= int(r) <= 100 for (r,) in recorded)
    reply = await ask(sim, "gus", "!slots 10", "gus")
    reels = re.search(r"\[ (\w+) \| (\w+) \| (\w+) \]", reply)
    assert reels is not None
    alike = len({reels[1], reels[2], reels[3]})
    balance += 90 if alike == 1 else 0  # two symbols: a triple (10x) or a pair (1x back)
    assert await points(bot, "gus") == balance
    assert rows(bot, "SELECT roll FROM game_rolls WHERE seq = 1 ORDER BY game_round_id DESC"
                " LIMIT 1") == [(" ".join(reels.groups()),)]  # fmt: skip
    assert await audit(bot.config.database.path) == []


async def test_bad_input_and_switched_off_games(modded: Simulator, start_bot: StartBot) -> None:
    """Bad wagers get one clear line each and change nothing; a game that is off says
    nothing at all (another bot may own the command)."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "games": {**GAMES, "enabled": ["gamble"]}}})
    await welcome(sim, ["hal"], 100)
    for text, expect in (("!gamble 0", "valid amount"), ("!gamble -5", "valid amount"),
                         ("!gamble 1.5", "valid amount"), ("!gamble abc", "valid amount"),
                         ("!gamble 99999999999999999999", "valid amount"),
                         ("!gamble 4", "the smallest bet is 5 cookies"),
                         ("!gamble 1001", "the largest bet is 1,000 cookies"),
                         ("!gamble 101", "is more than you have (100 cookies)"),
                         ("!gamble 150%", "a percentage is from 1% to 100%"),
                         ("!gamble", "!gamble <amount|all|half|N%>")):  # fmt: skip
        reply = await ask(sim, "hal", text, "hal")
        assert expect in reply or "must be" in reply, (text, reply)
    mark = len(sim.sent)
    for text in ("!slots 10", "!duel modmo 10", "!heist 10", "!accept", "!deny"):
        await sim.say("alice", "hal", text)
    await asyncio.sleep(1.5)
    assert [m.text for m in sim.sent[mark:]] == []
    assert await points(bot, "hal") == 100
    assert rows(bot, "SELECT count(*) FROM game_rounds") == [(0,)]
    assert await audit(bot.config.database.path) == []


async def test_a_duel_accepted_denied_and_expired(modded: Simulator, start_bot: StartBot) -> None:
    """Accepted: the coin's winner takes both stakes. Denied: refunded. Nobody answers: the
    timer refunds after duel_accept_seconds. One open duel per viewer; bad targets refused."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["ivy", "jon", "kim"], 500)
    assert "haven't seen nobody_here" in await ask(sim, "ivy", "!duel nobody_here 10", "ivy")
    assert "you cannot duel yourself" in await ask(sim, "ivy", "!duel ivy 10", "ivy")
    assert "cannot play games here" in await ask(sim, "ivy", "!duel mybot 10", "ivy")
    mark = len(sim.sent)
    await sim.say("alice", "ivy", "!duel @Jon 100")
    assert "@jon, @ivy challenges you to a duel for 100 cookies" in await said(sim, mark, "@jon")
    assert "@jon is in a duel already" in await ask(sim, "kim", "!duel jon 10", "kim")
    mark = len(sim.sent)
    await sim.say("alice", "jon", "!accept")
    line = await said(sim, mark, "Duel #")
    winner, loser = re.search(r"@(\w+) beats @(\w+) and takes 200 cookies", line).groups()  # type: ignore[union-attr]
    assert {winner, loser} == {"ivy", "jon"}
    assert (await points(bot, winner), await points(bot, loser)) == (600, 400)
    flip = rows(bot, "SELECT roll FROM game_rolls ORDER BY game_round_id DESC LIMIT 1")[0][0]
    assert flip == ("challenger" if winner == "ivy" else "target") and flip in line

    mark = len(sim.sent)
    await sim.say("alice", "kim", "!duel ivy 50")
    await said(sim, mark, "@ivy, @kim challenges you")
    assert await points(bot, "kim") == 450
    mark = len(sim.sent)
    await sim.say("alice", "ivy", "!deny")
    assert "@ivy declined @kim's duel: 50 cookies back to @kim" in await said(sim, mark,
                                                                                "declined")
    assert await points(bot, "kim") == 500
    assert "no open duel" in await ask(sim, "ivy", "!accept", "ivy")

    mark = len(sim.sent)
    await sim.say("alice", "kim", "!duel jon 70")
    await said(sim, mark, "@jon, @kim challenges you")
    line = await said(sim, mark, "did not answer", within=8)
    assert "@jon did not answer @kim's duel in time: 70 cookies back to @kim" in line
    assert await points(bot, "kim") == 500
    assert "no open duel" in await ask(sim, "jon", "!accept", "jon")
    assert rows(bot, "SELECT state, count(*) FROM game_rounds GROUP BY state ORDER BY state") \
        == [("refunded", 2), ("settled", 1)]  # fmt: skip
    assert await audit(bot.config.database.path) == []


async def test_a_heist_with_too_few_players_refunds(modded: Simulator, start_bot: StartBot
                                                    ) -> None:  # fmt: skip
    """Two join where three are needed: called off, every bet back, in one line."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["lea", "max"], 300)
    mark = len(sim.sent)
    await sim.say("alice", "lea", "!heist 100")
    assert "@lea is planning heist #1 with 100 cookies" in await said(sim, mark, "planning")
    await sim.say("alice", "max", "!heist 40")
    assert "you are in this heist already" in await ask(sim, "max", "!heist 5", "max")
    line = await said(sim, mark, "Heist #1: only 2 joined, 3 needed", within=8)
    assert "every bet is refunded (140 cookies)" in line
    assert (await points(bot, "lea"), await points(bot, "max")) == (300, 300)
    assert await audit(bot.config.database.path) == []


async def test_a_heist_of_many_pays_each_survivor_floor_of_bet_times_17(
    modded: Simulator, start_bot: StartBot
) -> None:
    """40 viewers join within the time; each player's recorded roll decides: 50 or less is
    paid floor(bet * 1.7), more loses the bet; the result takes at most three lines within
    the send limits; audit passes."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "games": {**GAMES, "heist_join_seconds": 4}}})
    crew = [f"crew{i:02d}" for i in range(40)]
    users = [sim.world.ensure_user(login) for login in crew]
    sim.irc.say_many("alice", [(u, "hi") for u in users])
    await asyncio.sleep(0.5)
    await ask(sim, "modmo", "!addpoints all 1000", "gave")
    mark = len(sim.sent)
    bets = {login: 10 + 7 * i for i, login in enumerate(crew)}
    sim.irc.say_many("alice", [(u, f"!heist {bets[u.login]}") for u in users])
    first = await said(sim, mark, re.compile(r"Heist #1: (\d+ of 40 got away|the whole crew)"),
                       within=15)  # fmt: skip
    await asyncio.sleep(1)
    result = [m.text for m in sim.sent[mark:] if m.text.startswith(("Heist #1:", "… "))]
    assert 1 <= len(result) <= 3, result
    recorded = {
        login: (int(roll), bet, returned) for login, roll, bet, returned in rows(
            bot, "SELECT v.login, r.roll, r.bet, r.returned FROM game_rolls AS r"
            " JOIN viewers AS v ON v.user_id = r.user_id")
    }  # fmt: skip
    assert set(recorded) == set(crew)
    for login, (roll, bet, returned) in recorded.items():
        assert bet == bets[login]
        expected = int(Decimal(bet) * Decimal("1.7")) if roll <= 50 else 0
        assert returned == expected, (login, roll, bet, returned)
        assert await points(bot, login) == 1000 - bet + expected, login
    survivors = sum(1 for roll, _, _ in recorded.values() if roll <= 50)
    if survivors:
        assert first.startswith(f"Heist #1: {survivors} of 40 got away")
    assert sim.rate_report() == []
    assert await audit(bot.config.database.path) == []
