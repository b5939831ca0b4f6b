"""Chat commands on a real SQLite bank: every SPEC §5 command, alias, refusal and cooldown."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from loyaltybot.chat.message import ChatMessage, Roles
from loyaltybot.chat.registry import Command, CommandContext, CommandHandler
from loyaltybot.chat.replies import APOLOGY, MAX_REPLY_CHARS, Reply
from loyaltybot.clock import FakeClock
from loyaltybot.db import Store, Tx
from loyaltybot.features.wallet.commands import WalletCommands
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings
from tests.conftest import CHANNEL, viewer

BOT = "mybot"
USER1 = viewer(1)
BROADCASTER = Viewer("5000", CHANNEL, "Alice")
MOD = Viewer("5001", "alice_mod", "Alice_Mod")
VIEWER = Roles()
MOD_ROLES = Roles(moderator=True)
OWNER = Roles(broadcaster=True)
_ids = itertools.count(1)


class Presence:
    """Who is in each channel: the earning module's part, as a plain dict."""

    def __init__(self) -> None:
        self.viewers: dict[str, list[Viewer]] = {}

    def present(self, channel: str) -> Sequence[Viewer]:
        return self.viewers.get(channel, [])


class Titles:
    def __init__(self) -> None:
        self.titles: dict[tuple[str, str], str] = {}

    async def badge(self, channel: str, user_id: str) -> str | None:
        """What ``!points`` adds: the title, as the rewards feature words it."""
        title = self.titles.get((channel, user_id))
        return f"title: {title}" if title else None


class Chat:
    """A test driver: says things in chat as someone, returns the bot's reply text."""

    def __init__(self, handler: CommandHandler, clock: FakeClock) -> None:
        self.handler = handler
        self.clock = clock

    def message(
        self, text: str, who: Viewer, roles: Roles = VIEWER, channel: str = CHANNEL
    ) -> ChatMessage:
        return ChatMessage(
            channel=channel,
            sender=who,
            roles=roles,
            text=text,
            message_id=f"msg-{next(_ids)}",
            received_at=self.clock.monotonic(),
        )

    async def replies(
        self, text: str, who: Viewer = USER1, roles: Roles = VIEWER, channel: str = CHANNEL
    ) -> list[Reply]:
        return await self.handler.handle(self.message(text, who, roles, channel))

    async def say(
        self, text: str, who: Viewer = USER1, roles: Roles = VIEWER, channel: str = CHANNEL
    ) -> str | None:
        replies = await self.replies(text, who, roles, channel)
        assert len(replies) <= 1
        return replies[0].text if replies else None

    def later(self, seconds: float = 60.0) -> None:
        """Let every cooldown run out."""
        self.clock.advance(seconds)


COOKIES = ChannelSettings(currency_name="cookie", currency_name_plural="cookies")


@pytest.fixture
def presence() -> Presence:
    return Presence()


@pytest.fixture
def titles() -> Titles:
    return Titles()


@pytest.fixture
def channel_settings() -> dict[str, ChannelSettings]:
    return {CHANNEL: COOKIES, "bob_tv": ChannelSettings()}


@pytest.fixture
def handler(
    bank: Bank,
    clock: FakeClock,
    presence: Presence,
    titles: Titles,
    channel_settings: dict[str, ChannelSettings],
) -> CommandHandler:
    def settings_for(channel: str) -> ChannelSettings:
        try:
            return channel_settings[channel]
        except KeyError:
            raise UnknownChannel(channel) from None

    return CommandHandler(
        bank,
        settings_for=settings_for,
        clock=clock,
        bot_login=BOT,
        commands=WalletCommands(presence.present, [titles.badge]).commands(),
    )


@pytest.fixture
async def chat(handler: CommandHandler, clock: FakeClock, bank: Bank) -> AsyncIterator[Chat]:
    yield Chat(handler, clock)
    assert await bank.audit() == [], "the books must balance after every chat test"


async def fund(bank: Bank, who: Viewer, amount: int, channel: str = CHANNEL) -> None:
    await bank.credit(channel, who, amount, kind=EntryType.ADD)


