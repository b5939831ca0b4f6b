"""The one place that builds Helix clients, for the daemon and the CLI alike.

Which token a call uses is a rule, stated here once:

- ``app()``: the app token (client credentials); webhook subscriptions need it. None
  without ``twitch.client_secret``.
- ``bot()``: the bot account's user token (config first, then the one ``loyaltybot
  auth`` stored); chat, the chatter list.
- ``broadcaster(channel)``: the channel owner's user token (config first, then stored);
  rewards, redemption status, subscribers, EventSub over WebSocket.
- ``lookup()``: for asking who a login is (Get Users): the app token when there is one,
  else the bot's.

The daemon calls ``Tokens.start()`` first, which validates every token at once; a CLI
command asks only for what it needs, and ``account()`` starts that one token on demand.
"""

from __future__ import annotations

import aiohttp

from loyaltybot.clock import Clock, SystemClock
from loyaltybot.config import Config
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import AppToken, StaticToken, TokenSource
from loyaltybot.twitch.tokens import Tokens


class TwitchClients:
    """Hands out Helix clients per role; each token source is made once and shared."""

    def __init__(
        self,
        config: Config,
        session: aiohttp.ClientSession,
        tokens: Tokens,
        *,
        clock: Clock | None = None,
        attempts: int = 4,
    ) -> None:
        self._config = config
        self._session = session
        self.tokens = tokens
        self._clock = clock or SystemClock()
        self._attempts = attempts
        self._app: AppToken | None = None

    async def apply(self, config: Config) -> None:
        """A reload: new addresses and credentials; the app token is fetched again."""
        self._config = config
        self._app = None

    def _helix(self, token: TokenSource) -> Helix:
        twitch = self._config.twitch
        return Helix(
            self._session,
            twitch.api_url,
            twitch.client_id,
            token,
            attempts=self._attempts,
            clock=self._clock,
        )

    def app(self) -> Helix | None:
        twitch = self._config.twitch
        if twitch.client_secret is None:
            return None
        if self._app is None:
            self._app = AppToken(
                self._session, twitch.auth_url, twitch.client_id, twitch.client_secret,
                clock=self._clock,
            )
        return self._helix(self._app)

    def bot(self) -> Helix:
        """Raises RuntimeError before ``Tokens.start()``."""
        return self._helix(self.tokens.bot())

    def broadcaster(self, channel: str) -> Helix | None:
        """None when the channel has no usable token (``tokens.problems`` says why)."""
        token = self.tokens.broadcaster(channel)
        return None if token is None else self._helix(token)

    async def account(self, login: str) -> Helix | None:
        """One account's token for a one-shot command (the CLI); None when there is none.
        A token written in config.toml is used as written; a stored one is validated (and
        refreshed if Twitch asks) first.

        Raises:
            TokenError: a stored token that Twitch refuses (the message says why).
        """
        configured = self.tokens.configured(login)
        if configured is not None:
            return self._helix(StaticToken(configured))
        token = await self.tokens.account(login)
        if token is None:
            return None
        await token.start()
        return self._helix(token)

    async def lookup(self) -> Helix | None:
        """Who is this login? The app token if configured, else the bot's; None if neither.

        Raises:
            TokenError: the bot's token exists but Twitch refuses it.
        """
        app = self.app()
        if app is not None:
            return app
        try:
            return self.bot()
        except RuntimeError:  # the CLI: the bot's token is started on demand
            return await self.account(self._config.twitch.bot_login)

