"""Earning benchmark: full ticks of the real daemon against the simulator, as JSON lines.

    .venv/bin/python bench/earning.py                # 10,000 and 100,000 viewers
    .venv/bin/python bench/earning.py --seed         # + the seed's batchAddPoints, same run
    .venv/bin/python bench/earning.py --sizes 100000 --reps 1

The simulator (Twitch) runs in this process; the daemon runs as `python -m loyaltybot run`
in its own process, so its CPU time and memory are its own. For each size N, on a fresh
database, N viewers are in Get Chatters (1000 per page) and 10 % of them are subscribers
(Get Broadcaster Subscriptions, 100 per page, read at the first tick and every 30 min):

  tick 1   ``tick_insert``   every viewer is new: every row inserted
  tick 2   ``tick_update``   the same viewers again: every row updated
  tick 3   ``tick_update_standings``  again, after a ``!points`` made the daemon keep its
           in-memory ranks, which then follow each tick (no rebuild)

Each tick's figures come from the daemon's own ``earning_tick`` log event: ``total`` =
from the tick's due time to its commit, ``helix`` = waiting for Twitch within that (a big
channel's chatter list is read ahead of the tick, ``collect`` = how long that reading
took), ``db`` = the write transaction (``Bank.credit_tick``). After tick 3, once the
daemon has given back what the tick freed, its resident memory with N viewers present
(VmRSS and VmHWM from /proc/<pid>/status), and per viewer above the idle daemon (n = 0).

Issue 16's targets: at 100,000 and 1,000,000 viewers the whole tick beats the seed's
``batchAddPoints`` alone (``node bench.js distribute N`` in ../shared/peers/seed-js, run
here with ``--seed``, same N, same run); at most 500 bytes of RSS per viewer at 1,000,000.
One ``{"compare": "tick_end_to_end", ...}`` line per size and case says it; ``--plot``
draws seconds and memory against N. The simulator's Helix rate limit is raised for the run
(a million-viewer list is 1,000 requests; Twitch allows 800 a minute: see interval_for).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loyaltybot import logs  # noqa: E402
from loyaltybot.features.earning.service import GIVE_BACK_AFTER  # noqa: E402
from loyaltybot.simulator import BOT_SCOPES, BROADCASTER_SCOPES, Simulator  # noqa: E402

SEED_DIR = ROOT.parent / "shared" / "peers" / "seed-js"
CHANNEL = "alice"
INTERVAL_MINUTES = 0.05  # 3 s between ticks (a million viewers: see interval_for)
CASES = {"tick_insert": "first", "tick_update": "steady", "tick_update_standings": "standings"}


def interval_for(n: int) -> float:
    """Minutes between ticks: 3 s, or long enough that the chatter list (1,000 pages for a
    million viewers) is read ahead of the tick, as the daemon does on Twitch."""
    return max(INTERVAL_MINUTES, n / 1_000_000 * 0.5)
TARGET_TICK_SECONDS = 1.0
TARGET_DB_SPEEDUP = 1.2
TARGET_RSS_MB = 200.0
TICKS = ("tick_insert", "tick_update", "tick_update_standings")
POINTS_EVERY = 0.5  # seconds between two !points while the standings tick is prepared


def emit(**fields: Any) -> dict[str, Any]:
    print(json.dumps(fields), flush=True)
    return fields


def write_config(directory: Path, sim: Simulator, bot_token: str, channel: str) -> Path:
    """A daemon config against the simulator; ``channel`` is the body of [channels.alice]
    (bench/chat.py uses it too)."""
    path = directory / "config.toml"
    path.write_text(f"""
