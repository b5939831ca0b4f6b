"""The Helix subset loyaltybot uses, at ``/helix``, with Twitch's auth, errors and rate limits.

Every request needs ``Authorization: Bearer <token>`` and a ``Client-Id`` matching the
token's client. Each (client, user) pair, and each client's app token, has an 800
points/minute bucket (1 point per call); answers carry ``Ratelimit-Limit/-Remaining/
-Reset`` and an empty bucket gives 429. Errors are ``{"error","status","message"}``.
Lists that can be long (chatters, subscriptions) page in O(log n + page).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from loyaltybot.clock import Clock
from loyaltybot.simulator.eventsub import EventSub
from loyaltybot.simulator.httputil import (
    HelixError,
    helix_error_response,
    int_param,
    json_response,
    require,
)
from loyaltybot.simulator.ordered import decode_cursor, encode_cursor
from loyaltybot.simulator.payloads import redemption_event
from loyaltybot.simulator.world import (
    SimChannel,
    SimRedemption,
    SimReward,
    SimUser,
    StreamInfo,
    Token,
    World,
    created_at_for,
)

TOKEN_KEY = web.RequestKey("sim_helix_token", Token)
_READ_REDEMPTIONS = ("channel:read:redemptions", "channel:manage:redemptions")
_TIER_POINTS = {"1000": 1, "2000": 2, "3000": 6}


@dataclass(frozen=True, slots=True)
class RedemptionUpdate:
    """A PATCH of redemption status the bot made (recorded whether Twitch accepted it or not)."""

    at: float
    redemption_id: str
    reward_id: str
    broadcaster_id: str
    status: str
    client_id: str
    accepted: bool
    http_status: int


class Bucket:
    """Twitch's token bucket: ``capacity`` points refilled evenly over a minute."""

    __slots__ = ("capacity", "tokens", "updated")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def take(self, now: float) -> bool:
        rate = self.capacity / 60.0
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        rate = self.capacity / 60.0
        full_in = (self.capacity - self.tokens) / rate
        return {
            "Ratelimit-Limit": str(self.capacity),
            "Ratelimit-Remaining": str(int(self.tokens)),
            "Ratelimit-Reset": str(math.ceil(now + full_in)),
        }


