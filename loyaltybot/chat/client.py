"""The twitchio 2.x adapter: connect, join, translate messages, send replies. Nothing else.

twitchio is built inside the running loop (never ``Client.run()``, which takes the loop
over). Three of its habits are handled here (twitch-reference §4, §6):

- its WebSocket URL is a module constant and it validates the token against id.twitch.tv
  itself: we validate against ``twitch.auth_url`` first, tell it the nick (so it skips its
  own call), and point the constant at ``twitch.irc_url``;
- after a close frame it does not reconnect, and after a drop or RECONNECT it rejoins only
  the channels it was created with: a supervisor reconnects and rejoins every configured
  channel, the ones added by a reload included;
- its send limiter raises instead of queueing: replies go out through our outbox, which
  keeps Twitch's limits, as raw PRIVMSG lines.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import structlog
import twitchio
import twitchio.websocket

from loyaltybot.chat.message import ChatMessage, MalformedMessage, Roles, parse_privmsg
from loyaltybot.chat.outbox import BotRole, Outbox
from loyaltybot.chat.registry import CommandHandler
from loyaltybot.clock import Clock
from loyaltybot.config import Config
from loyaltybot.points.viewers import normalize_login

log = structlog.get_logger(__name__)

SUPERVISE_EVERY = 1.0
RECONNECT_FIRST = 2.0  # seconds down before we step in (twitchio may come back by itself)
RECONNECT_MAX = 60.0  # the backoff doubles up to this
WELCOME_TIMEOUT = 15.0  # connected but no 001 in this long: a stuck login, start again
PING_EVERY = 60.0  # seconds between our own PINGs on a quiet connection
PONG_TIMEOUT = 10.0  # no PONG in this long: the connection is dead though TCP says open
MAX_CACHE_PER_CHANNEL = 10_000  # twitchio keeps every chatter it sees; we do not need them
OnMessage = Callable[[ChatMessage], None]
OnMembership = Callable[[str, str, bool], None]  # channel, login, joined


class ChatClient:
    """One bot account's chat connection."""

    def __init__(
        self,
        *,
        irc_url: str,
        token: str,
        nick: str,
        channels: Iterable[str],
        handler: CommandHandler,
        outbox: Outbox,
        clock: Clock,
        on_message: OnMessage | None = None,
        on_membership: OnMembership | None = None,
        send_wait: float = 5.0,
        ping_every: float = PING_EVERY,
        pong_timeout: float = PONG_TIMEOUT,
    ) -> None:
        self._irc_url = irc_url
        self._token = token.removeprefix("oauth:")
        self.nick = nick
        self._wanted: set[str] = set(channels)
        self._handler = handler
        self._outbox = outbox
        self._clock = clock
        self._on_message = on_message
        self._on_membership = on_membership
        self._send_wait = send_wait
        self._client: _Client | None = None
        self._joined: set[str] = set()
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._websocket_seen: object = None
        self._welcomed: object = None  # the websocket Twitch said 001 on
        self.ping_every = ping_every
        self.pong_timeout = pong_timeout
        self._last_heard = 0.0  # monotonic time of the last frame from Twitch
        self._ping_sent: float | None = None  # an unanswered PING of ours, since when
        self._closing = False
        self.reconnects = 0

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Connect and join; returns once connected (joins complete in the background)."""
        twitchio.websocket.HOST = self._irc_url  # one chat endpoint per process
        client = _Client(self, token=self._token, initial_channels=sorted(self._wanted))
        client._http.nick = self.nick  # validated by us against twitch.auth_url
        client._http.session = aiohttp.ClientSession()  # twitchio makes it in validate()
        self._client = client
        self._last_heard = self._clock.monotonic()
        await client.connect()
        self._supervisor = asyncio.create_task(self._supervise(), name="chat-supervisor")

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            session = self._client._http.session
            if session is not None and not session.closed:
                await session.close()

    def set_token(self, token: str) -> None:
        """A refreshed bot token: twitchio sends it on its next (re)connection."""
        self._token = token.removeprefix("oauth:")
        if self._client is not None:
            self._client._connection._token = self._token
            self._client._http.token = self._token

    @property
    def connected(self) -> bool:
        """Logged in on a live connection (Twitch sent 001 on this very websocket)."""
        connection = self._connection()
        return (
            connection is not None
            and connection.is_alive
            and self._welcomed is not None
            and self._welcomed is connection._websocket
        )

    @property
    def joined(self) -> frozenset[str]:
        return frozenset(self._joined)

    async def set_channels(self, channels: Iterable[str]) -> None:
        """Reload: join new channels and part removed ones on the same connection."""
        self._wanted = set(channels)
        await self._reconcile()

    async def apply(self, config: Config) -> None:
        await self.set_channels(config.channels)

    # ---- sending (the outbox's send function) --------------------------------------

    async def send(self, channel: str, text: str, reply_to: str | None) -> None:
        """One raw PRIVMSG. Waits briefly for a reconnect rather than failing at once."""
        connection = self._connection()
        if connection is None or not connection.is_alive:
            await asyncio.wait_for(self._connected.wait(), self._send_wait)
            connection = self._connection()
        if connection is None or not connection.is_alive:
            raise ConnectionError("not connected to Twitch chat")
        # Never let text end a line: a newline in a reply would start a new IRC command.
        safe = " ".join(text.replace("\r", " ").replace("\n", " ").split())
        if not safe:
            return
        prefix = f"@reply-parent-msg-id={reply_to} " if reply_to and _safe_id(reply_to) else ""
        await connection._websocket.send_str(f"{prefix}PRIVMSG #{channel} :{safe}\r\n")

    # ---- events from twitchio --------------------------------------------------------

    async def on_ready(self) -> None:
        self._connected.set()

    def on_raw_data(self, data: str) -> None:
        """Every frame from Twitch: notes the welcome (001) and our PONGs.

        twitchio 2.10 only sets its ready flag on the first connection with the channels it
        was created with; after a close frame or a RECONNECT its login stalls waiting for
        it. The welcome is what says "logged in", so we set the flag on it."""
        self._last_heard = self._clock.monotonic()
        connection = self._connection()
        if connection is None:
            return
        if ":tmi.twitch.tv 001 " in data and self._welcomed is not connection._websocket:
            self._welcomed = connection._websocket
            self._ping_sent = None
            connection.is_ready.set()
            self._connected.set()
            log.info("chat_connected", nick=self.nick, reconnects=self.reconnects)
        if self._ping_sent is not None and " PONG " in data:
            self._ping_sent = None

    async def on_channel_joined(self, channel: str) -> None:
        self._note_connection()
        self._joined.add(channel)
        log.info("chat_joined", channel=channel)

    async def on_message(self, message: Any) -> None:
        if message.echo or message.channel is None:
            return
        try:
            parsed = parse_privmsg(
                channel=message.channel.name,
                login=message.author.name or "",
                text=message.content or "",
                tags=message.tags or {},
                received_at=self._clock.monotonic(),
            )
        except MalformedMessage as exc:
            log.warning("chat_message_malformed", reason=str(exc))
            return
        if self._on_message is not None:
            self._on_message(parsed)
        if parsed.text.startswith("!"):
            self._outbox.submit_all(await self._handler.handle(parsed))

    async def on_userstate(self, user: Any) -> None:
        channel = user.channel.name if user.channel is not None else None
        if channel is None:
            return
        roles = Roles(
            broadcaster=bool(getattr(user, "is_broadcaster", False)),
            moderator=bool(getattr(user, "is_mod", False)),
            vip=bool(getattr(user, "is_vip", False)),
        )
        self._outbox.set_role(channel, BotRole.from_roles(roles))

    async def on_membership(self, channel: str | None, login: str | None, joined: bool) -> None:
        if not channel or not login:
            return
        login = normalize_login(login) or ""
        if not login or self._on_membership is None:
            return
        if login == self.nick:
            if not joined:
                self._joined.discard(channel)
            return
        self._on_membership(channel, login, joined)

    async def on_notice(self, text: str, msg_id: str | None, channel: str | None) -> None:
        level = log.warning if msg_id and msg_id.startswith("msg_") else log.info
        level("chat_notice", channel=channel, msg_id=msg_id, text=text[:200])

    async def on_error(self, error: Exception, data: str | None) -> None:
        """twitchio's default prints a raw traceback to stderr; log it as one event."""
        log.error(
            "chat_client_error", error=repr(error)[:300], line=(data or "")[:200] if data else None
        )

    # ---- supervision ------------------------------------------------------------------

    def _connection(self) -> Any:
        return None if self._client is None else self._client._connection

    def _note_connection(self) -> None:
        """A new WebSocket has joined nothing yet: forget what the old one had joined."""
        connection = self._connection()
        websocket = None if connection is None else connection._websocket
        if websocket is not self._websocket_seen:
            self._websocket_seen = websocket
            self._joined.clear()

    async def _supervise(self) -> None:
        """Once a second: rejoin what is missing, and bring a lost connection back.

        Losses: a TCP drop and a RECONNECT (twitchio reconnects, but rejoins only its first
        channels), a close frame (twitchio stays down), a connection that went silent (our
        PING gets no PONG) or a login that never completes. Reconnecting backs off from
        ``RECONNECT_FIRST`` seconds, doubling to ``RECONNECT_MAX``."""
        down_since: float | None = None
        backoff = RECONNECT_FIRST
        while not self._closing:
            await asyncio.sleep(SUPERVISE_EVERY)
            connection = self._connection()
            if connection is None:
                continue
            self._note_connection()
            now = self._clock.monotonic()
            if self.connected:
                down_since, backoff = None, RECONNECT_FIRST
                await self._reconcile()
                self._trim_cache(connection)
                self._forget_finished(connection)
                if await self._silent(connection, now):
                    down_since = now
                continue
            self._connected.clear()
            down_since = down_since if down_since is not None else now
            waited = now - down_since
            stuck = connection.is_alive and waited >= WELCOME_TIMEOUT
            if (not connection.is_alive and waited >= backoff) or stuck:
                down_since = now
                self.reconnects += 1
                log.warning("chat_reconnecting", after_seconds=round(waited, 1),
                            stuck_login=stuck)
                backoff = min(backoff * 2, RECONNECT_MAX)
                task = asyncio.create_task(connection._connect())
                task.add_done_callback(_log_failure)

    async def _silent(self, connection: Any, now: float) -> bool:
        """Send a PING on a quiet connection; True (and the socket closed) when an earlier
        one got no PONG in time: a dead connection that TCP still calls open."""
        if self._ping_sent is not None:
            if now - self._ping_sent < self.pong_timeout:
                return False
            log.warning("chat_pong_missed", after_seconds=round(now - self._ping_sent, 1))
            self._ping_sent = None
            self._welcomed = None
            with contextlib.suppress(Exception):
                await connection._websocket.close()
            return True
        if now - self._last_heard >= self.ping_every:
            self._ping_sent = now
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection._websocket.send_str("PING :loyaltybot\r\n")
        return False

    async def _reconcile(self) -> None:
        client = self._client
        if client is None or not self.connected:
            return
        missing = sorted(self._wanted - self._joined)
        extra = sorted(self._joined - self._wanted)
        if missing:
            pending = client._connection._join_pending
            missing = [c for c in missing if c not in pending and f"#{c}" not in pending]
            if missing:
                log.info("chat_joining", channels=missing)
                await client.join_channels(missing)
        if extra:
            log.info("chat_parting", channels=extra)
            await client.part_channels(extra)
            for channel in extra:
                self._joined.discard(channel)
                self._outbox.forget(channel)

    @staticmethod
    def _trim_cache(connection: Any) -> None:
        for channel, chatters in list(connection._cache.items()):
            if len(chatters) > MAX_CACHE_PER_CHANNEL:
                connection._cache[channel] = set()

    @staticmethod
    def _forget_finished(connection: Any) -> None:
        """twitchio keeps a task per line and drops the finished ones every 30 s: after a
        burst, freeing 100,000 of them at once stalled the loop for ~100 ms. Each second
        frees only that second's."""
        tasks = connection._background_tasks
        if tasks:
            connection._background_tasks = [task for task in tasks if not task.done()]


