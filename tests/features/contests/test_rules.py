"""Contest rules: opening, betting and the exact settlement of SPEC §10.3."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltybot.features.contests.rules import (
    BadContest,
    Bet,
    BetTooLarge,
    BetTooSmall,
    ContestRefusal,
    ContestSpec,
    DuplicateOption,
    EmptyPart,
    NoSuchOption,
    PartTooLong,
    TooFewOptions,
    TooManyOptions,
    WrongOption,
    check_bet,
    format_odds,
    odds,
    parse_contest,
    refund_all,
    settle,
)
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import LoyaltyError

# ---- settlement by hand -----------------------------------------------------------------


def test_settlement_without_remainders() -> None:
    """W=300, L=75: 100 gets 100+25, 200 gets 200+50; the losers get nothing."""
    bets = [Bet("a", 1, 100, 1), Bet("b", 1, 200, 2), Bet("c", 2, 50, 3), Bet("d", 2, 25, 4)]
    result = settle(bets, 1)
    assert result.outcome == "paid"
    assert dict(result.payouts) == {"a": 125, "b": 250}
    assert (result.winning_pool, result.losing_pool, result.extra_points) == (300, 75, 0)
    assert result.refunds == {}
    assert result.paid_out == result.pool == 375


def test_settlement_leftover_points_go_to_the_largest_remainders() -> None:
    """W=70, L=10: shares 100/70, 200/70, 400/70 = 1 r30, 2 r60, 5 r50; the 2 points the
    floors leave go to r60 and r50."""
    bets = [Bet("a", 1, 10, 1), Bet("b", 1, 20, 2), Bet("c", 1, 40, 3), Bet("d", 2, 10, 4)]
    result = settle(bets, 1)
    assert dict(result.payouts) == {"a": 11, "b": 23, "c": 46}
    assert result.extra_points == 2
    assert result.paid_out == 80


def test_settlement_ties_go_to_the_earliest_first_bet() -> None:
    """W=30, L=5: each 10 gets 1 r20; the 2 points left go to the first bets at 2 and 5."""
    bets = [Bet("a", 1, 10, 5), Bet("b", 1, 10, 2), Bet("c", 1, 10, 9), Bet("d", 2, 5, 1)]
    result = settle(bets, 1)
    assert dict(result.payouts) == {"a": 12, "b": 12, "c": 11}
    assert result.paid_out == 35


def test_settlement_first_bet_is_the_viewers_earliest_row() -> None:
    """A viewer's top-up keeps their first bet's place: c (first at 1) beats a (3)."""
    bets = [Bet("a", 1, 5, 3), Bet("c", 1, 3, 1), Bet("c", 1, 2, 10), Bet("d", 2, 1, 2)]
    result = settle(bets, 1)
    assert dict(result.stakes) == {"a": 5, "c": 5, "d": 1}
    assert dict(result.payouts) == {"a": 5, "c": 6}  # each 5*1/10 = 0 r5; one point left


def test_settlement_full_ties_go_by_user_id() -> None:
    """Same remainder and first bet: the shorter id, then the smaller, wins the point."""
    bets = [Bet("100", 1, 1, 1), Bet("20", 1, 1, 1), Bet("3", 2, 1, 1)]
    result = settle(bets, 1)
    assert dict(result.payouts) == {"20": 2, "100": 1}


def test_nobody_on_the_winner_refunds_everyone() -> None:
    """No bet on the winning option: every stake back, nobody paid."""
    bets = [Bet("a", 1, 10, 1), Bet("b", 2, 20, 2), Bet("a", 1, 5, 3)]
    result = settle(bets, 3)
    assert result.outcome == "refunded"
    assert dict(result.refunds) == {"a": 15, "b": 20}
    assert result.payouts == {}
    assert result.paid_out == result.pool == 35


def test_cancel_refunds_everyone() -> None:
    """refund_all gives every stake back."""
    result = refund_all([Bet("a", 1, 10, 1), Bet("b", 2, 20, 2)])
    assert result.outcome == "refunded" and result.winning_option is None
    assert dict(result.refunds) == {"a": 10, "b": 20}


def test_empty_contest_settles_to_nothing() -> None:
    """A contest nobody bet on settles without error and pays nothing."""
    result = settle([], 1)
    assert result.outcome == "refunded" and result.pool == 0 and result.refunds == {}


def test_one_viewer_on_two_options_is_refused() -> None:
    """Bets that break one-option-per-viewer are not settled by guessing."""
    with pytest.raises(ValueError, match="options 1 and 2"):
        settle([Bet("a", 1, 10, 1), Bet("a", 2, 10, 2)], 1)
    with pytest.raises(ValueError, match="whole numbers"):
        settle([Bet("a", 1, 0, 1)], 1)


# ---- settlement properties --------------------------------------------------------------

bets_strategy = st.lists(
    st.tuples(st.integers(1, 40), st.integers(1, 4),
              st.one_of(st.integers(1, 1000), st.integers(1, MAX_POINTS // 1000)),
              st.integers(0, 50)),
    max_size=60,
).map(lambda rows: _one_option_each(rows))


def _one_option_each(rows: list[tuple[int, int, int, int]]) -> list[Bet]:
    """Random rows, with each viewer's option fixed by their first row (the acceptance rule)."""
    option_of: dict[str, int] = {}
    out = []
    for user, option, amount, at in rows:
        uid = str(user)
        out.append(Bet(uid, option_of.setdefault(uid, option), amount, at))
    return out


