"""The outbox: every chat line the bot sends leaves here, within Twitch's limits.

Twitch's rules (twitch-reference §1.10), per bot account, across all channels:

- at most 20 messages per 30 s in total, counting messages to every channel;
- in channels where the bot is broadcaster, moderator or VIP ("privileged"), sending may
  continue until 100 per 30 s (those messages still count toward the 20);
- in other channels, at most 1 message per second per channel.

Going over silences the bot for an hour, so the schedule keeps a margin: the 30 s window
is counted as ``window + window_margin`` and the per-channel gap as
``channel_interval + channel_margin``, and a send is recorded when ``send`` returns (the
latest moment it can have reached Twitch). Latency jitter up to the margin cannot make
Twitch count more than its limit.

Replies queue per channel (bounded), leave as soon as the limits allow, round-robin
across channels, and are dropped (and counted) once they are ``max_age`` seconds old: a
reply that cannot leave within 30 s of its command is not sent minutes later. All sends
must go through one outbox per bot account, or the counts here mean nothing.

``SendSchedule`` is the pure rule book (tested with a fake clock); ``Outbox`` is the
asyncio pump around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import structlog

from loyaltybot.chat.message import Roles, clean_tags, roles_from_tags
from loyaltybot.chat.replies import MAX_REPLY_CHARS, Reply, cut
from loyaltybot.clock import Clock

log = structlog.get_logger(__name__)

SendFn = Callable[[str, str, str | None], Awaitable[None]]
SleepFn = Callable[[float], Awaitable[None]]
AddResult = Literal["queued", "stale", "queue_full"]
# What became of a reply, for per-channel metrics: sent, or dropped because it was too
# late, its queue was full, the bot left the channel, or the send itself failed.
Outcome = Literal["sent", "stale", "queue_full", "parted", "send_failed"]
Observer = Callable[[str, Outcome], None]

# Appended to a line identical to the previous one sent in the channel: Twitch drops
# duplicates within 30 s (msg_duplicate). Chat clients use the same invisible character.
_DEDUPE = " \U000e0000"


class BotRole(enum.StrEnum):
    """What the bot account is in a channel (from USERSTATE badges/tags)."""

    NONE = "none"
    VIP = "vip"
    MODERATOR = "moderator"
    BROADCASTER = "broadcaster"

    @property
    def privileged(self) -> bool:
        return self is not BotRole.NONE

    @classmethod
    def from_userstate(cls, tags: Mapping[str, object], *, bot_login: str, channel: str) -> BotRole:
        """The bot's role from a USERSTATE's raw tags (as twitchio gives them)."""
        channel = channel.lstrip("#").lower()
        return cls.from_roles(
            roles_from_tags(clean_tags(tags), login=bot_login.lower(), channel=channel)
        )

    @classmethod
    def from_roles(cls, roles: Roles) -> BotRole:
        if roles.broadcaster:
            return cls.BROADCASTER
        if roles.moderator:
            return cls.MODERATOR
        if roles.vip:
            return cls.VIP
        return cls.NONE


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Twitch's numbers, and the margins and bounds this outbox adds."""

    window: float = 30.0
    account: int = 20  # per window, all channels
    privileged: int = 100  # per window, while sending to privileged channels
    channel_interval: float = 1.0  # per non-privileged channel
    window_margin: float = 2.0
    channel_margin: float = 0.5
    max_age: float = 30.0  # a reply older than this (since its command) is dropped
    per_channel_queue: int = 100

    def __post_init__(self) -> None:
        if not (0 < self.account <= self.privileged and self.window > 0 and self.max_age > 0):
            raise ValueError("send limits must be positive, with account <= privileged")
        if self.per_channel_queue < 1 or min(self.window_margin, self.channel_margin) < 0:
            raise ValueError("queue size must be >= 1 and margins >= 0")

    @property
    def effective_window(self) -> float:
        return self.window + self.window_margin

    @property
    def effective_gap(self) -> float:
        return self.channel_interval + self.channel_margin


@dataclass(frozen=True, slots=True)
class Room:
    """How many more lines could leave for a channel in the current window without waiting
    behind anything already queued (``spare``), out of the window's ``cap``. A feature
    that may stay silent (a refusal in a burst) speaks only while there is room to spare."""

    spare: int
    cap: int

    @property
    def to_spare(self) -> bool:
        """More than a quarter of the window free: an optional line may take a place."""
        return self.spare > self.cap // 4


