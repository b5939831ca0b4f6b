"""Replies, and the one place that says in chat why a command was refused.

Commands raise errors that carry data: the domain's (``loyaltybot.errors``) and the chat
layer's own, defined here. ``explain`` turns each into one short sentence. Nothing else
is ever shown: an unexpected exception becomes ``APOLOGY`` and a log event, never its
``str()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyaltybot.chat.message import Permission, clean_text
from loyaltybot.points.amounts import format_points
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    InvalidAmount,
    LoyaltyError,
    SelfTransfer,
    UnknownChannel,
    UnknownViewer,
)
from loyaltybot.settings import ChannelSettings

MAX_REPLY_CHARS = 500  # Twitch's limit; twitchio refuses to send more
APOLOGY = "sorry, something went wrong on my side. Please try again later."
_QUOTE_CHARS = 25


@dataclass(frozen=True, slots=True)
class Reply:
    """One chat line to send. ``created_at`` is the monotonic time of the command it
    answers: the outbox drops it if it cannot leave within 30 s of that."""

    channel: str
    text: str
    reply_to: str | None
    created_at: float


def cut(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """One line of at most ``limit`` characters (an ellipsis marks a cut)."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def quote(text: str) -> str:
    """A piece of what the user typed, safe and short enough to repeat back."""
    return '"' + cut(text, _QUOTE_CHARS) + '"'


def points_text(amount: int, settings: ChannelSettings) -> str:
    """1234 -> '1,234 cookies'; 1 -> '1 cookie'."""
    return f"{format_points(amount)} {settings.currency(amount)}"


def format_duration(seconds: int) -> str:
    """Watch time as people say it: '42 minutes', '3 hours 5 minutes', '2 days 4 hours'."""
    minutes = max(0, seconds) // 60
    if minutes == 0:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        parts = [_unit(days, "day"), _unit(hours, "hour")]
    else:
        parts = [_unit(hours, "hour"), _unit(minutes, "minute")]
    return " ".join(p for p in parts if p)


def _unit(value: int, name: str) -> str:
    if value == 0:
        return ""
    return f"{value:,} {name}" + ("" if value == 1 else "s")


# ---- chat-layer refusals --------------------------------------------------------------


class ChatError(Exception):
    """A command refused before or after the domain had its say; carries data only."""


class UsageError(ChatError):
    def __init__(self, usage: str) -> None:
        super().__init__(usage)
        self.usage = usage


class NotAllowed(ChatError):
    def __init__(self, command: str, permission: Permission) -> None:
        super().__init__(f"!{command} needs {permission.name}")
        self.command = command
        self.permission = permission


class InvalidLogin(ChatError):
    def __init__(self, text: str) -> None:
        super().__init__("not a login")
        self.text = text


class GiveTooLarge(ChatError):
    def __init__(self, amount: int, maximum: int) -> None:
        super().__init__(f"{amount} > {maximum}")
        self.amount = amount
        self.maximum = maximum


class OnCooldown(ChatError):
    """The sender must wait before doing this again (``!give``)."""

    def __init__(self, command: str, remaining: float) -> None:
        super().__init__(f"!{command} again in {remaining:.1f} s")
        self.command = command
        self.remaining = remaining


class TargetLacksPoints(ChatError):
    """``!removepoints`` asked for more than the target has."""

    def __init__(self, login: str, balance: int, requested: int) -> None:
        super().__init__(f"{login} has {balance} < {requested}")
        self.login = login
        self.balance = balance
        self.requested = requested


class TargetAtMaximum(ChatError):
    def __init__(self, login: str, balance: int) -> None:
        super().__init__(f"{login} is at the maximum")
        self.login = login
        self.balance = balance


def explain(exc: BaseException, settings: ChannelSettings) -> str:
    """Why a command failed, in one short sentence (without the @mention)."""
    plural = settings.currency_name_plural
    match exc:
        case InvalidAmount():
            return f"{quote(exc.text)} is not a valid amount: it {exc.reason}."
        case InsufficientPoints():
            return f"you only have {points_text(exc.balance, settings)}."
        case TargetLacksPoints():
            return (
                f"{exc.login} only has {points_text(exc.balance, settings)}, "
                "so nothing was removed."
            )
        case TargetAtMaximum():
            return f"{exc.login} already has the most {plural} anyone can hold."
        case BalanceTooHigh():
            return f"that balance is already at the most {plural} anyone can hold."
        case UnknownViewer():
            return f"I haven't seen {exc.login} in this channel yet."
        case SelfTransfer():
            return f"you can't give {plural} to yourself."
        case UsageError():
            return f"usage: {exc.usage}"
        case NotAllowed():
            who = "the broadcaster" if exc.permission is Permission.BROADCASTER else "moderators"
            return f"only {who} can use !{exc.command}."
        case InvalidLogin():
            return f"{quote(exc.text)} is not a Twitch username."
        case GiveTooLarge():
            return f"you can give at most {points_text(exc.maximum, settings)} at a time."
        case OnCooldown():
            return f"please wait {_seconds(exc.remaining)} before using !{exc.command} again."
        case AlreadyApplied():
            return "that was already done."
        case UnknownChannel():
            return "this channel is not set up for points."
        case LoyaltyError() | ChatError():
            return APOLOGY
        case _:
            return APOLOGY


def _seconds(remaining: float) -> str:
    whole = max(1, int(-(-remaining // 1)))  # round up: "wait 0 s" would be a lie
    if whole < 120:
        return f"{whole} s"
    return f"{-(-whole // 60)} min"