@given(bets_strategy, st.integers(1, 4))
def test_payouts_add_up_to_the_pool(bets: list[Bet], winner: int) -> None:
    """Payouts (or refunds) add up to every point staked, to the point."""
    result = settle(bets, winner)
    assert result.paid_out == sum(b.amount for b in bets) == result.pool


@given(bets_strategy, st.integers(1, 4))
def test_winners_get_stake_plus_floor_plus_at_most_one(bets: list[Bet], winner: int) -> None:
    """Each winner gets s + floor(L*s/W), plus 0 or 1; never less than the stake."""
    result = settle(bets, winner)
    if result.outcome == "refunded":
        return
    w, lost = result.winning_pool, result.losing_pool
    for user, payout in result.payouts.items():
        stake = result.stakes[user]
        assert payout >= stake
        assert payout - (stake + lost * stake // w) in (0, 1)


@given(bets_strategy, st.integers(1, 4))
def test_extra_points_go_by_largest_remainder(bets: list[Bet], winner: int) -> None:
    """Nobody who got an extra point has a smaller remainder than one who did not."""
    result = settle(bets, winner)
    if result.outcome == "refunded":
        return
    w, lost = result.winning_pool, result.losing_pool
    got: list[int] = []
    not_got: list[int] = []
    for user, payout in result.payouts.items():
        stake = result.stakes[user]
        remainder = lost * stake % w
        (got if payout > stake + lost * stake // w else not_got).append(remainder)
    assert len(got) == result.extra_points
    if got and not_got:
        assert min(got) >= max(not_got)
    assert all(r > 0 for r in got)


@given(bets_strategy, st.integers(1, 4))
def test_losers_get_nothing_and_refunds_are_all_or_none(bets: list[Bet], winner: int) -> None:
    """Losers are never paid; when nobody backed the winner everyone gets exactly their stake."""
    result = settle(bets, winner)
    backed = any(b.option == winner for b in bets)
    if not backed:
        assert result.outcome == "refunded"
        assert dict(result.refunds) == dict(result.stakes)
    else:
        assert result.refunds == {}
        assert {b.user_id for b in bets if b.option == winner} == set(result.payouts)


# ---- odds -------------------------------------------------------------------------------


def test_odds() -> None:
    """Ratios are total / pool, exact; an empty pool has none."""
    assert odds([100, 300]) == (Fraction(4), Fraction(4, 3))
    assert odds([0, 50]) == (None, Fraction(1))
    assert odds([0, 0]) == (None, None)
    assert odds([]) == ()


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(Fraction(47, 20), "1:2.35"), (Fraction(4), "1:4.00"), (Fraction(8, 3), "1:2.66"),
     (Fraction(1), "1:1.00"), (Fraction(1001, 1), "1:1001.00"), (None, "-")],
)
def test_format_odds_rounds_down(ratio: Fraction | None, text: str) -> None:
    """Odds are shown in hundredths, rounded down so they never promise too much."""
    assert format_odds(ratio) == text


