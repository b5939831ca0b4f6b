"""Chat input, parsed: IRC tags to messages, text to commands, users and amounts (SPEC §5)."""

from __future__ import annotations

import pytest

from loyaltybot.chat.cooldowns import Cooldowns
from loyaltybot.chat.message import (
    ChatMessage,
    MalformedMessage,
    Permission,
    Roles,
    parse_privmsg,
    roles_from_tags,
    unescape_tag_value,
)
from loyaltybot.chat.outbox import BotRole
from loyaltybot.chat.registry import Invocation, parse_invocation, parse_login
from loyaltybot.chat.replies import (
    APOLOGY,
    GiveTooLarge,
    InvalidLogin,
    NotAllowed,
    OnCooldown,
    TargetLacksPoints,
    UsageError,
    cut,
    explain,
    format_duration,
)
from loyaltybot.clock import FakeClock
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    SelfTransfer,
    UnknownViewer,
)
from loyaltybot.settings import ChannelSettings

# A PRIVMSG's tags exactly as twitchio 2.10 hands them over: split, not unescaped, and
# the first key still carrying its "@".
TAGS = {
    "@badge-info": "subscriber/8",
    "badges": "subscriber/6,bits/100",
    "color": "#0D4200",
    "display-name": "Ronni\\sthe\\:Great",
    "emotes": "",
    "id": "b34ccfc7-4977-403a-8a94-33c6bac34fb8",
    "mod": "0",
    "room-id": "1337",
    "subscriber": "1",
    "tmi-sent-ts": "1507246572675",
    "turbo": "0",
    "user-id": "1234",
    "user-type": "",
}


def parse(
    text: str = "!points", login: str = "ronni", channel: str = "#dallas", **tags: str
) -> ChatMessage:
    return parse_privmsg(
        channel=channel, login=login, text=text, tags={**TAGS, **tags}, received_at=12.5
    )


# ---- tags ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("plain", "plain"),
        ("a\\sb", "a b"),
        ("a\\:b", "a;b"),
        ("a\\\\b", "a\\b"),
        ("a\\rb\\nc", "a\rb\nc"),
        ("a\\xb", "axb"),
        ("trailing\\", "trailing"),
        ("\\\\s", "\\s"),
        (
            "15\\sraiders\\sfrom\\sTestChannel\\shave\\sjoined\\n!",
            "15 raiders from TestChannel have joined\n!",
        ),
        ("", ""),
    ],
)
def test_unescape_tag_values(raw: str, value: str) -> None:
    """IRCv3 tag escapes are undone, including the odd cases of §1.8."""
    assert unescape_tag_value(raw) == value


def test_privmsg_becomes_a_chat_message() -> None:
    """Login, user id, unescaped display name, ids and times land in the message."""
    message = parse_privmsg(
        channel="#Dallas", login="Ronni", text="!points", tags=TAGS, received_at=12.5
    )
    assert message.channel == "dallas"
    assert (message.sender.user_id, message.sender.login) == ("1234", "ronni")
    assert message.sender.display_name == "Ronni the;Great"
    assert message.message_id == "b34ccfc7-4977-403a-8a94-33c6bac34fb8"
    assert (message.received_at, message.sent_at_ms, message.room_id) == (
        12.5,
        1507246572675,
        "1337",
    )
    assert message.roles == Roles(subscriber=True)
    assert (message.action, message.shared_from) == (False, None)


@pytest.mark.parametrize(
    ("tags", "login", "roles"),
    [
        ({"badges": "broadcaster/1,subscriber/12"}, "x", Roles(broadcaster=True, subscriber=True)),
        ({"badges": "", "user-id": "1337"}, "x", Roles(broadcaster=True)),
        ({"badges": ""}, "dallas", Roles(broadcaster=True)),
        ({"badges": "moderator/1", "mod": "1"}, "x", Roles(moderator=True)),
        ({"badges": "", "mod": "1"}, "x", Roles(moderator=True)),
        ({"badges": "vip/1", "vip": "1"}, "x", Roles(vip=True)),
        ({"badges": "founder/0"}, "x", Roles(subscriber=True)),
        ({"badges": "bits/1000,glhf-pledge/1"}, "x", Roles()),
        ({"badges": "", "mod": "0", "subscriber": "0"}, "x", Roles()),
    ],
)
def test_roles_from_badges_and_tags(tags: dict[str, str], login: str, roles: Roles) -> None:
    """Broadcaster, moderator, VIP and subscriber come from badges, tags and the room id."""
    base = {"user-id": "1234", "room-id": "1337", "mod": "0", "subscriber": "0"}
    assert roles_from_tags({**base, **tags}, login=login, channel="dallas") == roles


