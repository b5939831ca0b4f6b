"""Load harness: the real daemon as a subprocess, the simulator as Twitch, bounded loopback load.

The crash and soak tests share it. Everything is real except Twitch: the daemon runs as
``python -m loyaltybot run -c config.toml`` in its own process (so it can be SIGKILLed and
its memory is its own; JSON logs go to a file per start), on a real SQLite file, while
this process plays Twitch (``loyaltybot.simulator``) and drives:

- ``viewers`` present viewers in Get Chatters, earning every ``interval_minutes``;
- chat at ``chat_rate`` messages/s from them, ``give_rate``/s of which are ``!give`` to
  another viewer and ``points_rate``/s ``!points``; a ``!give`` the bot answered with
  its success reply (``sim.sent``, matched by reply-parent id) is an acknowledged transfer;
- EventSub notifications at ``webhook_rate``/s through the subscriptions the daemon made:
  redemptions of a ``grant_points`` reward, cheers and follows (with event bonuses), and
  now and then a redelivery of a message id already answered (Twitch's at-least-once);
  one the daemon did not answer 2xx (it was dead) is redelivered after the restart;
- ``loyaltybot points add`` in a separate OS process every ``cli_every`` seconds.

Amounts are chosen so the books can be checked exactly: every viewer is present at every
tick and earns ``PPI`` (+1 if they chatted), so ``earned_total // PPI`` is the number of
ticks that credited them: more than the ticks in the database would be a tick credited
twice. ``check_books`` reads the database and lists every problem found.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import structlog

from loyaltybot.simulator import BOT_SCOPES, BROADCASTER_SCOPES, Simulator, SimUser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHANNEL = "alice"
BOT = "mybot"
PPI = 1000  # points per interval: earned_total // PPI counts the ticks that credited a viewer
ACTIVE_BONUS = 1  # < PPI, so earned_total % PPI counts the ticks a viewer chatted in
GRANT = 25  # the grant_points reward
CHEER_PER_100 = 3
FOLLOW_BONUS = 7
REWARD_TITLE = "Harness grant"
EVENTSUB_SECRET = "harness-eventsub-secret-0123"
CLI_REASON = "harness-cli-"
REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"
# Words that twitchio's positional parser reads as plain text (see simulator/crowd.py).
WORDS = ("hello", "hi", "lol", "nice", "gg", "wow", "hype", "cozy", "vibes", "clutch", "omg")


@dataclass
class Load:
    """What the harness drives; rates are targets, the report says what was achieved."""

    viewers: int = 2000
    chat_rate: float = 50.0  # messages/s in total, commands included
    give_rate: float = 2.0  # of which !give
    points_rate: float = 0.5  # of which !points (the bot may send 100 lines per 30 s)
    webhook_rate: float = 5.0  # EventSub notifications/s, redeliveries included
    duplicate_share: float = 0.1  # of the notifications: a redelivery of an answered one
    cli_every: float = 2.0  # seconds between `loyaltybot points add` processes
    interval_minutes: float = 0.05  # earning interval (0.05 = 3 s)
    seed: int = 1


@dataclass
class SentEvent:
    kind: str  # redeem | cheer | follow
    message_id: str
    user_id: str
    key: str  # redemption id, or the message id
    amount: int  # the points it must credit


@dataclass
class CliWrite:
    reason: str
    user_id: str
    amount: int
    code: int
    stderr: str


@dataclass
class Books:
    """What ``check_books`` found; ``problems`` must be empty."""

    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_summary(record: dict[str, Any], name: str) -> None:
    """One JSON line to stdout and to ``test-artifacts/<name>``."""
    ARTIFACTS.mkdir(exist_ok=True)
    line = json.dumps(record, sort_keys=True)
    with (ARTIFACTS / name).open("a") as out:
        out.write(line + "\n")
    print(line, flush=True)


def save_series(samples: list[tuple[float, float]], name: str) -> None:
    """The RSS samples as [[seconds, MB], ...] in ``test-artifacts/<name>``, to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps([[round(t, 1), mb] for t, mb in samples]))


