"""Game rules: settings, wagers, and the outcomes of gamble, slots, duel and heist (SPEC §10.4)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltybot.config import GamesConfig
from loyaltybot.features.games.rules import (
    BadPercent,
    GameRefusal,
    GameSettings,
    NothingToWager,
    WagerTooLarge,
    WagerTooSmall,
    check_bet,
    coin_flip,
    duel,
    gamble,
    heist,
    heist_rolls,
    house_edge,
    parse_wager,
    roll_d100,
    settings_from,
    slots,
    spin,
    times,
    validate_game_settings,
)
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import InvalidAmount, LoyaltyError

# ---- settings ---------------------------------------------------------------------------


def test_defaults_are_valid_and_match_the_spec() -> None:
    """The defaults are SPEC §10.4's example, and they validate."""
    defaults = GameSettings()
    assert defaults.enabled == ()
    assert (defaults.gamble_win_at, defaults.heist_payout_multiplier) == (51, 1.7)
    values = defaults.model_dump()
    assert validate_game_settings(values) == []
    assert settings_from(values) == defaults


def test_the_rules_validate_with_the_config_schema() -> None:
    """One schema: the games' settings are the config's model, so they cannot disagree."""
    assert GameSettings is GamesConfig


def test_settings_from_turns_lists_into_tuples() -> None:
    """A TOML table (lists) becomes the frozen settings (tuples); a form's strings in lax mode."""
    settings = settings_from({"enabled": ["gamble", "heist"], "slots_symbols": ["A", "B"]})
    assert settings.enabled == ("gamble", "heist")
    assert settings.slots_symbols == ("A", "B")
    assert settings_from({"gamble_win_at": "60"}, lax=True).gamble_win_at == 60
    with pytest.raises(ValueError, match="gamble_win_at: must be >= 1"):
        settings_from({"gamble_win_at": 0})


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        ({"gamble_win_at": 0}, [("gamble_win_at", "must be >= 1")]),
        ({"gamble_win_at": 101}, [("gamble_win_at", "must be <= 100")]),
        ({"gamble_win_at": 50.5}, [("gamble_win_at", "must be a whole number")]),
        ({"heist_success_percent": -1}, [("heist_success_percent", "must be >= 0")]),
        ({"heist_payout_multiplier": -0.1}, [("heist_payout_multiplier", "must be >= 0")]),
        ({"slots_pair_multiplier": "1"}, [("slots_pair_multiplier", "must be a number")]),
        ({"slots_triple_multiplier": float("inf")},
         [("slots_triple_multiplier", "must be a finite number")]),
        ({"slots_symbols": ["A"]}, [("slots_symbols", "must have from 2 to 10 entries")]),
        ({"slots_symbols": [str(i) for i in range(11)]},
         [("slots_symbols", "must have from 2 to 10 entries")]),
        ({"slots_symbols": ["A", "A"]}, [("slots_symbols[1]", "appears twice")]),
        ({"slots_symbols": ["A", " "]}, [("slots_symbols[1]", "must be one word, without spaces")]),
        ({"slots_symbols": "AB"}, [("slots_symbols", "must be a list")]),
        ({"cooldown_seconds": -1}, [("cooldown_seconds", "must be >= 0")]),
        ({"heist_cooldown_seconds": True}, [("heist_cooldown_seconds", "must be a number")]),
        ({"duel_accept_seconds": 0}, [("duel_accept_seconds", "must be >= 1")]),
        ({"heist_join_seconds": 0.5}, [("heist_join_seconds", "must be >= 1")]),
        ({"min_bet": 0}, [("min_bet", "must be >= 1")]),
        ({"max_bet": MAX_POINTS + 1}, [("max_bet", f"must be <= {MAX_POINTS:,}")]),
        ({"min_bet": 100, "max_bet": 10}, [("max_bet", "must be >= min_bet")]),
        ({"heist_min_players": 0}, [("heist_min_players", "must be >= 1")]),
        ({"enabled": ["poker"]},
         [("enabled[0]", "must be one of 'gamble', 'slots', 'duel' or 'heist'")]),
        ({"enabled": ["duel", "duel"]}, [("enabled[1]", "appears twice")]),
        ({"roulette": 1}, [("roulette", "unknown key")]),
    ],
)
def test_settings_validation_messages(values: dict[str, Any],
                                      problems: list[tuple[str, str]]) -> None:
    """Each out-of-range setting is one problem naming its key, in check-config's words."""
    assert validate_game_settings(values) == problems


