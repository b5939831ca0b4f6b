"""Contests end to end (SPEC §10.3, §10.6): the real daemon against the simulator, from an
empty database, the way a moderator and viewers (some of them careless) use it in chat.
Points reach viewers only as an operator gives them: ``!addpoints``."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from loyaltybot.simulator import Simulator
from tests.e2e.conftest import RunningBot, StartBot, audit

pytestmark = pytest.mark.timeout(180)

ALICE = {
    "currency_name": "cookie",
    "currency_name_plural": "cookies",
    "contest_min_bet": 5,
    "contest_max_bet": 500,
    "command_cooldown_seconds": 0,  # every refusal answered: the tests read each one
}
BAD_AMOUNTS = ("0", "-5", "1e5", "1.5", "abc", "99999999999999999999")


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
    """Viewers say hello (the bot sees them), then a moderator gives everyone present points."""
    for login in logins:
        await sim.say("alice", login, "hello!")
    await asyncio.sleep(0.3)
    await ask(sim, "modmo", f"!addpoints all {each}", "gave")


@pytest.fixture
def modded(sim: Simulator) -> Simulator:
    sim.set_role("alice", "modmo", mod=True)
    return sim


async def test_a_contest_settles_to_the_point_in_chat(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A moderator opens a contest; viewers bet (one tops up); the winner is named; each
    payout matches the hand computation: W = 100 + 50 + 50 = 200, L = 30 + 7 = 37; shares
    3700/200 = 18 r100, 1850/200 = 9 r50 (twice); 37 - 36 = 1 point left goes to the largest
    remainder (r100): 119, 59, 59; the losers' bets are gone; audit passes."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    viewers = ["ann", "ben", "cat", "dan", "eve"]
    await welcome(sim, viewers, 200)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest open Will we beat the boss? | Yes | No | Maybe")
    opened = await said(sim, mark, "Contest #1 is open")
    assert "Will we beat the boss? 1) Yes · 2) No · 3) Maybe" in opened
    assert "!bet <option> <amount> (5 to 500 cookies each)" in opened
    mark = len(sim.sent)
    for user, text in (("ann", "!bet 1 60"), ("ben", "!bet 1 50"), ("cat", "!bet #1 50"),
                       ("dan", "!bet 2 30"), ("eve", "!bet 3 7"), ("ann", "!bet 1 40")):
        await sim.say("alice", user, text)
    await said(sim, mark, "pool 237 cookies from 5 bettors", within=15)
    status = await ask(sim, "ann", "!contest", "ann")
    assert "1) Yes 200 (1:1.18) · 2) No 30 (1:7.90) · 3) Maybe 7 (1:33.85)" in status
    assert "Your bet: 100 cookies on 1 (Yes)" in status
    assert [await points(bot, v) for v in viewers] == [100, 150, 150, 170, 193]
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest winner 1")
    line = await said(sim, mark, "Contest #1: option 1 (Yes) wins!")
    assert "3 winners share 237 cookies" in line and "@ann 119" in line
    assert [await points(bot, v) for v in viewers] == [219, 209, 209, 170, 193]
    assert "no contest is running; Contest #1" in await ask(sim, "ben", "!contest", "ben")
    assert await audit(bot.config.database.path) == []


async def test_bad_input_gets_one_clear_line_and_changes_nothing(
    modded: Simulator, start_bot: StartBot
) -> None:
    """Bad amounts, options and limits, a second option, a viewer's moderator command, a
    malformed open: each one line, balances and pools unchanged."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["ann", "ben"], 100)
    assert "no contest is running" in await ask(sim, "ann", "!bet 1 10", "ann")
    assert "only moderators" in await ask(sim, "ann", "!contest open Q | a | b", "ann")
    for text, expect in (("!contest open Q | only one", "a contest has 2 to 10 options"),
                         ("!contest open  | a | b", "the question is empty"),
                         ("!contest open Q | a | A", "option 2 is the same as option 1"),
                         ("!contest open Q | a |  | c", "option 2 is empty")):  # fmt: skip
        assert expect in await ask(sim, "modmo", text, "modmo")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest open Coin toss | Heads | Tails")
    await said(sim, mark, "Contest #1 is open")
    assert "Contest #1 is still open" in await ask(sim, "modmo", "!contest open X | a | b",
                                                   "modmo")  # fmt: skip
    for bad in BAD_AMOUNTS:
        reply = await ask(sim, "ann", f"!bet 1 {bad}", "ann")
        assert "not a valid amount" in reply or "must be" in reply, reply
    assert "no option 3: the options are 1 to 2" in await ask(sim, "ann", "!bet 3 10", "ann")
    assert "!bet <option> <amount>" in await ask(sim, "ann", "!bet heads 10", "ann")
    assert "the smallest bet is 5 cookies" in await ask(sim, "ann", "!bet 1 4", "ann")
    assert "is more than you have (100 cookies)" in await ask(sim, "ann", "!bet 1 101", "ann")
    mark = len(sim.sent)
    await sim.say("alice", "ann", "!bet 1 20")
    await said(sim, mark, "@ann on 1 (holds 20)", within=10)
    assert "you bet on option 1 already" in await ask(sim, "ann", "!bet 2 5", "ann")
    assert "there is no option 9" in await ask(sim, "modmo", "!contest winner 9", "modmo")
    assert "!contest" in await ask(sim, "modmo", "!contest winner x", "modmo")
    running = await bot.daemon.bank.store.read(
        lambda c: c.execute("SELECT pool, bettors FROM contest_pools ORDER BY option").fetchall()
    )
    assert running == [(20, 1), (0, 0)]
    assert (await points(bot, "ann"), await points(bot, "ben")) == (80, 100)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest cancel")
    line = await said(sim, mark, "Contest #1 is canceled")
    assert "every bet refunded (20 cookies back to 1 viewer)" in line
    assert await points(bot, "ann") == 100
    assert await audit(bot.config.database.path) == []