@dataclass
class OutboxCounters:
    """Totals since start (for /metrics)."""

    sent: int = 0
    dropped_stale: int = 0
    dropped_overflow: int = 0
    dropped_parted: int = 0
    send_failed: int = 0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A reply the schedule says may leave now, with its final text."""

    channel: str
    text: str
    reply_to: str | None
    created_at: float


class SendSchedule:
    """Queues and the rule book; no I/O, time passed in. Not thread-safe (one loop)."""

    def __init__(self, limits: SendLimits | None = None, observer: Observer | None = None) -> None:
        self.limits = limits or SendLimits()
        self.counters = OutboxCounters()
        self._observer = observer
        self._queues: dict[str, deque[Reply]] = {}
        self._rotation: deque[str] = deque()  # channels with queued replies, next turn first
        self._roles: dict[str, BotRole] = {}
        self._sent: deque[float] = deque()  # account-wide send times inside the window
        self._last: dict[str, tuple[float, str]] = {}  # channel -> (time, text) of last send

    # -- configuration

    def set_role(self, channel: str, role: BotRole) -> None:
        self._roles[channel] = role

    def role(self, channel: str) -> BotRole:
        return self._roles.get(channel, BotRole.NONE)

    def forget(self, channel: str) -> None:
        """The bot left the channel: drop its queue (counted) and its state."""
        queue = self._queues.pop(channel, None)
        for _ in queue or ():
            self.counters.dropped_parted += 1
            self._observe(channel, "parted")
        with contextlib.suppress(ValueError):
            self._rotation.remove(channel)
        self._roles.pop(channel, None)
        self._last.pop(channel, None)

    # -- queueing

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, reply: Reply, now: float) -> AddResult:
        """Queue a reply, or drop it (already stale, or its queue is full) and count it."""
        if self._stale(reply, now):
            self.counters.dropped_stale += 1
            self._observe(reply.channel, "stale")
            return "stale"
        queue = self._queues.get(reply.channel)
        if queue is None:
            queue = self._queues[reply.channel] = deque()
            self._rotation.append(reply.channel)
        self._drop_stale(reply.channel, queue, now)
        if len(queue) >= self.limits.per_channel_queue:
            self.counters.dropped_overflow += 1
            self._observe(reply.channel, "queue_full")
            return "queue_full"
        queue.append(reply)
        return "queued"

    # -- deciding

    def next(self, now: float) -> tuple[Outgoing | None, float | None]:
        """The reply to send now, if any; else the time to ask again (None: nothing queued).

        The chosen reply leaves the queue; call ``sent`` once it has been handed over.
        """
        self._expire_window(now)
        wake: float | None = None
        for channel in list(self._rotation):
            queue = self._queues[channel]
            self._drop_stale(channel, queue, now)
            if not queue:
                self._retire(channel)
                continue
            ready = self.ready_at(channel, now)
            if ready <= now:
                reply = queue.popleft()
                self._rotation.remove(channel)
                if queue:
                    self._rotation.append(channel)  # its next turn comes after the others
                else:
                    del self._queues[channel]
                return self._outgoing(reply, now), None
            stale_at = queue[0].created_at + self.limits.max_age
            soonest = min(ready, stale_at)
            wake = soonest if wake is None else min(wake, soonest)
        return None, wake

    def ready_at(self, channel: str, now: float) -> float:
        """When a message to ``channel`` may leave, by the account and channel limits."""
        limits = self.limits
        privileged = self.role(channel).privileged
        cap = limits.privileged if privileged else limits.account
        ready = now
        if len(self._sent) >= cap:
            ready = max(ready, self._sent[len(self._sent) - cap] + limits.effective_window)
        if not privileged:
            last = self._last.get(channel)
            if last is not None:
                ready = max(ready, last[0] + limits.effective_gap)
        return ready

    def room(self, channel: str, now: float) -> Room:
        """What the limits leave for ``channel`` now, counting every reply queued (they all
        count toward the account's window); none while its own queue or gap holds a line
        back in a channel where the bot is not privileged."""
        self._expire_window(now)
        limits = self.limits
        privileged = self.role(channel).privileged
        cap = limits.privileged if privileged else limits.account
        spare = max(0, cap - len(self._sent) - self.pending)
        if not privileged and (self._queues.get(channel) or self.ready_at(channel, now) > now):
            spare = 0
        return Room(spare, cap)

    def sent(self, outgoing: Outgoing, at: float) -> None:
        """Record a send handed to Twitch at ``at`` (whether or not it then failed)."""
        self._sent.append(at)
        self._last[outgoing.channel] = (at, outgoing.text)
        while len(self._sent) > self.limits.privileged:
            self._sent.popleft()

    # -- internals

    def _outgoing(self, reply: Reply, now: float) -> Outgoing:
        text = cut(reply.text, MAX_REPLY_CHARS)
        last = self._last.get(reply.channel)
        if last is not None and last[1] == text and now < last[0] + self.limits.effective_window:
            text = cut(text, MAX_REPLY_CHARS - len(_DEDUPE)) + _DEDUPE
        return Outgoing(reply.channel, text, reply.reply_to, reply.created_at)

    def _stale(self, reply: Reply, now: float) -> bool:
        return reply.created_at + self.limits.max_age <= now

    def _drop_stale(self, channel: str, queue: deque[Reply], now: float) -> None:
        while queue and self._stale(queue[0], now):
            queue.popleft()
            self.counters.dropped_stale += 1
            self._observe(channel, "stale")

    def _observe(self, channel: str, outcome: Outcome) -> None:
        if self._observer is not None:
            self._observer(channel, outcome)

    def _retire(self, channel: str) -> None:
        self._queues.pop(channel, None)
        with contextlib.suppress(ValueError):
            self._rotation.remove(channel)

    def _expire_window(self, now: float) -> None:
        window = self.limits.effective_window
        while self._sent and self._sent[0] + window <= now:
            self._sent.popleft()


class Outbox:
    """Sends replies through ``send(channel, text, reply_to)`` as fast as the limits allow.

    ``start()`` runs the pump on the current loop; ``close()`` stops it (what is still
    queued is not sent). ``sleep`` is injectable so tests can run on a fake clock.
    ``observer(channel, outcome)``, if given, hears the fate of every reply (per-channel
    metrics); ``counters`` hold the totals.
    """

    def __init__(
        self,
        send: SendFn | None,
        clock: Clock,
        *,
        limits: SendLimits | None = None,
        sleep: SleepFn = asyncio.sleep,
        observer: Observer | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._sleep = sleep
        self._observer = observer
        self.schedule = SendSchedule(limits, observer)
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def counters(self) -> OutboxCounters:
        return self.schedule.counters

    @property
    def pending(self) -> int:
        return self.schedule.pending

    def set_role(self, channel: str, role: BotRole) -> None:
        """Tell the outbox what the bot is in ``channel`` (USERSTATE); default NONE."""
        self.schedule.set_role(channel, role)
        self._wakeup.set()

    def forget(self, channel: str) -> None:
        self.schedule.forget(channel)
        self._wakeup.set()

    def room(self, channel: str) -> Room:
        """The send budget left for ``channel`` now (see ``SendSchedule.room``)."""
        return self.schedule.room(channel, self._clock.monotonic())

    def submit(self, reply: Reply) -> bool:
        """Queue one reply; False if it was dropped at once (stale or queue full)."""
        result = self.schedule.add(reply, self._clock.monotonic())
        if result != "queued":
            log.info("chat_reply_dropped", channel=reply.channel, reason=result)
            return False
        self._idle.clear()
        self._wakeup.set()
        return True

    def submit_all(self, replies: Iterable[Reply]) -> None:
        for reply in replies:
            self.submit(reply)

    def start(self, send: SendFn | None = None) -> None:
        """Start sending; ``send`` (the chat client's) may be given here, once the client
        that needs this outbox exists."""
        if send is not None:
            self._send = send
        if self._send is None:
            raise RuntimeError("the outbox has nothing to send with")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump(), name="outbox")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Until nothing is queued or being sent (tests, graceful stop)."""
        await self._idle.wait()

    async def _pump(self) -> None:
        while True:
            now = self._clock.monotonic()
            outgoing, wake = self.schedule.next(now)
            if outgoing is not None:
                await self._deliver(outgoing)
                continue
            if wake is None:
                self._idle.set()
            self._wakeup.clear()
            await self._wait(None if wake is None else max(0.0, wake - now))

    async def _deliver(self, outgoing: Outgoing) -> None:
        outcome: Outcome = "send_failed"
        try:
            send = self._send
            if send is None:
                raise RuntimeError("the outbox has nothing to send with")
            await send(outgoing.channel, outgoing.text, outgoing.reply_to)
            outcome = "sent"
        except Exception as exc:
            log.warning("chat_send_failed", channel=outgoing.channel, error=type(exc).__name__)
        finally:
            # Recorded even if the send failed or was cancelled: it may have reached Twitch.
            self.schedule.sent(outgoing, self._clock.monotonic())
        if outcome == "sent":
            self.counters.sent += 1
        else:
            self.counters.send_failed += 1
        if self._observer is not None:
            self._observer(outgoing.channel, outcome)

    async def _wait(self, seconds: float | None) -> None:
        """Until a new reply or role arrives, or ``seconds`` pass."""
        if seconds is None:
            await self._wakeup.wait()
            return
        waiter = asyncio.ensure_future(self._wakeup.wait())
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)
