"""The simulated Twitch's state: users, channels, roles, chatters, rewards and tokens.

Plain data with no I/O, shared by the IRC, Helix, OAuth and EventSub faces. Users are
small tuples in two dicts so that 100,000 of them cost a few megabytes and a fraction
of a second; chatters and subscribers are ``OrderedIndex``es so Helix can page them
without walking the whole list.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from loyaltybot.clock import Clock
from loyaltybot.simulator.ordered import OrderedIndex

if TYPE_CHECKING:
    from loyaltybot.simulator.eventsub import Delivery

BotRole = Literal["none", "vip", "moderator", "broadcaster"]
BOT_ROLES: tuple[str, ...] = ("none", "vip", "moderator", "broadcaster")
TIERS = ("1000", "2000", "3000")

_LOGIN = re.compile(r"[a-z0-9_]{1,25}")
_ALNUM = string.ascii_lowercase + string.digits

# Twitch's default name colours; a user who never picked one has an empty color tag.
_COLORS = (
    "#FF0000",
    "#0000FF",
    "#008000",
    "#B22222",
    "#FF7F50",
    "#9ACD32",
    "#FF4500",
    "#2E8B57",
    "#DAA520",
    "#D2691E",
    "#5F9EA0",
    "#1E90FF",
    "#FF69B4",
    "#8A2BE2",
    "#00FF7F",
)


class SimUser(NamedTuple):
    """A Twitch account. A tuple, not an object with a dict: 100k of them stay cheap."""

    id: str
    login: str
    display_name: str


@dataclass(slots=True)
class SubInfo:
    tier: str  # "1000" | "2000" | "3000"
    months: int = 1
    gifter_id: str | None = None

    @property
    def is_gift(self) -> bool:
        return self.gifter_id is not None


@dataclass(slots=True)
class SimReward:
    id: str
    channel: str
    title: str
    cost: int
    prompt: str = ""
    owner_client_id: str | None = None  # None: made on the Twitch dashboard, not by an app
    is_enabled: bool = True
    is_user_input_required: bool = False
    skip_queue: bool = False
    is_paused: bool = False
    background_color: str = "#9147FF"
    max_per_stream: int = 0
    max_per_user_per_stream: int = 0
    global_cooldown_seconds: int = 0


@dataclass(slots=True)
class SimRedemption:
    id: str
    channel: str
    reward_id: str
    user: SimUser
    user_input: str
    status: str  # UNFULFILLED | FULFILLED | CANCELED (Helix spelling)
    redeemed_at: str
    deliveries: list[Delivery] = field(default_factory=list)  # what redemption.add sent


@dataclass(slots=True)
class StreamInfo:
    id: str
    started_at: str
    title: str = "Simulated stream"
    game_id: str = "509658"
    game_name: str = "Just Chatting"
    language: str = "en"
    tags: list[str] = field(default_factory=lambda: ["English"])
    is_mature: bool = False
    viewer_count: int | None = None  # None: the number of chatters


@dataclass(slots=True)
class SimChannel:
    login: str
    broadcaster: SimUser
    bot_login: str | None = None
    broadcaster_type: str = "affiliate"
    stream: StreamInfo | None = None
    mods: set[str] = field(default_factory=set)  # user ids
    vips: set[str] = field(default_factory=set)
    subs: OrderedIndex[str, SubInfo] = field(default_factory=OrderedIndex)
    chatters: OrderedIndex[str, SimUser] = field(default_factory=OrderedIndex)
    chatted: set[str] = field(default_factory=set)  # user ids seen in chat (first-msg)
    rewards: dict[str, SimReward] = field(default_factory=dict)
    redemptions: dict[str, SimRedemption] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.broadcaster.id

    @property
    def live(self) -> bool:
        return self.stream is not None

    def is_broadcaster(self, user_id: str) -> bool:
        return user_id == self.broadcaster.id

    def is_mod(self, user_id: str) -> bool:
        return user_id in self.mods

    def is_privileged(self, user_id: str) -> bool:
        """Broadcaster, moderator or VIP: the roles that lift chat's send limits."""
        return user_id == self.broadcaster.id or user_id in self.mods or user_id in self.vips

    def can_moderate(self, user_id: str) -> bool:
        return user_id == self.broadcaster.id or user_id in self.mods


@dataclass(slots=True)
class ClientApp:
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: list[str] = field(default_factory=list)  # empty: any loopback URI


@dataclass(slots=True)
class Token:
    """An access token as Twitch's validate endpoint would describe it."""

    value: str = field(repr=False)
    client_id: str
    user: SimUser | None  # None for app tokens
    scopes: tuple[str, ...]
    expires_at: float  # wall-clock seconds
    refresh_token: str | None = field(default=None, repr=False)
    revoked: bool = False
    via_device: bool = False

    @property
    def is_app(self) -> bool:
        return self.user is None