class HelixApi:
    def __init__(
        self,
        world: World,
        eventsub: EventSub,
        clock: Clock,
        *,
        points_per_minute: int = 800,
    ) -> None:
        self.world = world
        self.eventsub = eventsub
        self.clock = clock
        self.points_per_minute = points_per_minute
        self.redemption_updates: list[RedemptionUpdate] = []
        # (monotonic time, method, path?query) of recent requests, for tests to inspect
        self.requests: deque[tuple[float, str, str]] = deque(maxlen=100_000)
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._sub_points: dict[str, tuple[int, int]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/helix/users", self.get_users),
            web.get("/helix/streams", self.get_streams),
            web.get("/helix/chat/chatters", self.get_chatters),
            web.get("/helix/moderation/moderators", self.get_moderators),
            web.get("/helix/eventsub/subscriptions", self.get_eventsub),
            web.post("/helix/eventsub/subscriptions", self.post_eventsub),
            web.delete("/helix/eventsub/subscriptions", self.delete_eventsub),
            web.get("/helix/channel_points/custom_rewards", self.get_rewards),
            web.post("/helix/channel_points/custom_rewards", self.post_reward),
            web.patch("/helix/channel_points/custom_rewards", self.patch_reward),
            web.delete("/helix/channel_points/custom_rewards", self.delete_reward),
            web.get("/helix/channel_points/custom_rewards/redemptions", self.get_redemptions),
            web.patch("/helix/channel_points/custom_rewards/redemptions", self.patch_redemptions),
            web.get("/helix/subscriptions", self.get_subscriptions),
        ]

    # ---- auth, rate limit and errors for every /helix request ---------------------------

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/helix/"):
            return await handler(request)
        self.requests.append((self.clock.monotonic(), request.method, request.path_qs))
        try:
            token = self._authenticate(request)
        except HelixError as exc:
            return helix_error_response(exc.status, exc.message)
        now = time.time()
        key = (token.client_id, token.user.id if token.user else "")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self.points_per_minute, now)
        if not bucket.take(now):
            response: web.StreamResponse = helix_error_response(429, "Too Many Requests")
        else:
            request[TOKEN_KEY] = token
            try:
                response = await handler(request)
            except HelixError as exc:
                response = helix_error_response(exc.status, exc.message)
            except web.HTTPException as exc:
                response = helix_error_response(exc.status, exc.reason)
        response.headers.update(bucket.headers(now))
        return response

    def _authenticate(self, request: web.Request) -> Token:
        auth = request.headers.get("Authorization")
        if not auth:
            raise HelixError(401, "OAuth token is missing")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HelixError(401, "Invalid OAuth token")
        token = self.world.valid_token(value.strip())
        if token is None:
            raise HelixError(401, "Invalid OAuth token")
        client_id = request.headers.get("Client-Id")
        if not client_id:
            raise HelixError(401, "Client-Id header required")
        if client_id != token.client_id:
            raise HelixError(401, "Client ID and OAuth token do not match")
        return token

    @staticmethod
    def _user_token(request: web.Request, *scopes: str) -> tuple[Token, SimUser]:
        """The request's user token, which must hold one of ``scopes`` (if any are named)."""
        token = request[TOKEN_KEY]
        if token.user is None:
            raise HelixError(401, "A user access token is required")
        if scopes and not set(scopes) & set(token.scopes):
            raise HelixError(401, f"Missing scope: {' or '.join(scopes)}")
        return token, token.user

    def _broadcaster_channel(self, query: Mapping[str, str], user: SimUser) -> SimChannel:
        """The channel of ``broadcaster_id``, which must be the token's own user."""
        broadcaster_id = require(query, "broadcaster_id")
        if broadcaster_id != user.id:
            raise HelixError(
                403,
                "The ID in broadcaster_id must match the user ID found in the request's"
                " OAuth token.",
            )
        channel = self._channel_by_id(broadcaster_id)
        if channel is None:
            raise HelixError(400, "The broadcaster has no channel here")
        return channel

    def _channel_by_id(self, user_id: str) -> SimChannel | None:
        user = self.world.users_by_id.get(user_id)
        return self.world.channels.get(user.login) if user is not None else None

    # ---- users, streams -------------------------------------------------------------------

    def user_json(self, user: SimUser, token: Token | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": user.id,
            "login": user.login,
            "display_name": user.display_name,
            "type": "",
            "broadcaster_type": self.world.broadcaster_types.get(user.id, ""),
            "description": f"{user.display_name} on the simulated Twitch.",
            "profile_image_url": f"https://static-cdn.jtvnw.net/user-default-pictures-uv/{user.id}-profile_image-300x300.png",
            "offline_image_url": "",
            "view_count": 0,
            "created_at": created_at_for(user.id),
        }
        if token is not None and token.user == user and "user:read:email" in token.scopes:
            body["email"] = f"{user.login}@example.invalid"
        return body

    async def get_users(self, request: web.Request) -> web.Response:
        token = request[TOKEN_KEY]
        ids = request.query.getall("id", [])
        logins = request.query.getall("login", [])
        if len(ids) + len(logins) > 100:
            raise HelixError(400, "The sum of id and login parameters must not exceed 100")
        if not ids and not logins:
            if token.user is None:
                raise HelixError(400, 'Missing required parameter "id" or "login"')
            return json_response({"data": [self.user_json(token.user, token)]})
        seen: dict[str, SimUser] = {}
        for user_id in ids:
            user = self.world.users_by_id.get(user_id)
            if user is not None:
                seen[user.id] = user
        for login in logins:
            user = self.world.users.get(login.lower())
            if user is not None:
                seen[user.id] = user
        return json_response({"data": [self.user_json(u, token) for u in seen.values()]})

    def stream_json(self, channel: SimChannel, info: StreamInfo) -> dict[str, Any]:
        b = channel.broadcaster
        viewers = info.viewer_count if info.viewer_count is not None else len(channel.chatters)
        return {
            "id": info.id,
            "user_id": b.id,
            "user_login": b.login,
            "user_name": b.display_name,
            "game_id": info.game_id,
            "game_name": info.game_name,
            "type": "live",
            "title": info.title,
            "viewer_count": viewers,
            "started_at": info.started_at,
            "language": info.language,
            "thumbnail_url": f"https://static-cdn.jtvnw.net/previews-ttv/live_user_{b.login}-{{width}}x{{height}}.jpg",
            "tag_ids": [],
            "tags": list(info.tags),
            "is_mature": info.is_mature,
        }

    async def get_streams(self, request: web.Request) -> web.Response:
        q = request.query
        ids, logins = q.getall("user_id", []), q.getall("user_login", [])
        if len(ids) > 100 or len(logins) > 100:
            raise HelixError(400, "at most 100 user_id and 100 user_login parameters")
        if q.get("type", "all") not in ("all", "live"):
            raise HelixError(400, 'The parameter "type" must be all or live')
        first = int_param(q, "first", 20, 1, 100)
        offset = _offset(q)
        if ids or logins:
            wanted = set(ids)
            channels = [
                c
                for c in self.world.channels.values()
                if c.id in wanted or c.login in {name.lower() for name in logins}
            ]
        else:
            channels = list(self.world.channels.values())
        live = [c for c in channels if c.stream is not None]
        page = live[offset : offset + first]
        return json_response(
            {
                "data": [self.stream_json(c, c.stream) for c in page if c.stream is not None],
                "pagination": _next(offset + first, len(live)),
            }
        )

    # ---- chatters, moderators ---------------------------------------------------------------

    async def get_chatters(self, request: web.Request) -> web.Response:
        q = request.query
        token, user = self._user_token(request)
        broadcaster_id = require(q, "broadcaster_id")
        moderator_id = require(q, "moderator_id")
        if "moderator:read:chatters" not in token.scopes:
            raise HelixError(401, "Missing scope: moderator:read:chatters")
        first = int_param(q, "first", 100, 1, 1000)
        channel = self._channel_by_id(broadcaster_id)
        if channel is None:
            raise HelixError(400, "The broadcaster_id is not a channel")
        if moderator_id != user.id:
            raise HelixError(
                403, "The ID in moderator_id must match the user ID in the access token."
            )
        if not channel.can_moderate(user.id):
            raise HelixError(
                403, "The user in moderator_id must be one of the broadcaster's moderators."
            )
        after = 0
        if q.get("after"):
            decoded = decode_cursor(q["after"])
            if decoded is None:
                raise HelixError(400, 'The parameter "after" was malformed')
            after = decoded
        rows, more = channel.chatters.page(after, first)
        return json_response(
            {
                "data": [
                    {"user_id": u.id, "user_login": u.login, "user_name": u.display_name}
                    for _, u in rows
                ],
                "pagination": {"cursor": encode_cursor(more)} if more is not None else {},
                "total": len(channel.chatters),
            }
        )

    async def get_moderators(self, request: web.Request) -> web.Response:
        q = request.query
        _, user = self._user_token(request, "moderation:read", "channel:manage:moderators")
        channel = self._broadcaster_channel(q, user)
        first = int_param(q, "first", 20, 1, 100)
        offset = _offset(q)
        wanted = set(q.getall("user_id", []))
        mods = sorted(channel.mods)
        if wanted:
            mods = [m for m in mods if m in wanted]
        page = [self.world.users_by_id[m] for m in mods[offset : offset + first]]
        return json_response(
            {
                "data": [
                    {"user_id": u.id, "user_login": u.login, "user_name": u.display_name}
                    for u in page
                ],
                "pagination": _next(offset + first, len(mods)),
            }
        )

    # ---- EventSub ------------------------------------------------------------------------

    async def post_eventsub(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return json_response(self.eventsub.create(request[TOKEN_KEY], body), 202)

    async def get_eventsub(self, request: web.Request) -> web.Response:
        return json_response(self.eventsub.listing(request[TOKEN_KEY], request.query))

    async def delete_eventsub(self, request: web.Request) -> web.Response:
        self.eventsub.delete(request[TOKEN_KEY], require(request.query, "id"))
        return web.Response(status=204)

    # ---- channel points ----------------------------------------------------------------

    def reward_json(self, channel: SimChannel, reward: SimReward) -> dict[str, Any]:
        b = channel.broadcaster
        return {
            "broadcaster_id": b.id,
            "broadcaster_login": b.login,
            "broadcaster_name": b.display_name,
            "id": reward.id,
            "title": reward.title,
            "prompt": reward.prompt,
            "cost": reward.cost,
            "image": None,
            "default_image": {
                "url_1x": "https://static-cdn.jtvnw.net/custom-reward-images/default-1.png",
                "url_2x": "https://static-cdn.jtvnw.net/custom-reward-images/default-2.png",
                "url_4x": "https://static-cdn.jtvnw.net/custom-reward-images/default-4.png",
            },
            "background_color": reward.background_color,
            "is_enabled": reward.is_enabled,
            "is_user_input_required": reward.is_user_input_required,
            "max_per_stream_setting": {
                "is_enabled": reward.max_per_stream > 0,
                "max_per_stream": reward.max_per_stream,
            },
            "max_per_user_per_stream_setting": {
                "is_enabled": reward.max_per_user_per_stream > 0,
                "max_per_user_per_stream": reward.max_per_user_per_stream,
            },
            "global_cooldown_setting": {
                "is_enabled": reward.global_cooldown_seconds > 0,
                "global_cooldown_seconds": reward.global_cooldown_seconds,
            },
            "is_paused": reward.is_paused,
            "is_in_stock": True,
            "should_redemptions_skip_request_queue": reward.skip_queue,
            "redemptions_redeemed_current_stream": None,
            "cooldown_expires_at": None,
        }

    def _reward_channel(
        self, request: web.Request, scopes: tuple[str, ...]
    ) -> tuple[Token, SimChannel]:
        token, user = self._user_token(request, *scopes)
        channel = self._broadcaster_channel(request.query, user)
        if channel.broadcaster_type not in ("affiliate", "partner"):
            raise HelixError(403, "The broadcaster must be a partner or affiliate")
        return token, channel

    async def get_rewards(self, request: web.Request) -> web.Response:
        token, channel = self._reward_channel(request, _READ_REDEMPTIONS)
        q = request.query
        ids = q.getall("id", [])
        if len(ids) > 50:
            raise HelixError(400, "at most 50 id parameters")
        rewards = list(channel.rewards.values())
        if ids:
            rewards = [r for r in rewards if r.id in ids]
            if not rewards:
                raise HelixError(404, "Custom Reward Not Found")
        if q.get("only_manageable_rewards", "false").lower() == "true":
            rewards = [r for r in rewards if r.owner_client_id == token.client_id]
        return json_response({"data": [self.reward_json(channel, r) for r in rewards]})

    async def post_reward(self, request: web.Request) -> web.Response:
        token, channel = self._reward_channel(request, ("channel:manage:redemptions",))
        body = await _json_body(request)
        reward = SimReward(str(uuid.uuid4()), channel.login, "", 1, owner_client_id=token.client_id)
        _apply_reward_fields(reward, body, creating=True)
        if any(r.title.lower() == reward.title.lower() for r in channel.rewards.values()):
            raise HelixError(400, "CREATE_CUSTOM_REWARD_DUPLICATE_REWARD")
        if len(channel.rewards) >= 50:
            raise HelixError(400, "CREATE_CUSTOM_REWARD_TOO_MANY_REWARDS")
        channel.rewards[reward.id] = reward
        return json_response({"data": [self.reward_json(channel, reward)]})

    def _owned_reward(self, token: Token, channel: SimChannel, reward_id: str) -> SimReward:
        reward = channel.rewards.get(reward_id)
        if reward is None:
            raise HelixError(404, "Custom Reward Not Found")
        if reward.owner_client_id != token.client_id:
            raise HelixError(
                403,
                "The ID in the Client-Id header must match the client ID used to create"
                " the custom reward.",
            )
        return reward

    async def patch_reward(self, request: web.Request) -> web.Response:
        token, channel = self._reward_channel(request, ("channel:manage:redemptions",))
        reward = self._owned_reward(token, channel, require(request.query, "id"))
        body = await _json_body(request)
        title = body.get("title") if isinstance(body, dict) else None
        if isinstance(title, str) and any(
            r.title.lower() == title.lower() and r.id != reward.id for r in channel.rewards.values()
        ):
            raise HelixError(400, "UPDATE_CUSTOM_REWARD_DUPLICATE_REWARD")
        _apply_reward_fields(reward, body, creating=False)
        return json_response({"data": [self.reward_json(channel, reward)]})

    async def delete_reward(self, request: web.Request) -> web.Response:
        token, channel = self._reward_channel(request, ("channel:manage:redemptions",))
        reward = self._owned_reward(token, channel, require(request.query, "id"))
        del channel.rewards[reward.id]
        return web.Response(status=204)

    def redemption_json(self, channel: SimChannel, r: SimRedemption) -> dict[str, Any]:
        reward = channel.rewards.get(r.reward_id)
        b = channel.broadcaster
        return {
            "broadcaster_name": b.display_name,
            "broadcaster_login": b.login,
            "broadcaster_id": b.id,
            "id": r.id,
            "user_id": r.user.id,
            "user_name": r.user.display_name,
            "user_login": r.user.login,
            "user_input": r.user_input,
            "status": r.status,
            "redeemed_at": r.redeemed_at,
            "reward": {
                "id": r.reward_id,
                "title": reward.title if reward else "",
                "prompt": reward.prompt if reward else "",
                "cost": reward.cost if reward else 0,
            },
        }

    async def get_redemptions(self, request: web.Request) -> web.Response:
        token, channel = self._reward_channel(request, _READ_REDEMPTIONS)
        q = request.query
        reward = self._owned_reward(token, channel, require(q, "reward_id"))
        ids = q.getall("id", [])
        status = q.get("status")
        if not ids and status not in ("UNFULFILLED", "FULFILLED", "CANCELED"):
            raise HelixError(
                400, 'The parameter "status" is required: UNFULFILLED, FULFILLED or CANCELED'
            )
        first = int_param(q, "first", 20, 1, 50)
        offset = _offset(q)
        found = [r for r in channel.redemptions.values() if r.reward_id == reward.id]
        if ids:
            found = [r for r in found if r.id in ids]
        if status:
            found = [r for r in found if r.status == status]
        if q.get("sort", "OLDEST") == "NEWEST":
            found.reverse()
        page = found[offset : offset + first]
        return json_response(
            {
                "data": [self.redemption_json(channel, r) for r in page],
                "pagination": _next(offset + first, len(found)),
            }
        )

    async def patch_redemptions(self, request: web.Request) -> web.Response:
        """Update Redemption Status; every attempt is recorded in ``redemption_updates``."""
        q = request.query
        ids = q.getall("id", [])
        reward_id = q.get("reward_id", "")
        body = await _json_body(request)
        status = body.get("status") if isinstance(body, dict) else None
        token = request[TOKEN_KEY]
        try:
            response = self._update_redemptions(request, ids, reward_id, status)
        except HelixError as exc:
            self._record_updates(
                ids, reward_id, q.get("broadcaster_id", ""), status, token, exc.status
            )
            raise
        self._record_updates(ids, reward_id, q.get("broadcaster_id", ""), status, token, 200)
        return response

    def _record_updates(
        self,
        ids: list[str],
        reward_id: str,
        broadcaster_id: str,
        status: Any,
        token: Token,
        http_status: int,
    ) -> None:
        for redemption_id in ids or [""]:
            self.redemption_updates.append(
                RedemptionUpdate(
                    self.clock.monotonic(),
                    redemption_id,
                    reward_id,
                    broadcaster_id,
                    str(status),
                    token.client_id,
                    http_status == 200,
                    http_status,
                )
            )

    def _update_redemptions(
        self, request: web.Request, ids: list[str], reward_id: str, status: Any
    ) -> web.Response:
        token, channel = self._reward_channel(request, ("channel:manage:redemptions",))
        if not ids:
            raise HelixError(400, 'Missing required parameter "id"')
        if len(ids) > 50:
            raise HelixError(400, "at most 50 id parameters")
        if not reward_id:
            raise HelixError(400, 'Missing required parameter "reward_id"')
        if status not in ("FULFILLED", "CANCELED"):
            raise HelixError(400, "Invalid status provided")
        reward = self._owned_reward(token, channel, reward_id)
        found = [
            r
            for r in (channel.redemptions.get(i) for i in ids)
            if r is not None and r.reward_id == reward.id
        ]
        if not found:
            raise HelixError(
                404, f"Redemption ID {ids[0]} does not exist or is not owned by the broadcaster"
            )
        if any(r.status != "UNFULFILLED" for r in found):
            raise HelixError(400, "The redemption has already been fulfilled or cancelled")
        for r in found:
            r.status = status
            event = redemption_event(
                redemption_id=r.id,
                broadcaster=channel.broadcaster,
                user=r.user,
                reward_id=reward.id,
                title=reward.title,
                cost=reward.cost,
                prompt=reward.prompt,
                user_input=r.user_input,
                redeemed_at=r.redeemed_at,
                status=status.lower(),
            )
            self.eventsub.spawn(
                self.eventsub.notify(
                    "channel.channel_points_custom_reward_redemption.update", event
                )
            )
        return json_response({"data": [self.redemption_json(channel, r) for r in found]})

    # ---- subscriptions ---------------------------------------------------------------------

    async def get_subscriptions(self, request: web.Request) -> web.Response:
        q = request.query
        _, user = self._user_token(request, "channel:read:subscriptions")
        channel = self._broadcaster_channel(q, user)
        first = int_param(q, "first", 20, 1, 100)
        wanted = q.getall("user_id", [])
        if len(wanted) > 100:
            raise HelixError(400, "at most 100 user_id parameters")
        if wanted:
            rows = [(uid, s) for uid in wanted if (s := channel.subs.get(uid)) is not None]
            more = None
        else:
            after = 0
            if q.get("after"):
                decoded = decode_cursor(q["after"])
                if decoded is None:
                    raise HelixError(400, 'The parameter "after" was malformed')
                after = decoded
            rows, more = channel.subs.page(after, first)
        data = []
        b = channel.broadcaster
        for uid, sub in rows:
            subscriber = self.world.users_by_id[uid]
            gifter = self.world.users_by_id.get(sub.gifter_id) if sub.gifter_id else None
            data.append(
                {
                    "broadcaster_id": b.id,
                    "broadcaster_login": b.login,
                    "broadcaster_name": b.display_name,
                    "gifter_id": gifter.id if gifter else "",
                    "gifter_login": gifter.login if gifter else "",
                    "gifter_name": gifter.display_name if gifter else "",
                    "is_gift": gifter is not None,
                    "tier": sub.tier,
                    "plan_name": f"Channel Subscription ({b.login})",
                    "user_id": subscriber.id,
                    "user_name": subscriber.display_name,
                    "user_login": subscriber.login,
                }
            )
        return json_response(
            {
                "data": data,
                "pagination": {"cursor": encode_cursor(more)} if more is not None else {},
                "total": len(channel.subs),
                "points": self._points(channel),
            }
        )

    def _points(self, channel: SimChannel) -> int:
        """Subscriber points, recomputed only when the list changed."""
        cached = self._sub_points.get(channel.login)
        if cached is not None and cached[0] == channel.subs.version:
            return cached[1]
        points = sum(_TIER_POINTS.get(s.tier, 1) for _, s in channel.subs.items())
        self._sub_points[channel.login] = (channel.subs.version, points)
        return points


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return json.loads(await request.read())
    except ValueError:
        raise HelixError(400, "The request body is not valid JSON") from None


def _offset(query: MultiMapping[str]) -> int:
    after = query.get("after")
    if not after:
        return 0
    position = decode_cursor(after)
    if position is None:
        raise HelixError(400, 'The parameter "after" was malformed')
    return position


def _next(position: int, total: int) -> dict[str, str]:
    return {"cursor": encode_cursor(position)} if position < total else {}


_REWARD_FIELDS: dict[str, tuple[str, type]] = {
    "title": ("title", str),
    "prompt": ("prompt", str),
    "cost": ("cost", int),
    "is_enabled": ("is_enabled", bool),
    "background_color": ("background_color", str),
    "is_user_input_required": ("is_user_input_required", bool),
    "should_redemptions_skip_request_queue": ("skip_queue", bool),
    "is_paused": ("is_paused", bool),
    "max_per_stream": ("max_per_stream", int),
    "max_per_user_per_stream": ("max_per_user_per_stream", int),
    "global_cooldown_seconds": ("global_cooldown_seconds", int),
}


def _apply_reward_fields(reward: SimReward, body: Any, *, creating: bool) -> None:
    if not isinstance(body, dict):
        raise HelixError(400, "The request body must be a JSON object")
    if creating and ("title" not in body or "cost" not in body):
        raise HelixError(400, 'Missing required field "title" or "cost"')
    for key, value in body.items():
        spec = _REWARD_FIELDS.get(key)
        if spec is None or value is None:
            continue
        attr, kind = spec
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise HelixError(400, f'The field "{key}" must be an integer')
        if kind is not int and not isinstance(value, kind):
            raise HelixError(400, f'The field "{key}" must be a {kind.__name__}')
        setattr(reward, attr, value)
    if not reward.title or len(reward.title) > 45:
        raise HelixError(400, "The title must be 1 to 45 characters")
    if len(reward.prompt) > 200:
        raise HelixError(400, "The prompt must be at most 200 characters")
    if reward.cost < 1:
        raise HelixError(400, "The cost must be at least 1")
