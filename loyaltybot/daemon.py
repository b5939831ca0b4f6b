"""The composition root: build every part from the config, run them on one loop, stop cleanly.

The only module that knows everyone: the core (``points``, ``db``, ``twitch``, config),
the edges (``chat``, ``eventsub``, ``web``, ``cli``) and the list of features. No globals:
each part gets what it needs here, by keyword. Start-up happens in order inside an
``AsyncExitStack`` so tear-down runs in reverse, also when start-up fails half way.
Signals come from one table: SIGHUP reloads (``apply(config)`` on every part), SIGTERM
and SIGINT stop. Adding a feature is one line in ``_features``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp import web

from loyaltybot import cli, logs, settings
from loyaltybot.actions.delivery import Delivery
from loyaltybot.chat.client import ChatClient
from loyaltybot.chat.message import ChatMessage
from loyaltybot.chat.outbox import Outbox
from loyaltybot.chat.registry import CommandHandler
from loyaltybot.chat.replies import Reply
from loyaltybot.cli import common as cli_common
from loyaltybot.cli.common import CliCommand
from loyaltybot.clock import Clock, SystemClock
from loyaltybot.config import Config, ConfigError, load_config
from loyaltybot.db import Store, jobs, open_store
from loyaltybot.eventsub import subscriptions
from loyaltybot.eventsub.dispatch import Dispatcher, EventSubStats, Missed
from loyaltybot.eventsub.status import EventSubStatus
from loyaltybot.eventsub.webhook import Webhook
from loyaltybot.eventsub.websocket import EventSubWebSocket
from loyaltybot.features import Feature
from loyaltybot.features.bonuses.feature import Bonuses
from loyaltybot.features.contests.feature import ContestsFeature
from loyaltybot.features.earning.feature import EarningFeature
from loyaltybot.features.earning.presence import PresenceTracker
from loyaltybot.features.earning.service import Earning
from loyaltybot.features.economy.feature import EconomyFeature
from loyaltybot.features.eventsub_status.feature import EventSubPage
from loyaltybot.features.games.feature import GamesFeature
from loyaltybot.features.giveaways import cli as cli_giveaways
from loyaltybot.features.giveaways.feature import GiveawaysFeature
from loyaltybot.features.levels.feature import LevelsFeature
from loyaltybot.features.rewards import cli as cli_rewards
from loyaltybot.features.rewards.feature import RewardsFeature
from loyaltybot.features.shop.feature import ShopFeature
from loyaltybot.features.votes.feature import VotesFeature
from loyaltybot.features.wallet.feature import Wallet
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import TickApplied
from loyaltybot.points.viewers import Viewer
from loyaltybot.systemd import Notifier
from loyaltybot.twitch.clients import TwitchClients
from loyaltybot.twitch.helix import HelixError
from loyaltybot.twitch.oauth import TokenError
from loyaltybot.twitch.tokens import Tokens
from loyaltybot.web.app import WebServer, make_app, start_web

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 8.0  # SPEC §8: stop within 10 s
HOUSEKEEPING_SECONDS = 3600.0
DEAD_JOB_RETENTION_MS = 30 * 24 * 3600 * 1000  # failed jobs kept a month for the operator


class StartupError(Exception):
    """The daemon cannot start; the message says what to fix (never a secret)."""


def secrets_of(config: Config) -> list[str]:
    found = []
    for value in (
        config.twitch.client_secret,
        config.twitch.bot_token,
        config.web.eventsub_secret,
        config.web.session_secret,
    ):
        if value is not None:
            found.append(value.reveal())
    for channel in config.channels.values():
        if channel.broadcaster_token is not None:
            found.append(channel.broadcaster_token.reveal())
        hooks = [r.webhook_url for r in channel.rewards] + [i.webhook_url for i in channel.shop]
        found += [hook.reveal() for hook in hooks if hook is not None]  # Discord webhooks
    return found


async def apply_channel_config(config: Config, bank: Bank, store: Store) -> None:
    """Make the database agree with the file: channels exist, file-owned settings applied."""
    await bank.ensure_channels(config.channels)
    for login, channel in config.channels.items():
        channel_id = bank.channel_id(login)
        await store.write(
            partial(settings.apply_file, channel_id=channel_id, from_file=channel.file_settings)
        )
        bank.set_excluded(login, {*channel.ignored_users, login, config.twitch.bot_login})


class Part(Protocol):
    """Anything that follows a reloaded config: SIGHUP calls ``apply`` on each, in order."""

    async def apply(self, config: Config) -> None: ...


@dataclass(frozen=True)
class ChannelRows:
    """The database's channels and file-owned settings, made to agree with the file."""

    bank: Bank
    store: Store

    async def apply(self, config: Config) -> None:
        await apply_channel_config(config, self.bank, self.store)