def test_settings_boundaries_are_valid() -> None:
    """The ends of every range are accepted."""
    assert validate_game_settings({
        "gamble_win_at": 1, "heist_success_percent": 0, "heist_payout_multiplier": 0,
        "slots_pair_multiplier": 0, "slots_triple_multiplier": 0.5,
        "slots_symbols": [str(i) for i in range(10)], "cooldown_seconds": 0,
        "heist_cooldown_seconds": 0, "duel_accept_seconds": 1, "heist_join_seconds": 1,
        "min_bet": 5, "max_bet": 5, "enabled": [],
    }) == []
    assert validate_game_settings({"gamble_win_at": 100, "heist_success_percent": 100}) == []


# ---- wagers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "balance", "wager"),
    [
        ("100", 0, 100),  # an amount is only parsed: the transaction checks the balance
        ("1,000", 5000, 1000),
        ("all", 1234, 1234),
        ("ALL", 7, 7),
        ("half", 1235, 617),
        ("Half", 2, 1),
        ("100%", 999, 999),
        ("1%", 250, 2),
        ("50%", 3, 1),
        ("33%", 1000, 330),
        (str(MAX_POINTS), 0, MAX_POINTS),
    ],
)
def test_parse_wager(text: str, balance: int, wager: int) -> None:
    """Amounts, all, half and N% (floored) become a number of points."""
    assert parse_wager(text, balance) == wager


@pytest.mark.parametrize(
    ("text", "reason"),
    [("0", "at least 1"), ("-5", "positive"), ("1e5", "whole number"), ("1.5", "whole number"),
     ("abc", "whole number"), ("99999999999999999999", "at most"), ("", "whole number")],
)
def test_parse_wager_bad_amounts(text: str, reason: str) -> None:
    """Bad amounts are the amount parser's refusals, with its reasons."""
    with pytest.raises(InvalidAmount, match=reason):
        parse_wager(text, 1000)


@pytest.mark.parametrize("text", ["0%", "101%", "-5%", "1.5%", "%", "abc%", "50 %"])
def test_parse_wager_bad_percentages(text: str) -> None:
    """N% needs N a whole number from 1 to 100."""
    with pytest.raises(BadPercent) as caught:
        parse_wager(text, 1000)
    assert caught.value.text == text


@pytest.mark.parametrize(("text", "balance"), [("all", 0), ("half", 1), ("half", 0),
                                               ("1%", 99), ("100%", 0)])
def test_parse_wager_that_comes_to_nothing(text: str, balance: int) -> None:
    """all with 0 points, half of 1, 1% of 99: refused, saying the balance."""
    with pytest.raises(NothingToWager) as caught:
        parse_wager(text, balance)
    assert (caught.value.text, caught.value.balance) == (text, balance)
    assert isinstance(caught.value, GameRefusal) and isinstance(caught.value, LoyaltyError)


def test_check_bet() -> None:
    """The wager must lie within min_bet..max_bet, both ends included."""
    assert check_bet(10, 10, 100) == 10
    assert check_bet(100, 10, 100) == 100
    with pytest.raises(WagerTooSmall) as small:
        check_bet(9, 10, 100)
    assert (small.value.amount, small.value.minimum) == (9, 10)
    with pytest.raises(WagerTooLarge) as large:
        check_bet(101, 10, 100)
    assert (large.value.amount, large.value.maximum) == (101, 100)


# ---- gamble -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roll", "won", "returned", "delta"),
    [(1, False, 0, -50), (50, False, 0, -50), (51, True, 100, 50), (100, True, 100, 50)],
)
def test_gamble(roll: int, won: bool, returned: int, delta: int) -> None:
    """win_at 51: 51 or more doubles the bet, less loses it; the roll is kept."""
    outcome = gamble(50, roll, 51)
    assert (outcome.won, outcome.returned, outcome.delta, outcome.roll) == (
        won, returned, delta, roll)


