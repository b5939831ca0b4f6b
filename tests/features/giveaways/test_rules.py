"""Giveaway rules: tickets, seeds, and the draw of SPEC §10.2, checked against its own
description."""

from __future__ import annotations

import hashlib
import hmac
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyaltybot.features.giveaways import rules
from loyaltybot.features.giveaways.rules import (
    DrawError,
    DrawOrder,
    Entry,
    GiveawayRefusal,
    NoTicketsLeft,
    TooManyTickets,
    canonical_entries,
    commitment,
    draw,
    luck_hundredths,
    new_seed,
    order_key,
    tickets_to_buy,
    verify,
)
from loyaltybot.points.errors import LoyaltyError

SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def seed_for(i: int) -> str:
    """A fixed, well-spread seed per index, so statistical tests are reproducible."""
    return hashlib.sha256(b"test-seed:%d" % i).hexdigest()


def reference_order(seed_hex: str, entries: list[tuple[str, int, float]]) -> list[str]:
    """The draw order computed literally from the module docstring, slowly and plainly."""
    key = bytes.fromhex(seed_hex)
    table = sorted(((uid, t * luck_hundredths(luck)) for uid, t, luck in entries),
                   key=lambda e: (len(e[0]), e[0]))
    taken: list[str] = []
    k = 0
    while True:
        total = sum(w for _, w in table)
        if 2 * sum(w for uid, w in table if uid in taken) >= total:
            table = [(uid, w) for uid, w in table if uid not in taken]
            total = sum(w for _, w in table)
            if not table:
                return taken
        while True:
            r = int.from_bytes(hmac.new(key, f"draw:{k}".encode("ascii"), "sha256").digest(),
                               "big")
            k += 1
            if r >= 2**256 - (2**256 % total):
                continue
            x = r % total
            running = 0
            picked = ""
            for uid, w in table:
                running += w
                if running > x:
                    picked = uid
                    break
            if picked not in taken:
                taken.append(picked)
                break


entries_strategy = st.dictionaries(
    st.integers(1, 10**10).map(str),
    st.tuples(st.integers(1, 6), st.sampled_from([1, 1.0, 1.5, 2, 3.25, 10])),
    min_size=1, max_size=30,
).map(lambda d: [(uid, t, luck) for uid, (t, luck) in d.items()])


# ---- tickets ----------------------------------------------------------------------------


def test_refusals_are_loyalty_errors_with_data() -> None:
    """Refusals derive from one base and from LoyaltyError, and carry their figures."""
    exc = TooManyTickets(5, 2)
    assert isinstance(exc, GiveawayRefusal) and isinstance(exc, LoyaltyError)
    assert (exc.requested, exc.left) == (5, 2)
    assert NoTicketsLeft(3).maximum == 3


@pytest.mark.parametrize(
    ("requested", "held", "max_tickets", "cost", "expected"),
    [
        (1, 0, 1, 10, 1),
        (3, 2, 10, 10, 3),
        ("max", 2, 10, 10, 8),
        ("max", 0, 1, 10, 1),
        (1, 0, 50, 0, 1),
        ("max", 0, 50, 0, 1),
    ],
)
def test_tickets_to_buy(requested: int | str, held: int, max_tickets: int, cost: int,
                        expected: int) -> None:
    """A request within the limit buys what was asked; max buys what is left; free is one."""
    assert tickets_to_buy(requested, held, max_tickets, cost) == expected  # type: ignore[arg-type]


def test_tickets_past_the_limit_say_how_many_are_left() -> None:
    """A request past the limit is refused with the number still allowed."""
    with pytest.raises(TooManyTickets) as caught:
        tickets_to_buy(5, 7, 10, 10)
    assert (caught.value.requested, caught.value.left) == (5, 3)


