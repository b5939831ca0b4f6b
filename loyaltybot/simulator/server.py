"""``Simulator``: one aiohttp server on loopback that plays Twitch (chat, Helix, OAuth, EventSub
over webhooks and over WebSocket at ``/eventsub/ws``).

Build it, ``await start()``, point the bot's ``irc_url``/``api_url``/``auth_url`` at it,
shape the world (users, channels, roles, live state, chatters, tokens, rewards), drive
chat and events, and assert on what the bot did (``sent``, ``rate_report()``,
``redemption_updates``, ``eventsub.deliveries``, ``eventsub_ws.deliveries``). See the
package docstring for the API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from loyaltybot.clock import Clock, SystemClock
from loyaltybot.simulator import payloads
from loyaltybot.simulator.eventsub import Delivery, EventSub
from loyaltybot.simulator.eventsub_ws import EventSubWs
from loyaltybot.simulator.faults import Faults
from loyaltybot.simulator.helix import HelixApi, RedemptionUpdate
from loyaltybot.simulator.irc import (
    ChatMessage,
    ClientLine,
    DroppedMessage,
    IrcConnection,
    IrcServer,
    SentMessage,
)
from loyaltybot.simulator.oauth import OAuth
from loyaltybot.simulator.ratelimit import RateViolation, SendLimits
from loyaltybot.simulator.world import (
    SimChannel,
    SimRedemption,
    SimReward,
    SimUser,
    Token,
    World,
    check_tier,
    norm,
    rfc3339,
)

REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"
BOT_SCOPES = ("chat:read", "chat:edit", "moderator:read:chatters", "moderator:read:followers")
BROADCASTER_SCOPES = (
    "channel:manage:redemptions",
    "channel:read:redemptions",
    "channel:read:subscriptions",
    "bits:read",
    "moderator:read:followers",
    "moderator:read:chatters",
    "moderation:read",
)


class Simulator:
    """A local Twitch. Every coroutine must run on the loop that called ``start``."""

    def __init__(
        self,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",  # noqa: S107 (the simulator's own test app)
        *,
        clock: Clock | None = None,
        ping_interval: float = 240.0,
        pong_timeout: float = 10.0,
        lockout_seconds: float = 0.0,
        membership_limit: int = 1000,
        helix_points_per_minute: int = 800,
        eventsub_timeout: float = 10.0,
        redirect_uris: Iterable[str] = (),
    ) -> None:
        self.clock = clock or SystemClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.world = World(self.clock)
        self.world.add_client(client_id, client_secret, redirect_uris)
        self.irc = IrcServer(
            self.world,
            self.clock,
            ping_interval=ping_interval,
            pong_timeout=pong_timeout,
            limits=SendLimits(lockout=lockout_seconds),
            membership_limit=membership_limit,
        )
        self.faults = Faults(helix_points_per_minute)
        self.eventsub = EventSub(self.world, self.clock, timeout=eventsub_timeout)
        # Attaches itself to ``eventsub``: Helix's websocket requests and every event reach it.
        self.eventsub_ws = EventSubWs(self.world, self.clock, self.eventsub)
        self.oauth = OAuth(self.world, self.clock)
        self.helix = HelixApi(
            self.world, self.eventsub, self.clock, points_per_minute=helix_points_per_minute
        )
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # ---- lifecycle -----------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.faults.middleware, self.helix.middleware],
            client_max_size=1024 * 1024,
        )
        app.router.add_get("/irc", self.irc.handle)
        app.router.add_get("/eventsub/ws", self.eventsub_ws.handle)
        app.router.add_routes(self.helix.routes())
        app.router.add_routes(self.oauth.routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self.eventsub.start()
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockname = self._runner.addresses[0]
        self.host, self.port = host, int(sockname[1])
        self.oauth.base_url = self.base_url

    async def close(self) -> None:
        for closer in reversed(self._closers):
            await closer()
        self._closers.clear()
        await self.irc.close()
        await self.eventsub_ws.shutdown()
        await self.eventsub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``await closer()`` at ``close()`` (crowds register their ``stop`` here)."""
        self._closers.append(closer)

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def irc_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/irc"

    @property
    def eventsub_ws_url(self) -> str:
        """Where an EventSub WebSocket client connects (``wss://eventsub.wss.twitch.tv/ws``)."""
        return self.base_url.replace("http://", "ws://", 1) + "/eventsub/ws"

    @property
    def api_url(self) -> str:
        return self.base_url + "/helix"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/oauth2"

    # ---- world -------------------------------------------------------------------------

    def add_user(
        self, login: str, user_id: str | None = None, display_name: str | None = None
    ) -> SimUser:
        return self.world.add_user(login, user_id, display_name)

    def add_users(self, n: int, prefix: str = "viewer") -> list[SimUser]:
        return self.world.add_users(n, prefix)

    def user(self, login: str) -> SimUser:
        return self.world.user(login)

    def channel(self, name: str) -> SimChannel:
        return self.world.channel(name)

    def add_channel(
        self,
        login: str,
        bot_login: str | None = None,
        bot_role: Literal["none", "vip", "moderator", "broadcaster"] = "none",
        *,
        broadcaster_type: str = "affiliate",
    ) -> SimChannel:
        return self.world.add_channel(
            login, bot_login=bot_login, bot_role=bot_role, broadcaster_type=broadcaster_type
        )

    def set_role(
        self,
        channel: str,
        login: str,
        *,
        mod: bool | None = None,
        vip: bool | None = None,
        subscriber_tier: int | str | Literal["unchanged"] | None = "unchanged",
        months: int | None = None,
        gifter: str | None = None,
    ) -> None:
        """Change roles; what is left out stays (``subscriber_tier=None`` unsubscribes)."""
        self.world.set_role(
            channel,
            login,
            mod=mod,
            vip=vip,
            subscriber_tier=subscriber_tier,
            months=months,
            gifter=gifter,
        )

    def set_live(self, channel: str, live: bool, **stream: Any) -> None:
        """Helix's view only (Get Streams); ``stream_online()`` also notifies EventSub."""
        self.world.set_live(channel, live, **stream)

    def set_chatters(self, channel: str, users: Iterable[str | SimUser]) -> None:
        """Replace the Get Chatters list (no IRC lines); unknown logins become users."""
        chan = self.world.channel(channel)
        chan.chatters.clear()
        self.add_chatters(channel, users)

    def add_chatters(self, channel: str, users: Iterable[str | SimUser]) -> int:
        chan = self.world.channel(channel)
        ensure = self.world.ensure_user
        return chan.chatters.add_many((u.id, u) for u in map(ensure, users))

    def remove_chatters(self, channel: str, users: Iterable[str | SimUser]) -> int:
        chan = self.world.channel(channel)
        removed = 0
        for who in users:
            user = who if isinstance(who, SimUser) else self.world.users.get(norm(who))
            if user is not None and chan.chatters.remove(user.id):
                removed += 1
        return removed

    def add_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        self.world.add_client(client_id, client_secret, redirect_uris)

    def issue_token(
        self,
        login: str,
        scopes: Iterable[str] = BOT_SCOPES,
        expires_in: float = 14400,
        *,
        client_id: str | None = None,
    ) -> str:
        """A user access token Twitch would validate (its refresh token: ``token_info``)."""
        return self.world.issue_token(
            login, scopes, client_id=client_id or self.client_id, expires_in=expires_in
        ).value

    def issue_app_token(
        self, *, client_id: str | None = None, expires_in: float = 5_011_271
    ) -> str:
        return self.world.issue_token(
            None, (), client_id=client_id or self.client_id, expires_in=expires_in
        ).value

    def token_info(self, token: str) -> Token | None:
        return self.world.tokens.get(token.removeprefix("oauth:"))

    def revoke_token(self, token: str) -> bool:
        return self.world.revoke_token(token)

    # ---- chat ----------------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        return self.irc.sent

    @property
    def dropped(self) -> list[DroppedMessage]:
        return self.irc.dropped

    @property
    def client_lines(self) -> Sequence[ClientLine]:
        return self.irc.client_lines

    @property
    def chat(self) -> Sequence[ChatMessage]:
        return self.irc.chat

    @property
    def connections(self) -> list[IrcConnection]:
        return [c for c in self.irc.connections.values() if not c.closed]

    async def say(
        self, channel: str, login: str | SimUser, text: str, **extra_tags: Any
    ) -> ChatMessage:
        """A viewer's PRIVMSG; tags come from roles, ``extra_tags`` (``bits=100``) override."""
        return self.irc.say(channel, login, text, extra_tags)

    async def usernotice(
        self,
        channel: str,
        login: str | SimUser,
        msg_id: str,
        *,
        message: str | None = None,
        recipient: str | None = None,
        **params: Any,
    ) -> str:
        """A USERNOTICE (sub, resub, subgift, raid...); sub/resub/subgift update the sub list."""
        user = self.world.ensure_user(login)
        given = {k.replace("_", "-").removeprefix("msg-param-"): str(v) for k, v in params.items()}
        target = self.world.ensure_user(recipient) if recipient else None
        plan = given.get("sub-plan", "1000")
        tier = plan if plan in ("1000", "2000", "3000") else "1000"
        if msg_id in ("sub", "resub"):
            months = int(given.get("cumulative-months", "1" if msg_id == "sub" else "2"))
            self.world.set_role(channel, user.login, subscriber_tier=tier, months=months)
        elif msg_id == "subgift" and target is not None:
            self.world.set_role(channel, target.login, subscriber_tier=tier, gifter=user.login)
        return self.irc.usernotice(channel, user, msg_id, params, message, target)

    async def join(self, channel: str, login: str | SimUser) -> None:
        """The user joins: in Get Chatters, and a membership JOIN line (rooms <= 1000)."""
        self.irc.join_users(channel, [self.world.ensure_user(login)])

    async def part(self, channel: str, login: str | SimUser) -> None:
        self.irc.part_users(channel, [self.world.ensure_user(login)])

    async def notice(self, channel: str, msg_id: str, text: str | None = None) -> None:
        self.irc.notice(channel, msg_id, text)

    async def roomstate(self, channel: str, **changes: Any) -> None:
        """A ROOMSTATE change, e.g. ``slow=10``, ``emote_only=1``."""
        self.irc.roomstate(channel, {k.replace("_", "-"): str(v) for k, v in changes.items()})

    async def wait_for_reply(
        self,
        channel: str | None = None,
        contains: Any = None,
        after: int | float | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the contract's name; a test helper's deadline)
    ) -> SentMessage:
        """The first accepted bot message (in that channel, containing that text or regex,
        after that index of ``sent`` (int) or monotonic time (float)); TimeoutError otherwise."""
        return await self.irc.wait_for_reply(
            channel, contains=contains, after=after, timeout=timeout
        )

    async def drop_connections(self, login: str | None = None) -> int:
        """TCP-drop every IRC connection (of that login); returns how many."""
        return await self.irc.drop(self.irc.select(login))

    async def send_reconnect(
        self, login: str | None = None, drop_after: float | None = None
    ) -> int:
        """``:tmi.twitch.tv RECONNECT`` to each connection; optionally drop them later."""
        conns = self.irc.select(login)
        for conn in conns:
            conn.push([":tmi.twitch.tv RECONNECT"])
        if drop_after is not None:

            async def later() -> None:
                await asyncio.sleep(drop_after)
                await self.irc.drop([c for c in conns if not c.closed])

            self.eventsub.spawn(later())
        return len(conns)

    async def send_raw(
        self, data: str, login: str | None = None, conn_id: int | None = None
    ) -> int:
        """Send ``data`` verbatim as one WebSocket frame (add CRLF yourself)."""
        conns = self.irc.select(login, conn_id)
        self.irc.send_raw(data, conns)
        return len(conns)

    def rate_report(self, channel: str | None = None) -> list[RateViolation]:
        """Messages the bot sent over Twitch's limits (each was dropped with msg_ratelimit)."""
        return self.irc.rate_report(channel)

    # ---- channel points and events ----------------------------------------------------

    @property
    def redemption_updates(self) -> list[RedemptionUpdate]:
        return self.helix.redemption_updates

    def add_reward(
        self,
        channel: str,
        title: str,
        cost: int = 100,
        prompt: str = "",
        *,
        client_id: str | None = None,
        input_required: bool = False,
        skip_queue: bool = False,
        enabled: bool = True,
        reward_id: str | None = None,
    ) -> SimReward:
        """A custom reward; ``client_id=None`` means made on Twitch's dashboard (no app owns it)."""
        chan = self.world.channel(channel)
        reward = SimReward(
            reward_id or str(uuid.uuid4()),
            chan.login,
            title,
            cost,
            prompt,
            owner_client_id=client_id,
            is_enabled=enabled,
            is_user_input_required=input_required,
            skip_queue=skip_queue,
        )
        chan.rewards[reward.id] = reward
        return reward

    def find_reward(self, channel: str, reward: str) -> SimReward:
        chan = self.world.channel(channel)
        found = chan.rewards.get(reward) or next(
            (r for r in chan.rewards.values() if r.title.lower() == reward.lower()), None
        )
        if found is None:
            raise KeyError(f"no reward {reward!r} in {chan.login}")
        return found

    async def redeem(
        self, channel: str, login: str | SimUser, reward: str, user_input: str = ""
    ) -> SimRedemption:
        """A viewer redeems a reward (by id or title): recorded UNFULFILLED (FULFILLED if the
        reward skips the queue) and sent to redemption.add subscriptions (``.deliveries``)."""
        chan = self.world.channel(channel)
        found = self.find_reward(channel, reward)
        user = self.world.ensure_user(login)
        redemption = SimRedemption(
            str(uuid.uuid4()),
            chan.login,
            found.id,
            user,
            user_input,
            "FULFILLED" if found.skip_queue else "UNFULFILLED",
            rfc3339(self.clock.now(), nanos=True),
        )
        chan.redemptions[redemption.id] = redemption
        event = payloads.redemption_event(
            redemption_id=redemption.id,
            broadcaster=chan.broadcaster,
            user=user,
            reward_id=found.id,
            title=found.title,
            cost=found.cost,
            prompt=found.prompt,
            user_input=user_input,
            redeemed_at=redemption.redeemed_at,
            status=redemption.status.lower(),
        )
        redemption.deliveries.extend(await self.eventsub.notify(REDEMPTION_ADD, event))
        return redemption

    async def stream_online(self, channel: str, **stream: Any) -> list[Delivery]:
        chan = self.world.set_live(channel, True, **stream)
        stream_id = chan.stream.id if chan.stream is not None else ""
        event = payloads.stream_online_event(
            stream_id=stream_id,
            broadcaster=chan.broadcaster,
            started_at=rfc3339(self.clock.now(), nanos=True),
        )
        return await self.eventsub.notify("stream.online", event)

    async def stream_offline(self, channel: str) -> list[Delivery]:
        chan = self.world.set_live(channel, False)
        return await self.eventsub.notify(
            "stream.offline", payloads.stream_offline_event(broadcaster=chan.broadcaster)
        )

    async def follow(self, channel: str, login: str | SimUser) -> list[Delivery]:
        chan = self.world.channel(channel)
        event = payloads.follow_event(
            user=self.world.ensure_user(login),
            broadcaster=chan.broadcaster,
            followed_at=rfc3339(self.clock.now(), nanos=True),
        )
        return await self.eventsub.notify("channel.follow", event)

    async def subscribe(
        self, channel: str, login: str | SimUser, tier: int | str = "1000", *, chat: bool = True
    ) -> list[Delivery]:
        """A new subscription: the sub list, a USERNOTICE sub (``chat``), channel.subscribe."""
        chan = self.world.channel(channel)
        user = self.world.ensure_user(login)
        tier = check_tier(tier)
        if chat:
            await self.usernotice(channel, user, "sub", sub_plan=tier)
        else:
            self.world.set_role(channel, user.login, subscriber_tier=tier, months=1)
        event = payloads.subscribe_event(user=user, broadcaster=chan.broadcaster, tier=tier)
        return await self.eventsub.notify("channel.subscribe", event)

    async def gift_subs(
        self,
        channel: str,
        login: str | SimUser | None,
        recipients: Sequence[str | SimUser],
        tier: int | str = "1000",
        *,
        chat: bool = True,
    ) -> list[Delivery]:
        """Gifted subs (``login=None``: anonymous): subgift USERNOTICEs, channel.subscribe
        with is_gift for each recipient, then channel.subscription.gift."""
        chan = self.world.channel(channel)
        tier = check_tier(tier)
        gifter = self.world.ensure_user(login) if login is not None else None
        deliveries = []
        for who in recipients:
            target = self.world.ensure_user(who)
            if chat and gifter is not None:
                await self.usernotice(
                    channel, gifter, "subgift", recipient=target.login, sub_plan=tier
                )
            else:
                self.world.set_role(
                    channel,
                    target.login,
                    subscriber_tier=tier,
                    gifter=gifter.login if gifter else None,
                )
            event = payloads.subscribe_event(
                user=target, broadcaster=chan.broadcaster, tier=tier, is_gift=True
            )
            deliveries += await self.eventsub.notify("channel.subscribe", event)
        gift = payloads.gift_event(
            user=gifter, broadcaster=chan.broadcaster, total=len(recipients), tier=tier
        )
        return deliveries + await self.eventsub.notify("channel.subscription.gift", gift)

    async def cheer(
        self,
        channel: str,
        login: str | SimUser | None,
        bits: int,
        message: str = "",
        *,
        chat: bool = True,
    ) -> list[Delivery]:
        """Bits: a PRIVMSG with a ``bits`` tag (``chat``, not for anonymous) and channel.cheer."""
        chan = self.world.channel(channel)
        user = self.world.ensure_user(login) if login is not None else None
        text = f"Cheer{bits} {message}".strip()
        if chat and user is not None:
            await self.say(channel, user, text, bits=bits)
        event = payloads.cheer_event(
            user=user, broadcaster=chan.broadcaster, bits=bits, message=text
        )
        return await self.eventsub.notify("channel.cheer", event)

    async def raid(
        self, channel: str, from_login: str | SimUser, viewers: int, *, chat: bool = True
    ) -> list[Delivery]:
        """An incoming raid: a USERNOTICE raid (``chat``) and channel.raid."""
        chan = self.world.channel(channel)
        raider = self.world.ensure_user(from_login)
        if chat:
            await self.usernotice(channel, raider, "raid", viewerCount=viewers)
        event = payloads.raid_event(
            from_broadcaster=raider, to_broadcaster=chan.broadcaster, viewers=viewers
        )
        return await self.eventsub.notify("channel.raid", event)