@dataclass(kw_only=True)
class Daemon:
    """The running parts: what the signal handlers, /healthz and the tests reach."""

    config: Config
    clock: Clock
    store: Store
    bank: Bank
    live_settings: settings.LiveSettings
    tokens: Tokens
    clients: TwitchClients
    metrics: Metrics
    notifier: Notifier
    chat: ChatClient
    outbox: Outbox
    dispatcher: Dispatcher
    eventsub: Webhook | None  # the webhook transport, when the config gives it a secret
    web: WebServer
    features: Sequence[Feature]
    earning: Earning
    tracker: PresenceTracker
    websocket: EventSubWebSocket | None = None  # the WebSocket transport, when in force
    parts: Sequence[Part] = ()  # what a reload applies the new config to, in this order
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reloads: int = 0
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Any, name: str) -> None:
        """A tracked background task (cancelled at stop, never garbage-collected early)."""
        task = asyncio.create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @property
    def web_url(self) -> str:
        return self.web.url

    async def ensure_subscriptions(self) -> None:
        """Create the webhook subscriptions the channels need (app token); log what fails.
        Then tell the features each channel's Twitch id. (Over WebSocket, each channel's
        connection subscribes on its own: only the ids are told here.)"""
        config = self.config
        twitch, web = config.twitch, config.web
        if config.eventsub_transport == "websocket":
            await self._broadcasters_known()
            return
        if self.eventsub is None or not web.public_url or web.eventsub_secret is None:
            return
        if twitch.client_secret is None:
            log.warning(
                "eventsub_not_subscribed", reason="twitch.client_secret is needed for the app token"
            )
            return
        app_helix = self.clients.app()
        if app_helix is None:
            return
        try:
            ids = await subscriptions.resolve_broadcasters(app_helix, config.channels)
            await self.dispatcher.set_broadcaster_ids(ids)
            report = await subscriptions.ensure_subscriptions(
                app_helix,
                callback=subscriptions.callback_url(web.public_url, web.eventsub_path),
                secret=web.eventsub_secret.reveal(),
                broadcasters=ids,
                kinds=self.dispatcher.handled(),
            )
        except HelixError as exc:
            log.error("eventsub_subscriptions_failed", error=str(exc))
            return
        for line in subscriptions.describe(report):
            log.warning("eventsub_subscription_failed", detail=line)
        subscriptions.show(
            report, ids, self.dispatcher.handled(), self.dispatcher.status, self.clock.now()
        )
        for feature in self.features:
            await feature.broadcasters_known(ids)

    async def _broadcasters_known(self) -> None:
        """Each channel's Twitch id, asked with the app token or the bot's, for the
        features (which rewards the bot owns)."""
        try:
            helix = await self.clients.lookup()
            if helix is None:
                return
            ids = await subscriptions.resolve_broadcasters(helix, self.config.channels)
        except (HelixError, TokenError) as exc:
            log.warning("broadcaster_ids_unknown", error=str(exc))
            return
        await self.dispatcher.set_broadcaster_ids(ids)
        for feature in self.features:
            await feature.broadcasters_known(ids)

    async def reload(self) -> bool:
        """SIGHUP: validate the file again; apply it if valid, else keep running on the old.

        The chat connection stays up; channels are joined and parted on it, and the earning
        loops keep their tick numbers, so no tick is lost or doubled.
        """
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for line in exc.lines():
                log.error("config_reload_rejected", problem=line)
            self.notifier.ready(f"kept the old config: {len(exc.problems)} problem(s)")
            return False
        restart_needed = [
            key
            for key, old, now in (
                ("database", self.config.database, new.database),
                ("web.listen", self.config.web.listen, new.web.listen),
                ("twitch.irc_url", self.config.twitch.irc_url, new.twitch.irc_url),
                ("twitch.api_url", self.config.twitch.api_url, new.twitch.api_url),
                ("twitch.bot_login", self.config.twitch.bot_login, new.twitch.bot_login),
                ("eventsub.transport", self.config.eventsub_transport, new.eventsub_transport),
            )
            if old != now
        ]
        if restart_needed:
            log.warning("config_reload_needs_restart", keys=restart_needed)
        logs.REDACTOR.add(*secrets_of(new))
        logs.set_level(new.log.level)
        for part in self.parts:
            await part.apply(new)
        self.config = new
        self.spawn(self.ensure_subscriptions(), "eventsub-subscriptions")
        self.reloads += 1
        log.info("config_reloaded", channels=sorted(new.channels))
        self.notifier.ready(f"serving {len(new.channels)} channel(s)")
        return True

    async def housekeeping(self) -> None:
        """Hourly: forget old EventSub message ids and long-dead jobs."""
        while True:
            try:
                await self.dispatcher.prune()
                await self.store.write(lambda tx: jobs.prune(tx, DEAD_JOB_RETENTION_MS))
            except Exception:
                log.exception("housekeeping_failed")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)


