"""Crash test (SPEC §8, §9): SIGKILL the daemon at random moments under load, restart it.

Under the harness's load (chat with ``!give``, EventSub notifications, CLI writes in
another process), the daemon is killed with SIGKILL at seeded random moments: at any
time (45 %), aimed just after an earning tick falls due, inside its Helix reads or its
write transaction (45 %), or while a restarted daemon is still starting up (10 %).
After every kill, with the daemon dead, the real ``loyaltybot audit`` must pass and
the books must hold: no tick credited twice, no notification with two effects, every
acknowledged transfer and CLI write in the ledger.
After the last restart every notification the daemon did not answer is redelivered (as
Twitch would) and then each must have had its effect exactly once.

The short run (5 kills) is in the normal suite; ``CRASH_KILLS`` (default 50) kills run
under ``make soak``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import Harness, Load, write_summary

pytestmark = pytest.mark.slow


async def crash_run(directory: Path, kills: int, load: Load, summary: str) -> dict[str, Any]:
    rng = random.Random(load.seed)
    interval = load.interval_minutes * 60
    started = time.monotonic()
    audits_passed = 0
    moments: Counter[str] = Counter()
    async with Harness(directory, load) as harness:
        daemon = await harness.start_daemon()
        await harness.wait_subscriptions()
        harness.start_load()
        await daemon.wait_event("earning_tick", 1, within=60)
        moment = "any"
        for number in range(1, kills + 1):
            if moment == "tick":  # aim into the next tick: its Helix reads or its transaction
                ticks = len(daemon.events("earning_tick"))
                tick = await daemon.wait_event("earning_tick", ticks + 1, within=3 * interval + 30)
                await asyncio.sleep(max(0.0, interval - tick["seconds"] + rng.uniform(-0.05, 0.25)))
            elif moment == "startup":  # while it migrates, loads, connects, subscribes
                await asyncio.sleep(rng.uniform(0.05, 1.5))
            else:
                await asyncio.sleep(rng.uniform(0.1, 2 * interval))
            moments[moment] += 1
            await harness.kill_daemon()
            passed, output = await harness.audit()
            books = harness.check_books()
            assert passed, f"audit after kill {number} ({moment}): {output}"
            assert not books.problems, f"after kill {number} ({moment}): {books.problems}"
            audits_passed += 1
            moment = rng.choices(("any", "tick", "startup"), (45, 45, 10))[0]
            if number == kills:
                moment = "any"  # the last daemon must come up for the final checks
            daemon = await harness.start_daemon(ready=moment != "startup")
            if moment != "startup":
                assert await harness.redeliver_unanswered() == 0, "the daemon did not answer"
        await daemon.wait_event("earning_tick", 1, within=3 * interval + 30)  # ticks again
        await harness.stop_load()
        unanswered = await harness.redeliver_unanswered()
        exit_code = await harness.stop_daemon()
        passed, output = await harness.audit()
        books = harness.check_books(settled=True)
        record = {
            "test": "crash",
            "seconds": round(time.monotonic() - started, 1),
            "kill_moments": dict(moments),
            "audits_passed": audits_passed + passed,
            "audits_run": kills + 1,
            "final_audit": output.splitlines()[-1] if output else "",
            "exit_code_after_sigterm": exit_code,
            "still_unanswered": unanswered,
            "viewers": load.viewers,
            **harness.figures(),
            **books.figures,
            "problems": books.problems,
        }
    write_summary(record, summary)
    assert passed, output
    assert not books.problems, books.problems
    assert exit_code == 0
    assert unanswered == 0
    assert record["kills"] == kills
    assert record["viewers_credited_every_tick"] == load.viewers, "a present viewer missed a tick"
    assert record["transfers_acknowledged"] > 0, "no !give was acknowledged: the load did not run"
    assert record["cli_writes"] > 0
    return record


async def test_crash_short(tmp_path: Path) -> None:
    """Five SIGKILLs under load: audit passes after each, nothing doubled or lost."""
    load = Load(viewers=2000, chat_rate=50, give_rate=2, webhook_rate=5, cli_every=1.5,
                interval_minutes=0.05, seed=11)  # fmt: skip
    await crash_run(tmp_path, 5, load, "reliability-summary.json")


KILLS = int(os.environ.get("CRASH_KILLS", "50"))


@pytest.mark.soak
@pytest.mark.timeout(KILLS * 30 + 300)
async def test_crash_long(tmp_path: Path) -> None:
    """CRASH_KILLS (default 50) SIGKILLs under heavier load; the same books after each."""
    load = Load(viewers=5000, chat_rate=100, give_rate=2.5, webhook_rate=10, cli_every=2.0,
                interval_minutes=0.05, seed=12)  # fmt: skip
    await crash_run(tmp_path, KILLS, load, "soak-summary.json")
