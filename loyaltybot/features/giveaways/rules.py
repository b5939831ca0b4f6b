"""The rules of giveaways: ticket purchases and the fair, checkable draw (SPEC §10.2).

Pure functions: no clock, no database. The only randomness is :func:`new_seed`, from
``secrets``; everything else follows from the seed and the entries, so a draw can be
recomputed by anyone who has them (``loyaltybot giveaway verify``, or another program).

How a winner is drawn (version 1)
---------------------------------

At ``close`` the bot draws a **seed** of 32 random bytes from the operating system and
writes it as 64 lowercase hexadecimal characters. It publishes the **commitment**: the
SHA-256 of those 64 characters (the ASCII text, not the bytes), itself written as 64
lowercase hex characters. The seed is revealed at the first draw; anyone can check
that its SHA-256 is the commitment posted before, so the seed was fixed before anybody
knew it, and nobody can change it afterwards.

The winners then follow from the seed and the entries alone:

1. **Entries.** One per viewer: the user id (text), the number of tickets (a whole
   number, at least 1) and the luck (a decimal from 1 to 10; subscribers may have more
   than 1). Luck counts to the hundredth: ``L = luck * 100``, rounded half up to a whole
   number (luck 1 gives 100, 1.5 gives 150, 2.345 gives 235). The entrant's **weight**
   is ``tickets * L``, a whole number.
2. **Order.** Sort the entries by the length of the user id, then, for ids of the same
   length, by the id's characters (Unicode code points, the same as UTF-8 byte order).
   For Twitch's numeric ids (no leading zeros) this is simply numeric order. The order in
   which viewers entered does not matter.
3. **Random numbers.** The k-th random number (k = 0, 1, 2, ...) is
   ``HMAC-SHA256(key = the 32 seed bytes, message = "draw:" followed by k in decimal)``
   (for example the ASCII message ``draw:0``), read as a 256-bit big-endian unsigned
   integer R. Each random number is used once, in this order, across every draw of the
   giveaway.
4. **The table.** At the start the table is every entry in the order of step 2, with
   its weight; T is the sum of the weights in the table. An entrant is *taken* once
   picked (whether they won or were skipped); a taken entrant stays in the table until
   the table is rebuilt.
5. **One pick.**
   a. If the taken entrants still in the table weigh half of T or more (``2 * taken
      weight >= T``), rebuild the table from the entrants not taken yet, in the same
      order, and recompute T. If the table is then empty, every entrant has been taken:
      the draw is over.
   b. Take the next random number R. If ``R >= 2^256 - (2^256 mod T)`` it is discarded
      and the next one is taken (this removes the bias of the modulo below; it happens
      with a probability below T / 2^256, so in practice never).
      Let ``x = R mod T``.
   c. Walk the table adding up weights; the picked entrant is the first whose running
      sum is greater than x. (An entrant of weight w is picked for w of the T values of
      x: the chance of winning is proportional to tickets * luck.)
   d. If that entrant was already taken, go back to b (the table stays as it is).
      Otherwise they are taken, and this pick is over.
6. **Winners.** Picks are made one after another, and they come out in one fixed order
   for the seed and the entries: the *draw order*. Winners are taken from the front of
   it. A draw of n winners makes picks until n entrants have won (or nobody is left).
   When the mod draws with ``present``, a picked entrant who is not present at that
   moment is *skipped*: recorded as skipped, not a winner, and never picked again. A
   later draw for the same giveaway continues the same draw order where the previous
   one stopped, so drawing 2 and then 1 gives the same three winners as drawing 3.

To check a giveaway from its export (seed, commitment, entries, winners in order,
skipped entrants): check the commitment, compute the draw order of step 5, and walk it,
counting each picked entrant as skipped when they are on the recorded skipped list and
as a winner otherwise, until as many winners and skipped entrants have come out as were
recorded. The two lists must come out the same, in the same order.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import accumulate, islice
from operator import eq, itemgetter, mul
from typing import Literal, NamedTuple

from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount, LoyaltyError

ALGORITHM = "loyaltybot-draw-v1"
SEED_BYTES = 32
LUCK_MIN = 1
LUCK_MAX = 10

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SPACE = 1 << 256  # the random numbers are 256-bit


# ---- refusals ---------------------------------------------------------------------------


class GiveawayRefusal(LoyaltyError):
    """A viewer's giveaway request that is refused; the chat layer words it."""


class TooManyTickets(GiveawayRefusal):
    """More tickets asked for than the viewer may still buy."""

    def __init__(self, requested: int, left: int) -> None:
        super().__init__(f"{requested} tickets requested, {left} left to buy")
        self.requested = requested
        self.left = left


