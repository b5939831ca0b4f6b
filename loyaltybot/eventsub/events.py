"""EventSub webhook messages: signature, freshness and parsing, with no I/O.

Twitch signs ``message id + timestamp + raw body`` with HMAC-SHA256 and the secret given
when subscribing (twitch-reference.md §3.3). A request is trusted only after that check
(in constant time, over the raw bytes) and a freshness check on the signed timestamp;
then the envelope becomes one of the typed messages below. Every refusal is a
``Rejected`` carrying the HTTP status to answer and a short, safe reason.

Dedupe is not done here: a message id is "seen" only when its effect commits, which is
the store's business (``web.eventsub``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from loyaltybot.points.viewers import Viewer, is_login

MESSAGE_ID: Final = "twitch-eventsub-message-id"
MESSAGE_RETRY: Final = "twitch-eventsub-message-retry"
MESSAGE_TYPE: Final = "twitch-eventsub-message-type"
MESSAGE_SIGNATURE: Final = "twitch-eventsub-message-signature"
MESSAGE_TIMESTAMP: Final = "twitch-eventsub-message-timestamp"

MAX_AGE_SECONDS: Final = 600.0  # Twitch: reject messages older than 10 minutes
# A timestamp this far ahead of our clock is refused too: no honest message is from the
# future, and a small allowance covers a host clock that runs a little slow.
MAX_FUTURE_SECONDS: Final = 300.0

_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_ID = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces


class Rejected(Exception):
    """Refuse the request: answer ``status``; ``reason`` is safe to log and to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---- signing --------------------------------------------------------------------------