async def balance(bank: Bank, who: Viewer, channel: str = CHANNEL) -> int | None:
    record = await bank.viewer_by_id(channel, who.user_id)
    return None if record is None else record.points


async def ledger_rows(store: Store) -> int:
    return int((await store.read(lambda c: c.execute("SELECT count(*) FROM ledger").fetchone()))[0])


# ---- !points and its aliases ------------------------------------------------------------


async def test_points_reply_has_spec_wording(chat: Chat, bank: Bank) -> None:
    """`!points` answers `@bob, you have 1,234 cookies (rank #5)`."""
    for n, amount in enumerate([9000, 8000, 7000, 6000, 1234], start=2):
        await fund(bank, viewer(n), amount)
    bob = Viewer("2000", "bob", "Bob")
    await fund(bank, bob, 1234)
    assert await chat.say("!points", bob) == "@bob, you have 1,234 cookies (rank #5)"


@pytest.mark.parametrize(
    "text",
    [
        "!points",
        "!POINTS",
        "!Points",
        "!cookie",
        "!cookies",
        "!COOKIES",
        "  !points  ",
        "!points\U000e0000",
    ],
)
async def test_points_aliases_and_case(chat: Chat, bank: Bank, text: str) -> None:
    """The currency names (singular and plural) alias !points, in any case."""
    await fund(bank, viewer(1), 1)
    assert await chat.say(text) == "@user1, you have 1 cookie (rank #1)"


async def test_default_currency_aliases_follow_the_channel(chat: Chat, bank: Bank) -> None:
    """Aliases come from each channel's own settings: !cookies means nothing in bob_tv."""
    assert await chat.say("!cookies", channel="bob_tv") is None
    assert await chat.say("!points", channel="bob_tv") == "@user1, you have 0 points"
    chat.later()
    assert await chat.say("!point", channel="bob_tv") == "@user1, you have 0 points"


async def test_points_of_another_user_by_exact_login(chat: Chat, bank: Bank) -> None:
    """`!points @Bob` shows bob's balance; the login matches exactly, in any case."""
    await fund(bank, Viewer("2000", "bob", "Bob"), 50)
    await fund(bank, Viewer("2001", "bobby", "Bobby"), 70)
    assert await chat.say("!points @BOB") == "@user1, bob has 50 cookies (rank #2)"
    chat.later()
    assert await chat.say("!points bo") == "@user1, I haven't seen bo in this channel yet."
    chat.later()
    assert await chat.say("!points b@d!") == '@user1, "b@d!" is not a Twitch username.'


async def test_points_for_someone_with_nothing(chat: Chat) -> None:
    """A viewer without a row or points has 0 and no rank."""
    assert await chat.say("!points") == "@user1, you have 0 cookies"


async def test_points_shows_title(chat: Chat, bank: Bank, titles: Titles) -> None:
    """A title unlocked through rewards is shown by !points."""
    await fund(bank, viewer(1), 10)
    titles.titles[(CHANNEL, viewer(1).user_id)] = "Cookie Monster"
    assert (
        await chat.say("!points") == "@user1, you have 10 cookies (rank #1) · title: Cookie Monster"
    )


async def test_reply_answers_the_message(chat: Chat, clock: FakeClock) -> None:
    """A reply names the channel, threads onto the command and carries its arrival time."""
    message = chat.message("!points", viewer(1))
    [reply] = await chat.handler.handle(message)
    assert reply.channel == CHANNEL
    assert reply.reply_to == message.message_id
    assert reply.created_at == message.received_at == clock.monotonic()


