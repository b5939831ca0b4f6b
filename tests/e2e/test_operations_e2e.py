"""Operating the real daemon process: reload, stop, systemd notifications, logs."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loyaltybot.simulator import BOT_SCOPES, Simulator
from tests.e2e.process import ALICE, Process, write_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    simulator = Simulator(client_id="e2e-client-id", client_secret="e2e-secret-0123456789")
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    simulator.add_channel("bob_tv", bot_login="mybot", bot_role="moderator")
    simulator.set_live("alice", True)
    yield simulator  # type: ignore[misc]
    await simulator.close()


async def ask(sim: Simulator, channel: str, user: str, text: str, expect: str) -> str:
    mark = len(sim.sent)
    await sim.say(channel, user, text)
    return (await sim.wait_for_reply(channel, contains=expect, after=mark, timeout=10)).text


async def test_reload_applies_a_valid_config_on_the_same_connection(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """SIGHUP with a valid file: new channel joined, new names used, same chat connection."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE)
    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        assert "you have 0 cookies" in await ask(sim, "alice", "bob", "!points", "bob")
        [connection] = sim.connections
        write_config(
            config,
            sim,
            token,
            ALICE.replace('"cookie"', '"biscuit"').replace('"cookies"', '"biscuits"')
            + "[channels.bob_tv]\n",
        )
        daemon.proc.send_signal(signal.SIGHUP)
        await daemon.notification("RELOADING=1")
        await daemon.notification("READY=1")
        assert "biscuits" in await ask(sim, "alice", "carol", "!points", "carol")
        assert "@dora" in await ask(sim, "bob_tv", "dora", "!points", "dora")
        assert [c.conn_id for c in sim.connections] == [connection.conn_id]
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(15) == 0


async def test_reload_with_an_invalid_config_keeps_the_old_one(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """SIGHUP with a broken file: each problem logged by key, the bot keeps running as before."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE)
    daemon = Process(config, *notify_socket)
    await daemon.notification("READY=1")
    write_config(
        config,
        sim,
        token,
        ALICE.replace("interval_minutes = 0.01", "interval_minutes = -1\nfoo = 1"),
    )
    daemon.proc.send_signal(signal.SIGHUP)
    kept = await daemon.notification("READY=1")
    assert "kept the old config" in kept
    assert "cookies" in await ask(sim, "alice", "bob", "!points", "bob")
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(15) == 0
    events = daemon.logs()
    rejected = [e["problem"] for e in events if e.get("event") == "config_reload_rejected"]
    assert any("channels.alice.interval_minutes: must be > 0" in str(p) for p in rejected)
    assert any("channels.alice.foo: unknown key" in str(p) for p in rejected)
    assert token not in "\n".join(daemon.lines)


async def test_sigterm_stops_quickly_and_flushes_counters(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """SIGTERM: STOPPING, exit 0 within 10 s, message counts written, the books balanced."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE.replace("0.01", "60"))  # no tick during the test
    daemon = Process(config, *notify_socket)
    await daemon.notification("READY=1")
    for _ in range(3):
        await sim.say("alice", "chatty", "hello")
    await asyncio.sleep(0.5)
    start = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    await daemon.notification("STOPPING=1")
    assert daemon.proc.wait(10) == 0
    assert time.monotonic() - start < 10
    conn = sqlite3.connect(tmp_path / "bot.db")
    (messages,) = conn.execute("SELECT messages FROM viewers WHERE login = 'chatty'").fetchone()
    conn.close()
    assert messages == 3
    audit = subprocess.run(
        [sys.executable, "-m", "loyaltybot", "audit", "-c", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


async def test_every_log_line_is_json_and_secret_free(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """With format = "json" every line is a JSON event, twitchio's at debug included, and
    the bot token never appears."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE, level="debug")
    daemon = Process(config, *notify_socket)
    await daemon.notification("READY=1")
    await ask(sim, "alice", "bob", "!points", "bob")
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(15) == 0
    events = daemon.logs()
    assert len(events) == len([line for line in daemon.lines if line.strip()]) > 10
    assert any(e.get("event") == "daemon_ready" for e in events)
    assert token not in "\n".join(daemon.lines)


async def test_ticks_are_neither_lost_nor_doubled_across_reloads(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    """Reloads during earning keep tick numbers contiguous and unique."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE)
    daemon = Process(config, *notify_socket)
    await daemon.notification("READY=1")
    await sim.say("alice", "viewer", "hi")
    for _ in range(4):
        await asyncio.sleep(0.7)
        daemon.proc.send_signal(signal.SIGHUP)
        await daemon.notification("READY=1")
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(15) == 0
    conn = sqlite3.connect(tmp_path / "bot.db")
    seqs = [r[0] for r in conn.execute("SELECT seq FROM earning_ticks ORDER BY seq")]
    conn.close()
    assert len(seqs) >= 3
    assert seqs == list(range(1, len(seqs) + 1))
