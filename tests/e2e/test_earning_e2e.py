"""Earning end to end (SPEC §4): the simulator's chatter list and chat -> the real daemon -> SQLite.

Each test computes what every viewer must have from SPEC §4 on its own (``Model``) and
compares it with the database row by row. Ticks run on the real clock at a sub-second
interval; a test knows which interval a chat message falls into because it speaks right
after a tick was committed and checks, from the simulator's request log, that the next
tick had not started before the bot had seen every message (``Window``).

Watch time is measured by the daemon from the clock (each tick adds the time elapsed
since the previous one, capped at the interval, and records it in ``earning_ticks``);
the test adds those per-tick figures up per viewer, and checks them against the wall
clock.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from loyaltybot.features.earning import service as earning
from loyaltybot.simulator import BROADCASTER_SCOPES, Simulator, SimUser
from tests.e2e.conftest import RunningBot, StartBot

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
INTERVAL_MINUTES = 0.015  # 0.9 s
INTERVAL_MS = round(INTERVAL_MINUTES * 60_000)
POINTS = 10
MULTIPLIER = 1.55  # 15.5: the subscriber rate must be floored (15), not rounded (16)
SUB_POINTS = math.floor(POINTS * MULTIPLIER)
BONUS = 3
PAGE = 1000  # the daemon asks Get Chatters for 1000 per page


def channel_settings(**extra: Any) -> dict[str, Any]:
    return {
        "currency_name": "cookie",
        "currency_name_plural": "cookies",
        "points_per_interval": POINTS,
        "subscriber_multiplier": MULTIPLIER,
        "active_bonus": BONUS,
        "interval_minutes": INTERVAL_MINUTES,
        "ignored_users": ["nightbot"],
        **extra,
    }


# ---- what SPEC §4 says every viewer should have ------------------------------------------


@dataclass
class Model:
    """Expected points, watch time, messages and subscriber flag per user id."""

    excluded: set[str]
    min_watch: int = 0
    points: Counter[str] = field(default_factory=Counter)
    watch: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    subscriber: dict[str, bool] = field(default_factory=dict)
    chatted: set[str] = field(default_factory=set)  # in the current interval
    ticks_started: int = 0  # every tick, online or offline, starts with one Get Streams
    calls_before: int = 0  # Get Streams calls made before this daemon process started

    def said(self, user: SimUser, subscriber: bool) -> None:
        if user.id in self.excluded:
            return
        self.messages[user.id] += 1
        self.subscriber[user.id] = subscriber
        self.chatted.add(user.id)

    def tick(self, present: Iterable[str], watch: int) -> None:
        """An online tick: everyone present (in the list or chatted) earns, once."""
        self.ticks_started += 1
        for uid in (set(present) | self.chatted) - self.excluded:
            if self.watch[uid] + watch >= self.min_watch:
                rate = SUB_POINTS if self.subscriber.get(uid, False) else POINTS
                self.points[uid] += rate + (BONUS if uid in self.chatted else 0)
            else:
                self.points[uid] += 0  # a row exists, with nothing earned yet
            self.watch[uid] += watch
        self.chatted.clear()

    def flush(self, present: Iterable[str], watch: int) -> None:
        """The shutdown: the unfinished interval's watch time, without points."""
        for uid in (set(present) | self.chatted) - self.excluded:
            self.watch[uid] += watch
        self.chatted.clear()

    def restarted(self, calls_so_far: int) -> None:
        self.calls_before, self.ticks_started = calls_so_far, 0

    def offline_tick(self) -> None:
        """An offline tick: messages are kept (already counted), nothing is earned."""
        self.ticks_started += 1
        self.chatted.clear()


def helix_calls(sim: Simulator, path: str) -> int:
    return sum(1 for _, _, p in sim.helix.requests if p.startswith(path))


def streams_calls(sim: Simulator, channel: str) -> int:
    return helix_calls(sim, f"/helix/streams?user_login={channel}")