async def test_the_max_and_the_close_timer(modded: Simulator, start_bot: StartBot) -> None:
    """Top-ups add up to contest_max_bet and no further; a contest opened with a closing
    time closes itself and says so; after it no bet is taken; nobody on the winner: all
    refunded."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "contest_close_after_seconds": 3}})
    await welcome(sim, ["ann", "ben"], 1000)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest open Red or blue? | Red | Blue")
    assert "bets close in 3 s" in await said(sim, mark, "Contest #1 is open")
    await sim.say("alice", "ann", "!bet 2 450")
    await said(sim, mark, "@ann on 2 (holds 450)", within=10)
    assert "at most 50 cookies more" in await ask(sim, "ann", "!bet 2 60", "ann")
    await sim.say("alice", "ann", "!bet 2 50")
    closed = await said(sim, mark, "Contest #1 is closed: no more bets", within=10)
    assert "Pool 500 cookies from 1 bettor" in closed
    assert "Contest #1 is closed: it takes no more bets" in await ask(sim, "ben", "!bet 1 10",
                                                                      "ben")  # fmt: skip
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest winner 1")
    line = await said(sim, mark, "Contest #1: option 1 (Red) wins, but nobody bet on it")
    assert "(500 cookies back to 1 viewer)" in line
    assert await points(bot, "ann") == 1000
    assert await audit(bot.config.database.path) == []


async def test_200_viewers_bet_within_one_second_within_the_send_limits(
    modded: Simulator, start_bot: StartBot
) -> None:
    """200 viewers each type !bet within a second (every tenth asks for too much): every
    accepted bet is committed exactly once, the bot acknowledges in a few summary lines,
    refusals stay within the budget, Twitch counts 0 rate violations; the settlement pays
    exactly the pool."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "command_cooldown_seconds": 5}})
    viewers = [f"crowd{i:03d}" for i in range(200)]
    users = [sim.world.ensure_user(login) for login in viewers]
    sim.irc.say_many("alice", [(u, "hi") for u in users])
    await asyncio.sleep(0.5)
    await ask(sim, "modmo", "!addpoints all 1000", "gave")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest open Which map? | Dust | Mirage | Inferno")
    await said(sim, mark, "Contest #1 is open")
    sent_before = len(sim.sent)
    wanted: dict[str, tuple[int, int]] = {}
    started = time.monotonic()
    for i, user in enumerate(users):
        amount = 900 if i % 10 == 0 else 10 + i  # over the 500 maximum: refused
        option = 1 + i % 3
        if amount <= 500:
            wanted[user.login] = (option, amount)
        await sim.say("alice", user.login, f"!bet {option} {amount}")
        await asyncio.sleep(max(0.0, started + (i + 1) * 1.0 / 200 - time.monotonic()))
    assert time.monotonic() - started < 1.3
    pool = sum(amount for _, amount in wanted.values())
    await said(sim, sent_before, f"pool {pool:,} cookies from {len(wanted)} bettors", within=15)
    await asyncio.sleep(1)
    for login in viewers:
        assert await points(bot, login) == 1000 - wanted.get(login, (0, 0))[1], login
    rows, _ = await bot.daemon.bank.ledger_page("alice", limit=500)
    stakes = [r for r in rows if r.type == "contest_stake"]
    assert len(stakes) == len(wanted) and -sum(r.amount for r in stakes) == pool
    assert sim.rate_report() == []
    lines = sim.sent[sent_before:]
    summaries = [m for m in lines if m.text.startswith("Contest #1: +")]
    assert 1 <= len(summaries) <= 4, [m.text for m in lines]
    assert len([m for m in lines if "you can bet at most" in m.text]) <= 20
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!contest winner 2")
    line = await said(sim, mark, "Contest #1: option 2 (Mirage) wins!")
    assert f"share {pool:,} cookies" in line
    total = sum([await points(bot, login) for login in viewers])
    assert total == 1000 * len(viewers)  # the pool went back whole: nothing created or lost
    assert sim.rate_report() == []
    assert await audit(bot.config.database.path) == []


