"""The simulator's chat: Twitch's IRC dialect byte for byte, send limits, control, twitchio."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import twitchio
from hypothesis import given
from hypothesis import strategies as st

from loyaltybot.clock import FakeClock
from loyaltybot.simulator import Simulator, patch_twitchio
from loyaltybot.simulator.ircproto import escape_tag, parse_line, unescape_tag

ALL_CAPS = "twitch.tv/membership twitch.tv/tags twitch.tv/commands"


class RawIrc:
    """A bare WebSocket IRC client that reads line by line."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._buffer: list[str] = []
        self.frames: list[str] = []
        self.closed_type: aiohttp.WSMsgType | None = None

    async def send(self, *lines: str) -> None:
        await self.ws.send_str("".join(line + "\r\n" for line in lines))

    async def line(self, within: float = 2.0) -> str:
        while not self._buffer:
            msg = await asyncio.wait_for(self.ws.receive(), within)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                self.closed_type = msg.type
                raise ConnectionError(f"connection ended: {msg.type.name}")
            self.frames.append(msg.data)
            assert msg.data.endswith("\r\n")
            self._buffer.extend(msg.data[:-2].split("\r\n"))
        return self._buffer.pop(0)

    async def until(self, pred: Callable[[str], bool], within: float = 2.0) -> str:
        while True:
            line = await self.line(within)
            if pred(line):
                return line

    async def sync(self) -> list[str]:
        """Every line before the answer to a PING of ours (the server handles lines in order)."""
        token = uuid.uuid4().hex
        await self.send(f"PING :{token}")
        seen: list[str] = []
        while True:
            line = await self.line()
            if line == f":tmi.twitch.tv PONG tmi.twitch.tv :{token}":
                return seen
            seen.append(line)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    yield sim
    await sim.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(sim: Simulator, session: aiohttp.ClientSession) -> RawIrc:
    return RawIrc(await session.ws_connect(sim.irc_url))


async def login(
    sim: Simulator, session: aiohttp.ClientSession, nick: str = "mybot", caps: str = ALL_CAPS
) -> RawIrc:
    client = await connect(sim, session)
    token = sim.issue_token(nick)
    await client.send(f"PASS oauth:{token}", f"NICK {nick}", f"CAP REQ :{caps}")
    last = "GLOBALUSERSTATE" if "commands" in caps else "CAP * ACK"
    await client.until(lambda line: last in line)
    return client


def tags_of(line: str) -> dict[str, str]:
    raw = line[1:].split(" ", 1)[0]
    return dict(item.split("=", 1) for item in raw.split(";"))


# ---- login -----------------------------------------------------------------------------