class NoTicketsLeft(GiveawayRefusal):
    """The viewer already holds the most tickets allowed."""

    def __init__(self, maximum: int) -> None:
        super().__init__(f"already holds the maximum of {maximum} tickets")
        self.maximum = maximum


class NoGiveaway(GiveawayRefusal):
    """No giveaway is running in the channel (none open, closed or drawn)."""


class GiveawayClosed(GiveawayRefusal):
    """Tickets for a giveaway that no longer takes them."""

    def __init__(self, giveaway_id: int, state: str) -> None:
        super().__init__(f"giveaway {giveaway_id} is {state}")
        self.giveaway_id = giveaway_id
        self.state = state


class CannotAfford(GiveawayRefusal):
    """The tickets cost more than the viewer has; nothing was taken."""

    def __init__(self, tickets: int, price: int, balance: int) -> None:
        super().__init__(f"{tickets} tickets cost {price}, balance {balance}")
        self.tickets = tickets
        self.price = price
        self.balance = balance


class NotEligible(GiveawayRefusal):
    """The broadcaster, the bot and the channel's ignored users do not enter."""

    def __init__(self, login: str) -> None:
        super().__init__(f"{login} cannot enter")
        self.login = login


class WrongState(GiveawayRefusal):
    """A moderator's action that the giveaway's state does not allow (close a closed one,
    draw an open one, cancel a drawn one, open while one runs)."""

    def __init__(self, giveaway_id: int, state: str, action: str) -> None:
        super().__init__(f"cannot {action} giveaway {giveaway_id}: it is {state}")
        self.giveaway_id = giveaway_id
        self.state = state
        self.action = action


class NoEntrants(GiveawayRefusal):
    """A draw with nobody to draw: nobody entered, or everybody has been picked."""

    def __init__(self, giveaway_id: int, entrants: int) -> None:
        super().__init__(f"giveaway {giveaway_id}: nobody left to draw of {entrants}")
        self.giveaway_id = giveaway_id
        self.entrants = entrants


class DrawError(ValueError):
    """Inputs a draw cannot use: a malformed seed, bad entries, or records that do not
    follow from the seed. A data problem, not a viewer's mistake: it is not a
    :class:`LoyaltyError`."""


# ---- tickets ----------------------------------------------------------------------------


def tickets_to_buy(requested: int | Literal["max"], held: int, max_tickets: int,
                   cost: int) -> int:
    """How many tickets a ``!ticket [n|max]`` buys; the price is that times ``cost``.

    ``cost == 0`` is free entry: exactly one ticket per viewer, whatever ``max_tickets``
    says. ``"max"`` buys every ticket still allowed.

    Raises:
        NoTicketsLeft: the viewer holds the maximum already (``maximum`` = the limit).
        TooManyTickets: ``requested`` is more than is left (``left`` says how many).
        ValueError: ``requested`` is below 1, or a negative ``held``/``cost``
            (the chat layer parses amounts first, so this is a programming error).
    """
    if cost < 0 or held < 0 or max_tickets < 1:
        raise ValueError("cost and held must be >= 0, max_tickets >= 1")
    limit = 1 if cost == 0 else max_tickets
    left = limit - held
    if left <= 0:
        raise NoTicketsLeft(limit)
    if requested == "max":
        return left
    if isinstance(requested, bool) or requested < 1:
        raise ValueError(f"requested must be >= 1, got {requested!r}")
    if requested > left:
        raise TooManyTickets(requested, left)
    return requested


MAX_PRIZE_CHARS = 200
MAX_DRAW = 25  # winners per !giveaway draw: their names fit in chat lines


def parse_ticket_request(args: Sequence[str]) -> int | Literal["max"]:
    """``!ticket [n|max]``: how many tickets the viewer asks for (default 1).

    Raises:
        InvalidAmount: not ``max`` nor an amount as SPEC §5 reads them.
    """
    if not args:
        return 1
    if args[0].lower() in ("max", "all"):
        return "max"
    return parse_amount(args[0])


def parse_draw(args: Sequence[str]) -> tuple[int, bool]:
    """``draw [n] [present]``, either order: (winners, present only).

    Raises:
        InvalidAmount: n is not an amount of SPEC §5, or more than ``MAX_DRAW``.
        ValueError: a word that is neither (the chat layer shows the usage).
    """
    n: int | None = None
    present = False
    for word in args:
        if word.lower() == "present" and not present:
            present = True
        elif n is None and word.lower() != "present":
            n = parse_amount(word)
            if n > MAX_DRAW:
                raise InvalidAmount(word, f"must be at most {MAX_DRAW} winners at a time")
        else:
            raise ValueError(f"unexpected {word!r}")
    return (1 if n is None else n), present


