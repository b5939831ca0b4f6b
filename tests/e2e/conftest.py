"""End-to-end fixtures: the simulator as Twitch, the real daemon on a real SQLite file.

The daemon runs in this process (its own tasks on the test's loop) so a test can stop it
and start it again on the same database; everything between the two is real: WebSocket,
twitchio, HTTP, SQLite.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loyaltybot import daemon as daemon_mod
from loyaltybot.config import Config, parse_config
from loyaltybot.daemon import Daemon
from loyaltybot.db import open_store
from loyaltybot.points.bank import Bank
from loyaltybot.simulator import BOT_SCOPES, Simulator

CLIENT_ID = "e2e-client-id"
CLIENT_SECRET = "e2e-client-secret-0123"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    yield simulator
    await simulator.close()


@dataclass
class RunningBot:
    config: Config
    daemon: Daemon
    task: asyncio.Task[int]
    stop_event: asyncio.Event

    async def stop(self) -> int:
        self.stop_event.set()
        return await asyncio.wait_for(self.task, 15)


def make_config(
    sim: Simulator, tmp_path: Path, channels: dict[str, dict[str, Any]], **sections: dict[str, Any]
) -> Config:
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "bot.db")},
        "twitch": {
            "client_id": CLIENT_ID,
            "bot_login": "mybot",
            "bot_token": token,
            "irc_url": sim.irc_url,
            "api_url": sim.api_url,
            "auth_url": sim.auth_url,
            "eventsub_ws_url": sim.eventsub_ws_url,
        },
        "web": {"listen": "127.0.0.1:0"},
        "channels": channels,
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data, tmp_path / "config.toml")


StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def start_bot(sim: Simulator, tmp_path: Path) -> AsyncIterator[StartBot]:
    running: list[RunningBot] = []

    async def start(
        channels: dict[str, dict[str, Any]] | None = None,
        config: Config | None = None,
        **sections: dict[str, Any],
    ) -> RunningBot:
        config = config or make_config(
            sim,
            tmp_path,
            channels or {"alice": {"currency_name": "cookie", "currency_name_plural": "cookies"}},
            **sections,
        )
        stop = asyncio.Event()
        box: list[Daemon] = []
        task = asyncio.create_task(
            daemon_mod.run(config, stop=stop, started=box.append, configure_logging=False)
        )
        for _ in range(200):
            if box or task.done():
                break
            await asyncio.sleep(0.05)
        if task.done():
            raise RuntimeError(f"the daemon exited with {task.result()}")
        bot = RunningBot(config, box[0], task, stop)
        running.append(bot)
        for _ in range(100):  # joined every channel
            if bot.daemon.chat.joined >= set(config.channels):
                break
            await asyncio.sleep(0.05)
        return bot

    yield start
    for bot in running:
        if not bot.task.done():
            await bot.stop()


async def audit(path: Path) -> list[str]:
    store = await open_store(path)
    try:
        bank = Bank(store)
        await bank.load_channels()
        return [str(d) for d in await bank.audit()]
    finally:
        await store.close()


@pytest.fixture
def notify_socket(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()
