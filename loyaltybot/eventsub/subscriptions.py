"""Make sure the EventSub subscriptions the daemon needs exist (SPEC §6).

At start and on reload: list the webhook subscriptions (app token), create each missing
one for each channel, and leave every other subscription alone. One of ours that Twitch
has given up on (failed verification, revoked, too many failures) counts as missing: it
is deleted and created again. A subscription Twitch refuses (for example because the
broadcaster has not granted the scope) is reported and the rest go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from loyaltybot.eventsub.kinds import KINDS, Kind
from loyaltybot.eventsub.status import EventSubStatus, SubscriptionState
from loyaltybot.twitch.helix import Helix, HelixError, pages

log = structlog.get_logger(__name__)

HEALTHY = frozenset({"enabled", "webhook_callback_verification_pending"})
MAX_PAGES = 100


@dataclass(frozen=True, slots=True)
class Wanted:
    """One subscription a channel needs."""

    channel: str
    type: str
    version: str
    condition: Mapping[str, str]

    def body(self, callback: str, secret: str) -> dict[str, Any]:
        return {
            "type": self.type,
            "version": self.version,
            "condition": dict(self.condition),
            "transport": {"method": "webhook", "callback": callback, "secret": secret},
        }

    def matches(self, existing: Mapping[str, Any], callback: str) -> bool:
        """Same type, version, condition and callback (extra, empty condition keys such
        as ``reward_id: ""`` do not make a difference)."""
        transport = existing.get("transport") or {}
        condition = existing.get("condition") or {}
        if existing.get("type") != self.type or str(existing.get("version")) != self.version:
            return False
        if transport.get("method") != "webhook" or transport.get("callback") != callback:
            return False
        extra = {k: v for k, v in condition.items() if k not in self.condition and v}
        return not extra and all(condition.get(k) == v for k, v in self.condition.items())


def wanted(broadcasters: Mapping[str, str], kinds: Sequence[Kind] = KINDS) -> list[Wanted]:
    """What the daemon subscribes to, for channels given as login -> user id: by default
    every kind of event a feature may handle (``kinds.KINDS``)."""
    return [
        Wanted(channel, kind.type, kind.version, kind.condition(user_id))
        for channel, user_id in broadcasters.items()
        for kind in kinds
    ]


@dataclass
class SubscriptionReport:
    present: int = 0
    created: list[tuple[str, str]] = field(default_factory=list)  # (channel, type)
    replaced: int = 0  # dead ones of ours deleted before creating them again
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, type, why)

    @property
    def ok(self) -> bool:
        return not self.failed


async def list_subscriptions(helix: Helix) -> list[dict[str, Any]]:
    """Every subscription this client id has (all pages)."""
    found: list[dict[str, Any]] = []
    async with contextlib.aclosing(pages(helix, "/eventsub/subscriptions", ())) as listed:
        read = 0
        async for data in listed:
            found += [s for s in data if isinstance(s, dict)]
            read += 1
            if read >= MAX_PAGES:
                break
    return found


async def resolve_broadcasters(helix: Helix, logins: Iterable[str]) -> dict[str, str]:
    """Channel login -> Twitch user id; channels Twitch does not know are left out."""
    users = await helix.get_users(logins=sorted(set(logins)))
    return {user.login: user.id for user in users}


async def ensure_subscriptions(
    helix: Helix,
    *,
    callback: str,
    secret: str,
    broadcasters: Mapping[str, str],
    kinds: Sequence[Kind] = KINDS,
) -> SubscriptionReport:
    """Create what is missing for these channels (login -> user id); leave the rest.

    ``helix`` must use an app access token (client credentials): Twitch requires one
    for webhook subscriptions. The web server must already answer on ``callback``,
    because Twitch verifies each new subscription right away.

    Raises:
        HelixError: the subscriptions could not even be listed.
    """
    existing = await list_subscriptions(helix)
    report = SubscriptionReport()
    for want in wanted(broadcasters, kinds):
        same = [s for s in existing if want.matches(s, callback)]
        if any(s.get("status") in HEALTHY for s in same):
            report.present += 1
            continue
        for dead in same:
            await _delete(helix, dead, want, report)
        await _create(helix, want, callback, secret, report)
    log.info(
        "eventsub_subscriptions_checked",
        present=report.present,
        created=len(report.created),
        replaced=report.replaced,
        failed=len(report.failed),
    )
    return report


async def _delete(
    helix: Helix, dead: Mapping[str, Any], want: Wanted, report: SubscriptionReport
) -> None:
    try:
        await helix.request("DELETE", "/eventsub/subscriptions", params={"id": str(dead.get("id"))})
    except HelixError as exc:
        if exc.status != 404:
            log.warning("eventsub_subscription_not_deleted", type=want.type, reason=exc.message)
            return
    report.replaced += 1
    log.info(
        "eventsub_subscription_replaced",
        channel=want.channel,
        type=want.type,
        old_status=dead.get("status"),
    )


async def _create(
    helix: Helix, want: Wanted, callback: str, secret: str, report: SubscriptionReport
) -> None:
    try:
        await helix.request("POST", "/eventsub/subscriptions", json=want.body(callback, secret))
    except HelixError as exc:
        if exc.status == 409:  # created meanwhile (another instance, a race): it exists
            report.present += 1
            return
        report.failed.append((want.channel, want.type, exc.message))
        log.warning(
            "eventsub_subscription_failed",
            channel=want.channel,
            type=want.type,
            status=exc.status,
            reason=exc.message,
        )
        return
    report.created.append((want.channel, want.type))
    log.info("eventsub_subscription_created", channel=want.channel, type=want.type)


def callback_url(public_url: str, path: str) -> str:
    """Where Twitch must POST: the public URL joined with the webhook path."""
    return public_url.rstrip("/") + path


def describe(report: SubscriptionReport) -> Sequence[str]:
    """One line per failure, for the operator."""
    return [f"#{channel} {kind}: {why}" for channel, kind, why in report.failed]


def show(
    report: SubscriptionReport,
    broadcasters: Mapping[str, str],
    kinds: Sequence[Kind],
    status: EventSubStatus,
    now: float,
) -> None:
    """What the dashboard shows for webhook subscriptions after a check: each needed type
    is enabled (present or created) or failed, with Twitch's reason."""
    failed = {(channel, kind): why for channel, kind, why in report.failed}
    for channel in broadcasters:
        state = status.channel(channel)
        state.state = "subscribed" if not any(c == channel for c, _ in failed) else "incomplete"
        for kind in kinds:
            why = failed.get((channel, kind.type))
            state.subscriptions[kind.type] = SubscriptionState(
                kind.type, "failed" if why else "enabled", detail=why, at=now
            )
