# ruff: noqa: F811 (pytest fixtures are imported by name, then requested by name)
"""Faults (issue 8): Twitch and the disk misbehave under the real daemon; each fault is
logged, survived, and loses or doubles nothing.

The daemon runs in this process against the simulator (tests/e2e/conftest.py). Helix
faults come from ``sim.faults``; the test notes the moment each fault is served (by
watching its hit counter) and reads the simulator's request log to prove what the daemon
did next: waited for the rate-limit reset, backed off, retried once. Balances are then
compared with what the credited ticks say, viewer by viewer.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from loyaltybot.chat.replies import APOLOGY
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.simulator import Simulator, SimUser
from loyaltybot.simulator.faults import Fault
from tests.e2e.conftest import RunningBot, StartBot, audit, sim, start_bot  # noqa: F401

pytestmark = pytest.mark.timeout(120)

CHANNEL = "alice"
POINTS = 10
INTERVAL_MINUTES = 0.025  # 1.5 s


def settings(**extra: Any) -> dict[str, dict[str, Any]]:
    return {
        CHANNEL: {
            "currency_name": "cookie",
            "currency_name_plural": "cookies",
            "points_per_interval": POINTS,
            "interval_minutes": INTERVAL_MINUTES,
            **extra,
        }
    }


class Books:
    """The daemon's SQLite file, read as an outsider (WAL: never blocks the daemon)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def ticks(self) -> list[tuple[int, int, int, int]]:
        """(seq, due_at ms, present, points) of every credited tick."""
        return [
            (int(a), int(b), int(c), int(d))
            for a, b, c, d in self.query(
                "SELECT seq, due_at, present, points FROM earning_ticks ORDER BY seq"
            )
        ]

    def points(self) -> dict[str, int]:
        return {str(uid): int(p) for uid, p in self.query("SELECT user_id, points FROM viewers")}

    async def wait_seq(self, seq: int, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not self.ticks() or self.ticks()[-1][0] < seq:
            assert time.monotonic() < deadline, f"tick {seq} was never credited"
            await asyncio.sleep(0.02)


def earned_exactly(books: Books, viewers: list[SimUser], interval_ms: int) -> int:
    """Ticks are 1..n without gaps, a whole interval apart; every viewer who was present
    all along has exactly n ticks' worth; returns n."""
    ticks = books.ticks()
    seqs = [t[0] for t in ticks]
    assert seqs == list(range(1, len(ticks) + 1)), f"ticks lost or doubled: {seqs}"
    assert all(b[1] - a[1] >= interval_ms for a, b in itertools.pairwise(ticks))
    points = books.points()
    wrong = {v.login: points.get(v.id) for v in viewers if points.get(v.id) != POINTS * len(ticks)}
    assert not wrong, f"after {len(ticks)} ticks, want {POINTS * len(ticks)} each: {wrong}"
    assert sum(t[3] for t in ticks) == sum(points.values())
    return len(ticks)


def transfers(books: Books) -> list[int]:
    """The amounts of every !give ledger row, in order."""
    return [
        int(a)
        for (a,) in books.query("SELECT amount FROM ledger WHERE type = 'transfer' ORDER BY id")
    ]


async def served(fault: Fault, hits: int, now: Callable[[], float], within: float = 15.0) -> float:
    """Until the simulator has served ``hits`` of this fault; the time it noticed."""
    deadline = time.monotonic() + within
    while fault.hits < hits:
        assert time.monotonic() < deadline, f"fault on {fault.prefix} never served"
        await asyncio.sleep(0.002)
    return now()


def requests_after(sim: Simulator, path: str, moment: float) -> list[float]:
    """When the simulator answered ``path`` (faults not included) after ``moment``."""
    return [at for at, _, p in sim.helix.requests if p.startswith(path) and at > moment]


async def lively(
    sim: Simulator, start_bot: StartBot, n: int = 20
) -> tuple[RunningBot, list[SimUser]]:
    sim.set_live(CHANNEL, True)
    viewers = sim.add_users(n, prefix="watcher")
    sim.set_chatters(CHANNEL, viewers)
    return await start_bot(settings()), viewers


async def ask(sim: Simulator, user: str, text: str, expect: str, within: float = 10.0) -> str:
    mark = len(sim.sent)
    await sim.say(CHANNEL, user, text)
    reply = await sim.wait_for_reply(CHANNEL, contains=expect, after=mark, timeout=within)
    return reply.text


async def seed(bot: RunningBot, sim: Simulator, **balances: int) -> None:
    for login, amount in balances.items():
        user = sim.world.ensure_user(login)
        await bot.daemon.bank.credit(
            CHANNEL, Viewer(user.id, user.login, user.display_name), amount, kind=EntryType.ADD
        )


# ---- Helix ------------------------------------------------------------------------------


async def test_rate_limit_waits_for_the_reset_and_loses_no_tick(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """429 with Ratelimit-Reset on Get Streams, then on Get Chatters, in one tick: the daemon
    waits until the reset each time (one retry, no hot loop), the tick completes with the
    full chatter list, and balances are exactly n ticks' worth."""
    books = Books(tmp_path / "bot.db")
    with capture_logs() as logs:
        bot, viewers = await lively(sim, start_bot)
        await books.wait_seq(1)
        streams = sim.faults.add("/streams", status=429, count=1, reset_in=1.0)
        chatters = sim.faults.add("/chat/chatters", status=429, count=1, reset_in=1.0)
        streams_at = await served(streams, 1, sim.clock.monotonic)
        chatters_at = await served(chatters, 1, sim.clock.monotonic)
        await books.wait_seq(3)
        assert not bot.task.done()
        assert await bot.stop() == 0

    for path, limited_at in (("/helix/streams", streams_at), ("/helix/chat/chatters", chatters_at)):
        retried_at = requests_after(sim, path, limited_at)[0]
        assert retried_at - limited_at >= 0.95, f"{path} asked again before the reset"
    assert streams.hits == chatters.hits == 1
    assert chatters_at - streams_at >= 0.95  # the tick waited before going on
    limited = [e for e in logs if e["event"] == "helix_rate_limited"]
    assert [e["path"] for e in limited] == ["/streams", "/chat/chatters"]
    assert all(e["wait_seconds"] >= 0.95 for e in limited)
    ticks = earned_exactly(books, viewers, round(INTERVAL_MINUTES * 60_000))
    assert all(t[2] == len(viewers) for t in books.ticks()), "a tick missed the chatter list"
    # Get Streams: once at start, once per tick (plus the one refused): no retry storm
    assert len(requests_after(sim, "/helix/streams", 0.0)) <= ticks + 2
    assert await audit(tmp_path / "bot.db") == []


async def test_server_errors_and_a_dropped_connection_are_retried(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Two 503s on Get Streams and two TCP drops on Get Chatters in one tick: each is
    logged and retried after a growing pause (aiohttp itself retries the first drop, on a
    reused connection, at once), and the tick is credited once, in full."""
    books = Books(tmp_path / "bot.db")
    with capture_logs() as logs:
        bot, viewers = await lively(sim, start_bot)
        await books.wait_seq(1)
        errors = sim.faults.add("/streams", status=503, count=2)
        dropped = sim.faults.add("/chat/chatters", status=0, count=2)
        first = await served(errors, 1, sim.clock.monotonic)
        second = await served(errors, 2, sim.clock.monotonic)
        cut = await served(dropped, 2, sim.clock.monotonic)
        await books.wait_seq(3)
        mark = len(sim.sent)
        await sim.say(CHANNEL, viewers[0], "!points")
        await sim.wait_for_reply(CHANNEL, contains=f"@{viewers[0].login}", after=mark)
        assert await bot.stop() == 0

    assert second - first >= 0.95  # backoff 1 s, then 2 s
    assert requests_after(sim, "/helix/streams", second)[0] - second >= 1.95
    assert requests_after(sim, "/helix/chat/chatters", cut)[0] - cut >= 0.95
    server_errors = [e for e in logs if e["event"] == "helix_server_error"]
    assert [(e["path"], e["status"], e["attempt"]) for e in server_errors] == [
        ("/streams", 503, 1),
        ("/streams", 503, 2),
    ]
    unreachable = [e for e in logs if e["event"] == "helix_unreachable"]
    assert [e["path"] for e in unreachable] == ["/chat/chatters"]
    assert not [e for e in logs if e["event"] == "earning_tick_failed"]
    earned_exactly(books, viewers, round(INTERVAL_MINUTES * 60_000))
    assert all(t[2] == len(viewers) for t in books.ticks())
    assert await audit(tmp_path / "bot.db") == []


@pytest.mark.slow
async def test_helix_slower_than_the_timeout(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Get Streams answers after the daemon's 10 s timeout: the request is abandoned,
    logged and retried; chat keeps answering meanwhile; the late tick is credited once and
    the intervals it overran are skipped (logged), never paid twice."""
    books = Books(tmp_path / "bot.db")
    with capture_logs() as logs:
        bot, viewers = await lively(sim, start_bot)
        await seed(bot, sim, bob=50, carol=1)
        await books.wait_seq(1)
        # aiohttp rounds a timeout of 5 s or more up to a whole second: 10 s fires by 11 s
        slow = sim.faults.add("/streams", status=None, delay=11.2, count=1)
        await served(slow, 1, sim.clock.monotonic)
        stalled = books.ticks()[-1][0]
        await asyncio.sleep(1.0)
        assert "you have 50 cookies" in await ask(sim, "bob", "!points", "@bob", within=3)
        assert "you gave 5 cookies" in await ask(sim, "bob", "!give carol 5", "@bob", within=3)
        assert books.ticks()[-1][0] == stalled, "a tick was credited around the stalled one"
        await books.wait_seq(stalled + 2, within=25)
        assert await bot.stop() == 0

    timeouts = [e for e in logs if e["event"] == "helix_unreachable"]
    assert [e["path"] for e in timeouts] == ["/streams"]
    assert [e for e in logs if e["event"] == "earning_ticks_skipped"], "overrun not logged"
    ticks = books.ticks()
    seqs = [t[0] for t in ticks]
    assert seqs == list(range(1, len(ticks) + 1))
    points = books.points()
    assert all(points[v.id] == POINTS * len(ticks) for v in viewers)
    assert transfers(books) == [-5, 5]
    assert await audit(tmp_path / "bot.db") == []


# ---- IRC ---------------------------------------------------------------------------------


async def wait_connected(bot: RunningBot, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not (bot.daemon.chat.connected and CHANNEL in bot.daemon.chat.joined):
        assert time.monotonic() < deadline, "the bot never came back"
        await asyncio.sleep(0.05)


async def test_dropped_connection_and_reconnect(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """A !give acknowledged just before a TCP drop is in the ledger; the bot reconnects,
    rejoins and answers; the same after a RECONNECT."""
    books = Books(tmp_path / "bot.db")
    with capture_logs() as logs:
        bot = await start_bot()
        await seed(bot, sim, bob=100, carol=7)
        assert "you gave 30 cookies to carol" in await ask(sim, "bob", "!give carol 30", "@bob")
        assert await sim.drop_connections() >= 1
        await asyncio.sleep(0.2)
        await wait_connected(bot)
        assert "you have 37 cookies" in await ask(sim, "carol", "!points", "@carol")
        assert await sim.send_reconnect(drop_after=1.0) >= 1
        await asyncio.sleep(1.2)
        await wait_connected(bot)
        assert "you have 70 cookies" in await ask(sim, "bob", "!points", "@bob")
        assert not bot.task.done()
        assert await bot.stop() == 0

    assert transfers(books) == [-30, 30]
    joins = [e for e in logs if e["event"] == "chat_joined" and e["channel"] == CHANNEL]
    assert len(joins) >= 3, "the bot did not join again after each loss"
    assert await audit(tmp_path / "bot.db") == []


GARBAGE = [
    "\r\n",
    "\r\n\r\n\r\n",
    " \r\n",
    ":\r\n",
    "@\r\n",
    "@;\r\n",
    "@;;=;=x;a=\\ :x PRIVMSG #alice :!points\r\n",  # tags without a user id
    "@badges=;user-id= :bob!bob@bob.tmi.twitch.tv PRIVMSG #alice :!give carol 5\r\n",
    "@user-id=abc;display-name=\\s\\:\\\\ :eve!eve@eve.tmi.twitch.tv PRIVMSG #alice :!points\r\n",
    ":bob!bob@bob.tmi.twitch.tv PRIVMSG :no channel at all\r\n",
    ":bob!bob@bob.tmi.twitch.tv PRIVMSG\r\n",
    "PRIVMSG\r\n",
    "PRIVMSG #alice\r\n",
    ":bob!bob@bob.tmi.twitch.tv PRIVMSG #nowhere :!points\r\n",
    ":tmi.twitch.tv FOOBAR #alice :what is this\r\n",
    ":tmi.twitch.tv 421 mybot WHO :Unknown command\r\n",
    ":tmi.twitch.tv 999\r\n",
    "PING\r\n",
    ":tmi.twitch.tv NOTICE\r\n",
    "@msg-id :tmi.twitch.tv NOTICE #alice :broken tags\r\n",
    "@msg-id=x;=;; :tmi.twitch.tv USERNOTICE #alice :broken\r\n",
    ":tmi.twitch.tv USERNOTICE\r\n",
    ":tmi.twitch.tv CLEARCHAT #alice\r\n",
    ":tmi.twitch.tv ROOMSTATE\r\n",
    ":tmi.twitch.tv USERSTATE #alice\r\n",
    ":x JOIN\r\n",
    ":x!x@x JOIN #\r\n",
    ":x!x@x PART\r\n",
    ":bob!bob@bob.tmi.twitch.tv JOIN #nowhere\r\n",
    "@" + "a=b;" * 20_000 + " :bob!bob@bob.tmi.twitch.tv PRIVMSG #alice :huge tags\r\n",
    ":bob!bob@bob.tmi.twitch.tv PRIVMSG #alice :" + "x" * 200_000 + "\r\n",
    "\x00\x01\x02\x7f\r\n",
    "\ufffd\ufffd\ufffd PRIVMSG #alice :\ufffd\r\n",
    "😀" * 5000 + "\r\n",
    "\u202e\u200d:tmi.twitch.tv PRIVMSG #alice :rtl\r\n",
    "@user-id=1;badges=broadcaster/1 :tmi.twitch.tv PRIVMSG #alice\r\n",
    "no crlf at the end",
]


async def test_garbage_irc_lines_are_survived(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Malformed tags, empty and huge lines, odd Unicode, unknown commands, PRIVMSG without
    a channel: the bot stays up, changes no balance, and still answers."""
    books = Books(tmp_path / "bot.db")
    with capture_logs():
        bot = await start_bot()
        await seed(bot, sim, bob=100, carol=7)
        assert "100 cookies" in await ask(sim, "bob", "!points", "@bob")
        before = books.points()
        for line in GARBAGE:
            assert await sim.send_raw(line, login="mybot") == 1
        # Invalid UTF-8 cannot travel in a text frame (the sender must encode it); U+FFFD
        # above is what a decoder would turn it into.
        await asyncio.sleep(0.5)
        await wait_connected(bot)
        assert "you have 7 cookies" in await ask(sim, "carol", "!points", "@carol")
        assert "you gave 1 cookie to carol" in await ask(sim, "bob", "!give carol 1", "@bob")
        assert not bot.task.done()
        assert await bot.stop() == 0
    after = books.points()
    bob, carol = sim.user("bob").id, sim.user("carol").id
    assert after == {**before, bob: before[bob] - 1, carol: before[carol] + 1}
    assert await audit(tmp_path / "bot.db") == []


# ---- the disk ------------------------------------------------------------------------------


async def set_max_pages(bot: RunningBot, pages: int | None) -> int:
    """Cap the database at its current size (None) or lift the cap, on the daemon's own
    writer connection, between two of its transactions."""
    writer = bot.daemon.store._writer
    if pages is None:
        async with writer.execute("PRAGMA page_count") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        pages = int(row[0])
    async with writer.execute(f"PRAGMA max_page_count = {int(pages)}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_full_disk_fails_cleanly_and_recovers(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """SQLITE_FULL under chat and earning: each failed write is logged, changes nothing, and
    the viewer is told; the daemon keeps running, and once there is room again transfers
    and ticks work and the audit passes."""
    books = Books(tmp_path / "bot.db")
    sim.set_live(CHANNEL, True)
    regulars = sim.add_users(5, prefix="regular")
    sim.set_chatters(CHANNEL, regulars)
    with capture_logs() as logs:
        bot = await start_bot(settings(give_cooldown_seconds=0, command_cooldown_seconds=0))
        await seed(bot, sim, bob=10_000, carol=1)
        await books.wait_seq(1)
        pages = await set_max_pages(bot, None)
        newcomers = sim.add_users(400, prefix="newcomer")
        sim.add_chatters(CHANNEL, newcomers)  # the next tick must add 400 rows: no room

        given = 0
        for _ in range(300):  # transfers fill the last free bytes, then one fails
            before = books.points()
            reply = await ask(sim, "bob", "!give carol 1", "@bob")
            if APOLOGY in reply:
                assert books.points() == before, "a failed transfer changed balances"
                break
            assert "you gave 1 cookie to carol" in reply
            given += 1
        else:
            raise AssertionError(f"300 transfers fit in {pages} pages")
        deadline = time.monotonic() + 10
        while not [e for e in logs if e["event"] == "earning_tick_failed"]:
            assert time.monotonic() < deadline, "no tick was attempted while full"
            await asyncio.sleep(0.05)
        full_seq = books.ticks()[-1][0]
        assert "you have" in await ask(sim, "carol", "!points", "@carol")  # reads still work
        assert not bot.task.done()

        assert await set_max_pages(bot, 1_073_741_823) > pages
        assert "you gave 1 cookie to carol" in await ask(sim, "bob", "!give carol 1", "@bob")
        await books.wait_seq(full_seq + 1)
        assert await bot.stop() == 0

    failed = [e for e in logs if e["event"] == "chat_command_failed"]
    assert failed and all(e["command"] == "give" for e in failed)
    ticks = books.ticks()
    assert [t[0] for t in ticks] == list(range(1, len(ticks) + 1)), "a tick was lost or doubled"
    assert ticks[-1][2] >= len(regulars) + len(newcomers)  # the first tick with room pays all
    assert transfers(books) == [-1, 1] * (given + 1)  # the failed one left no row
    assert await audit(tmp_path / "bot.db") == []
