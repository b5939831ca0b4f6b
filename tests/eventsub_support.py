"""Test support for EventSub: a signer that posts like Twitch, Helix and forward stand-ins
on loopback, and a harness running the real webhook app over a real SQLite file.

Until ``loyaltybot.simulator`` has its EventSub sender, requests are signed here with the
same formula the daemon verifies (``twitch.eventsub.sign``), which the reference's test
vectors pin down in tests/eventsub/test_signature.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from loyaltybot.clock import FakeClock
from loyaltybot.config import Config, RewardConfig, Secret, parse_config
from loyaltybot.daemon import DEAD_JOB_RETENTION_MS
from loyaltybot.db import Store, jobs, open_store
from loyaltybot.eventsub.dispatch import Dispatcher
from loyaltybot.eventsub.events import format_timestamp, sign
from loyaltybot.eventsub.webhook import Webhook
from loyaltybot.features.bonuses.feature import Bonuses
from loyaltybot.features.earning.feature import EarningFeature
from loyaltybot.features.earning.presence import PresenceTracker
from loyaltybot.features.rewards import service as rewards_service
from loyaltybot.features.rewards.feature import RewardsFeature
from loyaltybot.features.rewards.service import Rewards
from loyaltybot.features.votes.service import Votes
from loyaltybot.points.bank import Bank
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import StaticToken

SECRET = "s3cret-for-tests-0123"
CHANNEL = "alice"
BROADCASTER_ID = "1337"
CLIENT_ID = "test-client-id"
PATH = "/twitch/eventsub"
VERSIONS = {"channel.follow": "2"}


def envelope(
    sub_type: str, event: Mapping[str, Any], *, broadcaster_id: str = BROADCASTER_ID
) -> dict[str, Any]:
    """A notification body shaped like Twitch's (twitch-reference.md §3.8)."""
    condition = (
        {"to_broadcaster_user_id": broadcaster_id}
        if sub_type == "channel.raid"
        else {"broadcaster_user_id": broadcaster_id}
    )
    return {
        "subscription": {
            "id": "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
            "type": sub_type,
            "version": VERSIONS.get(sub_type, "1"),
            "status": "enabled",
            "cost": 0,
            "condition": condition,
            "transport": {"method": "webhook", "callback": "https://example.com/callback"},
            "created_at": "2019-11-16T10:11:12.634234626Z",
        },
        "event": dict(event),
    }


def broadcaster(
    login: str = CHANNEL, user_id: str = BROADCASTER_ID, prefix: str = "broadcaster_user_"
) -> dict[str, str]:
    return {f"{prefix}id": user_id, f"{prefix}login": login, f"{prefix}name": login.title()}


def user(n: int) -> dict[str, str]:
    """The event fields of viewer n (same ids as tests.conftest.viewer)."""
    return {"user_id": str(1000 + n), "user_login": f"user{n}", "user_name": f"User{n}"}


def redemption(
    n: int,
    title: str,
    *,
    redemption_id: str | None = None,
    reward_id: str = "reward-1",
    user_input: str = "",
    status: str = "unfulfilled",
) -> dict[str, Any]:
    return {
        "id": redemption_id or str(uuid.uuid4()),
        **broadcaster(),
        **user(n),
        "user_input": user_input,
        "status": status,
        "reward": {"id": reward_id, "title": title, "cost": 100, "prompt": ""},
        "redeemed_at": "2020-07-15T17:16:03.17106713Z",
    }


@dataclass
class Signed:
    headers: dict[str, str]
    body: bytes


def signed(
    body: bytes,
    *,
    message_type: str = "notification",
    message_id: str | None = None,
    timestamp: str,
    secret: str = SECRET,
    sub_type: str = "",
) -> Signed:
    message_id = message_id or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Retry": "0",
        "Twitch-Eventsub-Message-Type": message_type,
        "Twitch-Eventsub-Message-Signature": sign(secret, message_id, timestamp, body),
        "Twitch-Eventsub-Message-Timestamp": timestamp,
        "Twitch-Eventsub-Subscription-Type": sub_type,
        "Twitch-Eventsub-Subscription-Version": "1",
    }
    return Signed(headers, body)


