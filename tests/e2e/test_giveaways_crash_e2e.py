"""A giveaway survives ``kill -9`` (SPEC §9, §10.6): the daemon as its own process is
SIGKILLed with an open giveaway, in the middle of a burst of tickets; after the restart
every acknowledged ticket is still held, the audit proves the round holds exactly its
stakes, and a draw (or a cancel) settles them exactly once."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loyaltybot.simulator import BOT_SCOPES, Simulator
from tests.e2e.process import Process, write_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CHANNEL = """
[channels.alice]
currency_name = "cookie"
currency_name_plural = "cookies"
giveaway_ticket_cost = 7
giveaway_max_tickets = 10
"""
VIEWERS = [f"fan{i:02d}" for i in range(40)]
GRANT = 100


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    simulator = Simulator(client_id="e2e-client-id", client_secret="e2e-secret-0123456789")
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    simulator.set_role("alice", "modmo", mod=True)
    yield simulator  # type: ignore[misc]
    await simulator.close()


async def said(sim: Simulator, mark: int, expect: str, within: float = 10.0) -> str:
    return (await sim.wait_for_reply("alice", contains=expect, after=mark, timeout=within)).text


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args, "-c", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def books(db: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """(balance by login, tickets held by login, points the giveaway's round holds), read
    from the file with the daemon dead."""
    conn = sqlite3.connect(db)
    try:
        balances = dict(conn.execute("SELECT login, points FROM viewers"))
        held = dict(conn.execute(
            "SELECT v.login, s.units FROM escrow_stakes AS s JOIN viewers AS v"
            " ON v.channel_id = s.channel_id AND v.user_id = s.user_id"
        ))  # fmt: skip
        (round_held,) = conn.execute("SELECT coalesce(sum(held), 0) FROM escrow_rounds").fetchone()
    finally:
        conn.close()
    return balances, held, int(round_held)


@pytest.mark.parametrize("ending", ["draw", "cancel"])
async def test_kill_9_with_an_open_giveaway_then_draw_or_cancel_settles_exactly(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str], ending: str
) -> None:
    """Tickets acknowledged before the kill are held after it; the audit passes with the
    daemon dead and again after the round is settled; balances come out to the point."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, CHANNEL)
    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        for login in VIEWERS:
            await sim.say("alice", login, "hi")
        await asyncio.sleep(0.3)
        mark = len(sim.sent)
        await sim.say("alice", "modmo", f"!addpoints all {GRANT}")
        await said(sim, mark, "gave")
        await sim.say("alice", "modmo", "!giveaway open Limited edition hoodie")
        await said(sim, mark, "Giveaway #1 is open")
        for i, login in enumerate(VIEWERS[:20]):  # acknowledged before the kill
            await sim.say("alice", login, f"!ticket {1 + i % 10}")
        first = sum(1 + i % 10 for i in range(20))
        await said(sim, mark, f"{first} tickets from 20 entrants")
        for i, login in enumerate(VIEWERS[20:]):  # a burst, killed in the middle
            await sim.say("alice", login, f"!ticket {1 + i % 10}")
            if i == 10:
                await asyncio.sleep(0.01)
                daemon.proc.kill()
        assert daemon.proc.wait(10) == -9
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()

    db = tmp_path / "bot.db"
    audit = cli(config, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    balances, held, round_held = books(db)
    for i, login in enumerate(VIEWERS[:20]):
        assert held[login] == 1 + i % 10, login  # every acknowledged ticket is still held
    for login in VIEWERS:
        assert balances[login] == GRANT - 7 * held.get(login, 0), login
    assert round_held == 7 * sum(held.values())
    assert f"hold exactly their stakes: {round_held:,} points" in audit.stdout

    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        mark = len(sim.sent)
        await sim.say("alice", "fan00", "!giveaway")
        status = await said(sim, mark, "@fan00")
        tickets = sum(held.values())
        assert "Giveaway #1 is open" in status and f"{tickets:,} tickets from {len(held)}" in status
        assert "you hold 1 ticket" in status
        if ending == "cancel":
            await sim.say("alice", "modmo", "!giveaway cancel")
            line = await said(sim, mark, "Giveaway #1 is canceled")
            assert f"({round_held:,} cookies back to {len(held)} viewers)" in line
        else:
            await sim.say("alice", "modmo", "!giveaway close")
            await said(sim, mark, "Giveaway #1 is closed")
            await sim.say("alice", "modmo", "!giveaway draw 3")
            await said(sim, mark, "the winners are")
            await said(sim, mark, "Giveaway #1 seed:")
            await sim.say("alice", "modmo", "!giveaway cancel")
            assert "drawn already" in await said(sim, mark, "@modmo")  # spent: no refund
    finally:
        daemon.proc.kill()
        daemon.proc.wait(10)

    audit = cli(config, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    after, _, round_after = books(db)
    assert round_after == 0
    for login in VIEWERS:
        expected = GRANT if ending == "cancel" else GRANT - 7 * held.get(login, 0)
        assert after[login] == expected, login
    if ending == "draw":
        verify = cli(config, "giveaway", "verify", "1")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert len(re.findall(r"^\s+\d+\. fan\d+ ", verify.stdout, re.M)) == 3
