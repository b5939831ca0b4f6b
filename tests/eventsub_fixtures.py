"""Fixtures for the EventSub tests, loaded with ``pytest_plugins = ("tests.eventsub_fixtures",)``:
a Helix stand-in on loopback and a factory of webhook harnesses, each audited after its test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.config import RewardConfig
from tests.eventsub_support import CHANNEL, Harness, HelixStandIn, MakeHarness


@pytest.fixture
async def helix(clock: FakeClock) -> AsyncIterator[HelixStandIn]:
    stand_in = HelixStandIn(clock_now=clock.now)
    await stand_in.start()
    yield stand_in
    await stand_in.close()


@pytest.fixture
async def make_harness(
    db_path: Path, clock: FakeClock, helix: HelixStandIn
) -> AsyncIterator[MakeHarness]:
    """Start the webhook app with some rewards; every harness is audited and stopped after."""
    made: list[Harness] = []

    async def make(rewards: list[RewardConfig] | None = None, **options: Any) -> Harness:
        harness = Harness(db_path, clock, helix, rewards_config={CHANNEL: rewards or []}, **options)
        await harness.start()
        made.append(harness)
        return harness

    yield make
    for harness in made:
        if harness.bank is not None:
            assert await harness.audit() == []
        await harness.stop()