# ---- betting ----------------------------------------------------------------------------


def bet(option: int, amount: int, held_option: int | None = None, held_amount: int = 0,
        count: int = 3) -> int:
    return check_bet(option, amount, option_count=count, held_option=held_option,
                     held_amount=held_amount, min_bet=10, max_bet=1000)


def test_a_bet_returns_the_new_total() -> None:
    """A first bet, and a top-up on the same option, give the viewer's total."""
    assert bet(1, 10) == 10
    assert bet(2, 5, held_option=2, held_amount=100) == 105
    assert bet(3, 1000) == 1000


def test_refusals_carry_their_data() -> None:
    """Each refusal derives from ContestRefusal and LoyaltyError and names its figures."""
    with pytest.raises(NoSuchOption) as no_such:
        bet(4, 10)
    assert (no_such.value.number, no_such.value.count) == (4, 3)
    with pytest.raises(NoSuchOption):
        bet(0, 10)
    with pytest.raises(WrongOption) as wrong:
        bet(1, 10, held_option=2, held_amount=50)
    assert (wrong.value.chosen, wrong.value.held) == (1, 2)
    with pytest.raises(BetTooSmall) as small:
        bet(1, 9)
    assert (small.value.amount, small.value.minimum) == (9, 10)
    with pytest.raises(BetTooLarge) as large:
        bet(1, 200, held_option=1, held_amount=900)
    assert (large.value.total, large.value.maximum, large.value.left) == (1100, 1000, 100)
    assert isinstance(large.value, ContestRefusal) and isinstance(large.value, LoyaltyError)


def test_top_ups_below_the_minimum_are_fine() -> None:
    """The minimum is for the stake held: adding 1 to a 50 stake is accepted."""
    assert bet(1, 1, held_option=1, held_amount=50) == 51


def test_check_order_option_before_amount() -> None:
    """A wrong option is reported before an amount problem."""
    with pytest.raises(WrongOption):
        bet(1, 5000, held_option=2, held_amount=1)


# ---- opening ----------------------------------------------------------------------------


def test_parse_contest() -> None:
    """A question and options, trimmed."""
    assert parse_contest("  Who wins?  | Red |Blue  | Nobody ") == ContestSpec(
        "Who wins?", ("Red", "Blue", "Nobody"))


@pytest.mark.parametrize(
    ("text", "error", "data"),
    [
        (" | a | b", EmptyPart, {"index": 0}),
        ("q | a |  | b", EmptyPart, {"index": 2}),
        ("q | a |", EmptyPart, {"index": 2}),
        ("q", TooFewOptions, {"count": 0, "minimum": 2}),
        ("q | a", TooFewOptions, {"count": 1}),
        ("q" + " | x" * 11, TooManyOptions, {"count": 11, "maximum": 10}),
        ("q" * 201 + " | a | b", PartTooLong, {"index": 0, "length": 201, "maximum": 200}),
        ("q | a | " + "b" * 51, PartTooLong, {"index": 2, "length": 51, "maximum": 50}),
        ("q | Yes | no | yes", DuplicateOption, {"index": 3, "first": 1}),
    ],
)
def test_parse_contest_refusals(text: str, error: type[BadContest],
                                data: dict[str, int]) -> None:
    """Each malformed !contest open is refused with a typed, data-carrying refusal."""
    with pytest.raises(error) as caught:
        parse_contest(text)
    assert isinstance(caught.value, BadContest)
    for key, value in data.items():
        assert getattr(caught.value, key) == value


def test_parse_contest_limits_are_inclusive() -> None:
    """Ten options and the longest allowed parts are accepted."""
    spec = parse_contest("q" * 200 + "".join(f" | {i}" + "o" * 48 for i in range(10)))
    assert len(spec.options) == 10
    assert len(spec.question) == 200