# ---- !watchtime and !leaderboard --------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "1 minute"),
        (25 * 60, "25 minutes"),
        (3600, "1 hour"),
        (3 * 3600 + 5 * 60, "3 hours 5 minutes"),
        (26 * 3600 + 59, "1 day 2 hours"),
        (50 * 86400, "50 days"),
    ],
)
async def test_watchtime_is_formatted_nicely(
    chat: Chat, bank: Bank, store: Store, seconds: int, said: str
) -> None:
    """!watchtime says hours and minutes the way people do."""
    await fund(bank, viewer(1), 1)

    def watch(tx: Tx) -> None:
        tx.conn.execute("UPDATE viewers SET watch_seconds = ? WHERE user_id = ?", (seconds, "1001"))

    await store.write(watch)
    assert await chat.say("!watchtime") == f"@user1, you have watched for {said}."
    chat.later()
    assert await chat.say("!watchtime user1", viewer(2)) == f"@user2, user1 has watched for {said}."


async def test_watchtime_of_unknown_user(chat: Chat) -> None:
    """Asking for a viewer never seen says so."""
    assert await chat.say("!watchtime ghost") == "@user1, I haven't seen ghost in this channel yet."


async def test_leaderboard_top_five_and_alias(chat: Chat, bank: Bank) -> None:
    """!leaderboard and !top list the five richest, ranked."""
    for n in range(1, 8):
        await fund(bank, viewer(n), n * 1000)
    expected = (
        "@user1, top cookies: #1 user7 (7,000), #2 user6 (6,000), #3 user5 (5,000),"
        " #4 user4 (4,000), #5 user3 (3,000)"
    )
    assert await chat.say("!leaderboard") == expected
    assert await chat.say("!top") is None  # the same command: the same cooldown
    chat.later()
    assert await chat.say("!TOP") == expected


async def test_leaderboard_when_empty(chat: Chat) -> None:
    """An empty channel gets a sentence, not an empty list."""
    assert await chat.say("!top") == "@user1, nobody has any cookies yet."


# ---- !give --------------------------------------------------------------------------------


async def test_give_moves_points_between_viewers(chat: Chat, bank: Bank) -> None:
    """!give transfers, answers with what is left, and both balances change exactly."""
    await fund(bank, viewer(1), 1000)
    await fund(bank, viewer(2), 5)
    reply = await chat.say("!give @User2 250")
    assert reply == "@user1, you gave 250 cookies to user2; you have 750 cookies left."
    assert (await balance(bank, viewer(1)), await balance(bank, viewer(2))) == (750, 255)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("0", "must be at least 1"),
        ("-5", "must be positive"),
        ("1e5", "must be a whole number"),
        ("1.5", "must be a whole number"),
        ("abc", "must be a whole number"),
        ("99999999999999999999", "must be at most"),
        ("1,00", "must be a whole number"),
    ],
)
async def test_give_refuses_bad_amounts(
    chat: Chat, bank: Bank, store: Store, amount: str, reason: str
) -> None:
    """Each malformed amount of SPEC §5 gets a clear reply and changes nothing."""
    await fund(bank, viewer(1), 1000)
    await fund(bank, viewer(2), 0 + 1)
    rows = await ledger_rows(store)
    reply = await chat.say(f"!give user2 {amount}")
    assert reply is not None
    assert reply.startswith(f'@user1, "{amount}" is not a valid amount: it {reason}')
    assert (await balance(bank, viewer(1)), await balance(bank, viewer(2))) == (1000, 1)
    assert await ledger_rows(store) == rows


async def test_give_maximum_per_transfer(
    chat: Chat, bank: Bank, channel_settings: dict[str, ChannelSettings]
) -> None:
    """!give above give_max is refused with the maximum; exactly give_max goes through."""
    await fund(bank, viewer(1), 3_000_000)
    await fund(bank, viewer(2), 1)
    assert await chat.say("!give user2 1,000,001") == (
        "@user1, you can give at most 1,000,000 cookies at a time."
    )
    assert await balance(bank, viewer(1)) == 3_000_000
    assert (await chat.say("!give user2 1000000") or "").startswith("@user1, you gave 1,000,000")
    channel_settings[CHANNEL] = COOKIES.model_copy(update={"give_max": 10})
    chat.later()
    assert await chat.say("!give user2 11") == "@user1, you can give at most 10 cookies at a time."


