"""A contest and a heist lobby survive ``kill -9`` (SPEC §9, §10.6): the daemon as its own
process is SIGKILLed with a contest open and a heist being planned, in the middle of a
burst of bets; with the daemon dead the audit proves every open round holds exactly its
stakes; at the restart the heist, whose joining time ran out while the daemon was down,
runs at once, and the contest is settled by a moderator: every balance comes out to the
point of the rules applied to the stakes recorded."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loyaltybot.features.contests import rules
from loyaltybot.simulator import BOT_SCOPES, Simulator
from tests.e2e.process import Process, write_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CHANNEL = """
[channels.alice]
currency_name = "cookie"
currency_name_plural = "cookies"
contest_max_bet = 100
[channels.alice.games]
enabled = ["heist"]
heist_join_seconds = 4
heist_min_players = 2
heist_success_percent = 50
heist_payout_multiplier = 1.7
cooldown_seconds = 0
"""
BETTORS = [f"fan{i:02d}" for i in range(40)]
CREW = [f"crew{i:02d}" for i in range(8)]
GRANT = 200


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    simulator = Simulator(client_id="e2e-client-id", client_secret="e2e-secret-0123456789")
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    simulator.set_role("alice", "modmo", mod=True)
    yield simulator  # type: ignore[misc]
    await simulator.close()


async def said(sim: Simulator, mark: int, expect: str | re.Pattern[str],
               within: float = 10.0) -> str:  # fmt: skip
    return (await sim.wait_for_reply("alice", contains=expect, after=mark, timeout=within)).text


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args, "-c", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stakes(db: Path, kind: str) -> dict[str, tuple[int, int, int]]:
    """login -> (option, amount, seq) of the stakes of the kind's only round."""
    return {
        login: (option, amount, seq)
        for login, option, amount, seq in read(db, (
            "SELECT v.login, s.option, s.amount, s.seq FROM escrow_stakes AS s"
            " JOIN escrow_rounds AS r ON r.id = s.round_id"
            " JOIN viewers AS v ON v.channel_id = s.channel_id AND v.user_id = s.user_id"
            f" WHERE r.kind = '{kind}'"))
    }  # fmt: skip


async def test_kill_9_with_a_contest_and_a_heist_open_then_restart(
    sim: Simulator, tmp_path: Path, notify_socket: Any
) -> None:
    """Stakes acknowledged before the kill are held after it; the audit passes with the
    daemon dead, after the heist runs at the restart and after the contest is settled."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, CHANNEL)
    db = tmp_path / "bot.db"
    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        users = [sim.world.ensure_user(login) for login in BETTORS + CREW]
        sim.irc.say_many("alice", [(u, "hi") for u in users])
        await asyncio.sleep(0.5)
        mark = len(sim.sent)
        await sim.say("alice", "modmo", f"!addpoints all {GRANT}")
        await said(sim, mark, "gave")
        await sim.say("alice", "modmo", "!contest open Who scores first? | Red | Blue | Green")
        await said(sim, mark, "Contest #1 is open")
        for i, login in enumerate(BETTORS[:20]):  # acknowledged before the kill
            await sim.say("alice", login, f"!bet {1 + i % 3} {10 + i}")
        await said(sim, mark, "pool 390 cookies from 20 bettors")
        await sim.say("alice", CREW[0], "!heist 50")
        await said(sim, mark, "is planning heist #1")
        for i, login in enumerate(CREW[1:]):
            await sim.say("alice", login, f"!heist {20 + 5 * i}")
        await said(sim, mark, "a crew of 8")
        for i, login in enumerate(BETTORS[20:]):  # a burst, killed in the middle
            await sim.say("alice", login, f"!bet {1 + i % 3} {30 + i}")
            if i == 10:
                await asyncio.sleep(0.01)
                daemon.proc.kill()
        assert daemon.proc.wait(10) == -9
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()

    audit = cli(config, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    bets = stakes(db, "contest")
    crew = stakes(db, "heist")
    for i, login in enumerate(BETTORS[:20]):
        assert bets[login][:2] == (1 + i % 3, 10 + i), login  # acknowledged: still held
    assert set(crew) == set(CREW)
    balances = dict(read(db, "SELECT login, points FROM viewers"))
    for login in BETTORS:
        assert balances[login] == GRANT - bets.get(login, (0, 0, 0))[1], login
    for login in CREW:
        assert balances[login] == GRANT - crew[login][1], login
    held = dict(read(db, "SELECT kind, held FROM escrow_rounds WHERE state = 'open'"))
    assert held == {"contest": sum(b[1] for b in bets.values()),
                    "heist": sum(c[1] for c in crew.values())}  # fmt: skip
    pools = read(db, "SELECT option, pool, bettors FROM contest_pools ORDER BY option")
    for option, pool, bettors in pools:
        mine = [b for b in bets.values() if b[0] == option]
        assert (pool, bettors) == (sum(b[1] for b in mine), len(mine))
    await asyncio.sleep(4)  # the heist's joining time runs out while the daemon is down

    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        mark = len(sim.sent)
        heist = await said(sim, 0, re.compile(r"Heist #1: (\d+ of 8 got away|the whole crew)"),
                           within=15)  # fmt: skip
        assert "Heist #1" in heist
        rolls = {login: (int(roll), bet, returned) for login, roll, bet, returned in read(db, (
            "SELECT v.login, r.roll, r.bet, r.returned FROM game_rolls AS r"
            " JOIN viewers AS v ON v.user_id = r.user_id"))}  # fmt: skip
        assert set(rolls) == set(CREW)
        for login, (roll, bet, returned) in rolls.items():
            assert bet == crew[login][1]
            assert returned == (int(Decimal(bet) * Decimal("1.7")) if roll <= 50 else 0)
        await sim.say("alice", "fan00", "!contest")
        status = await said(sim, mark, "@fan00")
        pool = sum(b[1] for b in bets.values())
        assert "Contest #1 (open" in status and f"Pool {pool:,} cookies" in status
        await sim.say("alice", "modmo", "!contest winner 2")
        await said(sim, mark, "Contest #1: option 2 (Blue) wins!")
    finally:
        daemon.proc.kill()
        daemon.proc.wait(10)

    audit = cli(config, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert read(db, "SELECT count(*) FROM escrow_rounds WHERE state = 'open'") == [(0,)]
    result = rules.settle([(login, option, amount, seq)
                           for login, (option, amount, seq) in bets.items()], 2)  # fmt: skip
    assert result.paid_out == sum(b[1] for b in bets.values())
    after = dict(read(db, "SELECT login, points FROM viewers"))
    for login in BETTORS:
        expected = GRANT - bets.get(login, (0, 0, 0))[1] + result.payouts.get(login, 0)
        assert after[login] == expected, login
    for login in CREW:
        assert after[login] == GRANT - crew[login][1] + rolls[login][2], login
