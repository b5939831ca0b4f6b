"""Chat benchmark: the whole IRC path of the real daemon against the simulator, as JSON lines.

    .venv/bin/python bench/chat.py                 # one rep of the three cases, ~70 s
    .venv/bin/python bench/chat.py --reps 3        # medians and pooled latencies at the end
    .venv/bin/python bench/chat.py --seed          # + the seed's recordMessage (node bench.js)
    .venv/bin/python bench/chat.py --cases first_time,known --profile DIR  # cProfile

The simulator (Twitch) runs in this process; the daemon runs as ``python -m loyaltybot
run`` in its own process (the pattern of bench/earning.py), so the simulator's CPU is not
charged to the daemon: on 2 cores each has one. Each rep runs three cases, each with its
own daemon on its own fresh, empty database (``case`` in every line; which case goes first
rotates from rep to rep, so that a drift of the machine favours none):

``repeat``  the original case, unchanged: 5,000 chatters (every 10th a subscriber, so
    badges and the subscriber path are exercised), lines from random chatters. Since
    first sight (SPEC section 4) the daemon writes a row for each of them the first time
    it sees them, so this case holds 5,000 first sights too, bunched at the start (a
    random choice meets every chatter within ~40,000 lines); its ``first_sight_*`` show
    them.

``first_time``  5,000 viewers the daemon has never seen (every 10th a subscriber), 20
    lines each (``--first-time-viewers``, ``--first-time-lines``), staggered
    (``staggered``): they arrive in random order, evenly over the burst, a new viewer's
    first line (tagged ``first-msg=1``, as Twitch does) every ~20th line from the start
    to ~95 % of it, and each viewer's other 19 lines within the next tenth of the burst,
    so each line interleaves with ~500 other viewers'. Its latency phase uses the same
    shape with its own never-seen viewers: at 500 lines/s, 25 new viewers a second.

``known``  the control: the same shape as ``first_time`` (5,000 viewers, 20 lines each,
    staggered) from viewers who are rows already: before the clock each says one line
    and a ``!points`` settles first sight (the ``introduced`` line), then the burst,
    during which first sight writes nothing but the sentinel. No latency phase.

``compare`` lines give first_time / repeat (target >= 0.90), first_time / known (what
first sight costs) and repeat / known, the median of each rep's pair and the ratio of
the medians. ``first_sight_*`` = the daemon's ``loyaltybot_first_sight_total`` counters
(viewers, writes = transactions, lookups, failures), read over HTTP from its /metrics
before and after each phase; a phase's sentinel and ``!points`` askers are new viewers
too (a 5,000-viewer burst has 5,001), and a viewer whose row is being written when their
next line arrives is queued and written again (idempotently) and counted again, so
``first_sight_viewers`` can exceed the viewers seen. After the stop, ``rows`` checks that
the database has exactly one viewer row for every distinct viewer who spoke.

Per case:

``chat_throughput``  N ordinary lines (default 100,000; never a command) from the
    case's chatters, then one ``!points`` from a viewer who has not spoken: the
    sentinel. The lines are rendered before the clock starts, with the simulator's own tag code, and
    queued on the bot's connection ``--lines-per-frame`` to a WebSocket frame (Twitch
    also batches lines); the simulator's writer sends them as fast as the socket takes
    them. twitchio turns lines into tasks in arrival order, so the sentinel's reply
    proves that every line before it went through parsing, ``ChatClient.on_message`` and
    the presence tracker. ``seconds`` = first frame queued -> the sentinel's reply
    arriving at the simulator (one command round trip, a few ms, is included).
    ``sim_write_seconds`` = when the last frame was handed to the socket (a long tail
    after it is the daemon catching up, not the simulator holding it back).

``points_latency``  for ``--latency-seconds``, background chat at 500 lines/s (paced,
    ``IrcServer.say_many`` every 20 ms) and ``!points`` from a different viewer each
    time at ``--commands-per-second``. Latency = ``ChatMessage.at`` (the simulator
    queued the line for the bot's socket; its queue is near empty at this rate) ->
    ``SentMessage.at`` (the reply with that message as reply-parent arrived at the
    simulator). Both stamps are the simulator's monotonic clock, so the figure includes
    two loopback WebSocket hops and the simulator's own loop. Every 100 ms the simulator
    also sends the bot a server ``PING``; the ``PONG`` delay (``pong_*``) shows when the
    daemon's whole loop stalled, as opposed to the command path being slow. twitchio
    keeps every line's finished task and frees them every 30 s from connecting: after the
    100,000-line burst that frees ~110,000 tasks at once, a stall of tens of ms at
    ``phase_start_s_after_connect + at_s`` = 30 s (``*_slowest_at_s_ms`` = [s into the
    phase, ms]); it lands on a ``!points`` only when one is in flight. The bot is a moderator
    (100 messages per 30 s); the default 3/s for 20 s sends 60 replies (+2 warm-up and
    sentinel), so the outbox never holds a reply back for Twitch's limits and every reply
    is expected. p99 is nearest-rank: with under 100 samples it is the largest, so one
    stall decides it; ``--reps`` pools the samples of every rep at the end.

``counted``  after a clean stop the daemon flushes its in-memory per-viewer message
    counts (the tracker's, fed by every chat line) into ``viewers.messages``; their sum
    must equal the lines the simulator sent. That is the check that nothing was dropped;
    a mismatch, a missing reply, a missing viewer row or a send-limit violation makes the
    exit status 1.

Also: the machine (cpus, load average, before and after: other work on the machine
shows here), the daemon's CPU seconds per phase (/proc/<pid>/stat), and Twitch
send-limit violations and refused bot messages (``sim.rate_report()``, ``sim.dropped``).

Targets (issue 3): >= 5,000 chat messages/s through the whole path; ``!points`` p99 <=
20 ms under 500 messages/s; (first sight) first-time chatters' throughput >= 0.90x the
repeat case's, and the same p99 target with first-time chatters. ``--seed`` runs the
seed's ``node bench.js message K`` (``recordMessage``: one database write per chat
message, no IRC at all) in ../shared/peers/seed-js and prints our rate as a ratio to it
(against the repeat case); the seed's figure is its database alone, so the ratio
flatters the seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.earning import Daemon, emit, write_config  # noqa: E402
from loyaltybot import logs  # noqa: E402
from loyaltybot.simulator import BOT_SCOPES, Simulator  # noqa: E402
from loyaltybot.simulator import ircproto as proto  # noqa: E402
from loyaltybot.simulator.irc import ChatMessage, IrcConnection, SentMessage  # noqa: E402
from loyaltybot.simulator.world import SimUser  # noqa: E402

SEED_DIR = ROOT.parent / "shared" / "peers" / "seed-js"
CHANNEL = "alice"
BOT = "mybot"
TARGET_MSGS_PER_SEC = 5000.0
TARGET_P99_MS = 20.0
TARGET_FIRST_TIME_RATIO = 0.90  # first-time chatters' lines/s over the repeat case's
CASES = ("repeat", "first_time", "known")
FIRST_TIME_WINDOW = 0.1  # a first-time viewer's other lines: within this part of the phase
_FIRST_SIGHT = re.compile(r'^loyaltybot_first_sight_total\{what="(\w+)"\} (\S+)$', re.M)
PRIVILEGED_PER_30S = 100  # Twitch's send limit for a moderator
PING_EVERY = 0.1  # a server PING to the bot: its PONG shows when the daemon's loop stalls
_WORDS = ("hello", "hi", "lol", "nice", "gg", "what", "is", "this", "game", "stream", "music",
          "love", "it", "go", "clutch", "wow", "omg", "no", "way", "yes", "good", "play", "boss",
          "fight", "win", "hype", "cozy", "vibes", "Kappa", "LUL", "PogChamp")  # fmt: skip


def machine(when: str) -> dict[str, Any]:
    return emit(
        note="machine",
        when=when,
        cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chat_text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def staggered(
    users: Sequence[SimUser], lines_each: int, rng: random.Random, window: float
) -> list[tuple[SimUser, bool]]:
    """Every user says ``lines_each`` lines: (speaker, is their first line) per line.

    Users arrive in random order, evenly over the phase (the k-th at about k/len(users)
    of it); each one's other lines fall within ``window`` of the phase after their first.
    A random choice among all lines would put nearly every first line in the first ~15 %;
    this spreads them from start to ~95 %, one new viewer every ``lines_each`` lines."""
    order = list(range(len(users)))
    rng.shuffle(order)
    keyed: list[tuple[float, int]] = []
    for position, k in enumerate(order):
        arrival = (position + rng.random()) / len(order)
        keyed.append((arrival, k))
        keyed.extend((arrival + window * rng.random(), k) for _ in range(lines_each - 1))
    keyed.sort()
    seen: set[int] = set()
    lines = []
    for _, k in keyed:
        lines.append((users[k], k not in seen))
        seen.add(k)
    return lines


def render_frames(
    sim: Simulator,
    speakers: Iterable[tuple[SimUser, bool]],
    per_frame: int,
    rng: random.Random,
    sentinel: SimUser,
) -> tuple[list[str], str, int]:
    """A chat line per (speaker, first-msg tag) + the sentinel ``!points``, exactly as the
    simulator renders a PRIVMSG for a connection with the tags capability; returns
    (frames, the sentinel's msg id, the number of chat lines before the sentinel)."""
    channel = sim.channel(CHANNEL)
    sent_ms = int(sim.clock.now() * 1000)
    prefixes: dict[str, str] = {}

    def line(user: SimUser, text: str, msg_id: str, first: bool = False) -> str:
        tags = proto.privmsg_tags(
            channel, user, text, msg_id=msg_id, sent_ms=sent_ms, first_msg=first
        )
        prefix = prefixes.get(user.id)
        if prefix is None:
            prefix = prefixes[user.id] = f":{proto.hostmask(user.login)} PRIVMSG #{CHANNEL} :"
        return f"{proto.format_tags(tags)} {prefix}{text}"

    lines = [line(user, chat_text(rng), str(uuid.uuid4()), first) for user, first in speakers]
    n = len(lines)
    sentinel_id = str(uuid.uuid4())
    lines.append(line(sentinel, "!points", sentinel_id))
    frames = [
        "\r\n".join(lines[i : i + per_frame]) + "\r\n" for i in range(0, len(lines), per_frame)
    ]
    return frames, sentinel_id, n


async def bot_connection(sim: Simulator, within: float = 30.0) -> IrcConnection:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for conn in sim.irc.select(BOT):
            if CHANNEL in conn.channels:
                return conn
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the bot did not join #{CHANNEL} within {within}s")


async def ask_points(sim: Simulator, user: SimUser, within: float = 10.0) -> SentMessage:
    mark = len(sim.sent)
    asked = await sim.say(CHANNEL, user, "!points")
    reply = await sim.wait_for_reply(CHANNEL, contains=f"@{user.login}", after=mark, timeout=within)
    if reply.reply_to != asked.id:
        raise RuntimeError(f"reply {reply.text!r} is not to {asked.id}")
    return reply


async def measure_throughput(
    sim: Simulator,
    daemon: Daemon,
    conn: IrcConnection,
    frames: list[str],
    sentinel: SimUser,
    sentinel_id: str,
    n: int,
) -> dict[str, Any]:
    mark = len(sim.sent)
    cpu_before = cpu_seconds(daemon.proc.pid)
    sim_cpu_before = time.process_time()
    started = sim.clock.monotonic()
    for frame in frames:  # the queue holds them all (checked in main); the writer sends them
        conn.push_raw(frame)
    waiting = asyncio.create_task(
        sim.wait_for_reply(
            CHANNEL, contains=f"@{sentinel.login}", after=mark, timeout=max(60.0, n / 1000)
        )
    )
    await conn.flush(within=max(60.0, n / 1000))
    written = sim.clock.monotonic()
    reply = await waiting
    if reply.reply_to != sentinel_id:
        raise RuntimeError(f"the sentinel's reply {reply.text!r} is not to the sentinel")
    seconds = reply.at - started
    memory = daemon.memory()  # twitchio keeps every line's finished task for up to 30 s
    return {
        "impl": "loyaltybot",
        "workload": "chat_throughput",
        "n": n,
        "seconds": round(seconds, 3),
        "msgs_per_sec": round(n / seconds, 1),
        "sim_write_seconds": round(written - started, 3),
        "daemon_cpu_seconds": round(cpu_seconds(daemon.proc.pid) - cpu_before, 2),
        "sim_cpu_seconds": round(time.process_time() - sim_cpu_before, 2),
        "frames": len(frames),
        "daemon_rss_mb": memory.get("VmRSS"),
        "daemon_hwm_mb": memory.get("VmHWM"),
        "target_msgs_per_sec": TARGET_MSGS_PER_SEC,
    }


async def measure_latency(
    sim: Simulator,
    daemon: Daemon,
    conn: IrcConnection,
    speaker: Callable[[], SimUser],
    askers: list[SimUser],
    seconds: float,
    rate: float,
    commands_per_second: float,
    rng: random.Random,
) -> tuple[dict[str, Any], list[float], int]:
    """Background lines from ``speaker()``, each call one line. Returns (the line,
    latencies in ms, chat lines sent including the commands)."""
    loop = asyncio.get_running_loop()
    mark = len(sim.sent)
    asked: list[ChatMessage] = []
    pings: list[float] = []
    background = 0
    cpu_before = cpu_seconds(daemon.proc.pid)
    start = loop.time()
    while (now := loop.time()) - start < seconds:
        due = int((now - start) * rate) - background
        if due > 0:
            background += sim.irc.say_many(
                CHANNEL, [(speaker(), chat_text(rng)) for _ in range(due)]
            )
        commands = int((now - start) * commands_per_second) - len(asked)
        for _ in range(commands):
            asked.append(await sim.say(CHANNEL, askers[len(asked)], "!points"))
        if now - start >= len(pings) * PING_EVERY:
            pings.append(sim.clock.monotonic())
            conn.push_raw(f"PING :{proto.SERVER}\r\n")
        await asyncio.sleep(0.02)
    chat_seconds = loop.time() - start
    daemon_cpu = cpu_seconds(daemon.proc.pid) - cpu_before
    deadline = loop.time() + 5.0  # replies still on their way
    wanted = {m.id for m in asked}
    while loop.time() < deadline:
        if wanted <= {m.reply_to for m in sim.sent[mark:]}:
            break
        await asyncio.sleep(0.05)
    replies = {m.reply_to: m for m in sim.sent[mark:] if m.reply_to in wanted}
    timed = [((replies[m.id].at - m.at) * 1000, m.at) for m in asked if m.id in replies]
    latencies = sorted(ms for ms, _ in timed)
    phase_start = sim.clock.monotonic() - (loop.time() - start)
    connected = next(c.at for c in sim.client_lines if c.conn_id == conn.conn_id)
    slowest = [[round(at - phase_start, 1), round(ms, 1)] for ms, at in sorted(timed)[-3:]]
    pongs = [c.at for c in sim.client_lines if c.at >= pings[0] and c.line.startswith("PONG")]
    pong_ms = sorted(((p - q) * 1000, q) for q, p in zip(pings, pongs, strict=False))
    pong = latency_fields([ms for ms, _ in pong_ms])
    line = {
        "impl": "loyaltybot",
        "workload": "points_latency",
        "count": len(asked),
        "replied": len(latencies),
        "background_msgs_per_sec": round(background / chat_seconds, 1),
        "commands_per_sec": commands_per_second,
        "seconds": round(chat_seconds, 1),
        "daemon_cpu_fraction": round(daemon_cpu / chat_seconds, 3),
        **latency_fields(latencies),
        "slowest_at_s_ms": slowest,
        "target_p99_ms": TARGET_P99_MS,
        "phase_start_s_after_connect": round(phase_start - connected, 1),
        "pongs": len(pong_ms),
        "pong_p50_ms": pong["p50_ms"],
        "pong_p99_ms": pong["p99_ms"],
        "pong_max_ms": pong["max_ms"],
        "pong_slowest_at_s_ms": [
            [round(at - phase_start, 1), round(ms, 1)] for ms, at in pong_ms[-3:]
        ],
    }
    return line, latencies, background + len(asked)


def latency_fields(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies)
    return {
        "p50_ms": round(percentile(ordered, 50), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
        "min_ms": round(ordered[0], 2),
    }


def counted_messages(db: Path) -> tuple[int, int]:
    """(the sum of every viewer's message count, the number of viewer rows)."""
    with sqlite3.connect(db) as conn:
        messages = conn.execute("SELECT coalesce(sum(messages), 0) FROM viewers").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM viewers").fetchone()[0]
    return int(messages), int(rows)


async def first_sight(http: aiohttp.ClientSession, web: str) -> dict[str, float]:
    """The daemon's ``loyaltybot_first_sight_total`` counters, from its /metrics."""
    async with http.get(f"{web}/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    found = {what: float(value) for what, value in _FIRST_SIGHT.findall(text)}
    if "viewers" not in found or "writes" not in found:
        raise RuntimeError(f"no loyaltybot_first_sight_total viewers/writes in {web}/metrics")
    return found


def first_sight_fields(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """What first sight did between two reads of /metrics."""
    delta = {what: int(after.get(what, 0) - before.get(what, 0)) for what in after}
    fields: dict[str, Any] = {
        f"first_sight_{what}": delta.get(what, 0)
        for what in ("viewers", "writes", "lookups", "failures")
    }
    writes = fields["first_sight_writes"]
    fields["first_sight_viewers_per_write"] = (
        round(fields["first_sight_viewers"] / writes, 1) if writes else None
    )
    return fields


async def bench_rep(
    sim: Simulator, args: argparse.Namespace, rep: int, case: str
) -> dict[str, Any]:
    """One case on its own daemon and fresh database: {"throughput": line, "latency": line
    or None, "latencies": ms}."""
    spoke: set[str] = set()  # every viewer who says something: one row each at the end

    def speaking(user: SimUser) -> SimUser:
        spoke.add(user.id)
        return user

    # The daemon reads Get Chatters once at start and writes whoever is in it: an earlier
    # case's latency-phase chatters would be rows before this case's first line.
    sim.set_chatters(CHANNEL, [])
    speakers: Iterable[tuple[SimUser, bool]]
    background: Callable[[], SimUser] | None = None
    introduce: list[tuple[SimUser, bool]] = []  # ``known``: one line each, before the clock
    if case == "repeat":  # the original case, unchanged (same users, same random draws)
        rng = random.Random(args.random_seed + rep)
        chatters = sim.add_users(args.chatters, prefix=f"r{rep}c")
        for user in chatters[::10]:
            sim.set_role(CHANNEL, user.login, subscriber_tier=1000)
        speakers = ((speaking(rng.choice(chatters)), False) for _ in range(args.messages))

        def repeat_chatter() -> SimUser:
            return speaking(rng.choice(chatters))

        background, asker_prefix = repeat_chatter, f"r{rep}q"
        shape: dict[str, Any] = {"chatters": args.chatters}
    else:
        rng = random.Random(args.random_seed + CASES.index(case) * 1_000_000 + rep)
        each = args.first_time_lines
        letter = "f" if case == "first_time" else "k"
        viewers = sim.add_users(args.first_time_viewers, prefix=f"r{rep}{letter}")
        for user in viewers[::10]:
            sim.set_role(CHANNEL, user.login, subscriber_tier=1000)
        lines = staggered(viewers, each, rng, FIRST_TIME_WINDOW)
        if case == "first_time":
            speakers = [(speaking(user), first) for user, first in lines]
            later = sim.add_users(  # the latency phase's own never-seen viewers, same shape
                math.ceil(args.rate * (args.latency_seconds + 2) / each), prefix=f"r{rep}g"
            )
            for user in later[::10]:
                sim.set_role(CHANNEL, user.login, subscriber_tier=1000)
            queue = iter(staggered(later, each, rng, FIRST_TIME_WINDOW))

            def first_timer() -> SimUser:
                nxt = next(queue, None)
                if nxt is None:
                    raise RuntimeError("the latency phase ran out of first-time viewers")
                return speaking(nxt[0])

            background = first_timer
        else:
            speakers = [(speaking(user), False) for user, _ in lines]
            introduce = [(user, True) for user in rng.sample(viewers, len(viewers))]
        asker_prefix = f"r{rep}{'a' if case == 'first_time' else 'b'}"
        shape = {"chatters": args.first_time_viewers, "lines_per_chatter": each}
    askers = sim.add_users(
        int(args.latency_seconds * args.commands_per_second) + 2, prefix=asker_prefix
    )
    warm, sentinel, askers = askers[0], askers[1], askers[2:]
    frames, sentinel_id, n = render_frames(sim, speakers, args.lines_per_frame, rng, sentinel)
    intro: tuple[list[str], str, int] | None = None
    if introduce:
        intro_sentinel = sim.add_users(1, prefix=f"r{rep}i")[0]
        spoke.add(intro_sentinel.id)
        intro = render_frames(sim, introduce, args.lines_per_frame, rng, intro_sentinel)
    token = sim.issue_token(BOT, scopes=list(BOT_SCOPES))
    violations_before, dropped_before = len(sim.rate_report()), len(sim.dropped)
    latency: dict[str, Any] | None = None
    latencies: list[float] = []
    chat_lines = 0
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        config = write_config(
            Path(tmp), sim, token, "interval_minutes = 60\npoints_per_interval = 10"
        )
        profile = args.profile / f"daemon-{case}-{rep}.prof" if args.profile else None
        daemon = Daemon(config, profile)
        try:
            async with aiohttp.ClientSession() as http:
                web = (await daemon.wait_event("daemon_ready", 1))["web"]
                conn = await bot_connection(sim)
                await ask_points(sim, warm)  # the whole path is up, the bot knows it is a moderator
                if intro is not None:  # every viewer says one line; the sentinel's !points
                    # settles first sight, so all of them are rows before the clock starts
                    seen = await first_sight(http, web)
                    measured = await measure_throughput(
                        sim, daemon, conn, intro[0], intro_sentinel, intro[1], intro[2]
                    )
                    emit(
                        note="introduced",
                        case=case,
                        n=intro[2],
                        seconds=measured["seconds"],
                        **first_sight_fields(seen, await first_sight(http, web)),
                        rep=rep,
                    )
                seen = await first_sight(http, web)
                measured = await measure_throughput(
                    sim, daemon, conn, frames, sentinel, sentinel_id, n
                )
                now = await first_sight(http, web)
                throughput = emit(
                    **measured,
                    case=case,
                    **shape,
                    lines_per_frame=args.lines_per_frame,
                    **first_sight_fields(seen, now),
                    rep=rep,
                )
                seen = now
                if background is not None:
                    latency, latencies, chat_lines = await measure_latency(
                        sim,
                        daemon,
                        conn,
                        background,
                        askers,
                        args.latency_seconds,
                        args.rate,
                        args.commands_per_second,
                        rng,
                    )
                    await asyncio.sleep(0.5)  # first sight's window (0.25 s) for the last lines
                    now = await first_sight(http, web)
                    latency = emit(**latency, case=case, **first_sight_fields(seen, now), rep=rep)
        finally:
            await daemon.stop()
        if daemon.proc.returncode != 0:
            raise RuntimeError(f"the daemon exited with {daemon.proc.returncode}")
        injected = 1 + n + 1 + chat_lines  # warm-up, lines, sentinel, phase 2
        if intro is not None:
            injected += intro[2] + 1
        counted, rows = counted_messages(Path(tmp) / "bench.db")
    asked = askers[: latency["count"]] if latency is not None else []
    spoke.update(u.id for u in (warm, sentinel, *asked))
    ok = emit(
        note="counted",
        case=case,
        rep=rep,
        injected=injected,
        daemon_counted=counted,
        ok=counted == injected,
    )["ok"]
    ok &= emit(
        note="rows",
        case=case,
        rep=rep,
        viewers_who_spoke=len(spoke),
        viewer_rows=rows,
        ok=rows == len(spoke),
    )["ok"]
    violations = sim.rate_report()[violations_before:]
    emit(
        note="twitch_limits",
        case=case,
        rep=rep,
        rate_violations=len(violations),
        bot_messages_refused=len(sim.dropped) - dropped_before,
        detail=[f"{v.rule} {v.count}/{v.limit}" for v in violations[:5]],
    )
    if not ok or violations or (latency is not None and latency["replied"] != latency["count"]):
        throughput["failed"] = True  # a correctness failure: the exit status says so
    return {"throughput": throughput, "latency": latency, "latencies": latencies}


def run_seed(k: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["node", "bench.js", "message", str(k)],
            cwd=SEED_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
            env={**os.environ, "BENCH_DIR": tmp},
        )
    line: dict[str, Any] = next(
        json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")
    )
    print(json.dumps({**line, "rep_of": "seed"}), flush=True)
    return line


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", action="store_true", help="also run the seed's recordMessage")
    parser.add_argument(
        "--messages", type=int, default=100_000, help="repeat case: lines in the burst"
    )
    parser.add_argument("--chatters", type=int, default=5000)
    parser.add_argument(
        "--first-time-viewers",
        type=int,
        default=5000,
        help="first_time and known cases: viewers (never seen, for first_time)",
    )
    parser.add_argument(
        "--first-time-lines",
        type=int,
        default=20,
        help="first_time and known cases: lines per viewer",
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}"
    )
    parser.add_argument("--lines-per-frame", type=int, default=10)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0, help="background chat, lines/s")
    parser.add_argument("--commands-per-second", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--random-seed", type=int, default=42)
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the daemons under cProfile, into DIR (slower: not for figures)",
    )
    args = parser.parse_args()
    logs.configure("warning", "console")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or set(cases) - set(CASES):
        sys.exit(f"--cases: one or more of {', '.join(CASES)}")
    if args.seed and not (SEED_DIR / "node_modules" / "better-sqlite3").is_dir():
        sys.exit(f"the seed peer is not installed: run `bash {SEED_DIR}/run.sh` once")
    replies = args.commands_per_second * min(args.latency_seconds, 30.0) + 2
    if replies > PRIVILEGED_PER_30S:
        sys.exit(
            f"{replies:.0f} replies in 30 s would exceed Twitch's {PRIVILEGED_PER_30S}:"
            " lower --commands-per-second or --latency-seconds"
        )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    machine("start")
    sim = Simulator(client_id="bench-client-id", client_secret="bench-client-secret")
    await sim.start()
    burst = max(args.messages, args.first_time_viewers * args.first_time_lines)
    if math.ceil((burst + 1) / args.lines_per_frame) > sim.irc.queue_size:
        sys.exit(
            f"more frames than the simulator's queue ({sim.irc.queue_size}):"
            " raise --lines-per-frame"
        )
    sim.add_channel(CHANNEL, bot_login=BOT, bot_role="moderator")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    seed_lines = []
    try:
        for rep in range(args.reps):  # interleaved with the seed's runs
            turn = rep % len(cases)  # each case goes first in turn: a drift favours none
            for case in cases[turn:] + cases[:turn]:
                results[case].append(await bench_rep(sim, args, rep, case))
            if args.seed:
                seed_lines.append(run_seed(50_000))
    finally:
        await sim.close()
    machine("end")

    rates: dict[str, list[float]] = {}
    for case, runs in results.items():
        rates[case] = [r["throughput"]["msgs_per_sec"] for r in runs]
        emit(
            median="chat_throughput",
            case=case,
            reps=len(runs),
            msgs_per_sec=statistics.median(rates[case]),
            runs=rates[case],
            first_sight_viewers=[r["throughput"]["first_sight_viewers"] for r in runs],
            first_sight_writes=[r["throughput"]["first_sight_writes"] for r in runs],
            target_msgs_per_sec=TARGET_MSGS_PER_SEC,
            met=statistics.median(rates[case]) >= TARGET_MSGS_PER_SEC,
        )
    for case, runs in results.items():
        timed = [r for r in runs if r["latency"] is not None]
        if not timed:
            continue
        pooled = [ms for r in timed for ms in r["latencies"]]
        emit(
            pooled="points_latency",
            case=case,
            reps=len(timed),
            count=sum(r["latency"]["count"] for r in timed),
            replied=len(pooled),
            **latency_fields(pooled),
            pong_max_ms=max(r["latency"]["pong_max_ms"] or 0.0 for r in timed),
            first_sight_viewers=[r["latency"]["first_sight_viewers"] for r in timed],
            first_sight_writes=[r["latency"]["first_sight_writes"] for r in timed],
            target_p99_ms=TARGET_P99_MS,
            met=bool(pooled) and percentile(sorted(pooled), 99) <= TARGET_P99_MS,
        )
    for case, vs in (("first_time", "repeat"), ("first_time", "known"), ("repeat", "known")):
        if case in rates and vs in rates:
            ratios = [round(a / b, 3) for a, b in zip(rates[case], rates[vs], strict=True)]
            emit(
                compare="chat_throughput",
                case=case,
                vs=vs,
                ratio=statistics.median(ratios),  # of each rep's pair
                runs=ratios,
                ratio_of_medians=round(
                    statistics.median(rates[case]) / statistics.median(rates[vs]), 3
                ),
                target_ratio=TARGET_FIRST_TIME_RATIO,
                met=statistics.median(ratios) >= TARGET_FIRST_TIME_RATIO,
            )
    if seed_lines:
        ours = statistics.median(rates.get("repeat") or next(iter(rates.values())))
        seed_rate = statistics.median(float(x["ops_per_sec"]) for x in seed_lines)
        emit(
            compare="chat_throughput",
            vs="message (seed recordMessage, database only)",
            loyaltybot_msgs_per_sec=ours,
            seed_msgs_per_sec=seed_rate,
            ratio=round(ours / seed_rate, 2),
            note="the seed's figure is its database alone; ours is the whole IRC path",
        )
    failed = any(r["throughput"].get("failed") for runs in results.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
