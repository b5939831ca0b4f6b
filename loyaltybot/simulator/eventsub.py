"""EventSub over webhooks: the subscriptions Helix creates, and a sender that signs like Twitch.

Every message carries the seven ``Twitch-Eventsub-*`` headers of reference §3.1, a
nanosecond RFC3339 timestamp, and ``sha256=<hex HMAC-SHA256(secret, id + timestamp +
raw body)>``. A new subscription is ``webhook_callback_verification_pending`` until its
callback answers the signed challenge with 200, ``text/plain`` and exactly the
challenge; then it is ``enabled`` (otherwise ``webhook_callback_verification_failed``).
Every delivery is kept in ``deliveries`` so ``redeliver`` can resend the same message.

Requests with ``transport.method == "websocket"`` (and Get/Delete with a user token) are
handed to ``websocket`` (an ``EventSubWs``, ``eventsub_ws.py``) when one is attached, and
``send``/``notify`` deliver to its matching sessions as well: one place where every
simulated event goes, whichever transport the bot uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from loyaltybot.clock import Clock
from loyaltybot.simulator.httputil import HelixError
from loyaltybot.simulator.world import Token, World, rfc3339

if TYPE_CHECKING:
    from loyaltybot.simulator.eventsub_ws import EventSubWs

log = structlog.get_logger(__name__)

PENDING = "webhook_callback_verification_pending"
FAILED = "webhook_callback_verification_failed"
ENABLED = "enabled"
ACTIVE = (ENABLED, PENDING)
MAX_TOTAL_COST = 10_000


def sign_message(secret: str | bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over message id + timestamp + raw body, exactly as Twitch signs."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, message_id.encode() + timestamp.encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dumps(payload: Any) -> bytes:
    """Compact JSON, the way Twitch writes bodies."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class TypeSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()  # the user in ``authorizer`` must have granted one of these
    authorizer: str | None = None  # condition key naming who must have authorized


_REDEMPTION = TypeSpec(
    ("broadcaster_user_id",),
    ("reward_id",),
    ("channel:read:redemptions", "channel:manage:redemptions"),
    "broadcaster_user_id",
)
_SUBS = TypeSpec(
    ("broadcaster_user_id",), (), ("channel:read:subscriptions",), "broadcaster_user_id"
)

TYPES: dict[tuple[str, str], TypeSpec] = {
    ("channel.channel_points_custom_reward_redemption.add", "1"): _REDEMPTION,
    ("channel.channel_points_custom_reward_redemption.update", "1"): _REDEMPTION,
    ("stream.online", "1"): TypeSpec(("broadcaster_user_id",)),
    ("stream.offline", "1"): TypeSpec(("broadcaster_user_id",)),
    ("channel.follow", "2"): TypeSpec(
        ("broadcaster_user_id", "moderator_user_id"),
        (),
        ("moderator:read:followers",),
        "moderator_user_id",
    ),
    ("channel.subscribe", "1"): _SUBS,
    ("channel.subscription.gift", "1"): _SUBS,
    ("channel.subscription.message", "1"): _SUBS,
    ("channel.subscription.end", "1"): _SUBS,
    ("channel.cheer", "1"): TypeSpec(
        ("broadcaster_user_id",), (), ("bits:read",), "broadcaster_user_id"
    ),
    ("channel.raid", "1"): TypeSpec((), ("from_broadcaster_user_id", "to_broadcaster_user_id")),
    ("channel.update", "2"): TypeSpec(("broadcaster_user_id",)),
    ("user.update", "1"): TypeSpec(("user_id",)),
}
DEFAULT_VERSION = dict(TYPES.keys())