def clean_prize(text: str) -> str:
    """The prize as announced: one line, spaces collapsed, at most ``MAX_PRIZE_CHARS``.

    Raises:
        ValueError: nothing is left.
    """
    prize = " ".join("".join(ch for ch in text if ch.isprintable()).split())
    if not prize:
        raise ValueError("a giveaway needs a prize")
    return prize if len(prize) <= MAX_PRIZE_CHARS else prize[: MAX_PRIZE_CHARS - 1] + "…"


# ---- seeds ------------------------------------------------------------------------------


def new_seed() -> str:
    """32 bytes from the OS, as 64 lowercase hex characters: drawn at close."""
    return secrets.token_hex(SEED_BYTES)


def commitment(seed_hex: str) -> str:
    """SHA-256 of the seed's hex text, as 64 lowercase hex characters: posted at close.

    Raises:
        DrawError: ``seed_hex`` is not 64 lowercase hex characters.
    """
    _check_seed(seed_hex)
    return hashlib.sha256(seed_hex.encode("ascii")).hexdigest()


def _check_seed(seed_hex: str) -> bytes:
    if not isinstance(seed_hex, str) or not _HEX64.fullmatch(seed_hex):
        raise DrawError("the seed must be 64 lowercase hex characters")
    return bytes.fromhex(seed_hex)


# ---- entries ----------------------------------------------------------------------------


class Entry(NamedTuple):
    """One entrant. A plain ``(user_id, tickets, luck)`` tuple works the same."""

    user_id: str
    tickets: int
    luck: float = 1.0


EntryLike = Entry | tuple[str, int, float | Decimal]


def luck_hundredths(luck: float | int | Decimal | str) -> int:
    """Luck as a whole number of hundredths, rounded half up: 1.5 -> 150, 2.345 -> 235.

    A float is read as the decimal it prints as (``str(1.15)`` is ``"1.15"``), which is
    what the person wrote in the config or the dashboard.

    Raises:
        DrawError: not a number from 1 to 10.
    """
    if isinstance(luck, bool):
        raise DrawError(f"luck must be a number from {LUCK_MIN} to {LUCK_MAX}")
    try:
        exact = Decimal(luck) if isinstance(luck, int | Decimal) else Decimal(str(luck))
        hundredths = int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError, TypeError):
        raise DrawError(f"luck must be a number from {LUCK_MIN} to {LUCK_MAX}") from None
    if not LUCK_MIN * 100 <= hundredths <= LUCK_MAX * 100:
        raise DrawError(f"luck must be a number from {LUCK_MIN} to {LUCK_MAX}, got {luck!r}")
    return hundredths


def order_key(user_id: str) -> tuple[int, str]:
    """The canonical order of entrants: shorter ids first, then by characters.

    For Twitch's numeric ids this is numeric order; for any text it is a total order
    that another language reproduces without parsing numbers.
    """
    return (len(user_id), user_id)


def canonical_entries(entries: Iterable[EntryLike]) -> tuple[list[str], list[int]]:
    """User ids in the canonical order and their weights (tickets * luck in hundredths).

    Checked and computed column by column with C-level builtins (100,000 entries in a
    few tens of ms); when a check fails, a plain loop finds the entry to name.

    Raises:
        DrawError: an entry that is not ``(user_id, tickets, luck)``, an id that is not
            non-empty text, an id twice, tickets that are not a whole number >= 1, or
            luck outside 1..10.
    """
    try:  # by id first (a C-level key), then a stable sort by length: the same as order_key
        rows = sorted(entries, key=itemgetter(0))
        if rows and set(map(len, rows)) != {3}:
            raise ValueError
        ids, tickets, lucks = (list(map(itemgetter(i), rows)) for i in range(3))
        luck_types = set(map(type, lucks))
        factor = {luck: luck_hundredths(luck) for luck in set(lucks)}
    except DrawError:
        raise
    except (TypeError, ValueError, IndexError, KeyError):
        raise DrawError("each entry must be (user_id, tickets, luck), the id text") from None
    if rows and (set(map(type, ids)) != {str} or set(map(type, tickets)) != {int}
                 or bool in luck_types or min(tickets) < 1 or "" in ids
                 or any(map(eq, ids, islice(ids, 1, None)))):
        _explain(rows)
    weights = list(map(mul, tickets, map(factor.__getitem__, lucks)))
    lengths = list(map(len, ids))
    if lengths and min(lengths) != max(lengths):
        by_length = sorted(range(len(ids)), key=lengths.__getitem__)
        ids = [ids[i] for i in by_length]
        weights = [weights[i] for i in by_length]
    return ids, weights