def memory_verdict(samples: list[tuple[float, float]], limit_mb: float) -> dict[str, Any]:
    """Flat memory: the median RSS of the last quarter of the run is at most ``limit_mb``
    above the median of the second quarter (the first quarter is warm-up: the first ticks
    insert every viewer, caches and standings fill). Medians, so one sample taken during
    a tick's transient peak does not decide."""
    values = [mb for _, mb in samples]
    quarter = max(1, len(values) // 4)
    q2 = statistics.median(values[quarter : 2 * quarter] or values)
    q4 = statistics.median(values[-quarter:])
    return {
        "rss_samples": len(values),
        "rss_start_mb": values[0] if values else None,
        "rss_end_mb": values[-1] if values else None,
        "rss_max_mb": max(values) if values else None,
        "rss_q2_median_mb": q2,
        "rss_q4_median_mb": q4,
        "rss_growth_mb": round(q4 - q2, 1),
        "rss_growth_limit_mb": limit_mb,
        "rss_flat": q4 - q2 <= limit_mb,
    }


class DaemonProcess:
    """``python -m loyaltybot run`` in its own process, JSON logs in its own file."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._offset = 0
        self._events: list[dict[str, Any]] = []
        with log_path.open("w") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loyaltybot", "run", "-c", str(config)],
                cwd=config.parent,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> list[dict[str, Any]]:
        with self.log_path.open("rb") as log_file:
            log_file.seek(self._offset)
            chunk = log_file.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    self._events.append(event)
        return self._events

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self._read() if name is None or e.get("event") == name]

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self._read() if e.get("level") in ("error", "critical")]

    async def wait_event(self, name: str, count: int = 1, within: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found[count - 1]
            if not self.alive:
                break
            await asyncio.sleep(0.05)
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"no {name} #{count} from the daemon (exit {self.proc.poll()}):\n{tail}")

    def rss_mb(self) -> float | None:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None

    def cpu_seconds(self) -> float | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return None

    async def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction is finished."""
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)

    async def terminate(self, within: float = 15.0) -> int:
        """SIGTERM and the exit code (SPEC §8: stop within 10 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
            raise


class Harness:
    """One simulator, one database, one daemon process at a time, and the load."""

    def __init__(self, directory: Path, load: Load) -> None:
        self.dir = directory
        self.load = load
        self.db_path = directory / "harness.db"
        self.config_path = directory / "config.toml"
        self.sim = Simulator(
            client_id="harness-client-id",
            client_secret="harness-client-secret",
            helix_points_per_minute=10_000_000,  # a 100k-viewer tick reads 100 pages
        )
        self.daemon: DaemonProcess | None = None
        self.starts = 0
        self.kills = 0
        self.viewers: list[SimUser] = []
        self.followers: list[SimUser] = []
        self.reward_id = ""
        # what was driven, and what Twitch saw acknowledged
        self.gives: dict[str, tuple[str, str, int]] = {}  # chat msg id -> (from, to, amount)
        self.events: list[SentEvent] = []
        self.cli_writes: list[CliWrite] = []
        self.chat_sent = 0
        self.chat_skipped = 0
        self.webhooks_sent = 0
        self.webhooks_skipped = 0
        self.redeliveries = 0
        self.rss: list[tuple[float, float]] = []
        self.daemon_errors: list[dict[str, Any]] = []
        self.daemon_cpu = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []
        self._load_started = 0.0
        self._load_seconds = 0.0
        self._logging: dict[str, Any] = {}

    # ---- set-up ------------------------------------------------------------------------

    async def __aenter__(self) -> Harness:
        # The simulator logs each delivery and connection at debug: under load that is
        # CPU taken from the load generator and megabytes in pytest's capture.
        self._logging = structlog.get_config()
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        try:
            await self.sim.start()
        except BaseException:
            structlog.configure(**self._logging)
            raise
        sim = self.sim
        sim.add_user(BOT)
        sim.add_channel(CHANNEL, bot_login=BOT, bot_role="moderator")
        sim.set_live(CHANNEL, True)
        self.viewers = sim.add_users(self.load.viewers, prefix="hv")
        sim.set_chatters(CHANNEL, self.viewers)
        self.followers = list(reversed(self.viewers))  # each follows at most once
        reward = sim.add_reward(CHANNEL, REWARD_TITLE, cost=100, client_id=sim.client_id)
        self.reward_id = reward.id
        self._write_config()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_load()
        finally:
            if self.daemon is not None and self.daemon.alive:
                await self.daemon.kill()
            await self.sim.close()
            structlog.configure(**self._logging)

    def _write_config(self) -> None:
        sim, port = self.sim, free_port()
        bot_token = sim.issue_token(BOT, scopes=list(BOT_SCOPES), expires_in=86400)
        owner_token = sim.issue_token(CHANNEL, scopes=list(BROADCASTER_SCOPES), expires_in=86400)
        self.config_path.write_text(f"""