@dataclass(slots=True)
class Subscription:
    id: str
    type: str
    version: str
    condition: dict[str, str]
    callback: str
    secret: str = field(repr=False)
    client_id: str
    created_at: str
    status: str = PENDING
    cost: int = 1

    def to_json(self) -> dict[str, Any]:
        """As Helix lists it (the secret is never shown)."""
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "version": self.version,
            "condition": self.condition,
            "created_at": self.created_at,
            "transport": {"method": "webhook", "callback": self.callback},
            "cost": self.cost,
        }

    def envelope(self) -> dict[str, Any]:
        """As a notification's ``subscription`` object (reference §3.8 key order)."""
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "status": self.status,
            "cost": self.cost,
            "condition": self.condition,
            "transport": {"method": "webhook", "callback": self.callback},
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class Delivery:
    """One POST to a callback, and what came back."""

    message_id: str
    message_type: str  # notification | webhook_callback_verification | revocation
    subscription: Subscription
    timestamp: str
    body: bytes
    secret: str = field(repr=False)
    retry: int = 0
    at: float = 0.0
    status: int | None = None  # None: no HTTP answer (refused, timed out)
    response_text: str = ""
    content_type: str | None = None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class NoSubscription(LookupError):
    """``send`` found no enabled subscription to deliver to."""


