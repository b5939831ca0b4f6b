"""A typed client of the Helix endpoints loyaltybot uses.

Rate limits: a 429 waits until ``Ratelimit-Reset`` and retries; a 5xx or a dropped
connection retries with backoff; a 401 asks the token source for a new token once.
Errors never carry a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from sys import intern
from typing import Any

import aiohttp
import structlog

from loyaltybot.twitch.auth import TokenError, TokenSource

log = structlog.get_logger(__name__)


class HelixError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Twitch API error {status}: {message}" if status else message)
        self.status = status
        self.message = message


class TwitchUnreachable(HelixError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"cannot reach {url}: {reason}")


@dataclass(frozen=True, slots=True)
class TwitchUser:
    id: str
    login: str
    display_name: str


class Helix:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        client_id: str,
        token: TokenSource,
        *,
        attempts: int = 4,
        max_wait: float = 30.0,
    ) -> None:
        self._session = session
        self._base = api_url.rstrip("/")
        self._client_id = client_id
        self._token = token
        self._attempts = attempts
        self._max_wait = max_wait

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        json: Any = None,
    ) -> Any:
        """One Helix call with the retries above; returns the decoded JSON body."""
        url = self._base + path
        refreshed = False
        for attempt in range(1, self._attempts + 1):
            try:
                token = await self._token.token()
            except TokenError as exc:
                raise HelixError(0, str(exc)) from None
            headers = {"Authorization": f"Bearer {token}", "Client-Id": self._client_id}
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    body = None
                    if response.content_length != 0:
                        body = await response.json(content_type=None)
                    status = response.status
                    reset = response.headers.get("Ratelimit-Reset")
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt == self._attempts:
                    raise TwitchUnreachable(self._base, type(exc).__name__) from None
                log.warning(
                    "helix_unreachable", path=path, error=type(exc).__name__, attempt=attempt
                )
                await asyncio.sleep(min(self._max_wait, 0.5 * 2**attempt))
                continue
            except ValueError:
                raise HelixError(0, f"{method} {path}: Twitch's answer is not JSON") from None
            if status == 401 and not refreshed:
                refreshed = True
                self._token.invalidate()
                continue
            if status == 429 and attempt < self._attempts:
                wait = _until(reset) if reset else 1.0
                log.warning("helix_rate_limited", path=path, wait_seconds=round(wait, 2))
                await asyncio.sleep(min(self._max_wait, wait))
                continue
            if status >= 500 and attempt < self._attempts:
                log.warning("helix_server_error", path=path, status=status, attempt=attempt)
                await asyncio.sleep(min(self._max_wait, 0.5 * 2**attempt))
                continue
            if status >= 400:
                message = body.get("message", "") if isinstance(body, dict) else ""
                raise HelixError(status, f"{method} {path}: {message or 'refused'}")
            return body
        raise HelixError(0, f"{method} {path}: gave up after {self._attempts} attempts")

    async def get_users(
        self, *, logins: Sequence[str] = (), ids: Sequence[str] = ()
    ) -> list[TwitchUser]:
        """Users by login and/or id, asked 100 at a time; unknown ones are simply absent."""
        wanted = [("login", v) for v in logins] + [("id", v) for v in ids]
        users = []
        for start in range(0, len(wanted), 100):
            body = await self.request("GET", "/users", params=wanted[start : start + 100])
            for item in body.get("data", []):
                users.append(
                    TwitchUser(
                        str(item["id"]),
                        str(item["login"]),
                        str(item.get("display_name") or item["login"]),
                    )
                )
        return users


def _until(reset: str) -> float:
    try:
        return max(0.0, float(reset) - time.time()) + 0.05
    except ValueError:
        return 1.0


@dataclass(frozen=True, slots=True)
class Stream:
    user_id: str
    user_login: str
    started_at: str


async def get_chatters(
    helix: Helix, broadcaster_id: str, moderator_id: str, *, page_size: int = 1000,
    limit: int = 1_000_000,
) -> dict[str, tuple[str, str]]:
    """Every chatter of a channel, all pages, as user id -> (login, display name) (needs
    moderator:read:chatters and the bot to be a moderator; Twitch answers 401/403
    otherwise). Plain tuples: a 100,000-viewer channel is 100 pages every tick."""
    chatters: dict[str, tuple[str, str]] = {}
    cursor = ""
    while len(chatters) < limit:
        params = [("broadcaster_id", broadcaster_id), ("moderator_id", moderator_id),
                  ("first", str(page_size))]
        if cursor:
            params.append(("after", cursor))
        body = await helix.request("GET", "/chat/chatters", params=params)
        data = body.get("data") or []
        for item in data:  # ids and logins interned: the same ones arrive every tick
            login = intern(str(item["user_login"]))
            chatters[intern(str(item["user_id"]))] = (login, str(item.get("user_name") or login))
        cursor = (body.get("pagination") or {}).get("cursor") or ""
        if not cursor or not data:
            break
    return chatters


async def get_streams(helix: Helix, logins: Sequence[str]) -> dict[str, Stream]:
    """Which of these channels are live now (offline channels are absent)."""
    live: dict[str, Stream] = {}
    for start in range(0, len(logins), 100):
        params = [("user_login", login) for login in logins[start:start + 100]]
        params.append(("first", "100"))
        body = await helix.request("GET", "/streams", params=params)
        for item in body.get("data", []):
            if item.get("type", "live") == "live":
                login = str(item["user_login"]).lower()
                live[login] = Stream(str(item["user_id"]), login, str(item.get("started_at", "")))
    return live


async def get_subscriber_ids(helix: Helix, broadcaster_id: str, *, limit: int = 200_000
                             ) -> set[str]:
    """User ids of the broadcaster's subscribers (broadcaster token with
    channel:read:subscriptions)."""
    ids: set[str] = set()
    cursor = ""
    while len(ids) < limit:
        params = [("broadcaster_id", broadcaster_id), ("first", "100")]
        if cursor:
            params.append(("after", cursor))
        body = await helix.request("GET", "/subscriptions", params=params)
        for item in body.get("data", []):
            if str(item.get("user_id")) != broadcaster_id:
                ids.add(str(item["user_id"]))
        cursor = (body.get("pagination") or {}).get("cursor") or ""
        if not cursor or not body.get("data"):
            break
    return ids
