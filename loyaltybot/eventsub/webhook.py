"""``POST {eventsub_path}``: Twitch's EventSub webhook (SPEC §6), written on aiohttp.

A request is read with a size limit (413), verified (``events.verify``: 403 for a bad
signature or a stale timestamp, 400 for malformed headers or bodies), then:

- a ``webhook_callback_verification`` is answered with the challenge as text/plain;
- a ``revocation`` is logged and remembered, and nothing we hold is touched;
- a ``notification`` goes to the dispatcher, which applies it once; a duplicate is
  answered 204 without doing anything, a failure 500 (Twitch sends it again).

Nothing slow happens before the answer: chat lines, forwards and Helix status updates are
jobs written in the notification's transaction and run afterwards.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from loyaltybot.clock import Clock
from loyaltybot.config import Config, Secret
from loyaltybot.eventsub import events
from loyaltybot.eventsub.dispatch import Dispatcher
from loyaltybot.eventsub.events import Challenge, Rejected, Revocation

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 64 * 1024


class Webhook:
    """The webhook transport: verifies what Twitch signed, hands it to the dispatcher."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        secret: str | Secret,
        clock: Clock,
        path: str = "/twitch/eventsub",
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.dispatcher = dispatcher
        self._secret = _key(secret)
        self._clock = clock
        self.path = path
        self._max_body = max_body

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.path, self.handle)]

    def set_secret(self, secret: str | Secret) -> None:
        """A reloaded secret only verifies subscriptions created with it: Twitch signs with
        the secret given when subscribing."""
        self._secret = _key(secret)

    async def apply(self, config: Config) -> None:
        if config.web.eventsub_secret is not None:
            self.set_secret(config.web.eventsub_secret)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        stats = self.dispatcher.stats
        stats.received += 1
        body = await self._read_body(request)
        if body is None:
            return self._reject(request, 413, "body too large")
        try:
            message = events.verify(request.headers, body, self._secret, self._clock.now())
        except Rejected as exc:
            return self._reject(request, exc.status, exc.reason)
        if isinstance(message, Challenge):
            log.info(
                "eventsub_challenge_answered",
                subscription_type=message.subscription.type,
                subscription_id=message.subscription.id,
            )
            return web.Response(text=message.challenge, content_type="text/plain")
        if isinstance(message, Revocation):
            await self.dispatcher.revocation(message)
            return web.Response(status=204)
        try:
            await self.dispatcher.deliver(message)
        except Exception:
            return web.Response(status=500, text="internal error")
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The raw body, or None when it is larger than the limit."""
        if request.content_length is not None and request.content_length > self._max_body:
            return None
        body = bytearray()
        while chunk := await request.content.read(self._max_body + 1 - len(body)):
            body += chunk
            if len(body) > self._max_body:
                return None
        return bytes(body)

    def _reject(self, request: web.Request, status: int, reason: str) -> web.Response:
        rejected = self.dispatcher.stats.rejected
        rejected[status] = rejected.get(status, 0) + 1
        log.warning("eventsub_rejected", status=status, reason=reason, remote=request.remote)
        return web.Response(status=status, text=reason)


def _key(secret: str | Secret) -> bytes:
    return (secret.reveal() if isinstance(secret, Secret) else secret).encode()