async def run(
    config: Config,
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    started: Callable[[Daemon], None] | None = None,
    configure_logging: bool = True,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); 0 on a clean stop, 1 if it cannot start."""
    if configure_logging:
        logs.configure(config.log.level, config.log.format, secrets=secrets_of(config))
    else:
        logs.REDACTOR.add(*secrets_of(config))
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    notifier = Notifier.from_environ()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await notifier.start()
            stack.push_async_callback(notifier.close)
            daemon = await _start(config, clock, stop, notifier, stack)
            stack.push_async_callback(_cancel_all, daemon.background)
            _handle_signals(daemon, stack)
            daemon.spawn(daemon.ensure_subscriptions(), "eventsub-subscriptions")
            daemon.spawn(daemon.housekeeping(), "housekeeping")
            log.info("daemon_ready", channels=sorted(config.channels), web=daemon.web_url)
            notifier.ready(f"serving {len(config.channels)} channel(s)")
            if started is not None:
                started(daemon)
            await stop.wait()
            log.info("daemon_stopping")
            notifier.stopping()
    except StartupError as exc:
        log.error("daemon_cannot_start", reason=str(exc))
        return 1
    log.info("daemon_stopped")
    return 0


def _handle_signals(daemon: Daemon, stack: contextlib.AsyncExitStack) -> None:
    loop = asyncio.get_running_loop()
    reloading: list[asyncio.Task[bool]] = []

    def reload() -> None:
        if reloading and not reloading[-1].done():
            log.info("config_reload_already_running")
            return
        reloading.append(asyncio.create_task(daemon.reload(), name="reload"))

    table: dict[signal.Signals, Callable[[], None]] = {
        signal.SIGHUP: reload,
        signal.SIGTERM: daemon.stop.set,
        signal.SIGINT: daemon.stop.set,
    }
    for sig, handler in table.items():
        try:
            loop.add_signal_handler(sig, handler)
        except (RuntimeError, ValueError):  # not the main thread (in-process tests)
            continue
        stack.callback(loop.remove_signal_handler, sig)


async def _start(
    config: Config,
    clock: Clock,
    stop: asyncio.Event,
    notifier: Notifier,
    stack: contextlib.AsyncExitStack,
) -> Daemon:
    twitch = config.twitch
    notifier.extend_timeout(60)  # migrations on a large database may take a while
    try:
        store = await open_store(
            config.database.path,
            clock=clock,
            synchronous=config.database.synchronous,
            busy_timeout_ms=config.database.busy_timeout_ms,
        )
    except Exception as exc:  # a bad path, a newer schema, a file that is not SQLite
        raise StartupError(f"cannot open {config.database.path}: {exc}") from None
    stack.push_async_callback(store.close)
    bank = Bank(store)
    await apply_channel_config(config, bank, store)

    session = aiohttp.ClientSession()
    stack.push_async_callback(session.close)
    tokens = Tokens(config, store, session, clock=clock)
    try:
        await tokens.start()
    except TokenError as exc:
        raise StartupError(str(exc)) from None
    bot = tokens.bot()
    if bot.missing(["moderator:read:chatters"]):
        log.warning(
            "presence_from_chat_only",
            reason="the bot token lacks"
            " moderator:read:chatters: run `loyaltybot auth` again to count lurkers",
        )
    clients = TwitchClients(config, session, tokens, clock=clock)
    helix = clients.bot()
    metrics = Metrics()
    live_settings = settings.LiveSettings(store, bank.channel_id, config.settings_from_file)
    await live_settings.refresh(config.channels)

    # ---- chat: the outbox queues replies; the client made below sends them ---------------
    def replied(channel: str, outcome: str) -> None:
        if outcome == "sent":
            metrics.chat_replies_sent.labels(channel).inc()
        else:
            metrics.chat_replies_dropped.labels(channel, outcome).inc()

    outbox = Outbox(None, clock, observer=replied)

    async def say(channel: str, text: str) -> bool:
        """A line the bot says on its own (not a reply), within the send limits."""
        return outbox.submit(Reply(channel, text, None, clock.monotonic()))

    # ---- first sight and presence -----------------------------------------------------
    tracker = PresenceTracker(config.earning.max_present)
    first_sight = bank.first_sight

    async def lookup(logins: Sequence[str]) -> list[Viewer]:
        return [Viewer(u.id, u.login, u.display_name) for u in await helix.get_users(logins=logins)]

    first_sight.set_lookup(lookup)
    first_sight.add_listener(tracker.learn_viewers)
    stack.push_async_callback(first_sight.close)  # before the store closes
    _count_first_sight(metrics, bank)

    def seen(message: ChatMessage) -> None:
        tracker.message(message.channel, message.sender, subscriber=message.roles.subscriber)
        first_sight.see(message.channel, message.sender)

    def membership(channel: str, login: str, joined: bool) -> None:
        (tracker.join if joined else tracker.part)(channel, login)
        if joined:
            first_sight.see_login(channel, login)

    def ticked(channel: str, applied: TickApplied) -> None:
        metrics.earning_ticks.labels(channel).inc()
        metrics.points_credited.labels(channel, "earning").inc(applied.points)
        metrics.viewers_present.labels(channel).set(applied.present)

    earning = Earning(
        bank,
        tracker,
        clock,
        live_settings.read,
        helix=helix,
        bot_user_id=lambda: bot.user_id,
        on_tick=ticked,
        broadcaster_helix=clients.broadcaster,
    )
    metrics.add_gauge_source(
        "loyaltybot_presence_left_out",
        "Viewers the presence bound (earning.max_present) left out of the last interval",
        ("channel",),
        lambda: [((c,), float(n)) for c, n in earning.left_out.items()],
    )

    # ---- the features -------------------------------------------------------------------
    actions = Delivery(session=session, chat=say)  # chat lines and Discord, for every feature
    eventsub_status = EventSubStatus(config.eventsub_transport)
    features = _features(
        config=config,
        bank=bank,
        store=store,
        actions=actions,
        clients=clients,
        earning=earning,
        tracker=tracker,
        live_settings=live_settings,
        eventsub_status=eventsub_status,
        outbox=outbox,
        clock=clock,
        metrics=metrics,
    )
    handler = CommandHandler(
        bank,
        settings_for=live_settings.get,
        clock=clock,
        bot_login=twitch.bot_login,
        commands=[command for feature in features for command in feature.commands()],
    )
    for feature in features:
        for renderer in feature.error_renderers():
            handler.add_renderer(renderer)
    chat = ChatClient(
        irc_url=twitch.irc_url,
        token=await bot.token(),
        nick=twitch.bot_login,
        channels=config.channels,
        handler=handler,
        outbox=outbox,
        clock=clock,
        on_message=seen,
        on_membership=membership,
    )

    dispatcher = Dispatcher(
        store=store, bank=bank, channels=config.channels, status=eventsub_status
    )
    for feature in features:
        dispatcher.register(feature.eventsub(), wanted=feature.eventsub_wanted)
    await dispatcher.start()
    stack.push_async_callback(dispatcher.close)  # after the web server has stopped
    _count_eventsub(metrics, dispatcher.stats, config.eventsub_transport, eventsub_status)
    websocket = _websocket(config, dispatcher, clients, session, clock, features)
    if websocket is not None:
        stack.push_async_callback(websocket.close)  # before the dispatcher closes

    kinds = {**actions.kinds(), **{k: v for f in features for k, v in f.jobs().items()}}
    worker = jobs.Worker(store, clock, kinds)
    worker.start()
    stack.push_async_callback(worker.close)  # unfinished jobs stay pending for the next start

    # ---- the web ------------------------------------------------------------------------
    metrics.add_gauge_source(
        "loyaltybot_chat_connected_now",
        "1 while chat is connected",
        (),
        lambda: [((), 1.0 if chat.connected else 0.0)],
    )
    app = await web_app(
        config=config,
        bank=bank,
        store=store,
        features=features,
        health=lambda: chat.connected,
        metrics=metrics,
        clock=clock,
        http=session,
    )
    webhook = _webhook(config, dispatcher, clock)
    if webhook is not None:
        app.router.add_routes(webhook.routes())
    try:
        web_server = await start_web(app, config.web.host, config.web.port)
    except OSError as exc:
        raise StartupError(f"cannot listen on {config.web.listen}: {exc.strerror}") from None
    stack.push_async_callback(web_server.close)

    outbox.start(chat.send)
    stack.push_async_callback(outbox.close)
    await chat.start()
    bot.on_change(chat.set_token)  # a refreshed token is used by the next reconnection
    stack.push_async_callback(chat.close)
    for feature in features:
        await feature.start()
        stack.push_async_callback(feature.close)  # earning's runs first: it flushes memory
    if websocket is not None:
        websocket.start(config.channels)  # one connection per channel, on its own from now
    return Daemon(
        config=config,
        clock=clock,
        store=store,
        bank=bank,
        live_settings=live_settings,
        tokens=tokens,
        clients=clients,
        metrics=metrics,
        notifier=notifier,
        chat=chat,
        outbox=outbox,
        dispatcher=dispatcher,
        eventsub=webhook,
        web=web_server,
        features=features,
        earning=earning,
        tracker=tracker,
        websocket=websocket,
        parts=[  # the database first: everything after reads the channels it has
            ChannelRows(bank, store), live_settings, tokens, clients, chat, web_server,
            dispatcher, *([webhook] if webhook else []), *features,
            *([websocket] if websocket else []),  # new channels; revoked types come back
        ],
        stop=stop,
    )


async def web_app(
    *,
    config: Config,
    bank: Bank,
    store: Store,
    features: Sequence[Feature],
    health: Callable[[], bool],
    metrics: Metrics,
    clock: Clock,
    http: aiohttp.ClientSession | None = None,
) -> web.Application:
    """The web edge with every feature's routes, tabs, overview figures and templates."""
    return await make_app(
        bank=bank,
        config=config,
        store=store,
        health=health,
        metrics=metrics,
        clock=clock,
        http=http,
        routes=[route for feature in features for route in feature.routes()],
        nav=[(link.path, link.label) for feature in features for link in feature.nav()],
        stats=[feature.stats for feature in features],
        templates=[folder for feature in features for folder in feature.templates()],
    )