[database]
path = "{directory / "bench.db"}"
[log]
level = "info"
format = "json"
[twitch]
client_id = "{sim.client_id}"
bot_login = "mybot"
bot_token = "{bot_token}"
irc_url = "{sim.irc_url}"
api_url = "{sim.api_url}"
auth_url = "{sim.auth_url}"
eventsub_ws_url = "{sim.eventsub_ws_url}"
[web]
listen = "127.0.0.1:0"
[channels.{CHANNEL}]
{channel}
""")
    return path


class Daemon:
    """``loyaltybot run`` in its own process, JSON logs in a file."""

    def __init__(self, config: Path, profile: Path | None = None) -> None:
        self.log_path = config.parent / "daemon.log"
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
        with self.log_path.open("w") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, *profiler, "-m", "loyaltybot", "run", "-c", str(config)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    async def wait_event(self, name: str, count: int, within: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        tail = self.log_path.read_text()[-2000:]
        raise RuntimeError(f"no {name} #{count} from the daemon (exit {self.proc.poll()}):\n{tail}")

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM in MB, from the daemon's /proc/<pid>/status."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
        return fields

    async def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        self.proc.kill()


async def bench_size(
    sim: Simulator, n: int, rep: int, profile: Path | None = None
) -> list[dict[str, Any]]:
    users = sim.add_users(n, prefix=f"r{rep}n{n}v")
    sim.set_chatters(CHANNEL, users)
    chan = sim.channel(CHANNEL)
    chan.subs.clear()
    for user in users[::10]:
        sim.set_role(CHANNEL, user.login, subscriber_tier=1000)
    bot_token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    broadcaster_token = sim.issue_token(CHANNEL, scopes=list(BROADCASTER_SCOPES))
    # The simulated world (Twitch's side) grows by n users per run; keep it out of this
    # process's garbage collector so that Twitch's answers do not slow down run by run.
    gc.freeze()
    lines = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        daemon = Daemon(
            write_config(Path(tmp), sim, bot_token, (
                f"interval_minutes = {interval_for(n)}\npoints_per_interval = 10\n"
                f'subscriber_multiplier = 1.5\nbroadcaster_token = "{broadcaster_token}"'
            )),
            profile / f"daemon-{n}-{rep}.prof" if profile else None,
        )
        try:
            await daemon.wait_event("daemon_ready", 1, within=120)
            if n == 0:  # the idle daemon: one tick with nobody, then its memory
                await daemon.wait_event("earning_tick", 1)
                lines.append(emit(impl="loyaltybot", workload="rss", n=0, rep=rep,
                                  **daemon.memory()))
                return lines
            probe: asyncio.Task[list[Any]] | None = None
            for number, workload in enumerate(TICKS, start=1):
                if workload == "tick_update_standings":
                    mark = len(sim.sent)
                    await sim.say(CHANNEL, users[1], "!points")
                    await sim.wait_for_reply(CHANNEL, contains=users[1].login, after=mark,
                                             timeout=30)
                    probe = asyncio.create_task(ask_points(sim, users[2:]))
                tick = await daemon.wait_event(
                    "earning_tick", number, within=60 + interval_for(n) * 60 * 2
                )
                if tick["present"] != n:
                    raise RuntimeError(f"tick {number}: {tick['present']} present, not {n}")
                lines.append(emit(
                    impl="loyaltybot", workload=workload, n=n, rep=rep,
                    total_seconds=tick["seconds"], helix_seconds=tick["helix_seconds"],
                    db_seconds=tick["write_seconds"],
                    other_seconds=round(
                        tick["seconds"] - tick["helix_seconds"] - tick["write_seconds"], 3),
                    collect_seconds=tick.get("collect_seconds"),
                    points=tick["points"],
                ))
            if probe is not None:
                lines.append(await points_latency(sim, probe, n, rep, daemon))
            if n >= GIVE_BACK_AFTER:  # between ticks: what the tick freed is given back
                await daemon.wait_event("memory_given_back", len(TICKS), within=30)
            lines.append(emit(impl="loyaltybot", workload="rss", n=n, rep=rep,
                              **daemon.memory()))
        finally:
            await daemon.stop()
    sim.set_chatters(CHANNEL, [])
    return lines


async def ask_points(sim: Simulator, askers: list[Any]) -> list[Any]:
    """``!points`` twice a second (within the bot's send budget) until cancelled: the
    window holds the read-ahead of the chatter list and the tick's write."""
    asked: list[Any] = []
    try:
        for asker in askers:
            asked.append((await sim.say(CHANNEL, asker, "!points"), time.time()))
            await asyncio.sleep(POINTS_EVERY)
    except asyncio.CancelledError:
        pass
    return asked


async def points_latency(
    sim: Simulator, probe: asyncio.Task[list[Any]], n: int, rep: int, daemon: Daemon
) -> dict[str, Any]:
    """From each ``!points`` the simulator sent to the reply it received, in ms; the three
    slowest with when they were asked, in seconds after the tick's commit."""
    await asyncio.sleep(1.0)  # a reply to the last ones asked
    probe.cancel()
    asked = await probe
    wanted = {m.id: m.at for m, _ in asked}
    wall = {m.id: when for m, when in asked}
    committed = datetime.fromisoformat(daemon.events("earning_tick")[-1]["timestamp"])
    for _ in range(100):
        replies = {m.reply_to: m.at for m in sim.sent if m.reply_to in wanted}
        if len(replies) == len(wanted):
            break
        await asyncio.sleep(0.05)
    timed = sorted(((replies[i] - at) * 1000, i) for i, at in wanted.items() if i in replies)
    ms = [t for t, _ in timed]
    slowest = [[round(wall[i] - committed.timestamp(), 2), round(t, 1)] for t, i in timed[-3:]]
    nearest = ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)] if ms else None
    return emit(impl="loyaltybot", workload="points_during_tick", n=n, rep=rep,
                asked=len(wanted), answered=len(ms),
                p50_ms=round(statistics.median(ms), 1) if ms else None,
                p99_ms=None if nearest is None else round(nearest, 1),
                max_ms=round(ms[-1], 1) if ms else None, target_p99_ms=20,
                slowest_at_s_and_ms=slowest)