def _safe_id(value: str) -> bool:
    return len(value) <= 64 and all(c.isalnum() or c == "-" for c in value)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("chat_reconnect_failed", error=repr(task.exception())[:200])


class _Client(twitchio.Client):  # type: ignore[misc]
    """twitchio's client with its events forwarded to the adapter."""

    def __init__(self, adapter: ChatClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._adapter = adapter

    async def event_ready(self) -> None:
        await self._adapter.on_ready()

    async def event_raw_data(self, data: str) -> None:
        self._adapter.on_raw_data(data)

    async def event_channel_joined(self, channel: Any) -> None:
        await self._adapter.on_channel_joined(channel.name)

    async def event_message(self, message: Any) -> None:
        await self._adapter.on_message(message)

    async def event_userstate(self, user: Any) -> None:
        await self._adapter.on_userstate(user)

    async def event_join(self, channel: Any, user: Any) -> None:
        await self._adapter.on_membership(getattr(channel, "name", None), user.name, True)

    async def event_part(self, user: Any) -> None:
        channel = getattr(user.channel, "name", None) if user.channel is not None else None
        await self._adapter.on_membership(channel, user.name, False)

    async def event_notice(self, message: str, msg_id: str | None, channel: Any) -> None:
        await self._adapter.on_notice(message, msg_id, getattr(channel, "name", None))

    async def event_error(self, error: Exception, data: str | None = None) -> None:
        await self._adapter.on_error(error, data)


async def validate_token(session: Any, auth_url: str, token: str) -> dict[str, Any]:
    """Ask Twitch (``auth_url``/validate) who a token belongs to and what it may do.

    Raises:
        PermissionError: Twitch refused the token (a clear message, never the token).
        ConnectionError: Twitch could not be reached.
    """
    url = auth_url.rstrip("/") + "/validate"
    headers = {"Authorization": f"OAuth {token.removeprefix('oauth:')}"}
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.status == 401:
                raise PermissionError(
                    "Twitch refused the bot token (invalid or expired):"
                    " run `loyaltybot auth` or update twitch.bot_token"
                )
            if response.status != 200:
                raise ConnectionError(f"token validation failed with HTTP {response.status}")
            body: dict[str, Any] = await response.json(content_type=None)
            return body
    except aiohttp.ClientError as exc:
        raise ConnectionError(f"cannot reach {url}: {type(exc).__name__}") from None


Send = Callable[[str, str, str | None], Awaitable[None]]