def _features(
    *,
    config: Config,
    bank: Bank,
    store: Store,
    actions: Delivery,
    clients: TwitchClients,
    earning: Earning,
    tracker: PresenceTracker,
    live_settings: settings.LiveSettings,
    eventsub_status: EventSubStatus,
    outbox: Outbox,
    clock: Clock,
    metrics: Metrics,
) -> list[Feature]:
    """Every feature, in the order their tabs and commands appear. One line each; what one
    feature offers another is handed over here (badges, columns, stream state, queues)."""
    shop = ShopFeature(
        config=config, bank=bank, store=store, actions=actions, live=earning.is_live
    )
    rewards = RewardsFeature(
        config=config,
        bank=bank,
        store=store,
        actions=actions,
        helix_for=clients.broadcaster,
        queues=[shop.queue],
    )
    levels = LevelsFeature(config=config, bank=bank)
    games = GamesFeature(bank=bank, store=store, clock=clock, outbox=outbox,
                         settings_for=live_settings.get, config=config)
    return [
        Wallet(
            present=earning.present,
            badges=[rewards.title_badge, levels.badge],
            columns=[("Level", levels.level_name)],
        ),
        EarningFeature(earning, tracker, config),
        Bonuses(settings=live_settings.read),
        rewards,
        VotesFeature(bank=bank, store=store),
        shop,
        levels,
        GiveawaysFeature(bank=bank, store=store, clock=clock, outbox=outbox,
                         present=earning.present, config=config, metrics=metrics),
        ContestsFeature(bank=bank, store=store, clock=clock, outbox=outbox,
                        settings_for=live_settings.get, config=config, metrics=metrics),
        games,
        EconomyFeature(bank=bank, store=store, clock=clock, edges=games.house_edges,
                       rewards=rewards.rewards.analytics),
        EventSubPage(eventsub_status),
    ]


