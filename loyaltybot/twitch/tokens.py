"""Twitch user tokens: obtained by the device code flow, stored, validated, refreshed.

``loyaltybot auth`` runs Twitch's device code flow for the bot account (or, with
``--channel``, a broadcaster) and stores the token in the database (migration 0003).
The daemon then uses a :class:`UserToken` per Twitch account: it validates the token at
start and hourly, refreshes it shortly before it expires and after Twitch refuses it (a
401 makes Helix call ``invalidate()``), persists the new refresh token at once (Twitch
rotates them: the old one stops working), and says which scope is missing and how to
fix it. A token written in config.toml (``twitch.bot_token``,
``channels.X.broadcaster_token``) takes precedence over a stored one; it is validated
the same way but cannot be refreshed.

Tokens never reach logs or error messages: each new one is registered with the log
redactor the moment it is received.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import structlog

from loyaltybot import logs
from loyaltybot.clock import Clock, SystemClock, to_ms
from loyaltybot.config import Config, Secret
from loyaltybot.store import Store, Tx
from loyaltybot.twitch.auth import TokenError

log = structlog.get_logger(__name__)

# What each role needs (twitch-reference.md §2.4). The bot reads and writes chat and reads
# the chatter list as a moderator; the broadcaster's token manages redemptions and lets
# EventSub deliver subscriptions, cheers and follows.
BOT_SCOPES = ("chat:read", "chat:edit", "moderator:read:chatters")
BOT_REQUIRED = ("chat:read", "chat:edit")
BROADCASTER_SCOPES = (
    "channel:manage:redemptions",
    "channel:read:subscriptions",
    "bits:read",
    "moderator:read:followers",
    "moderator:read:chatters",
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry
VALIDATE_EVERY_SECONDS = 3600.0  # Twitch asks apps to validate tokens hourly
_TIMEOUT = aiohttp.ClientTimeout(total=15)


# ---- errors ------------------------------------------------------------------------------


class OAuthError(TokenError):
    """Twitch's OAuth service said no, or could not be reached. Never carries a token."""


class AuthUnreachable(OAuthError):
    pass


class RefreshRefused(OAuthError):
    """The refresh token is no longer valid (revoked, rotated elsewhere, password changed)."""


class DeviceFlowExpired(OAuthError):
    pass


class DeviceFlowDenied(OAuthError):
    pass


class MissingScopes(TokenError):
    def __init__(self, owner: str, missing: Sequence[str], fix: str) -> None:
        super().__init__(f"{owner} lacks {', '.join(missing)}: {fix}")
        self.owner = owner
        self.missing = tuple(missing)
        self.fix = fix


class WrongAccount(TokenError):
    def __init__(self, owner: str, expected: str, actual: str, fix: str) -> None:
        super().__init__(f"{owner} belongs to {actual}, not {expected}: {fix}")
        self.expected = expected
        self.actual = actual


# ---- what Twitch answers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    """GET /oauth2/validate: whose token it is, for which app, which scopes, how long left."""

    client_id: str
    login: str
    user_id: str
    scopes: frozenset[str]
    expires_in: int | None  # seconds; None (Twitch sends 0) = does not expire


@dataclass(frozen=True, slots=True)
class Grant:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: frozenset[str]
    expires_in: int | None


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class StoredToken:
    """One row of ``twitch_tokens``; the repr never shows the tokens."""

    login: str
    user_id: str
    client_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: frozenset[str]
    expires_at: int | None  # ms since the epoch
    obtained_at: int
    refreshed_at: int
    validated_at: int | None = None


# ---- the OAuth endpoints ---------------------------------------------------------------------


