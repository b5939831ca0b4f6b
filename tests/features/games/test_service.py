"""Games on a real SQLite file: gamble and slots settle in one transaction with one ledger
row for the net change; duels and heists hold their stakes in escrow until one
transaction settles or refunds them; every roll is recorded with its round. The rolls
are fixed here by replacing the roll functions (the real ones are ``secrets``)."""

from __future__ import annotations

import sqlite3

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.config import GamesConfig
from loyaltybot.db import Store
from loyaltybot.features.games import rules
from loyaltybot.features.games.rules import (
    CannotAfford,
    HeistCooldown,
    HeistStarting,
    InDuel,
    InHeist,
    NoDuel,
    NotEligible,
    NothingToWager,
    SelfDuel,
    WagerTooLarge,
)
from loyaltybot.features.games.service import DuelEnded, Games, HeistResult, merge
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import UnknownViewer
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer

SETTINGS = GamesConfig(
    enabled=("gamble", "slots", "duel", "heist"), min_bet=1, max_bet=10_000,
    slots_symbols=("A", "B", "C"), duel_accept_seconds=60, heist_join_seconds=60,
    heist_min_players=3, heist_success_percent=50, heist_payout_multiplier=1.7,
    heist_cooldown_seconds=300,
)  # fmt: skip


@pytest.fixture
async def games(bank: Bank, store: Store, clock: FakeClock) -> Games:
    found = Games(bank, store, clock)
    await found.load_settings({CHANNEL: SETTINGS, "bob_tv": None})
    return found


async def fund(bank: Bank, count: int, amount: int = 1000) -> None:
    await bank.credit_each(CHANNEL, [viewer(n) for n in range(count)], amount, kind=EntryType.ADD)


async def balance(bank: Bank, n: int) -> int:
    record = await bank.viewer(CHANNEL, viewer(n).login)
    return 0 if record is None else record.points


def fix(monkeypatch: pytest.MonkeyPatch, name: str, *values: object) -> None:
    """The roll function ``name`` returns these values in turn."""
    queue = list(values)
    monkeypatch.setattr(rules, name, lambda *args: queue.pop(0))


def ledger_types(store: Store) -> object:
    return store.read(lambda c: c.execute(
        "SELECT type, amount FROM ledger WHERE type LIKE 'game_%' OR type LIKE 'duel_%'"
        " OR type LIKE 'heist_%' ORDER BY id").fetchall())  # fmt: skip


async def test_gamble_wins_and_loses_with_one_ledger_row_each(
    bank: Bank, store: Store, games: Games, monkeypatch: pytest.MonkeyPatch
) -> None:
    """51 or more doubles the bet (game_win +bet), less loses it (game_loss -bet); half, all
    and N% are of the balance at that moment; each roll is recorded with its round."""
    await fund(bank, 1, 1000)
    fix(monkeypatch, "roll_d100", 51, 50, 100, 1)
    won = await games.play(CHANNEL, viewer(0), "gamble", "100")
    assert (won.roll, won.outcome, won.delta, won.balance) == ("51", "win", 100, 1100)
    lost = await games.play(CHANNEL, viewer(0), "gamble", "half")
    assert (lost.bet, lost.outcome, lost.balance) == (550, "loss", 550)
    won = await games.play(CHANNEL, viewer(0), "gamble", "10%")
    assert (won.bet, won.balance) == (55, 605)
    lost = await games.play(CHANNEL, viewer(0), "gamble", "all")
    assert (lost.bet, lost.balance) == (605, 0)
    with pytest.raises(NothingToWager):
        await games.play(CHANNEL, viewer(0), "gamble", "all")
    assert await ledger_types(store) == [
        ("game_win", 100), ("game_loss", -550), ("game_win", 55), ("game_loss", -605)]
    rolls = await store.read(lambda c: c.execute(
        "SELECT r.roll, r.bet, r.returned, g.game FROM game_rolls AS r"
        " JOIN game_rounds AS g ON g.id = r.game_round_id ORDER BY g.id").fetchall())  # fmt: skip
    assert rolls == [("51", 100, 200, "gamble"), ("50", 550, 0, "gamble"),
                     ("100", 55, 110, "gamble"), ("1", 605, 0, "gamble")]
    assert await bank.audit() == []


async def test_wager_refusals_change_nothing(bank: Bank, games: Games) -> None:
    """Too much, over the maximum, bad amounts, an ignored user: nothing moves."""
    await fund(bank, 1, 100)
    with pytest.raises(CannotAfford):
        await games.play(CHANNEL, viewer(0), "gamble", "101")
    with pytest.raises(WagerTooLarge):
        await games.play(CHANNEL, viewer(0), "slots", "10001")
    with pytest.raises(rules.BadPercent):
        await games.play(CHANNEL, viewer(0), "gamble", "101%")
    bank.set_excluded(CHANNEL, {"user0"})
    with pytest.raises(NotEligible):
        await games.play(CHANNEL, viewer(0), "gamble", "1")
    assert await balance(bank, 0) == 100
    assert await bank.audit() == []