class EventSub:
    def __init__(self, world: World, clock: Clock, *, timeout: float = 10.0) -> None:
        self.world = world
        self.clock = clock
        self.timeout = timeout
        self.require_authorization = True
        self.subscriptions: list[Subscription] = []
        self.deliveries: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self.websocket: EventSubWs | None = None  # set by EventSubWs when it is attached

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=False
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; close() cancels it, a failure is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("sim_background_task_failed", error=f"{type(exc).__name__}: {exc}")

    def now_stamp(self) -> str:
        return rfc3339(self.clock.now(), nanos=True)

    # ---- Helix: create / list / delete ---------------------------------------------------

    def create(self, token: Token, body: Any) -> dict[str, Any]:
        """POST /eventsub/subscriptions; raises HelixError as Twitch would answer."""
        if not isinstance(body, dict):
            raise HelixError(400, "The request body is not a JSON object")
        kind, version = body.get("type"), body.get("version")
        condition, transport = body.get("condition"), body.get("transport")
        if not isinstance(kind, str) or not isinstance(version, str):
            raise HelixError(400, "type and version are required strings")
        spec = TYPES.get((kind, version))
        if spec is None:
            raise HelixError(
                400, "The combination of values in the type and version fields is not valid"
            )
        if (
            isinstance(transport, dict)
            and transport.get("method") == "websocket"
            and self.websocket is not None
        ):
            return self.websocket.create(token, kind, version, spec, condition, transport)
        if not isinstance(transport, dict) or transport.get("method") != "webhook":
            raise HelixError(400, "transport.method must be webhook")
        if not token.is_app:
            raise HelixError(
                400, "webhook subscriptions require an app access token (client credentials)"
            )
        callback, secret = transport.get("callback"), transport.get("secret")
        if not isinstance(callback, str) or not callback.startswith(("https://", "http://")):
            raise HelixError(400, "transport.callback must be an http(s) URL")
        if not isinstance(secret, str) or not 10 <= len(secret) <= 100 or not secret.isascii():
            raise HelixError(400, "transport.secret must be 10 to 100 ASCII characters")
        condition = self.check_condition(spec, kind, condition, token)
        for sub in self.subscriptions:
            if (
                sub.client_id == token.client_id
                and sub.type == kind
                and sub.version == version
                and sub.condition == condition
                and sub.status in ACTIVE
            ):
                raise HelixError(409, "subscription already exists")
        sub = Subscription(
            id=str(uuid.uuid4()),
            type=kind,
            version=version,
            condition=condition,
            callback=callback,
            secret=secret,
            client_id=token.client_id,
            created_at=self.now_stamp(),
            cost=0 if spec.scopes else 1,
        )
        self.subscriptions.append(sub)
        self.spawn(self._verify(sub))
        mine = self._active(token.client_id)
        return {
            "data": [sub.to_json()],
            "total": len(mine),
            "total_cost": sum(s.cost for s in mine),
            "max_total_cost": MAX_TOTAL_COST,
        }

    def check_condition(
        self, spec: TypeSpec, kind: str, condition: Any, token: Token, *, authorize: bool = True
    ) -> dict[str, str]:
        """The condition as Twitch would accept it, or HelixError. ``authorize=False`` leaves
        out the app-side grant check (the WebSocket transport checks the user token itself)."""
        if not isinstance(condition, dict) or not all(
            isinstance(v, str) for v in condition.values()
        ):
            raise HelixError(400, "condition must be an object of strings")
        allowed = set(spec.required) | set(spec.optional)
        unknown = set(condition) - allowed
        missing = [k for k in spec.required if not condition.get(k)]
        if unknown or missing:
            raise HelixError(400, f"invalid condition for {kind}: needs {sorted(allowed)}")
        if kind == "channel.raid" and len([k for k in spec.optional if condition.get(k)]) != 1:
            raise HelixError(
                400,
                "channel.raid needs exactly one of from_broadcaster_user_id and"
                " to_broadcaster_user_id",
            )
        for key, value in condition.items():
            if key.endswith("user_id") and value not in self.world.users_by_id:
                raise HelixError(400, f"condition.{key}: no user with id {value}")
        if kind == "channel.follow":
            channel = self._channel_of(condition["broadcaster_user_id"])
            if channel is None or not channel.can_moderate(condition["moderator_user_id"]):
                raise HelixError(403, "moderator_user_id is not a moderator of the broadcaster")
        if authorize and self.require_authorization and spec.authorizer and spec.scopes:
            user_id = condition[spec.authorizer]
            if not self.world.has_grant(user_id, token.client_id, spec.scopes):
                login = self.world.users_by_id[user_id].login
                raise HelixError(
                    403,
                    f"subscription missing proper authorization: {login} has not granted"
                    f" {' or '.join(spec.scopes)} to client {token.client_id}",
                )
        return dict(condition)

    def _channel_of(self, user_id: str) -> Any:
        user = self.world.users_by_id.get(user_id)
        return self.world.channels.get(user.login) if user else None

    def _active(self, client_id: str) -> list[Subscription]:
        return [s for s in self.subscriptions if s.client_id == client_id and s.status in ACTIVE]

    def listing(self, token: Token, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /eventsub/subscriptions: an app token sees its client's webhook subscriptions."""
        filters = [k for k in ("status", "type", "user_id", "subscription_id") if query.get(k)]
        if len(filters) > 1:
            raise HelixError(400, "at most one of status, type, user_id, subscription_id")
        if not token.is_app and self.websocket is not None:
            return self.websocket.listing(token, query)
        subs = (
            [s for s in self.subscriptions if s.client_id == token.client_id]
            if token.is_app
            else []
        )
        if query.get("status"):
            subs = [s for s in subs if s.status == query["status"]]
        if query.get("type"):
            subs = [s for s in subs if s.type == query["type"]]
        if query.get("user_id"):
            subs = [s for s in subs if query["user_id"] in s.condition.values()]
        if query.get("subscription_id"):
            subs = [s for s in subs if s.id == query["subscription_id"]]
        mine = self._active(token.client_id) if token.is_app else []
        return {
            "total": len(subs),
            "data": [s.to_json() for s in subs],
            "total_cost": sum(s.cost for s in mine),
            "max_total_cost": MAX_TOTAL_COST,
            "pagination": {},
        }

    def delete(self, token: Token, sub_id: str) -> None:
        if not token.is_app and self.websocket is not None:
            self.websocket.delete(token, sub_id)
            return
        for sub in self.subscriptions:
            if sub.id == sub_id and token.is_app and sub.client_id == token.client_id:
                self.subscriptions.remove(sub)
                self._changed.set()
                return
        raise HelixError(404, "subscription not found")

    # ---- delivering ------------------------------------------------------------------------

    async def _verify(self, sub: Subscription) -> None:
        challenge = secrets.token_urlsafe(24)
        body = dumps({"challenge": challenge, "subscription": _pending_envelope(sub)})
        delivery = await self._post(sub, "webhook_callback_verification", body, sub.secret)
        accepted = (
            delivery.status == 200
            and (delivery.content_type or "").split(";")[0].strip().lower() == "text/plain"
            and delivery.response_text == challenge
        )
        if sub in self.subscriptions and sub.status == PENDING:
            sub.status = ENABLED if accepted else FAILED
        log.info("sim_eventsub_verified", subscription=sub.type, status=sub.status)
        self._changed.set()

    async def _post(
        self,
        sub: Subscription,
        message_type: str,
        body: bytes,
        secret: str,
        *,
        message_id: str | None = None,
        timestamp: str | None = None,
        retry: int = 0,
    ) -> Delivery:
        message_id = message_id or str(uuid.uuid4())
        timestamp = timestamp or self.now_stamp()
        headers = {
            "Content-Type": "application/json",
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Retry": str(retry),
            "Twitch-Eventsub-Message-Type": message_type,
            "Twitch-Eventsub-Message-Signature": sign_message(secret, message_id, timestamp, body),
            "Twitch-Eventsub-Message-Timestamp": timestamp,
            "Twitch-Eventsub-Subscription-Type": sub.type,
            "Twitch-Eventsub-Subscription-Version": sub.version,
        }
        delivery = Delivery(
            message_id,
            message_type,
            sub,
            timestamp,
            body,
            secret,
            retry,
            at=self.clock.monotonic(),
            headers=headers,
        )
        self.deliveries.append(delivery)
        if self._session is None:
            raise RuntimeError("the simulator is not started")
        try:
            async with self._session.post(
                sub.callback, data=body, headers=headers, allow_redirects=False
            ) as response:
                delivery.status = response.status
                delivery.content_type = response.headers.get("Content-Type")
                raw = await response.content.read(65536)
                delivery.response_text = raw.decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            delivery.error = type(exc).__name__
        log.debug(
            "sim_eventsub_delivered",
            kind=message_type,
            subscription=sub.type,
            status=delivery.status,
            error=delivery.error,
        )
        return delivery

    def matching(self, sub_type: str, event: Mapping[str, Any]) -> list[Subscription]:
        return [
            s
            for s in self.subscriptions
            if s.type == sub_type and s.status == ENABLED and matches_condition(s.condition, event)
        ]

    async def send(
        self,
        sub_type: str,
        event: Mapping[str, Any],
        *,
        message_id: str | None = None,
        timestamp: str | None = None,
        callback: str | None = None,
        secret: str | None = None,
        version: str | None = None,
    ) -> list[Delivery]:
        """A notification to every enabled subscription of that type whose condition fits.

        ``callback``: only to subscriptions with that callback, or, if there is none and
        ``secret`` is given, to that URL with a made-up enabled subscription (for tests
        that skip Helix). ``secret`` also overrides the signing key (to test bad
        signatures). ``message_id``/``timestamp`` fix those headers (replays, stale
        messages). Raises NoSubscription if there is nowhere to send it.

        Without ``callback``, matching WebSocket subscriptions get it too (with the same
        ``message_id``/``timestamp``); those deliveries are in ``websocket.deliveries``,
        the returned list holds the webhook ones only.
        """
        targets = self.matching(sub_type, event)
        if callback is not None:
            targets = [s for s in targets if s.callback == callback]
            if not targets and secret is not None:
                targets = [self._adhoc(sub_type, event, callback, secret, version)]
        by_websocket = (
            await self.websocket.notify(sub_type, event, message_id=message_id, timestamp=timestamp)
            if self.websocket is not None and callback is None
            else []
        )
        if not targets and by_websocket:
            return []
        if not targets:
            raise NoSubscription(
                f"no enabled {sub_type} subscription matches this event"
                " (create one through Helix, or pass callback= and secret=)"
            )
        deliveries = []
        for sub in targets:
            body = dumps({"subscription": sub.envelope(), "event": dict(event)})
            deliveries.append(
                await self._post(
                    sub,
                    "notification",
                    body,
                    secret or sub.secret,
                    message_id=message_id,
                    timestamp=timestamp,
                )
            )
        return deliveries

    async def notify(self, sub_type: str, event: Mapping[str, Any]) -> list[Delivery]:
        """Like ``send`` to every matching subscription, but nothing to do is not an error."""
        by_websocket = self.websocket is not None and bool(self.websocket.matching(sub_type, event))
        if not by_websocket and not self.matching(sub_type, event):
            return []
        return await self.send(sub_type, event)

    def _adhoc(
        self,
        sub_type: str,
        event: Mapping[str, Any],
        callback: str,
        secret: str,
        version: str | None,
    ) -> Subscription:
        version = version or DEFAULT_VERSION.get(sub_type, "1")
        spec = TYPES.get((sub_type, version), TypeSpec(("broadcaster_user_id",)))
        keys = spec.required + spec.optional
        condition = {k: str(event[k]) for k in keys if k in event and event[k] is not None}
        if "moderator_user_id" in keys and "broadcaster_user_id" in event:
            condition["moderator_user_id"] = str(event["broadcaster_user_id"])
        return Subscription(
            id=str(uuid.uuid4()),
            type=sub_type,
            version=version,
            condition=condition,
            callback=callback,
            secret=secret,
            client_id="",
            created_at=self.now_stamp(),
            status=ENABLED,
        )

    async def redeliver(self, message_id: str, *, fresh_timestamp: bool = False) -> Delivery:
        """Send a message again: same id and body (Twitch's at-least-once), retry count + 1."""
        original = next((d for d in reversed(self.deliveries) if d.message_id == message_id), None)
        if original is None:
            raise KeyError(f"no delivery with message id {message_id}")
        return await self._post(
            original.subscription,
            original.message_type,
            original.body,
            original.secret,
            message_id=message_id,
            timestamp=None if fresh_timestamp else original.timestamp,
            retry=original.retry + 1,
        )

    async def revoke(self, subscription_id: str, status: str = "authorization_revoked") -> Delivery:
        """Revoke a subscription and tell its callback (a ``revocation`` message)."""
        sub = next((s for s in self.subscriptions if s.id == subscription_id), None)
        if sub is None:
            raise KeyError(f"no subscription {subscription_id}")
        sub.status = status
        self._changed.set()
        body = dumps({"subscription": sub.envelope()})
        return await self._post(sub, "revocation", body, sub.secret)

    async def wait_enabled(
        self,
        sub_type: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline, like wait_for_reply)
    ) -> list[Subscription]:
        """Wait until ``count`` subscriptions (of that type) are enabled; returns them."""

        def enabled() -> list[Subscription]:
            return [
                s
                for s in self.subscriptions
                if s.status == ENABLED and (sub_type is None or s.type == sub_type)
            ]

        await self._wait(lambda: len(enabled()) >= count, timeout, f"{count} enabled {sub_type}")
        return enabled()

    async def wait_verified(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test helper's deadline, like wait_for_reply)
    ) -> list[Subscription]:
        """Wait until no subscription awaits its challenge answer; returns them all."""
        await self._wait(
            lambda: all(s.status != PENDING for s in self.subscriptions), timeout, "verified"
        )
        return list(self.subscriptions)

    async def _wait(self, done: Callable[[], bool], within: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done():
            left = deadline - loop.time()
            if left <= 0:
                states = [(s.type, s.status) for s in self.subscriptions]
                raise TimeoutError(f"subscriptions not {what} within {within}s: {states}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


def _pending_envelope(sub: Subscription) -> dict[str, Any]:
    """The challenge's subscription object (reference §3.4 key order)."""
    return {
        "id": sub.id,
        "status": PENDING,
        "type": sub.type,
        "version": sub.version,
        "cost": sub.cost,
        "condition": sub.condition,
        "transport": {"method": "webhook", "callback": sub.callback},
        "created_at": sub.created_at,
    }


def matches_condition(condition: Mapping[str, str], event: Mapping[str, Any]) -> bool:
    """Whether an event falls under a subscription's condition (whatever its transport)."""
    for key, value in condition.items():
        if key == "reward_id":
            reward = event.get("reward")
            if not isinstance(reward, dict) or reward.get("id") != value:
                return False
        elif key == "moderator_user_id":
            continue
        elif key in event and event[key] != value:
            return False
    return True