def test_gamble_refuses_impossible_rolls() -> None:
    """A roll outside 1..100 or a zero bet is a programming error."""
    for bad in (0, 101):
        with pytest.raises(ValueError, match="roll"):
            gamble(10, bad, 51)
    with pytest.raises(ValueError, match="bet"):
        gamble(0, 50, 51)


def test_rolls_come_from_the_whole_range() -> None:
    """roll_d100 gives 1..100 and reaches both ends over many rolls."""
    rolls = [roll_d100() for _ in range(5000)]
    assert min(rolls) == 1 and max(rolls) == 100


# ---- slots ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "kind", "returned"),
    [
        (("A", "A", "A"), "triple", 1000),
        (("A", "A", "B"), "pair", 100),
        (("A", "B", "A"), "pair", 100),
        (("B", "A", "A"), "pair", 100),
        (("A", "B", "C"), "none", 0),
    ],
)
def test_slots(symbols: tuple[str, str, str], kind: str, returned: int) -> None:
    """Multipliers are what comes back: pair 1 = no change, triple 10 = a gain of 9x."""
    outcome = slots(100, symbols, 1, 10)
    assert (outcome.kind, outcome.returned, outcome.delta) == (kind, returned, returned - 100)


@pytest.mark.parametrize(
    ("bet", "multiplier", "returned"),
    [(100, 1.15, 115), (3, 1.5, 4), (7, 0.5, 3), (1, 0.99, 0), (10, 2.5, 25), (100, 1.7, 170),
     (3, Fraction(1, 3), 1)],
)
def test_fractional_multipliers_floor_exactly(bet: int, multiplier: float, returned: int) -> None:
    """floor(bet * multiplier) on the decimal written: 100 * 1.15 is 115, not 114."""
    assert times(bet, multiplier) == returned
    assert slots(bet, ("A", "A", "A"), 1, multiplier).returned == returned


def test_spin_draws_three_known_symbols() -> None:
    """spin picks three of the configured symbols, and all of them over many spins."""
    symbols = ("Kappa", "LUL", "PogChamp")
    seen = Counter(s for _ in range(500) for s in spin(symbols))
    assert set(seen) == set(symbols)
    assert len(spin(symbols)) == 3


# ---- duel -------------------------------------------------------------------------------


def test_duel_winner_takes_both_stakes() -> None:
    """The flip's side gets the pot of both stakes; the other is the loser."""
    outcome = duel(250, "target")
    assert (outcome.winner, outcome.loser, outcome.pot) == ("target", "challenger", 500)
    assert duel(1, "challenger").loser == "target"
    with pytest.raises(ValueError, match="flip"):
        duel(1, "nobody")  # type: ignore[arg-type]


def test_coin_flip_gives_both_sides() -> None:
    """Both sides come up over many flips."""
    assert {coin_flip() for _ in range(200)} == {"challenger", "target"}


# ---- heist ------------------------------------------------------------------------------


def test_heist_short_of_players_refunds_everyone_and_pays_nobody() -> None:
    """Below min_players the heist never runs (Firebot's bug): every bet back, exactly."""
    outcome = heist([("a", 100), ("b", 50)], [1, 1], 3, 100, 10)
    assert not outcome.ran
    assert [(p.user_id, p.returned, p.delta, p.roll) for p in outcome.players] == [
        ("a", 100, 0, None), ("b", 50, 0, None)]
    assert (outcome.survivors, outcome.caught) == (0, 0)
    assert outcome.total_returned == outcome.total_bet == 150


def test_heist_by_hand() -> None:
    """success 50, x1.7: rolls 50 and 1 survive (floor(101*1.7)=171, 170), 51 and 100 lose."""
    outcome = heist([("a", 101), ("b", 100), ("c", 30), ("d", 7)], [50, 51, 100, 1], 2, 50, 1.7)
    assert outcome.ran
    assert [(p.user_id, p.survived, p.returned, p.delta) for p in outcome.players] == [
        ("a", True, 171, 70), ("b", False, 0, -100), ("c", False, 0, -30), ("d", True, 11, 4)]
    assert (outcome.survivors, outcome.caught) == (2, 2)
    assert (outcome.total_bet, outcome.total_returned) == (238, 182)


