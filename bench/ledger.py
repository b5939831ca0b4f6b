"""Ledger benchmarks: one JSON line per workload, through the real store and bank.

    .venv/bin/python bench/ledger.py            # ours only
    .venv/bin/python bench/ledger.py --seed     # also the seed's better-sqlite3 code, same run

Workloads (issue #2):
  transfer        transfers/s, 64 concurrent tasks, among 10,000 viewers (each its own
                  BEGIN IMMEDIATE transaction with both ledger rows)
  tick_insert     one earning tick for N viewers nobody has seen (every row inserted),
  tick_update     then the next tick for the same viewers (every row updated); both write
                  the earning_ticks row; 10 % subscribers, like the seed's workload
  rank            rank of a random viewer among 100,000 (in-memory standings), per lookup;
                  and the time to build those standings from the database
With --seed, the seed's own code runs the same shapes (node bench.js distribute/transfer/
leaderboard) in this same run, and each of our lines carries the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loyaltybot import logs  # noqa: E402
from loyaltybot.db import open_store  # noqa: E402
from loyaltybot.points.bank import Bank  # noqa: E402
from loyaltybot.points.errors import InsufficientPoints  # noqa: E402
from loyaltybot.points.ledger import EarningRates, Presence, TickPlan  # noqa: E402
from loyaltybot.points.standings import Standings  # noqa: E402
from loyaltybot.points.viewers import Viewer  # noqa: E402

SEED_DIR = ROOT.parent / "shared" / "peers" / "seed-js"
CHANNEL = "bench"


def emit(workload: str, n: int, seconds: float, **extra: object) -> dict[str, object]:
    line = {"impl": "loyaltybot", "workload": workload, "n": n,
            "seconds": round(seconds, 6), "ops_per_sec": round(n / seconds, 1), **extra}
    print(json.dumps(line), flush=True)
    return line


def viewer(i: int) -> Viewer:
    return Viewer(str(100_000_000 + i), f"viewer{i}", f"Viewer{i}")


async def fresh_bank(directory: Path, name: str) -> Bank:
    path = directory / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = await open_store(path)
    bank = Bank(store)
    await bank.ensure_channels([CHANNEL])
    return bank


async def bench_transfer(directory: Path, transfers: int, users: int = 10_000,
                         tasks: int = 64) -> dict[str, object]:
    bank = await fresh_bank(directory, "transfer")
    channel_id = bank.channel_id(CHANNEL)

    def seed(tx):  # type: ignore[no-untyped-def]
        tx.conn.executemany(
            "INSERT INTO viewers (channel_id, user_id, login, display_name, points, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, 0, 0, 0)",
            [(channel_id, viewer(i).user_id, viewer(i).login, viewer(i).display_name)
             for i in range(users)])
        tx.conn.executemany(  # starting balances go through the ledger like everything else
            "INSERT INTO ledger (channel_id, user_id, amount, balance_after, type, created_at)"
            " VALUES (?, ?, 1000000, 1000000, 'add', 0)",
            [(channel_id, viewer(i).user_id) for i in range(users)])
        tx.conn.execute("UPDATE viewers SET points = 1000000 WHERE channel_id = ?", (channel_id,))

    await bank.store.write(seed)
    rng = random.Random(42)
    pairs = [(*rng.sample(range(users), 2), rng.randint(1, 1000)) for _ in range(transfers)]
    queue = iter(pairs)
    refused = 0

    async def worker() -> None:
        nonlocal refused
        for a, b, amount in queue:
            try:
                await bank.transfer(CHANNEL, viewer(a), viewer(b), amount)
            except InsufficientPoints:
                refused += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    total = await bank.store.read(
        lambda c: c.execute("SELECT sum(points) FROM viewers").fetchone()[0]
    )
    problems = await bank.audit()
    await bank.store.close()
    return emit("transfer", transfers, elapsed, tasks=tasks, users=users, refused=refused,
                points_conserved=total == users * 1_000_000, audit_ok=not problems)


async def bench_ticks(directory: Path, n: int) -> list[dict[str, object]]:
    bank = await fresh_bank(directory, f"tick{n}")
    rates = EarningRates(points=10, subscriber_points=15, active_bonus=0, min_watch_seconds=0)
    present = [Presence(v.user_id, v.login, v.display_name, i % 10 == 0, 0)
               for i, v in ((i, viewer(i)) for i in range(n))]
    channel_id = bank.channel_id(CHANNEL)
    out = []
    for seq, workload in ((1, "tick_insert"), (2, "tick_update")):
        plan = TickPlan(channel_id, seq, seq, 300, rates, present, bank.known_logins(CHANNEL))
        start = time.perf_counter()
        applied = await bank.credit_tick(plan)
        elapsed = time.perf_counter() - start
        expected = sum(15 if p.subscriber else 10 for p in present)
        out.append(emit(workload, n, elapsed, points=applied.points,
                        points_ok=applied.points == expected))
    # A realistic tick: 5 % of viewers chatted (they take the per-row path).
    chatty = [Presence(p.user_id, p.login, p.display_name, p.subscriber, 1 if i % 20 == 0 else 0)
              for i, p in enumerate(present)]
    plan = TickPlan(channel_id, 3, 3, 300, rates, chatty, bank.known_logins(CHANNEL))
    start = time.perf_counter()
    await bank.credit_tick(plan)
    out.append(emit("tick_update_5pct_chatters", n, time.perf_counter() - start))
    problems = await bank.audit()
    assert not problems, problems
    await bank.store.close()
    return out


async def bench_rank(directory: Path, users: int = 100_000, lookups: int = 10_000
                     ) -> list[dict[str, object]]:
    bank = await fresh_bank(directory, "rank")
    channel_id = bank.channel_id(CHANNEL)
    rng = random.Random(42)

    def seed(tx):  # type: ignore[no-untyped-def]
        rows = [(channel_id, viewer(i).user_id, viewer(i).login, viewer(i).display_name,
                 rng.randint(0, 1_000_000)) for i in range(users)]
        tx.conn.executemany(
            "INSERT INTO viewers (channel_id, user_id, login, display_name, points, earned_total,"
            " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
            [(*r, r[4]) for r in rows])

    await bank.store.write(seed)
    start = time.perf_counter()
    await bank.rank(CHANNEL, viewer(0).user_id)  # builds the standings from the database
    build = time.perf_counter() - start
    standings: Standings = bank._standings[channel_id]
    ids = [viewer(rng.randrange(users)).user_id for _ in range(lookups)]
    start = time.perf_counter()
    for user_id in ids:
        standings.rank(user_id)
    direct = time.perf_counter() - start
    start = time.perf_counter()
    for user_id in ids:
        await bank.rank(CHANNEL, user_id)
    through_bank = time.perf_counter() - start
    top = time.perf_counter()
    for _ in range(1000):
        standings.top(10)
    top = time.perf_counter() - top
    await bank.store.close()
    return [
        emit("rank", lookups, direct, users=users, us_per_lookup=round(direct / lookups * 1e6, 2),
             via="Standings.rank"),
        emit("rank_async", lookups, through_bank, users=users,
             us_per_lookup=round(through_bank / lookups * 1e6, 2), via="await Bank.rank"),
        emit("leaderboard_top10", 1000, top, users=users),
        emit("standings_build", users, build, users=users),
    ]


# ---- the seed's own code, in the same run ----------------------------------------------------


def seed_ready() -> bool:
    return (SEED_DIR / "node_modules" / "better-sqlite3").is_dir()


def run_seed(*args: str) -> list[dict[str, object]]:
    result = subprocess.run(["node", "bench.js", *args], cwd=SEED_DIR, capture_output=True,
                            text=True, timeout=600, check=True,
                            env={**os.environ, "BENCH_DIR": tempfile.mkdtemp()})
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def ratio_line(ours: dict[str, object], seed: dict[str, object], better: str) -> None:
    """better='lower' for seconds, 'higher' for throughput: >1 means we are faster."""
    ours_s, seed_s = float(ours["seconds"]), float(seed["seconds"])  # type: ignore[arg-type]
    ours_n, seed_n = int(ours["n"]), int(seed["n"])  # type: ignore[call-overload]
    speedup = (seed_s / seed_n) / (ours_s / ours_n)
    print(json.dumps({"compare": ours["workload"], "vs": seed["workload"], "n": ours_n,
                      "loyaltybot_seconds": ours_s, "seed_seconds": seed_s,
                      "speedup": round(speedup, 2)}), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", action="store_true", help="also run the seed's code (node)")
    parser.add_argument("--transfers", type=int, default=20_000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; the median is compared")
    args = parser.parse_args()
    logs.configure("warning", "console")
    if args.seed and not seed_ready():
        sys.exit(f"the seed peer is not installed: run `bash {SEED_DIR}/run.sh` once")
    sizes = [int(s) for s in args.sizes.split(",")]
    ours: dict[str, list[dict[str, object]]] = {}
    seed: dict[str, list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        directory = Path(tmp)
        for _ in range(args.reps):  # interleaved with the seed, as its run.sh does
            for n in sizes:
                for line in await bench_ticks(directory, n):
                    ours.setdefault(f"{line['workload']}:{n}", []).append(line)
                if args.seed:
                    for line in run_seed("distribute", str(n)):
                        seed.setdefault(f"{line['workload']}:{n}", []).append(line)
            line = await bench_transfer(directory, args.transfers)
            ours.setdefault("transfer", []).append(line)
            if args.seed:
                for line in run_seed("transfer", str(args.transfers)):
                    seed.setdefault("transfer", []).append(line)
            for line in await bench_rank(directory):
                ours.setdefault(str(line["workload"]), []).append(line)
            if args.seed:
                for line in run_seed("leaderboard", "1000"):
                    seed.setdefault(str(line["workload"]), []).append(line)

    def median(lines: list[dict[str, object]]) -> dict[str, object]:
        return sorted(lines, key=lambda x: float(x["seconds"]))[len(lines) // 2]  # type: ignore[arg-type]

    print(json.dumps({"summary": "medians", "reps": args.reps}), flush=True)
    for key, lines in ours.items():
        m = median(lines)
        print(json.dumps({"median": key, **m}), flush=True)
    if args.seed:
        for n in sizes:
            ratio_line(median(ours[f"tick_insert:{n}"]), median(seed[f"distribute_insert:{n}"]), "")
            ratio_line(median(ours[f"tick_update:{n}"]), median(seed[f"distribute_update:{n}"]), "")
        ratio_line(median(ours["transfer"]), median(seed["transfer"]), "")
        ratio_line(median(ours["rank"]), median(seed["user_rank"]), "")
        ratio_line(median(ours["leaderboard_top10"]), median(seed["leaderboard_top10"]), "")
    print(json.dumps({"note": "spread of our runs",
                      **{k: [round(float(x["seconds"]), 4) for x in v] for k, v in ours.items()}}),
          flush=True)


if __name__ == "__main__":
    asyncio.run(main())
