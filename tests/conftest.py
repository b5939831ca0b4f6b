"""Shared fixtures: a real SQLite file per test, the real store and bank on it.

Also the ``--run-soak`` option: tests marked ``soak`` (long reliability runs, ``make soak``)
are collected always but skipped unless it is given, so the normal suite stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store, open_store
from loyaltybot.points.bank import Bank
from loyaltybot.points.viewers import Viewer

CHANNEL = "alice"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-soak",
        action="store_true",
        default=False,
        help="run the long reliability tests marked soak (make soak)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-soak"):
        return
    skip = pytest.mark.skip(reason="a long soak run: only with --run-soak (make soak)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "loyaltybot.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    store = await open_store(db_path, clock=clock)
    yield store
    await store.close()


@pytest.fixture
async def bank(store: Store) -> Bank:
    bank = Bank(store)
    await bank.ensure_channels([CHANNEL, "bob_tv"])
    return bank


def viewer(n: int) -> Viewer:
    """A viewer with a stable numeric id: viewer(7) is user id '1007', login 'user7'."""
    return Viewer(str(1000 + n), f"user{n}", f"User{n}")