def _webhook(config: Config, dispatcher: Dispatcher, clock: Clock) -> Webhook | None:
    """The webhook transport, when the config gives Twitch a secret to sign with."""
    if config.web.eventsub_secret is None:
        log.info("eventsub_disabled", reason="no web.eventsub_secret")
        return None
    public = config.web.public_url or ""
    loopback = public.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if public.startswith("http://") and not loopback:
        log.warning(
            "eventsub_over_http",
            public_url=config.web.public_url,
            note="Twitch only calls https on port 443; fine behind a TLS proxy or in tests",
        )
    return Webhook(
        dispatcher,
        secret=config.web.eventsub_secret,
        clock=clock,
        path=config.web.eventsub_path,
    )


def _websocket(
    config: Config,
    dispatcher: Dispatcher,
    clients: TwitchClients,
    session: aiohttp.ClientSession,
    clock: Clock,
    features: Sequence[Feature],
) -> EventSubWebSocket | None:
    """The WebSocket transport (SPEC §6.1), when it is the one in force."""
    if config.eventsub_transport != "websocket":
        return None

    async def recover(channel: str, broadcaster_id: str) -> list[Missed]:
        """What the features can fetch again after a gap (our rewards' redemptions)."""
        return [m for f in features for m in await f.eventsub_missed(channel, broadcaster_id)]

    return EventSubWebSocket(
        dispatcher,
        clients=clients,
        http=session,
        url=config.twitch.eventsub_ws_url,
        clock=clock,
        recover=recover,
    )


