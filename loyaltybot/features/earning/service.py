"""Earning (SPEC §4): who is present, and one interval scheduler per channel.

Presence is gathered in memory (no database write per chat message): the chatter list
from Helix when the bot may read it, otherwise chat and IRC JOIN/PART; chat messages are
counted per viewer. Each interval one tick writes it all in one transaction
(``Bank.credit_tick``), under a tick number that the database holds once, so no tick is
credited twice: not after a restart, not when a slow tick meets the next, not on reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from loyaltybot.clock import Clock, to_ms
from loyaltybot.db import Store, memory
from loyaltybot.features.earning.presence import PresenceTracker
from loyaltybot.features.earning.rules import collect_lead, first_due, next_due, rates_of
from loyaltybot.points import ledger
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import AlreadyApplied
from loyaltybot.points.ledger import NO_IDS, TickPlan
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings
from loyaltybot.twitch import helix as helix_api
from loyaltybot.twitch.helix import Helix, HelixError

log = structlog.get_logger(__name__)

MAX_LOOKUPS_PER_TICK = 1_000  # JOIN-only logins resolved through Helix per tick
SUBSCRIBERS_REFRESH_SECONDS = 1800.0
CHATTERS_RETRY_SECONDS = 600.0  # a refused chatter list is asked again: the bot may be modded
GIVE_BACK_AFTER = 100_000  # viewers in a tick: then its freed memory goes back to the system
SettingsFor = Callable[[str], Awaitable[ChannelSettings]]
Sleep = Callable[[float], Awaitable[None]]



@dataclass
class _ChannelState:
    task: asyncio.Task[None] | None = None
    live: bool | None = None  # None: not known yet
    seq: int = 0
    watch_since: float = 0.0  # wall time from which watch time is counted
    watch_carry: float = 0.0  # fraction of a second not yet credited (sub-second intervals)
    broadcaster_id: str | None = None
    subscribers_at: float = -math.inf
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    collecting: asyncio.Task[None] | None = None  # the chatter list, read ahead of the tick
    collect_seconds: float = 0.0  # how long the last reading of it took


class Earning:
    """One interval loop per channel. Also the chat layer's presence source."""

    def __init__(
        self,
        bank: Bank,
        tracker: PresenceTracker,
        clock: Clock,
        settings_for: SettingsFor,
        *,
        helix: Helix | None = None,
        bot_user_id: Callable[[], str | None] = lambda: None,
        broadcaster_helix: Callable[[str], Helix | None] = lambda channel: None,
        sleep: Sleep = asyncio.sleep,
        max_sleep: float = 1.0,
        on_tick: Callable[[str, ledger.TickApplied], None] | None = None,
    ) -> None:
        self.bank = bank
        self.tracker = tracker
        self.clock = clock
        self._settings_for = settings_for
        self._helix = helix
        self._bot_user_id = bot_user_id
        self._broadcaster_helix = broadcaster_helix
        self._sleep = sleep
        self._max_sleep = max_sleep
        self._channels: dict[str, _ChannelState] = {}
        self._chatters_refused: dict[str, float] = {}  # channel -> monotonic time refused
        self._on_tick = on_tick
        self.left_out: dict[str, int] = {}  # channel -> viewers left out last interval
        self.ticks = 0

    # -- the chat layer's presence source
    def present(self, channel: str) -> Sequence[Viewer]:
        return self.tracker.present(channel)

    # -- lifecycle
    async def start(self, channels: Iterable[str]) -> None:
        for channel in channels:
            await self._add(channel)

    async def set_channels(self, channels: Iterable[str]) -> None:
        """Reload: start loops for new channels, stop (after flushing) removed ones."""
        wanted = set(channels)
        for channel in sorted(set(self._channels) - wanted):
            await self._remove(channel)
        for channel in sorted(wanted - set(self._channels)):
            await self._add(channel)
        for state in self._channels.values():
            state.wake.set()  # intervals may have changed

    def set_live(self, channel: str, live: bool) -> None:
        """From EventSub stream.online/offline (or a Helix poll)."""
        state = self._channels.get(channel)
        if state is not None and state.live != live:
            log.info("stream_state", channel=channel, live=live)
            state.live = live

    def set_broadcaster_id(self, channel: str, user_id: str) -> None:
        state = self._channels.get(channel)
        if state is not None:
            state.broadcaster_id = user_id

    def is_live(self, channel: str) -> bool | None:
        state = self._channels.get(channel)
        return None if state is None else state.live

    async def close(self) -> None:
        """Stop every loop and write what is in memory (messages, partial watch time)."""
        for channel in list(self._channels):
            await self._remove(channel)

    async def _add(self, channel: str) -> None:
        last = await self.bank.last_tick(channel)
        self.tracker.set_known(channel, await self.bank.load_known_logins(channel))
        self.tracker.set_subscribers(channel, await self.bank.subscriber_ids(channel))
        self.tracker.set_excluded(channel, self.bank.excluded(channel))
        state = _ChannelState(seq=last[0] if last else 0, watch_since=self.clock.now())
        self._channels[channel] = state
        state.task = asyncio.create_task(
            self._loop(channel, state, None if last is None else last[1] / 1000),
            name=f"earning:{channel}",
        )

    async def _remove(self, channel: str) -> None:
        state = self._channels.pop(channel, None)
        if state is None:
            return
        for task in (state.task, state.collecting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._flush(channel, state)
        self.tracker.forget(channel)

    async def _flush(self, channel: str, state: _ChannelState) -> None:
        """Messages and the watch time of the unfinished interval, without points."""
        interval = self.tracker.take(channel)
        present = list(interval) if state.live else interval.chatted()
        known = interval.known if state.live else NO_IDS
        elapsed = max(0.0, self.clock.now() - state.watch_since) if state.live else 0.0
        watch = math.floor(state.watch_carry + elapsed)
        if present or known.size:
            await self.bank.record_activity(channel, present, watch, listed=known)
        log.info("earning_flushed", channel=channel, viewers=len(present) + known.size,
                 watch_seconds=watch)

    # -- the loop
    async def _loop(self, channel: str, state: _ChannelState, last_credited: float | None) -> None:
        settings = await self._settings_for(channel)
        interval = settings.interval_minutes * 60
        anchor = last_credited if last_credited is not None else self.clock.now()
        due = first_due(self.clock.now(), interval, last_credited)
        await self._refresh_live(channel, state)
        await self._first_look(channel, state)
        while True:
            settings = await self._settings_for(channel)
            if settings.interval_minutes * 60 != interval:  # changed on the dashboard or reload
                interval = settings.interval_minutes * 60
                due = max(anchor + interval, self.clock.now())
            wait = due - self.clock.now()
            if wait > 0:
                if state.collecting is None and wait <= collect_lead(state.collect_seconds,
                                                                     interval):
                    state.collecting = asyncio.create_task(
                        self._collect(channel, state), name=f"chatters:{channel}"
                    )
                state.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wake.wait(), min(wait, self._max_sleep))
                continue
            try:
                await self._tick(channel, state, settings, due, interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("earning_tick_failed", channel=channel, seq=state.seq + 1)
            anchor = due
            due, skipped = next_due(due, interval, self.clock.now())
            if skipped:
                log.warning("earning_ticks_skipped", channel=channel, intervals=skipped)

    async def _tick(
        self,
        channel: str,
        state: _ChannelState,
        settings: ChannelSettings,
        due: float,
        interval: float,
    ) -> None:
        started = self.clock.monotonic()
        ahead, state.collecting = state.collecting, None
        if ahead is not None:  # read during the interval's last moments: wait if still going
            await ahead
        else:
            await self._collect(channel, state)
        fetched = self.clock.monotonic()
        now = self.clock.now()
        live = bool(state.live) or settings.enable_offline
        state.watch_carry += max(0.0, min(interval, now - state.watch_since))
        watch = math.floor(state.watch_carry)
        state.watch_carry -= watch
        present = self.tracker.take(channel)  # rows are made on the database's thread
        self._report_left_out(channel)
        state.watch_since = now
        channel_id = self.bank.channel_id(channel)
        if not live:
            chatted = present.chatted()
            if chatted:
                await self.bank.record_activity(channel, chatted, 0)
            log.info("earning_skipped_offline", channel=channel, chatted=len(chatted))
            return
        plan = TickPlan(
            channel_id,
            state.seq + 1,
            to_ms(due),
            watch,
            rates_of(settings),
            present,
            self.bank.known_logins(channel),
            listed=present.known,
            subscribers=present.subscribers,
        )
        writing = self.clock.monotonic()
        try:
            applied = await self.bank.credit_tick(plan)
        except AlreadyApplied:  # another process credited it: follow the database
            last = await self.bank.last_tick(channel)
            state.seq = last[0] if last else state.seq
            log.warning("earning_tick_already_credited", channel=channel, seq=plan.seq)
            return
        written = self.clock.monotonic()
        state.seq = plan.seq
        self.ticks += 1
        if self._on_tick is not None:
            self._on_tick(channel, applied)
        log.info(  # where a slow tick's time went: Twitch, or the database
            "earning_tick",
            channel=channel,
            seq=plan.seq,
            present=applied.present,
            points=applied.points,
            watch_seconds=watch,
            seconds=round(written - started, 3),
            helix_seconds=round(fetched - started, 3),
            write_seconds=round(written - writing, 3),
            collect_seconds=round(state.collect_seconds, 3),  # the whole list, read ahead
        )
        if applied.present >= GIVE_BACK_AFTER:
            await self._give_back(channel)

    async def _give_back(self, channel: str) -> None:
        """After a big tick, return the memory its rows freed (off the event loop)."""
        before, started = memory.resident_bytes(), self.clock.monotonic()
        await asyncio.to_thread(memory.give_back)
        log.info("memory_given_back", channel=channel,
                 mb=round((before - memory.resident_bytes()) / 1e6, 1),
                 seconds=round(self.clock.monotonic() - started, 3))

    async def _collect(self, channel: str, state: _ChannelState) -> None:
        """Stream state and the chatter list for this interval; how long it took decides
        how early the next one starts (``collect_lead``)."""
        started = self.clock.monotonic()
        try:
            await self._refresh_live(channel, state)
            await self._refresh_presence(channel, state)
        except asyncio.CancelledError:
            raise
        except Exception:  # the tick goes on with what chat and JOIN say
            log.exception("presence_refresh_failed", channel=channel)
        state.collect_seconds = self.clock.monotonic() - started

    def _report_left_out(self, channel: str) -> None:
        """The presence bound was reached this interval: say so, and whom it cost."""
        left = self.tracker.take_left_out(channel)
        self.left_out[channel] = left.count
        if left.count:
            log.warning(
                "presence_bound_reached",
                channel=channel,
                bound=self.tracker.max_present,
                left_out=left.count,
                first_left_out=list(left.logins),
                fix="raise earning.max_present in the config if the machine has the memory",
            )

    async def _refresh_live(self, channel: str, state: _ChannelState) -> None:
        if self._helix is None:
            return
        try:
            streams = await helix_api.get_streams(self._helix, [channel])
        except HelixError as exc:
            log.warning("stream_state_unknown", channel=channel, error=str(exc))
            return
        self.set_live(channel, channel in streams)
        if channel in streams:
            state.broadcaster_id = streams[channel].user_id

    async def _first_look(self, channel: str, state: _ChannelState) -> None:
        """At start, read the chatter list once so lurkers are known before any tick (and
        learn how long a reading takes, for the next)."""
        started = self.clock.monotonic()
        try:
            await self._refresh_presence(channel, state)
        except HelixError as exc:
            log.warning("chatters_unavailable", channel=channel, error=str(exc))
            return
        state.collect_seconds = self.clock.monotonic() - started
        self.bank.first_sight.see_chatters(channel, self.tracker.channel(channel).chatters)

    async def _refresh_presence(self, channel: str, state: _ChannelState) -> None:
        """Get Chatters over all pages when allowed; otherwise chat and JOIN (said once)."""
        helix = self._helix
        if helix is None:
            return
        if state.broadcaster_id is None:
            with contextlib.suppress(HelixError):
                users = await helix.get_users(logins=[channel])
                if users:
                    state.broadcaster_id = users[0].id
        moderator = self._bot_user_id()
        refused_at = self._chatters_refused.get(channel)
        now = self.clock.monotonic()
        ask = refused_at is None or now - refused_at >= CHATTERS_RETRY_SECONDS
        if ask and state.broadcaster_id and moderator:
            try:
                bound = self.tracker.max_present
                chatters = await helix_api.get_chatters(
                    helix, state.broadcaster_id, moderator, limit=bound,
                    listed=self.tracker.listed_filter(channel),
                )
            except HelixError as exc:
                if exc.status in (401, 403):
                    self.tracker.drop_chatters(channel)  # never keep paying a stale list
                    self._chatters_refused[channel] = now
                    if refused_at is None:
                        log.warning(
                            "presence_from_chat_only",
                            channel=channel,
                            reason="the bot cannot read the chatter list (it must be a"
                            " moderator and its token needs moderator:read:chatters);"
                            " using chat and JOIN",
                        )
                else:
                    log.warning("chatters_unavailable", channel=channel, error=str(exc))
            else:
                if self._chatters_refused.pop(channel, None) is not None:
                    log.info("presence_from_chatters_again", channel=channel)
                self.tracker.set_chatters(channel, chatters, known=chatters.known,
                                          listed=chatters.listed, beyond=chatters.beyond)
        await self._resolve_joins(channel, helix)
        await self._refresh_subscribers(channel, state)

    async def _resolve_joins(self, channel: str, helix: Helix) -> None:
        """JOIN-only logins count when there is no chatter list: their ids from Twitch."""
        if self.tracker.listing(channel):
            return
        logins = self.tracker.unresolved_joins(channel)[:MAX_LOOKUPS_PER_TICK]
        if not logins:
            return
        try:
            users = await helix.get_users(logins=logins)
        except HelixError as exc:
            log.warning("join_lookup_failed", channel=channel, error=str(exc))
            return
        state = self.tracker.channel(channel)
        for user in users:
            state.ids[user.login] = user.id
            state.names[user.id] = user.display_name

    async def _refresh_subscribers(self, channel: str, state: _ChannelState) -> None:
        helix = self._broadcaster_helix(channel)
        if helix is None or state.broadcaster_id is None:
            return
        if self.clock.monotonic() - state.subscribers_at < SUBSCRIBERS_REFRESH_SECONDS:
            return
        state.subscribers_at = self.clock.monotonic()
        try:
            ids = await helix_api.get_subscriber_ids(
                helix, state.broadcaster_id, limit=self.tracker.max_present
            )
        except HelixError as exc:
            log.warning("subscribers_unavailable", channel=channel, error=str(exc))
            return
        self.tracker.set_subscribers(channel, ids)


def settings_reader(
    store: Store,
    channel_id: Callable[[str], int],
    file_settings: Callable[[str], Mapping[str, object]],
) -> SettingsFor:
    """Current settings of a channel: what is stored, with the file's values on top."""
    from loyaltybot import settings as settings_mod

    async def read(channel: str) -> ChannelSettings:
        cid = channel_id(channel)
        stored = await store.read(lambda c: settings_mod.load(c, cid))
        return stored.values.model_copy(update=dict(file_settings(channel)))

    return read
