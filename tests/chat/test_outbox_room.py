"""``room``: what the send limits leave for a channel, so a feature may stay silent in a burst."""

from __future__ import annotations

from loyaltybot.chat.outbox import BotRole, Outgoing, Room, SendSchedule
from loyaltybot.chat.replies import Reply


def sent(schedule: SendSchedule, channel: str, at: float) -> None:
    schedule.sent(Outgoing(channel, f"line {at}", None, at), at)


def test_a_privileged_channel_has_the_window_minus_what_was_sent_and_queued() -> None:
    """Moderator: 100 per window; sends and queued replies (any channel) both count."""
    schedule = SendSchedule()
    schedule.set_role("alice", BotRole.MODERATOR)
    assert schedule.room("alice", 0.0) == Room(100, 100)
    for i in range(30):
        sent(schedule, "alice", i * 0.01)
    schedule.add(Reply("alice", "queued", None, 1.0), 1.0)
    schedule.add(Reply("bob", "queued", None, 1.0), 1.0)
    assert schedule.room("alice", 1.0).spare == 68
    assert schedule.room("alice", 40.0).spare == 98  # the sends left the window


def test_an_unprivileged_channel_has_room_only_when_a_line_would_leave_at_once() -> None:
    """No role: 20 per window, and nothing while the 1 s gap or its own queue holds a line."""
    schedule = SendSchedule()
    assert schedule.room("bob", 0.0) == Room(20, 20)
    sent(schedule, "bob", 0.0)
    assert schedule.room("bob", 0.5).spare == 0  # inside the per-channel gap
    assert schedule.room("bob", 2.0).spare == 19
    schedule.add(Reply("bob", "waiting", None, 2.0), 2.0)
    assert schedule.room("bob", 2.0).spare == 0


def test_a_full_window_leaves_no_room() -> None:
    """Twenty sends to any channel in the window: no room where the bot is not privileged."""
    schedule = SendSchedule()
    schedule.set_role("alice", BotRole.MODERATOR)
    for i in range(20):
        sent(schedule, "alice", i * 0.1)
    assert schedule.room("carol", 5.0).spare == 0
    assert schedule.room("alice", 5.0).spare == 80