async def test_slots_pay_by_the_multipliers(
    bank: Bank, store: Store, games: Games, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair at 1x gives the bet back (no ledger row), three alike 10x (game_win +9x),
    no match loses the bet."""
    await fund(bank, 1, 1000)
    fix(monkeypatch, "spin", ("A", "B", "A"), ("C", "C", "C"), ("A", "B", "C"))
    pair = await games.play(CHANNEL, viewer(0), "slots", "100")
    assert (pair.roll, pair.outcome, pair.delta, pair.balance) == ("A B A", "even", 0, 1000)
    triple = await games.play(CHANNEL, viewer(0), "slots", "100")
    assert (triple.delta, triple.balance) == (900, 1900)
    none = await games.play(CHANNEL, viewer(0), "slots", "100")
    assert (none.outcome, none.balance) == ("loss", 1800)
    assert await ledger_types(store) == [("game_win", 900), ("game_loss", -100)]
    assert await bank.audit() == []


async def test_a_duel_accepted_pays_both_stakes_to_the_flip(
    bank: Bank, store: Store, games: Games, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The challenge holds the challenger's stake; accept holds the target's and the flip's
    winner gets both: duel_stake twice, one duel_payout of the pot."""
    await fund(bank, 2, 500)
    made = await games.challenge(CHANNEL, viewer(0), "user1", "200")
    assert (made.stake, made.balance) == (200, 300)
    fix(monkeypatch, "coin_flip", "target")
    result = await games.accept(CHANNEL, viewer(1))
    assert (result.winner, result.loser, result.flip, result.winner_balance) == (
        "user1", "user0", "target", 700)
    assert (await balance(bank, 0), await balance(bank, 1)) == (300, 700)
    assert await ledger_types(store) == [("duel_stake", -200), ("duel_stake", -200),
                                         ("duel_payout", 400)]
    assert await bank.audit() == []


async def test_a_duel_denied_withdrawn_or_expired_refunds(
    bank: Bank, games: Games, clock: FakeClock
) -> None:
    """Deny (the target), withdraw (the challenger) and the deadline each refund the stake;
    one open duel per viewer; a late accept is refused."""
    await fund(bank, 3, 500)
    await games.challenge(CHANNEL, viewer(0), "@User1", "100")
    with pytest.raises(InDuel) as busy:
        await games.challenge(CHANNEL, viewer(2), "user1", "100")
    assert (busy.value.login, busy.value.yourself) == ("user1", False)
    with pytest.raises(InDuel):
        await games.challenge(CHANNEL, viewer(0), "user2", "100")
    denied = await games.deny(CHANNEL, viewer(1))
    assert (denied.why, denied.stake) == ("denied", 100)
    await games.challenge(CHANNEL, viewer(0), "user1", "150")
    withdrawn = await games.deny(CHANNEL, viewer(0))
    assert withdrawn.why == "withdrawn"
    await games.challenge(CHANNEL, viewer(2), "user0", "250")
    assert await games.end_due() == []
    clock.advance(60)
    with pytest.raises(NoDuel):
        await games.accept(CHANNEL, viewer(0))
    ended = await games.end_due()
    assert len(ended) == 1 and isinstance(ended[0], DuelEnded) and ended[0].why == "expired"
    assert [await balance(bank, n) for n in range(3)] == [500, 500, 500]
    with pytest.raises(NoDuel):
        await games.deny(CHANNEL, viewer(1))
    assert await bank.audit() == []


async def test_duel_refusals(bank: Bank, games: Games) -> None:
    """Unknown target, oneself, an ignored user, a target who cannot cover the stake."""
    await fund(bank, 2, 500)
    with pytest.raises(UnknownViewer):
        await games.challenge(CHANNEL, viewer(0), "nobody_here", "10")
    with pytest.raises(SelfDuel):
        await games.challenge(CHANNEL, viewer(0), "user0", "10")
    bank.set_excluded(CHANNEL, {"user1"})
    with pytest.raises(NotEligible):
        await games.challenge(CHANNEL, viewer(0), "user1", "10")
    bank.set_excluded(CHANNEL, set())
    await bank.debit(CHANNEL, viewer(1), 450, kind=EntryType.REMOVE)
    await games.challenge(CHANNEL, viewer(0), "user1", "100")
    with pytest.raises(CannotAfford):
        await games.accept(CHANNEL, viewer(1))
    assert (await balance(bank, 0), await balance(bank, 1)) == (400, 50)
    assert await bank.audit() == []


async def test_a_heist_short_of_players_refunds_everyone(
    bank: Bank, games: Games, clock: FakeClock
) -> None:
    """Two join where three are needed: at the deadline both bets come back; no cooldown."""
    await fund(bank, 2, 500)
    opened = await games.heist(CHANNEL, viewer(0), "100")
    assert opened.opened and opened.players == 1
    joined = await games.heist(CHANNEL, viewer(1), "200")
    assert (joined.opened, joined.players, joined.pot) == (False, 2, 300)
    with pytest.raises(InHeist):
        await games.heist(CHANNEL, viewer(1), "5")
    clock.advance(60)
    with pytest.raises(HeistStarting):
        await games.heist(CHANNEL, viewer(0), "5")
    (result,) = await games.end_due()
    assert isinstance(result, HeistResult) and not result.ran
    assert (result.players, result.paid) == (2, 300)
    assert [await balance(bank, n) for n in range(2)] == [500, 500]
    again = await games.heist(CHANNEL, viewer(0), "10")  # a refunded heist starts no cooldown
    assert again.opened
    assert await bank.audit() == []


async def test_a_heist_pays_survivors_floor_of_bet_times_multiplier(
    bank: Bank, store: Store, games: Games, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolls 50 (survives), 51 (caught), 1, 100 for bets 100, 200, 15, 7: payouts
    floor(100*1.7) = 170 and floor(15*1.7) = 25; the caught lose 207; every roll recorded;
    the channel's cooldown starts."""
    await fund(bank, 4, 500)
    for n, bet in enumerate((100, 200, 15, 7)):
        await games.heist(CHANNEL, viewer(n), str(bet))
    fix(monkeypatch, "heist_rolls", [50, 51, 1, 100])
    clock.advance(61)
    (result,) = await games.end_due()
    assert isinstance(result, HeistResult) and result.ran
    assert (result.paid, result.caught, result.lost) == (195, 2, 207)
    assert [(s.login, s.returned) for s in result.survivors] == [("user0", 170), ("user2", 25)]
    assert [await balance(bank, n) for n in range(4)] == [570, 300, 510, 493]
    rolls = await store.read(lambda c: c.execute(
        "SELECT seq, user_id, roll, returned FROM game_rolls ORDER BY seq").fetchall())
    assert rolls == [(1, "1000", "50", 170), (2, "1001", "51", 0), (3, "1002", "1", 25),
                     (4, "1003", "100", 0)]
    with pytest.raises(HeistCooldown) as cooling:
        await games.heist(CHANNEL, viewer(0), "10")
    assert cooling.value.seconds == pytest.approx(300)
    clock.advance(300)
    assert (await games.heist(CHANNEL, viewer(0), "10")).opened
    edges = {e.game: e for e in await games.edges(CHANNEL)}
    assert (edges["heist"].rounds, edges["heist"].bet, edges["heist"].returned) == (1, 322, 195)
    assert edges["heist"].realised == pytest.approx(1 - 195 / 322)
    assert edges["heist"].configured == pytest.approx(1 - 0.5 * 1.7)
    assert await bank.audit() == []


async def test_settings_the_file_writes_win_over_the_dashboard(
    bank: Bank, store: Store, games: Games
) -> None:
    """A key the file writes is the file's; the dashboard's others apply; a combination that
    no longer validates falls back to the file's keys."""
    await games.save_settings("bob_tv", {"max_bet": 50, "enabled": ("slots",)}, "dashboard:x")
    assert games.settings("bob_tv").max_bet == 50
    file = GamesConfig.model_validate({"enabled": ["gamble"]})
    await games.load_settings({CHANNEL: SETTINGS, "bob_tv": file})
    assert (games.settings("bob_tv").enabled, games.settings("bob_tv").max_bet) == (
        ("gamble",), 50)
    assert games.file_keys("bob_tv") == {"enabled"}
    with pytest.raises(ValueError, match=r"config\.toml"):
        await games.save_settings("bob_tv", {"enabled": ("duel",)}, "dashboard:x")
    strict = GamesConfig.model_validate({"min_bet": 100})
    assert merge({"max_bet": 50}, strict) == strict


async def test_rolls_are_recorded_as_the_schema_says(store: Store) -> None:
    """game_rolls keeps (round, seq) unique: a roll cannot be recorded twice."""
    def twice(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO game_rolls VALUES (1, 1, 'u', 1, '5', 0)")
        conn.execute("INSERT INTO game_rolls VALUES (1, 1, 'u', 1, '6', 0)")

    with pytest.raises(sqlite3.IntegrityError):
        await store.write(lambda tx: twice(tx.conn))