def run_seed(n: int) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", "bench.js", "distribute", str(n)], cwd=SEED_DIR, capture_output=True,
        text=True, timeout=600, check=True, env={**os.environ, "BENCH_DIR": tempfile.mkdtemp()},
    )
    found = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    for line in found:
        print(json.dumps({**line, "rep_of": "seed"}), flush=True)
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", action="store_true", help="also run the seed's batchAddPoints")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; medians are compared")
    parser.add_argument("--profile", type=Path, help="run the daemon under cProfile, into DIR")
    parser.add_argument("--plot", type=Path, help="draw seconds and memory against N (PNG)")
    args = parser.parse_args()
    logs.configure("warning", "console")
    if args.seed and not (SEED_DIR / "node_modules" / "better-sqlite3").is_dir():
        sys.exit(f"the seed peer is not installed: run `bash {SEED_DIR}/run.sh` once")
    sizes = [int(s) for s in args.sizes.split(",")]
    emit(note="machine", load_average=os.getloadavg(), cpus=os.cpu_count())

    sim = Simulator(client_id="bench-client-id", client_secret="bench-client-secret",
                    helix_points_per_minute=1_000_000)
    await sim.start()
    sim.add_channel(CHANNEL, bot_login="mybot", bot_role="moderator")
    sim.set_live(CHANNEL, True)
    ours: dict[tuple[str, int], list[dict[str, Any]]] = {}
    seed: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        for line in await bench_size(sim, 0, 0):  # the idle daemon's memory, the baseline
            ours.setdefault(("rss", 0), []).append(line)
        for rep in range(args.reps):  # interleaved with the seed's runs
            for n in sizes:
                for line in await bench_size(sim, n, rep, args.profile):
                    ours.setdefault((line["workload"], n), []).append(line)
                if args.seed:
                    for line in run_seed(n):
                        seed.setdefault((line["workload"], n), []).append(line)
    finally:
        await sim.close()

    def median(key: tuple[str, int], field: str) -> float:
        return float(statistics.median(float(x[field]) for x in ours[key]))

    for n in sizes:
        for workload in TICKS:
            key = (workload, n)
            summary: dict[str, Any] = {
                "median": workload, "n": n, "reps": len(ours[key]),
                "total_seconds": median(key, "total_seconds"),
                "helix_seconds": median(key, "helix_seconds"),
                "db_seconds": median(key, "db_seconds"),
                "target_total_seconds": TARGET_TICK_SECONDS,
            }
            seed_key = ("distribute_insert" if workload == "tick_insert"
                        else "distribute_update", n)
            if seed_key in seed:
                seed_s = float(statistics.median(float(x["seconds"]) for x in seed[seed_key]))
                summary.update(vs=seed_key[0], seed_seconds=seed_s,
                               db_speedup=round(seed_s / summary["db_seconds"], 2),
                               target_db_speedup=TARGET_DB_SPEEDUP)
            emit(**summary)
        emit(median="rss", n=n, VmRSS=median(("rss", n), "VmRSS"),
             VmHWM=median(("rss", n), "VmHWM"), target_mb=TARGET_RSS_MB)

    # Issue 16: the whole tick against the seed's database write alone, per N and case.
    idle = median(("rss", 0), "VmRSS")
    growth: list[dict[str, Any]] = []
    for n in sizes:
        rss = median(("rss", n), "VmRSS")
        for workload, case in CASES.items():
            key = (workload, n)
            line: dict[str, Any] = {
                "compare": "tick_end_to_end", "n": n, "case": case,
                "seconds": median(key, "total_seconds"),
                "db_seconds": median(key, "db_seconds"),
                "collect_seconds": median(key, "collect_seconds"),
                "rss_bytes_per_viewer": round((rss - idle) * 2**20 / n),
            }
            seed_key = ("distribute_insert" if case == "first" else "distribute_update", n)
            if seed_key in seed:
                seed_s = float(statistics.median(float(x["seconds"]) for x in seed[seed_key]))
                line.update(seed_db_seconds=seed_s, speedup=round(seed_s / line["seconds"], 2),
                            db_speedup=round(seed_s / line["db_seconds"], 2))
            growth.append(emit(**line))
    if args.plot:
        plot(growth, args.plot)


def plot(growth: list[dict[str, Any]], path: Path) -> None:
    """Seconds per tick and resident bytes per viewer against N, ours and the seed's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for case in CASES.values():
        rows = [g for g in growth if g["case"] == case]
        left.plot([g["n"] for g in rows], [g["seconds"] for g in rows], marker="o",
                  label=f"loyaltybot, {case} tick (whole)")
    seed_rows = [g for g in growth if g["case"] == "steady" and "seed_db_seconds" in g]
    if seed_rows:
        left.plot([g["n"] for g in seed_rows], [g["seed_db_seconds"] for g in seed_rows],
                  marker="s", linestyle="--", color="black", label="seed batchAddPoints (db only)")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("viewers present (N)")
        axis.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("seconds per tick")
    left.legend(fontsize=8)
    rows = [g for g in growth if g["case"] == "steady"]
    right.plot([g["n"] for g in rows], [g["rss_bytes_per_viewer"] for g in rows], marker="o")
    right.axhline(500, color="red", linestyle=":", label="target: 500 B per viewer")
    right.set_ylabel("resident bytes per viewer above idle")
    right.legend(fontsize=8)
    fig.suptitle("bench/earning.py: the earning tick as N grows")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    asyncio.run(main())
