"""Giveaways end to end (SPEC §10.2, §10.6): the real daemon against the simulator, from an
empty database, the way a streamer, a moderator and viewers (some of them adversarial)
use it in chat. Points reach viewers only as an operator gives them: ``!addpoints``."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loyaltybot.simulator import Simulator
from tests.e2e.conftest import RunningBot, StartBot, audit

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
ALICE = {
    "currency_name": "cookie",
    "currency_name_plural": "cookies",
    "giveaway_ticket_cost": 10,
    "giveaway_max_tickets": 5,
    "giveaway_subscriber_luck": 2.0,
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


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's CLI on the daemon's database, as its own process."""
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "bot.db"}"\n'
                      '[twitch]\nclient_id = "x"\nbot_login = "mybot"\n[channels.alice]\n')
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args, "-c", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def modded(sim: Simulator) -> Simulator:
    sim.set_role("alice", "modmo", mod=True)
    return sim


async def test_tickets_over_the_limit_are_refused_and_change_nothing(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A viewer buys up to the limit; past it, the reply says how many are left; bad
    amounts, a closed giveaway and a poor viewer each get one clear line; points exact."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["dana", "poorpete"], 100)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open A signed mousepad")
    opened = await said(sim, mark, "Giveaway #1 is open")
    assert "A signed mousepad" in opened and "10 cookies a ticket, up to 5 each" in opened
    mark = len(sim.sent)
    await sim.say("alice", "dana", "!ticket 3")
    assert "@dana +3 (holds 3)" in await said(sim, mark, "Giveaway #1: @dana")
    assert "you can buy 2 more tickets at most" in await ask(sim, "dana", "!ticket 3", "dana")
    assert await points(bot, "dana") == 70
    for bad in BAD_AMOUNTS:
        reply = await ask(sim, "dana", f"!ticket {bad}", "dana")
        assert "is not a valid amount" in reply, reply
    mark = len(sim.sent)
    await sim.say("alice", "dana", "!tickets max")
    assert "@dana +2 (holds 5)" in await said(sim, mark, "Giveaway #1: @dana")
    assert "already hold the most tickets allowed (5)" in await ask(sim, "dana", "!join", "dana")
    await ask(sim, "modmo", "!removepoints poorpete 95", "took 95")
    assert "2 tickets cost 20 cookies, and you have 5 cookies" in await ask(
        sim, "poorpete", "!ticket 2", "poorpete"
    )
    status = await ask(sim, "dana", "!giveaway", "dana")
    assert "Giveaway #1 is open" in status and "you hold 5 tickets" in status
    assert "5 tickets from 1 entrant" in status
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway close")
    await said(sim, mark, "Giveaway #1 is closed")
    assert "Giveaway #1 is closed: it takes no more tickets" in await ask(
        sim, "poorpete", "!ticket", "poorpete"
    )
    assert "only moderators" in await ask(sim, "dana", "!giveaway draw", "dana")
    assert (await points(bot, "dana"), await points(bot, "poorpete")) == (50, 5)
    assert await audit(bot.config.database.path) == []


