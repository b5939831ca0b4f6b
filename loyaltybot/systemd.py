"""systemd notification (sd_notify) and watchdog, without a dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a path, or an abstract socket
written with a leading ``@``); each notification is one AF_UNIX datagram of
``KEY=VALUE`` lines. With ``WatchdogSec=`` it also passes ``$WATCHDOG_USEC`` and expects
``WATCHDOG=1`` at least that often: we ping at half of it, and only while the event loop
is healthy (it woke up no later than half a WatchdogSec after it should have, and the
optional health probe answered within that time), so a wedged or crawling loop or a hung
database lets systemd's timer run out and the service is restarted, instead of being
pinged forever by a task that happens to still run.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a silent no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

HealthProbe = Callable[[], Awaitable[bool]]


def _address(value: str | None) -> str | None:
    """$NOTIFY_SOCKET as a socket address: '@name' is the abstract name '\\0name'."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock and other schemes are not for us


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Tells systemd how the daemon is doing; pings its watchdog while the loop is healthy.

    Lifecycle: ``await start()`` early (starts the watchdog task, if systemd asked for
    one), ``ready()`` once serving, ``reloading()`` / ``ready()`` around a SIGHUP reload,
    ``stopping()`` on SIGTERM, ``await close()`` last.
    """

    def __init__(
        self,
        notify_socket: str | None,
        *,
        watchdog_usec: int | None = None,
        health: HealthProbe | None = None,
        max_lag: float | None = None,
    ) -> None:
        self._address = _address(notify_socket)
        self._watchdog = (watchdog_usec / 1e6) if watchdog_usec and self._address else None
        self._health = health
        interval = self.watchdog_interval or 0.0
        # A wake-up later than this means the loop was blocked: skip that ping.
        self._max_lag = max_lag if max_lag is not None else interval
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self.pings = 0
        self.skipped = 0

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        health: HealthProbe | None = None,
        max_lag: float | None = None,
    ) -> Notifier:
        """The notifier systemd asked for through the environment (a no-op one if none)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if raw.isdigit() and int(raw) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw)
        return cls(env.get("NOTIFY_SOCKET"), watchdog_usec=usec, health=health, max_lag=max_lag)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of WatchdogSec), or None without a watchdog."""
        return self._watchdog / 2 if self._watchdog else None

    # ---- notifications ------------------------------------------------------------------

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; False if not sent (never raises)."""
        if self._address is None or not fields:
            return False
        message = "\n".join(fields).encode()
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(message, self._address)
        except OSError as exc:
            log.debug("sd_notify_failed", error=type(exc).__name__, errno=exc.errno)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *_status(status))

    def reloading(self, status: str | None = "reloading the config") -> bool:
        """RELOADING=1 with MONOTONIC_USEC, as systemd >= 253 wants it; follow with ready()."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}", *_status(status))

    def stopping(self, status: str | None = "stopping") -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.notify(*_status(text))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (e.g. a long migration)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    # ---- watchdog -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start pinging the watchdog, if systemd asked for one."""
        interval = self.watchdog_interval
        if interval is None or self._task is not None:
            return
        self.watchdog()  # the first ping right away: start-up may be long
        self._task = asyncio.create_task(self._watch(interval), name="systemd-watchdog")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _watch(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            lag = loop.time() - due
            if lag > self._max_lag:
                self.skipped += 1
                log.warning("event_loop_stalled", lag_seconds=round(lag, 3))
                continue
            if not await self._healthy(interval):
                self.skipped += 1
                continue
            if self.watchdog():
                self.pings += 1

    async def _healthy(self, limit: float) -> bool:
        if self._health is None:
            return True
        try:
            async with asyncio.timeout(limit):
                ok = await self._health()
        except TimeoutError:
            log.warning("health_probe_timeout", timeout_seconds=round(limit, 3))
            return False
        except Exception as exc:
            log.warning("health_probe_failed", error=type(exc).__name__)
            return False
        if not ok:
            log.warning("health_probe_unhealthy")
        return ok


def _status(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return (f"STATUS={' '.join(text.splitlines())}",)
