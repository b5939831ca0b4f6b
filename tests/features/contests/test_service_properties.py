"""Property test: any sequence of contests opened, bets (concurrent, some refused), closes,
settlements, cancels and restarts loses no stake and creates no point. The model keeps
each viewer's balance; the payouts of every settlement add up to its pool, each exactly
what the largest-remainder rule gives; the audit (balances and open rounds) is the
invariant."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from loyaltybot.clock import FakeClock
from loyaltybot.db import open_store
from loyaltybot.features.contests import rules
from loyaltybot.features.contests.rules import ContestRefusal, parse_contest
from loyaltybot.features.contests.service import Contests, Placed, Terms
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer

N_VIEWERS = 6
START = 300
who = st.integers(0, N_VIEWERS - 1)
SPEC = parse_contest("Q | a | b | c")
TERMS = Terms(min_bet=2, max_bet=200, close_after_seconds=0)


class ContestMachine(RuleBasedStateMachine):
    """Random contest traffic against a model of the balances and the running contest."""

    @initialize()
    def open_books(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "contests.db"
        self.clock = FakeClock()
        self.store = self.run(open_store(self.path, clock=self.clock))
        self.bank = Bank(self.store)
        self.run(self.bank.ensure_channels([CHANNEL]))
        self.contests = Contests(self.bank, self.store, self.clock)
        self.balances = dict.fromkeys(range(N_VIEWERS), START)
        for n in range(N_VIEWERS):
            self.run(self.bank.credit(CHANNEL, viewer(n), START, kind=EntryType.ADD))
        self.state: str | None = None  # the running contest: None, "open" or "closed"
        self.bets: dict[int, tuple[int, int, int]] = {}  # n -> (option, amount, first seq)
        self.seq = 0

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.run(self.store.close())
            self.loop.close()
            self.dir.cleanup()

    @rule()
    def open(self) -> None:
        try:
            self.run(self.contests.open(CHANNEL, SPEC, TERMS, actor="mod"))
        except rules.WrongState:
            assert self.state is not None
            return
        assert self.state is None
        self.state, self.bets = "open", {}
        event("opened")

    @rule(bets=st.lists(st.tuples(who, st.integers(0, 4), st.integers(1, 250)),
                        min_size=1, max_size=6))
    def bet(self, bets: list[tuple[int, int, int]]) -> None:
        """Several bets at once (one transaction group); each is accepted or refused by the
        rules, and the model follows what the rules say."""

        async def all_at_once():  # type: ignore[no-untyped-def]
            return await asyncio.gather(
                *(self.contests.bet(CHANNEL, viewer(n), option, amount)
                  for n, option, amount in bets),
                return_exceptions=True,
            )  # fmt: skip

        for (n, option, amount), outcome in zip(bets, self.run(all_at_once()), strict=True):
            held = self.bets.get(n)
            if isinstance(outcome, ContestRefusal):
                event(type(outcome).__name__)
                if self.state == "open" and 1 <= option <= 3:
                    ok_option = held is None or held[0] == option
                    total = (held[1] if held else 0) + amount
                    assert not (ok_option and 2 <= total <= 200
                                and amount <= self.balances[n]), outcome  # fmt: skip
                continue
            assert isinstance(outcome, Placed), outcome
            assert self.state == "open" and 1 <= option <= 3
            self.balances[n] -= amount
            if held is None:
                self.seq += 1
                self.bets[n] = (option, amount, self.seq)
            else:
                self.bets[n] = (option, held[1] + amount, held[2])
            assert outcome.total == self.bets[n][1] and outcome.balance == self.balances[n]

    @rule()
    def close(self) -> None:
        try:
            self.run(self.contests.close(CHANNEL, actor="mod"))
        except ContestRefusal:
            assert self.state != "open"
            return
        assert self.state == "open"
        self.state = "closed"

    @rule(winner=st.integers(1, 3))
    def settle(self, winner: int) -> None:
        try:
            done = self.run(self.contests.settle(CHANNEL, winner, actor="mod"))
        except ContestRefusal:
            assert self.state is None
            return
        assert self.state is not None
        expected = rules.settle(
            [(str(n), option, amount, seq) for n, (option, amount, seq) in self.bets.items()],
            winner,
        )
        pool = sum(amount for _, amount, _ in self.bets.values())
        assert done.paid == expected.paid_out == pool  # to the point
        back = {**expected.payouts, **expected.refunds}
        for n in self.bets:
            self.balances[n] += back.get(str(n), 0)
        event(f"settled {done.outcome}")
        self.state, self.bets = None, {}

    @rule()
    def cancel(self) -> None:
        try:
            done = self.run(self.contests.cancel(CHANNEL, actor="mod"))
        except ContestRefusal:
            assert self.state is None
            return
        assert done.paid == sum(amount for _, amount, _ in self.bets.values())
        for n, (_, amount, _) in self.bets.items():
            self.balances[n] += amount
        self.state, self.bets = None, {}

    @rule()
    def restart(self) -> None:
        """The daemon stops and starts again on the same file: the contest and its bets are
        where they were."""
        event("restart")
        self.run(self.store.close())
        self.store = self.run(open_store(self.path, clock=self.clock))
        self.bank = Bank(self.store)
        self.run(self.bank.load_channels())
        self.contests = Contests(self.bank, self.store, self.clock)

    @invariant()
    def no_stake_lost(self) -> None:
        if not hasattr(self, "bank"):
            return
        assert self.run(self.bank.audit()) == []
        for n, balance in self.balances.items():
            record = self.run(self.bank.viewer(CHANNEL, viewer(n).login))
            assert record is not None and record.points == balance
        held = sum(amount for _, amount, _ in self.bets.values())
        assert sum(self.balances.values()) + held == N_VIEWERS * START
        running = self.run(self.contests.running(CHANNEL))
        assert (running.state if running else None) == self.state
        if running is not None:
            assert running.held == running.pool == held


TestContestMachine = ContestMachine.TestCase
TestContestMachine.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