@pytest.mark.parametrize("target", ["user1", "@USER1", "User1,"])
async def test_give_to_self_is_refused(chat: Chat, bank: Bank, target: str) -> None:
    """No self-gifts, whatever case or @ the login is written with."""
    await fund(bank, viewer(1), 100)
    assert await chat.say(f"!give {target} 5") == "@user1, you can't give cookies to yourself."
    assert await balance(bank, viewer(1)) == 100


async def test_give_never_matches_a_substring(chat: Chat, bank: Bank) -> None:
    """`!give bob 5` must not pay `bobby`: unknown `bob` is refused, bobby is untouched."""
    await fund(bank, viewer(1), 100)
    bobby = Viewer("2001", "bobby", "Bobby")
    await fund(bank, bobby, 10)
    for text in ("!give bob 5", "!give bobb 5", "!give obby 5"):
        reply = await chat.say(text)
        assert reply is not None
        assert "I haven't seen" in reply
        chat.later()
    assert (await balance(bank, viewer(1)), await balance(bank, bobby)) == (100, 10)


async def test_give_to_a_viewer_never_seen_is_refused(chat: Chat, bank: Bank) -> None:
    """The receiver must be a known viewer of this channel (seen elsewhere does not count)."""
    await fund(bank, viewer(1), 100)
    await fund(bank, viewer(9), 1, channel="bob_tv")
    assert await chat.say("!give user9 5") == "@user1, I haven't seen user9 in this channel yet."
    assert await balance(bank, viewer(9)) is None


async def test_give_more_than_you_have(chat: Chat, bank: Bank) -> None:
    """Overdraft is refused with the sender's balance."""
    await fund(bank, viewer(1), 10)
    await fund(bank, viewer(2), 1)
    assert await chat.say("!give user2 11") == "@user1, you only have 10 cookies."
    assert await balance(bank, viewer(1)) == 10


async def test_give_to_a_full_balance(chat: Chat, bank: Bank) -> None:
    """A receiver already at 2^53-1 cannot take more; nothing moves."""
    await fund(bank, viewer(1), 10)
    await bank.set_balance(CHANNEL, viewer(2), MAX_POINTS)
    assert await chat.say("!give user2 5") == (
        "@user1, user2 already has the most cookies anyone can hold."
    )
    assert await balance(bank, viewer(1)) == 10


@pytest.mark.parametrize(
    "text", ["!give", "!give user2", "!give 5 user2", "!give user2 1 000", "!give user2 5 extra"]
)
async def test_give_usage(chat: Chat, bank: Bank, text: str) -> None:
    """Wrong shapes get the usage line (never a guess: `1 000` is not read as 1)."""
    await fund(bank, viewer(1), 5000)
    await fund(bank, viewer(2), 1)
    assert await chat.say(text) == "@user1, usage: !give <user> <amount>"
    assert await balance(bank, viewer(1)) == 5000


async def test_give_cooldown_says_how_long_to_wait(chat: Chat, bank: Bank) -> None:
    """After a transfer the sender waits 30 s, and the reply says how long."""
    await fund(bank, viewer(1), 100)
    await fund(bank, viewer(2), 1)
    assert (await chat.say("!give user2 1") or "").startswith("@user1, you gave 1 cookie")
    assert await chat.say("!give user2 1") == "@user1, please wait 30 s before using !give again."
    chat.later(29.5)
    # within 5 s of the last refusal: no second "please wait", so spam gets one answer
    assert await chat.say("!give user2 1") == "@user1, please wait 1 s before using !give again."
    chat.later(0.5)
    assert (await chat.say("!give user2 1") or "").startswith("@user1, you gave 1 cookie")
    assert await balance(bank, viewer(1)) == 98


async def test_failed_give_does_not_start_the_cooldown(chat: Chat, bank: Bank) -> None:
    """A typo does not lock the sender out: the corrected !give goes through at once."""
    await fund(bank, viewer(1), 100)
    await fund(bank, viewer(2), 1)
    assert await chat.say("!give usr2 10") == "@user1, I haven't seen usr2 in this channel yet."
    assert (await chat.say("!give user2 10") or "").startswith("@user1, you gave 10 cookies")