# ---- loopback stand-ins ---------------------------------------------------------------------


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class HelixStandIn:
    """Just enough Helix for rewards and subscriptions, recording every request.

    ``fail`` maps a path to statuses to answer (consumed one per request; 0 lets one
    through) before behaving normally. Subscriptions it creates are verified like Twitch
    does: it POSTs a signed challenge to the callback and enables them if the answer is
    right (``verified()`` waits for that).
    """

    users: dict[str, str] = field(default_factory=lambda: {"alice": BROADCASTER_ID})
    requests: list[Recorded] = field(default_factory=list)
    fail: dict[str, list[int]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)  # manageable by our client
    foreign_titles: set[str] = field(default_factory=set)  # made in the Twitch dashboard
    token_owner: str = "alice"
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _verifications: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/helix/{tail:.*}", self._handle)
        app.router.add_post("/oauth2/token", self._token)
        self._runner, base = await serve(app)
        self.url = base + "/helix"
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.verified()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def verified(self) -> None:
        """Until every challenge sent so far has been answered."""
        await asyncio.gather(*self._verifications)

    @property
    def auth_url(self) -> str:
        return self.url.removesuffix("/helix") + "/oauth2"

    def status_updates(self) -> list[tuple[str, str]]:
        """(redemption id, status) of every PATCH, in order."""
        return [
            (r.query["id"], r.body["status"])
            for r in self.requests
            if r.method == "PATCH" and r.path.endswith("/redemptions")
        ]

    async def _token(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"access_token": "app-token", "expires_in": 3600, "token_type": "bearer"}
        )

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, path, dict(request.query), body))
        pending = self.fail.get(path)
        status = pending.pop(0) if pending else 0
        if status:  # 0 in the list lets one request through
            return web.json_response(
                {"error": "x", "status": status, "message": "stand-in fault"}, status=status
            )
        if path == "/users":
            logins = request.query.getall("login", [])
            if not logins and not request.query.getall("id", []):
                logins = [self.token_owner]
            data = [_user(login, self.users[login]) for login in logins if login in self.users]
            return web.json_response({"data": data})
        if path == "/channel_points/custom_rewards/redemptions" and request.method == "PATCH":
            return web.json_response(
                {"data": [{"id": request.query["id"], "status": body["status"]}]}
            )
        if path == "/channel_points/custom_rewards":
            return self._rewards(request, body)
        if path == "/eventsub/subscriptions":
            return await self._subscriptions(request, body)
        return web.json_response({"message": "not here"}, status=404)

    def _rewards(self, request: web.Request, body: Any) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": self.rewards})
        title = body["title"]
        taken = {r["title"].casefold() for r in self.rewards} | {
            t.casefold() for t in self.foreign_titles
        }
        if title.casefold() in taken:
            return web.json_response(
                {
                    "error": "Bad Request",
                    "status": 400,
                    "message": "CREATE_CUSTOM_REWARD_DUPLICATE_REWARD",
                },
                status=400,
            )
        reward = {
            "id": str(uuid.uuid4()),
            "title": title,
            "cost": body["cost"],
            "prompt": body.get("prompt", ""),
        }
        self.rewards.append(reward)
        return web.json_response({"data": [reward]})

    async def _subscriptions(self, request: web.Request, body: Any) -> web.Response:
        if request.method == "GET":
            return web.json_response({"data": self.subscriptions, "pagination": {}})
        if request.method == "DELETE":
            self.subscriptions = [s for s in self.subscriptions if s["id"] != request.query["id"]]
            return web.Response(status=204)
        transport = body["transport"]
        sub = {
            "id": str(uuid.uuid4()),
            "status": "webhook_callback_verification_pending",
            "type": body["type"],
            "version": body["version"],
            "condition": body["condition"],
            "transport": {"method": "webhook", "callback": transport["callback"]},
            "cost": 1,
            "created_at": "2024-01-01T00:00:00Z",
        }
        self.subscriptions.append(sub)
        self._verifications.append(asyncio.create_task(self._verify(sub, transport["secret"])))
        return web.json_response({"data": [sub], "total": 1}, status=202)

    async def _verify(self, sub: dict[str, Any], secret: str) -> None:
        """Twitch's challenge: the subscription is enabled only if the answer echoes it."""
        challenge = str(uuid.uuid4())
        body = json.dumps({"challenge": challenge, "subscription": sub}).encode()
        now = self.clock_now() if self.clock_now else 0.0
        request = signed(
            body,
            message_type="webhook_callback_verification",
            timestamp=format_timestamp(now),
            secret=secret,
        )
        assert self._session is not None
        async with self._session.post(
            sub["transport"]["callback"], data=body, headers=request.headers
        ) as response:
            ok = response.status == 200 and await response.text() == challenge
            ok = ok and response.content_type == "text/plain"
        sub["status"] = "enabled" if ok else "webhook_callback_verification_failed"

    clock_now: Callable[[], float] | None = None


