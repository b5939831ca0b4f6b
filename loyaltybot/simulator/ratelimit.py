"""Twitch's chat send limits, measured per account the way the reference states them.

- 20 messages per 30 s for an account, counted over every channel; in channels where
  the account is broadcaster, moderator or VIP it may go on until 100 per 30 s (those
  messages still count toward the 20);
- 1 message per second per channel where the account is none of those;
- a message identical to the previous one in that channel less than 30 s ago is refused
  (``msg_duplicate``) where the account is none of those.

Windows slide (the strictest reading). Only accepted messages count. A refused message
is dropped, as Twitch does; optionally (``lockout``) the account is then ignored in
unprivileged channels for that long, like Twitch's one-hour penalty.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

RULE_ACCOUNT = "account_20_per_30s"
RULE_ACCOUNT_PRIVILEGED = "account_100_per_30s"
RULE_CHANNEL = "channel_1_per_second"
RULE_LOCKOUT = "locked_out"
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class RateViolation:
    """One message the account sent over a limit (it was dropped)."""

    at: float  # monotonic seconds, when it arrived
    login: str
    channel: str
    rule: str  # one of the RULE_* names
    limit: int  # messages allowed in the window
    window: float  # seconds
    count: int  # messages already accepted in the window when this one came
    text: str
    conn_id: int


class SendLimits:
    def __init__(
        self,
        *,
        regular: int = 20,
        privileged: int = 100,
        window: float = 30.0,
        per_channel_interval: float = 1.0,
        duplicate_window: float = 30.0,
        lockout: float = 0.0,
    ) -> None:
        self.regular = regular
        self.privileged = privileged
        self.window = window
        self.per_channel_interval = per_channel_interval
        self.duplicate_window = duplicate_window
        self.lockout = lockout
        self._accepted: dict[str, deque[float]] = {}
        self._last: dict[tuple[str, str], tuple[float, str]] = {}
        self._locked_until: dict[str, float] = {}

    def _recent(self, login: str, now: float) -> deque[float]:
        times = self._accepted.setdefault(login, deque())
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def check(
        self, login: str, channel: str, privileged: bool, now: float, text: str
    ) -> tuple[str, int, int] | None:
        """None if the message may go; else (rule, limit, count) for the refusal."""
        count = len(self._recent(login, now))
        if not privileged and self._locked_until.get(login, float("-inf")) > now:
            return RULE_LOCKOUT, self.regular, count
        if privileged:
            if count >= self.privileged:
                return RULE_ACCOUNT_PRIVILEGED, self.privileged, count
            return None
        if count >= self.regular:
            return RULE_ACCOUNT, self.regular, count
        last = self._last.get((login, channel))
        if last is not None:
            last_at, last_text = last
            if now - last_at < self.per_channel_interval:
                return RULE_CHANNEL, 1, 1
            if last_text == text and now - last_at < self.duplicate_window:
                return DUPLICATE, 1, 1
        return None

    def accept(self, login: str, channel: str, now: float, text: str) -> None:
        self._recent(login, now).append(now)
        self._last[(login, channel)] = (now, text)

    def penalise(self, login: str, now: float) -> None:
        if self.lockout > 0:
            self._locked_until[login] = now + self.lockout