async def test_refusals_are_throttled_per_user(chat: Chat, bank: Bank) -> None:
    """A user spamming bad commands gets one refusal per 5 s, not one per message."""
    await fund(bank, viewer(1), 100)
    assert await chat.say("!give nobody 1") is not None
    assert await chat.say("!give nobody 1") is None
    assert await chat.say("!give nobody abc") is None
    chat.later(5)
    assert await chat.say("!give nobody 1") is not None


async def test_give_cooldown_applies_per_sender_and_channel(chat: Chat, bank: Bank) -> None:
    """One sender's cooldown does not hold back another, nor the same sender elsewhere."""
    for n in (1, 2, 3):
        await fund(bank, viewer(n), 100)
    await fund(bank, viewer(1), 100, channel="bob_tv")
    await fund(bank, viewer(2), 100, channel="bob_tv")
    assert (await chat.say("!give user3 1", viewer(1)) or "").startswith("@user1, you gave")
    assert (await chat.say("!give user3 1", viewer(2)) or "").startswith("@user2, you gave")
    reply = await chat.say("!give user2 1", viewer(1), channel="bob_tv")
    assert (reply or "").startswith("@user1, you gave 1 point")


# ---- read cooldowns -----------------------------------------------------------------------


async def test_read_commands_cool_down_silently(chat: Chat, bank: Bank) -> None:
    """A second !points within 5 s is ignored; other commands and other users are not."""
    assert await chat.say("!points") is not None
    assert await chat.say("!points") is None
    assert await chat.say("!cookies") is None  # an alias is the same command
    assert await chat.say("!watchtime") is not None
    assert await chat.say("!points", viewer(2)) is not None
    chat.later(4.9)
    assert await chat.say("!points") is None
    chat.later(0.1)
    assert await chat.say("!points") is not None


async def test_moderators_skip_read_cooldowns(chat: Chat) -> None:
    """Mods and the broadcaster get every answer (they are trusted; see commands.py)."""
    for _ in range(3):
        assert await chat.say("!points", MOD, MOD_ROLES) is not None
        assert await chat.say("!top", BROADCASTER, OWNER) is not None


async def test_cooldowns_come_from_settings(
    chat: Chat, bank: Bank, channel_settings: dict[str, ChannelSettings]
) -> None:
    """command_cooldown_seconds and give_cooldown_seconds are the channel's settings."""
    channel_settings[CHANNEL] = COOKIES.model_copy(
        update={"command_cooldown_seconds": 0.0, "give_cooldown_seconds": 2.0}
    )
    await fund(bank, viewer(1), 100)
    await fund(bank, viewer(2), 1)
    assert await chat.say("!points") is not None
    assert await chat.say("!points") is not None
    assert (await chat.say("!give user2 1") or "").startswith("@user1, you gave")
    assert await chat.say("!give user2 1") == "@user1, please wait 2 s before using !give again."
    chat.later(2)
    assert (await chat.say("!give user2 1") or "").startswith("@user1, you gave")


# ---- moderator commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("!addpoints user2 5", "moderators"),
        ("!removepoints user2 5", "moderators"),
        ("!setpoints user2 5", "the broadcaster"),
    ],
)
async def test_viewers_cannot_manage_points(
    chat: Chat, bank: Bank, store: Store, text: str, who: str
) -> None:
    """Permission refusals say who may use the command, and change nothing."""
    await fund(bank, viewer(2), 10)
    rows = await ledger_rows(store)
    command = text.split()[0]
    assert await chat.say(text, viewer(1), Roles(vip=True, subscriber=True)) == (
        f"@user1, only {who} can use {command}."
    )
    assert await balance(bank, viewer(2)) == 10
    assert await ledger_rows(store) == rows


async def test_moderator_cannot_setpoints(chat: Chat, bank: Bank) -> None:
    """!setpoints is the broadcaster's alone."""
    await fund(bank, viewer(2), 10)
    assert await chat.say("!setpoints user2 0", MOD, MOD_ROLES) == (
        "@alice_mod, only the broadcaster can use !setpoints."
    )
    assert await balance(bank, viewer(2)) == 10


