"""Shop benchmark: 1,000 viewers ``!buy`` an item with stock 100 at once, as JSON lines.

    .venv/bin/python bench/shop.py                  # 3 reps of 1,000 buyers, stock 100
    .venv/bin/python bench/shop.py --buyers 5000 --stock 100 --reps 1

The simulator (Twitch) runs in this process; the daemon runs as ``python -m loyaltybot
run`` in its own process (the pattern of bench/earning.py), on a fresh database per rep.
Before it starts, the operator imports the buyers' balances (``loyaltybot import``, one
csv, 1,000 points each, so every buyer can afford the item), as a streamer moving from
another bot would. Then every buyer's ``!buy hydrate`` arrives in one WebSocket frame
(``IrcServer.say_many``): each is its own transaction on the one writer.

Per rep: ``sold`` (the purchases recorded), ``debits`` (``shop_purchase`` ledger rows)
and ``stock_sold`` (the item's count) must all equal the stock, and the refusals
(``chat_command_refused`` events: sold out) the rest; ``seconds`` = the frame queued ->
the daemon's log holds an outcome for every line; ``lines_per_second`` = buy lines
handled per second over that; ``audit`` = ``loyaltybot audit`` after the stop. The bot
is a moderator (100 lines per 30 s): most replies to a burst this size are dropped by
the outbox rather than sent late (``replies_sent``), and ``rate_violations`` (the
simulator's count) must be 0. Exit status 1 when any check fails.

Target (issue 14): exactly ``stock`` sold.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.earning import Daemon, emit, write_config  # noqa: E402
from loyaltybot import logs  # noqa: E402
from loyaltybot.simulator import BOT_SCOPES, Simulator  # noqa: E402

CHANNEL = "alice"
COST = 10
BALANCE = 1000


def channel_table(stock: int) -> str:
    return f"""currency_name = "cookie"
currency_name_plural = "cookies"
interval_minutes = 60
[[channels.{CHANNEL}.shop]]
name = "hydrate"
cost = {COST}
stock = {stock}
message = "{{user}} made alice drink"
"""


def import_balances(config: Path, users: list[Any]) -> None:
    path = config.parent / "balances.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "username", "points", "watch_seconds", "messages"])
        writer.writerows([u.id, u.login, BALANCE, 0, 0] for u in users)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "loyaltybot",
            "import",
            "--channel",
            CHANNEL,
            "--format",
            "csv",
            str(path),
            "-c",
            str(config),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def run_audit(config: Path) -> str:
    """``loyaltybot audit``: "ok", or the end of what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "loyaltybot", "audit", "-c", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return "ok" if done.returncode == 0 else (done.stdout + done.stderr).strip()[-300:]


def books(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        sold = conn.execute("SELECT count(*) FROM shop_purchases").fetchone()[0]
        debits = conn.execute(
            "SELECT count(*) FROM ledger WHERE type = 'shop_purchase'"
        ).fetchone()[0]
        stock_sold = conn.execute("SELECT sold FROM shop_items").fetchone()[0]
    return {"sold": sold, "debits": debits, "stock_sold": stock_sold}


async def bench_rep(sim: Simulator, rep: int, buyers: int, stock: int) -> dict[str, Any]:
    users = sim.add_users(buyers, prefix=f"r{rep}buyer")
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        config = write_config(
            Path(tmp),
            sim,
            sim.issue_token("mybot", scopes=list(BOT_SCOPES)),
            channel_table(stock),
        )
        import_balances(config, users)
        daemon = Daemon(config)
        try:
            await daemon.wait_event("daemon_ready", 1)
            await asyncio.sleep(1.0)  # joined the channel
            sent_before = len(sim.sent)
            started = time.perf_counter()
            sim.irc.say_many(CHANNEL, [(user, "!buy hydrate") for user in users])
            refused = buyers - stock
            await daemon.wait_event("shop_purchase", stock, within=120)
            if refused:
                await daemon.wait_event("chat_command_refused", refused, within=120)
            seconds = time.perf_counter() - started
            await asyncio.sleep(2.0)  # replies leave (or are dropped) at the outbox's pace
        finally:
            await daemon.stop()
        extra = len(daemon.events("shop_purchase")) - stock
        refusals = len(daemon.events("chat_command_refused"))
        found = books(Path(tmp) / "bench.db")
        audit = run_audit(config)
    violations = len(sim.rate_report(CHANNEL))
    return emit(
        workload="shop_buy_burst",
        rep=rep,
        buyers=buyers,
        stock=stock,
        **found,
        purchases_beyond_stock=extra,
        refused=refusals,
        seconds=round(seconds, 3),
        lines_per_second=round(buyers / seconds),
        replies_sent=len(sim.sent) - sent_before,
        rate_violations=violations,
        audit=audit,
        target_sold=stock,
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    logs.configure("warning", "console")
    failed = False
    for rep in range(args.reps):
        # A Twitch of its own per rep: the send limits count per bot account over 30 s,
        # and each rep's daemon is a new process that cannot know what the last one sent.
        sim = Simulator(client_id="bench-client-id", client_secret="bench-client-secret")
        await sim.start()
        sim.add_channel(CHANNEL, bot_login="mybot", bot_role="moderator")
        try:
            line = await bench_rep(sim, rep, args.buyers, args.stock)
        finally:
            await sim.close()
        exact = line["sold"] == line["debits"] == line["stock_sold"] == args.stock
        failed |= not exact or line["audit"] != "ok" or line["purchases_beyond_stock"] != 0
        failed |= line["rate_violations"] != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
