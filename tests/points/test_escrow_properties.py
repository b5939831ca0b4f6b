"""Property test: any sequence of stakes, settlements, refunds, deadlines and restarts keeps
the books balanced, with every open round holding exactly its recorded stakes."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from loyaltybot.clock import FakeClock, to_ms
from loyaltybot.db import open_store
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import (
    InsufficientPoints,
    RoundNotOpen,
    StakeOptionMismatch,
)
from loyaltybot.points.escrow import RoundState
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer

N_VIEWERS = 5
who = st.integers(0, N_VIEWERS - 1)
stake_amount = st.one_of(st.integers(0, 400), st.just(MAX_POINTS))


@dataclass
class ModelRound:
    deadline_ms: int | None
    state: RoundState = RoundState.OPEN
    # viewer n -> (points, units, option)
    stakes: dict[int, tuple[int, int, int | None]] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return sum(amount for amount, _, _ in self.stakes.values()) if self.is_open else 0

    @property
    def is_open(self) -> bool:
        return self.state is RoundState.OPEN


class EscrowMachine(RuleBasedStateMachine):
    """Random rounds and stakes against a model; the audit is the invariant."""

    rounds = Bundle("rounds")

    @initialize(target=rounds)
    def open(self) -> int:
        """A fresh database with a first round and viewers who have points to stake."""
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "escrow.db"
        self.clock = FakeClock()
        self.store = self.run(open_store(self.path, clock=self.clock))
        self.bank = Bank(self.store)
        self.run(self.bank.ensure_channels([CHANNEL]))
        self.balances: dict[int, int] = {}
        self.model: dict[int, ModelRound] = {}
        for n in range(N_VIEWERS):
            self.run(self.bank.credit(CHANNEL, viewer(n), 500, kind=EntryType.ADD))
            self.balances[n] = 500
        first = self.run(self.bank.open_round(CHANNEL, "contest"))
        self.model[first.id] = ModelRound(None)
        return first.id

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()
            self.dir.cleanup()

    # ---- points in --------------------------------------------------------------------

    @rule(n=who, value=st.one_of(st.integers(1, 1000), st.just(MAX_POINTS)))
    def credit(self, n: int, value: int) -> None:
        before = self.balances.get(n, 0)
        if before == MAX_POINTS:
            return
        change = self.run(self.bank.credit(CHANNEL, viewer(n), value, kind=EntryType.ADD))
        self.balances[n] = change.balance
        assert change.balance == min(MAX_POINTS, before + value)

    # ---- rounds -----------------------------------------------------------------------

    @rule(target=rounds, kind=st.sampled_from(["giveaway", "contest", "duel", "heist"]),
          deadline_s=st.one_of(st.none(), st.integers(1, 120)))
    def open_round(self, kind: str, deadline_s: int | None) -> int:
        deadline = None if deadline_s is None else to_ms(self.clock.now()) + deadline_s * 1000
        opened = self.run(self.bank.open_round(CHANNEL, kind, deadline_ms=deadline))
        assert opened.is_open and opened.held == 0 and opened.deadline_ms == deadline
        self.model[opened.id] = ModelRound(deadline)
        return opened.id

    @rule(round_id=rounds, n=who, amount=stake_amount, units=st.integers(0, 3),
          option=st.sampled_from([None, 1, 2]), concurrent=st.integers(1, 3))
    def stake(self, round_id: int, n: int, amount: int, units: int, option: int | None,
              concurrent: int) -> None:
        if amount == 0 and units == 0:
            units = 1
        model = self.model[round_id]

        async def many():  # type: ignore[no-untyped-def]
            return await asyncio.gather(
                *(self.bank.stake(round_id, viewer(n), amount, kind=EntryType.CONTEST_STAKE,
                                  units=units, option=option) for _ in range(concurrent)),
                return_exceptions=True,
            )

        event("stake")
        for result in self.run(many()):
            balance = self.balances.get(n, 0)
            held = model.stakes.get(n)
            if isinstance(result, RoundNotOpen):
                assert not model.is_open
            elif isinstance(result, InsufficientPoints):
                assert model.is_open and balance < amount and result.balance == balance
            elif isinstance(result, StakeOptionMismatch):
                assert held is not None and held[2] != option
            elif isinstance(result, BaseException):
                raise result
            else:
                assert model.is_open and balance >= amount
                assert held is None or held[2] == option
                before = held or (0, 0, option)
                model.stakes[n] = (before[0] + amount, before[1] + units, option)
                if amount:
                    self.balances[n] = balance - amount
                elif n not in self.balances:
                    self.balances[n] = 0  # a free entry makes the viewer a row
                assert result.stake.amount == model.stakes[n][0]
                assert result.round.held == model.held
                assert (result.change is None) == (amount == 0)

    @rule(round_id=rounds, shares=st.lists(st.integers(0, 300), min_size=N_VIEWERS,
                                                     max_size=N_VIEWERS))
    def settle(self, round_id: int, shares: list[int]) -> None:
        """Pay stakers any amounts (more or less than staked: a heist, tickets)."""
        model = self.model[round_id]
        payouts = {viewer(n).user_id: shares[n] for n in model.stakes}
        try:
            done = self.run(self.bank.settle_round(round_id, payouts,
                                                   kind=EntryType.CONTEST_PAYOUT))
        except RoundNotOpen:
            assert not model.is_open
            return
        assert model.is_open
        event("settled")
        model.state = RoundState.SETTLED
        for n in model.stakes:
            paid = min(shares[n], MAX_POINTS - self.balances[n])
            self.balances[n] += paid
        assert done.round.held == 0 and done.round.state is RoundState.SETTLED
        assert done.round.returned == done.paid

    @rule(round_id=rounds)
    def refund(self, round_id: int) -> None:
        model = self.model[round_id]
        try:
            done = self.run(self.bank.refund_round(round_id, kind=EntryType.CONTEST_REFUND))
        except RoundNotOpen:
            assert not model.is_open
            return
        assert model.is_open
        event("refunded")
        model.state = RoundState.REFUNDED
        for n, (amount, _, _) in model.stakes.items():
            self.balances[n] = min(MAX_POINTS, self.balances[n] + amount)
        assert done.round.held == 0 and done.round.state is RoundState.REFUNDED

    @rule(round_id=rounds)
    def settle_twice_is_refused(self, round_id: int) -> None:
        """A settled round cannot be paid or refunded again: nothing changes."""
        if self.model[round_id].is_open:
            return
        for attempt in (
            self.bank.refund_round(round_id, kind=EntryType.CONTEST_REFUND),
            self.bank.settle_round(round_id, kind=EntryType.CONTEST_PAYOUT),
        ):
            try:
                self.run(attempt)
            except RoundNotOpen:
                continue
            raise AssertionError("a closed round was settled again")

    @rule(seconds=st.integers(1, 90))
    def time_passes_and_due_rounds_are_refunded(self, seconds: int) -> None:
        """The feature's timer: what ``due`` lists is exactly the open rounds past their
        deadline; each is refunded."""
        self.clock.advance(seconds)
        now = to_ms(self.clock.now())
        due = self.run(self.bank.due_rounds(now))
        expected = {i for i, m in self.model.items()
                    if m.is_open and m.deadline_ms is not None and m.deadline_ms <= now}
        assert {r.id for r in due} == expected
        for found in due:
            event("due round refunded")
            self.run(self.bank.refund_round(found.id, kind=EntryType.HEIST_REFUND))
            model = self.model[found.id]
            model.state = RoundState.REFUNDED
            for n, (amount, _, _) in model.stakes.items():
                self.balances[n] = min(MAX_POINTS, self.balances[n] + amount)

    @rule()
    def restart(self) -> None:
        """The daemon stops and starts again on the same file: every open round still holds
        its stakes."""
        event("restart")
        self.run(self.store.close())
        self.store = self.run(open_store(self.path, clock=self.clock))
        self.bank = Bank(self.store)
        self.run(self.bank.load_channels())

    # ---- the books --------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "bank"):
            return
        assert self.run(self.bank.audit()) == []
        for n, balance in self.balances.items():
            record = self.run(self.bank.viewer(CHANNEL, viewer(n).login))
            assert record is not None and record.points == balance
        for round_id, model in self.model.items():
            found = self.run(self.bank.round(round_id))
            assert found is not None
            assert (found.state, found.held) == (model.state, model.held)
            stakes = {s.user_id: (s.amount, s.units, s.option)
                      for s in self.run(self.bank.stakes(round_id))}
            assert stakes == {viewer(n).user_id: v for n, v in model.stakes.items()}
        open_ = [m for m in self.model.values() if m.is_open]
        assert self.run(self.bank.escrow_totals()) == (len(open_), sum(m.held for m in open_))


TestEscrowMachine = EscrowMachine.TestCase
TestEscrowMachine.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
