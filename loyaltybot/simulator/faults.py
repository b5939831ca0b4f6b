"""Injected failures for HTTP paths: 429 with rate-limit headers, 5xx, slow answers, drops.

``add("/chat/chatters", status=429, count=2, reset_in=1.0)`` makes the next two
matching requests fail. A prefix starting with ``/helix``, ``/oauth2``, ``/irc`` or
``/activate`` is a full path; any other prefix is a Helix path (``/users`` means
``/helix/users``). ``status=None`` only delays; ``status=0`` drops the TCP connection
without answering; ``count=None`` lasts until ``clear()``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from loyaltybot.simulator.httputil import json_response, reason

_FULL = ("/helix", "/oauth2", "/irc", "/activate")


@dataclass(slots=True)
class Fault:
    prefix: str
    status: int | None = 503
    count: int | None = 1
    reset_in: float = 1.0
    delay: float = 0.0
    hits: int = 0


class Faults:
    def __init__(self, points_per_minute: int = 800) -> None:
        self.rules: list[Fault] = []
        self.points_per_minute = points_per_minute

    def add(
        self,
        path_prefix: str,
        status: int | None = 503,
        count: int | None = 1,
        reset_in: float = 1.0,
        delay: float = 0.0,
    ) -> Fault:
        if status is not None and status != 0 and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status, 0 (drop) or None (delay only)")
        prefix = path_prefix if path_prefix.startswith(_FULL) else "/helix" + path_prefix
        fault = Fault(prefix, status, count, reset_in, delay)
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        self.rules.clear()

    def take(self, path: str) -> Fault | None:
        for fault in self.rules:
            if path.startswith(fault.prefix):
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.rules.remove(fault)
                return fault
        return None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        fault = self.take(request.path)
        if fault is None:
            return await handler(request)
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return await handler(request)
        if fault.status == 0:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing can be answered on a dropped connection
        headers = {}
        message = "Internal Server Error"
        if fault.status == 429:
            headers = {
                "Ratelimit-Limit": str(self.points_per_minute),
                "Ratelimit-Remaining": "0",
                "Ratelimit-Reset": str(math.ceil(time.time() + fault.reset_in)),
            }
            message = "Too Many Requests"
        body = {"error": reason(fault.status), "status": fault.status, "message": message}
        return json_response(body, fault.status, headers)
