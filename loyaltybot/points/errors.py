"""Typed domain errors. They carry data; chat, web and CLI each turn them into words.

Never show ``str(exc)`` of an unexpected exception to a user; these classes are the
ones that are safe to render.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base class of every error a user action can cause."""


class InvalidAmount(LoyaltyError, ValueError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid amount {text!r}: {reason}")
        self.text = text
        self.reason = reason


class InsufficientPoints(LoyaltyError):
    def __init__(self, balance: int, requested: int) -> None:
        super().__init__(f"balance {balance} is less than {requested}")
        self.balance = balance
        self.requested = requested


class BalanceTooHigh(LoyaltyError, OverflowError):
    """A credit that cannot apply even one point: the balance is at the maximum."""

    def __init__(self, balance: int, requested: int, maximum: int) -> None:
        super().__init__(f"balance {balance} cannot take {requested} more (max {maximum})")
        self.balance = balance
        self.requested = requested
        self.maximum = maximum


class UnknownViewer(LoyaltyError, LookupError):
    def __init__(self, login: str, channel: str | None = None) -> None:
        where = f" of #{channel}" if channel else ""
        super().__init__(f"{login!r} is not a known viewer{where}")
        self.login = login
        self.channel = channel


class UnknownChannel(LoyaltyError, LookupError):
    def __init__(self, channel: str) -> None:
        super().__init__(f"unknown channel {channel!r}")
        self.channel = channel


class SelfTransfer(LoyaltyError):
    def __init__(self, login: str) -> None:
        super().__init__(f"{login} cannot give points to themselves")
        self.login = login


class AlreadyApplied(LoyaltyError):
    """An operation with this idempotency key (tick, event, import row) already happened."""

    def __init__(self, key: str) -> None:
        super().__init__(f"already applied: {key}")
        self.key = key


class SchemaTooNew(LoyaltyError):
    def __init__(self, database_version: int, code_version: int) -> None:
        super().__init__(
            f"the database is at schema version {database_version}, but this loyaltybot "
            f"only knows up to {code_version}: upgrade loyaltybot before using this database"
        )
        self.database_version = database_version
        self.code_version = code_version


class UnknownRound(LoyaltyError, LookupError):
    """No escrow round has this id (in this channel)."""

    def __init__(self, round_id: int) -> None:
        super().__init__(f"no escrow round {round_id}")
        self.round_id = round_id


class RoundNotOpen(LoyaltyError):
    """A stake, payout or refund for a round that was settled already: nothing changes."""

    def __init__(self, round_id: int, state: str) -> None:
        super().__init__(f"escrow round {round_id} is {state}, not open")
        self.round_id = round_id
        self.state = state


class StakeOptionMismatch(LoyaltyError):
    """A viewer's stake in a round is on one option; another stake must be on the same."""

    def __init__(self, round_id: int, held: int | None, requested: int | None) -> None:
        super().__init__(f"stake in round {round_id} is on option {held}, not {requested}")
        self.round_id = round_id
        self.held = held
        self.requested = requested
