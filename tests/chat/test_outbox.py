"""The outbox keeps Twitch's send limits, serves channels fairly and drops stale replies."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyaltybot.chat.outbox import BotRole, Outbox, SendLimits, SendSchedule
from loyaltybot.chat.replies import MAX_REPLY_CHARS, Reply
from loyaltybot.clock import FakeClock, SystemClock

LIMITS = SendLimits()


@dataclass(frozen=True)
class Sent:
    at: float
    channel: str
    text: str
    reply_to: str | None


def assert_within_twitch_limits(
    sends: Iterable[Sent], privileged: set[str], *, jitter: float = 0.0, gap_jitter: float = 0.0
) -> None:
    """A reference check of twitch-reference §1.10, written independently of the outbox.

    ``jitter`` (``gap_jitter`` for the 1 s rule) stretches every interval, as if any
    message could reach Twitch that much later than the one before it: the outbox's
    margins must absorb it.
    """
    log = sorted(sends, key=lambda s: s.at)
    window = 30.0 + jitter
    for i, send in enumerate(log):
        inside = [s for s in log[: i + 1] if s.at > send.at - window]
        assert len(inside) <= 100, f"{len(inside)} messages in 30 s at t={send.at}"
        if send.channel not in privileged:
            assert len(inside) <= 20, f"{len(inside)} messages in 30 s to #{send.channel}"
    by_channel: dict[str, list[float]] = {}
    for send in log:
        by_channel.setdefault(send.channel, []).append(send.at)
    for channel, times in by_channel.items():
        if channel in privileged:
            continue
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 1.0 + gap_jitter for gap in gaps), f"#{channel} got 2 messages in 1 s"


class Recorder:
    """A fake Twitch that writes down when each line arrived."""

    def __init__(self, clock: FakeClock | SystemClock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.fail_next = 0

    async def send(self, channel: str, text: str, reply_to: str | None) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionResetError("socket closed")
        self.sent.append(Sent(self.clock.monotonic(), channel, text, reply_to))

    def channels(self) -> list[str]:
        return [s.channel for s in self.sent]


def virtual_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """Sleeping moves the fake clock: 30 s of sending runs in milliseconds."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


def reply(channel: str, n: int, created_at: float, text: str | None = None) -> Reply:
    return Reply(channel, text or f"reply {n} in {channel}", f"msg-{channel}-{n}", created_at)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder(clock: FakeClock) -> Recorder:
    return Recorder(clock)


@pytest.fixture
async def outbox(clock: FakeClock, recorder: Recorder) -> AsyncIterator[Outbox]:
    box = Outbox(recorder.send, clock, sleep=virtual_sleep(clock))
    yield box
    await box.close()


async def run_until_idle(outbox: Outbox) -> None:
    outbox.start()
    await asyncio.wait_for(outbox.wait_idle(), timeout=10)


# ---- the burst ------------------------------------------------------------------------------


