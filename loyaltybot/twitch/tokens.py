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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import aiohttp
import structlog

from loyaltybot import logs
from loyaltybot.clock import Clock, SystemClock, to_ms
from loyaltybot.config import Config, Secret
from loyaltybot.db import Store
from loyaltybot.twitch.oauth import (
    AuthUnreachable,
    OAuthClient,
    RefreshRefused,
    TokenError,
    Validation,
)
from loyaltybot.twitch.token_store import StoredToken, load_token, save_token

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

REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry
VALIDATE_EVERY_SECONDS = 3600.0  # Twitch asks apps to validate tokens hourly


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

    async def apply(self, config: Config) -> None:
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

    def configured(self, login: str) -> Secret | None:
        """The token config.toml gives this account, if any."""
        return self._configured(login)[0]

    async def account(self, login: str) -> UserToken | None:
        """One account's token (config first, then stored), not yet validated; None when
        there is none. The CLI calls this for the one token a command needs.

        Raises:
            TokenError: a stored token was issued to another Twitch app.
        """
        return await self._source(login)

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