@pytest.mark.parametrize(
    ("roles", "everyone", "moderator", "broadcaster"),
    [
        (Roles(), True, False, False),
        (Roles(vip=True, subscriber=True), True, False, False),
        (Roles(moderator=True), True, True, False),
        (Roles(broadcaster=True), True, True, True),
    ],
)
def test_permissions(roles: Roles, everyone: bool, moderator: bool, broadcaster: bool) -> None:
    """Mods and the broadcaster manage points; only the broadcaster sets them."""
    assert roles.allows(Permission.EVERYONE) is everyone
    assert roles.allows(Permission.MODERATOR) is moderator
    assert roles.allows(Permission.BROADCASTER) is broadcaster


@pytest.mark.parametrize(
    ("roles", "role"),
    [
        (Roles(), BotRole.NONE),
        (Roles(subscriber=True), BotRole.NONE),
        (Roles(vip=True), BotRole.VIP),
        (Roles(moderator=True, vip=True), BotRole.MODERATOR),
        (Roles(broadcaster=True), BotRole.BROADCASTER),
    ],
)
def test_bot_role_from_userstate_roles(roles: Roles, role: BotRole) -> None:
    """The outbox's notion of the bot's role follows its USERSTATE badges."""
    assert BotRole.from_roles(roles) is role
    assert role.privileged is (role is not BotRole.NONE)


def test_action_and_invisible_characters() -> None:
    """/me lines are marked; the invisible anti-duplicate character is dropped."""
    message = parse("\x01ACTION !points\x01")
    assert (message.action, message.text) == (True, "!points")
    message = parse("!points \U000e0000")
    assert message.text == "!points"


def test_shared_chat_relay_is_marked() -> None:
    """A message Shared Chat relays from another room names that room."""
    assert parse(**{"source-room-id": "999"}).shared_from == "999"
    assert parse(**{"source-room-id": "1337"}).shared_from is None


@pytest.mark.parametrize(
    ("login", "tags"),
    [
        ("ronni", {"user-id": ""}),
        ("ronni", {"user-id": "12ab"}),
        ("bad login", {}),
        ("", {}),
        ("x" * 26, {}),
    ],
)
def test_malformed_privmsg(login: str, tags: dict[str, str]) -> None:
    """A message without a valid login or numeric user id cannot be attributed: refused."""
    with pytest.raises(MalformedMessage):
        parse(login=login, **tags)


def test_missing_display_name_falls_back_to_login() -> None:
    """An empty display-name tag is allowed; the login stands in."""
    assert parse(**{"display-name": ""}).sender.display_name == "ronni"


# ---- command text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!points", Invocation("points", ())),
        ("!POINTS", Invocation("points", ())),
        ("  !Give   @Bob   5  ", Invocation("give", ("@Bob", "5"))),
        ("!give\tbob 1,000", Invocation("give", ("bob", "1,000"))),
        ("!top\U000e0000", Invocation("top", ())),
        ("!cookies", Invocation("cookies", ())),
        ("!points " + " ".join(["x"] * 40), Invocation("points", tuple(["x"] * 16))),
        ("!", None),
        ("! points", None),
        ("points", None),
        ("hello !points", None),
        ("", None),
        ("!!points", None),
        ("!po-ints", None),
        ("!" + "a" * 33, None),
    ],
)
def test_parse_invocation(text: str, expected: Invocation | None) -> None:
    """Prefix `!`, case-insensitive name, whitespace-separated arguments (bounded)."""
    assert parse_invocation(text) == expected


@pytest.mark.parametrize(
    ("text", "login"),
    [
        ("bob", "bob"),
        ("@bob", "bob"),
        ("BOB", "bob"),
        ("@Bob_99", "bob_99"),
        ("bob,", "bob"),
        ("@bob:", "bob"),
        ("a" * 25, "a" * 25),
    ],
)
def test_user_arguments_are_exact_logins(text: str, login: str) -> None:
    """Users are written as exact logins, any case, with or without @ (SPEC §5)."""
    assert parse_login(text) == login


@pytest.mark.parametrize("text", ["", "@", "b@b", "bob!", "bo b", "a" * 26, "bøb", "@@bob", "#bob"])
def test_user_arguments_that_cannot_be_logins(text: str) -> None:
    """Anything that cannot be a Twitch login is refused by name."""
    with pytest.raises(InvalidLogin):
        parse_login(text)


# ---- sentences --------------------------------------------------------------------------

