"""A chat message as the command layer sees it, built from IRC tags by a pure function.

The twitchio adapter hands over what it got (channel, login, text, the raw tag dict);
everything that needs care lives here, where it is tested without a network: tag values
arrive escaped (twitchio does not unescape them, twitch-reference §1.8), the first tag key
keeps its ``@``, ``/me`` lines arrive wrapped in ``\\x01ACTION ... \\x01``, and roles come
from badges and tags (§1.6).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from loyaltybot.points.viewers import Viewer, is_login

MAX_TEXT = 1000  # Twitch caps chat at 500 characters; anything longer is not from Twitch
MAX_DISPLAY_NAME = 64

_USER_ID = re.compile(r"[0-9]{1,20}")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")
_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
# Chat clients append U+E0000 (or zero-width characters) to dodge Twitch's duplicate-message
# filter; they are invisible and must not turn "!points" into an unknown command.
_INVISIBLE = dict.fromkeys(map(ord, "\U000e0000\u200b\u200c\u200d\u2060\ufeff\u034f"))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Permission(enum.IntEnum):
    """Who may run a command."""

    EVERYONE = 0
    MODERATOR = 1  # moderators and the broadcaster
    BROADCASTER = 2


@dataclass(frozen=True, slots=True)
class Roles:
    """What the sender is in this channel, from badges and tags."""

    broadcaster: bool = False
    moderator: bool = False
    vip: bool = False
    subscriber: bool = False

    @property
    def trusted(self) -> bool:
        """Moderators and the broadcaster: may manage points, skip read cooldowns."""
        return self.broadcaster or self.moderator

    def allows(self, permission: Permission) -> bool:
        if permission is Permission.BROADCASTER:
            return self.broadcaster
        if permission is Permission.MODERATOR:
            return self.trusted
        return True


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One PRIVMSG, parsed.

    ``received_at`` is ``Clock.monotonic()`` when it arrived; a reply to it goes stale 30 s
    later (SPEC §5).
    """

    channel: str
    sender: Viewer
    roles: Roles
    text: str
    message_id: str | None
    received_at: float
    room_id: str | None = None
    sent_at_ms: int | None = None
    action: bool = False  # sent with /me
    # Set when Shared Chat relayed the message from another channel (source-room-id); its
    # own channel's bot answers it there, and badges here do not describe that channel.
    shared_from: str | None = field(default=None)


class MalformedMessage(ValueError):
    """A PRIVMSG without what a command needs (a valid login, a user id)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unescape_tag_value(value: str) -> str:
    r"""Undo IRCv3 tag escaping: ``\s`` -> space, ``\:`` -> ``;``, ``\\`` -> ``\``, ``\r``,
    ``\n``; a backslash before any other character gives that character, and a trailing
    lone backslash is dropped."""
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 < len(value):
            following = value[i + 1]
            out.append(_ESCAPES.get(following, following))
        i += 2
    return "".join(out)


def clean_tags(raw: Mapping[str, object]) -> dict[str, str]:
    """Tag dict as twitchio gives it -> keys without the leading ``@``, values unescaped."""
    tags: dict[str, str] = {}
    for key, value in raw.items():
        text = "" if value is None else str(value)
        tags[key.lstrip("@")] = unescape_tag_value(text)
    return tags


def parse_badges(value: str) -> dict[str, str]:
    """``broadcaster/1,subscriber/12`` -> {'broadcaster': '1', 'subscriber': '12'}."""
    badges: dict[str, str] = {}
    for item in value.split(","):
        name, _, version = item.partition("/")
        if name:
            badges[name.strip()] = version.strip()
    return badges


def roles_from_tags(tags: Mapping[str, str], *, login: str, channel: str) -> Roles:
    """Roles from (clean) PRIVMSG or USERSTATE tags.

    The broadcaster is known by badge, by user id == room id, or by login == channel, so
    a missing tag never takes the channel owner's rights away. Founders are subscribers.
    """
    badges = parse_badges(tags.get("badges", ""))
    user_id = tags.get("user-id", "")
    room_id = tags.get("room-id", "")
    broadcaster = (
        "broadcaster" in badges
        or (bool(user_id) and user_id == room_id)
        or (bool(login) and login == channel)
    )
    return Roles(
        broadcaster=broadcaster,
        moderator=tags.get("mod") == "1" or "moderator" in badges,
        vip=tags.get("vip") == "1" or "vip" in badges,
        subscriber=tags.get("subscriber") == "1" or "subscriber" in badges or "founder" in badges,
    )


def clean_text(text: str) -> str:
    """Drop invisible filler characters, turn control characters into spaces, trim."""
    return _CONTROL.sub(" ", text.translate(_INVISIBLE)).strip()


def parse_privmsg(
    *,
    channel: str,
    login: str,
    text: str,
    tags: Mapping[str, object],
    received_at: float,
) -> ChatMessage:
    """Build a ChatMessage from what the IRC client received.

    Raises:
        MalformedMessage: no valid sender login or no numeric ``user-id`` tag.
    """
    channel = channel.lstrip("#").lower()
    login = login.lower()
    if not is_login(login):
        raise MalformedMessage(f"sender login {login[:40]!r} is not a Twitch login")
    clean = clean_tags(tags)
    user_id = clean.get("user-id", "")
    if not _USER_ID.fullmatch(user_id):
        raise MalformedMessage("no user-id tag")
    display_name = clean_text(clean.get("display-name", ""))[:MAX_DISPLAY_NAME] or login

    body = text[:MAX_TEXT]
    action = body.startswith("\x01ACTION ")
    if action:
        body = body.removeprefix("\x01ACTION ").removesuffix("\x01")

    sent_ts = clean.get("tmi-sent-ts", "")
    room_id = clean.get("room-id") or None
    source_room = clean.get("source-room-id") or None
    return ChatMessage(
        channel=channel,
        sender=Viewer(user_id, login, display_name),
        roles=roles_from_tags(clean, login=login, channel=channel),
        text=clean_text(body),
        message_id=clean.get("id") or None,
        received_at=received_at,
        room_id=room_id,
        sent_at_ms=int(sent_ts) if _TIMESTAMP.fullmatch(sent_ts) else None,
        action=action,
        shared_from=source_room if source_room and source_room != room_id else None,
    )
