"""The daemon as its own process, as systemd runs it: config file, NOTIFY_SOCKET, JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from loyaltybot.simulator import Simulator


def write_config(
    path: Path, sim: Simulator, token: str, channels: str, *, level: str = "info"
) -> None:
    path.write_text(f"""
[database]
path = "bot.db"
[log]
level = "{level}"
format = "json"
[twitch]
client_id = "e2e-client-id"
bot_login = "mybot"
bot_token = "{token}"
irc_url = "{sim.irc_url}"
api_url = "{sim.api_url}"
auth_url = "{sim.auth_url}"
[web]
listen = "127.0.0.1:0"
{channels}
""")


ALICE = """
[channels.alice]
currency_name = "cookie"
currency_name_plural = "cookies"
interval_minutes = 0.01
"""


class Process:
    """The daemon as systemd runs it: its own process, NOTIFY_SOCKET, JSON logs on stderr."""

    def __init__(self, config: Path, notify: socket.socket, notify_path: str) -> None:
        env = {**os.environ, "NOTIFY_SOCKET": notify_path}
        self.log_path = config.parent / "daemon.log"
        with self.log_path.open("w") as log_file:  # a file never blocks the daemon as a pipe can
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loyaltybot", "run", "-c", str(config)],
                cwd=config.parent,
                env=env,
                stderr=log_file,
            )
        self.notify = notify
        self.lines: list[str] = []

    async def notification(self, wanted: str, within: float = 20.0) -> str:
        """The next sd_notify datagram containing ``wanted``."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(
                    asyncio.get_running_loop().sock_recv(self.notify, 4096), 0.5
                )
            except TimeoutError:
                if self.proc.poll() is not None:
                    break
                continue
            text = data.decode()
            if wanted in text:
                return text
        raise AssertionError(f"no {wanted!r} notification; daemon exit {self.proc.poll()}")

    def logs(self) -> list[dict[str, object]]:
        self.lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in self.lines if line.strip()]
