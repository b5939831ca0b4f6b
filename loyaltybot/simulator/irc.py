"""Twitch chat over WebSocket (``/irc``): login, CAP, JOIN/PART, PRIVMSG, PING, RECONNECT.

Every line a client sends is recorded with a monotonic timestamp; its PRIVMSGs are
checked against Twitch's send limits (``ratelimit.py``) and either accepted (recorded
in ``sent``, answered with USERSTATE, shown to the room's other connections) or
dropped with the NOTICE Twitch sends. Each connection has a bounded outgoing queue
and one writer task, so a slow reader never blocks the room (it is disconnected, as
Twitch disconnects slow consumers). Disconnecting is a TCP drop, never a close frame:
twitchio 2.10 only reconnects after a drop (reference §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from aiohttp import WSMsgType, web

from loyaltybot.clock import Clock
from loyaltybot.simulator import ircproto as proto
from loyaltybot.simulator.ratelimit import DUPLICATE, RULE_CHANNEL, RateViolation, SendLimits
from loyaltybot.simulator.world import SimChannel, SimUser, Token, World, norm

log = structlog.get_logger(__name__)

KNOWN_CAPS = {
    "twitch.tv/tags": "tags",
    "twitch.tv/commands": "commands",
    "twitch.tv/membership": "membership",
}
_ANONYMOUS = re.compile(r"justinfan\d+")
MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A PRIVMSG a client (the bot) sent and Twitch accepted."""

    at: float  # monotonic seconds when it arrived
    channel: str
    text: str
    conn_id: int
    login: str = ""
    reply_to: str | None = None  # reply-parent-msg-id, when it was a reply


