"""sd_notify and the watchdog, against a real AF_UNIX datagram socket playing systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyaltybot.systemd import Notifier


class FakeSystemd:
    """A bound datagram socket, like the one systemd passes in $NOTIFY_SOCKET."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address.replace("@", "\0", 1) if address.startswith("@") else address)
        self.sock.setblocking(False)

    async def receive(self, wait: float = 2.0) -> list[str]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 4096), wait)
        return data.decode().split("\n")

    def drain(self) -> list[list[str]]:
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return messages


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    # A short directory: AF_UNIX paths are limited to 108 bytes, pytest's tmp_path is long.
    with tempfile.TemporaryDirectory(prefix="lb-") as directory:
        fake = FakeSystemd(str(Path(directory) / "notify"))
        yield fake
        fake.sock.close()


async def test_lifecycle_messages_arrive_in_systemd_format(systemd: FakeSystemd) -> None:
    """READY, RELOADING (+MONOTONIC_USEC), STATUS, STOPPING arrive as KEY=VALUE lines."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.address})
    assert notifier.enabled
    assert notifier.ready("serving 2 channels")
    assert await systemd.receive() == ["READY=1", "STATUS=serving 2 channels"]

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    reloading = await systemd.receive()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading[0] == "RELOADING=1"
    assert reloading[1].startswith("MONOTONIC_USEC=")
    assert before <= int(reloading[1].split("=")[1]) <= after
    assert reloading[2] == "STATUS=reloading the config"

    assert notifier.status("line one\nline two")
    assert await systemd.receive() == ["STATUS=line one line two"]
    assert notifier.extend_timeout(1.5)
    assert await systemd.receive() == ["EXTEND_TIMEOUT_USEC=1500000"]
    assert notifier.stopping()
    assert await systemd.receive() == ["STOPPING=1", "STATUS=stopping"]
    await notifier.close()


async def test_abstract_socket_name_with_at_sign() -> None:
    """An '@name' NOTIFY_SOCKET is the abstract socket '\\0name'."""
    name = f"@loyaltybot-test-{os.getpid()}-{time.monotonic_ns()}"
    fake = FakeSystemd(name)
    try:
        notifier = Notifier(name)
        assert notifier.ready()
        assert await fake.receive() == ["READY=1"]
        await notifier.close()
    finally:
        fake.sock.close()


async def test_without_systemd_everything_is_a_silent_no_op() -> None:
    """No NOTIFY_SOCKET: nothing is sent, nothing raises, no watchdog task runs."""
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    await notifier.start()
    assert not notifier.ready()
    assert not notifier.stopping()
    await notifier.close()


async def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    """Sending to a socket that no longer exists returns False instead of raising."""
    notifier = Notifier("/nonexistent-dir-for-loyaltybot/notify")
    assert notifier.enabled
    assert not notifier.ready()
    await notifier.close()


async def test_watchdog_pings_at_half_the_interval(systemd: FakeSystemd) -> None:
    """With WATCHDOG_USEC=200ms the task sends WATCHDOG=1 about every 100 ms."""
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"})
    assert notifier.watchdog_interval == pytest.approx(0.1)
    await notifier.start()
    assert await systemd.receive() == ["WATCHDOG=1"]  # sent at start
    await asyncio.sleep(0.45)
    await notifier.close()
    pings = systemd.drain()
    assert all(p == ["WATCHDOG=1"] for p in pings)
    assert 2 <= len(pings) <= 5
    assert notifier.pings == len(pings)


async def test_watchdog_skips_the_ping_after_a_blocked_loop(systemd: FakeSystemd) -> None:
    """A loop blocked longer than half of WatchdogSec gets no ping for that round."""
    notifier = Notifier(systemd.address, watchdog_usec=200_000)
    await notifier.start()
    await systemd.receive()
    time.sleep(0.35)
    await asyncio.sleep(0.05)
    assert notifier.skipped == 1
    assert notifier.pings == 0
    assert systemd.drain() == []
    await asyncio.sleep(0.25)  # healthy again: pings resume
    assert notifier.pings >= 1
    await notifier.close()


async def test_watchdog_waits_for_the_health_probe(systemd: FakeSystemd) -> None:
    """Pings only while the health probe says yes; a hanging probe counts as unhealthy."""
    healthy = asyncio.Event()

    async def probe() -> bool:
        if not healthy.is_set():
            await asyncio.sleep(10)  # hangs: the probe times out
        return True

    notifier = Notifier(systemd.address, watchdog_usec=100_000, health=probe)
    await notifier.start()
    await systemd.receive()
    await asyncio.sleep(0.35)
    assert notifier.pings == 0
    assert notifier.skipped >= 2
    healthy.set()
    await asyncio.sleep(0.3)
    assert notifier.pings >= 2
    await notifier.close()
    assert {tuple(m) for m in systemd.drain()} == {("WATCHDOG=1",)}


async def test_watchdog_for_another_pid_is_ignored(systemd: FakeSystemd) -> None:
    """WATCHDOG_PID naming another process means the watchdog is not ours to ping."""
    notifier = Notifier.from_environ(
        {
            "NOTIFY_SOCKET": systemd.address,
            "WATCHDOG_USEC": "100000",
            "WATCHDOG_PID": str(os.getpid() + 1),
        }
    )
    assert notifier.watchdog_interval is None
    await notifier.start()
    await asyncio.sleep(0.15)
    await notifier.close()
    assert systemd.drain() == []