def test_free_entry_is_one_ticket() -> None:
    """With cost 0 a second ticket, or two at once, is refused whatever the limit."""
    with pytest.raises(NoTicketsLeft) as caught:
        tickets_to_buy(1, 1, 50, 0)
    assert caught.value.maximum == 1
    with pytest.raises(TooManyTickets) as too_many:
        tickets_to_buy(2, 0, 50, 0)
    assert too_many.value.left == 1


def test_no_tickets_left() -> None:
    """Holding the maximum refuses even max, naming the maximum."""
    with pytest.raises(NoTicketsLeft) as caught:
        tickets_to_buy("max", 4, 4, 10)
    assert caught.value.maximum == 4


def test_ticket_request_below_one_is_a_programming_error() -> None:
    """0 tickets never reaches the rules as a refusal: parsing refuses it first."""
    with pytest.raises(ValueError, match="requested"):
        tickets_to_buy(0, 0, 5, 10)


# ---- seeds and luck ---------------------------------------------------------------------


def test_new_seed_is_64_lowercase_hex_and_fresh() -> None:
    """Seeds are 32 OS bytes as 64 lowercase hex characters, never repeating."""
    seeds = {new_seed() for _ in range(50)}
    assert len(seeds) == 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in seeds)


def test_commitment_is_sha256_of_the_hex_text() -> None:
    """The commitment hashes the 64 characters, not the 32 bytes."""
    assert commitment(SEED) == hashlib.sha256(SEED.encode()).hexdigest()
    assert commitment(SEED) != hashlib.sha256(bytes.fromhex(SEED)).hexdigest()


@pytest.mark.parametrize("bad", ["", "00" * 31, SEED.upper(), SEED + "0", "g" * 64])
def test_malformed_seeds_are_refused(bad: str) -> None:
    """Only 64 lowercase hex characters are a seed."""
    with pytest.raises(DrawError):
        commitment(bad)
    with pytest.raises(DrawError):
        draw(bad, [("1", 1, 1.0)], 1)


@pytest.mark.parametrize(
    ("luck", "hundredths"),
    [(1, 100), (1.0, 100), (1.5, 150), (1.15, 115), (2.345, 235), (2.344, 234), (10, 1000),
     ("3.3", 330)],
)
def test_luck_counts_in_hundredths_half_up(luck: float, hundredths: int) -> None:
    """Luck is read as the decimal written and rounded half up to hundredths."""
    assert luck_hundredths(luck) == hundredths


@pytest.mark.parametrize("luck", [0.99, 10.01, 0, -1, True, float("nan"), float("inf"), "x"])
def test_luck_outside_one_to_ten_is_refused(luck: object) -> None:
    """Luck must be a number from 1 to 10."""
    with pytest.raises(DrawError):
        luck_hundredths(luck)  # type: ignore[arg-type]


# ---- entries ----------------------------------------------------------------------------


@given(entries_strategy, st.randoms())
def test_canonical_order_ignores_insertion_order(entries: list[tuple[str, int, float]],
                                                 rnd: random.Random) -> None:
    """Ids come out sorted by (length, text) whatever order they were entered in."""
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    ids, weights = canonical_entries(shuffled)
    assert ids == sorted((e[0] for e in entries), key=order_key)
    assert (ids, weights) == canonical_entries(entries)


def test_canonical_order_is_numeric_for_twitch_ids() -> None:
    """Numeric ids of different lengths come out in numeric order; weights are exact."""
    ids, weights = canonical_entries([("100", 2, 1.5), ("99", 1, 1), ("1000", 3, 2)])
    assert ids == ["99", "100", "1000"]
    assert weights == [100, 300, 600]


@pytest.mark.parametrize(
    "entries",
    [
        [("1", 1, 1.0), ("1", 2, 1.0)],
        [("", 1, 1.0)],
        [("1", 0, 1.0)],
        [("1", 1.5, 1.0)],
        [("1", True, 1.0)],
        [("1", 1, 11.0)],
        [(1, 1, 1.0)],
        [("1", 1)],
    ],
)
def test_bad_entries_are_refused(entries: list[tuple[object, ...]]) -> None:
    """Duplicate or empty ids, tickets below 1 or not whole, luck out of range: DrawError."""
    with pytest.raises(DrawError):
        draw(SEED, entries, 1)  # type: ignore[arg-type]