async def test_cancel_refunds_every_ticket_to_the_point(
    modded: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Viewers with different balances buy different numbers of tickets; cancel gives each
    exactly what they paid; the ledger has one refund per buyer; audit passes."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    viewers = [f"fan{i}" for i in range(8)]
    await welcome(sim, viewers, 60)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Game key")
    await said(sim, mark, "Giveaway #1 is open")
    for i, login in enumerate(viewers):
        await sim.say("alice", login, f"!ticket {1 + i % 5}")
    paid = sum(10 * (1 + i % 5) for i in range(8))
    await said(sim, mark, f"{paid // 10} tickets from 8 entrants", within=10)
    assert run_cli(tmp_path, "audit").returncode == 0
    held = run_cli(tmp_path, "audit").stdout
    assert f"hold exactly their stakes: {paid} points" in held
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway cancel")
    line = await said(sim, mark, "Giveaway #1 is canceled")
    assert f"every ticket refunded ({paid} cookies back to 8 viewers)" in line
    assert [await points(bot, login) for login in viewers] == [60] * 8
    rows, _ = await bot.daemon.bank.ledger_page("alice")
    assert sorted(r.amount for r in rows if r.type == "giveaway_refund") == sorted(
        10 * (1 + i % 5) for i in range(8)
    )
    assert "no giveaway is running" in await ask(sim, "fan1", "!ticket", "fan1")
    assert await audit(bot.config.database.path) == []


async def test_verify_agrees_with_the_draw(
    modded: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """The commitment posted at close is the SHA-256 of the seed published at the draw;
    two draws continue one order; `loyaltybot giveaway verify 1` prints the same winners
    and exits 0; an unknown id exits 2."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    viewers = [f"entrant{i}" for i in range(20)]
    await welcome(sim, viewers, 100)
    for login in viewers[:5]:
        sim.set_role("alice", login, subscriber_tier=1000)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Headset")
    await said(sim, mark, "Giveaway #1 is open")
    for i, login in enumerate(viewers):
        await sim.say("alice", login, f"!ticket {1 + i % 5}")
    await said(sim, mark, "from 20 entrants", within=10)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway close")
    closed = await said(sim, mark, "Giveaway #1 is closed")
    commitment = re.search(r"SHA-256 is ([0-9a-f]{64})", closed)
    assert commitment is not None
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway draw 2")
    first = await said(sim, mark, "the winners are")
    seed_line = await said(sim, mark, "Giveaway #1 seed:")
    seed = re.search(r"seed: ([0-9a-f]{64})", seed_line)
    assert seed is not None
    assert hashlib.sha256(seed[1].encode()).hexdigest() == commitment[1]
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway draw")
    second = await said(sim, mark, "the winner is")
    announced = re.findall(r"@(entrant\d+)", first) + re.findall(r"@(entrant\d+)", second)
    assert len(set(announced)) == 3
    result = run_cli(tmp_path, "giveaway", "verify", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = re.findall(r"^\s+\d+\. (entrant\d+) ", result.stdout, re.M)
    assert listed == announced
    assert "verify ok" in result.stdout
    assert run_cli(tmp_path, "giveaway", "verify", "99").returncode == 2
    assert run_cli(tmp_path, "giveaway", "verify", "abc").returncode == 2
    assert await audit(bot.config.database.path) == []


async def test_150_viewers_buy_tickets_in_two_seconds_within_the_send_limits(
    modded: Simulator, start_bot: StartBot
) -> None:
    """150 viewers type !ticket within 2 s (some asking for too many): every accepted
    ticket is debited once, the bot acknowledges in a few summary lines, refusals are
    answered within the budget, and Twitch counts 0 rate violations."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "command_cooldown_seconds": 5}})
    viewers = [f"crowd{i:03d}" for i in range(150)]
    await welcome(sim, viewers, 1000)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Big prize")
    await said(sim, mark, "Giveaway #1 is open")
    sent_before = len(sim.sent)
    started = time.monotonic()
    wanted: dict[str, int] = {}
    for i, login in enumerate(viewers):
        asked = 9 if i % 10 == 0 else 1 + i % 5  # every tenth asks past the limit
        wanted[login] = 0 if asked > 5 else asked
        await sim.say("alice", login, f"!ticket {asked}")
        await asyncio.sleep(max(0.0, started + (i + 1) * 2.0 / 150 - time.monotonic()))
    assert time.monotonic() - started < 2.5
    total = sum(wanted.values())
    await said(sim, sent_before, f"{total:,} tickets from {sum(1 for w in wanted.values() if w)}"
               " entrants", within=15)  # fmt: skip
    await asyncio.sleep(2)
    for login, tickets in wanted.items():
        assert await points(bot, login) == 1000 - 10 * tickets, login
    rows, _ = await bot.daemon.bank.ledger_page("alice", limit=500)
    assert -sum(r.amount for r in rows if r.type == "giveaway_ticket") == 10 * total
    assert sim.rate_report() == []
    lines = sim.sent[sent_before:]
    summaries = [m for m in lines if m.text.startswith("Giveaway #1: +")]
    assert 1 <= len(summaries) <= 4, [m.text for m in lines]
    refusals = [m for m in lines if "more tickets at most" in m.text]
    assert len(refusals) <= 15
    assert await audit(bot.config.database.path) == []


async def test_a_burst_where_the_bot_is_not_a_moderator_stays_within_one_line_a_second(
    sim: Simulator, start_bot: StartBot
) -> None:
    """Without a role the bot may send 20 lines in 30 s, one a second: 60 viewers, half of
    them refused, still 0 violations, and the tickets are acknowledged."""
    sim.set_role("alice", "modmo", mod=True)
    sim.set_role("alice", "mybot", mod=False)
    bot = await start_bot({"alice": ALICE})
    viewers = [f"lurker{i:02d}" for i in range(60)]
    await welcome(sim, viewers, 20)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Sticker")
    await said(sim, mark, "Giveaway #1 is open")
    sent_before = len(sim.sent)
    for i, login in enumerate(viewers):
        await sim.say("alice", login, f"!ticket {1 if i % 2 else 3}")  # 3 cost 30 > 20
    await said(sim, sent_before, "30 tickets from 30 entrants", within=20)
    assert sim.rate_report() == []
    assert await audit(bot.config.database.path) == []


async def test_a_moderator_draws_only_among_present_viewers(
    modded: Simulator, start_bot: StartBot
) -> None:
    """`draw n present` skips entrants who left (the chatter list after the next interval
    says who is here): the skipped are named, never winners, and the draw verifies."""
    sim = modded
    bot = await start_bot({"alice": {**ALICE, "interval_minutes": 0.05}})
    viewers = [f"guest{i}" for i in range(6)]
    for login in viewers:
        await sim.join("alice", login)
    await welcome(sim, viewers, 50)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Poster")
    await said(sim, mark, "Giveaway #1 is open")
    for login in viewers:
        await sim.say("alice", login, "!ticket 5")
    await said(sim, mark, "30 tickets from 6 entrants", within=10)
    gone, staying = viewers[:3], viewers[3:]
    for login in gone:
        await sim.part("alice", login)
    await asyncio.sleep(7)  # two earning intervals: the chatter list no longer has them
    assert {v.login for v in bot.daemon.earning.present("alice")} >= set(staying)
    assert not {v.login for v in bot.daemon.earning.present("alice")} & set(gone)
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway close")
    await said(sim, mark, "Giveaway #1 is closed")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway draw 3 present")
    await said(sim, mark, "Giveaway #1 seed:")
    lines = [m.text for m in sim.sent[mark:]]
    winners_line = next(t for t in lines if "the winners are" in t)
    assert set(re.findall(r"@(guest\d)", winners_line)) == set(staying), lines
    skipped = [t for t in lines if "skipped, not here" in t]
    assert all(set(re.findall(r"guest\d", t)) <= set(gone) for t in skipped)
    giveaway = await bot.daemon.bank.store.read(
        lambda c: c.execute("SELECT count(*) FROM giveaway_picks WHERE outcome = 'skipped'")
        .fetchone()[0]
    )
    assert giveaway == sum(len(re.findall(r"guest\d", t)) for t in skipped)
    assert await audit(bot.config.database.path) == []


async def test_a_moderators_bad_input_is_one_clear_line_and_changes_nothing(
    modded: Simulator, start_bot: StartBot
) -> None:
    """No prize, a bad or too large number of winners, an unknown word, an action out of
    order, a viewer trying a moderator's action: each one line; the giveaway is untouched."""
    sim = modded
    bot = await start_bot({"alice": ALICE})
    await welcome(sim, ["vera"], 100)
    assert "usage: !giveaway" in await ask(sim, "modmo", "!giveaway open", "modmo")
    assert "usage: !giveaway" in await ask(sim, "modmo", "!giveaway frobnicate", "modmo")
    assert "no giveaway is running" in await ask(sim, "modmo", "!giveaway close", "modmo")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway open Plushie")
    await said(sim, mark, "Giveaway #1 is open")
    await sim.say("alice", "vera", "!ticket 2")
    await said(sim, mark, "@vera +2")
    assert "still open: draw or cancel it before opening another" in await ask(
        sim, "modmo", "!giveaway open Another", "modmo")  # fmt: skip
    assert "still open: close it first" in await ask(sim, "modmo", "!giveaway draw", "modmo")
    assert "only moderators" in await ask(sim, "vera", "!giveaway cancel", "vera")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!giveaway close")
    await said(sim, mark, "Giveaway #1 is closed")
    for words, expect in (("draw abc", "is not a valid amount"), ("draw 0", "at least 1"),
                          ("draw 26", "at most 25 winners"), ("draw -5", "must be positive"),
                          ("draw 2 present later", "usage: !giveaway"),
                          ("close", "is closed already")):  # fmt: skip
        assert expect in await ask(sim, "modmo", f"!giveaway {words}", "modmo"), words
    status = await ask(sim, "vera", "!giveaway", "vera")
    assert "Giveaway #1 is closed" in status and "you hold 2 tickets" in status
    assert await points(bot, "vera") == 80
    assert await audit(bot.config.database.path) == []