async def test_the_public_json_and_pages_refuse_bad_requests_cleanly(
    modded: Simulator, start_bot: StartBot
) -> None:
    """The JSON follows the contest; an unknown channel or id is a 404 with one clear
    message (JSON for the API, a page for the overlay); a form posted without a session
    is refused and changes nothing; the games and economy pages ask for a login."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    base = bot.daemon.web_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/channels/alice/contest") as response:
            assert (response.status, await response.json()) == (
                200, {"id": None, "state": "none", "channel": "alice"})
        mark = len(sim.sent)
        await sim.say("alice", "modmo", "!contest open Q? | Yes | No")
        await said(sim, mark, "Contest #1 is open")
        async with http.get(f"{base}/api/v1/channels/alice/contest") as response:
            body = await response.json()
            assert (body["id"], body["state"], body["pool"]) == (1, "open", 0)
        for path, status in (("/api/v1/channels/nobody/contest", 404),
                             ("/api/v1/channels/alice/contest?id=abc", 404),
                             ("/api/v1/channels/alice/contest?id=99", 404)):  # fmt: skip
            async with http.get(base + path) as response:
                assert response.status == status, path
                assert set(await response.json()) == {"error"}, path
        for path in ("/c/nobody/contest", "/c/alice/contest?id=7"):
            async with http.get(base + path) as response:
                assert response.status == 404, path
                assert "Traceback" not in await response.text()
        async with http.post(f"{base}/dashboard/alice/contest/1/cancel",
                             data={"winner": "1"}) as response:  # fmt: skip
            assert response.status == 403
        for path in ("/dashboard/alice/games", "/dashboard/alice/economy",
                     "/dashboard/alice/contest"):  # fmt: skip
            async with http.get(base + path, allow_redirects=False) as response:
                assert response.status == 302 and "/login" in response.headers["Location"]
    running = await bot.daemon.bank.store.read(
        lambda c: c.execute("SELECT state FROM contests").fetchall())
    assert running == [("open",)]
    assert await audit(bot.config.database.path) == []