@pytest.mark.parametrize(("who", "roles"), [(MOD, MOD_ROLES), (BROADCASTER, OWNER)])
async def test_addpoints_by_mod_and_broadcaster(
    chat: Chat, bank: Bank, store: Store, who: Viewer, roles: Roles
) -> None:
    """!addpoints credits through the ledger with the actor recorded."""
    await fund(bank, viewer(2), 10)
    assert await chat.say("!addpoints @User2 1,000", who, roles) == (
        f"@{who.login}, gave user2 1,000 cookies; they now have 1,010 cookies."
    )
    [(kind, actor, reason)] = await store.read(
        lambda c: c.execute(
            "SELECT type, actor, reason FROM ledger WHERE user_id = '1002' ORDER BY id DESC LIMIT 1"
        ).fetchall()
    )
    assert (kind, actor, reason) == ("add", who.login, "!addpoints")


async def test_addpoints_to_unknown_user(chat: Chat) -> None:
    """Moderators can only add to viewers the channel has seen (a login alone has no id)."""
    assert await chat.say("!addpoints ghost 5", MOD, MOD_ROLES) == (
        "@alice_mod, I haven't seen ghost in this channel yet."
    )


async def test_addpoints_clamps_at_the_maximum(chat: Chat, bank: Bank) -> None:
    """A credit near 2^53-1 applies what fits and says so; at the maximum it is refused."""
    await bank.set_balance(CHANNEL, viewer(2), MAX_POINTS - 3)
    reply = await chat.say("!addpoints user2 10", MOD, MOD_ROLES)
    assert reply == (
        f"@alice_mod, gave user2 3 cookies (all that fit under the maximum);"
        f" they now have {MAX_POINTS:,} cookies."
    )
    assert await chat.say("!addpoints user2 10", MOD, MOD_ROLES) == (
        "@alice_mod, user2 already has the most cookies anyone can hold."
    )


async def test_addpoints_all_credits_everyone_present_in_one_transaction(
    chat: Chat, bank: Bank, store: Store, presence: Presence
) -> None:
    """`!addpoints all` pays every present viewer once, in one commit, minus bot/owner/ignored."""
    nightbot = Viewer("6000", "nightbot", "Nightbot")
    bank.set_excluded(CHANNEL, {"nightbot"})
    presence.viewers[CHANNEL] = [
        viewer(1),
        viewer(2),
        viewer(3),
        viewer(2),  # a duplicate is paid once
        Viewer("7000", BOT, "MyBot"),
        BROADCASTER,
        nightbot,
    ]
    await bank.set_balance(CHANNEL, viewer(3), MAX_POINTS)
    commits: list[int] = []
    store.on_commit(lambda effects, external: commits.append(len(effects)))
    reply = await chat.say("!addpoints all 50", MOD, MOD_ROLES)
    assert reply == (
        "@alice_mod, gave 50 cookies to each of 2 viewers here (1 already had the maximum)."
    )
    assert commits == [2]
    assert (await balance(bank, viewer(1)), await balance(bank, viewer(2))) == (50, 50)
    for left_out in (BROADCASTER, nightbot, Viewer("7000", BOT, "MyBot")):
        assert await balance(bank, left_out) is None


async def test_addpoints_all_with_nobody_present(chat: Chat, presence: Presence) -> None:
    """With nobody here, `!addpoints all` says so and writes nothing."""
    presence.viewers[CHANNEL] = [BROADCASTER]
    assert await chat.say("!addpoints all 5", MOD, MOD_ROLES) == (
        "@alice_mod, nobody is here to receive cookies right now."
    )


async def test_addpoints_at_all_means_the_user_named_all(chat: Chat, bank: Bank) -> None:
    """`@all` is a login, not everyone."""
    everyone = Viewer("8000", "all", "All")
    await fund(bank, everyone, 1)
    assert await chat.say("!addpoints @all 4", MOD, MOD_ROLES) == (
        "@alice_mod, gave all 4 cookies; they now have 5 cookies."
    )