def _user(login: str, user_id: str) -> dict[str, str]:
    return {"id": user_id, "login": login, "display_name": login.title()}


@dataclass
class ForwardReceiver:
    """A local service that reward forwards POST to; ``behaviour`` answers each attempt."""

    received: list[Any] = field(default_factory=list)  # bodies answered 200 at once
    late: list[Any] = field(default_factory=list)  # bodies answered after a "slow" delay
    attempts: int = 0
    behaviour: list[str] = field(default_factory=list)  # "500", "slow"; then 200
    slow_seconds: float = 1.0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner, base = await serve(app)
        self.url = base + "/hook"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        how = self.behaviour.pop(0) if self.behaviour else "200"
        if how == "slow":
            await asyncio.sleep(self.slow_seconds)
            self.late.append(body)
            return web.Response(status=200)
        if how != "200":
            return web.Response(status=int(how))
        self.received.append(body)
        return web.Response(status=200, text="ok")


@dataclass
class ChatRecorder:
    lines: list[tuple[str, str]] = field(default_factory=list)
    accept: bool = True

    async def __call__(self, channel: str, text: str) -> bool:
        if self.accept:
            self.lines.append((channel, text))
        return self.accept

    def texts(self) -> list[str]:
        return [text for _, text in self.lines]


# ---- the harness ----------------------------------------------------------------------------