@dataclass(frozen=True, slots=True)
class DroppedMessage:
    """A PRIVMSG the server refused: rate limit, duplicate, too long, no scope, no channel."""

    at: float
    channel: str
    text: str
    conn_id: int
    login: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClientLine:
    """A raw line a client sent (PASS shows as ``PASS oauth:***``)."""

    at: float
    conn_id: int
    line: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A PRIVMSG the simulator put into a channel on behalf of a viewer."""

    id: str
    at: float
    channel: str
    login: str
    text: str


Item = tuple[str, str]  # (formatted tags or "", the line without tags)


class IrcConnection:
    """One client WebSocket. ``channels`` and ``nick`` are what tests look at."""

    def __init__(
        self, conn_id: int, ws: web.WebSocketResponse, transport: Any, queue_size: int
    ) -> None:
        self.conn_id = conn_id
        self.ws = ws
        self._transport = transport
        self.nick: str | None = None
        self.user: SimUser | None = None
        self.token: Token | None = None
        self.anonymous = False
        self.registered = False
        self.password: str | None = None
        self.caps: set[str] = set()
        self.channels: set[str] = set()
        self.pongs = 0
        self.closed = False
        self.stalled = False  # a black hole: nothing in, nothing out, the socket open
        self.globaluserstate_sent = False
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<IrcConnection {self.conn_id} nick={self.nick} channels={sorted(self.channels)}>"

    def render(self, items: Iterable[Item], needs: str | None = None) -> list[str]:
        if needs is not None and needs not in self.caps:
            return []
        tagged = "tags" in self.caps
        return [f"{tags} {rest}" if tags and tagged else rest for tags, rest in items]

    def push(self, lines: Sequence[str]) -> None:
        """Queue one frame holding these lines; a full queue means a dead reader: drop it."""
        if not lines or self.closed or self.stalled:
            return
        try:
            self._queue.put_nowait("\r\n".join(lines) + "\r\n")
        except asyncio.QueueFull:
            log.warning("sim_irc_slow_consumer_dropped", conn_id=self.conn_id, nick=self.nick)
            self.abort()

    def push_raw(self, data: str) -> None:
        """Queue ``data`` as one frame, exactly as given."""
        if not self.closed and not self.stalled:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(data)

    def emit(self, items: Iterable[Item], needs: str | None = None) -> None:
        self.push(self.render(items, needs))

    def abort(self) -> None:
        """A plain TCP drop: no close frame."""
        if self.closed:
            return
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    async def flush(self, within: float = 1.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def writer(self) -> None:
        while True:
            frame = await self._queue.get()
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                self.abort()
                return
            finally:
                self._queue.task_done()


class IrcServer:
    def __init__(
        self,
        world: World,
        clock: Clock,
        *,
        ping_interval: float = 240.0,
        pong_timeout: float = 10.0,
        limits: SendLimits | None = None,
        membership_limit: int = 1000,
        queue_size: int = 20_000,
        history: int = 200_000,
    ) -> None:
        self.world = world
        self.clock = clock
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.limits = limits or SendLimits()
        self.membership_limit = membership_limit
        self.queue_size = queue_size
        self.connections: dict[int, IrcConnection] = {}
        self.rooms: dict[str, set[IrcConnection]] = {}
        self.sent: list[SentMessage] = []
        self.dropped: list[DroppedMessage] = []
        self.violations: list[RateViolation] = []
        self.join_violations: list[RateViolation] = []
        self.client_lines: deque[ClientLine] = deque(maxlen=history)
        self.chat: deque[ChatMessage] = deque(maxlen=10_000)
        self._joins: dict[str, deque[float]] = {}
        self._next_conn = 1
        self._waiters: list[tuple[Callable[[SentMessage], bool], asyncio.Future[SentMessage]]] = []
        self._gone = asyncio.Event()

    # ---- the WebSocket endpoint ------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        conn = IrcConnection(self._next_conn, ws, request.transport, self.queue_size)
        self._next_conn += 1
        self.connections[conn.conn_id] = conn
        conn.tasks = [
            asyncio.create_task(conn.writer()),
            asyncio.create_task(self._pinger(conn)),
        ]
        log.debug("sim_irc_connected", conn_id=conn.conn_id)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    for line in proto.split_frame(msg.data):
                        self._on_line(conn, line)
                elif msg.type is WSMsgType.ERROR:
                    break
        except ConnectionError:
            pass
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: IrcConnection) -> None:
        conn.closed = True
        for task in conn.tasks:
            task.cancel()
        self.connections.pop(conn.conn_id, None)
        for name in list(conn.channels):
            self._leave(conn, name, echo=False)
        self._gone.set()
        log.debug("sim_irc_disconnected", conn_id=conn.conn_id, nick=conn.nick)

    async def _pinger(self, conn: IrcConnection) -> None:
        while not conn.closed:
            await asyncio.sleep(self.ping_interval)
            if conn.stalled:
                continue
            before = conn.pongs
            conn.push([f"PING :{proto.SERVER}"])
            await asyncio.sleep(self.pong_timeout)
            if conn.pongs == before:
                log.info("sim_irc_ping_timeout", conn_id=conn.conn_id, nick=conn.nick)
                conn.abort()
                return

    # ---- client lines ----------------------------------------------------------------------

    def _on_line(self, conn: IrcConnection, line: str) -> None:
        now = self.clock.monotonic()
        shown = "PASS oauth:***" if line[:5].upper() == "PASS " else line
        self.client_lines.append(ClientLine(now, conn.conn_id, shown))
        msg = proto.parse_line(line)
        if msg is None or conn.closed or conn.stalled:
            return
        handler = self._commands.get(msg.command)
        if handler is not None:
            handler(self, conn, msg, now)
        elif conn.registered:
            conn.push([f":{proto.SERVER} 421 {conn.nick} {msg.command} :Unknown command"])

    def _pass(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        if not conn.registered and msg.params:
            conn.password = msg.params[0].removeprefix("oauth:")

    def _nick(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        if conn.registered or not msg.params:
            return
        nick = msg.params[0].lower()
        if conn.password is None:
            if _ANONYMOUS.fullmatch(nick):
                conn.anonymous = True
                self._welcome(conn, nick)
                return
            self._refuse(conn, "Improperly formatted auth")
            return
        token = self.world.valid_token(conn.password)
        if (
            token is None
            or token.user is None
            or token.user.login != nick
            or "chat:read" not in token.scopes
        ):
            self._refuse(conn, "Login authentication failed")
            return
        conn.token = token
        conn.user = token.user
        self._welcome(conn, nick)

    def _welcome(self, conn: IrcConnection, nick: str) -> None:
        conn.nick = nick
        conn.registered = True
        conn.push(proto.welcome_lines(nick))
        self._globaluserstate(conn, delay=0.0)

    def _globaluserstate(self, conn: IrcConnection, delay: float) -> None:
        """GLOBALUSERSTATE once the login is done and ``commands`` is on.

        twitchio asks for its capabilities one CAP REQ at a time after NICK; then the
        line waits a moment so that ``tags``, requested next, is on when it is rendered.
        """
        if conn.globaluserstate_sent or conn.user is None or "commands" not in conn.caps:
            return
        conn.globaluserstate_sent = True
        tags = proto.format_tags(proto.globaluserstate_tags(conn.user))
        line = (tags, f":{proto.SERVER} GLOBALUSERSTATE")
        if delay <= 0:
            conn.emit([line])
        else:
            asyncio.get_running_loop().call_later(delay, lambda: conn.emit([line]))

    def _refuse(self, conn: IrcConnection, text: str) -> None:
        conn.push([f":{proto.SERVER} NOTICE * :{text}"])
        log.info("sim_irc_login_refused", conn_id=conn.conn_id, reason=text)
        asyncio.get_running_loop().create_task(self._drop_after_flush(conn))

    async def _drop_after_flush(self, conn: IrcConnection) -> None:
        await conn.flush()
        await asyncio.sleep(0.05)
        conn.abort()

    def _cap(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        sub = msg.params[0].upper() if msg.params else ""
        if sub == "LS":
            conn.push([f":{proto.SERVER} CAP * LS :{' '.join(KNOWN_CAPS)}"])
        elif sub == "REQ" and len(msg.params) > 1:
            wanted = msg.params[-1]
            names = wanted.split()
            if names and all(name.lstrip("-") in KNOWN_CAPS for name in names):
                for name in names:
                    short = KNOWN_CAPS[name.lstrip("-")]
                    (conn.caps.discard if name.startswith("-") else conn.caps.add)(short)
                conn.push([f":{proto.SERVER} CAP * ACK :{wanted}"])
                if conn.registered:
                    self._globaluserstate(conn, delay=0.02)
            else:
                conn.push([f":{proto.SERVER} CAP * NAK :{wanted}"])

    def _join(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        if not conn.registered or not msg.params:
            return
        for raw in msg.params[0].split(","):
            name = norm(raw)
            if not name:
                continue
            self._count_join(conn, name, now)
            channel = self.world.channels.get(name)
            if channel is None:
                continue  # Twitch silently drops a JOIN to a channel that does not exist
            self._enter(conn, channel)

    def _count_join(self, conn: IrcConnection, name: str, now: float) -> None:
        who = conn.nick or ""
        times = self._joins.setdefault(who, deque())
        while times and times[0] <= now - 10.0:
            times.popleft()
        if len(times) >= 20:
            self.join_violations.append(
                RateViolation(
                    now, who, name, "join_20_per_10s", 20, 10.0, len(times), "", conn.conn_id
                )
            )
        times.append(now)

    def _enter(self, conn: IrcConnection, channel: SimChannel) -> None:
        nick = conn.nick or ""
        name = channel.login
        items: list[Item] = [("", line) for line in proto.join_lines(nick, name)]
        if conn.user is not None:
            state = proto.format_tags(proto.userstate_tags(channel, conn.user))
            room = proto.format_tags(proto.roomstate_tags(channel))
            lines = conn.render(items)
            lines += conn.render(
                [
                    (state, f":{proto.SERVER} USERSTATE #{name}"),
                    (room, f":{proto.SERVER} ROOMSTATE #{name}"),
                ],
                needs="commands",
            )
        else:
            lines = conn.render(items)
            room = proto.format_tags(proto.roomstate_tags(channel))
            lines += conn.render([(room, f":{proto.SERVER} ROOMSTATE #{name}")], "commands")
        conn.push(lines)
        first = name not in conn.channels
        conn.channels.add(name)
        self.rooms.setdefault(name, set()).add(conn)
        if first and conn.user is not None:
            if conn.user.id not in channel.chatters:
                channel.chatters.add(conn.user.id, conn.user)
            self._membership(channel, [("", f":{proto.hostmask(nick)} JOIN #{name}")], conn)

    def _part(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        if not conn.registered or not msg.params:
            return
        for raw in msg.params[0].split(","):
            name = norm(raw)
            if name in conn.channels:
                self._leave(conn, name, echo=True)

    def _leave(self, conn: IrcConnection, name: str, *, echo: bool) -> None:
        conn.channels.discard(name)
        room = self.rooms.get(name)
        if room is not None:
            room.discard(conn)
        nick = conn.nick or ""
        line = f":{proto.hostmask(nick)} PART #{name}"
        if echo:
            conn.push([line])
        channel = self.world.channels.get(name)
        if channel is None or conn.user is None:
            return
        if not any(c.user == conn.user for c in room or ()):
            channel.chatters.remove(conn.user.id)
            self._membership(channel, [("", line)], conn)

    def _privmsg(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        if not conn.registered or len(msg.params) < 2 or conn.anonymous or conn.user is None:
            return
        name = norm(msg.params[0])
        text = msg.params[1].rstrip(" ")
        if not text:
            return
        user = conn.user
        channel = self.world.channels.get(name)
        if channel is None:
            conn.emit([proto.notice_line(name, "msg_channel_suspended")])
            reason: str | None = "no_channel"
        else:
            reason = self._refusal(conn, user, channel, text, now)
        if reason is not None or channel is None:
            self.dropped.append(
                DroppedMessage(now, name, text, conn.conn_id, user.login, reason or "")
            )
            return
        self.limits.accept(user.login, name, now, text)
        reply_to = msg.tags.get("reply-parent-msg-id")
        sent = SentMessage(now, name, text, conn.conn_id, user.login, reply_to)
        self.sent.append(sent)
        state = proto.format_tags(proto.userstate_tags(channel, user))
        conn.emit([(state, f":{proto.SERVER} USERSTATE #{name}")], needs="commands")
        echo = self._privmsg_item(channel, user, text, {})
        self._publish(channel.login, [echo], exclude=conn)
        self._notify(sent)

    def _refusal(
        self, conn: IrcConnection, user: SimUser, channel: SimChannel, text: str, now: float
    ) -> str | None:
        """Why Twitch would drop this message (after sending the NOTICE it sends), or None."""
        if conn.token is not None and "chat:edit" not in conn.token.scopes:
            return "missing_scope_chat_edit"
        if len(text) > MAX_TEXT:
            return "too_long"
        name = channel.login
        privileged = channel.is_privileged(user.id)
        refusal = self.limits.check(user.login, name, privileged, now, text)
        if refusal is None:
            return None
        rule, limit, count = refusal
        if rule == DUPLICATE:
            conn.emit([proto.notice_line(name, "msg_duplicate")])
            return rule
        window = 1.0 if rule == RULE_CHANNEL else self.limits.window
        self.violations.append(
            RateViolation(now, user.login, name, rule, limit, window, count, text, conn.conn_id)
        )
        self.limits.penalise(user.login, now)
        conn.emit([proto.notice_line(name, "msg_ratelimit")])
        return rule

    def _pong(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        conn.pongs += 1

    def _ping(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        arg = msg.params[-1] if msg.params else proto.SERVER
        conn.push([f":{proto.SERVER} PONG {proto.SERVER} :{arg}"])

    def _quit(self, conn: IrcConnection, msg: proto.IrcMessage, now: float) -> None:
        conn.abort()

    _commands: ClassVar[
        dict[str, Callable[[IrcServer, IrcConnection, proto.IrcMessage, float], None]]
    ] = {
        "PASS": _pass,
        "NICK": _nick,
        "CAP": _cap,
        "JOIN": _join,
        "PART": _part,
        "PRIVMSG": _privmsg,
        "PONG": _pong,
        "PING": _ping,
        "QUIT": _quit,
    }

    # ---- what the simulator puts into rooms -------------------------------------------------

    def _publish(
        self,
        channel: str,
        items: Sequence[Item],
        *,
        needs: str | None = None,
        exclude: IrcConnection | None = None,
    ) -> None:
        for conn in self.rooms.get(channel, ()):
            if conn is not exclude:
                conn.emit(items, needs)

    def _membership(
        self, channel: SimChannel, items: Sequence[Item], exclude: IrcConnection | None = None
    ) -> None:
        if len(channel.chatters) <= self.membership_limit:
            self._publish(channel.login, items, needs="membership", exclude=exclude)

    def _privmsg_item(
        self, channel: SimChannel, user: SimUser, text: str, extra: dict[str, Any]
    ) -> Item:
        first = user.id not in channel.chatted
        if first:
            channel.chatted.add(user.id)
        tags = proto.privmsg_tags(
            channel,
            user,
            text,
            msg_id=str(uuid.uuid4()),
            sent_ms=int(self.clock.now() * 1000),
            first_msg=first,
        )
        _apply_extra(tags, extra)
        return proto.format_tags(
            tags
        ), f":{proto.hostmask(user.login)} PRIVMSG #{channel.login} :{text}"

    def say_many(self, channel_name: str, messages: Iterable[tuple[SimUser, str]]) -> int:
        """Viewers' messages into a room, all in one frame per connection (crowd mode)."""
        channel = self.world.channel(channel_name)
        items = []
        now = self.clock.monotonic()
        for user, text in messages:
            _check_text(text)
            if user.id not in channel.chatters:
                channel.chatters.add(user.id, user)
            item = self._privmsg_item(channel, user, text, {})
            items.append(item)
            self.chat.append(ChatMessage(_tag(item[0], "id"), now, channel.login, user.login, text))
        if items:
            self._publish(channel.login, items)
        return len(items)

    def say(
        self, channel_name: str, who: str | SimUser, text: str, extra: dict[str, Any]
    ) -> ChatMessage:
        _check_text(text)
        channel = self.world.channel(channel_name)
        user = self.world.ensure_user(who)
        if user.id not in channel.chatters:
            channel.chatters.add(user.id, user)
        item = self._privmsg_item(channel, user, text, extra)
        self._publish(channel.login, [item])
        message = ChatMessage(
            _tag(item[0], "id"), self.clock.monotonic(), channel.login, user.login, text
        )
        self.chat.append(message)
        return message

    def usernotice(
        self,
        channel_name: str,
        who: str | SimUser,
        kind: str,
        params: dict[str, Any],
        text: str | None = None,
        recipient: SimUser | None = None,
    ) -> str:
        """A USERNOTICE (sub, resub, subgift, raid, ...) into a room; returns its id."""
        channel = self.world.channel(channel_name)
        user = self.world.ensure_user(who)
        msg_params, system_msg = proto.usernotice_params(kind, channel, user, params, recipient)
        msg_id = str(uuid.uuid4())
        tags = proto.usernotice_tags(
            channel,
            user,
            kind,
            msg_params,
            system_msg,
            msg_id=msg_id,
            sent_ms=int(self.clock.now() * 1000),
        )
        rest = f":{proto.SERVER} USERNOTICE #{channel.login}"
        if text:
            _check_text(text)
            rest += f" :{text}"
        self._publish(channel.login, [(proto.format_tags(tags), rest)], needs="commands")
        return msg_id

    def join_users(self, channel_name: str, users: Iterable[SimUser]) -> None:
        channel = self.world.channel(channel_name)
        items = []
        for user in users:
            if channel.chatters.add(user.id, user):
                items.append(("", f":{proto.hostmask(user.login)} JOIN #{channel.login}"))
        self._membership(channel, items)

    def part_users(self, channel_name: str, users: Iterable[SimUser]) -> None:
        channel = self.world.channel(channel_name)
        items = []
        for user in users:
            if channel.chatters.remove(user.id):
                items.append(("", f":{proto.hostmask(user.login)} PART #{channel.login}"))
        self._membership(channel, items)

    def notice(self, channel_name: str, msg_id: str, text: str | None) -> None:
        name = norm(channel_name)
        self._publish(name, [proto.notice_line(name, msg_id, text)])

    def roomstate(self, channel_name: str, changes: dict[str, str]) -> None:
        name = norm(channel_name)
        self._publish(
            name,
            [(proto.format_tags(changes), f":{proto.SERVER} ROOMSTATE #{name}")],
            needs="commands",
        )

    # ---- control ---------------------------------------------------------------------------

    def select(self, login: str | None = None, conn_id: int | None = None) -> list[IrcConnection]:
        return [
            c
            for c in self.connections.values()
            if not c.closed
            and (login is None or c.nick == norm(login))
            and (conn_id is None or c.conn_id == conn_id)
        ]

    async def drop(self, conns: list[IrcConnection], within: float = 2.0) -> int:
        for conn in conns:
            conn.abort()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while any(c.conn_id in self.connections for c in conns) and loop.time() < deadline:
            self._gone.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), max(0.0, deadline - loop.time()))
        return len(conns)

    async def close_frames(
        self, conns: list[IrcConnection], code: int = 1001, within: float = 2.0
    ) -> int:
        """Close each connection with a WebSocket close frame (``code``; 1001 is "going
        away"), as Twitch does at maintenance: twitchio 2.10 does not come back by itself."""
        for conn in conns:
            if not conn.closed:
                conn.closed = True
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=code, message=b"server going away")
        return await self.drop(conns, within)

    def stall(self, conns: list[IrcConnection]) -> int:
        """Make each connection a black hole (a dead NAT path): it stays open, but nothing
        the client sends is answered and nothing more is sent to it."""
        for conn in conns:
            conn.stalled = True
        return len(conns)

    def send_raw(self, data: str, conns: list[IrcConnection]) -> None:
        for conn in conns:
            conn.push_raw(data)

    def rate_report(self, channel: str | None = None) -> list[RateViolation]:
        name = norm(channel) if channel is not None else None
        return [v for v in self.violations if name is None or v.channel == name]

    def _notify(self, sent: SentMessage) -> None:
        for match, fut in self._waiters:
            if not fut.done() and match(sent):
                fut.set_result(sent)

    async def wait_for_reply(
        self,
        channel: str | None = None,
        *,
        contains: str | re.Pattern[str] | None = None,
        after: int | float | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the contract's name; a test helper's deadline)
    ) -> SentMessage:
        name = norm(channel) if channel is not None else None
        start = after if isinstance(after, int) and not isinstance(after, bool) else 0
        since = after if isinstance(after, float) else None

        def match(m: SentMessage) -> bool:
            if name is not None and m.channel != name:
                return False
            if since is not None and m.at <= since:
                return False
            if contains is None:
                return True
            if isinstance(contains, str):
                return contains in m.text
            return contains.search(m.text) is not None

        for m in self.sent[start:]:
            if match(m):
                return m
        fut: asyncio.Future[SentMessage] = asyncio.get_running_loop().create_future()
        waiter = (match, fut)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            recent = [f"#{m.channel}: {m.text}" for m in self.sent[-5:]]
            dropped = [f"#{d.channel} ({d.reason}): {d.text}" for d in self.dropped[-3:]]
            raise TimeoutError(
                f"no message to {'#' + name if name else 'any channel'}"
                f"{f' containing {contains!r}' if contains is not None else ''}"
                f" within {timeout}s; last sent: {recent}; last dropped: {dropped}"
            ) from None
        finally:
            self._waiters.remove(waiter)

    async def close(self) -> None:
        await self.drop(list(self.connections.values()), within=1.0)


def _check_text(text: str) -> None:
    if not text or any(ch in text for ch in "\r\n\0"):
        raise ValueError("a chat message must be non-empty and on one line")


def _apply_extra(tags: dict[str, str], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        name = key.replace("_", "-")
        if value is None:
            tags.pop(name, None)
        else:
            tags[name] = str(value)


def _tag(formatted: str, key: str) -> str:
    prefix = key + "="
    for part in formatted.lstrip("@").split(";"):
        if part.startswith(prefix):
            return part[len(prefix) :]
    return ""
