"""The Helix channel-points endpoints the rewards need (twitch-reference.md §2.3).

All of them act as the broadcaster: the Helix client must carry the broadcaster's user
token (``channel:manage:redemptions``). Only rewards created by our client id are
"manageable": their redemptions are the only ones we may mark FULFILLED or CANCELED.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyaltybot.twitch.helix import Helix, HelixError, TwitchUser

REWARDS_PATH = "/channel_points/custom_rewards"


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