async def test_burst_of_500_never_breaks_a_limit(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """500 replies at once over 6 channels (2 privileged): every limit holds, all accounted."""
    privileged = {"mod_here", "vip_here"}
    outbox.set_role("mod_here", BotRole.MODERATOR)
    outbox.set_role("vip_here", BotRole.VIP)
    channels = ["mod_here", "vip_here", "plain1", "plain2", "plain3", "plain4"]
    start = clock.monotonic()
    for n in range(500):
        outbox.submit(reply(channels[n % len(channels)], n, start))
    await run_until_idle(outbox)
    counters = outbox.counters
    assert counters.sent == len(recorder.sent) > 0
    assert counters.sent + counters.dropped_stale + counters.dropped_overflow == 500
    assert_within_twitch_limits(recorder.sent, privileged, jitter=1.9, gap_jitter=0.45)
    assert all(s.at - start < 30 for s in recorder.sent)
    assert {s.channel for s in recorder.sent} == set(channels)
    assert outbox.pending == 0


async def test_unprivileged_burst_is_paced(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """In one plain channel: one line per 1.5 s; what cannot leave within 30 s is dropped."""
    start = clock.monotonic()
    for n in range(25):
        outbox.submit(reply("plain", n, start))
    await run_until_idle(outbox)
    times = [s.at - start for s in recorder.sent]
    assert times == pytest.approx([1.5 * k for k in range(20)])
    assert (outbox.counters.sent, outbox.counters.dropped_stale) == (20, 5)
    assert [s.text for s in recorder.sent] == [f"reply {n} in plain" for n in range(20)]


async def test_account_limit_of_20_with_margin(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """The 21st line to plain channels waits for the 30 s window plus its margin."""
    channels = [f"plain{k}" for k in range(25)]
    start = clock.monotonic()
    for n, channel in enumerate(channels):
        outbox.submit(reply(channel, n, start))
    await run_until_idle(outbox)
    assert len(recorder.sent) == 20  # the rest went stale at +30 s, before +32 s
    assert all(s.at == start for s in recorder.sent)
    assert outbox.counters.dropped_stale == 5

    later = clock.monotonic()
    outbox.submit(reply("plain0", 99, later))
    await asyncio.wait_for(outbox.wait_idle(), timeout=10)
    assert recorder.sent[-1].at == start + LIMITS.window + LIMITS.window_margin


async def test_privileged_channel_may_send_100(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """As moderator the bot sends 100 per window with no per-second gap, then waits."""
    outbox.set_role("mine", BotRole.BROADCASTER)
    start = clock.monotonic()
    for n in range(100):
        outbox.submit(reply("mine", n, start))
    await run_until_idle(outbox)
    assert len(recorder.sent) == 100
    assert recorder.sent[-1].at == start
    clock.advance(10)
    outbox.submit(reply("mine", 100, clock.monotonic()))
    outbox.submit(reply("plain", 101, clock.monotonic()))
    await asyncio.wait_for(outbox.wait_idle(), timeout=10)
    assert [s.at - start for s in recorder.sent[100:]] == [32.0, 32.0]
    assert_within_twitch_limits(recorder.sent, {"mine"})


async def test_role_change_applies_to_the_next_send(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """Losing moderator status drops the channel back to the plain limits at once."""
    outbox.set_role("chan", BotRole.MODERATOR)
    start = clock.monotonic()
    for n in range(3):
        outbox.submit(reply("chan", n, start))
    await run_until_idle(outbox)
    assert [s.at for s in recorder.sent] == [start] * 3
    outbox.set_role("chan", BotRole.NONE)
    outbox.submit(reply("chan", 3, clock.monotonic()))
    await asyncio.wait_for(outbox.wait_idle(), timeout=10)
    assert recorder.sent[-1].at == start + LIMITS.channel_interval + LIMITS.channel_margin


# ---- fairness -------------------------------------------------------------------------------


async def test_channels_take_turns(outbox: Outbox, recorder: Recorder, clock: FakeClock) -> None:
    """A busy channel does not make a quiet one wait behind its whole queue."""
    for channel in ("busy", "quiet", "other"):
        outbox.set_role(channel, BotRole.MODERATOR)
    now = clock.monotonic()
    for n in range(50):
        outbox.submit(reply("busy", n, now))
    for n in range(3):
        outbox.submit(reply("quiet", n, now))
    outbox.submit(reply("other", 0, now))
    await run_until_idle(outbox)
    assert recorder.channels()[:7] == ["busy", "quiet", "other", "busy", "quiet", "busy", "quiet"]
    assert recorder.channels()[7:] == ["busy"] * 47


async def test_plain_channels_take_turns_within_the_budget(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """With the 20-line budget shared, a quiet plain channel is served early, not last."""
    now = clock.monotonic()
    for n in range(30):
        outbox.submit(reply("busy", n, now))
    outbox.submit(reply("quiet", 0, now + 5))
    await run_until_idle(outbox)
    assert recorder.channels().index("quiet") <= 1
    assert_within_twitch_limits(recorder.sent, set())


# ---- staleness, bounds, text ---------------------------------------------------------------


async def test_reply_already_stale_is_dropped_and_counted(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """A reply whose command is 30 s old is never sent."""
    assert outbox.submit(reply("chan", 0, clock.monotonic() - 30)) is False
    assert outbox.submit(reply("chan", 1, clock.monotonic() - 29)) is True
    await run_until_idle(outbox)
    assert [s.text for s in recorder.sent] == ["reply 1 in chan"]
    assert (outbox.counters.sent, outbox.counters.dropped_stale) == (1, 1)


async def test_queue_per_channel_is_bounded(
    clock: FakeClock, recorder: Recorder
) -> None:
    """Past the per-channel bound, new replies are dropped and counted as overflow."""
    box = Outbox(recorder.send, clock, limits=SendLimits(per_channel_queue=10),
                 sleep=virtual_sleep(clock))
    now = clock.monotonic()
    accepted = [box.submit(reply("chan", n, now)) for n in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert (box.pending, box.counters.dropped_overflow) == (10, 5)
    assert box.submit(reply("other", 0, now))  # other channels have their own room
    await box.close()


async def test_long_text_is_cut_to_500(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """Nothing longer than 500 characters ever reaches Twitch (twitchio would refuse it)."""
    outbox.submit(reply("chan", 0, clock.monotonic(), text="y" * 900))
    await run_until_idle(outbox)
    [sent] = recorder.sent
    assert len(sent.text) == MAX_REPLY_CHARS
    assert sent.text.endswith("…")


async def test_identical_lines_are_made_distinct(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """Twitch drops a line identical to the previous one within 30 s; the outbox varies it."""
    outbox.set_role("chan", BotRole.MODERATOR)
    now = clock.monotonic()
    for n in range(3):
        outbox.submit(reply("chan", n, now, text="top cookies: #1 bob"))
    outbox.submit(reply("chan", 3, now, text="x" * 600))
    outbox.submit(reply("chan", 4, now, text="x" * 600))
    await run_until_idle(outbox)
    texts = [s.text for s in recorder.sent]
    assert texts[0] == texts[2] == "top cookies: #1 bob"
    assert texts[1] == "top cookies: #1 bob \U000e0000"
    assert texts[3] != texts[4]
    assert max(map(len, texts)) <= MAX_REPLY_CHARS


async def test_send_failure_is_counted_and_the_pump_goes_on(
    outbox: Outbox, recorder: Recorder, clock: FakeClock
) -> None:
    """A failed send is counted (and still spends its slot); later replies still go out."""
    recorder.fail_next = 1
    outbox.set_role("chan", BotRole.MODERATOR)
    for n in range(3):
        outbox.submit(reply("chan", n, clock.monotonic()))
    await run_until_idle(outbox)
    assert [s.text for s in recorder.sent] == ["reply 1 in chan", "reply 2 in chan"]
    assert (outbox.counters.sent, outbox.counters.send_failed) == (2, 1)
    assert recorder.sent[0].reply_to == "msg-chan-1"


async def test_forgetting_a_channel_drops_its_queue(outbox: Outbox, clock: FakeClock) -> None:
    """Parting a channel drops what was queued for it (counted), and its role."""
    outbox.set_role("gone", BotRole.MODERATOR)
    for n in range(4):
        outbox.submit(reply("gone", n, clock.monotonic()))
    outbox.forget("gone")
    assert (outbox.pending, outbox.counters.dropped_parted) == (0, 4)
    assert outbox.schedule.role("gone") is BotRole.NONE


async def test_real_clock_pump_waits_and_closes() -> None:
    """On the real clock, the pump sleeps until the window allows the next line."""
    clock = SystemClock()
    recorder = Recorder(clock)
    limits = SendLimits(window=0.2, account=2, privileged=2, window_margin=0.05,
                        channel_interval=0.0, channel_margin=0.0)
    box = Outbox(recorder.send, clock, limits=limits)
    box.start()
    for n in range(3):
        box.submit(reply("chan", n, clock.monotonic()))
    await asyncio.wait_for(box.wait_idle(), timeout=5)
    await box.close()
    times = [s.at for s in recorder.sent]
    assert len(times) == 3
    assert times[2] - times[0] >= 0.25


# ---- property: any traffic, any roles -------------------------------------------------------


def simulate(
    schedule: SendSchedule, arrivals: list[tuple[float, str]], latency: float = 0.0
) -> list[Sent]:
    """Drive the pure schedule as the pump would, jumping time to the next event."""
    arrivals = sorted(arrivals)
    sends: list[Sent] = []
    now, i = 0.0, 0
    while True:
        while i < len(arrivals) and arrivals[i][0] <= now:
            at, channel = arrivals[i]
            schedule.add(Reply(channel, f"line {i}", None, at), now)
            i += 1
        outgoing, wake = schedule.next(now)
        if outgoing is not None:
            assert now - outgoing.created_at < schedule.limits.max_age
            sends.append(Sent(now, outgoing.channel, outgoing.text, None))
            now += latency
            schedule.sent(outgoing, now)
            continue
        next_arrival = arrivals[i][0] if i < len(arrivals) else None
        upcoming = [t for t in (wake, next_arrival) if t is not None]
        if not upcoming:
            return sends
        now = max(now, min(upcoming))


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.floats(0, 300, allow_nan=False), st.sampled_from(["a", "b", "c", "d", "e"])),
        max_size=500,
    ),
    privileged=st.sets(st.sampled_from(["a", "b", "c", "d", "e"])),
    latency=st.sampled_from([0.0, 0.01, 0.3]),
)
def test_any_traffic_stays_within_limits(
    arrivals: list[tuple[float, str]], privileged: set[str], latency: float
) -> None:
    """Whatever arrives, whenever, with any roles: limits hold, every reply is accounted for."""
    schedule = SendSchedule()
    for channel in privileged:
        schedule.set_role(channel, BotRole.MODERATOR)
    sends = simulate(schedule, arrivals, latency)
    assert_within_twitch_limits(sends, privileged, jitter=1.9, gap_jitter=0.45)
    counters = schedule.counters
    assert len(sends) + counters.dropped_stale + counters.dropped_overflow == len(arrivals)
    assert schedule.pending == 0


async def test_observer_sees_every_outcome_per_channel(clock: FakeClock) -> None:
    """Each reply's fate reaches the observer with its channel (for labelled metrics)."""
    recorder = Recorder(clock)
    seen: list[tuple[str, str]] = []
    box = Outbox(recorder.send, clock, limits=SendLimits(per_channel_queue=2),
                 sleep=virtual_sleep(clock), observer=lambda c, o: seen.append((c, o)))
    recorder.fail_next = 1
    now = clock.monotonic()
    box.submit(reply("a", 0, now - 31))
    for n in range(3):
        box.submit(reply("a", n, now))
    box.submit(reply("b", 0, now))
    box.forget("b")
    box.start()
    await asyncio.wait_for(box.wait_idle(), timeout=10)
    await box.close()
    assert seen == [("a", "stale"), ("a", "queue_full"), ("b", "parted"),
                    ("a", "send_failed"), ("a", "sent")]
    counters = box.counters
    assert (counters.sent, counters.send_failed, counters.dropped_stale,
            counters.dropped_overflow, counters.dropped_parted) == (1, 1, 1, 1, 1)


def test_sustained_load_uses_the_budget() -> None:
    """Under steady demand the schedule is not needlessly slow: ~20 lines per 32 s."""
    schedule = SendSchedule()
    arrivals = [(k * 0.5, f"c{k % 3}") for k in range(600)]  # 300 s of two lines a second
    sends = simulate(schedule, arrivals)
    assert len(sends) >= 20 * (300 // 32)
    assert_within_twitch_limits(sends, set(), jitter=1.9, gap_jitter=0.45)
