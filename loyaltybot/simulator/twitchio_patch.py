"""Point twitchio 2.10's hard-coded Twitch URLs at other endpoints (reference §4).

twitchio reads ``twitchio.websocket.HOST``, ``twitchio.http.Route.BASE_URL`` and
``TwitchHTTP.TOKEN_BASE`` at call time, but its validate URL is a literal inside
``TwitchHTTP.validate``, so that method is replaced by one that behaves the same
against ``<auth_url>/validate``. Process-wide state: use it as a context manager in
tests so the originals come back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import twitchio.http
import twitchio.websocket
from twitchio import errors


def _validate_against(validate_url: str) -> Any:
    async def validate(self: Any, *, token: str | None = None) -> dict[str, Any]:
        if not token:
            token = self.token
        if not self.session:
            self.session = aiohttp.ClientSession()
        headers = {"Authorization": f"OAuth {token}"}
        async with self.session.get(validate_url, headers=headers) as resp:
            if resp.status == 401:
                raise errors.AuthenticationError("Invalid or unauthorized Access Token passed.")
            if resp.status > 300 or resp.status < 200:
                raise errors.HTTPException("Unable to validate Access Token: " + await resp.text())
            data: dict[str, Any] = await resp.json()
        if not self.nick:
            self.nick = data.get("login")
            self.user_id = data.get("user_id") and int(data["user_id"])
            self.client_id = data.get("client_id")
        return data

    return validate


@contextlib.contextmanager
def patch_twitchio(irc_url: str, api_url: str, auth_url: str) -> Iterator[None]:
    """While inside, twitchio talks to these endpoints instead of Twitch."""
    http_cls: Any = twitchio.http.TwitchHTTP
    saved = (
        twitchio.websocket.HOST,
        twitchio.http.Route.BASE_URL,
        http_cls.TOKEN_BASE,
        http_cls.validate,
    )
    twitchio.websocket.HOST = irc_url
    twitchio.http.Route.BASE_URL = api_url.rstrip("/")
    http_cls.TOKEN_BASE = auth_url.rstrip("/") + "/token"
    http_cls.validate = _validate_against(auth_url.rstrip("/") + "/validate")
    try:
        yield
    finally:
        (
            twitchio.websocket.HOST,
            twitchio.http.Route.BASE_URL,
            http_cls.TOKEN_BASE,
            http_cls.validate,
        ) = saved
