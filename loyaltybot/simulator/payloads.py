"""EventSub ``event`` objects, shaped field for field like the docs' examples (reference §3.8).

Pure builders: give them users and values, get the dict Twitch would put under
``"event"``. User-ish arguments are ``SimUser`` (anything with id, login,
display_name); ``None`` where the reference allows an anonymous user.
"""

from __future__ import annotations

from typing import Any, Protocol


class UserLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def login(self) -> str: ...

    @property
    def display_name(self) -> str: ...


def _user(prefix: str, user: UserLike | None) -> dict[str, Any]:
    if user is None:
        return {f"{prefix}id": None, f"{prefix}login": None, f"{prefix}name": None}
    return {
        f"{prefix}id": user.id,
        f"{prefix}login": user.login,
        f"{prefix}name": user.display_name,
    }


def redemption_event(
    *,
    redemption_id: str,
    broadcaster: UserLike,
    user: UserLike,
    reward_id: str,
    title: str,
    cost: int,
    prompt: str,
    user_input: str,
    redeemed_at: str,
    status: str = "unfulfilled",
) -> dict[str, Any]:
    """channel.channel_points_custom_reward_redemption.add (and .update with another status)."""
    return {
        "id": redemption_id,
        **_user("broadcaster_user_", broadcaster),
        **_user("user_", user),
        "user_input": user_input,
        "status": status,
        "reward": {"id": reward_id, "title": title, "cost": cost, "prompt": prompt},
        "redeemed_at": redeemed_at,
    }


def stream_online_event(
    *, stream_id: str, broadcaster: UserLike, started_at: str, kind: str = "live"
) -> dict[str, Any]:
    return {
        "id": stream_id,
        **_user("broadcaster_user_", broadcaster),
        "type": kind,
        "started_at": started_at,
    }


def stream_offline_event(*, broadcaster: UserLike) -> dict[str, Any]:
    return _user("broadcaster_user_", broadcaster)


def follow_event(*, user: UserLike, broadcaster: UserLike, followed_at: str) -> dict[str, Any]:
    """channel.follow v2."""
    return {
        **_user("user_", user),
        **_user("broadcaster_user_", broadcaster),
        "followed_at": followed_at,
    }


def subscribe_event(
    *, user: UserLike, broadcaster: UserLike, tier: str = "1000", is_gift: bool = False
) -> dict[str, Any]:
    return {
        **_user("user_", user),
        **_user("broadcaster_user_", broadcaster),
        "tier": tier,
        "is_gift": is_gift,
    }


def gift_event(
    *,
    user: UserLike | None,
    broadcaster: UserLike,
    total: int,
    tier: str = "1000",
    cumulative_total: int | None = None,
) -> dict[str, Any]:
    """channel.subscription.gift; ``user=None`` is an anonymous gift."""
    anonymous = user is None
    return {
        **_user("user_", user),
        **_user("broadcaster_user_", broadcaster),
        "total": total,
        "tier": tier,
        "cumulative_total": None if anonymous else (cumulative_total or total),
        "is_anonymous": anonymous,
    }


def cheer_event(
    *, user: UserLike | None, broadcaster: UserLike, bits: int, message: str = ""
) -> dict[str, Any]:
    """channel.cheer; ``user=None`` is an anonymous cheer."""
    return {
        "is_anonymous": user is None,
        **_user("user_", user),
        **_user("broadcaster_user_", broadcaster),
        "message": message,
        "bits": bits,
    }


def raid_event(
    *, from_broadcaster: UserLike, to_broadcaster: UserLike, viewers: int
) -> dict[str, Any]:
    return {
        **_user("from_broadcaster_user_", from_broadcaster),
        **_user("to_broadcaster_user_", to_broadcaster),
        "viewers": viewers,
    }
