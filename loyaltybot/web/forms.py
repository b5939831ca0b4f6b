"""Dashboard forms, as pure functions: strings a person typed in, validated values or
errors out. No I/O here, so every rule is tested without a server.

The settings form validates with the same ``ChannelSettings`` model as config.toml (in
lax mode, because a form sends strings), so the file and the form accept the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.settings import SETTING_KEYS, ChannelSettings, StoredSettings

MAX_REASON = 200


@dataclass(frozen=True)
class FieldText:
    label: str
    help: str  # one line under the field
    group: str
    unit: str = ""


def _f(label: str, hint: str, group: str, unit: str = "") -> FieldText:
    return FieldText(label, hint, group, unit)


_C, _E, _K, _B = "Currency", "Earning", "Commands", "Event bonuses"
_FIELDS: dict[str, FieldText] = {
    "currency_name": _f("Currency name", "One of them, e.g. cookie; also a command: !cookie", _C),
    "currency_name_plural": _f("Plural", "Several of them, e.g. cookies", _C),
    "points_per_interval": _f("Points per interval", "What each present viewer earns", _E),
    "interval_minutes": _f("Interval", "How often viewers earn", _E, "minutes"),
    "subscriber_multiplier": _f(
        "Subscriber multiplier", "Subscribers earn points × this, rounded down", _E, "×"
    ),
    "active_bonus": _f("Chat bonus", "Extra per interval for viewers who chatted in it", _E),
    "enable_offline": _f("Earn while offline", "Also earn when the stream is not live", _E),
    "min_watchtime_minutes": _f(
        "Minimum watch time", "Viewers earn only after watching this long", _E, "minutes"
    ),
    "give_max": _f("!give maximum", "The most one !give may transfer", _K),
    "give_cooldown_seconds": _f("!give cooldown", "Per sender", _K, "seconds"),
    "command_cooldown_seconds": _f(
        "Command cooldown", "Per viewer, for !points and the other read commands", _K, "seconds"
    ),
    "follow_bonus": _f("Follow", "Once, when someone follows", _B),
    "sub_bonus_tier1": _f("Sub, tier 1", "Per subscription or resub", _B),
    "sub_bonus_tier2": _f("Sub, tier 2", "Per subscription or resub", _B),
    "sub_bonus_tier3": _f("Sub, tier 3", "Per subscription or resub", _B),
    "gift_bonus": _f("Gifted sub", "To the gifter, per gift", _B),
    "cheer_bonus_per_100": _f("Cheer", "Per 100 bits", _B),
    "raid_bonus": _f("Raid", "To the raiding broadcaster", _B),
    "giveaway_ticket_cost": _f(
        "Ticket cost", "Per giveaway ticket; 0 = free entry, one ticket each", "Giveaways"
    ),
    "giveaway_max_tickets": _f("Tickets per viewer", "The most one viewer may hold", "Giveaways"),
    "giveaway_subscriber_luck": _f(
        "Subscriber luck", "A subscriber's ticket weighs this much (1 to 10)", "Giveaways", "×"
    ),
    "contest_min_bet": _f("Smallest bet", "A viewer's first bet on a contest", "Contests"),
    "contest_max_bet": _f("Largest bet", "Per viewer and contest, in total", "Contests"),
    "contest_close_after_seconds": _f(
        "Close after", "Bets close this long after opening; 0 = when a moderator closes",
        "Contests", "seconds",
    ),
}

GROUPS = ("Currency", "Earning", "Commands", "Event bonuses", "Giveaways", "Contests", "Other")


def field_info(key: str) -> FieldText:
    return _FIELDS.get(key) or FieldText(key.replace("_", " ").capitalize(), "", "Other")


def is_bool(key: str) -> bool:
    return ChannelSettings.model_fields[key].annotation is bool


def is_int(key: str) -> bool:
    return ChannelSettings.model_fields[key].annotation is int


def display_value(value: Any) -> str:
    """How a stored value reads in a text box: 5.0 -> '5', 1.5 -> '1.5'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class SettingsForm:
    """The outcome of a submitted settings form."""

    typed: dict[str, str]  # what the person typed, to show again on error
    errors: dict[str, str] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)  # validated, only what differs

    @property
    def ok(self) -> bool:
        return not self.errors


_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")


def parse_settings(form: Mapping[str, str], stored: StoredSettings) -> SettingsForm:
    """Validate the dashboard-owned fields of a submitted form against the current values.

    A checkbox that is absent means false. A key the file owns is an error if the form
    tries to change it (the page never offers that; a stale or forged form might).
    """
    current = stored.values.model_dump()
    typed: dict[str, str] = {}
    merged: dict[str, Any] = dict(current)
    errors: dict[str, str] = {}
    for key in SETTING_KEYS:
        owned_by_file = stored.owner(key) == "file"
        if is_bool(key):
            if owned_by_file:
                if key in form and _truthy(form[key]) != current[key]:
                    errors[key] = "is set in config.toml; change it there"
                continue
            raw = "true" if key in form and _truthy(form[key]) else "false"
        else:
            if key not in form:
                if not owned_by_file:
                    errors[key] = "is missing from the form; reload the page"
                continue
            raw = form[key].strip()
            if owned_by_file:
                if raw != display_value(current[key]):
                    errors[key] = "is set in config.toml; change it there"
                continue
        typed[key] = raw
        merged[key] = raw.replace(",", "") if is_int(key) and _GROUPED.fullmatch(raw) else raw
    try:
        validated = ChannelSettings.model_validate(merged, strict=False)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            key = str(error["loc"][0]) if error["loc"] else ""
            errors.setdefault(key, setting_error(error))
        return SettingsForm(typed, errors)
    if errors:
        return SettingsForm(typed, errors)
    new = validated.model_dump()
    changes = {k: new[k] for k in typed if new[k] != current[k]}
    return SettingsForm(typed, {}, changes)


def _truthy(raw: str) -> bool:
    return raw.strip().lower() in ("on", "true", "1", "yes")


def setting_error(error: ErrorDetails) -> str:
    """One short phrase per validation problem, for the field it belongs to."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number, like 10"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number, like 1.5"
    if kind in ("bool_parsing", "bool_type"):
        return "must be on or off"
    if kind == "string_pattern_mismatch":
        return "must be one word: letters, digits or _, at most 25"
    if kind == "greater_than":
        return f"must be more than {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx['ge'])}"
    if kind == "less_than":
        return f"must be less than {_number(ctx['lt'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    if kind == "missing":
        return "is required"
    return "is not valid here"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


# ---- adjusting a viewer's points ------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    direction: str  # "add" | "remove"
    amount: int
    reason: str


@dataclass
class AdjustForm:
    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    value: Adjustment | None = None


def parse_adjustment(form: Mapping[str, str]) -> AdjustForm:
    """Add or remove points: a direction, an amount as chat accepts it, and a reason."""
    typed = {k: form.get(k, "").strip() for k in ("direction", "amount", "reason")}
    errors: dict[str, str] = {}
    direction = typed["direction"]
    if direction not in ("add", "remove"):
        errors["direction"] = "choose add or remove"
    amount = 0
    try:
        amount = parse_amount(typed["amount"])
    except InvalidAmount as exc:
        errors["amount"] = exc.reason
    reason = " ".join(typed["reason"].split())
    if not reason:
        errors["reason"] = "say why, for the log"
    elif len(reason) > MAX_REASON:
        errors["reason"] = f"at most {MAX_REASON} characters"
    if errors:
        return AdjustForm(typed, errors)
    return AdjustForm(typed, {}, Adjustment(direction, amount, reason))