# ---- the draw ---------------------------------------------------------------------------


def test_known_answer() -> None:
    """A fixed seed and entries give fixed winners: a change of algorithm cannot slip by."""
    entries = [Entry(str(1000 + i), 1 + i % 3, 1.5 if i % 4 == 0 else 1.0) for i in range(20)]
    result = draw(SEED, entries, 5)
    assert list(result.winners) == reference_order(SEED, entries)[:5]  # type: ignore[arg-type]
    assert result.winners == ("1010", "1001", "1017", "1013", "1012")
    assert (result.position, result.taken, result.exhausted) == (6, 5, False)  # one re-pick
    assert commitment(SEED) == "2a8abfa8cb9906290437854193ca6bca41d4d4e26d1d454bd66a35158095e737"


@settings(max_examples=60, deadline=None)
@given(entries_strategy, st.integers(0, 10**6))
def test_draw_order_matches_the_documented_algorithm(entries: list[tuple[str, int, float]],
                                                     i: int) -> None:
    """A literal implementation of the docstring, rebuilds included, gives the same order."""
    seed = seed_for(i)
    assert list(DrawOrder(seed, entries)) == reference_order(seed, entries)


@given(entries_strategy, st.integers(0, 10**6), st.integers(0, 40))
def test_draw_is_deterministic_and_nobody_wins_twice(entries: list[tuple[str, int, float]],
                                                     i: int, n: int) -> None:
    """Same seed and entries, any order: same winners; never one twice; exhausted when short."""
    seed = seed_for(i)
    first = draw(seed, entries, n)
    second = draw(seed, list(reversed(entries)), n)
    assert first == second
    assert len(set(first.winners)) == len(first.winners) == min(n, len(entries))
    assert first.exhausted == (n > len(entries))
    assert set(first.winners) <= {e[0] for e in entries}


@given(entries_strategy, st.integers(0, 10**6), st.lists(st.integers(0, 5), max_size=6))
def test_repeated_draws_continue_one_long_draw(entries: list[tuple[str, int, float]], i: int,
                                               batches: list[int]) -> None:
    """Drawing in batches gives the winners, in order, of one draw of their sum."""
    seed = seed_for(i)
    won: list[str] = []
    position = 0
    for n in batches:
        result = draw(seed, entries, n, already_won=won)
        won += result.winners
        position = result.position if result.winners else position
    whole = draw(seed, entries, sum(batches))
    assert won == list(whole.winners)
    if won:
        assert position == whole.position


def test_draw_two_then_one_equals_draw_three() -> None:
    """The brief's example, on a crowd where winners are removed and tables rebuilt."""
    entries = [(str(i), 1 + i % 7, 1.0 + (i % 3) / 2) for i in range(1, 200)]
    first = draw(SEED, entries, 2)
    second = draw(SEED, entries, 1, already_won=first.winners)
    assert first.winners + second.winners == draw(SEED, entries, 3).winners


def test_one_heavy_entrant_forces_rebuilds_without_changing_the_order() -> None:
    """A whale with most of the weight: after they win, the table is rebuilt, and draws
    still continue exactly."""
    entries = [("1", 10_000, 10.0)] + [(str(i), 1, 1.0) for i in range(2, 60)]
    whole = draw(SEED, entries, 59)
    assert whole.winners[0] == "1"  # 10,000,000 of 10,005,800 weight
    assert list(whole.winners) == reference_order(SEED, entries)
    pieces: list[str] = []
    for _ in range(59):
        pieces += draw(SEED, entries, 1, already_won=pieces).winners
    assert pieces == list(whole.winners)


