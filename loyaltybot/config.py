"""config.toml: read, resolve secrets, validate every key, hand out immutable objects.

Every problem is reported with the path of its key (``channels.alice.interval_minutes:
must be > 0``), all of them at once, so an operator fixes the file in one pass.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.settings import SETTING_KEYS, ChannelSettings

DEFAULT_PATHS = (Path("config.toml"), Path("/etc/loyaltybot/config.toml"))

_LOGIN = re.compile(r"[a-z0-9_]{1,25}")


# ---- secrets ---------------------------------------------------------------------------


class Secret:
    """A secret value that never prints: logs, errors and reprs show ``***``."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "inline") -> None:
        self._value = value
        self.source = source  # 'inline', 'env:NAME' or 'file:/path': safe to show

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(***, source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(value: Any) -> Secret:
    """``env:NAME`` reads the environment, ``file:/path`` reads a file, else inline."""
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string: the secret, env:NAME or file:/path")
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        resolved = os.environ[name]
        if not resolved:
            raise ValueError(f"environment variable {name} is empty")
        return Secret(resolved, value)
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            resolved = path.read_text("utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not resolved:
            raise ValueError(f"{path} is empty")
        return Secret(resolved, value)
    if not value:
        raise ValueError("must not be empty (leave the key out instead)")
    return Secret(value)


SecretValue = Annotated[Secret, BeforeValidator(resolve_secret)]


def _login(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    login = value.removeprefix("@").lower()
    if not _LOGIN.fullmatch(login):
        raise ValueError(f"{value!r} is not a Twitch login (letters, digits, underscore; 1-25)")
    return login


Login = Annotated[str, BeforeValidator(_login)]


def _channel_key(value: str) -> str:
    if not _LOGIN.fullmatch(value):
        raise ValueError(
            "a channel table is named by the channel's Twitch login, in lowercase"
            " (letters, digits, underscore)"
        )
    return value


ChannelKey = Annotated[str, AfterValidator(_channel_key)]


# ---- sections --------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True
    )


class DatabaseConfig(_Section):
    path: Path = Path("loyaltybot.db")
    synchronous: Literal["normal", "full"] = "normal"
    busy_timeout_ms: int = Field(5000, ge=100, le=600_000)

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise ValueError("must be a file path")
        return Path(value)


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


def _url(value: Any, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a URL string")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be a {' or '.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


class TwitchConfig(_Section):
    client_id: str = Field(min_length=1, max_length=100)
    client_secret: SecretValue | None = None
    bot_login: Login
    bot_token: SecretValue | None = None
    irc_url: str = "wss://irc-ws.chat.twitch.tv:443"
    api_url: str = "https://api.twitch.tv/helix"
    auth_url: str = "https://id.twitch.tv/oauth2"
    eventsub_ws_url: str = "wss://eventsub.wss.twitch.tv/ws"  # EventSub over WebSocket (§6.1)

    @field_validator("irc_url", "eventsub_ws_url", mode="before")
    @classmethod
    def _irc(cls, value: Any) -> str:
        return _url(value, ("ws", "wss"))

    @field_validator("api_url", "auth_url", mode="before")
    @classmethod
    def _http(cls, value: Any) -> str:
        return _url(value, ("http", "https"))


class WebConfig(_Section):
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    eventsub_path: str = "/twitch/eventsub"
    eventsub_secret: SecretValue | None = Field(None, validate_default=True)
    session_secret: SecretValue | None = None  # generated and stored in the database if absent

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string like 127.0.0.1:8080")
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"must be host:port, like 127.0.0.1:8080, got {value!r}")
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _public(cls, value: Any) -> str:
        return _url(value, ("http", "https"))

    @field_validator("eventsub_path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"/[A-Za-z0-9/_\-.]*", value):
            raise ValueError("must be a URL path starting with /")
        return value

    @field_validator("eventsub_secret", mode="after")
    @classmethod
    def _secret(cls, value: Secret | None, info: ValidationInfo) -> Secret | None:
        if value is None and info.data.get("public_url"):
            raise ValueError("is required when web.public_url is set (Twitch signs with it)")
        if value is not None:
            raw = value.reveal()
            if not 10 <= len(raw) <= 100 or not raw.isascii():
                raise ValueError("must be 10 to 100 ASCII characters (Twitch's rule)")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


RewardAction = Literal["grant_points", "chat", "title", "vote", "queue", "forward", "discord"]
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class KeyedProblems(ValueError):
    """Problems of keys below the value being validated, each with its path under it, so
    a rule about several keys (unique names, ascending hours) still names the exact key:
    ``channels.alice.levels[1].watch_hours``."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = list(problems)


def _webhook_url(value: Secret | None) -> Secret | None:
    """A Discord webhook: https (http only on loopback, for stand-ins). The message never
    repeats the value: it is a secret."""
    if value is None:
        return None
    parts = urlsplit(value.reveal())
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not parts.hostname or (parts.scheme != "https" and not loopback):
        raise ValueError("must be an https URL (the webhook URL Discord gives)")
    return value


_ACTION_NEEDS: Mapping[str, tuple[str, ...]] = {
    "grant_points": ("amount",),
    "chat": ("message",),
    "title": ("unlocks",),
    "forward": ("url",),
    "discord": ("message", "webhook_url"),
}


def _check_needs(model: BaseModel, action: str) -> None:
    """Each action's keys (SPEC §6), named where they are missing.

    Raises:
        KeyedProblems.
    """
    missing = [key for key in _ACTION_NEEDS.get(action, ()) if getattr(model, key) is None]
    if missing:
        raise KeyedProblems([((key,), f"is required for action {action!r}") for key in missing])


class RewardConfig(_Section):
    """A channel-point reward and what it does here (SPEC §6)."""

    title: str = Field(min_length=1, max_length=45)  # Twitch's limit on reward titles
    id: str | None = None
    action: RewardAction
    amount: int | None = Field(None, ge=1, le=MAX_POINTS)  # grant_points
    message: str | None = Field(None, min_length=1, max_length=500)  # chat template
    unlocks: str | None = Field(None, min_length=1, max_length=50)  # title: the viewer title
    url: str | None = None  # forward: a local URL
    timeout_seconds: float = Field(5.0, gt=0, le=60)  # forward
    retries: int = Field(3, ge=0, le=10)  # forward
    cost: int = Field(0, ge=0, le=MAX_POINTS)  # loyalty points taken on redemption
    cooldown_seconds: float = Field(0.0, ge=0, le=86_400)  # per user
    twitch_cost: int = Field(1000, ge=1)  # channel points, for `rewards sync`
    prompt: str = Field("", max_length=200)  # for `rewards sync`; asks for input when set
    webhook_url: SecretValue | None = None  # discord: the channel webhook's URL, a secret

    @field_validator("url", mode="before")
    @classmethod
    def _forward_url(cls, value: Any) -> str:
        return _url(value, ("http", "https"))

    @field_validator("webhook_url", mode="after")
    @classmethod
    def _discord(cls, value: Secret | None) -> Secret | None:
        return _webhook_url(value)

    @model_validator(mode="after")
    def _needs(self) -> RewardConfig:
        _check_needs(self, self.action)
        return self


ShopAction = Literal["chat", "title", "queue", "forward", "discord"]
SHOP_NAME_MAX_CHARS = 32
_SHOP_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{SHOP_NAME_MAX_CHARS}}}")
WEEK_SECONDS = 7 * 86_400


class ShopItemConfig(_Section):
    """One ``[[channels.<login>.shop]]`` item (SPEC §10.1), with the keys of reward actions.

    The dashboard's item form validates with this same model, so the file and the form
    accept the same items."""

    name: str  # what viewers type: !buy <name>; unique per channel, case-insensitively
    cost: int = Field(ge=1, le=MAX_POINTS)
    description: str = Field("", max_length=200)
    action: ShopAction = "chat"
    message: str | None = Field(None, min_length=1, max_length=500)  # chat, discord: template
    unlocks: str | None = Field(None, min_length=1, max_length=50)  # title
    url: str | None = None  # forward: a local URL the purchase is POSTed to
    webhook_url: SecretValue | None = None  # discord
    timeout_seconds: float = Field(5.0, gt=0, le=60)  # forward
    retries: int = Field(3, ge=0, le=10)  # forward, discord
    stock: int | None = Field(None, ge=1, le=MAX_POINTS)  # in all; absent = unlimited
    per_viewer: int | None = Field(None, ge=1, le=MAX_POINTS)  # per viewer per stream
    cooldown_seconds: float = Field(0.0, ge=0, le=WEEK_SECONDS)  # per viewer
    global_cooldown_seconds: float = Field(0.0, ge=0, le=WEEK_SECONDS)  # for the channel

    @field_validator("name", mode="after")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SHOP_NAME.fullmatch(value):
            raise ValueError(
                f"must be 1 to {SHOP_NAME_MAX_CHARS} letters, digits, _ or - (no spaces)"
            )
        return value

    @field_validator("url", mode="before")
    @classmethod
    def _forward_url(cls, value: Any) -> str:
        return _url(value, ("http", "https"))

    @field_validator("webhook_url", mode="after")
    @classmethod
    def _discord(cls, value: Secret | None) -> Secret | None:
        return _webhook_url(value)

    @model_validator(mode="after")
    def _needs(self) -> ShopItemConfig:
        _check_needs(self, self.action)
        return self

    @property
    def key(self) -> str:
        """The name as matched: ``!buy Hydrate`` buys ``hydrate``."""
        return self.name.casefold()


class LevelConfig(_Section):
    """One ``[[channels.<login>.levels]]`` level (SPEC §10.5)."""

    name: str
    watch_hours: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)

    @field_validator("name", mode="after")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > 50:
            raise ValueError("must be at most 50 characters")
        return value


GameName = Literal["gamble", "slots", "duel", "heist"]
GAME_NAMES: tuple[GameName, ...] = ("gamble", "slots", "duel", "heist")


class GamesConfig(_Section):
    """``[channels.<login>.games]`` (SPEC §10.4), with its defaults: the one schema of the
    games' settings. check-config, the dashboard's games form and the games' rules
    (``features.games.rules``) all validate with it. A key the file writes is the file's;
    the others are the dashboard's (``model_fields_set`` tells which)."""

    enabled: tuple[GameName, ...] = Field((), strict=False)  # default: none
    min_bet: int = Field(1, ge=1, le=MAX_POINTS)
    max_bet: int = Field(100_000, ge=1, le=MAX_POINTS)
    cooldown_seconds: float = Field(60.0, ge=0, le=WEEK_SECONDS, allow_inf_nan=False)  # viewer
    gamble_win_at: int = Field(51, ge=1, le=100)  # roll 1..100; this or more doubles the bet
    slots_symbols: tuple[str, ...] = Field(
        ("Kappa", "PogChamp", "LUL", "HeyGuys", "BibleThump"), strict=False
    )
    slots_pair_multiplier: float = Field(1.0, ge=0, le=1_000_000, allow_inf_nan=False)
    slots_triple_multiplier: float = Field(10.0, ge=0, le=1_000_000, allow_inf_nan=False)
    duel_accept_seconds: float = Field(60.0, ge=1, le=WEEK_SECONDS, allow_inf_nan=False)
    heist_join_seconds: float = Field(60.0, ge=1, le=WEEK_SECONDS, allow_inf_nan=False)
    heist_min_players: int = Field(2, ge=1, le=1_000_000)
    heist_success_percent: int = Field(50, ge=0, le=100)
    heist_payout_multiplier: float = Field(1.7, ge=0, le=1_000_000, allow_inf_nan=False)
    heist_cooldown_seconds: float = Field(300.0, ge=0, le=WEEK_SECONDS, allow_inf_nan=False)

    @field_validator("enabled", mode="after")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = [((i,), "appears twice") for i, name in enumerate(value) if name in value[:i]]
        if twice:
            raise KeyedProblems(twice)
        return value

    @field_validator("slots_symbols", mode="after")
    @classmethod
    def _symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """2 to 10 distinct words (a symbol is shown in chat: no spaces, at most 50)."""
        if not 2 <= len(value) <= 10:
            raise ValueError("must have from 2 to 10 entries")
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, symbol in enumerate(value):
            if not symbol or symbol.strip() != symbol or " " in symbol:
                problems.append(((i,), "must be one word, without spaces"))
            elif len(symbol) > 50:
                problems.append(((i,), "must be at most 50 characters"))
            elif symbol in value[:i]:
                problems.append(((i,), "appears twice"))
        if problems:
            raise KeyedProblems(problems)
        return value

    @model_validator(mode="after")
    def _bets(self) -> GamesConfig:
        if self.max_bet < self.min_bet:
            raise KeyedProblems([(("max_bet",), "must be >= min_bet")])
        return self


class ChannelConfig(_Section):
    """One [channels.<login>] table: loyalty settings plus what only the file says."""

    # TOML arrays arrive as lists; strict mode would refuse them for a tuple.
    ignored_users: tuple[Login, ...] = Field((), strict=False)
    admins: tuple[Login, ...] = Field((), strict=False)
    broadcaster_token: SecretValue | None = None
    rewards: tuple[RewardConfig, ...] = Field((), strict=False)
    shop: tuple[ShopItemConfig, ...] = Field((), strict=False)
    levels: tuple[LevelConfig, ...] = Field((), strict=False)
    games: GamesConfig | None = None  # None: no [channels.C.games] table, the dashboard's
    # every key of ChannelSettings is accepted too; see _split_settings
    settings: ChannelSettings = ChannelSettings()

    @model_validator(mode="before")
    @classmethod
    def _split_settings(cls, data: Any) -> Any:
        """Loyalty settings sit beside the other keys in the file; gather them."""
        if not isinstance(data, dict):
            return data
        if "settings" in data:
            raise ValueError("'settings' is not a key here: write the settings directly")
        rest = {k: v for k, v in data.items() if k not in SETTING_KEYS}
        rest["settings"] = {k: v for k, v in data.items() if k in SETTING_KEYS}
        return rest

    @property
    def file_settings(self) -> dict[str, Any]:
        """The settings this file owns: exactly the keys it writes."""
        return {key: getattr(self.settings, key) for key in self.settings.model_fields_set}

    @field_validator("rewards", mode="after")
    @classmethod
    def _unique_rewards(cls, value: tuple[RewardConfig, ...]) -> tuple[RewardConfig, ...]:
        titles = [r.title.casefold() for r in value]
        dupes = sorted({t for t in titles if titles.count(t) > 1})
        if dupes:
            raise ValueError(f"two rewards have the same title: {', '.join(dupes)}")
        return value

    @field_validator("shop", mode="after")
    @classmethod
    def _unique_items(cls, value: tuple[ShopItemConfig, ...]) -> tuple[ShopItemConfig, ...]:
        seen: dict[str, int] = {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, item in enumerate(value):
            if item.key in seen:
                problems.append(((i, "name"), f"is the name of item [{seen[item.key]}] too"))
            seen.setdefault(item.key, i)
        if problems:
            raise KeyedProblems(problems)
        return value

    @field_validator("levels", mode="after")
    @classmethod
    def _ascending(cls, value: tuple[LevelConfig, ...]) -> tuple[LevelConfig, ...]:
        """Unique names; each level's hours strictly above the one before (an equal
        threshold would make a level nobody can hold)."""
        seen: dict[str, int] = {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, level in enumerate(value):
            name = level.name.casefold()
            if name in seen:
                problems.append(((i, "name"), f"is the name of level [{seen[name]}] too"))
            seen.setdefault(name, i)
            if i and level.watch_hours <= value[i - 1].watch_hours:
                problems.append(
                    ((i, "watch_hours"), "must be more than the watch_hours of the level before")
                )
        if problems:
            raise KeyedProblems(problems)
        return value


class EventSubConfig(_Section):
    """How EventSub reaches the daemon (SPEC §6.1); None: webhook with a public URL, else
    WebSocket."""

    transport: Literal["webhook", "websocket"] | None = None


class EarningConfig(_Section):
    """Bounds on what earning keeps in memory: far above any real channel, and never silent
    (reaching one is logged with who was left out, and shown on /metrics and the overview)."""

    max_present: int = Field(5_000_000, ge=1_000, le=50_000_000)  # viewers per channel


class _Root(_Section):
    database: DatabaseConfig = DatabaseConfig()
    log: LogConfig = LogConfig()
    twitch: TwitchConfig
    web: WebConfig = WebConfig()
    eventsub: EventSubConfig = EventSubConfig()
    earning: EarningConfig = EarningConfig()
    channels: dict[ChannelKey, ChannelConfig] = Field(min_length=1)



@dataclass(frozen=True)
class Config:
    """The validated configuration; ``path`` is where it came from."""

    path: Path
    database: DatabaseConfig
    log: LogConfig
    twitch: TwitchConfig
    web: WebConfig
    channels: Mapping[str, ChannelConfig]
    eventsub: EventSubConfig = field(default_factory=EventSubConfig)
    earning: EarningConfig = field(default_factory=EarningConfig)

    def settings_from_file(self, channel: str) -> dict[str, Any]:
        return self.channels[channel].file_settings

    @property
    def eventsub_transport(self) -> Literal["webhook", "websocket"]:
        """The transport in force: as written, else webhook when Twitch can reach us."""
        if self.eventsub.transport is not None:
            return self.eventsub.transport
        return "webhook" if self.web.public_url else "websocket"


# ---- loading and errors ----------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    key: str  # dotted path, '' for the file as a whole
    message: str

    def render(self, filename: str) -> str:
        where = f"{filename}: {self.key}" if self.key else filename
        return f"{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [p.render(str(self.path)) for p in self.problems]


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit is not None:
        return Path(explicit)
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_PATHS[0]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate; relative database paths are relative to the config file.

    Raises:
        ConfigError: every problem found, each naming its key.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [Problem("", "no such file")]) from None
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, [Problem("", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [Problem("", f"invalid TOML: {exc}")]) from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    try:
        root = _Root.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc)) from None
    if root.eventsub.transport == "webhook" and not root.web.public_url:
        problem = Problem(
            "eventsub.transport",
            '"webhook" needs web.public_url and web.eventsub_secret (Twitch must reach this'
            ' daemon over https); without a public address use "websocket"',
        )
        raise ConfigError(path, [problem])
    database = root.database
    if not database.path.is_absolute():
        database = database.model_copy(update={"path": path.parent / database.path})
    return Config(
        path,
        database,
        root.log,
        root.twitch,
        root.web,
        dict(root.channels),
        root.eventsub,
        root.earning,
    )


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: list[str | int] = [part for part in error["loc"] if part != "[key]"]
        # The settings of a channel are gathered under a synthetic 'settings' key.
        if len(loc) >= 3 and loc[0] == "channels" and loc[2] == "settings":
            del loc[2]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, KeyedProblems):
            problems += [Problem(_key([*loc, *where]), text) for where, text in cause.problems]
            continue
        problems.append(Problem(_key(loc), _message(error)))
    return problems


def validation_problems(exc: ValidationError) -> list[Problem]:
    """Each problem of a model's validation with its key, as ``check-config`` words it
    (the dashboard's forms use it for the models they share with the file)."""
    return _problems(exc)


def _key(loc: Sequence[str | int]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    simple = {
        "extra_forbidden": "unknown key",
        "missing": "is required",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",  # lax mode: the dashboard's forms
        "int_parsing": "must be a whole number",
        "finite_number": "must be a finite number",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "dict_type": "must be a table",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
    }
    if kind in simple:
        return simple[kind]
    if kind == "greater_than":
        return f"must be > {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be >= {_number(ctx['ge'])}"
    if kind == "less_than":
        return f"must be < {_number(ctx['lt'])}"
    if kind == "less_than_equal":
        return f"must be <= {_number(ctx['le'])}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "string_too_short":
        return f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_short" and error["loc"] == ("channels",):
        return "add at least one [channels.<login>] table"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} entries"
    if kind == "string_pattern_mismatch":
        return "must be one word (letters, digits, underscore; at most 25)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)
