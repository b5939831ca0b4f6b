"""Twitch's IRC dialect as text: tag escaping, line parsing and the lines the server sends.

Pure functions (no sockets), so the exact bytes are easy to test against the
reference's examples. Tags go out in alphabetical order, as Twitch sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loyaltybot.simulator.world import SimChannel, SimUser, color_for

SERVER = "tmi.twitch.tv"
EMOTE_SETS = "0,300374282"

# A few global emotes, so chat lines carry realistic ``emotes`` tags.
EMOTES = {
    "Kappa": "25",
    "Keepo": "1902",
    "LUL": "425618",
    "PogChamp": "305954156",
    "4Head": "354",
    "BibleThump": "86",
    "Kreygasm": "41",
    "SeemsGood": "64138",
    "HeyGuys": "30259",
    "VoHiYo": "81274",
}

NOTICE_TEXTS = {
    "msg_ratelimit": "Your message was not sent because you are sending messages too quickly.",
    "msg_duplicate": (
        "Your message was not sent because it is identical to the previous one you sent,"
        " less than 30 seconds ago."
    ),
    "msg_channel_suspended": "This channel does not exist or has been suspended.",
}

_ESCAPES = str.maketrans({"\\": "\\\\", ";": "\\:", " ": "\\s", "\r": "\\r", "\n": "\\n"})
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def escape_tag(value: str) -> str:
    """IRCv3 tag-value escaping: ``;`` -> ``\\:``, space -> ``\\s``, ``\\`` -> ``\\\\``, CR, LF."""
    return value.translate(_ESCAPES)


def unescape_tag(value: str) -> str:
    """The inverse; an unknown escape gives the character, a trailing lone ``\\`` is dropped."""
    if "\\" not in value:
        return value
    out = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is None:
            break
        out.append(_UNESCAPES.get(nxt, nxt))
    return "".join(out)


def format_tags(tags: Mapping[str, str]) -> str:
    """``@a=1;b=2`` with keys sorted and values escaped; empty string for no tags."""
    if not tags:
        return ""
    return "@" + ";".join(f"{k}={escape_tag(tags[k])}" for k in sorted(tags))


@dataclass(slots=True)
class IrcMessage:
    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str | None = None

    @property
    def trailing(self) -> str:
        return self.params[-1] if self.params else ""


def parse_line(line: str) -> IrcMessage | None:
    """One client line (without CRLF); None if it has no command."""
    rest = line.lstrip(" ")
    tags: dict[str, str] = {}
    prefix = None
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = unescape_tag(value)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    if not rest:
        return None
    params: list[str] = []
    if " :" in rest:
        head, _, trailing = rest.partition(" :")
        words = head.split()
        if not words:
            return None
        words.append(trailing)
    elif rest.startswith(":"):
        return None
    else:
        words = rest.split()
        if not words:
            return None
    command = words[0].upper()
    params = words[1:]
    return IrcMessage(command, params, tags, prefix)


def split_frame(frame: str) -> list[str]:
    """A WebSocket text frame may hold several lines; CRLF (or a bare LF) ends each."""
    return [line.rstrip("\r") for line in frame.split("\n") if line.strip("\r")]


def hostmask(login: str) -> str:
    return f"{login}!{login}@{login}.{SERVER}"


# ---- roles as tags ---------------------------------------------------------------------


def _sub_badge_version(tier: str, months: int) -> str:
    steps = (0, 3, 6, 9, 12, 24, 36, 48, 60, 72, 84, 96, 108)
    tenure = max(s for s in steps if s <= max(months, 0))
    offset = {"1000": 0, "2000": 2000, "3000": 3000}.get(tier, 0)
    return str(offset + tenure)


def role_tags(channel: SimChannel, user: SimUser) -> dict[str, str]:
    """badge-info, badges, mod, subscriber, user-type and (VIPs only) vip, from roles."""
    uid = user.id
    badges = []
    if channel.is_broadcaster(uid):
        badges.append("broadcaster/1")
    is_mod = uid in channel.mods
    if is_mod:
        badges.append("moderator/1")
    is_vip = uid in channel.vips
    if is_vip:
        badges.append("vip/1")
    sub = channel.subs.get(uid)
    badge_info = ""
    if sub is not None:
        badges.append(f"subscriber/{_sub_badge_version(sub.tier, sub.months)}")
        badge_info = f"subscriber/{sub.months}"
    tags = {
        "badge-info": badge_info,
        "badges": ",".join(badges),
        "mod": "1" if is_mod else "0",
        "subscriber": "1" if sub is not None else "0",
        "user-type": "mod" if is_mod else "",
    }
    if is_vip:
        tags["vip"] = "1"
    return tags


def emotes_tag(text: str) -> str:
    """``25:0-4,12-16/1902:6-10`` for the known emotes in text (code-point positions)."""
    body = text
    if body.startswith("\x01ACTION ") and body.endswith("\x01"):
        body = body[len("\x01ACTION ") : -1]
    found: dict[str, list[str]] = {}
    pos = 0
    for word in body.split(" "):
        emote_id = EMOTES.get(word)
        if emote_id is not None:
            found.setdefault(emote_id, []).append(f"{pos}-{pos + len(word) - 1}")
        pos += len(word) + 1
    return "/".join(f"{eid}:{','.join(spans)}" for eid, spans in found.items())


# ---- server lines ----------------------------------------------------------------------


def welcome_lines(nick: str) -> list[str]:
    s = SERVER
    return [
        f":{s} 001 {nick} :Welcome, GLHF!",
        f":{s} 002 {nick} :Your host is {s}",
        f":{s} 003 {nick} :This server is rather new",
        f":{s} 004 {nick} :-",
        f":{s} 375 {nick} :-",
        f":{s} 372 {nick} :You are in a maze of twisty passages, all alike.",
        f":{s} 376 {nick} :>",
    ]


def globaluserstate_tags(user: SimUser) -> dict[str, str]:
    return {
        "badge-info": "",
        "badges": "",
        "color": color_for(user.id),
        "display-name": user.display_name,
        "emote-sets": EMOTE_SETS,
        "turbo": "0",
        "user-id": user.id,
        "user-type": "",
    }


def userstate_tags(channel: SimChannel, user: SimUser) -> dict[str, str]:
    tags = role_tags(channel, user)
    tags.update(
        {"color": color_for(user.id), "display-name": user.display_name, "emote-sets": EMOTE_SETS}
    )
    return tags


def roomstate_tags(channel: SimChannel) -> dict[str, str]:
    return {
        "emote-only": "0",
        "followers-only": "-1",
        "r9k": "0",
        "room-id": channel.id,
        "slow": "0",
        "subs-only": "0",
    }


def join_lines(nick: str, channel: str) -> list[str]:
    """JOIN echo, NAMES (353/366) for a channel the client just joined."""
    return [
        f":{hostmask(nick)} JOIN #{channel}",
        f":{nick}.{SERVER} 353 {nick} = #{channel} :{nick}",
        f":{nick}.{SERVER} 366 {nick} #{channel} :End of /NAMES list",
    ]


def privmsg_tags(
    channel: SimChannel,
    user: SimUser,
    text: str,
    *,
    msg_id: str,
    sent_ms: int,
    first_msg: bool,
) -> dict[str, str]:
    tags = role_tags(channel, user)
    tags.update(
        {
            "color": color_for(user.id),
            "display-name": user.display_name,
            "emotes": emotes_tag(text),
            "first-msg": "1" if first_msg else "0",
            "flags": "",
            "id": msg_id,
            "returning-chatter": "0",
            "room-id": channel.id,
            "tmi-sent-ts": str(sent_ms),
            "turbo": "0",
            "user-id": user.id,
        }
    )
    return tags


def notice_line(channel: str, msg_id: str, text: str | None = None) -> tuple[str, str]:
    """(tags, rest) of a NOTICE with a msg-id; the text defaults to Twitch's wording."""
    body = text if text is not None else NOTICE_TEXTS.get(msg_id, msg_id)
    return format_tags({"msg-id": msg_id}), f":{SERVER} NOTICE #{channel} :{body}"