class World:
    """Everything the simulated Twitch knows. Logins are lowercase; ids are strings."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.users: dict[str, SimUser] = {}  # by login
        self.users_by_id: dict[str, SimUser] = {}
        self.broadcaster_types: dict[str, str] = {}  # user id -> "affiliate" | "partner"
        self.channels: dict[str, SimChannel] = {}
        self.clients: dict[str, ClientApp] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.grants: dict[tuple[str, str], set[str]] = {}  # (user id, client id) -> scopes
        self._next_id = 100_000_001
        self._bulk_next: dict[str, int] = {}

    # ---- users -------------------------------------------------------------------------

    def add_user(
        self, login: str, user_id: str | None = None, display_name: str | None = None
    ) -> SimUser:
        login = check_login(login)
        user_id = str(user_id) if user_id is not None else None
        existing = self.users.get(login)
        if existing is not None:
            if user_id is not None and user_id != existing.id:
                raise ValueError(f"user {login} already exists with id {existing.id}")
            if display_name is not None and display_name != existing.display_name:
                existing = existing._replace(display_name=display_name)
                self.users[login] = self.users_by_id[existing.id] = existing
            return existing
        if user_id is None:
            user_id = self._allocate_id()
        elif user_id in self.users_by_id:
            raise ValueError(f"user id {user_id} is taken by {self.users_by_id[user_id].login}")
        user = SimUser(str(user_id), login, display_name or login)
        self.users[login] = user
        self.users_by_id[user.id] = user
        return user

    def add_users(self, n: int, prefix: str = "viewer") -> list[SimUser]:
        """n new users ``<prefix><k>`` with fresh ids; 100,000 take about 0.1 s."""
        if n < 0:
            raise ValueError("n must be >= 0")
        check_login(f"{prefix}{n}")
        start = self._bulk_next.get(prefix, 1)
        while f"{prefix}{start}" in self.users:
            start += 1
        base = self._next_id
        made: list[SimUser] = []
        users = self.users
        for k in range(start, start + n):
            login = f"{prefix}{k}"
            if login in users:
                continue
            made.append(SimUser(str(base + len(made)), login, login))
        self._next_id = base + len(made)
        while str(self._next_id) in self.users_by_id:
            self._next_id += 1
        self._bulk_next[prefix] = start + n
        users.update((u.login, u) for u in made)
        self.users_by_id.update((u.id, u) for u in made)
        return made

    def rename_user(self, login: str, new_login: str) -> SimUser:
        """A Twitch rename: same user id, new login (and display name)."""
        user = self.user(login)
        new_login = check_login(new_login)
        if new_login in self.users:
            raise ValueError(f"login {new_login} is taken")
        renamed = user._replace(login=new_login, display_name=new_login)
        del self.users[user.login]
        self.users[new_login] = self.users_by_id[user.id] = renamed
        return renamed

    def _allocate_id(self) -> str:
        while str(self._next_id) in self.users_by_id:
            self._next_id += 1
        user_id = str(self._next_id)
        self._next_id += 1
        return user_id

    def user(self, login: str) -> SimUser:
        """The user with that login (``@`` and case ignored); KeyError if unknown."""
        user = self.users.get(norm(login))
        if user is None:
            raise KeyError(f"no simulated user {login!r}: sim.add_user() it first")
        return user

    def ensure_user(self, who: str | SimUser) -> SimUser:
        """A SimUser as is, or the user with that login, created if unknown."""
        if isinstance(who, SimUser):
            return who
        return self.users.get(norm(who)) or self.add_user(norm(who))

    # ---- channels ----------------------------------------------------------------------

    def add_channel(
        self,
        login: str,
        *,
        bot_login: str | None = None,
        bot_role: str = "none",
        broadcaster_type: str = "affiliate",
    ) -> SimChannel:
        login = check_login(norm(login))
        if bot_role not in BOT_ROLES:
            raise ValueError(f"bot_role must be one of {', '.join(BOT_ROLES)}")
        if broadcaster_type not in ("", "affiliate", "partner"):
            raise ValueError("broadcaster_type must be '', 'affiliate' or 'partner'")
        broadcaster = self.ensure_user(login)
        self.broadcaster_types[broadcaster.id] = broadcaster_type
        channel = self.channels.get(login)
        if channel is None:
            channel = SimChannel(login, broadcaster)
            self.channels[login] = channel
        channel.broadcaster_type = broadcaster_type
        if bot_login is not None:
            bot = self.ensure_user(bot_login)
            channel.bot_login = bot.login
            if bot_role == "broadcaster" and bot.login != login:
                raise ValueError(
                    f"bot_role='broadcaster' means the bot is the channel's own account;"
                    f" {bot.login} is not {login}"
                )
            channel.mods.discard(bot.id)
            channel.vips.discard(bot.id)
            if bot_role == "moderator":
                channel.mods.add(bot.id)
            elif bot_role == "vip":
                channel.vips.add(bot.id)
        return channel

    def channel(self, name: str) -> SimChannel:
        channel = self.channels.get(norm(name))
        if channel is None:
            raise KeyError(f"no simulated channel {name!r}: sim.add_channel() it first")
        return channel

    def set_role(
        self,
        channel_name: str,
        login: str,
        *,
        mod: bool | None = None,
        vip: bool | None = None,
        subscriber_tier: int | str | Literal["unchanged"] | None = "unchanged",
        months: int | None = None,
        gifter: str | None = None,
    ) -> None:
        channel = self.channel(channel_name)
        user = self.ensure_user(login)
        if mod is not None:
            (channel.mods.add if mod else channel.mods.discard)(user.id)
        if vip is not None:
            (channel.vips.add if vip else channel.vips.discard)(user.id)
        if subscriber_tier is None:
            channel.subs.remove(user.id)
        elif subscriber_tier != "unchanged":
            tier = check_tier(subscriber_tier)
            gifter_id = self.ensure_user(gifter).id if gifter else None
            old = channel.subs.get(user.id)
            kept = old.months if old is not None else 1
            channel.subs.add(
                user.id, SubInfo(tier, months if months is not None else kept, gifter_id)
            )
        elif months is not None:
            sub = channel.subs.get(user.id)
            if sub is None:
                raise ValueError(f"{user.login} is not subscribed to {channel.login}")
            sub.months = months

    def set_live(self, channel_name: str, live: bool, **stream: object) -> SimChannel:
        channel = self.channel(channel_name)
        if not live:
            channel.stream = None
            return channel
        info = channel.stream or StreamInfo(
            id=str(40_000_000_000 + secrets.randbelow(10**9)),
            started_at=rfc3339(self.clock.now()),
        )
        for key, value in stream.items():
            if key not in StreamInfo.__dataclass_fields__:
                raise TypeError(f"unknown stream field {key!r}")
            setattr(info, key, value)
        channel.stream = info
        return channel

    # ---- tokens ------------------------------------------------------------------------

    def add_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> ClientApp:
        app = ClientApp(client_id, client_secret, list(redirect_uris))
        self.clients[client_id] = app
        return app

    def issue_token(
        self,
        login: str | None,
        scopes: Iterable[str] = (),
        *,
        client_id: str,
        expires_in: float = 14400,
        with_refresh: bool = True,
        via_device: bool = False,
    ) -> Token:
        """A user token (login given) or app token (login None), as Twitch would issue."""
        if client_id not in self.clients:
            raise ValueError(f"unknown client id {client_id!r}")
        user = self.ensure_user(login) if login is not None else None
        scope_tuple = tuple(dict.fromkeys(scopes))
        token = Token(
            value=random_token(30),
            client_id=client_id,
            user=user,
            scopes=scope_tuple,
            expires_at=self.clock.now() + expires_in,
            refresh_token=random_token(50) if with_refresh and user is not None else None,
            via_device=via_device,
        )
        self.tokens[token.value] = token
        if token.refresh_token:
            self.refresh_tokens[token.refresh_token] = token
        if user is not None:
            self.grants.setdefault((user.id, client_id), set()).update(scope_tuple)
        return token

    def valid_token(self, value: str) -> Token | None:
        """The token if Twitch would accept it now (known, not revoked, not expired)."""
        token = self.tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self.clock.now():
            return None
        return token

    def revoke_token(self, value: str) -> bool:
        token = self.tokens.get(value.removeprefix("oauth:"))
        if token is None or token.revoked:
            return False
        token.revoked = True
        if token.refresh_token:
            self.refresh_tokens.pop(token.refresh_token, None)
        return True

    def has_grant(self, user_id: str, client_id: str, any_of: Iterable[str]) -> bool:
        granted = self.grants.get((user_id, client_id), set())
        wanted = set(any_of)
        return not wanted or bool(granted & wanted)


def norm(name: str) -> str:
    """'#Alice' / '@Alice' / ' alice ' -> 'alice'."""
    return name.strip().lstrip("#@").lower()


def check_login(login: str) -> str:
    if not _LOGIN.fullmatch(login):
        raise ValueError(f"{login!r} is not a Twitch login (1-25 of a-z, 0-9, _)")
    return login


def check_tier(tier: int | str) -> str:
    text = str(tier)
    if text not in TIERS:
        raise ValueError("subscriber_tier must be 1000, 2000 or 3000 (or None)")
    return text


def color_for(user_id: str) -> str:
    """A stable colour per user; about one user in eight never picked one."""
    n = int(user_id) if user_id.isdigit() else sum(map(ord, user_id))
    n = (n * 2654435761) & 0xFFFFFFFF
    return "" if n % 8 == 0 else _COLORS[(n >> 3) % len(_COLORS)]


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def rfc3339(seconds: float, *, nanos: bool = False) -> str:
    """'2021-03-10T03:18:11Z', or with nanoseconds '…:11.123456789Z' (EventSub style)."""
    whole = int(seconds)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if not nanos:
        return base + "Z"
    ns = round((seconds - whole) * 1e9)
    if ns >= 1_000_000_000:
        return rfc3339(whole + 1, nanos=True)
    return f"{base}.{ns:09d}Z"


def created_at_for(user_id: str) -> str:
    """A plausible, stable account creation date."""
    n = int(user_id) if user_id.isdigit() else 0
    return rfc3339(1_300_000_000 + (n * 7919) % 350_000_000)
