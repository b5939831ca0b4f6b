"""Twitch's OAuth service (id.twitch.tv/oauth2, or the simulator's): the client, the
device code flow, the app token from client credentials, and their errors.

Tokens never reach logs or error messages: each new one is registered with the log
redactor the moment it is received (``tokens``), and errors carry Twitch's reason only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from loyaltybot import logs
from loyaltybot.clock import Clock, SystemClock
from loyaltybot.config import Secret

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_TIMEOUT = aiohttp.ClientTimeout(total=15)


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
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        client_id: str,
        client_secret: Secret,
        clock: Clock | None = None,
    ) -> None:
        self._session = session
        self._clock = clock or SystemClock()
        self._url = auth_url.rstrip("/") + "/token"
        self._client_id = client_id
        self._secret = client_secret
        self._token: str | None = None
        self._expires = 0.0

    async def token(self) -> str:
        if self._token is None or self._clock.monotonic() > self._expires:
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
            lifetime = max(60, int(body.get("expires_in", 3600)) - 300)
            self._expires = self._clock.monotonic() + lifetime
        return self._token

    def invalidate(self) -> None:
        self._token = None


class OAuthError(TokenError):
    """Twitch's OAuth service said no, or could not be reached. Never carries a token."""


class AuthUnreachable(OAuthError):
    pass


class RefreshRefused(OAuthError):
    """The refresh token is no longer valid (revoked, rotated elsewhere, password changed)."""


class DeviceFlowExpired(OAuthError):
    pass


class DeviceFlowDenied(OAuthError):
    pass


# ---- what Twitch answers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    """GET /oauth2/validate: whose token it is, for which app, which scopes, how long left."""

    client_id: str
    login: str
    user_id: str
    scopes: frozenset[str]
    expires_in: int | None  # seconds; None (Twitch sends 0) = does not expire


@dataclass(frozen=True, slots=True)
class Grant:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: frozenset[str]
    expires_in: int | None


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


# ---- the OAuth endpoints ---------------------------------------------------------------------


class OAuthClient:
    """Twitch's id.twitch.tv/oauth2 endpoints (or the simulator's), form-encoded like Twitch."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        client_id: str,
        client_secret: Secret | None = None,
    ) -> None:
        self._session = session
        self._base = auth_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret

    async def validate(self, access_token: str) -> Validation | None:
        """Who the token belongs to; None when Twitch says it is invalid (401)."""
        headers = {"Authorization": f"OAuth {access_token}"}
        status, body = await self._call("GET", "/validate", headers=headers)
        if status == 401:
            return None
        if status >= 500:
            raise AuthUnreachable(f"{self._base} is failing (HTTP {status})")
        if status != 200 or not isinstance(body, dict):
            raise OAuthError(f"Twitch could not validate the token (HTTP {status})")
        expires = _int(body.get("expires_in"))
        return Validation(
            client_id=str(body.get("client_id", "")),
            login=str(body.get("login", "")).lower(),
            user_id=str(body.get("user_id", "")),
            scopes=frozenset(str(s) for s in body.get("scopes") or ()),
            expires_in=expires if expires else None,
        )

    async def refresh(self, refresh_token: str) -> Grant:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.reveal()
        status, body = await self._call("POST", "/token", data=form)
        if status in (400, 401):
            raise RefreshRefused(f"Twitch refused the refresh token ({_message(body)})")
        return self._grant(status, body, "refresh the token")

    async def start_device(self, scopes: Iterable[str]) -> DeviceCode:
        form = {"client_id": self.client_id, "scopes": " ".join(scopes)}
        status, body = await self._call("POST", "/device", data=form)
        if status != 200 or not isinstance(body, dict) or "device_code" not in body:
            raise OAuthError(
                f"Twitch refused to start the device code flow ({_message(body)}, HTTP {status}):"
                " check twitch.client_id (the app must allow the device code flow)"
            )
        code = DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body.get("user_code", "")),
            verification_uri=str(body.get("verification_uri", "https://www.twitch.tv/activate")),
            expires_in=_int(body.get("expires_in")) or 1800,
            interval=max(1, _int(body.get("interval")) or 5),
        )
        logs.register_secret(code.device_code)
        return code

    async def poll_device(self, device: DeviceCode, scopes: Iterable[str]) -> Grant | str:
        """One poll: the grant, or Twitch's word for waiting (authorization_pending, slow_down)."""
        form = {
            "client_id": self.client_id,
            "scopes": " ".join(scopes),
            "device_code": device.device_code,
            "grant_type": DEVICE_GRANT,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.reveal()
        status, body = await self._call("POST", "/token", data=form)
        if status == 200:
            return self._grant(status, body, "issue the token")
        message = _message(body).strip().lower()
        if message in ("authorization_pending", "slow_down"):
            return message
        if "denied" in message:
            raise DeviceFlowDenied("the request was declined on Twitch")
        if "invalid device code" in message or "expired" in message:
            raise DeviceFlowExpired("the code expired before it was approved")
        raise OAuthError(f"Twitch refused the device code flow ({message or status})")

    def _grant(self, status: int, body: Any, what: str) -> Grant:
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise OAuthError(f"Twitch did not {what} (HTTP {status}: {_message(body)})")
        grant = Grant(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            scopes=frozenset(str(s) for s in body.get("scope") or ()),
            expires_in=_int(body.get("expires_in")) or None,
        )
        logs.register_secret(
            grant.access_token, *([grant.refresh_token] if grant.refresh_token else [])
        )
        return grant

    async def _call(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = self._base + path
        try:
            async with self._session.request(
                method, url, headers=headers, data=data, timeout=_TIMEOUT
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                return response.status, body
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise AuthUnreachable(f"cannot reach {self._base}: {type(exc).__name__}") from None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return logs.redact(str(body.get("message") or body.get("error") or "no reason given"))
    return "no reason given"


# ---- device code flow ------------------------------------------------------------------------


async def device_flow(
    oauth: OAuthClient,
    scopes: Sequence[str],
    *,
    on_code: Callable[[DeviceCode], None],
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Grant:
    """Ask Twitch for a device code, show it with ``on_code``, poll until it is approved.

    Polls at the interval Twitch gives, 5 s slower after each ``slow_down``, and gives
    up when the code expires.

    Raises:
        DeviceFlowExpired, DeviceFlowDenied, OAuthError (AuthUnreachable after 3 failed polls).
    """
    clock = clock or SystemClock()
    device = await oauth.start_device(scopes)
    on_code(device)
    deadline = clock.monotonic() + device.expires_in
    interval = float(device.interval)
    failures = 0
    while True:
        await sleep(interval)
        if clock.monotonic() >= deadline:
            raise DeviceFlowExpired("the code expired before it was approved")
        try:
            outcome = await oauth.poll_device(device, scopes)
        except AuthUnreachable:
            failures += 1
            if failures >= 3:
                raise
            continue
        failures = 0
        if isinstance(outcome, Grant):
            return outcome
        if outcome == "slow_down":
            interval += 5