[database]
path = "{self.db_path}"
[log]
level = "info"
format = "json"
[twitch]
client_id = "{sim.client_id}"
client_secret = "{sim.client_secret}"
bot_login = "{BOT}"
bot_token = "{bot_token}"
irc_url = "{sim.irc_url}"
api_url = "{sim.api_url}"
auth_url = "{sim.auth_url}"
[web]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
eventsub_secret = "{EVENTSUB_SECRET}"
[channels.{CHANNEL}]
currency_name = "cookie"
currency_name_plural = "cookies"
points_per_interval = {PPI}
interval_minutes = {self.load.interval_minutes}
active_bonus = {ACTIVE_BONUS}
follow_bonus = {FOLLOW_BONUS}
cheer_bonus_per_100 = {CHEER_PER_100}
broadcaster_token = "{owner_token}"
[[channels.{CHANNEL}.rewards]]
title = "{REWARD_TITLE}"
action = "grant_points"
amount = {GRANT}
""")

    # ---- the daemon ----------------------------------------------------------------------

    async def start_daemon(self, *, ready: bool = True) -> DaemonProcess:
        """A new daemon process; ``ready``: wait until it logged ``daemon_ready``."""
        self.starts += 1
        daemon = DaemonProcess(self.config_path, self.dir / f"daemon-{self.starts}.log")
        self.daemon = daemon
        if ready:
            await daemon.wait_event("daemon_ready", within=60)
        return daemon

    async def wait_subscriptions(self) -> None:
        for kind in (REDEMPTION_ADD, "channel.cheer", "channel.follow"):
            await self.sim.eventsub.wait_enabled(kind, timeout=30)

    async def kill_daemon(self) -> None:
        daemon = self.daemon
        assert daemon is not None and daemon.alive, "the daemon died before it was killed"
        cpu = daemon.cpu_seconds() or 0.0
        await daemon.kill()
        self.kills += 1
        self.daemon_errors += daemon.errors()
        self.daemon_cpu += cpu

    async def stop_daemon(self) -> int:
        daemon = self.daemon
        assert daemon is not None and daemon.alive, "the daemon died on its own"
        cpu = daemon.cpu_seconds() or 0.0
        code = await daemon.terminate()
        self.daemon_errors += daemon.errors()
        self.daemon_cpu += cpu
        return code

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """``loyaltybot -c config.toml ARGS`` in its own process."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loyaltybot", "-c", str(self.config_path), *args,
            cwd=self.dir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return int(proc.returncode or 0), out.decode(), err.decode()

    async def audit(self) -> tuple[bool, str]:
        """The real ``loyaltybot audit``: (passed, its output)."""
        code, out, err = await self.cli("audit")
        return code == 0, (out + err).strip()

    # ---- load ------------------------------------------------------------------------------

    def start_load(self, *, cli: bool = True, rss_every: float = 1.0) -> None:
        self._stop.clear()
        self._load_started = time.monotonic()
        loops = [self._chat_loop(), self._webhook_loop(), self._rss_loop(rss_every)]
        if cli:
            loops.append(self._cli_loop())
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def stop_load(self) -> None:
        if not self._tasks:
            return
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks = []
        if self._inflight:
            await asyncio.gather(*self._inflight)
        if self._failures:
            raise RuntimeError(f"the load failed: {self._failures[:3]!r}")
        self._load_seconds += time.monotonic() - self._load_started

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless the load is stopped; True if it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _chat_loop(self) -> None:
        load, rng = self.load, random.Random(self.load.seed * 7 + 1)
        irc, users = self.sim.irc, self.viewers
        give_p, points_p = load.give_rate / load.chat_rate, load.points_rate / load.chat_rate
        started, done = time.monotonic(), 0
        while not await self._sleep(0.05):
            due = int((time.monotonic() - started) * load.chat_rate) - done
            if due > load.chat_rate:  # more than a second behind: skip, never burst
                self.chat_skipped += due - int(load.chat_rate)
                done += due - int(load.chat_rate)
                due = int(load.chat_rate)
            batch: list[tuple[SimUser, str]] = []
            gives: list[tuple[int, str, str, int]] = []
            for _ in range(max(0, due)):
                user = users[rng.randrange(len(users))]
                roll = rng.random()
                if roll < give_p:
                    target = users[rng.randrange(len(users))]
                    if target.id == user.id:
                        target = users[(users.index(user) + 1) % len(users)]
                    amount = rng.randint(1, 50)
                    gives.append((len(batch), user.id, target.id, amount))
                    batch.append((user, f"!give @{target.login} {amount}"))
                elif roll < give_p + points_p:
                    batch.append((user, "!points"))
                else:
                    batch.append((user, " ".join(rng.choices(WORDS, k=rng.randint(1, 6)))))
            if not batch:
                continue
            self.chat_sent += irc.say_many(CHANNEL, batch)
            done += len(batch)
            chat = irc.chat  # the simulator's record of what viewers said, newest last
            base = len(chat) - len(batch)
            for index, sender, target_id, amount in gives:
                self.gives[chat[base + index].id] = (sender, target_id, amount)

    async def _webhook_loop(self) -> None:
        load, rng = self.load, random.Random(self.load.seed * 7 + 2)
        step = 1.0 / load.webhook_rate
        next_at = time.monotonic()
        while True:
            next_at += step
            delay = next_at - time.monotonic()
            if delay < -1.0:  # more than a second behind: skip, never burst
                skipped = int(-delay / step)
                self.webhooks_skipped += skipped
                next_at += skipped * step
                delay = next_at - time.monotonic()
            if await self._sleep(max(0.0, delay)):
                return
            if len(self._inflight) >= 64:  # bounded: the daemon is slow or dead
                self.webhooks_skipped += 1
                continue
            roll = rng.random()
            user = self.viewers[rng.randrange(len(self.viewers))]
            if roll < load.duplicate_share and self.events:
                recent = self.events[-200:]
                coro = self._redeliver(recent[rng.randrange(len(recent))].message_id)
            elif roll < 0.6:
                coro = self._redeem(user)
            elif roll < 0.9 or not self.followers:
                coro = self._cheer(user, rng.choice((100, 250, 500, 1000)))
            else:
                coro = self._follow(self.followers.pop())
            self.webhooks_sent += 1
            task = asyncio.create_task(coro)
            self._inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._failures.append(task.exception())  # type: ignore[arg-type]

    async def _redeem(self, user: SimUser) -> None:
        redemption = await self.sim.redeem(CHANNEL, user, self.reward_id)
        for delivery in redemption.deliveries:
            self.events.append(
                SentEvent("redeem", delivery.message_id, user.id, redemption.id, GRANT)
            )

    async def _cheer(self, user: SimUser, bits: int) -> None:
        for delivery in await self.sim.cheer(CHANNEL, user, bits, chat=False):
            amount = CHEER_PER_100 * (bits // 100)
            self.events.append(
                SentEvent("cheer", delivery.message_id, user.id, delivery.message_id, amount)
            )

    async def _follow(self, user: SimUser) -> None:
        for delivery in await self.sim.follow(CHANNEL, user):
            self.events.append(
                SentEvent("follow", delivery.message_id, user.id, user.id, FOLLOW_BONUS)
            )

    async def _redeliver(self, message_id: str) -> None:
        self.redeliveries += 1
        await self.sim.eventsub.redeliver(message_id)

    def acked_ids(self) -> set[str]:
        return {d.message_id for d in self.sim.eventsub.deliveries if d.ok}

    async def redeliver_unanswered(self, rounds: int = 10) -> int:
        """Twitch retries what was not answered 2xx; returns how many are still unanswered."""
        unanswered: list[str] = []
        for _ in range(rounds):
            acked = self.acked_ids()
            unanswered = [e.message_id for e in self.events if e.message_id not in acked]
            if not unanswered:
                return 0
            for message_id in unanswered:
                await self._redeliver(message_id)
            await asyncio.sleep(0.2)
        acked = self.acked_ids()
        return len([m for m in unanswered if m not in acked])

    async def _cli_loop(self) -> None:
        rng = random.Random(self.load.seed * 7 + 3)
        number = 0
        while not await self._sleep(self.load.cli_every):
            user = self.viewers[rng.randrange(len(self.viewers))]
            amount = rng.randint(1, 100)
            reason = f"{CLI_REASON}{number}"
            number += 1
            code, _, err = await self.cli(
                "points", "add", CHANNEL, user.login, str(amount), "--reason", reason
            )
            self.cli_writes.append(CliWrite(reason, user.id, amount, code, err.strip()[-300:]))

    async def _rss_loop(self, every: float) -> None:
        while not await self._sleep(every):
            daemon = self.daemon
            if daemon is not None and daemon.alive:
                rss = daemon.rss_mb()
                if rss is not None:
                    self.rss.append((time.monotonic() - self._load_started, rss))

    # ---- the books -------------------------------------------------------------------------

    def acknowledged_transfers(self) -> Counter[tuple[str, str, int]]:
        answered = {m.reply_to for m in self.sim.sent if m.reply_to and "you gave" in m.text}
        return Counter(give for msg_id, give in self.gives.items() if msg_id in answered)

    def check_books(self, *, settled: bool = False) -> Books:
        """Read the database (daemon running or not) and list what is wrong.

        ``settled``: every notification has been answered 2xx by now, so each must have
        had its effect exactly once (before that, at most once)."""
        books = Books()
        problems = books.problems
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            self._check_ticks(conn, books)
            self._check_transfers(conn, books)
            self._check_cli(conn, books)
            self._check_events(conn, books, settled)
        finally:
            conn.close()
        if len(problems) > 20:
            del problems[20:]
            problems.append("... (more)")
        return books

    def _check_ticks(self, conn: sqlite3.Connection, books: Books) -> None:
        problems = books.problems
        interval_ms = self.load.interval_minutes * 60_000
        ticks = conn.execute(
            "SELECT seq, due_at FROM earning_ticks WHERE channel_id ="
            " (SELECT id FROM channels WHERE login = ?) ORDER BY seq",
            (CHANNEL,),
        ).fetchall()
        for (seq_a, due_a), (seq_b, due_b) in pairwise(ticks):
            if seq_b != seq_a + 1:
                problems.append(f"earning tick {seq_b} follows tick {seq_a}")
            if due_b - due_a < interval_ms - 5:  # ms rounding
                problems.append(f"tick {seq_b} due {due_b - due_a} ms after tick {seq_a}")
        n = len(ticks)
        every_tick = doubled = 0
        for user_id, earned in conn.execute("SELECT user_id, earned_total FROM viewers"):
            credited, chatted = divmod(earned, PPI)
            if credited > n or chatted > credited:
                doubled += 1
                if doubled <= 5:
                    problems.append(
                        f"viewer {user_id}: earned {earned} = {credited} tick credits"
                        f" (+{chatted} active) but only {n} ticks exist"
                    )
            every_tick += credited == n
        books.figures.update(ticks=n, viewers_credited_every_tick=every_tick,
                             double_tick_credits=doubled)  # fmt: skip

    def _check_transfers(self, conn: sqlite3.Connection, books: Books) -> None:
        acked = self.acknowledged_transfers()
        ledger: Counter[tuple[str, str, int]] = Counter(
            (sender, receiver, -amount)
            for sender, receiver, amount in conn.execute(
                "SELECT user_id, related_user_id, amount FROM ledger"
                " WHERE type = 'transfer' AND amount < 0"
            )
        )
        lost = acked - ledger
        for (sender, receiver, amount), count in list(lost.items())[:5]:
            books.problems.append(
                f"acknowledged !give {sender} -> {receiver} of {amount} (x{count}) not in ledger"
            )
        books.figures.update(
            gives_sent=len(self.gives),
            transfers_acknowledged=sum(acked.values()),
            transfers_in_ledger=sum(ledger.values()),
            transfers_lost=sum(lost.values()),
        )

    def _check_cli(self, conn: sqlite3.Connection, books: Books) -> None:
        rows: dict[str, list[tuple[str, int]]] = {}
        for reason, user_id, amount in conn.execute(
            "SELECT reason, user_id, amount FROM ledger WHERE reason LIKE ?", (CLI_REASON + "%",)
        ):
            rows.setdefault(reason, []).append((user_id, amount))
        failed = [w for w in self.cli_writes if w.code != 0]
        for write in failed[:3]:
            books.problems.append(f"CLI write {write.reason} exited {write.code}: {write.stderr}")
        lost = 0
        for write in self.cli_writes:
            if write.code == 0 and rows.get(write.reason) != [(write.user_id, write.amount)]:
                lost += 1
                books.problems.append(
                    f"CLI write {write.reason} ({write.amount} to {write.user_id}) is in the"
                    f" ledger as {rows.get(write.reason)}"
                )
        books.figures.update(cli_writes=len(self.cli_writes), cli_failed=len(failed),
                             cli_lost=lost)  # fmt: skip

    def _check_events(self, conn: sqlite3.Connection, books: Books, settled: bool) -> None:
        problems = books.problems
        acked = self.acked_ids()
        effects: dict[str, list[int]] = {}
        for ref, amount in conn.execute(
            "SELECT ref, amount FROM ledger WHERE type IN ('reward', 'bonus')"
        ):
            effects.setdefault(ref, []).append(amount)
        processed = {
            row[0]
            for row in conn.execute("SELECT event_id FROM processed_events WHERE source = ?",
                                    ("eventsub",))
        }  # fmt: skip
        expected: set[str] = set()
        lost = doubled = unanswered = 0
        for event in self.events:
            ref = {
                "redeem": f"redemption:{event.key}",
                "cheer": f"eventsub:{event.key}",
                "follow": f"follow:{event.key}",
            }[event.kind]
            expected.add(ref)
            found = effects.get(ref, [])
            if len(found) > 1 or any(amount != event.amount for amount in found):
                doubled += 1
                problems.append(f"{event.kind} {event.message_id}: effects {found}")
            if event.message_id in acked:
                if event.message_id not in processed:
                    problems.append(f"{event.kind} {event.message_id} answered, not recorded")
                if not found:
                    lost += 1
                    problems.append(f"{event.kind} {event.message_id} answered, no effect")
            else:
                unanswered += 1
        strangers = {ref: amounts for ref, amounts in effects.items() if ref not in expected}
        if strangers:
            doubled += len(strangers)
            problems.append(f"reward/bonus rows no notification explains: {list(strangers)[:5]}")
        if settled and unanswered:
            problems.append(f"{unanswered} notifications never answered 2xx")
        recorded = {r[0] for r in conn.execute("SELECT redemption_id FROM redemptions")}
        unexplained = recorded - {e.key for e in self.events if e.kind == "redeem"}
        if unexplained:
            problems.append(f"redemptions no notification explains: {sorted(unexplained)[:5]}")
        deliveries = [d for d in self.sim.eventsub.deliveries if d.message_type == "notification"]
        books.figures.update(
            notifications=len(self.events),
            notification_deliveries=len(deliveries),
            deliveries_answered_2xx=sum(d.ok for d in deliveries),
            redeliveries=self.redeliveries,
            notifications_unanswered=unanswered,
            event_effects_lost=lost,
            double_event_effects=doubled,
        )

    # ---- figures -------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        seconds = self._load_seconds or (time.monotonic() - self._load_started)
        return {
            "load": asdict(self.load),
            "load_seconds": round(seconds, 1),
            "chat_sent": self.chat_sent,
            "chat_rate_achieved": round(self.chat_sent / seconds, 1) if seconds else 0.0,
            "chat_skipped_behind": self.chat_skipped,
            "webhooks_sent": self.webhooks_sent,
            "webhook_rate_achieved": round(self.webhooks_sent / seconds, 1) if seconds else 0.0,
            "webhooks_skipped_behind": self.webhooks_skipped,
            "daemon_starts": self.starts,
            "kills": self.kills,
            "daemon_cpu_seconds": round(self.daemon_cpu, 1),
            "daemon_error_events": len(self.daemon_errors),
            "bot_lines_sent": len(self.sim.sent),
            "bot_rate_violations": len(self.sim.rate_report()),
            "db_mb": round(sum(p.stat().st_size for p in self.dir.glob("harness.db*")) / 2**20, 1),
        }

    def messages_counted(self) -> int:
        """Chat messages the daemon counted (flushed with each tick and at a clean stop)."""
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            return int(conn.execute("SELECT coalesce(sum(messages), 0) FROM viewers").fetchone()[0])
        finally:
            conn.close()