async def test_removepoints_and_its_refusal(chat: Chat, bank: Bank, store: Store) -> None:
    """!removepoints takes points; asking for more than the balance names it and changes nothing."""
    await fund(bank, viewer(2), 100)
    assert await chat.say("!removepoints user2 40", MOD, MOD_ROLES) == (
        "@alice_mod, took 40 cookies from user2; they now have 60 cookies."
    )
    rows = await ledger_rows(store)
    assert await chat.say("!removepoints user2 61", MOD, MOD_ROLES) == (
        "@alice_mod, user2 only has 60 cookies, so nothing was removed."
    )
    assert await balance(bank, viewer(2)) == 60
    assert await ledger_rows(store) == rows


@pytest.mark.parametrize(("amount", "result"), [("0", 0), ("5", 5), ("1,000", 1000)])
async def test_setpoints_by_broadcaster(chat: Chat, bank: Bank, amount: str, result: int) -> None:
    """!setpoints sets a balance exactly (0 allowed)."""
    await fund(bank, viewer(2), 77)
    assert await chat.say(f"!setpoints user2 {amount}", BROADCASTER, OWNER) == (
        f"@alice, user2 now has {result:,} {'cookie' if result == 1 else 'cookies'}."
    )
    assert await balance(bank, viewer(2)) == result


@pytest.mark.parametrize(
    "text",
    [
        "!setpoints user2 -1",
        "!setpoints user2 1e5",
        "!removepoints user2 0",
        "!addpoints user2 1.5",
        "!addpoints all abc",
        "!addpoints user2",
        "!setpoints",
    ],
)
async def test_moderator_commands_refuse_bad_input(chat: Chat, bank: Bank, text: str) -> None:
    """Bad amounts and shapes in moderator commands are refused and change nothing."""
    await fund(bank, viewer(2), 77)
    reply = await chat.say(text, BROADCASTER, OWNER)
    assert reply is not None
    assert "not a valid amount" in reply or "usage:" in reply
    assert await balance(bank, viewer(2)) == 77


# ---- identity ---------------------------------------------------------------------------


async def test_renamed_viewer_keeps_points(chat: Chat, bank: Bank, store: Store) -> None:
    """Viewers are keyed by user id: after a rename the balance follows, and so does !give."""
    await fund(bank, viewer(1), 300)
    await fund(bank, viewer(2), 1)
    renamed = Viewer(viewer(1).user_id, "newname", "NewName")
    assert await chat.say("!points", renamed) == "@newname, you have 300 cookies (rank #1)"
    assert (await chat.say("!give user2 100", renamed) or "").startswith("@newname, you gave")
    record = await bank.viewer(CHANNEL, "newname")
    assert record is not None
    assert record.points == 200
    history = await store.read(lambda c: c.execute("SELECT login FROM login_history").fetchall())
    assert history == [("user1",)]
    assert await chat.say("!points user1", viewer(3)) == (
        "@user3, I haven't seen user1 in this channel yet."
    )


# ---- what is not a command ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "points",
        "!",
        "! points",
        "!!points",
        "!nosuch",
        "!pointsx",
        "hi !points",
        "",
        "!votes",
    ],
)
async def test_non_commands_and_unknown_commands_get_no_reply(chat: Chat, text: str) -> None:
    """Unknown commands and ordinary chat are ignored."""
    assert await chat.say(text) is None


async def test_ignores_the_bot_actions_shared_chat_and_unknown_channels(chat: Chat) -> None:
    """The bot's own lines, /me, Shared Chat relays and unconfigured channels are not commands."""
    assert await chat.say("!points", Viewer("7000", BOT, "MyBot")) is None
    message = chat.message("!points", viewer(1))
    for variant in (
        replace(message, action=True),
        replace(message, shared_from="999"),
        replace(message, channel="nowhere"),
    ):
        assert await chat.handler.handle(variant) == []
    assert await chat.handler.handle(message) != []


# ---- registry, long replies, failures -----------------------------------------------------