_TRANSPORT_COUNTS = (
    "notifications",
    "duplicates",
    "processed",
    "failed",
    "revocations",
    "reconnects",
    "session_reconnects",
    "gaps",
    "recovered",
    "malformed",
)


def _count_eventsub(
    metrics: Metrics, stats: EventSubStats, transport: str, status: EventSubStatus
) -> None:
    metrics.add_counter_source(
        "loyaltybot_eventsub_messages",
        "EventSub messages by outcome, every transport together",
        ("outcome",),
        lambda: [
            (("received",), stats.received),
            (("duplicate",), stats.duplicates),
            (("processed",), stats.processed),
            (("failed",), stats.failed),
            (("revocation",), stats.revocations),
            (("rejected",), sum(stats.rejected.values())),
        ],
    )
    stats.of(transport)  # the transport in force shows its zeros from the start
    metrics.add_counter_source(
        "loyaltybot_eventsub_transport",
        "EventSub per transport (webhook, websocket): notifications, duplicates, processed,"
        " failed, revocations, reconnects, session_reconnects, gaps (connections lost:"
        " events may have been missed), recovered (redemptions fetched again), malformed",
        ("transport", "what"),
        lambda: [
            ((name, what), getattr(counts, what))
            for name, counts in stats.transports.items()
            for what in _TRANSPORT_COUNTS
        ],
    )
    metrics.add_gauge_source(
        "loyaltybot_eventsub_connected",
        "1 while the channel's EventSub WebSocket session is up (websocket transport)",
        ("channel",),
        lambda: [
            ((channel,), 1.0 if state.session_id else 0.0)
            for channel, state in status.channels().items()
            if state.transport == "websocket"
        ],
    )


