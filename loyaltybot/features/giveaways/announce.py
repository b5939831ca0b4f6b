"""What the bot says in chat about giveaways, and the summary lines that acknowledge bursts.

Every announcement names the giveaway's number (``Giveaway #12 is open: …``) so a viewer
can look it up on the public page and check the draw. The sentences are pure functions
of the service's results; the dashboard's actions announce with the same words as the
chat commands.

**Bursts** (SPEC §10.6). A big channel sends thousands of ``!ticket`` in seconds, and the
bot may send at most 20 (or 100) lines per 30 s. So an accepted ticket gets no line of
its own: ``TicketSummary`` gathers what was bought and says it in one line per channel,
the first a moment after the first ticket and then at most one every ``every`` seconds
while tickets keep coming ("Giveaway #12: +214 tickets from 180 viewers; 1,024 tickets
from 700 entrants in the draw"). With three buyers or fewer it names them and what each
holds, so a viewer in a quiet channel sees their own tickets counted. Refusals are
answered by the ticket command only while the send budget has room (``commands``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog

from loyaltybot.chat.summaries import Summaries
from loyaltybot.clock import Clock
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
from loyaltybot.features.giveaways.service import Canceled, Drawn, Giveaway, Purchase
from loyaltybot.points.amounts import format_points
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

MAX_LINE = 500
NAMED_BUYERS = 3  # a summary names the buyers when there are at most this many

Say = Callable[[str, str], Awaitable[bool]]
"""(channel, text) -> queued? A line the bot says on its own, within the send limits."""


def _points(amount: int, settings: ChannelSettings) -> str:
    return f"{format_points(amount)} {settings.currency(amount)}"


def _n(count: int, word: str) -> str:
    return f"{format_points(count)} {word}{'' if count == 1 else 's'}"


def _luck(hundredths: int) -> str:
    return f"{hundredths / 100:g}"


def _names(logins: Iterable[str]) -> str:
    names = [f"@{login}" for login in logins]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def pack(head: str, items: Iterable[str], sep: str = ", ", limit: int = MAX_LINE) -> list[str]:
    """``head`` and the items as few chat lines as they fit in (an item never split)."""
    lines: list[str] = []
    line = head
    for item in items:
        piece = item if line == head else sep + item
        if len(line) + len(piece) > limit and line != head:
            lines.append(line)
            line = "… " + item
        else:
            line += piece
    lines.append(line)
    return [text[:limit] for text in lines]


# ---- announcements ------------------------------------------------------------------------


def terms_text(giveaway: Giveaway, settings: ChannelSettings) -> str:
    terms = giveaway.terms
    if terms.ticket_cost == 0:
        return "free entry, one ticket each"
    luck = (
        f"; subscribers' tickets count {_luck(terms.luck)}×" if terms.luck != 100 else ""
    )
    return (
        f"{_points(terms.ticket_cost, settings)} a ticket, up to {format_points(terms.limit)}"
        f" each{luck}"
    )


def opened(giveaway: Giveaway, settings: ChannelSettings) -> str:
    how = "!join" if giveaway.terms.ticket_cost == 0 else "!ticket [n|max]"
    return (
        f"Giveaway #{giveaway.id} is open: {giveaway.prize}! Type {how} to enter"
        f" ({terms_text(giveaway, settings)})."
    )[:MAX_LINE]


def closed(giveaway: Giveaway) -> str:
    return (
        f"Giveaway #{giveaway.id} is closed: {_n(giveaway.tickets, 'ticket')} from"
        f" {_n(giveaway.entrants, 'entrant')}. The draw's seed is fixed now; its SHA-256 is"
        f" {giveaway.commitment}"
    )


def drawn(done: Drawn, verify_url: str | None = None) -> list[str]:
    """The winners (several lines if they do not fit in one), then the seed."""
    g = done.giveaway
    lines: list[str] = []
    if done.winners:
        who = "the winner is" if len(done.winners) == 1 else "the winners are"
        names = [f"@{p.login}" for p in done.winners]
        if len(names) == 2:  # "@a and @b"; three or more: "@a, @b, and @c"
            names = [f"{names[0]} and {names[1]}"]
        elif len(names) > 2:
            names[-1] = "and " + names[-1]
        lines += pack(f"Giveaway #{g.id} ({g.prize[:80]}): {who} ", names, sep=", ")
        lines[-1] += "!"
    else:
        lines.append(f"Giveaway #{g.id}: nobody drawn is here, so no winner this time.")
    if done.skipped:
        lines += pack(
            f"Giveaway #{g.id}: skipped, not here: ", [p.login for p in done.skipped]
        )
    if done.exhausted:
        lines.append(f"Giveaway #{g.id}: every entrant has now been drawn.")
    check = f" Check the draw: {verify_url}" if verify_url else ""
    lines.append(
        f"Giveaway #{g.id} seed: {g.seed} (its SHA-256 was posted at close).{check}"[:MAX_LINE]
    )
    return lines


def canceled(done: Canceled, settings: ChannelSettings) -> str:
    g = done.giveaway
    if not done.refunded:
        return f"Giveaway #{g.id} is canceled."
    return (
        f"Giveaway #{g.id} is canceled: every ticket refunded"
        f" ({_points(done.refunded, settings)} back to {_n(done.viewers, 'viewer')})."
    )


def status(giveaway: Giveaway | None, held: int, settings: ChannelSettings) -> str:
    """``!giveaway``: what runs, its tickets and entrants, and what the asker holds."""
    if giveaway is None:
        return "no giveaway is running right now."
    g = giveaway
    counts = f"{_n(g.tickets, 'ticket')} from {_n(g.entrants, 'entrant')}"
    mine = f"you hold {_n(held, 'ticket')}" if held else "you have no ticket"
    if g.state == "open":
        how = "!join" if g.terms.ticket_cost == 0 else "!ticket [n|max]"
        return (
            f"Giveaway #{g.id} is open: {g.prize}. {counts}; {mine}"
            f" ({terms_text(g, settings)}). Enter with {how}."
        )[:MAX_LINE]
    if g.state == "closed":
        return (
            f"Giveaway #{g.id} is closed: {g.prize}. {counts}; {mine}. The draw comes next"
            f" (seed SHA-256 {g.commitment})."
        )[:MAX_LINE]
    return (
        f"Giveaway #{g.id} ({g.prize}) has been drawn: {counts}; {mine}. Seed: {g.seed}."
    )[:MAX_LINE]


# ---- refusals ---------------------------------------------------------------------------


def explain(exc: GiveawayRefusal, settings: ChannelSettings) -> str:
    """A refused giveaway action in one short sentence (chat and the dashboard)."""
    match exc:
        case TooManyTickets():
            return (
                f"you can buy {_n(exc.left, 'more ticket')} at most; try !ticket {exc.left}"
                " or !ticket max."
            )
        case NoTicketsLeft():
            return f"you already hold the most tickets allowed ({format_points(exc.maximum)})."
        case CannotAfford():
            return (
                f"{_n(exc.tickets, 'ticket')} {'costs' if exc.tickets == 1 else 'cost'}"
                f" {_points(exc.price, settings)}, and you have"
                f" {_points(exc.balance, settings)}."
            )
        case NoGiveaway():
            return "no giveaway is running right now."
        case GiveawayClosed():
            return f"Giveaway #{exc.giveaway_id} is {exc.state}: it takes no more tickets."
        case NotEligible():
            return "the broadcaster, the bot and ignored users cannot enter giveaways."
        case NoEntrants():
            if exc.entrants == 0:
                return (
                    f"Giveaway #{exc.giveaway_id} has no entrants to draw;"
                    " !giveaway cancel ends it."
                )
            return f"every entrant of Giveaway #{exc.giveaway_id} has been drawn already."
        case WrongState():
            return _wrong_state(exc)
        case _:
            return "that did not work."


_DONE = {"close": "closed", "draw": "drawn", "cancel": "canceled"}


def _wrong_state(exc: WrongState) -> str:
    g, state = f"Giveaway #{exc.giveaway_id}", exc.state
    if exc.action == "open":
        return f"{g} is still {state}: draw or cancel it before opening another."
    if exc.action == "draw" and state == "open":
        return f"{g} is still open: close it first (!giveaway close), then draw."
    if exc.action == "cancel" and state == "drawn":
        return f"{g} has been drawn already: its tickets are spent, nothing to refund."
    if state == _DONE.get(exc.action):
        return f"{g} is {state} already."
    return f"{g} is {state}: it cannot be {_DONE.get(exc.action, exc.action)} now."


# ---- summaries ----------------------------------------------------------------------------


@dataclass
class _Pending:
    giveaway_id: int
    tickets: int = 0
    buyers: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # id -> login, +, held
    total_tickets: int = 0
    total_entrants: int = 0


class TicketSummary(Summaries[_Pending]):
    """Accepted tickets, acknowledged in one line per channel at most every ``every`` s."""

    def __init__(
        self, say: Say, clock: Clock, *, first_after: float = 1.0, every: float = 5.0
    ) -> None:
        super().__init__(say, clock, lambda _, pending: summary_line(pending),
                         name="giveaway-summary", first_after=first_after, every=every)

    async def add(self, channel: str, purchase: Purchase) -> None:
        pending = await self.pending(
            channel, purchase.giveaway_id, lambda: _Pending(purchase.giveaway_id)
        )
        pending.tickets += purchase.bought
        previous = pending.buyers.get(purchase.user_id)
        added = purchase.bought + (previous[1] if previous else 0)
        pending.buyers[purchase.user_id] = (purchase.login, added, purchase.held)
        pending.total_tickets = max(pending.total_tickets, purchase.tickets)
        pending.total_entrants = max(pending.total_entrants, purchase.entrants)


def summary_line(pending: _Pending) -> str:
    head = f"Giveaway #{pending.giveaway_id}: "
    totals = (
        f"{_n(pending.total_tickets, 'ticket')} from {_n(pending.total_entrants, 'entrant')}"
        " in the draw."
    )
    if len(pending.buyers) <= NAMED_BUYERS:
        named = ", ".join(
            f"@{login} +{format_points(added)} (holds {format_points(held)})"
            for login, added, held in pending.buyers.values()
        )
        return f"{head}{named}; {totals}"[:MAX_LINE]
    return (
        f"{head}+{_n(pending.tickets, 'ticket')} from {_n(len(pending.buyers), 'viewer')};"
        f" {totals}"
    )