async def test_registered_command_and_its_permission(chat: Chat) -> None:
    """Other modules add commands; `ctx.require` guards a moderator-only sub-command."""
    from loyaltybot.chat.message import Permission

    async def votes(ctx: CommandContext) -> str:
        if ctx.args[:1] == ("reset",):
            ctx.require(Permission.MODERATOR)
            return "votes reset."
        return "no votes yet."

    chat.handler.register(Command("votes", votes, read_cooldown=True, usage="!votes [reset]"))
    assert await chat.say("!votes") == "@user1, no votes yet."
    assert await chat.say("!votes reset", viewer(2)) == "@user2, only moderators can use !votes."
    assert await chat.say("!VOTES reset", MOD, MOD_ROLES) == "@alice_mod, votes reset."
    with pytest.raises(ValueError, match="already registered"):
        chat.handler.register(Command("top", votes))


async def test_builtins_win_over_currency_aliases(
    chat: Chat, bank: Bank, channel_settings: dict[str, ChannelSettings]
) -> None:
    """A currency called "give" does not turn !give into !points."""
    channel_settings[CHANNEL] = ChannelSettings(currency_name="give", currency_name_plural="gives")
    assert await chat.say("!give") == "@user1, usage: !give <user> <amount>"
    assert await chat.say("!gives") == "@user1, you have 0 gives"


async def test_long_replies_are_cut_to_500_characters(chat: Chat) -> None:
    """Whatever a command says, the reply is at most 500 characters, one line."""

    async def chatty(ctx: CommandContext) -> str:
        return "line\nbreak " + "x" * 2000

    chat.handler.register(Command("chatty", chatty))
    text = await chat.say("!chatty")
    assert text is not None
    assert len(text) == MAX_REPLY_CHARS
    assert text.endswith("…")
    assert "\n" not in text


async def test_unexpected_error_is_logged_and_answered_with_an_apology(chat: Chat) -> None:
    """An internal error never reaches chat as str(exc): a short apology and a log event."""

    async def broken(ctx: CommandContext) -> str:
        raise RuntimeError("SELECT secret FROM internals")

    chat.handler.register(Command("broken", broken))
    with capture_logs() as logs:
        text = await chat.say("!broken")
    assert text == f"@user1, {APOLOGY}"
    assert "secret" not in text
    [event] = [e for e in logs if e["event"] == "chat_command_failed"]
    assert event["command"] == "broken"
    assert event["log_level"] == "error"


# ---- never raises -----------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        "user1",
        "user2",
        "@USER2",
        "bob",
        "all",
        "@all",
        "0",
        "-5",
        "1e5",
        "1.5",
        "abc",
        "99999999999999999999",
        "1,000",
        "5",
        "9007199254740991",
        "",
        "@",
        "!",
        "\U000e0000",
        "é",
        "\\s",
    ]
)
_COMMANDS = st.sampled_from(
    [
        "!points",
        "!cookie",
        "!cookies",
        "!watchtime",
        "!give",
        "!leaderboard",
        "!top",
        "!addpoints",
        "!removepoints",
        "!setpoints",
        "!GIVE",
        "!nosuch",
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.tuples(_COMMANDS, st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=4)).map(
            lambda t: " ".join([t[0], *t[1]])
        ),
    ),
    roles=st.sampled_from([VIEWER, MOD_ROLES, OWNER]),
)
async def test_random_command_text_never_raises(
    handler: CommandHandler, clock: FakeClock, bank: Bank, text: str, roles: Roles
) -> None:
    """Whatever is typed, handle() returns at most one reply of at most 500 characters."""
    if not (await bank.viewer(CHANNEL, "user2")):
        await fund(bank, viewer(1), 1000)
        await fund(bank, viewer(2), 1000)
    clock.advance(60)
    sender = BROADCASTER if roles is OWNER else viewer(1)
    message = Chat(handler, clock).message(text, sender, roles)
    replies = await handler.handle(message)
    assert len(replies) <= 1
    for reply in replies:
        assert len(reply.text) <= MAX_REPLY_CHARS
        assert "\n" not in reply.text
        assert APOLOGY not in reply.text
    assert await bank.audit() == []
