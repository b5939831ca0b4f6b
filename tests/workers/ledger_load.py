"""A writer process for the concurrency and crash tests.

    python -m tests.workers.ledger_load DB credit N USER_ID   # N credits of 1 point
    python -m tests.workers.ledger_load DB churn    # transfers, credits, ticks until killed

In churn mode every acknowledged operation's ref is printed (and flushed) after its
commit, so the parent can check that nothing acknowledged was lost to a SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import sys

from loyaltybot import logs
from loyaltybot.db import open_store
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import AlreadyApplied, InsufficientPoints
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def viewer(n: int) -> Viewer:
    return Viewer(str(1000 + n), f"user{n}", f"User{n}")


async def credit(path: str, count: int, user_id: str) -> None:
    store = await open_store(path)
    bank = Bank(store)
    await bank.ensure_channels([CHANNEL])
    target = Viewer(user_id, f"user{int(user_id) - 1000}", "Target")
    for _ in range(count):
        await bank.credit(CHANNEL, target, 1, kind=EntryType.ADD, actor="worker")
    await store.close()


async def churn(path: str) -> None:
    store = await open_store(path)
    bank = Bank(store)
    await bank.ensure_channels([CHANNEL])
    channel_id = bank.channel_id(CHANNEL)
    rng = random.Random()
    seq = await store.read(
        lambda c: c.execute(
            "SELECT coalesce(max(seq), 0) FROM earning_ticks WHERE channel_id = ?", (channel_id,)
        ).fetchone()[0]
    )
    rates = EarningRates(10, 15, 2, 0)
    n = 0

    async def one(i: int) -> None:
        ref = f"churn:{rng.getrandbits(64):016x}"
        kind = i % 3
        try:
            if kind == 0:
                await bank.credit(
                    CHANNEL,
                    viewer(rng.randrange(200)),
                    rng.randint(1, 50),
                    kind=EntryType.ADD,
                    ref=ref,
                )
            elif kind == 1:
                await bank.debit(
                    CHANNEL,
                    viewer(rng.randrange(200)),
                    rng.randint(1, 20),
                    kind=EntryType.REMOVE,
                    ref=ref,
                )
            else:
                a, b = rng.sample(range(200), 2)
                sender = viewer(a)
                transfer = await bank.transfer(CHANNEL, sender, viewer(b), rng.randint(1, 20))
                ref = f"transfer:{transfer.sender.entry_id}"
        except (InsufficientPoints, LookupError):
            return
        print(ref, flush=True)

    for n_ in range(200):  # everyone exists before transfers start (once across restarts)
        try:
            await bank.credit(CHANNEL, viewer(n_), 100, kind=EntryType.ADD, ref=f"seed:{n_}")
        except AlreadyApplied:
            pass
    print("ready", flush=True)
    while True:
        n += 1
        await asyncio.gather(*(one(n * 64 + i) for i in range(64)))
        if n % 5 == 0:
            seq += 1
            present = [
                Presence(
                    viewer(i).user_id, viewer(i).login, viewer(i).display_name, i % 5 == 0, i % 3
                )
                for i in range(0, 200, 2)
            ]
            await bank.credit_tick(
                TickPlan(channel_id, seq, seq, 60, rates, present, bank.known_logins(CHANNEL))
            )
            print(f"tick:{seq}", flush=True)


def main() -> None:
    logs.configure("warning", "console")
    path, mode, *rest = sys.argv[1:]
    if mode == "credit":
        asyncio.run(credit(path, int(rest[0]), rest[1]))
    else:
        try:
            asyncio.run(churn(path))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