def test_heist_refuses_bad_input() -> None:
    """A user twice, rolls not matching the crew, or a roll out of range are errors."""
    with pytest.raises(ValueError, match="twice"):
        heist([("a", 1), ("a", 2)], [1, 1], 1, 50, 1.7)
    with pytest.raises(ValueError, match="one roll"):
        heist([("a", 1), ("b", 2)], [1], 1, 50, 1.7)
    with pytest.raises(ValueError, match=r"1\.\.100"):
        heist([("a", 1)], [0], 1, 50, 1.7)


crew = st.dictionaries(st.text("abcdef", min_size=1, max_size=4),
                       st.integers(1, 10**9), max_size=30).map(lambda d: list(d.items()))


@given(crew, st.integers(1, 10), st.integers(0, 100),
       st.sampled_from([0, 0.5, 1, 1.5, 1.7, 2, 3.33]), st.data())
def test_heist_properties(entries: list[tuple[str, int]], min_players: int, success: int,
                          multiplier: float, data: st.DataObject) -> None:
    """Short crews are refunded exactly; otherwise survivors get floor(bet*m), the rest 0."""
    rolls = data.draw(st.lists(st.integers(1, 100), min_size=len(entries),
                               max_size=len(entries)))
    outcome = heist(entries, rolls, min_players, success, multiplier)
    assert [p.user_id for p in outcome.players] == [u for u, _ in entries]
    if len(entries) < min_players:
        assert not outcome.ran
        assert all(p.returned == p.bet for p in outcome.players)
        return
    assert outcome.survivors + outcome.caught == len(entries)
    m = Fraction(str(multiplier))
    for player, roll in zip(outcome.players, rolls, strict=True):
        assert player.survived == (roll <= success)
        expected = int(player.bet * m) if player.survived else 0  # int() floors: all >= 0
        assert player.returned == expected
    assert outcome.total_returned == sum(p.returned for p in outcome.players)


def test_heist_rolls() -> None:
    """One roll per player, each 1..100."""
    rolls = heist_rolls(1000)
    assert len(rolls) == 1000 and min(rolls) >= 1 and max(rolls) <= 100
    assert heist_rolls(0) == []


# ---- house edge -------------------------------------------------------------------------


def test_house_edge_of_the_defaults() -> None:
    """gamble 51: 0; slots 5 symbols, 1 and 10: 3/25; duel 0; heist 50% x1.7: 3/20."""
    defaults = GameSettings()
    assert house_edge(defaults, "gamble") == 0
    assert house_edge(defaults, "slots") == Fraction(3, 25)
    assert house_edge(defaults, "duel") == 0
    assert house_edge(defaults, "heist") == Fraction(3, 20)


def test_house_edge_follows_the_settings() -> None:
    """A harder gamble, kinder slots and a losing heist show in the edge."""
    settings = GameSettings(gamble_win_at=61, slots_symbols=("A", "B"), slots_pair_multiplier=0,
                            slots_triple_multiplier=2, heist_success_percent=100,
                            heist_payout_multiplier=2)
    assert house_edge(settings, "gamble") == Fraction(1, 5)  # wins 40 of 100
    assert house_edge(settings, "slots") == Fraction(1, 2)  # triple 1/4, pair 3/4 pays 0
    assert house_edge(settings, "heist") == -1  # the viewers are favoured


def test_slots_edge_matches_enumeration() -> None:
    """The slots formula equals the average over every possible spin."""
    settings = GameSettings(slots_symbols=("A", "B", "C", "D"), slots_pair_multiplier=1.5,
                            slots_triple_multiplier=7)
    spins = [(a, b, c) for a in "ABCD" for b in "ABCD" for c in "ABCD"]
    back = sum(slots(1000, s, Fraction(3, 2), 7).returned for s in spins)
    assert house_edge(settings, "slots") == 1 - Fraction(back, 1000 * len(spins))
