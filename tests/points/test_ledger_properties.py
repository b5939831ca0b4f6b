"""Property tests: any sequence of ledger operations keeps the books balanced."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from loyaltybot.db import open_store
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import BalanceTooHigh, InsufficientPoints, SelfTransfer
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.standings import Standings
from tests.conftest import CHANNEL, viewer

N_VIEWERS = 6
who = st.integers(0, N_VIEWERS - 1)
amount = st.one_of(st.integers(1, 1000), st.sampled_from([MAX_POINTS, MAX_POINTS - 1]))


class LedgerMachine(RuleBasedStateMachine):
    """Random credits, debits, sets, transfers and ticks against a model of the balances.

    The invariant is the audit itself, plus agreement with the model and the standings.
    """

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.TemporaryDirectory()
        self.store = self.run(open_store(Path(self.dir.name) / "p.db"))
        self.bank = Bank(self.store)
        self.run(self.bank.ensure_channels([CHANNEL]))
        self.model: dict[int, int] = {}
        self.seq = 0

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()
            self.dir.cleanup()

    @rule(n=who, value=amount)
    def credit(self, n: int, value: int) -> None:
        balance = self.model.get(n, 0)
        try:
            change = self.run(self.bank.credit(CHANNEL, viewer(n), value, kind=EntryType.ADD))
        except BalanceTooHigh:
            assert balance == MAX_POINTS
            return
        assert change.applied == min(value, MAX_POINTS - balance)
        self.model[n] = change.balance

    @rule(n=who, value=amount)
    def debit(self, n: int, value: int) -> None:
        balance = self.model.get(n, 0)
        try:
            change = self.run(self.bank.debit(CHANNEL, viewer(n), value, kind=EntryType.REMOVE))
        except InsufficientPoints as exc:
            assert balance < value and exc.balance == balance  # noqa: PT017 - a model check
            return  # refused: nothing changed, not even a row for a new viewer
        self.model[n] = change.balance
        assert change.balance == balance - value

    @rule(n=who, value=st.one_of(st.integers(0, 5000), st.just(MAX_POINTS)))
    def set_balance(self, n: int, value: int) -> None:
        self.run(self.bank.set_balance(CHANNEL, viewer(n), value))
        self.model[n] = value

    @rule(a=who, b=who, value=amount, concurrent=st.integers(1, 4))
    def give(self, a: int, b: int, value: int, concurrent: int) -> None:
        if b not in self.model:
            return
        balance = self.model.get(a, 0)

        async def many():  # type: ignore[no-untyped-def]
            return await asyncio.gather(
                *(self.bank.give(CHANNEL, viewer(a), viewer(b).login, value)
                  for _ in range(concurrent)),
                return_exceptions=True,
            )

        for result in self.run(many()):
            if isinstance(result, SelfTransfer):
                assert a == b
            elif isinstance(result, InsufficientPoints):
                assert result.balance < value
            elif isinstance(result, BalanceTooHigh):
                assert self.model[b] == MAX_POINTS
            elif isinstance(result, BaseException):
                raise result
            else:
                self.model[a] = result.sender.balance
                self.model[b] = result.receiver.balance
        assert self.model.get(a, balance) <= balance or a == b

    @rule(members=st.lists(st.tuples(who, st.booleans(), st.integers(0, 3)), max_size=6,
                           unique_by=lambda t: t[0]))
    def tick(self, members: list[tuple[int, bool, int]]) -> None:
        self.seq += 1
        rates = EarningRates(10, 15, 3, 0)
        present = [Presence(viewer(n).user_id, viewer(n).login, viewer(n).display_name, sub, msgs)
                   for n, sub, msgs in members]
        plan = TickPlan(self.bank.channel_id(CHANNEL), self.seq, self.seq, 60, rates, present,
                        self.bank.known_logins(CHANNEL))
        applied = self.run(self.bank.credit_tick(plan))
        total = 0
        for n, sub, msgs in members:
            earn = (15 if sub else 10) + (3 if msgs else 0)
            before = self.model.get(n, 0)
            self.model[n] = min(MAX_POINTS, before + earn)
            total += self.model[n] - before
        assert applied.points == total

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "bank"):
            return
        assert self.run(self.bank.audit()) == []
        for n, balance in self.model.items():
            record = self.run(self.bank.viewer(CHANNEL, viewer(n).login))
            assert record is not None and record.points == balance
        ranked = {n: b for n, b in self.model.items() if b > 0}
        for n, balance in ranked.items():
            expected = 1 + sum(1 for other in ranked.values() if other > balance)
            assert self.run(self.bank.rank(CHANNEL, viewer(n).user_id)) == expected


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_standings_rank_matches_brute_force(data: st.DataObject) -> None:
    """The in-memory rank equals 1 + the number of viewers with more points, after any updates."""
    rows = data.draw(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 50)), max_size=40))
    standings = Standings()
    truth: dict[str, int] = {}
    for n, points in rows:
        standings.update(str(n), f"u{n}", points)
        truth[str(n)] = points
    ranked = {k: v for k, v in truth.items() if v > 0}
    for user_id, points in truth.items():
        expected = 1 + sum(1 for v in ranked.values() if v > points) if points > 0 else None
        assert standings.rank(user_id) == expected
    top = standings.top(len(ranked) + 5)
    assert [s.points for s in top] == sorted(ranked.values(), reverse=True)
    assert all(s.rank == 1 + sum(1 for v in ranked.values() if v > s.points) for s in top)