def _explain(rows: Sequence[EntryLike]) -> None:
    """Raise a DrawError naming the first bad entry (the slow path of a failed check)."""
    previous = None
    for user_id, tickets, luck in rows:
        if type(user_id) is not str or not user_id:
            raise DrawError(f"user ids must be non-empty text, got {user_id!r}")
        if user_id == previous:
            raise DrawError(f"user {user_id} has two entries")
        if type(tickets) is not int or tickets < 1:
            raise DrawError(f"user {user_id}: tickets must be a whole number >= 1")
        luck_hundredths(luck)
        previous = user_id
    raise DrawError("bad entries")  # not reached: the caller saw a problem


# ---- the draw order ---------------------------------------------------------------------


def random_number(key: bytes, k: int) -> int:
    """The k-th random number of a giveaway: HMAC-SHA256(seed bytes, "draw:k"), big-endian."""
    return int.from_bytes(hmac.digest(key, b"draw:%d" % k, "sha256"), "big")


class DrawOrder(Iterator[str]):
    """The draw order of a giveaway: iterate to get entrants, front first.

    Follows steps 4 and 5 of the module docstring exactly. Building it costs one sort
    and one pass over the entries; each pick costs a bisect, plus rare re-picks of
    entrants already taken and a rebuild each time half the table's weight is taken (so
    drawing many winners never rebuilds more than about log2(total weight) times).

    ``position`` is how many random numbers have been used, ``taken`` how many entrants
    have been picked: the service may record both with a draw.
    """

    def __init__(self, seed_hex: str, entries: Iterable[EntryLike]) -> None:
        self._key = _check_seed(seed_hex)
        self.ids, self.weights = canonical_entries(entries)
        self.position = 0
        self.taken = 0
        self._taken: set[int] = set()  # indices into ids
        self._members: Sequence[int] = range(len(self.ids))  # the table: indices into ids
        self._cumulative = list(accumulate(self.weights))
        self._total = self._cumulative[-1] if self._cumulative else 0
        self._taken_weight = 0  # taken entrants still in the table
        self._limit = _SPACE - _SPACE % self._total if self._total else 0

    def __iter__(self) -> DrawOrder:
        return self

    def __next__(self) -> str:
        return self.ids[self.next_index()]

    def next_index(self) -> int:
        """The index (into ``ids``) of the next entrant in the draw order.

        Raises:
            StopIteration: every entrant has been picked.
        """
        if 2 * self._taken_weight >= self._total:
            self._rebuild()
            if not self._total:
                raise StopIteration
        while True:
            r = random_number(self._key, self.position)
            self.position += 1
            if r >= self._limit:
                continue
            index = self._members[bisect_right(self._cumulative, r % self._total)]
            if index not in self._taken:
                self._taken.add(index)
                self._taken_weight += self.weights[index]
                self.taken += 1
                return index

    def _rebuild(self) -> None:
        taken = self._taken
        members = [i for i in self._members if i not in taken]
        weights = self.weights
        self._members = members
        self._cumulative = list(accumulate(weights[i] for i in members))
        self._total = self._cumulative[-1] if members else 0
        self._taken_weight = 0
        self._limit = _SPACE - _SPACE % self._total if self._total else 0


# ---- draws ------------------------------------------------------------------------------


Present = Callable[[str], bool] | Collection[str]


@dataclass(frozen=True)
class DrawResult:
    """What one ``!giveaway draw`` produced.

    ``winners`` and ``skipped`` are this draw's, in the order picked; ``picked`` is both,
    interleaved as they came out of the draw order. ``position`` (random numbers used) and
    ``taken`` (entrants picked) count from the start of the giveaway, previous draws
    included. ``exhausted``: the entrants ran out before ``n`` winners.
    """

    winners: tuple[str, ...]
    skipped: tuple[str, ...]
    position: int
    taken: int
    exhausted: bool
    picked: tuple[str, ...] = ()