def sign(secret: str | bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` exactly as Twitch computes it."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = message_id.encode() + timestamp.encode() + body
    return "sha256=" + hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_matches(
    secret: str | bytes, message_id: str, timestamp: str, body: bytes, signature: str
) -> bool:
    """Constant-time comparison of the header with the expected signature."""
    expected = sign(secret, message_id, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))


def format_timestamp(moment: float) -> str:
    """A Unix time as Twitch writes it: RFC 3339, UTC, nanoseconds."""
    whole = int(moment // 1)
    nanos = round((moment - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def parse_timestamp(text: str) -> float:
    """RFC 3339 (with up to nanoseconds and an explicit zone) to Unix seconds.

    Raises:
        ValueError: not such a timestamp.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    fraction = match[1] or ""
    base = text[: match.start(1)] if fraction else text[: match.start(2)]
    zone = "+00:00" if match[2] == "Z" else match[2]
    seconds = datetime.fromisoformat(base + zone).timestamp()
    return seconds + (float(fraction) if fraction else 0.0)


# ---- typed messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    type: str
    version: str
    status: str
    condition: Mapping[str, str]
    callback: str | None


@dataclass(frozen=True, slots=True)
class User:
    """A Twitch user as an event names them."""

    id: str
    login: str
    name: str

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.id, self.login, self.name)


@dataclass(frozen=True, slots=True)
class Reward:
    id: str
    title: str
    cost: int
    prompt: str


@dataclass(frozen=True, slots=True)
class RedemptionAdded:
    broadcaster: User
    id: str
    user: User
    user_input: str
    status: str  # unfulfilled, or fulfilled when the reward skips the request queue
    reward: Reward
    redeemed_at: str


@dataclass(frozen=True, slots=True)
class StreamOnline:
    broadcaster: User
    started_at: str
    type: str


@dataclass(frozen=True, slots=True)
class StreamOffline:
    broadcaster: User


@dataclass(frozen=True, slots=True)
class Follow:
    broadcaster: User
    user: User


@dataclass(frozen=True, slots=True)
class Subscribe:
    broadcaster: User
    user: User
    tier: int  # 1, 2 or 3 (Prime counts as 1)
    is_gift: bool


@dataclass(frozen=True, slots=True)
class SubscriptionGift:
    broadcaster: User
    user: User | None  # None when anonymous
    total: int
    tier: int


@dataclass(frozen=True, slots=True)
class Cheer:
    broadcaster: User
    user: User | None  # None when anonymous
    bits: int


@dataclass(frozen=True, slots=True)
class Raid:
    broadcaster: User  # the raided channel (ours)
    raider: User  # the raiding broadcaster
    viewers: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A subscription type this daemon does not act on."""

    broadcaster_id: str | None


Event = (
    RedemptionAdded
    | StreamOnline
    | StreamOffline
    | Follow
    | Subscribe
    | SubscriptionGift
    | Cheer
    | Raid
    | OtherEvent
)


def named_viewers(event: Event) -> list[Viewer]:
    """The viewers an event names (first sight): the redeemer, follower, subscriber,
    gifter or cheerer unless anonymous, the raiding broadcaster."""
    user: User | None
    match event:
        case RedemptionAdded() | Follow() | Subscribe() | SubscriptionGift() | Cheer():
            user = event.user
        case Raid():
            user = event.raider
        case _:
            user = None
    return [] if user is None else [user.viewer]


@dataclass(frozen=True, slots=True)
class Challenge:
    message_id: str
    timestamp: float
    challenge: str
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Revocation:
    message_id: str
    timestamp: float
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Notification:
    message_id: str
    timestamp: float
    retry: int
    subscription: Subscription
    event: Event


Message = Challenge | Revocation | Notification


# ---- verification ---------------------------------------------------------------------


def verify(headers: Mapping[str, str], body: bytes, secret: str | bytes, now: float) -> Message:
    """Check and parse one webhook request.

    ``headers`` may use any case. Order: the headers must be present and well formed
    (400), the signature must match (403), the timestamp must be fresh (403), then the
    body must be the envelope its type promises (400).

    Raises:
        Rejected: with the status to answer.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    message_id = lower.get(MESSAGE_ID, "")
    timestamp = lower.get(MESSAGE_TIMESTAMP, "")
    signature = lower.get(MESSAGE_SIGNATURE)
    kind = lower.get(MESSAGE_TYPE)
    if signature is None:
        raise Rejected(403, "missing signature")
    if not _ID.fullmatch(message_id) or kind is None or len(timestamp) > 64:
        raise Rejected(400, "missing or malformed EventSub headers")
    if not _SIGNATURE.fullmatch(signature) or not signature_matches(
        secret, message_id, timestamp, body, signature
    ):
        raise Rejected(403, "bad signature")
    try:
        sent = parse_timestamp(timestamp)
    except ValueError:
        raise Rejected(403, "bad timestamp") from None
    if now - sent > MAX_AGE_SECONDS:
        raise Rejected(403, "stale message")
    if sent - now > MAX_FUTURE_SECONDS:
        raise Rejected(403, "timestamp in the future")
    try:
        envelope = json.loads(body)
        if not isinstance(envelope, dict):
            raise Malformed("the body is not a JSON object")
        return _message(kind, message_id, sent, lower.get(MESSAGE_RETRY, "0"), envelope)
    except RecursionError:  # json.loads of a body nested thousands deep
        raise Rejected(400, "the body is nested too deeply") from None
    except (ValueError, Malformed) as exc:
        reason = str(exc) if isinstance(exc, Malformed) else "the body is not JSON"
        raise Rejected(400, reason) from None


class Malformed(Exception):
    """A signed body that is not what its type promises."""


def _message(
    kind: str, message_id: str, sent: float, retry: str, envelope: dict[str, Any]
) -> Message:
    subscription = parse_subscription(envelope.get("subscription"))
    if kind == "webhook_callback_verification":
        challenge = envelope.get("challenge")
        if not isinstance(challenge, str) or not 0 < len(challenge) <= 1000:
            raise Malformed("challenge missing")
        return Challenge(message_id, sent, challenge, subscription)
    if kind == "revocation":
        return Revocation(message_id, sent, subscription)
    if kind == "notification":
        event = envelope.get("event")
        if not isinstance(event, dict):
            raise Malformed("notification without an event")
        retries = int(retry) if retry.isdigit() and len(retry) < 10 else 0
        return Notification(
            message_id, sent, retries, subscription, parse_event(subscription.type, event)
        )
    raise Malformed(f"unknown message type {kind[:40]!r}")


def parse_subscription(raw: Any) -> Subscription:
    if not isinstance(raw, dict):
        raise Malformed("subscription missing")
    condition = raw.get("condition", {})
    if not isinstance(condition, dict):
        raise Malformed("subscription.condition is not an object")
    transport = raw.get("transport")
    callback = transport.get("callback") if isinstance(transport, dict) else None
    return Subscription(
        id=_text(raw, "id", 100),
        type=_text(raw, "type", 100),
        version=_text(raw, "version", 10),
        status=_text(raw, "status", 100),
        condition={str(k): str(v) for k, v in condition.items() if v is not None},
        callback=callback if isinstance(callback, str) else None,
    )


# ---- events ---------------------------------------------------------------------------

REDEMPTION_ADD: Final = "channel.channel_points_custom_reward_redemption.add"
STREAM_ONLINE: Final = "stream.online"
STREAM_OFFLINE: Final = "stream.offline"
FOLLOW: Final = "channel.follow"
SUBSCRIBE: Final = "channel.subscribe"
SUBSCRIPTION_GIFT: Final = "channel.subscription.gift"
CHEER: Final = "channel.cheer"
RAID: Final = "channel.raid"

_TIERS = {"1000": 1, "2000": 2, "3000": 3}


def parse_event(sub_type: str, raw: dict[str, Any]) -> Event:
    """The typed event of one notification.

    Raises:
        Malformed: a field this daemon relies on is missing or of the wrong shape.
    """
    if sub_type == REDEMPTION_ADD:
        reward = raw.get("reward")
        if not isinstance(reward, dict):
            raise Malformed("redemption without a reward")
        user_input = raw.get("user_input") or ""
        if not isinstance(user_input, str):
            raise Malformed("user_input is not text")
        return RedemptionAdded(
            broadcaster=_user(raw, "broadcaster_user_"),
            id=_text(raw, "id", 100),
            user=_user(raw, "user_"),
            user_input=user_input[:1000],
            status=_text(raw, "status", 40).lower(),
            reward=Reward(
                id=_text(reward, "id", 100),
                title=_text(reward, "title", 200),
                cost=_count(reward, "cost"),
                prompt=str(reward.get("prompt") or "")[:500],
            ),
            redeemed_at=_text(raw, "redeemed_at", 64),
        )
    if sub_type == STREAM_ONLINE:
        return StreamOnline(
            _user(raw, "broadcaster_user_"),
            str(raw.get("started_at") or "")[:64],
            str(raw.get("type") or "live")[:40],
        )
    if sub_type == STREAM_OFFLINE:
        return StreamOffline(_user(raw, "broadcaster_user_"))
    if sub_type == FOLLOW:
        return Follow(_user(raw, "broadcaster_user_"), _user(raw, "user_"))
    if sub_type == SUBSCRIBE:
        return Subscribe(
            _user(raw, "broadcaster_user_"),
            _user(raw, "user_"),
            _tier(raw),
            raw.get("is_gift") is True,
        )
    if sub_type == SUBSCRIPTION_GIFT:
        return SubscriptionGift(
            _user(raw, "broadcaster_user_"), _maybe_user(raw), _count(raw, "total"), _tier(raw)
        )
    if sub_type == CHEER:
        return Cheer(_user(raw, "broadcaster_user_"), _maybe_user(raw), _count(raw, "bits"))
    if sub_type == RAID:
        return Raid(
            _user(raw, "to_broadcaster_user_"),
            _user(raw, "from_broadcaster_user_"),
            _count(raw, "viewers"),
        )
    broadcaster = raw.get("broadcaster_user_id")
    return OtherEvent(broadcaster if isinstance(broadcaster, str) else None)


def _text(raw: Mapping[str, Any], key: str, limit: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Malformed(f"{key} missing or not text")
    return value


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise Malformed(f"{key} is not a count")
    return value


def _tier(raw: Mapping[str, Any]) -> int:
    tier = _TIERS.get(str(raw.get("tier")))
    if tier is None:
        raise Malformed("tier is not 1000, 2000 or 3000")
    return tier


def _user(raw: Mapping[str, Any], prefix: str) -> User:
    user_id = raw.get(f"{prefix}id")
    login = raw.get(f"{prefix}login")
    name = raw.get(f"{prefix}name")
    if not isinstance(user_id, str) or not _ID.fullmatch(user_id):
        raise Malformed(f"{prefix}id missing")
    if not isinstance(login, str) or not is_login(login.lower()):
        raise Malformed(f"{prefix}login is not a Twitch login")
    if not isinstance(name, str) or not name or len(name) > 100:
        name = login
    return User(user_id, login.lower(), name)


def _maybe_user(raw: Mapping[str, Any]) -> User | None:
    """The acting user, or None for an anonymous gift or cheer."""
    if raw.get("is_anonymous") is True or raw.get("user_id") is None:
        return None
    return _user(raw, "user_")
