"""What the bot says about giveaways: every line names the giveaway; bursts of tickets are
acknowledged in few summary lines; refusals read as one short sentence."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.features.giveaways import announce
from loyaltybot.features.giveaways.announce import TicketSummary
from loyaltybot.features.giveaways.rules import (
    CannotAfford,
    GiveawayClosed,
    GiveawayRefusal,
    NoEntrants,
    NoGiveaway,
    NotEligible,
    NoTicketsLeft,
    TooManyTickets,
    WrongState,
)
from loyaltybot.features.giveaways.service import Drawn, Giveaway, Pick, Purchase, Terms
from loyaltybot.settings import ChannelSettings

SETTINGS = ChannelSettings(currency_name="cookie", currency_name_plural="cookies")
TERMS = Terms(5, 5, 150)


def purchase(n: int, bought: int = 1, giveaway_id: int = 12, total: int = 0) -> Purchase:
    return Purchase(giveaway_id, str(1000 + n), f"user{n}", bought, bought, 5, bought * 10,
                    100, total or n + 1, n + 1)  # fmt: skip


class Chat:
    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def say_at(self, clock: FakeClock):  # type: ignore[no-untyped-def]
        async def say(channel: str, text: str) -> bool:
            self.lines.append((clock.monotonic(), text))
            return True

        return say


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_few_buyers_are_named_with_what_they_hold() -> None:
    """Three buyers or fewer: one line naming each, their tickets, and the totals."""
    clock, chat = FakeClock(), Chat()
    summary = TicketSummary(chat.say_at(clock), clock)
    await summary.add("alice", purchase(0, 2, total=2))
    await summary.add("alice", purchase(1, 1, total=3))
    await settle()
    assert [text for _, text in chat.lines] == [
        "Giveaway #12: @user0 +2 (holds 2), @user1 +1 (holds 1); 3 tickets from 2 entrants"
        " in the draw."
    ]


async def test_a_burst_is_one_line_then_at_most_one_every_few_seconds() -> None:
    """5,000 purchases while the (fake) clock runs: a handful of lines, none sooner than
    5 s after the previous, every ticket counted once, the last line's totals the last
    purchase's."""
    clock, chat = FakeClock(), Chat()
    summary = TicketSummary(chat.say_at(clock), clock, first_after=1.0, every=5.0)
    for n in range(5000):
        await summary.add("alice", purchase(n, 1, total=n + 1))
        if n % 500 == 499:
            await asyncio.sleep(0)  # the timer may run: the fake clock jumps ahead
    await settle()
    times = [at for at, _ in chat.lines]
    assert 1 <= len(chat.lines) <= 6
    assert all(b - a >= 5.0 for a, b in itertools.pairwise(times))
    assert "5,000 tickets from 5,000 entrants in the draw" in chat.lines[-1][1]
    assert all(text.startswith("Giveaway #12: +") for _, text in chat.lines)
    assert sum(int(t.split("+")[1].split()[0].replace(",", "")) for _, t in chat.lines) == 5000


async def test_flush_says_what_is_pending_before_the_close() -> None:
    """A close announcement comes after the tickets bought before it."""
    clock, chat = FakeClock(), Chat()
    summary = TicketSummary(chat.say_at(clock), clock, first_after=60.0)
    await summary.add("alice", purchase(0))
    await summary.flush("alice")
    assert len(chat.lines) == 1 and "@user0 +1" in chat.lines[0][1]
    await settle()
    assert len(chat.lines) == 1  # the timer was cancelled: nothing said twice
    await summary.close()


def test_every_announcement_names_the_giveaway() -> None:
    """Status texts carry the id; a long list of winners is split, never cut."""
    lines = announce.pack("Giveaway #3: the winners are ", [f"@viewer{i:05d}" for i in range(60)])
    assert len(lines) > 1 and all(len(line) <= 500 for line in lines)
    assert sum(line.count("@viewer") for line in lines) == 60
    assert announce.status(None, 0, SETTINGS) == "no giveaway is running right now."


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (TooManyTickets(5, 2), "you can buy 2 more tickets at most; try !ticket 2 or !ticket max."),
        (NoTicketsLeft(5), "you already hold the most tickets allowed (5)."),
        (CannotAfford(3, 300, 120), "3 tickets cost 300 cookies, and you have 120 cookies."),
        (NoGiveaway(), "no giveaway is running right now."),
        (GiveawayClosed(12, "closed"), "Giveaway #12 is closed: it takes no more tickets."),
        (NotEligible("alice"), "the broadcaster, the bot and ignored users cannot enter"
                               " giveaways."),
        (NoEntrants(12, 0), "Giveaway #12 has no entrants to draw; !giveaway cancel ends it."),
        (NoEntrants(12, 4), "every entrant of Giveaway #12 has been drawn already."),
        (WrongState(12, "open", "open"),
         "Giveaway #12 is still open: draw or cancel it before opening another."),
        (WrongState(12, "open", "draw"),
         "Giveaway #12 is still open: close it first (!giveaway close), then draw."),
        (WrongState(12, "drawn", "cancel"),
         "Giveaway #12 has been drawn already: its tickets are spent, nothing to refund."),
        (WrongState(12, "closed", "close"), "Giveaway #12 is closed already."),
    ],
)
def test_refusals_are_one_clear_sentence(error: GiveawayRefusal, words: str) -> None:
    """Each refusal says why, with the numbers that matter."""
    assert announce.explain(error, SETTINGS) == words


@pytest.mark.parametrize(("count", "named"), [
    (1, "the winner is @w1!"),
    (2, "the winners are @w1 and @w2!"),
    (3, "the winners are @w1, @w2, and @w3!"),
])
def test_the_winners_read_as_a_sentence(count: int, named: str) -> None:
    giveaway = Giveaway(7, 1, 1, "a poster", "ended", TERMS, "c", "s", "v1", "mod", 0, 1, 2,
                        None, 10, count, 0)  # fmt: skip
    picks = tuple(Pick(i, 1, str(i), f"w{i}", "won") for i in range(1, count + 1))
    lines = announce.drawn(Drawn(giveaway, 1, picks, (), False, True))
    assert lines[0] == f"Giveaway #7 (a poster): {named}"