@dataclass
class Harness:
    """The real EventSub app on loopback over a real SQLite file, wired to stand-ins."""

    db_path: Path
    clock: FakeClock
    helix: HelixStandIn
    rewards_config: dict[str, list[RewardConfig]] = field(default_factory=dict)
    backoff: Callable[[int], float] = lambda attempts: 0.0
    api_url: str | None = None  # Helix for status updates (default: the stand-in)
    client_id: str = CLIENT_ID
    broadcaster_token: str = "broadcaster-token"
    chat: ChatRecorder = field(default_factory=ChatRecorder)
    store: Store | None = None
    bank: Bank | None = None
    rewards: Rewards | None = None
    votes: Votes | None = None
    service: Webhook | None = None
    dispatcher: Dispatcher | None = None
    stream: EarningFeature | None = None
    worker: jobs.Worker | None = None
    url: str = ""
    live: list[tuple[str, bool]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self.store = await open_store(self.db_path, clock=self.clock)
        self.bank = Bank(self.store)
        await self.bank.ensure_channels([CHANNEL, "bob_tv"])
        session = self._session

        def helix_for(channel: str) -> Helix:
            return Helix(
                session,
                self.api_url or self.helix.url,
                self.client_id,
                StaticToken(Secret(self.broadcaster_token)),
                attempts=1,
            )

        rewards = RewardsFeature(
            config=_config(),
            bank=self.bank,
            store=self.store,
            session=session,
            chat=self.chat,
            helix_for=helix_for,
        )
        self.rewards = rewards.rewards
        self.rewards.update(self.rewards_config)
        self.votes = Votes(self.bank, self.store)
        self.stream = live = EarningFeature(
            _LiveRecorder(self.live),  # type: ignore[arg-type]
            PresenceTracker(),
            _config(),
        )
        self.dispatcher = Dispatcher(store=self.store, bank=self.bank, channels=[CHANNEL, "bob_tv"])
        for feature in (rewards, Bonuses(), live):
            self.dispatcher.register(feature.eventsub())
        await self.dispatcher.start()
        self.service = Webhook(self.dispatcher, secret=SECRET, clock=self.clock, path=PATH)
        self.worker = jobs.Worker(
            self.store, self.clock, rewards.jobs(), concurrency=8, backoff=self.backoff
        )
        self.worker.start()
        app = web.Application()
        app.router.add_routes(self.service.routes())
        self._runner, base = await serve(app)
        self.url = base + PATH

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.dispatcher is not None:
            await self.dispatcher.close()
        if self.worker is not None:
            await self.worker.close(5.0)
        if self.store is not None:
            await self.store.close()
        if self._session is not None:
            await self._session.close()
        self._runner = self.service = self.store = self.bank = self._session = None
        self.dispatcher = self.worker = None

    async def prune(self) -> None:
        """What the daemon's housekeeping and the rewards' pruner do every hour."""
        assert self.dispatcher is not None and self.store is not None
        await self.dispatcher.prune()
        await self.store.write(rewards_service.prune)
        await self.store.write(lambda tx: jobs.prune(tx, DEAD_JOB_RETENTION_MS))

    async def restart(self) -> None:
        """A new process on the same database file, as far as this part can tell."""
        await self.stop()
        await self.start()

    # -- sending

    async def post(self, request: Signed) -> tuple[int, str, str]:
        assert self._session is not None
        async with self._session.post(
            self.url, data=request.body, headers=request.headers
        ) as response:
            return response.status, await response.text(), response.content_type

    async def send(
        self,
        sub_type: str,
        event: Mapping[str, Any],
        *,
        message_id: str | None = None,
        age: float = 0.0,
        secret: str = SECRET,
    ) -> int:
        body = json.dumps(envelope(sub_type, event)).encode()
        request = signed(
            body,
            message_id=message_id,
            timestamp=format_timestamp(self.clock.now() - age),
            secret=secret,
            sub_type=sub_type,
        )
        status, _, _ = await self.post(request)
        return status

    async def redeem(self, n: int, title: str, **kwargs: Any) -> tuple[int, str]:
        """Viewer n redeems ``title``; returns (HTTP status, redemption id)."""
        message_id = kwargs.pop("message_id", None)
        event = redemption(n, title, **kwargs)
        return await self.send(
            "channel.channel_points_custom_reward_redemption.add", event, message_id=message_id
        ), event["id"]

    async def settle(self) -> None:
        """Until the worker has nothing due and nothing running."""
        assert self.worker is not None
        async with asyncio.timeout(15):
            await self.worker.wait_idle()

    # -- looking

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        assert self.store is not None
        return await self.store.read(lambda c: c.execute(sql, args).fetchall())

    async def balance(self, n: int) -> int:
        rows = await self.query("SELECT points FROM viewers WHERE user_id = ?", str(1000 + n))
        return int(rows[0][0]) if rows else 0

    async def snapshot(self) -> tuple[Any, ...]:
        """Everything an EventSub request can change."""
        tables = (
            "ledger",
            "viewers",
            "processed_events",
            "redemptions",
            "pending_work",
            "votes",
            "viewer_titles",
        )
        counts = []
        for table in tables:
            [(n,)] = await self.query(f"SELECT count(*) FROM {table}")
            counts.append(n)
        [(points,)] = await self.query("SELECT coalesce(sum(points), 0) FROM viewers")
        return (*counts, points, len(self.helix.requests), len(self.chat.lines))

    async def audit(self) -> list[Any]:
        assert self.bank is not None
        return await self.bank.audit()


def reward(title: str, action: str, **fields: Any) -> RewardConfig:
    return RewardConfig.model_validate({"title": title, "action": action, **fields})


MakeHarness = Callable[..., Awaitable[Harness]]


class _LiveRecorder:
    """Stands in for the earning loops: records what the stream state became."""

    def __init__(self, live: list[tuple[str, bool]]) -> None:
        self._live = live

    def set_live(self, channel: str, live: bool) -> None:
        self._live.append((channel, live))


def _config() -> Config:
    """The two channels the harness serves (their rewards are set on the service)."""
    return parse_config(
        {
            "twitch": {"client_id": CLIENT_ID, "bot_login": "mybot"},
            "channels": {CHANNEL: {}, "bob_tv": {}},
        },
        Path("config.toml"),
    )
