"""Every loss of the chat connection ends with every channel of the *current* config joined.

The daemon runs as its own process; a channel is added by editing the file and sending
SIGHUP, as an operator does, and then Twitch takes the connection away in each of the
ways it does (SPEC §8, twitch-reference §1.4 and §6).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from loyaltybot.config import load_config
from loyaltybot.simulator import BOT_SCOPES, Simulator
from tests.e2e.conftest import StartBot, audit
from tests.e2e.process import ALICE, Process, write_config

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    simulator = Simulator(
        client_id="e2e-client-id", client_secret="e2e-secret-0123456789", pong_timeout=2.0
    )
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    simulator.add_channel("bob_tv", bot_login="mybot", bot_role="moderator")
    yield simulator  # type: ignore[misc]
    await simulator.close()


async def answered(sim: Simulator, channel: str, user: str, within: float = 20.0) -> str:
    """Ask ``!points`` until the bot answers in ``channel`` (it may still be rejoining)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        mark = len(sim.sent)
        await sim.say(channel, user, "!points")
        try:
            reply = await sim.wait_for_reply(channel, contains=f"@{user}", after=mark, timeout=1.5)
        except TimeoutError:
            if loop.time() > deadline:
                raise
            continue
        return reply.text


async def gone(sim: Simulator, conn_id: int, within: float = 20.0) -> None:
    """Wait until the old connection is closed, so only a new one can answer."""
    for _ in range(int(within / 0.1)):
        if all(c.conn_id != conn_id for c in sim.connections):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"connection {conn_id} is still open")


async def close_frame(sim: Simulator) -> None:
    await sim.irc.close_frames(sim.irc.select(None))


async def tcp_drop(sim: Simulator) -> None:
    await sim.drop_connections()


async def reconnect(sim: Simulator) -> None:
    await sim.send_reconnect(drop_after=0.5)


LOSSES: dict[str, Callable[[Simulator], Awaitable[None]]] = {
    "close-frame": close_frame,
    "tcp-drop": tcp_drop,
    "reconnect": reconnect,
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
async def test_every_loss_rejoins_every_channel_including_one_added_by_sighup(
    sim: Simulator, tmp_path: Path, notify_socket: tuple[socket.socket, str], loss: str
) -> None:
    """Add bob_tv by SIGHUP, lose the connection: the bot answers in both channels again."""
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    config = tmp_path / "config.toml"
    write_config(config, sim, token, ALICE.replace("0.01", "60"))
    daemon = Process(config, *notify_socket)
    try:
        await daemon.notification("READY=1")
        assert "you have 0 cookies" in await answered(sim, "alice", "bob")
        write_config(config, sim, token, ALICE.replace("0.01", "60") + "[channels.bob_tv]\n")
        daemon.proc.send_signal(signal.SIGHUP)
        await daemon.notification("READY=1")
        assert "@dora" in await answered(sim, "bob_tv", "dora")
        [before] = sim.connections

        await LOSSES[loss](sim)
        await gone(sim, before.conn_id)

        assert "@carol" in await answered(sim, "bob_tv", "carol")
        assert "@erin" in await answered(sim, "alice", "erin")
        [after] = sim.connections
        assert after.conn_id != before.conn_id
        assert after.channels == {"alice", "bob_tv"}
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(15) == 0
    events = [e.get("event") for e in daemon.logs()]
    assert "chat_connected" in events


async def test_a_silent_connection_is_noticed_by_a_missed_pong_and_rejoined(
    sim: Simulator, tmp_path: Path, start_bot: StartBot
) -> None:
    """The connection goes silent (a dead NAT path, TCP still open): our PING gets no PONG,
    the bot reconnects and rejoins every channel, the one a reload added included."""
    config_path = tmp_path / "config.toml"
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    write_config(config_path, sim, token, ALICE.replace("0.01", "60"))
    bot = await start_bot(config=load_config(config_path))
    assert "you have 0 cookies" in await answered(sim, "alice", "bob")
    write_config(config_path, sim, token, ALICE.replace("0.01", "60") + "[channels.bob_tv]\n")
    assert await bot.daemon.reload()  # what SIGHUP does
    assert "@dora" in await answered(sim, "bob_tv", "dora")
    chat = bot.daemon.chat
    chat.ping_every, chat.pong_timeout = 0.5, 1.0
    [before] = sim.connections
    assert sim.irc.stall([before]) == 1
    await gone(sim, before.conn_id)

    assert "@carol" in await answered(sim, "bob_tv", "carol")
    assert "@erin" in await answered(sim, "alice", "erin")
    [after] = sim.connections
    assert after.conn_id != before.conn_id and after.channels == {"alice", "bob_tv"}
    await bot.stop()
    assert await audit(bot.config.database.path) == []