def _count_first_sight(metrics: Metrics, bank: Bank) -> None:
    stats = bank.first_sight.stats
    metrics.add_counter_source(
        "loyaltybot_first_sight",
        "Viewers first seen and written (viewers), in how many transactions (writes)",
        ("what",),
        lambda: [
            (("viewers",), stats.viewers),
            (("writes",), stats.writes),
            (("lookups",), stats.lookups),
            (("failures",), stats.failures),
        ],
    )


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---- the command line: the daemon's and the features' commands beside the CLI's -------


async def cmd_run(args: argparse.Namespace) -> int:
    config = cli_common.config_of(args)
    # What is imported now lives as long as the process: keep it out of the cyclic
    # collector's full passes (measured over three 100,000-viewer ticks: 9 passes of
    # 30-60 ms without this, 2 with it).
    gc.freeze()
    return await run(config)


async def cmd_demo(args: argparse.Namespace) -> int:
    from loyaltybot import demo  # the simulator is imported only for the demo

    return await demo.run_demo(port=args.port, viewers=args.viewers, seconds=args.seconds)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    p.add_argument("--viewers", type=int, default=150, help="simulated viewers")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")


FEATURE_COMMANDS: tuple[CliCommand, ...] = (cli_rewards.COMMAND, cli_giveaways.COMMAND)


def cli_commands() -> tuple[CliCommand, ...]:
    """Every sub-command of ``loyaltybot``, in the order ``--help`` lists them."""
    return (
        CliCommand("run", "run the daemon in the foreground", cmd_run, quiet_logs=False),
        CliCommand(
            "demo",
            "the daemon against the built-in Twitch simulator (no account)",
            cmd_demo,
            _demo_arguments,
            quiet_logs=False,
        ),
        *cli.COMMANDS,
        *FEATURE_COMMANDS,
    )


def main(argv: list[str] | None = None) -> int:
    """The ``loyaltybot`` program."""
    return cli.main(argv, cli_commands())