class Database:
    """The daemon's SQLite file, read as an outsider (WAL: never blocks the daemon)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def last_seq(self, channel: str) -> int:
        conn = self._conn()
        try:
            row = conn.execute(
                "SELECT max(t.seq) FROM earning_ticks t JOIN channels c ON c.id = t.channel_id"
                " WHERE c.login = ?",
                (channel,),
            ).fetchone()
        finally:
            conn.close()
        return int(row[0] or 0)

    def ticks(self, channel: str) -> list[tuple[int, int, int, int, int, int]]:
        """(seq, due_at, credited_at, watch_seconds, present, points) of every tick."""
        conn = self._conn()
        try:
            return conn.execute(
                "SELECT t.seq, t.due_at, t.credited_at, t.watch_seconds, t.present, t.points"
                " FROM earning_ticks t JOIN channels c ON c.id = t.channel_id"
                " WHERE c.login = ? ORDER BY t.seq",
                (channel,),
            ).fetchall()
        finally:
            conn.close()

    def viewers(self, channel: str) -> dict[str, tuple[str, int, int, int, int]]:
        """user id -> (login, points, watch_seconds, messages, subscriber)."""
        conn = self._conn()
        try:
            rows = conn.execute(
                "SELECT v.user_id, v.login, v.points, v.watch_seconds, v.messages, v.subscriber"
                " FROM viewers v JOIN channels c ON c.id = v.channel_id WHERE c.login = ?",
                (channel,),
            ).fetchall()
        finally:
            conn.close()
        return {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in rows}

    async def wait_seq(self, channel: str, seq: int, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while self.last_seq(channel) < seq:
            if time.monotonic() > deadline:
                raise AssertionError(f"tick {seq} of #{channel} was never credited")
            await asyncio.sleep(0.005)


@dataclass
class Window:
    """One interval between two ticks, in which the test changes the world and chats.

    Opened right after a tick; ``close()`` proves from the simulator's request log that
    the next tick has not started yet (each tick starts with one Get Streams), so what
    the bot saw in the window belongs to the next tick.
    """

    bot: RunningBot
    sim: Simulator
    model: Model
    channel: str = "alice"

    def __post_init__(self) -> None:
        self.check("opened")

    def check(self, when: str) -> None:
        calls = streams_calls(self.sim, self.channel) - self.model.calls_before
        assert calls <= 1 + self.model.ticks_started, (
            f"window {when} after the next tick started ({calls} Get Streams calls,"
            f" {self.model.ticks_started} ticks expected): the machine is too slow for"
            f" a {INTERVAL_MS} ms interval"
        )

    async def say(self, users: Sequence[SimUser], text: str = "hello") -> None:
        """Each user says ``text``; returns once the bot has counted every message."""
        channel = self.sim.channel(self.channel)
        for user in users:
            await self.sim.say(self.channel, user, text)
            self.model.said(user, user.id in channel.subs)
        wanted = {u.id for u in users} - self.model.excluded
        state = self.bot.daemon.tracker.channel(self.channel)
        deadline = time.monotonic() + 5
        while not wanted <= state.active.keys():
            assert time.monotonic() < deadline, "the bot never saw the chat"
            await asyncio.sleep(0.002)
            state = self.bot.daemon.tracker.channel(self.channel)

    def close(self) -> None:
        self.check("closed")


def present_ids(sim: Simulator, channel: str) -> set[str]:
    return set(sim.channel(channel).chatters)


def assert_matches(db: Database, channel: str, model: Model, *, watch: bool = True) -> None:
    """Every viewer row equals the model; nobody else has a row."""
    rows = db.viewers(channel)
    expected_ids = set(model.points) | set(model.messages)
    assert set(rows) == expected_ids, (
        f"{len(set(rows) - expected_ids)} unexpected rows, {len(expected_ids - set(rows))} missing"
    )
    wrong = []
    for uid, (login, points, watch_seconds, messages, subscriber) in rows.items():
        want = (
            model.points[uid],
            model.watch[uid] if watch else watch_seconds,
            model.messages[uid],
            int(model.subscriber.get(uid, False)),
        )
        got = (points, watch_seconds, messages, subscriber)
        if got != want:
            wrong.append(f"{login}: got {got}, want {want}")
    assert not wrong, f"{len(wrong)} viewers differ, e.g. {wrong[:5]}"


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def cli_config(tmp_path: Path, channel: str = "alice") -> Path:
    """A config file for the operator CLI, on the database the daemon uses."""
    path = tmp_path / "cli.toml"
    path.write_text(
        f'[database]\npath = "{tmp_path / "bot.db"}"\n'
        f'[twitch]\nclient_id = "x"\nbot_login = "mybot"\n[channels.{channel}]\n'
    )
    return path


def assert_audit_passes(tmp_path: Path, channel: str = "alice") -> None:
    result = run_cli(cli_config(tmp_path, channel), "audit")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit ok" in result.stdout


async def go_offline(bot: RunningBot, sim: Simulator, model: Model, channel: str) -> None:
    """Switch the stream off before the next tick starts (so that tick is offline)."""
    sim.set_live(channel, False)
    Window(bot, sim, model, channel).check("going offline")


# ---- the tests ------------------------------------------------------------------------------


async def test_ten_thousand_viewers_earn_exactly(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """10,000 chatters over 10 pages, subscribers and chatters mixed: exact points, watch
    time and messages after three ticks; offline ticks pay nothing; audit passes."""
    db = Database(tmp_path / "bot.db")
    sim.set_live("alice", True)
    crowd = sim.add_users(9_997, prefix="viewer")  # + nightbot, alice, and the bot = 10,000
    subs, chatty, quiet_subs = crowd[:300], crowd[300:600], crowd[600:700]
    leavers, chat_and_leave = crowd[700:800], crowd[800:805]
    for user in [*subs, *quiet_subs]:
        sim.set_role("alice", user.login, subscriber_tier=1000)
    sim.set_chatters("alice", [*crowd, "nightbot", "alice"])
    excluded = {sim.user(login).id for login in ("nightbot", "alice", "mybot")}
    model = Model(excluded)

    bot = await start_bot({"alice": channel_settings()})
    assert len(sim.channel("alice").chatters) == 10 * PAGE
    for _ in range(100):  # first sight: the list is read once at start, lurkers become known
        if bot.daemon.bank.first_sight.stats.viewers >= 9_997:
            break
        await asyncio.sleep(0.05)
    at_start = helix_calls(sim, "/helix/chat/chatters")
    assert at_start == 10, f"start-up read {at_start} pages of Get Chatters, not 10"

    # interval 1: subscribers chat with their badges, others without; so do the excluded
    window = Window(bot, sim, model)
    await window.say([sim.user("nightbot"), sim.user("alice"), *subs, *chatty])
    await window.say(chat_and_leave)
    sim.remove_chatters("alice", chat_and_leave)  # gone from the list, but they chatted
    sim.add_chatters("alice", ["late1", "late2", "late3", "late4", "late5"])  # back to 10,000
    window.close()
    present = present_ids(sim, "alice")
    await db.wait_seq("alice", 1)
    model.tick(present, db.ticks("alice")[0][3])

    # interval 2: half the subscribers lost their sub and say so in chat; some viewers left
    window = Window(bot, sim, model)
    pages = helix_calls(sim, "/helix/chat/chatters") - at_start
    assert pages == 10, f"the first tick read {pages} pages of Get Chatters, not 10"
    for user in subs[:150]:
        sim.set_role("alice", user.login, subscriber_tier=None)
    await window.say([*subs[:150], *chatty[:100]])
    sim.remove_chatters("alice", leavers)
    arrivals = sim.add_users(100, prefix="arrival")
    sim.add_chatters("alice", arrivals)
    window.close()
    present = present_ids(sim, "alice")
    await db.wait_seq("alice", 2)
    model.tick(present, db.ticks("alice")[1][3])

    # interval 3: nobody chats; subscribers known from their badges stay subscribers
    window = Window(bot, sim, model)
    window.close()
    present = present_ids(sim, "alice")
    await db.wait_seq("alice", 3)
    model.tick(present, db.ticks("alice")[2][3])

    # offline for two ticks: chat is counted, nothing is earned, tick numbers do not move
    await go_offline(bot, sim, model, "alice")
    window = Window(bot, sim, model)
    await window.say(chatty[:50], "anyone here?")
    window.close()
    await wait_for_calls(sim, "alice", 1 + model.ticks_started + 2)  # tick 5 started
    model.offline_tick()
    model.offline_tick()
    sim.set_live("alice", True)
    Window(bot, sim, model).check("going live")  # tick 6 sees the stream live
    present = present_ids(sim, "alice")
    await db.wait_seq("alice", 4)
    model.tick(present, db.ticks("alice")[3][3])
    await go_offline(bot, sim, model, "alice")
    await wait_offline(bot, "alice")
    ticks = db.ticks("alice")
    assert await bot.stop() == 0

    assert [t[0] for t in ticks] == [1, 2, 3, 4]
    assert [t[4] for t in ticks] == [10_002, 9_997, 9_997, 9_997]  # minus the 3 excluded
    for earlier, later in itertools.pairwise(ticks):
        assert later[1] - earlier[1] >= INTERVAL_MS  # never two ticks in one interval
    watched = sum(t[3] for t in ticks)
    assert 0 <= watched <= math.ceil(4 * INTERVAL_MS / 1000)
    assert all(0 <= t[3] <= math.ceil(INTERVAL_MS / 1000) for t in ticks)
    assert_matches(db, "alice", model)
    rows = db.viewers("alice")
    assert not excluded & set(rows), "the broadcaster, the bot or an ignored user has a row"
    assert rows[subs[200].id][1] == (SUB_POINTS + BONUS) + 3 * SUB_POINTS  # spot checks
    assert rows[subs[0].id][1] == (SUB_POINTS + BONUS) + (POINTS + BONUS) + 2 * POINTS
    assert rows[chatty[0].id][1] == 2 * (POINTS + BONUS) + 2 * POINTS
    assert rows[quiet_subs[0].id][1] == 4 * POINTS  # a silent sub is unknown without a token
    assert sum(t[5] for t in ticks) == sum(model.points.values())
    assert_audit_passes(tmp_path)


async def wait_offline(bot: RunningBot, channel: str, within: float = 10) -> None:
    """Until a tick has seen the stream offline: only then does the daemon know, and only
    then does the shutdown flush add no watch time (while it believes the stream live, the
    unfinished interval's watch time is rightly written)."""
    deadline = time.monotonic() + within
    while bot.daemon.earning.is_live(channel) is not False:
        assert time.monotonic() < deadline, "the daemon never saw the stream go offline"
        await asyncio.sleep(0.005)


async def wait_for_calls(sim: Simulator, channel: str, calls: int, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while streams_calls(sim, channel) < calls:
        assert time.monotonic() < deadline, "the earning loop stopped asking for the stream"
        await asyncio.sleep(0.005)


async def test_restart_between_ticks_never_credits_twice(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Stopped after tick 2 and started again: ticks continue at 3, one interval after the
    last credited one; nobody is paid twice; subscribers seen in chat are remembered."""
    db = Database(tmp_path / "bot.db")
    sim.set_live("alice", True)
    crowd = sim.add_users(2_000, prefix="viewer")
    subs, chatty = crowd[:100], crowd[100:200]
    for user in subs:
        sim.set_role("alice", user.login, subscriber_tier=2000)
    sim.set_chatters("alice", crowd)
    model = Model({sim.user("alice").id, sim.user("mybot").id})
    settings = {"alice": channel_settings()}

    began = time.time()
    with capture_logs() as logs:
        first = await start_bot(settings)
        window = Window(first, sim, model)
        await window.say([*subs, *chatty])
        window.close()
        await db.wait_seq("alice", 1)
        model.tick(present_ids(sim, "alice"), db.ticks("alice")[0][3])
        Window(first, sim, model).close()
        await db.wait_seq("alice", 2)
        model.tick(present_ids(sim, "alice"), db.ticks("alice")[1][3])
        Window(first, sim, model).check("stopping")  # stopped before tick 3 starts
        assert await first.stop() == 0
        [flushed] = [e for e in logs if e["event"] == "earning_flushed"]
    model.flush(present_ids(sim, "alice"), int(flushed["watch_seconds"]))
    model.restarted(streams_calls(sim, "alice"))

    restarting = time.time()
    second = await start_bot(settings)
    running = time.time()
    assert second.daemon.earning.ticks == 0  # no tick at start-up
    for seq in (3, 4):  # nobody chats: subscribers are known from the database now
        Window(second, sim, model).close()
        await db.wait_seq("alice", seq)
        model.tick(present_ids(sim, "alice"), db.ticks("alice")[seq - 1][3])
    await go_offline(second, sim, model, "alice")
    await wait_offline(second, "alice")
    assert await second.stop() == 0

    ticks = db.ticks("alice")
    assert [t[0] for t in ticks] == [1, 2, 3, 4]
    last_credited, first_due = ticks[1][2], ticks[2][1]
    assert first_due >= last_credited + INTERVAL_MS, "a tick came early after the restart"
    if running * 1000 < last_credited + INTERVAL_MS:  # back within the interval
        assert first_due == last_credited + INTERVAL_MS
    else:  # down longer than an interval: one interval after start-up
        assert restarting * 1000 + INTERVAL_MS - 5 <= first_due <= running * 1000 + INTERVAL_MS
    assert_matches(db, "alice", model)
    rows = db.viewers("alice")
    assert rows[subs[0].id][1] == (SUB_POINTS + BONUS) + 3 * SUB_POINTS
    assert rows[crowd[-1].id][1] == 4 * POINTS
    assert max(r[2] for r in rows.values()) <= time.time() - began  # never counted twice
    assert_audit_passes(tmp_path)


async def test_without_moderator_presence_comes_from_chat_and_join(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """The bot is no moderator: Get Chatters is refused and that is logged once; viewers
    seen by JOIN or chat earn, lurkers the bot cannot see do not, PARTed ones stop."""
    db = Database(tmp_path / "bot.db")
    sim.add_channel("dan", bot_login="mybot", bot_role="none")
    sim.set_live("dan", True)
    lurkers = sim.add_users(30, prefix="lurker")
    sim.set_chatters("dan", lurkers)  # in Twitch's list, never seen on IRC
    joiners = sim.add_users(20, prefix="joiner")
    talkers = sim.add_users(5, prefix="talker")
    model = Model({sim.user("dan").id, sim.user("mybot").id})

    with capture_logs() as logs:
        bot = await start_bot({"dan": channel_settings()})
        window = Window(bot, sim, model, "dan")
        for user in joiners:
            await sim.join("dan", user)
        await until_joined(bot, "dan", {u.login for u in joiners})
        await window.say(talkers)
        window.close()
        await db.wait_seq("dan", 1)
        model.tick({u.id for u in joiners}, db.ticks("dan")[0][3])

        window = Window(bot, sim, model, "dan")
        for user in joiners[:5]:
            await sim.part("dan", user)
        await until_joined(bot, "dan", {u.login for u in joiners[5:]})
        window.close()
        await db.wait_seq("dan", 2)
        model.tick({u.id for u in joiners[5:]}, db.ticks("dan")[1][3])  # talkers said nothing
        await go_offline(bot, sim, model, "dan")
        await wait_offline(bot, "dan")
        assert await bot.stop() == 0

    assert_matches(db, "dan", model)
    assert not {u.id for u in lurkers} & set(db.viewers("dan"))
    assert helix_calls(sim, "/helix/chat/chatters") == 1, "Get Chatters asked again after 403"
    said = [e for e in logs if e["event"] == "presence_from_chat_only"]
    assert len(said) == 1 and said[0]["channel"] == "dan", said
    assert_audit_passes(tmp_path, "dan")


async def test_demoted_bot_stops_paying_the_last_chatter_list(
    sim: Simulator, start_bot: StartBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unmodded mid-stream, the bot counts JOIN/PART and chat, not its last chatter list;
    modded again, it reads the chatter list again."""
    monkeypatch.setattr(earning, "CHATTERS_RETRY_SECONDS", 0.0)  # ask again at every tick
    db = Database(tmp_path / "bot.db")
    sim.set_live("alice", True)
    viewers = sim.add_users(10, prefix="viewer")
    model = Model({sim.user("alice").id, sim.user("mybot").id})

    with capture_logs() as logs:
        bot = await start_bot({"alice": channel_settings()})
        window = Window(bot, sim, model)
        for user in viewers:
            await sim.join("alice", user)  # a JOIN line and the chatter list
        await until_joined(bot, "alice", {u.login for u in viewers})
        window.close()
        await db.wait_seq("alice", 1)
        model.tick(present_ids(sim, "alice"), db.ticks("alice")[0][3])

        window = Window(bot, sim, model)
        sim.set_role("alice", "mybot", mod=False)
        for user in viewers[:6]:
            await sim.part("alice", user)
        await until_joined(bot, "alice", {u.login for u in viewers[6:]})
        window.close()
        await db.wait_seq("alice", 2)
        model.tick({u.id for u in viewers[6:]}, db.ticks("alice")[1][3])

        window = Window(bot, sim, model)
        sim.set_role("alice", "mybot", mod=True)
        sim.add_chatters("alice", ["listed1", "listed2"])  # no JOIN line: only Helix knows
        window.close()
        await db.wait_seq("alice", 3)
        model.tick(present_ids(sim, "alice"), db.ticks("alice")[2][3])
        await go_offline(bot, sim, model, "alice")
        await wait_offline(bot, "alice")
        assert await bot.stop() == 0

    assert_matches(db, "alice", model)
    assert db.viewers("alice")[sim.user("listed1").id][1] == POINTS
    events = [e["event"] for e in logs if e["event"].startswith("presence_from")]
    assert events == ["presence_from_chat_only", "presence_from_chatters_again"]


async def test_min_watchtime_and_subscribers_from_the_broadcaster(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Only viewers with min_watchtime_minutes of watch time earn, counting imported history
    and the interval itself; silent subscribers are known with the broadcaster's token."""
    db = Database(tmp_path / "bot.db")
    sim.set_live("alice", True)
    veteran, almost, newbie, chatter = (sim.add_user(n) for n in ("vet", "almost", "newb", "chat"))
    sim.set_role("alice", "vet", subscriber_tier=3000)
    sim.set_chatters("alice", [veteran, almost, newbie])
    history = tmp_path / "history.csv"
    history.write_text(
        "user_id,username,points,watch_seconds,messages\n"
        f"{veteran.id},vet,100,3600,5\n{almost.id},almost,0,1799,0\n"
    )
    imported = run_cli(
        cli_config(tmp_path), "import", "--channel", "alice", "--format", "csv", str(history)
    )
    assert imported.returncode == 0, imported.stderr
    model = Model({sim.user("alice").id, sim.user("mybot").id}, min_watch=1800)
    model.points.update({veteran.id: 100, almost.id: 0})
    model.watch.update({veteran.id: 3600, almost.id: 1799})
    model.messages.update({veteran.id: 5})
    model.subscriber[veteran.id] = True  # only Helix knows: vet never chats

    token = sim.issue_token("alice", scopes=list(BROADCASTER_SCOPES))
    bot = await start_bot(
        {"alice": channel_settings(min_watchtime_minutes=30, broadcaster_token=token)}
    )
    window = Window(bot, sim, model)
    await window.say([chatter])  # new: chatting is not enough, no bonus either
    window.close()
    for seq in (1, 2, 3):
        present = present_ids(sim, "alice")
        await db.wait_seq("alice", seq)
        model.tick(present, db.ticks("alice")[seq - 1][3])
        if seq < 3:
            Window(bot, sim, model).close()
    await go_offline(bot, sim, model, "alice")
    await wait_offline(bot, "alice")
    assert await bot.stop() == 0

    assert sum(t[3] for t in db.ticks("alice")) >= 1, "no watch time in three ticks"
    assert_matches(db, "alice", model)
    rows = db.viewers("alice")
    assert rows[veteran.id][1] == 100 + 3 * math.floor(POINTS * MULTIPLIER)
    assert rows[almost.id][1] > 0 and rows[newbie.id][1] == rows[chatter.id][1] == 0
    assert_audit_passes(tmp_path)


async def until_joined(bot: RunningBot, channel: str, logins: set[str]) -> None:
    """Until the bot's presence holds exactly these JOINed logins."""
    deadline = time.monotonic() + 5
    while bot.daemon.tracker.channel(channel).joined != logins:
        assert time.monotonic() < deadline, "the bot never saw the JOIN/PART lines"
        await asyncio.sleep(0.005)


async def test_the_presence_bound_is_reported_not_silent(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """1,200 chatters (and the bot) against a bound of 1,000: the 1,000 read earn, the
    others are logged (counted, the first ten named) and counted on /metrics."""
    sim.set_live("alice", True)
    crowd = sim.add_users(1_200, prefix="many")
    sim.set_chatters("alice", crowd)
    with capture_logs() as events:
        bot = await start_bot({"alice": channel_settings()}, earning={"max_present": 1_000})
        for _ in range(200):
            if bot.daemon.earning.ticks >= 1:
                break
            await asyncio.sleep(0.05)
    warnings = [e for e in events if e["event"] == "presence_bound_reached"]
    listed = len(sim.channel("alice").chatters)
    assert warnings and warnings[0]["left_out"] == listed - 1_000 >= 200
    assert warnings[0]["bound"] == 1_000
    assert len(warnings[0]["first_left_out"]) == 10
    assert bot.daemon.earning.left_out["alice"] == listed - 1_000
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{bot.daemon.web_url}/metrics") as response,
    ):
        metric = f'loyaltybot_presence_left_out{{channel="alice"}} {listed - 1_000}.0'
        assert metric in await response.text()
    [tick] = Database(tmp_path / "bot.db").ticks("alice")[:1]
    assert tick[4] == 1_000  # present: everyone tracked earned, nobody more
