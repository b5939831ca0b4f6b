"""The Helix channel-points endpoints the rewards need (twitch-reference.md §2.3).

All of them act as the broadcaster: the Helix client must carry the broadcaster's user
token (``channel:manage:redemptions``). Only rewards created by our client id are
"manageable": their redemptions are the only ones we may mark FULFILLED or CANCELED.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from loyaltybot.eventsub import events
from loyaltybot.eventsub.events import Malformed, RedemptionAdded
from loyaltybot.twitch.helix import Helix, HelixError, TwitchUser, pages

log = structlog.get_logger(__name__)

REWARDS_PATH = "/channel_points/custom_rewards"
REDEMPTIONS_PATH = "/channel_points/custom_rewards/redemptions"


@dataclass(frozen=True, slots=True)
class TwitchReward:
    id: str
    title: str


async def token_user(helix: Helix) -> TwitchUser:
    """Whose token this is (Get Users with no parameters).

    Raises:
        HelixError: Twitch refused, or answered with no user.
    """
    body = await helix.request("GET", "/users")
    data = body.get("data") if isinstance(body, dict) else None
    if not data:
        raise HelixError(0, "Twitch did not say whose token this is")
    item = data[0]
    return TwitchUser(str(item["id"]), str(item["login"]), str(item.get("display_name") or ""))


async def manageable_rewards(helix: Helix, broadcaster_id: str) -> list[TwitchReward]:
    """The channel's custom rewards that our client id created."""
    body = await helix.request(
        "GET",
        REWARDS_PATH,
        params={"broadcaster_id": broadcaster_id, "only_manageable_rewards": "true"},
    )
    return [
        TwitchReward(str(item["id"]), str(item["title"]))
        for item in (body.get("data") or [])
        if isinstance(item, dict) and "id" in item and "title" in item
    ]


async def create_reward(
    helix: Helix,
    broadcaster_id: str,
    *,
    title: str,
    cost: int,
    prompt: str,
    input_required: bool,
) -> TwitchReward:
    """Create a custom reward owned by our client id. Redemptions stay in the request
    queue (not skipped) so the bot can fulfil or cancel them.

    Raises:
        HelixError: e.g. 400 when a reward with that title already exists.
    """
    body = await helix.request(
        "POST",
        REWARDS_PATH,
        params={"broadcaster_id": broadcaster_id},
        json={
            "title": title,
            "cost": cost,
            "prompt": prompt,
            "is_enabled": True,
            "is_user_input_required": input_required,
            "should_redemptions_skip_request_queue": False,
        },
    )
    data = body.get("data") if isinstance(body, dict) else None
    if not data:
        raise HelixError(0, "Twitch did not return the new reward")
    return TwitchReward(str(data[0]["id"]), str(data[0]["title"]))


async def unfulfilled_redemptions(
    helix: Helix, broadcaster_id: str, reward_id: str, *, limit: int = 1000
) -> list[RedemptionAdded]:
    """Get Custom Reward Redemption, status UNFULFILLED, oldest first (one of our rewards):
    what Twitch still holds for the bot, as the events EventSub would have sent.

    Raises:
        HelixError: Twitch could not be asked.
    """
    params = [
        ("broadcaster_id", broadcaster_id),
        ("reward_id", reward_id),
        ("status", "UNFULFILLED"),
        ("sort", "OLDEST"),
        ("first", "50"),
    ]
    found: list[RedemptionAdded] = []
    async with contextlib.aclosing(pages(helix, REDEMPTIONS_PATH, params)) as listed:
        async for data in listed:
            for item in data:
                try:
                    found.append(_as_event(item))
                except (Malformed, TypeError) as exc:
                    log.warning("redemption_from_helix_malformed", reason=str(exc))
            if len(found) >= limit:
                break
    return found[:limit]


def _as_event(item: Any) -> RedemptionAdded:
    """A Helix redemption in EventSub's field names, parsed by the same code as events."""
    if not isinstance(item, dict):
        raise Malformed("a redemption is not an object")
    raw = {
        "id": item.get("id"),
        "broadcaster_user_id": item.get("broadcaster_id"),
        "broadcaster_user_login": item.get("broadcaster_login"),
        "broadcaster_user_name": item.get("broadcaster_name"),
        "user_id": item.get("user_id"),
        "user_login": item.get("user_login"),
        "user_name": item.get("user_name"),
        "user_input": item.get("user_input"),
        "status": item.get("status"),
        "reward": item.get("reward"),
        "redeemed_at": item.get("redeemed_at"),
    }
    event = events.parse_event(events.REDEMPTION_ADD, raw)
    if not isinstance(event, RedemptionAdded):  # parse_event's answer for this type
        raise Malformed("not a redemption")
    return event
