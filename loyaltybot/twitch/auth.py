"""Access tokens for Helix: a fixed user token, or an app token from client credentials."""

from __future__ import annotations

import time
from typing import Protocol

import aiohttp

from loyaltybot.config import Secret


class TokenError(Exception):
    """No usable token: the message says what to configure (never the token itself)."""


class TokenSource(Protocol):
    async def token(self) -> str: ...

    def invalidate(self) -> None:
        """The token was refused (401): get a new one next time, if this source can."""


class StaticToken:
    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    async def token(self) -> str:
        return self._secret.reveal().removeprefix("oauth:")

    def invalidate(self) -> None:
        pass


class AppToken:
    """Client-credentials app token, fetched on first use and again before it expires."""

    def __init__(
        self, session: aiohttp.ClientSession, auth_url: str, client_id: str, client_secret: Secret
    ) -> None:
        self._session = session
        self._url = auth_url.rstrip("/") + "/token"
        self._client_id = client_id
        self._secret = client_secret
        self._token: str | None = None
        self._expires = 0.0

    async def token(self) -> str:
        if self._token is None or time.monotonic() > self._expires:
            form = {
                "client_id": self._client_id,
                "client_secret": self._secret.reveal(),
                "grant_type": "client_credentials",
            }
            try:
                async with self._session.post(self._url, data=form) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200 or "access_token" not in body:
                        raise TokenError(
                            f"Twitch refused the app token (HTTP {response.status}):"
                            " check twitch.client_id and twitch.client_secret"
                        )
            except aiohttp.ClientError as exc:
                raise TokenError(f"cannot reach {self._url}: {type(exc).__name__}") from None
            self._token = str(body["access_token"])
            self._expires = time.monotonic() + max(60, int(body.get("expires_in", 3600)) - 300)
        return self._token

    def invalidate(self) -> None:
        self._token = None