_PLAN_NAMES = {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3", "Prime": "Prime"}


def usernotice_params(
    kind: str,
    channel: SimChannel,
    user: SimUser,
    params: Mapping[str, str],
    recipient: SimUser | None = None,
) -> tuple[dict[str, str], str]:
    """The msg-param-* tags (defaults filled in for sub, resub, subgift, raid) and system-msg.

    ``params`` keys may be given with or without the ``msg-param-`` prefix and with
    ``_`` for ``-`` (``cumulative_months``); camelCase ones (``viewerCount``) are kept.
    """
    given = {_param_key(k): str(v) for k, v in params.items()}
    system_override = given.pop("system-msg", None)
    who = user.display_name
    sub = channel.subs.get(user.id)
    plan = given.get("msg-param-sub-plan", sub.tier if sub is not None else "1000")
    plan_name = f"Channel Subscription ({channel.login})"
    out: dict[str, str] = {}
    if kind in ("sub", "resub"):
        months = given.get("msg-param-cumulative-months", "1" if kind == "sub" else "2")
        out = {
            "msg-param-cumulative-months": months,
            "msg-param-should-share-streak": "0",
            "msg-param-streak-months": "0",
            "msg-param-sub-plan": plan,
            "msg-param-sub-plan-name": plan_name,
        }
        how = "with Prime" if plan == "Prime" else f"at {_PLAN_NAMES.get(plan, plan)}"
        system = f"{who} subscribed {how}."
        if kind == "resub":
            system += f" They've subscribed for {months} months!"
    elif kind == "subgift":
        if recipient is None:
            raise ValueError("a subgift needs recipient=<login>")
        out = {
            "msg-param-gift-months": "1",
            "msg-param-months": "1",
            "msg-param-recipient-display-name": recipient.display_name,
            "msg-param-recipient-id": recipient.id,
            "msg-param-recipient-user-name": recipient.login,
            "msg-param-sub-plan": plan,
            "msg-param-sub-plan-name": plan_name,
        }
        system = f"{who} gifted a {_PLAN_NAMES.get(plan, plan)} sub to {recipient.display_name}!"
    elif kind == "raid":
        viewers = given.get("msg-param-viewerCount", "1")
        out = {
            "msg-param-displayName": who,
            "msg-param-login": user.login,
            "msg-param-viewerCount": viewers,
        }
        system = f"{viewers} raiders from {who} have joined!"
    else:
        system = f"{who} did a {kind}."
    out.update(given)
    return out, system_override if system_override is not None else system


def _param_key(key: str) -> str:
    if key == "system_msg" or key == "system-msg":
        return "system-msg"
    if key.startswith(("msg-param-", "msg_param_")):
        key = key[len("msg-param-") :]
    return "msg-param-" + key.replace("_", "-")


def usernotice_tags(
    channel: SimChannel,
    user: SimUser,
    kind: str,
    params: Mapping[str, str],
    system_msg: str,
    *,
    msg_id: str,
    sent_ms: int,
) -> dict[str, str]:
    tags = role_tags(channel, user)
    tags.update(
        {
            "color": color_for(user.id),
            "display-name": user.display_name,
            "emotes": "",
            "flags": "",
            "id": msg_id,
            "login": user.login,
            "msg-id": kind,
            "room-id": channel.id,
            "system-msg": system_msg,
            "tmi-sent-ts": str(sent_ms),
            "turbo": "0",
            "user-id": user.id,
        }
    )
    tags.update(params)
    return tags
