"""Slow work of actions, run after the commit by the jobs ``Worker`` (``db.jobs``).

Two kinds live here because rewards and the shop send them alike: a chat line (``chat``)
and a Discord message (``discord``). Each is decided inside the transaction that pays for
it (``enqueue_chat``, ``enqueue_discord``) and sent afterwards, with retries. A forward
(POST to a local service) is I/O here too (:meth:`Delivery.post_json`), but its job kind
stays with each feature: what a forward that never arrives means (a refund) is theirs.

A Discord webhook URL is a secret. A job names its webhook by ``(origin, key)`` (e.g.
``("shop", "hydrate")``) and the feature that owns it resolves the URL when the job runs
(``add_webhooks``), so the URL is never written to the database; it is registered with the
log redactor before it is used, and failures are logged by status, never by URL.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from loyaltybot import logs
from loyaltybot.actions.text import chat_line
from loyaltybot.config import Secret
from loyaltybot.db import Tx, jobs
from loyaltybot.db.jobs import Finish, GiveUp, Retry, WorkItem, WorkKind

log = structlog.get_logger(__name__)

CHAT: Final = "chat"
DISCORD: Final = "discord"

ChatSend = Callable[[str, str], Awaitable[bool]]
"""``(channel, text) -> sent``; False (or an exception) means try again later."""

WebhookFor = Callable[[str, str], Awaitable[Secret | None]]
"""``(channel, key) -> the Discord webhook URL``, or None when it is no longer configured."""

CHAT_MAX_AGE_SECONDS = 120.0  # an action's chat line later than this is worse than none
DISCORD_TIMEOUT_SECONDS = 10.0
USER_AGENT = "loyaltybot (https://github.com/loyaltybot)"


def enqueue_chat(tx: Tx, channel_id: int, channel: str, text: str) -> None:
    """A line the bot will say in ``channel`` once this transaction commits."""
    line = chat_line(text)
    if line:
        jobs.enqueue(tx, CHAT, channel_id, {"channel": channel, "text": line})


def enqueue_discord(
    tx: Tx, channel_id: int, channel: str, *, origin: str, key: str, text: str, retries: int
) -> None:
    """A Discord message for the webhook ``(origin, key)`` once this transaction commits."""
    if text:
        payload = {"channel": channel, "origin": origin, "key": key, "text": text}
        jobs.enqueue(tx, DISCORD, channel_id, {**payload, "retries": retries})


class Delivery:
    """Runs the chat and Discord work, and does forwards' HTTP for the features."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        chat: ChatSend | None = None,
        chat_max_age: float = CHAT_MAX_AGE_SECONDS,
    ) -> None:
        self._session = session
        self.chat = chat
        self._chat_max_age_ms = round(chat_max_age * 1000)
        self._webhooks: dict[str, WebhookFor] = {}
        self._registered: set[str] = set()

    def add_webhooks(self, origin: str, resolve: WebhookFor) -> None:
        """How the webhooks of ``origin`` ("reward", "shop") are found when a job runs."""
        self._webhooks[origin] = resolve

    def kinds(self) -> dict[str, WorkKind]:
        return {
            CHAT: WorkKind(
                self._chat, max_attempts=lambda item: 1000, max_age_ms=self._chat_max_age_ms
            ),
            DISCORD: WorkKind(
                self._discord,
                max_attempts=lambda item: int(item.payload.get("retries", 0)) + 1,
            ),
        }

    async def post_json(
        self, url: str, body: Any, *, timeout_seconds: float, user_agent: str
    ) -> None:
        """POST ``body`` as JSON; returns on a 2xx.

        Raises:
            Retry: a timeout, a connection error or any other status (its number only).
        """
        client_timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        try:
            async with self._session.post(
                url, json=body, timeout=client_timeout, headers={"User-Agent": user_agent}
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            raise Retry("timed out") from None
        except aiohttp.ClientError as exc:
            raise Retry(type(exc).__name__) from None
        if not 200 <= status < 300:
            raise Retry(f"HTTP {status}")

    # ---- the kinds ------------------------------------------------------------------------

    async def _chat(self, item: WorkItem) -> Finish | None:
        if self.chat is None:
            raise Retry("chat is not connected")
        if not await self.chat(str(item.payload["channel"]), str(item.payload["text"])):
            raise Retry("chat did not take the line")
        return None

    async def _discord(self, item: WorkItem) -> Finish | None:
        """POST ``{"content": ...}`` to the webhook: 2xx done; 429 and 5xx (and timeouts)
        tried again, after Discord's ``retry_after`` for a 429; other 4xx given up (the
        webhook was deleted, or Discord refuses the message)."""
        payload = item.payload
        channel, origin, key = str(payload["channel"]), str(payload["origin"]), str(payload["key"])
        resolve = self._webhooks.get(origin)
        secret = await resolve(channel, key) if resolve is not None else None
        if secret is None:
            raise GiveUp(f"no Discord webhook is configured for {origin} {key!r} any more")
        url = self._registered_url(secret)
        body = {"content": str(payload["text"]), "allowed_mentions": {"parse": []}}
        timeout = aiohttp.ClientTimeout(total=DISCORD_TIMEOUT_SECONDS)
        try:
            async with self._session.post(
                url, json=body, timeout=timeout, headers={"User-Agent": USER_AGENT}
            ) as response:
                raw = await response.read()
                status = response.status
                header = response.headers.get("Retry-After")
        except TimeoutError:
            raise Retry("timed out") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise Retry(type(exc).__name__) from None
        if 200 <= status < 300:
            log.info("discord_posted", channel=channel, origin=origin, key=key)
            return None
        if status == 429:
            raise Retry("HTTP 429", after=_retry_after(raw, header))
        if status >= 500:
            raise Retry(f"HTTP {status}")
        raise GiveUp(f"HTTP {status}")

    def _registered_url(self, secret: Secret) -> str:
        """The URL, registered with the log redactor first (also its last path segment,
        the webhook's token, should a library quote it alone)."""
        url = secret.reveal()
        if url not in self._registered:
            token = urlsplit(url).path.rstrip("/").rpartition("/")[2]
            logs.register_secret(url, token)
            self._registered.add(url)
        return url


def _retry_after(raw: bytes, header: str | None) -> float | None:
    """Seconds Discord asks us to wait: the JSON body's ``retry_after``, else the header."""
    candidates: list[Any] = []
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = json.loads(raw)
        if isinstance(body, dict):
            candidates.append(body.get("retry_after"))
    candidates.append(header)
    for value in candidates:
        with contextlib.suppress(TypeError, ValueError):
            seconds = float(value)
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None
