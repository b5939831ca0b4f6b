"""The earning feature as the daemon registers it: the interval loops, presence, and the
stream state that EventSub's ``stream.online``/``stream.offline`` tell."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from loyaltybot.config import Config
from loyaltybot.db import Tx
from loyaltybot.eventsub.dispatch import AfterCommit, Handler, Routed
from loyaltybot.eventsub.events import StreamOffline, StreamOnline
from loyaltybot.features import Feature
from loyaltybot.features.earning.presence import PresenceTracker
from loyaltybot.features.earning.service import Earning
from loyaltybot.web.state import Stat

log = structlog.get_logger(__name__)


class EarningFeature(Feature):
    name = "earning"

    def __init__(self, earning: Earning, tracker: PresenceTracker, config: Config) -> None:
        self.earning = earning
        self.tracker = tracker
        self._config = config
        self._live: dict[str, tuple[float, bool]] = {}  # channel -> (sent at, live)

    def eventsub(self) -> Mapping[type, Handler]:
        return {StreamOnline: self._stream, StreamOffline: self._stream}

    async def start(self) -> None:
        await self.earning.start(self._config.channels)

    async def close(self) -> None:
        await self.earning.close()  # writes what is in memory: messages, watch time

    async def apply(self, config: Config) -> None:
        self._config = config
        await self.earning.set_channels(config.channels)
        for login in config.channels:
            self.tracker.set_excluded(login, self.earning.bank.excluded(login))

    async def stats(self, channel: str) -> Sequence[Stat]:
        """Viewers the presence bound left out of the last interval, if any."""
        left = self.earning.left_out.get(channel, 0)
        return (Stat("Left out of earning (memory bound)", left),) if left else ()

    def live(self, channel: str) -> bool | None:
        """The last stream state EventSub told us, or None if it has not."""
        state = self._live.get(channel)
        return None if state is None else state[1]

    def _stream(self, tx: Tx, routed: Routed) -> AfterCommit:
        live = isinstance(routed.event, StreamOnline)
        return lambda: self._set_live(routed.channel, live, routed.timestamp)

    def _set_live(self, channel: str, live: bool, at: float) -> None:
        """Twitch may deliver online and offline out of order: the newer one wins."""
        previous = self._live.get(channel)
        if previous is not None and previous[0] > at:
            log.info("eventsub_stale_stream_state_ignored", channel=channel, live=live)
            return
        self._live[channel] = (at, live)
        log.info("stream_state", channel=channel, live=live)
        self.earning.set_live(channel, live)