def test_absent_entrants_are_skipped_and_never_drawn_again() -> None:
    """With present, an absent pick is recorded as skipped and the draw goes on."""
    entries = [(str(i), 1, 1.0) for i in range(1, 30)]
    order = list(DrawOrder(SEED, entries))
    absent = {order[0], order[2]}
    present = {uid for uid, _, _ in entries} - absent
    result = draw(SEED, entries, 2, present=present)
    assert result.skipped == (order[0], order[2])
    assert result.winners == (order[1], order[3])
    # the next draw, everybody present, continues after them: the skipped stay out
    later = draw(SEED, entries, 1, already_won=result.winners, already_skipped=result.skipped)
    assert later.winners == (order[4],)
    assert later.skipped == ()


def test_present_may_be_a_predicate() -> None:
    """A callable works as well as a set."""
    entries = [(str(i), 1, 1.0) for i in range(1, 30)]
    as_set = draw(SEED, entries, 3, present={str(i) for i in range(1, 30, 2)})
    as_call = draw(SEED, entries, 3, present=lambda uid: int(uid) % 2 == 1)
    assert as_set == as_call


def test_nobody_present_exhausts_the_entries() -> None:
    """If every entrant is absent, each is skipped once and the draw ends with no winner."""
    entries = [(str(i), 1, 1.0) for i in range(1, 6)]
    result = draw(SEED, entries, 1, present=set())
    assert result.winners == ()
    assert sorted(result.skipped) == sorted(e[0] for e in entries)
    assert result.exhausted


def test_continuing_from_wrong_records_fails_loudly() -> None:
    """Earlier winners that are not the front of the draw order are refused."""
    entries = [(str(i), 1, 1.0) for i in range(1, 30)]
    order = list(DrawOrder(SEED, entries))
    with pytest.raises(DrawError, match="do not follow"):
        draw(SEED, entries, 1, already_won=[order[1]])
    with pytest.raises(DrawError, match="not entered"):
        draw(SEED, [("1", 1, 1.0)], 1, already_won=["1", "2"])
    with pytest.raises(DrawError, match="twice"):
        draw(SEED, entries, 1, already_won=[order[0]], already_skipped=[order[0]])