COOKIES = ChannelSettings(currency_name="cookie", currency_name_plural="cookies")


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (
            InvalidAmount("abc", "must be a whole number, like 100 or 1,000"),
            '"abc" is not a valid amount: it must be a whole number, like 100 or 1,000.',
        ),
        (
            InvalidAmount("x" * 100, "must be positive"),
            '"' + "x" * 24 + '…" is not a valid amount: it must be positive.',
        ),
        (InsufficientPoints(1234, 5000), "you only have 1,234 cookies."),
        (InsufficientPoints(1, 5), "you only have 1 cookie."),
        (TargetLacksPoints("bob", 60, 61), "bob only has 60 cookies, so nothing was removed."),
        (
            BalanceTooHigh(MAX_POINTS, 1, MAX_POINTS),
            "that balance is already at the most cookies anyone can hold.",
        ),
        (UnknownViewer("bob", "alice"), "I haven't seen bob in this channel yet."),
        (SelfTransfer("bob"), "you can't give cookies to yourself."),
        (UsageError("!give <user> <amount>"), "usage: !give <user> <amount>"),
        (NotAllowed("addpoints", Permission.MODERATOR), "only moderators can use !addpoints."),
        (
            NotAllowed("setpoints", Permission.BROADCASTER),
            "only the broadcaster can use !setpoints.",
        ),
        (InvalidLogin("b@d\nPRIVMSG"), '"b@d PRIVMSG" is not a Twitch username.'),
        (GiveTooLarge(2_000_000, 1_000_000), "you can give at most 1,000,000 cookies at a time."),
        (OnCooldown("give", 29.2), "please wait 30 s before using !give again."),
        (OnCooldown("give", 0.01), "please wait 1 s before using !give again."),
        (OnCooldown("give", 600), "please wait 10 min before using !give again."),
        (AlreadyApplied("x"), "that was already done."),
        (RuntimeError("database is locked at /srv/secret.db"), APOLOGY),
    ],
)
def test_every_refusal_has_one_short_sentence(error: BaseException, sentence: str) -> None:
    """Each domain and chat error reads as one short line; unknown ones never leak str(exc)."""
    assert explain(error, COOKIES) == sentence
    assert "\n" not in sentence
    assert len(sentence) < 120


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "less than a minute"),
        (0, "less than a minute"),
        (61, "1 minute"),
        (7200, "2 hours"),
        (7260, "2 hours 1 minute"),
        (86400, "1 day"),
        (86400 + 3600 * 5 + 60 * 59, "1 day 5 hours"),
        (400 * 86400, "400 days"),
    ],
)
def test_format_duration(seconds: int, said: str) -> None:
    """Watch time reads naturally, never as a raw number of seconds."""
    assert format_duration(seconds) == said


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("short", "short"),
        ("x" * 500, "x" * 500),
        ("x" * 501, "x" * 499 + "…"),
        ("a\r\nb", "a  b"),
        ("é" * 600, "é" * 499 + "…"),
    ],
)
def test_cut_to_one_line_of_500(text: str, expected: str) -> None:
    """Replies are one line of at most 500 characters."""
    assert cut(text) == expected


# ---- cooldowns ----------------------------------------------------------------------------


def test_cooldown_runs_out_on_the_clock() -> None:
    """A started cooldown blocks until its time passes, on the injected clock."""
    clock = FakeClock()
    cooldowns = Cooldowns(clock)
    assert cooldowns.try_start("k", 5) == 0
    assert cooldowns.try_start("k", 5) == pytest.approx(5)
    clock.advance(4)
    assert cooldowns.remaining("k") == pytest.approx(1)
    clock.advance(1)
    assert cooldowns.remaining("k") == 0
    assert cooldowns.try_start("k", 0) == 0
    assert len(cooldowns) == 0


def test_cooldowns_stay_bounded() -> None:
    """The map forgets expired entries, and never holds more than its bound."""
    clock = FakeClock()
    cooldowns = Cooldowns(clock, max_entries=100)
    for n in range(1000):
        cooldowns.start(n, 30)
    assert len(cooldowns) == 100
    assert cooldowns.remaining(999) > 0
    assert cooldowns.remaining(0) == 0
    clock.advance(31)
    cooldowns.start("new", 5)
    assert len(cooldowns) == 1


@pytest.mark.parametrize(
    ("tags", "channel", "role"),
    [({"@badge-info": "", "badges": "moderator/1", "mod": "1"}, "#dallas", BotRole.MODERATOR),
     ({"@badge-info": "", "badges": "vip/1", "mod": "0"}, "dallas", BotRole.VIP),
     ({"@badge-info": "", "badges": "", "mod": "0"}, "#mybot", BotRole.BROADCASTER),
     ({"@badge-info": "", "badges": "", "mod": "0"}, "#dallas", BotRole.NONE)],
)
def test_bot_role_from_userstate_tags(tags: dict[str, str], channel: str, role: BotRole) -> None:
    """USERSTATE tags (no user id) tell the outbox what the bot is in each channel."""
    assert BotRole.from_userstate(tags, bot_login="MyBot", channel=channel) is role