async def test_login_sequence_is_twitchs(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """PASS/NICK/CAP REQ in one frame get the welcome, one ACK and GLOBALUSERSTATE verbatim."""
    bot = sim.user("mybot")
    client = await connect(sim, session)
    token = sim.issue_token("mybot")
    await client.send(f"PASS oauth:{token}", "NICK mybot", f"CAP REQ :{ALL_CAPS}")
    lines = [await client.line() for _ in range(9)]
    assert lines[:8] == [
        ":tmi.twitch.tv 001 mybot :Welcome, GLHF!",
        ":tmi.twitch.tv 002 mybot :Your host is tmi.twitch.tv",
        ":tmi.twitch.tv 003 mybot :This server is rather new",
        ":tmi.twitch.tv 004 mybot :-",
        ":tmi.twitch.tv 375 mybot :-",
        ":tmi.twitch.tv 372 mybot :You are in a maze of twisty passages, all alike.",
        ":tmi.twitch.tv 376 mybot :>",
        f":tmi.twitch.tv CAP * ACK :{ALL_CAPS}",
    ]
    assert re.fullmatch(
        r"@badge-info=;badges=;color=(#[0-9A-F]{6})?;display-name=mybot;"
        rf"emote-sets=0,300374282;turbo=0;user-id={bot.id};user-type= "
        r":tmi.twitch.tv GLOBALUSERSTATE",
        lines[8],
    )
    assert len(client.frames) >= 2  # several lines per frame, CRLF-joined
    assert any(line.line == "PASS oauth:***" for line in sim.client_lines)


async def test_one_ack_per_cap_req_line(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """twitchio's three CAP REQ lines get three ACKs; an unknown capability gets a NAK."""
    client = await connect(sim, session)
    token = sim.issue_token("mybot")
    await client.send(
        f"PASS oauth:{token}",
        "NICK mybot",
        "CAP REQ :twitch.tv/commands",
        "CAP REQ :twitch.tv/tags",
        "CAP REQ :twitch.tv/membership",
        "CAP REQ :twitch.tv/foo",
    )
    seen = await client.sync()
    caps = [line for line in seen if " CAP " in line]
    assert caps == [
        ":tmi.twitch.tv CAP * ACK :twitch.tv/commands",
        ":tmi.twitch.tv CAP * ACK :twitch.tv/tags",
        ":tmi.twitch.tv CAP * ACK :twitch.tv/membership",
        ":tmi.twitch.tv CAP * NAK :twitch.tv/foo",
    ]


@pytest.mark.parametrize("problem", ["unknown", "revoked", "expired", "no_chat_read", "nick"])
async def test_bad_login_gets_notice_then_tcp_drop(
    sim: Simulator, session: aiohttp.ClientSession, problem: str
) -> None:
    """Each bad login gets Twitch's NOTICE, then the TCP connection drops with no close frame."""
    token = "doesnotexist"
    nick = "mybot"
    if problem == "revoked":
        token = sim.issue_token("mybot")
        sim.revoke_token(token)
    elif problem == "expired":
        token = sim.issue_token("mybot", expires_in=-1)
    elif problem == "no_chat_read":
        token = sim.issue_token("mybot", scopes=["chat:edit"])
    elif problem == "nick":
        token = sim.issue_token("mybot")
        nick = "someoneelse"
    client = await connect(sim, session)
    await client.send(f"PASS oauth:{token}", f"NICK {nick}")
    assert await client.line() == ":tmi.twitch.tv NOTICE * :Login authentication failed"
    with pytest.raises(ConnectionError):
        await client.line()
    assert client.closed_type is not aiohttp.WSMsgType.CLOSE  # no close frame was sent


async def test_anonymous_justinfan_reads_but_cannot_send(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """justinfan logins need no token, see chat, and their PRIVMSGs go nowhere."""
    client = await connect(sim, session)
    await client.send(f"CAP REQ :{ALL_CAPS}", "NICK justinfan123", "JOIN #alice")
    await client.sync()
    await sim.say("alice", "bob", "hello")
    assert (await client.until(lambda line: "PRIVMSG" in line)).endswith("PRIVMSG #alice :hello")
    await client.send("PRIVMSG #alice :let me in")
    await client.sync()
    assert sim.sent == []


# ---- join, part, membership ----------------------------------------------------------


async def test_join_replies_verbatim(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """JOIN gives the echo, 353, 366, USERSTATE with the moderator badge and ROOMSTATE."""
    client = await login(sim, session)
    await client.send("JOIN #alice,#nosuchchannel")
    seen = await client.sync()
    room = sim.channel("alice").id
    assert seen == [
        ":mybot!mybot@mybot.tmi.twitch.tv JOIN #alice",
        ":mybot.tmi.twitch.tv 353 mybot = #alice :mybot",
        ":mybot.tmi.twitch.tv 366 mybot #alice :End of /NAMES list",
        seen[3],
        f"@emote-only=0;followers-only=-1;r9k=0;room-id={room};slow=0;subs-only=0"
        " :tmi.twitch.tv ROOMSTATE #alice",
    ]  # the nonexistent channel is silently ignored
    assert re.fullmatch(
        r"@badge-info=;badges=moderator/1;color=(#[0-9A-F]{6})?;display-name=mybot;"
        r"emote-sets=0,300374282;mod=1;subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE #alice",
        seen[3],
    )
    assert [c.channels for c in sim.connections] == [{"alice"}]
    assert sim.user("mybot").id in sim.channel("alice").chatters


@pytest.mark.parametrize(("role", "badges", "mod"), [("vip", "vip/1", "0"), ("none", "", "0")])
async def test_userstate_follows_the_bots_role(
    sim: Simulator, session: aiohttp.ClientSession, role: str, badges: str, mod: str
) -> None:
    """A VIP bot gets the vip badge (and vip=1), a plain bot no badge and mod=0."""
    sim.add_channel("bob_tv", bot_login="mybot", bot_role=role)  # type: ignore[arg-type]
    client = await login(sim, session)
    await client.send("JOIN #bob_tv")
    state = await client.until(lambda line: "USERSTATE" in line)
    tags = tags_of(state)
    assert (tags["badges"], tags["mod"]) == (badges, mod)
    assert tags.get("vip") == ("1" if role == "vip" else None)


async def test_part_and_membership(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """Others' JOIN/PART reach membership clients and the chatter list; PART is echoed."""
    client = await login(sim, session)
    await client.send("JOIN #alice")
    await client.sync()
    await sim.join("alice", "carol")
    await sim.part("alice", "carol")
    seen = await client.sync()
    assert seen == [
        ":carol!carol@carol.tmi.twitch.tv JOIN #alice",
        ":carol!carol@carol.tmi.twitch.tv PART #alice",
    ]
    await sim.join("alice", "dave")
    assert sim.user("dave").id in sim.channel("alice").chatters
    await client.send("PART #alice")
    assert await client.sync() == [
        ":dave!dave@dave.tmi.twitch.tv JOIN #alice",
        ":mybot!mybot@mybot.tmi.twitch.tv PART #alice",
    ]
    assert sim.user("mybot").id not in sim.channel("alice").chatters


# ---- chat from viewers ------------------------------------------------------------------


async def test_privmsg_carries_twitchs_tags(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """A viewer's PRIVMSG has every tag, in order, from their roles; vip only for VIPs."""
    client = await login(sim, session)
    await client.send("JOIN #alice")
    await client.sync()
    sim.add_user("cool_viewer", display_name="Cool_Viewer")
    sim.set_role("alice", "cool_viewer", vip=True, subscriber_tier=1000, months=14)
    sent = await sim.say("alice", "cool_viewer", "hello Kappa and Kappa", client_nonce="a b;c\\d")
    line = await client.until(lambda line: "PRIVMSG" in line)
    user = sim.user("cool_viewer")
    tags = tags_of(line)
    assert list(tags) == sorted(tags)
    assert tags == {
        "badge-info": "subscriber/14",
        "badges": "vip/1,subscriber/12",
        "client-nonce": "a\\sb\\:c\\\\d",
        "color": tags["color"],
        "display-name": "Cool_Viewer",
        "emotes": "25:6-10,16-20",
        "first-msg": "1",
        "flags": "",
        "id": sent.id,
        "mod": "0",
        "returning-chatter": "0",
        "room-id": sim.channel("alice").id,
        "subscriber": "1",
        "tmi-sent-ts": tags["tmi-sent-ts"],
        "turbo": "0",
        "user-id": user.id,
        "user-type": "",
        "vip": "1",
    }
    assert uuid.UUID(tags["id"])
    assert abs(int(tags["tmi-sent-ts"]) - time.time() * 1000) < 5000
    assert line.endswith(
        " :cool_viewer!cool_viewer@cool_viewer.tmi.twitch.tv PRIVMSG #alice :hello Kappa and Kappa"
    )
    sim.set_role("alice", "bob", mod=True)
    await sim.say("alice", "bob", "second")
    await sim.say("alice", "bob", "third")
    bob_lines = [line for line in await client.sync() if "PRIVMSG" in line]
    first, second = (tags_of(line) for line in bob_lines)
    assert (first["first-msg"], second["first-msg"]) == ("1", "0")
    assert (first["mod"], first["badges"], first["user-type"], "vip" in first) == (
        "1",
        "moderator/1",
        "mod",
        False,
    )


def test_tag_escaping_round_trips() -> None:
    """Tag values escape ; space \\ CR LF as IRCv3 says, and unescape back."""
    raw = "a;b c\\d\re\nf"
    assert escape_tag(raw) == "a\\:b\\sc\\\\d\\re\\nf"
    assert unescape_tag(escape_tag(raw)) == raw
    assert unescape_tag("x\\qy\\") == "xqy"
    msg = parse_line("@reply-parent-msg-id=abc :nick PRIVMSG #chan :hello there")
    assert msg is not None
    assert (msg.command, msg.params, msg.tags) == (
        "PRIVMSG",
        ["#chan", "hello there"],
        {"reply-parent-msg-id": "abc"},
    )


@given(st.text(max_size=200))
def test_parse_line_never_crashes(line: str) -> None:
    """Any client line parses to a message or to None, never an exception."""
    msg = parse_line(line)
    assert msg is None or msg.command


async def test_garbage_from_a_client_is_survived(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Malformed and odd lines from a client neither crash the server nor its connection."""
    client = await login(sim, session)
    await client.send(
        "@", ":", ": :", "@a;b;=c :x", "JOIN", "JOIN ,,#", "PRIVMSG #alice", "PRIVMSG #alice :",
        "CAP", "CAP REQ", "PASS", "NICK", "PONG", "\t", "\t :x", "\x00\x01",
        "PRIVMSG #alice :" + "é" * 600,
    )  # fmt: skip
    seen = await client.sync()
    assert all(" 421 " in line or "JOIN" in line or "NAMES" in line for line in seen)
    assert sim.sent == []
    assert len(sim.connections) == 1


async def test_usernotices(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """sub, resub, subgift and raid carry their msg-param tags and update the sub list."""
    client = await login(sim, session)
    await client.send("JOIN #alice")
    await client.sync()
    await sim.usernotice("alice", "new_sub", "sub", message="hi there")
    await sim.usernotice("alice", "old_sub", "resub", cumulative_months=6, sub_plan="Prime")
    await sim.usernotice("alice", "tww2", "subgift", recipient="mr_woodchuck", sub_plan=2000)
    await sim.usernotice("alice", "testchannel", "raid", viewerCount=15)
    lines = [line for line in await client.sync() if "USERNOTICE" in line]
    sub, resub, gift, raid = (tags_of(line) for line in lines)
    assert lines[0].endswith(":tmi.twitch.tv USERNOTICE #alice :hi there")
    assert lines[3].endswith(":tmi.twitch.tv USERNOTICE #alice")
    assert sub["msg-id"] == "sub"
    assert sub["login"] == "new_sub"
    assert sub["subscriber"] == "1"
    assert sub["msg-param-sub-plan"] == "1000"
    assert sub["system-msg"] == "new_sub\\ssubscribed\\sat\\sTier\\s1."
    assert sub["msg-param-sub-plan-name"] == "Channel\\sSubscription\\s(alice)"
    assert resub["msg-param-cumulative-months"] == "6"
    assert resub["msg-param-sub-plan"] == "Prime"
    recipient = sim.user("mr_woodchuck")
    assert (gift["msg-param-recipient-id"], gift["msg-param-recipient-user-name"]) == (
        recipient.id,
        "mr_woodchuck",
    )
    assert gift["msg-param-sub-plan"] == "2000"
    assert gift["msg-param-months"] == "1"
    assert raid["msg-param-viewerCount"] == "15"
    assert raid["msg-param-login"] == "testchannel"
    assert raid["system-msg"] == "15\\sraiders\\sfrom\\stestchannel\\shave\\sjoined!"
    subs = sim.channel("alice").subs
    assert subs.get(recipient.id) is not None
    assert subs.get(recipient.id).gifter_id == sim.user("tww2").id  # type: ignore[union-attr]
    assert subs.get(sim.user("new_sub").id) is not None


# ---- chat from the bot ------------------------------------------------------------------


async def test_bot_message_recorded_not_echoed(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """The bot's PRIVMSG is recorded, answered with USERSTATE, and shown only to others."""
    bot = await login(sim, session)
    viewer = await login(sim, session, nick="watcher")
    for client in (bot, viewer):
        await client.send("JOIN #alice")
        await client.sync()
    await bot.sync()  # the watcher's JOIN
    before = time.monotonic()
    index = len(sim.sent)
    await bot.send("@reply-parent-msg-id=abc PRIVMSG #alice :hello chat ")
    seen = await bot.sync()
    assert len(seen) == 1
    assert seen[0].endswith(":tmi.twitch.tv USERSTATE #alice")
    got = await sim.wait_for_reply("alice", contains="hello", after=index)
    assert (got.channel, got.text, got.login, got.reply_to) == (
        "alice",
        "hello chat",
        "mybot",
        "abc",
    )
    assert got.conn_id == sim.connections[0].conn_id
    assert before <= got.at <= time.monotonic()
    other = await viewer.until(lambda line: "PRIVMSG" in line)
    assert other.endswith(":mybot!mybot@mybot.tmi.twitch.tv PRIVMSG #alice :hello chat")
    assert tags_of(other)["mod"] == "1"
    with pytest.raises(TimeoutError, match="bye"):
        await sim.wait_for_reply("alice", contains="bye", after=index + 1, timeout=0.2)
    waiting = asyncio.create_task(sim.wait_for_reply("alice", contains=re.compile(r"late \d")))
    await asyncio.sleep(0.05)
    await bot.send("PRIVMSG #alice :late 7")
    assert (await waiting).text == "late 7"


# ---- send limits --------------------------------------------------------------------------


@pytest.fixture
async def timed() -> AsyncIterator[tuple[Simulator, FakeClock]]:
    clock = FakeClock()
    sim = Simulator(clock=clock)
    await sim.start()
    yield sim, clock
    await sim.close()


async def test_one_message_per_second_where_not_privileged(
    timed: tuple[Simulator, FakeClock], session: aiohttp.ClientSession
) -> None:
    """Unprivileged: a second message within 1 s is dropped with msg_ratelimit and reported."""
    sim, clock = timed
    sim.add_channel("alice", bot_login="mybot", bot_role="none")
    client = await login(sim, session)
    await client.send("JOIN #alice")
    await client.sync()
    await client.send("PRIVMSG #alice :one", "PRIVMSG #alice :two")
    seen = await client.sync()
    assert (
        "@msg-id=msg_ratelimit :tmi.twitch.tv NOTICE #alice :Your message was not sent because"
        " you are sending messages too quickly." in seen
    )
    clock.advance(0.999)
    await client.send("PRIVMSG #alice :three")
    await client.sync()
    clock.advance(0.001)
    await client.send("PRIVMSG #alice :four")
    await client.sync()
    assert [m.text for m in sim.sent] == ["one", "four"]
    report = sim.rate_report("alice")
    assert [(v.rule, v.text) for v in report] == [
        ("channel_1_per_second", "two"),
        ("channel_1_per_second", "three"),
    ]
    assert [d.reason for d in sim.dropped] == ["channel_1_per_second"] * 2


async def test_twenty_per_thirty_seconds_per_account(
    timed: tuple[Simulator, FakeClock], session: aiohttp.ClientSession
) -> None:
    """20 in 30 s across unprivileged channels; the 21st is dropped until the window slides."""
    sim, clock = timed
    names = [f"chan{n}" for n in range(21)]
    for name in names:
        sim.add_channel(name, bot_login="mybot", bot_role="none")
    client = await login(sim, session)
    await client.send(*(f"PRIVMSG #{name} :hi" for name in names))
    await client.sync()
    assert len(sim.sent) == 20
    (violation,) = sim.rate_report()
    assert (violation.rule, violation.channel, violation.limit, violation.count) == (
        "account_20_per_30s",
        "chan20",
        20,
        20,
    )
    clock.advance(29.9)
    await client.send("PRIVMSG #chan20 :still no")
    await client.sync()
    clock.advance(0.2)
    await client.send("PRIVMSG #chan20 :now yes")
    await client.sync()
    assert sim.sent[-1].text == "now yes"
    assert len(sim.rate_report()) == 2


async def test_hundred_per_thirty_seconds_where_privileged(
    timed: tuple[Simulator, FakeClock], session: aiohttp.ClientSession
) -> None:
    """As moderator 100 go in 30 s with no 1/s rule; they still fill the 20 bucket elsewhere."""
    sim, _ = timed
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    sim.add_channel("bob_tv", bot_login="mybot", bot_role="none")
    client = await login(sim, session)
    await client.send(*(f"PRIVMSG #alice :m{n}" for n in range(101)))
    await client.send("PRIVMSG #bob_tv :elsewhere")
    await client.sync()
    assert len(sim.sent) == 100
    assert [(v.rule, v.channel) for v in sim.rate_report()] == [
        ("account_100_per_30s", "alice"),
        ("account_20_per_30s", "bob_tv"),
    ]
    assert sim.rate_report("bob_tv")[0].count == 100


async def test_duplicate_and_lockout(session: aiohttp.ClientSession) -> None:
    """An identical message within 30 s gets msg_duplicate; with a lockout, a violation silences."""
    clock = FakeClock()
    sim = Simulator(clock=clock, lockout_seconds=3600)
    await sim.start()
    try:
        sim.add_channel("alice", bot_login="mybot")
        sim.add_channel("carol", bot_login="mybot", bot_role="moderator")
        client = await login(sim, session)
        await client.send("PRIVMSG #alice :same")
        await client.sync()
        clock.advance(2)
        await client.send("PRIVMSG #alice :same")
        assert (await client.sync())[-1].startswith("@msg-id=msg_duplicate ")
        await client.send("PRIVMSG #alice :fast")  # 2 s after the first: accepted
        await client.send("PRIVMSG #alice :too fast")  # violation: locked out for an hour
        await client.sync()
        clock.advance(10)
        await client.send("PRIVMSG #alice :later", "PRIVMSG #carol :mods are exempt")
        await client.sync()
        assert [m.text for m in sim.sent] == ["same", "fast", "mods are exempt"]
        assert [d.reason for d in sim.dropped] == [
            "duplicate",
            "channel_1_per_second",
            "locked_out",
        ]
    finally:
        await sim.close()


async def test_too_long_and_unknown_channel_dropped(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Over 500 characters is dropped; a channel that does not exist gets msg_channel_suspended."""
    client = await login(sim, session)
    await client.send("PRIVMSG #alice :" + "x" * 501, "PRIVMSG #ghost :boo")
    seen = await client.sync()
    assert seen == [
        "@msg-id=msg_channel_suspended :tmi.twitch.tv NOTICE #ghost"
        " :This channel does not exist or has been suspended."
    ]
    assert [d.reason for d in sim.dropped] == ["too_long", "no_channel"]
    assert sim.sent == []


# ---- keepalive and control ----------------------------------------------------------------


async def test_ping_pong_and_timeout(session: aiohttp.ClientSession) -> None:
    """The server PINGs on its interval; a client that answers stays, a silent one is dropped."""
    sim = Simulator(ping_interval=0.15, pong_timeout=0.2)
    await sim.start()
    try:
        sim.add_channel("alice", bot_login="mybot")
        good = await login(sim, session)
        bad = await login(sim, session, nick="lazy")
        assert await good.until(lambda line: line.startswith("PING")) == "PING :tmi.twitch.tv"
        await good.send("PONG :tmi.twitch.tv")
        assert await bad.until(lambda line: line.startswith("PING")) == "PING :tmi.twitch.tv"
        with pytest.raises(ConnectionError):
            await bad.line(within=2)
        assert bad.closed_type is not aiohttp.WSMsgType.CLOSE
        await good.until(lambda line: line.startswith("PING"))
        await good.send("PONG :tmi.twitch.tv")
        assert [c.nick for c in sim.connections] == ["mybot"]
    finally:
        await sim.close()


async def test_websocket_ping_frames_are_answered(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """aiohttp's heartbeat (WebSocket ping frames, as twitchio uses) gets pongs."""
    ws = await session.ws_connect(sim.irc_url, heartbeat=0.1)
    await asyncio.sleep(0.35)
    assert not ws.closed
    await ws.close()


async def test_control_drop_reconnect_raw(sim: Simulator, session: aiohttp.ClientSession) -> None:
    """drop_connections is a TCP drop; RECONNECT, NOTICE, ROOMSTATE and raw frames go out."""
    client = await login(sim, session)
    await sim.send_raw("garbage without crlf")
    await sim.send_raw(":tmi.twitch.tv NOTICE * :one\r\n:tmi.twitch.tv NOTICE * :two\r\n")
    await client.send("JOIN #alice", "THISISNOTACOMMAND", "")
    msg = await asyncio.wait_for(client.ws.receive(), 2)
    assert msg.data == "garbage without crlf"
    assert await client.line() == ":tmi.twitch.tv NOTICE * :one"
    assert await client.line() == ":tmi.twitch.tv NOTICE * :two"
    seen = await client.sync()
    assert ":tmi.twitch.tv 421 mybot THISISNOTACOMMAND :Unknown command" in seen
    await sim.notice("alice", "msg_banned", "You are permanently banned from talking in alice.")
    await sim.roomstate("alice", slow=10)
    assert await client.sync() == [
        "@msg-id=msg_banned :tmi.twitch.tv NOTICE #alice"
        " :You are permanently banned from talking in alice.",
        "@slow=10 :tmi.twitch.tv ROOMSTATE #alice",
    ]
    assert await sim.send_reconnect(drop_after=0.1) == 1
    assert await client.until(lambda line: "RECONNECT" in line) == ":tmi.twitch.tv RECONNECT"
    with pytest.raises(ConnectionError):
        await client.line()
    other = await login(sim, session)
    assert await sim.drop_connections() == 1
    assert sim.connections == []
    with pytest.raises(ConnectionError):
        await other.line()
    assert other.closed_type is not aiohttp.WSMsgType.CLOSE
    sim.faults.add("/irc", status=503)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await session.ws_connect(sim.irc_url)


# ---- the real twitchio 2.10 ------------------------------------------------------------------


async def test_twitchio_client_end_to_end() -> None:
    """twitchio 2.10 logs in, joins, reads tags, sends, PONGs, survives drops and RECONNECT."""
    sim = Simulator(ping_interval=0.3, pong_timeout=1.0)
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    token = sim.issue_token("mybot")
    events: asyncio.Queue[tuple[object, ...]] = asyncio.Queue()

    class Bot(twitchio.Client):  # type: ignore[misc]
        async def event_ready(self) -> None:
            await events.put(("ready",))

        async def event_join(self, channel: twitchio.Channel, user: twitchio.Chatter) -> None:
            await events.put(("join", channel.name, user.name))

        async def event_message(self, message: twitchio.Message) -> None:
            if not message.echo:
                await events.put(("message", message.content, message.tags, message.author))

        async def event_reconnect(self) -> None:
            await events.put(("reconnect",))

    async def expect(*kinds: str) -> list[tuple[object, ...]]:
        got = [await asyncio.wait_for(events.get(), 5) for _ in kinds]
        assert [e[0] for e in got] == list(kinds)
        return got

    with patch_twitchio(sim.irc_url, sim.api_url, sim.auth_url):
        bot = Bot(f"oauth:{token}", initial_channels=["alice"])
        try:
            await bot.connect()
            (join, _) = await expect("join", "ready")
            assert join[1:] == ("alice", "mybot")
            sim.set_role("alice", "bob", subscriber_tier=1000)
            said = await sim.say("alice", "bob", "hello Kappa")
            (message,) = await expect("message")
            assert message[1] == "hello Kappa"
            assert message[2]["id"] == said.id  # type: ignore[index]
            author: Any = message[3]
            assert author.name == "bob"
            assert author.is_subscriber
            await bot.get_channel("alice").send("hi from the bot")
            sent = await sim.wait_for_reply("alice", contains="hi from the bot")
            assert sent.login == "mybot"
            await asyncio.sleep(0.5)
            assert any(line.line == "PONG :tmi.twitch.tv" for line in sim.client_lines)
            first = sim.connections[0].conn_id
            await sim.drop_connections()
            (join,) = await expect("join")
            assert join[1:] == ("alice", "mybot")
            assert [c.channels for c in sim.connections] == [{"alice"}]
            assert sim.connections[0].conn_id != first
            await sim.send_reconnect()
            await expect("reconnect", "join")
            await sim.say("alice", "bob", "still here?")
            (message,) = await expect("message")
            assert message[1] == "still here?"
            assert len(sim.connections) == 1
        finally:
            await bot.close()
            await sim.close()