class OAuthClient:
    """Twitch's id.twitch.tv/oauth2 endpoints (or the simulator's), form-encoded like Twitch."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        client_id: str,
        client_secret: Secret | None = None,
    ) -> None:
        self._session = session
        self._base = auth_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret

    async def validate(self, access_token: str) -> Validation | None:
        """Who the token belongs to; None when Twitch says it is invalid (401)."""
        headers = {"Authorization": f"OAuth {access_token}"}
        status, body = await self._call("GET", "/validate", headers=headers)
        if status == 401:
            return None
        if status >= 500:
            raise AuthUnreachable(f"{self._base} is failing (HTTP {status})")
        if status != 200 or not isinstance(body, dict):
            raise OAuthError(f"Twitch could not validate the token (HTTP {status})")
        expires = _int(body.get("expires_in"))
        return Validation(
            client_id=str(body.get("client_id", "")),
            login=str(body.get("login", "")).lower(),
            user_id=str(body.get("user_id", "")),
            scopes=frozenset(str(s) for s in body.get("scopes") or ()),
            expires_in=expires if expires else None,
        )

    async def refresh(self, refresh_token: str) -> Grant:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.reveal()
        status, body = await self._call("POST", "/token", data=form)
        if status in (400, 401):
            raise RefreshRefused(f"Twitch refused the refresh token ({_message(body)})")
        return self._grant(status, body, "refresh the token")

    async def start_device(self, scopes: Iterable[str]) -> DeviceCode:
        form = {"client_id": self.client_id, "scopes": " ".join(scopes)}
        status, body = await self._call("POST", "/device", data=form)
        if status != 200 or not isinstance(body, dict) or "device_code" not in body:
            raise OAuthError(
                f"Twitch refused to start the device code flow ({_message(body)}, HTTP {status}):"
                " check twitch.client_id (the app must allow the device code flow)"
            )
        code = DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body.get("user_code", "")),
            verification_uri=str(body.get("verification_uri", "https://www.twitch.tv/activate")),
            expires_in=_int(body.get("expires_in")) or 1800,
            interval=max(1, _int(body.get("interval")) or 5),
        )
        logs.register_secret(code.device_code)
        return code

    async def poll_device(self, device: DeviceCode, scopes: Iterable[str]) -> Grant | str:
        """One poll: the grant, or Twitch's word for waiting (authorization_pending, slow_down)."""
        form = {
            "client_id": self.client_id,
            "scopes": " ".join(scopes),
            "device_code": device.device_code,
            "grant_type": DEVICE_GRANT,
        }
        if self._secret is not None:
            form["client_secret"] = self._secret.reveal()
        status, body = await self._call("POST", "/token", data=form)
        if status == 200:
            return self._grant(status, body, "issue the token")
        message = _message(body).strip().lower()
        if message in ("authorization_pending", "slow_down"):
            return message
        if "denied" in message:
            raise DeviceFlowDenied("the request was declined on Twitch")
        if "invalid device code" in message or "expired" in message:
            raise DeviceFlowExpired("the code expired before it was approved")
        raise OAuthError(f"Twitch refused the device code flow ({message or status})")

    def _grant(self, status: int, body: Any, what: str) -> Grant:
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            raise OAuthError(f"Twitch did not {what} (HTTP {status}: {_message(body)})")
        grant = Grant(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            scopes=frozenset(str(s) for s in body.get("scope") or ()),
            expires_in=_int(body.get("expires_in")) or None,
        )
        logs.register_secret(
            grant.access_token, *([grant.refresh_token] if grant.refresh_token else [])
        )
        return grant

    async def _call(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = self._base + path
        try:
            async with self._session.request(
                method, url, headers=headers, data=data, timeout=_TIMEOUT
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                return response.status, body
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise AuthUnreachable(f"cannot reach {self._base}: {type(exc).__name__}") from None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return logs.redact(str(body.get("message") or body.get("error") or "no reason given"))
    return "no reason given"


# ---- device code flow ------------------------------------------------------------------------


async def device_flow(
    oauth: OAuthClient,
    scopes: Sequence[str],
    *,
    on_code: Callable[[DeviceCode], None],
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Grant:
    """Ask Twitch for a device code, show it with ``on_code``, poll until it is approved.

    Polls at the interval Twitch gives, 5 s slower after each ``slow_down``, and gives
    up when the code expires.

    Raises:
        DeviceFlowExpired, DeviceFlowDenied, OAuthError (AuthUnreachable after 3 failed polls).
    """
    clock = clock or SystemClock()
    device = await oauth.start_device(scopes)
    on_code(device)
    deadline = clock.monotonic() + device.expires_in
    interval = float(device.interval)
    failures = 0
    while True:
        await sleep(interval)
        if clock.monotonic() >= deadline:
            raise DeviceFlowExpired("the code expired before it was approved")
        try:
            outcome = await oauth.poll_device(device, scopes)
        except AuthUnreachable:
            failures += 1
            if failures >= 3:
                raise
            continue
        failures = 0
        if isinstance(outcome, Grant):
            return outcome
        if outcome == "slow_down":
            interval += 5


# ---- persistence (sync functions for store.read / store.write) -------------------------------

_COLUMNS = (
    "login, user_id, client_id, access_token, refresh_token, scopes, expires_at,"
    " obtained_at, refreshed_at, validated_at"
)


def load_token(conn: sqlite3.Connection, login: str) -> StoredToken | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM twitch_tokens WHERE login = ?", (login,)).fetchone()
    if row is None:
        return None
    return StoredToken(
        login=row[0],
        user_id=row[1],
        client_id=row[2],
        access_token=row[3],
        refresh_token=row[4],
        scopes=frozenset(row[5].split()),
        expires_at=row[6],
        obtained_at=row[7],
        refreshed_at=row[8],
        validated_at=row[9],
    )


def save_token(tx: Tx, token: StoredToken) -> None:
    tx.conn.execute(
        f"INSERT INTO twitch_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (login) DO UPDATE SET user_id = excluded.user_id,"
        " client_id = excluded.client_id, access_token = excluded.access_token,"
        " refresh_token = excluded.refresh_token, scopes = excluded.scopes,"
        " expires_at = excluded.expires_at, obtained_at = excluded.obtained_at,"
        " refreshed_at = excluded.refreshed_at, validated_at = excluded.validated_at",
        (
            token.login,
            token.user_id,
            token.client_id,
            token.access_token,
            token.refresh_token,
            " ".join(sorted(token.scopes)),
            token.expires_at,
            token.obtained_at,
            token.refreshed_at,
            token.validated_at,
        ),
    )


def stored_logins(conn: sqlite3.Connection) -> list[str]:
    return [login for (login,) in conn.execute("SELECT login FROM twitch_tokens ORDER BY login")]


# ---- the token source ------------------------------------------------------------------------


def scopes_for(config: Config, login: str) -> tuple[str, ...]:
    """The scopes ``loyaltybot auth`` asks for this account: every role it has in the config."""
    wanted: list[str] = []
    if login == config.twitch.bot_login:
        wanted += BOT_SCOPES
    if login in config.channels:
        wanted += BROADCASTER_SCOPES
    return tuple(dict.fromkeys(wanted))


def auth_command(config: Config, login: str) -> str:
    """The command that (re)authorises this account."""
    if login == config.twitch.bot_login:
        return "`loyaltybot auth`"
    return f"`loyaltybot auth --channel {login}`"


TokenListener = Callable[[str], None]


class UserToken:
    """A user token for one Twitch account, satisfying the ``TokenSource`` protocol.

    ``start()`` validates it (refreshing a stored token Twitch no longer accepts) and checks
    the account and the required scopes. ``token()`` refreshes it shortly before it expires,
    after ``invalidate()`` and when the hourly validation fails. Refreshed tokens are
    written to the database before they are used, and listeners (``on_change``) hear of
    each new access token (the IRC client needs it to reconnect).
    """

    def __init__(
        self,
        oauth: OAuthClient,
        state: StoredToken,
        *,
        name: str,
        fix: str,
        store: Store | None,
        clock: Clock | None = None,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        validate_every: float = VALIDATE_EVERY_SECONDS,
    ) -> None:
        self._oauth = oauth
        self._state = state
        self.name = name  # "the bot token", "twitch.bot_token", "the token of alice"
        self._fix = fix  # what to run to fix it
        self._store = store  # None for a token from config.toml: never persisted or refreshed
        self._clock = clock or SystemClock()
        self._margin_ms = to_ms(refresh_margin)
        self._validate_ms = to_ms(validate_every)
        self._lock = asyncio.Lock()
        self._stale = False
        self._listeners: list[TokenListener] = []
        logs.register_secret(
            state.access_token, *([state.refresh_token] if state.refresh_token else [])
        )

    # ---- what callers read -----------------------------------------------------------------

    @property
    def login(self) -> str:
        return self._state.login

    @property
    def user_id(self) -> str:
        return self._state.user_id

    @property
    def scopes(self) -> frozenset[str]:
        return self._state.scopes

    @property
    def expires_at(self) -> int | None:
        return self._state.expires_at

    @property
    def from_config(self) -> bool:
        return self._store is None

    @property
    def refreshable(self) -> bool:
        return self._store is not None and self._state.refresh_token is not None

    def missing(self, scopes: Iterable[str]) -> list[str]:
        return [s for s in scopes if s not in self._state.scopes]

    def require(self, *scopes: str) -> None:
        """Raises MissingScopes naming every missing scope and the command that fixes it."""
        missing = self.missing(scopes)
        if missing:
            raise MissingScopes(self.name, missing, self._fix)

    def on_change(self, listener: TokenListener) -> None:
        """``listener(access_token)`` after every refresh (e.g. to update the IRC client)."""
        self._listeners.append(listener)

    # ---- TokenSource -------------------------------------------------------------------------

    async def start(self, required: Iterable[str] = ()) -> None:
        """Validate now; refresh if Twitch refuses it; check the account and ``required`` scopes.

        Raises:
            TokenError (WrongAccount, MissingScopes, RefreshRefused, AuthUnreachable ...):
                the message says what to do.
        """
        async with self._lock:
            await self._validate(at_start=True)
        self.require(*required)

    async def token(self) -> str:
        async with self._lock:
            now = to_ms(self._clock.now())
            expires = self._state.expires_at
            expiring = expires is not None and now >= expires - self._margin_ms
            if self._stale or (expiring and self.refreshable):
                await self._renew()
            elif now - (self._state.validated_at or 0) >= self._validate_ms:
                await self._validate(at_start=False)
            return self._state.access_token

    def invalidate(self) -> None:
        self._stale = True

    async def rebase(self, state: StoredToken, *, name: str, fix: str, store: Store | None) -> None:
        """Switch to another token for the same account (a changed config on SIGHUP).

        The object stays the same, so clients holding it keep working. The new token is
        validated first; if Twitch refuses it, the old one stays and TokenError is raised.
        """
        async with self._lock:
            before = (self._state, self.name, self._fix, self._store, self._stale)
            self.name, self._fix, self._store, self._state = name, fix, store, state
            self._stale = False
            try:
                await self._validate(at_start=True)
            except TokenError:
                self._state, self.name, self._fix, self._store, self._stale = before
                raise
            old = before[0].access_token
            logs.register_secret(self._state.access_token)
            if self._state.access_token != old:
                self._notify()

    async def reload(self) -> None:
        """Pick up a token another process stored (``loyaltybot auth`` while we run)."""
        if self._store is None:
            return
        async with self._lock:
            row = await self._store.read(lambda c: load_token(c, self._state.login))
            if row is not None and row.access_token != self._state.access_token:
                self._adopt(row)
                await self._validate(at_start=True)

    # ---- internals ---------------------------------------------------------------------------

    async def _validate(self, *, at_start: bool) -> None:
        try:
            found = await self._oauth.validate(self._state.access_token)
        except AuthUnreachable as exc:
            if at_start:
                raise
            # Keep the token (it worked an hour ago) and try again in a minute, not per call.
            retry_at = to_ms(self._clock.now()) - self._validate_ms + 60_000
            self._state = replace(self._state, validated_at=retry_at)
            log.warning("twitch_token_validation_skipped", account=self.login, error=str(exc))
            return
        if found is None:
            log.info("twitch_token_invalid", account=self.login, source=self.name)
            await self._renew()
            return
        self._check(found)
        now = to_ms(self._clock.now())
        self._state = replace(
            self._state,
            user_id=found.user_id or self._state.user_id,
            scopes=found.scopes,
            expires_at=now + found.expires_in * 1000 if found.expires_in else None,
            validated_at=now,
        )
        self._stale = False

    def _check(self, found: Validation) -> None:
        if found.login and found.login != self._state.login:
            raise WrongAccount(self.name, self._state.login, found.login, self._fix)
        if found.client_id and found.client_id != self._oauth.client_id:
            raise TokenError(
                f"{self.name} was issued to another Twitch app (client id {found.client_id},"
                f" config has {self._oauth.client_id}): {self._fix}"
            )

    async def _renew(self) -> None:
        """A fresh access token: another process's, or one from the refresh token."""
        if await self._adopt_newer():
            return
        refresh = self._state.refresh_token
        if self._store is None or refresh is None:
            # A config token cannot be refreshed: it is either still good or unusable.
            found = await self._oauth.validate(self._state.access_token)
            if found is None:
                raise TokenError(f"Twitch refused {self.name} (expired or revoked): {self._fix}")
            self._check(found)
            self._stale = False
            return
        try:
            grant = await self._oauth.refresh(refresh)
        except RefreshRefused:
            if await self._adopt_newer():  # another process used the refresh token first
                return
            raise RefreshRefused(
                f"{self.name} can no longer be refreshed (revoked on Twitch, or the"
                f" password changed): {self._fix}"
            ) from None
        now = to_ms(self._clock.now())
        new = replace(
            self._state,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token or refresh,
            scopes=grant.scopes or self._state.scopes,
            expires_at=now + grant.expires_in * 1000 if grant.expires_in else None,
            refreshed_at=now,
            validated_at=now,
        )
        await self._store.write(lambda tx: save_token(tx, new))
        self._adopt(new)
        self._stale = False
        log.info(
            "twitch_token_refreshed",
            account=self.login,
            expires_in_seconds=grant.expires_in,
        )

    async def _adopt_newer(self) -> bool:
        """Take the stored token if another process refreshed or re-authorised it."""
        if self._store is None:
            return False
        row = await self._store.read(lambda c: load_token(c, self._state.login))
        now = to_ms(self._clock.now())
        if (
            row is None
            or row.access_token == self._state.access_token
            or row.client_id != self._oauth.client_id
            or (row.expires_at is not None and now >= row.expires_at - self._margin_ms)
        ):
            return False
        self._adopt(row)
        self._stale = False
        return True

    def _adopt(self, state: StoredToken) -> None:
        logs.register_secret(
            state.access_token, *([state.refresh_token] if state.refresh_token else [])
        )
        changed = state.access_token != self._state.access_token
        self._state = state
        if changed:
            self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener(self._state.access_token)
            except Exception:
                log.exception("token_listener_failed", account=self.login)


# ---- every token the daemon needs ------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where an account's token comes from: the config (``store`` None) or the database."""

    state: StoredToken
    name: str
    fix: str
    store: Store | None


class Tokens:
    """The daemon's user tokens: one :class:`UserToken` per Twitch account.

    The bot's comes first (the daemon cannot chat without it); a broadcaster's is optional
    (without it, redemption status updates and follower/subscriber data are unavailable).
    Config tokens take precedence over stored ones. Each account keeps one ``UserToken``
    object for the life of the daemon, also across reloads, so clients may hold on to it.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock or SystemClock()
        self._oauth = OAuthClient(
            session, config.twitch.auth_url, config.twitch.client_id, config.twitch.client_secret
        )
        self._sources: dict[str, UserToken] = {}
        self._bot: UserToken | None = None
        self.problems: dict[str, str] = {}  # channel -> why it has no usable token

    @property
    def oauth(self) -> OAuthClient:
        return self._oauth

    async def start(self) -> None:
        """Load and validate the bot's token and every configured broadcaster's.

        Raises:
            TokenError: the bot has no usable token (the message says how to get one).
        """
        bot_login = self._config.twitch.bot_login
        bot = await self._source(bot_login)
        if bot is None:
            raise TokenError(
                f"no Twitch token for the bot account {bot_login}: run `loyaltybot auth`"
                " (or set twitch.bot_token)"
            )
        await bot.start(BOT_REQUIRED)
        self._warn_missing(bot, BOT_SCOPES)
        self._bot = bot
        for channel in self._config.channels:
            await self._start_broadcaster(channel)

    async def reload(self, config: Config) -> None:
        """Apply a new config (SIGHUP): changed config tokens, newly stored tokens, new channels.

        Never raises: a token that fails is logged (and its channel listed in ``problems``);
        the bot keeps its current token if the new one is unusable.
        """
        self._config = config
        for login, source in list(self._sources.items()):
            try:
                plan = await self._plan(login)
                configured = plan is not None and plan.store is None
                if plan is None:
                    raise TokenError(
                        f"{source.name} was removed and no token is stored for {login}"
                    )
                if configured != source.from_config or (
                    configured and plan.state.access_token != source._state.access_token
                ):
                    await source.rebase(plan.state, name=plan.name, fix=plan.fix, store=plan.store)
                    log.info("twitch_token_replaced", account=login, source=plan.name)
                else:
                    await source.reload()
            except TokenError as exc:
                log.error("twitch_token_reload_failed", account=login, error=str(exc))
                if login in config.channels and source is not self._bot:
                    self.problems[login] = str(exc)
        for channel in config.channels:
            if channel not in self._sources or channel in self.problems:
                await self._start_broadcaster(channel)

    def bot(self) -> UserToken:
        if self._bot is None:
            raise RuntimeError("Tokens.start() has not run")
        return self._bot

    def broadcaster(self, channel: str) -> UserToken | None:
        """The channel owner's token, or None (see ``problems[channel]`` for why)."""
        if channel in self.problems:
            return None
        return self._sources.get(channel)

    async def _start_broadcaster(self, channel: str) -> None:
        try:
            source = await self._source(channel)
            if source is None:
                key = f"channels.{channel}.broadcaster_token"
                self.problems[channel] = (
                    f"no broadcaster token for #{channel}: run"
                    f" `loyaltybot auth --channel {channel}` (or set {key})"
                )
                log.warning(
                    "broadcaster_token_missing", channel=channel, fix=self.problems[channel]
                )
                return
            if source is not self._bot:
                await source.start()
            self._warn_missing(source, BROADCASTER_SCOPES)
            self.problems.pop(channel, None)
        except TokenError as exc:
            self.problems[channel] = str(exc)
            log.error("broadcaster_token_unusable", channel=channel, error=str(exc))

    def _warn_missing(self, source: UserToken, wanted: Sequence[str]) -> None:
        missing = source.missing(wanted)
        if missing:
            log.warning(
                "twitch_token_scope_missing",
                account=source.login,
                missing=missing,
                fix=source._fix,
            )

    async def _source(self, login: str) -> UserToken | None:
        """The account's token source, made on first use (None: no token anywhere)."""
        if login in self._sources:
            return self._sources[login]
        plan = await self._plan(login)
        if plan is None:
            return None
        source = UserToken(
            self._oauth,
            plan.state,
            name=plan.name,
            fix=plan.fix,
            store=plan.store,
            clock=self._clock,
        )
        self._sources[login] = source
        return source

    def _configured(self, login: str) -> tuple[Secret | None, str]:
        """The token the config gives this account, and its key (the bot's key first)."""
        twitch = self._config.twitch
        if login == twitch.bot_login and twitch.bot_token is not None:
            return twitch.bot_token, "twitch.bot_token"
        channel = self._config.channels.get(login)
        if channel is not None and channel.broadcaster_token is not None:
            return channel.broadcaster_token, f"channels.{login}.broadcaster_token"
        return None, "twitch.bot_token" if login == twitch.bot_login else (
            f"channels.{login}.broadcaster_token"
        )

    async def _plan(self, login: str) -> _Plan | None:
        configured, key = self._configured(login)
        if configured is not None:
            now = to_ms(self._clock.now())
            state = StoredToken(
                login=login,
                user_id="",
                client_id=self._config.twitch.client_id,
                access_token=configured.reveal().removeprefix("oauth:"),
                refresh_token=None,
                scopes=frozenset(),
                expires_at=None,
                obtained_at=now,
                refreshed_at=now,
            )
            fix = (
                f"replace {key} in {self._config.path}, or remove it and run"
                f" {auth_command(self._config, login)}"
            )
            return _Plan(state, key, fix, None)
        row = await self._store.read(lambda c: load_token(c, login))
        if row is None:
            return None
        name = (
            "the bot token" if login == self._config.twitch.bot_login else f"the token of {login}"
        )
        fix = f"run {auth_command(self._config, login)} again"
        if row.client_id != self._config.twitch.client_id:
            raise TokenError(
                f"{name} was issued to another Twitch app (client id {row.client_id}): {fix}"
            )
        return _Plan(row, name, fix, self._store)