def draw(seed_hex: str, entries: Iterable[EntryLike], n: int, *,
         already_won: Iterable[str] = (), already_skipped: Iterable[str] = (),
         present: Present | None = None) -> DrawResult:
    """Draw ``n`` more winners, continuing the draw order after earlier draws.

    ``already_won`` and ``already_skipped`` are every entrant earlier draws of this
    giveaway picked. The draw order is replayed past them (cheap: one bisect each) and
    checked: they must be exactly the front of the order, so a draw that continues from
    wrong records fails loudly instead of drawing from a different sequence. Hence
    ``draw(s, e, 2)`` then ``draw(s, e, 1, already_won=first_two)`` equals
    ``draw(s, e, 3)``.

    ``present`` (a set of user ids, or a predicate) makes the draw skip the entrants
    it does not contain; ``None`` means everybody counts as present.

    Raises:
        DrawError: bad seed or entries, or earlier records that do not follow from them.
        ValueError: ``n`` below 0.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    order = DrawOrder(seed_hex, entries)
    _replay(order, already_won, already_skipped)
    is_present = _predicate(present)
    winners: list[str] = []
    skipped: list[str] = []
    picked: list[str] = []
    exhausted = False
    while len(winners) < n:
        try:
            user_id = next(order)
        except StopIteration:
            exhausted = True
            break
        (winners if is_present(user_id) else skipped).append(user_id)
        picked.append(user_id)
    return DrawResult(tuple(winners), tuple(skipped), order.position, order.taken, exhausted,
                      tuple(picked))


def _replay(order: DrawOrder, already_won: Iterable[str], already_skipped: Iterable[str]
            ) -> None:
    won = list(already_won)
    skipped = list(already_skipped)
    earlier = set(won) | set(skipped)
    if len(earlier) != len(won) + len(skipped):
        raise DrawError("an entrant is recorded twice among earlier winners and skipped")
    for _ in range(len(earlier)):
        try:
            user_id = next(order)
        except StopIteration:
            raise DrawError("earlier records name entrants who are not entered") from None
        if user_id not in earlier:
            raise DrawError("earlier winners and skipped do not follow from this seed")


def _predicate(present: Present | None) -> Callable[[str], bool]:
    if present is None:
        return lambda _user_id: True
    if callable(present):
        return present
    members = present if isinstance(present, set | frozenset) else set(present)
    return members.__contains__


# ---- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One place where the records and the recomputation disagree.

    ``what`` is the list, ``index`` the 0-based place in it; ``None`` means that list
    has nothing at that place.
    """

    what: Literal["winner", "skipped"]
    index: int
    recorded: str | None
    recomputed: str | None


@dataclass(frozen=True)
class Verification:
    """The result of checking a giveaway's draw.

    ``status``: ``match``; ``mismatch`` (see ``differences``); ``bad_commitment`` (the
    seed does not hash to the commitment; winners are still recomputed); ``bad_seed``
    (not 64 lowercase hex characters); ``bad_entries`` (see ``problem``).
    """

    status: Literal["match", "mismatch", "bad_commitment", "bad_seed", "bad_entries"]
    winners: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    differences: tuple[Difference, ...] = ()
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "match"


def verify(seed_hex: str, commitment_hex: str, entries: Iterable[EntryLike],
           recorded_winners: Sequence[str], recorded_skipped: Sequence[str] = ()
           ) -> Verification:
    """Recompute a giveaway's winners from its seed and entries and compare.

    Walks the draw order, counting an entrant as skipped when ``recorded_skipped`` has
    them and as a winner otherwise, until as many of each as recorded have come out (or
    nobody is left); both lists must then be equal, in order. The draw boundaries (how
    many per ``!giveaway draw``) do not matter: draws continue one order.
    """
    try:
        expected = commitment(seed_hex)
    except DrawError:
        return Verification("bad_seed", problem="the seed is not 64 lowercase hex characters")
    try:
        order = DrawOrder(seed_hex, entries)
    except DrawError as exc:
        return Verification("bad_entries", problem=str(exc))
    skipped_set = set(recorded_skipped)
    winners: list[str] = []
    skipped: list[str] = []
    while len(winners) < len(recorded_winners) or len(skipped) < len(recorded_skipped):
        try:
            user_id = next(order)
        except StopIteration:
            break
        if user_id in skipped_set:
            skipped.append(user_id)
        else:
            winners.append(user_id)
            if len(winners) > len(recorded_winners):
                break  # a winner the records do not have: enough to show the mismatch
    differences = tuple(_differences("winner", recorded_winners, winners)
                        + _differences("skipped", recorded_skipped, skipped))
    if commitment_hex != expected:
        status: Literal["match", "mismatch", "bad_commitment"] = "bad_commitment"
    else:
        status = "mismatch" if differences else "match"
    return Verification(status, tuple(winners), tuple(skipped), differences)


def _differences(what: Literal["winner", "skipped"], recorded: Sequence[str],
                 recomputed: Sequence[str]) -> list[Difference]:
    out = []
    for i in range(max(len(recorded), len(recomputed))):
        a = recorded[i] if i < len(recorded) else None
        b = recomputed[i] if i < len(recomputed) else None
        if a != b:
            out.append(Difference(what, i, a, b))
    return out