def test_biased_random_numbers_are_discarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random number in the top partial block (modulo bias) is skipped, using the next."""
    numbers = iter([2**256 - 1, 5])
    monkeypatch.setattr(rules, "random_number", lambda key, k: next(numbers))
    order = DrawOrder(SEED, [("1", 1, 1.0), ("2", 2, 1.0)])  # T = 300: 2^256 mod 300 != 0
    assert next(order) == "1"  # x = 5 < 100
    assert order.position == 2


def test_draw_of_zero_and_negative() -> None:
    """n = 0 draws nobody; n < 0 is a programming error."""
    assert draw(SEED, [("1", 1, 1.0)], 0).winners == ()
    with pytest.raises(ValueError, match="n must be"):
        draw(SEED, [("1", 1, 1.0)], -1)


def test_weights_are_honoured_statistically() -> None:
    """Luck 2 wins about twice as often as luck 1; 3 tickets three times as often as 1."""
    draws = 3000
    luck = sum(draw(seed_for(i), [("1", 1, 1.0), ("2", 1, 2.0)], 1).winners == ("2",)
               for i in range(draws))
    assert 0.62 < luck / draws < 0.71  # 2/3, within 5 standard deviations
    tickets = sum(draw(seed_for(i), [("1", 3, 1.0), ("2", 1, 1.0)], 1).winners == ("1",)
                  for i in range(draws))
    assert 0.70 < tickets / draws < 0.80  # 3/4


# ---- verification -----------------------------------------------------------------------


def recorded(entries: list[tuple[str, int, float]], absent: set[str]
             ) -> tuple[list[str], list[str]]:
    """What a service records over three draws, the middle one with present."""
    won: list[str] = []
    skipped: list[str] = []
    for n, present in ((2, None), (2, {e[0] for e in entries} - absent), (1, None)):
        result = draw(SEED, entries, n, already_won=won, already_skipped=skipped,
                      present=present)
        won += result.winners
        skipped += result.skipped
    return won, skipped


ENTRIES = [(str(100 + i), 1 + i % 4, 1.0 if i % 5 else 2.5) for i in range(40)]


def test_verify_matches_a_recorded_draw_with_skips() -> None:
    """Winners and skipped recorded over several draws are reproduced exactly."""
    order = list(DrawOrder(SEED, ENTRIES))
    won, skipped = recorded(ENTRIES, {order[2], order[3]})
    assert skipped == [order[2], order[3]]
    result = verify(SEED, commitment(SEED), ENTRIES, won, skipped)
    assert result.ok and result.status == "match"
    assert list(result.winners) == won and list(result.skipped) == skipped


def test_verify_needs_the_skipped_list() -> None:
    """Without the recorded skipped entrants, the same winners do not verify."""
    order = list(DrawOrder(SEED, ENTRIES))
    won, skipped = recorded(ENTRIES, {order[2]})
    assert skipped == [order[2]]
    assert verify(SEED, commitment(SEED), ENTRIES, won, []).status == "mismatch"


def test_verify_detects_a_tampered_winner() -> None:
    """A winner swapped for someone else is a mismatch that names the place."""
    won = list(draw(SEED, ENTRIES, 3).winners)
    tampered = [won[0], "999", won[2]]
    result = verify(SEED, commitment(SEED), ENTRIES, tampered)
    assert result.status == "mismatch"
    assert result.differences[0].what == "winner"
    assert (result.differences[0].index, result.differences[0].recorded,
            result.differences[0].recomputed) == (1, "999", won[1])


def test_verify_detects_reordered_winners() -> None:
    """The order of winners is part of the record."""
    won = list(draw(SEED, ENTRIES, 3).winners)
    assert verify(SEED, commitment(SEED), ENTRIES, won[::-1]).status == "mismatch"


def test_verify_detects_a_tampered_seed_or_commitment() -> None:
    """A seed that does not hash to the posted commitment, either way round, is caught."""
    won = list(draw(SEED, ENTRIES, 3).winners)
    other = seed_for(1)
    swapped_seed = verify(other, commitment(SEED), ENTRIES, list(draw(other, ENTRIES, 3).winners))
    assert swapped_seed.status == "bad_commitment" and not swapped_seed.ok
    assert verify(SEED, commitment(other), ENTRIES, won).status == "bad_commitment"
    assert verify("nope", commitment(SEED), ENTRIES, won).status == "bad_seed"


def test_verify_detects_tampered_entries() -> None:
    """Changing a ticket count changes the recomputation (or is caught as bad entries)."""
    won = list(draw(SEED, ENTRIES, 5).winners)
    heavier = [(uid, t * 50 if uid == "139" else t, luck) for uid, t, luck in ENTRIES]
    assert verify(SEED, commitment(SEED), heavier, won).status == "mismatch"
    doubled = [*ENTRIES, ENTRIES[0]]
    result = verify(SEED, commitment(SEED), doubled, won)
    assert result.status == "bad_entries" and "two entries" in result.problem


def test_verify_a_draw_that_ran_out() -> None:
    """Skips after the last winner (everyone left absent) are replayed too."""
    entries = [(str(i), 1, 1.0) for i in range(1, 8)]
    first = draw(SEED, entries, 1)
    rest = draw(SEED, entries, 3, already_won=first.winners, present=set())
    assert rest.exhausted and rest.winners == ()
    result = verify(SEED, commitment(SEED), entries, list(first.winners), list(rest.skipped))
    assert result.ok


def test_verify_an_extra_recorded_winner() -> None:
    """A record with more winners than entrants is a mismatch, not a crash."""
    entries = [("1", 1, 1.0), ("2", 1, 1.0)]
    won = list(draw(SEED, entries, 2).winners)
    result = verify(SEED, commitment(SEED), entries, [*won, "3"])
    assert result.status == "mismatch"
    assert result.differences == (rules.Difference("winner", 2, "3", None),)
