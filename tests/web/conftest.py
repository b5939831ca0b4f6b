"""The web app on a real SQLite bank, served on 127.0.0.1, with the simulator as Twitch."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from loyaltybot.clock import FakeClock
from loyaltybot.config import Config, parse_config
from loyaltybot.daemon import apply_channel_config, web_app
from loyaltybot.db import Store
from loyaltybot.features import Feature
from loyaltybot.features.rewards.service import Rewards
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.simulator import Simulator
from tests.dashboard_support import dashboard_features, rewards_of

CLIENT_ID = "sim-client-id"
CLIENT_SECRET = "sim-client-secret"


Twitch = Simulator

# Everyone the tests log in as: the broadcasters, alice's admin, and someone with no rights.
USERS = ("alice", "bob_tv", "alice_mod", "mallory")


@pytest.fixture
async def twitch() -> AsyncIterator[Simulator]:
    sim = Simulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await sim.start(host="127.0.0.1", port=0)
    for login in USERS:
        sim.add_user(login)
    yield sim
    await sim.close()


def make_config(db_path: Path, auth_url: str, **web: Any) -> Config:
    data: dict[str, Any] = {
        "database": {"path": str(db_path)},
        "twitch": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "bot_login": "mybot",
            "auth_url": auth_url,
        },
        "web": {"listen": "127.0.0.1:8080", **web},
        "channels": {
            "alice": {
                "currency_name": "cookie",
                "currency_name_plural": "cookies",
                "points_per_interval": 10,
                "admins": ["alice_mod"],
                "rewards": [
                    {"title": "Hydrate", "action": "queue"},
                    {"title": "Next game", "action": "vote"},
                ],
            },
            "bob_tv": {},
        },
    }
    return parse_config(data, db_path.parent / "config.toml")


@pytest.fixture
def config(db_path: Path, twitch: Twitch) -> Config:
    return make_config(db_path, twitch.auth_url)


class Chat:
    """The health callable's answer, switchable by a test."""

    def __init__(self) -> None:
        self.connected = True

    def __call__(self) -> bool:
        return self.connected


@pytest.fixture
def chat() -> Chat:
    return Chat()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(process=False)


@pytest.fixture
async def features(bank: Bank, store: Store, config: Config) -> AsyncIterator[list[Feature]]:
    """The features whose pages the dashboard shows (nobody present, chat never sent)."""
    async with aiohttp.ClientSession() as session:
        yield dashboard_features(bank, store, config, session)


@pytest.fixture
async def rewards(features: list[Feature]) -> Rewards:
    return rewards_of(features).rewards


@pytest.fixture
async def app(
    bank: Bank,
    store: Store,
    config: Config,
    chat: Chat,
    metrics: Metrics,
    features: list[Feature],
    clock: FakeClock,
) -> web.Application:
    await apply_channel_config(config, bank, store)
    return await web_app(
        config=config,
        bank=bank,
        store=store,
        features=features,
        health=chat,
        metrics=metrics,
        clock=clock,
    )


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def login(client: TestClient[web.Request, web.Application], twitch: Twitch, who: str) -> str:
    """Log in through the OAuth redirects; returns the page we landed on."""
    twitch.oauth.login_as(who)
    response = await client.get("/login")
    assert response.status == 200, await response.text()
    return await response.text()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match[1]


async def page(client: TestClient[web.Request, web.Application], path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, f"{path}: {response.status} {await response.text()}"
    return await response.text()
