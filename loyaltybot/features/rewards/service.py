"""Channel-point rewards (SPEC §6): a redemption's effect, and the rewards' SQL.

A redemption's whole effect happens in one transaction, the same one that records its
EventSub message id: the redemption row (keyed by Twitch's redemption id, so it happens
once even if Twitch sends it twice), the loyalty cost through the ledger, the action's
own change (points, title, vote, queue entry), the per-user cooldown, and the slow work
that follows (chat line, forward, Helix status) as jobs (``loyaltybot.db.jobs``, run by
``delivery``). The pure decisions are in ``rules``.

Twitch's status of a redemption is changed only when the bot owns the reward
(``owned_rewards``) and Twitch still holds it as unfulfilled.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from loyaltybot import settings
from loyaltybot.actions import titles
from loyaltybot.actions.delivery import enqueue_chat, enqueue_discord
from loyaltybot.actions.queue import NotWaiting, UnknownEntry
from loyaltybot.actions.text import (
    MAX_CHAT_CHARS,
    clean_text,
    discord_text,
    format_wait,
    render,
    template_values,
)
from loyaltybot.config import RewardConfig
from loyaltybot.db import Store, Tx, jobs, savepoint
from loyaltybot.eventsub.events import RedemptionAdded
from loyaltybot.features.rewards import channel_points
from loyaltybot.features.rewards.rules import (
    MAX_OPTIONS_PER_POLL,
    Status,
    match,
    normalize_option,
    reward_key,
)
from loyaltybot.points import ledger, viewers
from loyaltybot.points.amounts import format_points
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import BalanceTooHigh, InsufficientPoints
from loyaltybot.points.ledger import EntryType
from loyaltybot.twitch.helix import Helix

# Kinds of jobs this module creates (run by ``delivery``; chat lines and Discord messages
# are the core's: ``loyaltybot.actions.delivery``).
FORWARD: Final = "forward"
REDEMPTION_STATUS: Final = "redemption_status"
WEBHOOKS: Final = "reward"  # the origin of this feature's Discord webhooks


class UnknownRedemption(UnknownEntry):
    def __init__(self, channel: str, redemption_id: str) -> None:
        super().__init__(channel, redemption_id)
        self.redemption_id = redemption_id


class NotQueued(NotWaiting):
    """Approve or reject of a redemption that is not waiting (any more)."""

    def __init__(self, redemption_id: str, status: str) -> None:
        super().__init__(redemption_id, status)
        self.redemption_id = redemption_id


# ---- records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedemptionOutcome:
    """What one redemption did (for logs and tests)."""

    channel: str
    redemption_id: str
    reward: str
    action: str | None
    status: Status
    outcome: str
    twitch_status: str | None  # FULFILLED/CANCELED sent to Twitch, None if left alone


@dataclass(frozen=True, slots=True)
class RedemptionRecord:
    redemption_id: str
    broadcaster_id: str
    reward_id: str
    reward_title: str
    action: str | None
    user_id: str
    user_login: str
    user_name: str
    user_input: str
    status: Status
    outcome: str
    loyalty_cost: int
    manageable: bool
    decided_by: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The result of approving or rejecting a queued redemption."""

    redemption_id: str
    status: Status
    refunded: int  # loyalty points given back
    twitch_status: str | None


_RECORD_COLUMNS = (
    "redemption_id, broadcaster_id, reward_id, reward_title, action, user_id, user_login,"
    " user_name,"
    " user_input, status, outcome, loyalty_cost, manageable, decided_by, created_at, updated_at"
)


def _record(row: Sequence[Any]) -> RedemptionRecord:
    values = list(row)
    values[9] = Status(values[9])
    values[12] = bool(values[12])
    return RedemptionRecord(*values)


def get_redemption(
    conn: sqlite3.Connection, channel_id: int, redemption_id: str
) -> RedemptionRecord | None:
    row = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM redemptions WHERE channel_id = ? AND redemption_id = ?",
        (channel_id, redemption_id),
    ).fetchone()
    return None if row is None else _record(row)


def handled_of(
    conn: sqlite3.Connection, channel_id: int, redemption_ids: Sequence[str]
) -> set[str]:
    """Which of these redemptions the channel has handled already."""
    found: set[str] = set()
    for start in range(0, len(redemption_ids), 500):
        chunk = redemption_ids[start : start + 500]
        rows = conn.execute(
            "SELECT redemption_id FROM redemptions WHERE channel_id = ?"
            f" AND redemption_id IN ({','.join('?' * len(chunk))})",
            (channel_id, *chunk),
        ).fetchall()
        found.update(str(row[0]) for row in rows)
    return found


# ---- the redemption transaction -------------------------------------------------------


@dataclass
class _Context:
    tx: Tx
    channel_id: int
    channel: str
    event: RedemptionAdded
    manageable: bool

    @property
    def conn(self) -> sqlite3.Connection:
        return self.tx.conn

    def currency(self, amount: int) -> str:
        return settings.load(self.conn, self.channel_id).values.currency(amount)


def owned(conn: sqlite3.Connection, channel_id: int, reward_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM owned_rewards WHERE channel_id = ? AND reward_id = ?",
        (channel_id, reward_id),
    ).fetchone()
    return row is not None


def handle_redemption(
    tx: Tx,
    channel_id: int,
    channel: str,
    rewards: Sequence[RewardConfig],
    event: RedemptionAdded,
) -> RedemptionOutcome | None:
    """Apply one redemption inside the caller's transaction; None if it was seen before.

    The redemption's row is written once, at the end, with its outcome.
    """
    conn = tx.conn
    seen = conn.execute(
        "SELECT 1 FROM redemptions WHERE channel_id = ? AND redemption_id = ?",
        (channel_id, event.id),
    ).fetchone()
    if seen:
        return None
    config = match(rewards, event.reward.id, event.reward.title)
    manageable = (
        config is not None
        and event.status == "unfulfilled"
        and owned(conn, channel_id, event.reward.id)
    )
    ctx = _Context(tx, channel_id, channel, event, manageable)
    if config is None:
        _insert(ctx, None, Status.UNMATCHED, "no_matching_reward", 0)
        return RedemptionOutcome(
            channel,
            event.id,
            event.reward.title,
            None,
            Status.UNMATCHED,
            "no_matching_reward",
            None,
        )
    return _apply(ctx, config)


def _insert(
    ctx: _Context, config: RewardConfig | None, status: Status, outcome: str, cost: int
) -> None:
    event, now = ctx.event, ctx.tx.now_ms
    ctx.conn.execute(
        "INSERT INTO redemptions (channel_id, redemption_id, broadcaster_id, reward_id,"
        " reward_title, reward_cost, action, user_id, user_login, user_name, user_input,"
        " redeemed_at, status, outcome, loyalty_cost, manageable, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ctx.channel_id,
            event.id,
            event.broadcaster.id,
            event.reward.id,
            event.reward.title,
            event.reward.cost,
            None if config is None else config.action,
            event.user.id,
            event.user.login,
            event.user.name,
            event.user_input[:MAX_CHAT_CHARS],
            event.redeemed_at,
            status,
            outcome,
            cost,
            int(ctx.manageable),
            now,
            now,
        ),
    )


def _apply(ctx: _Context, config: RewardConfig) -> RedemptionOutcome:
    tx, event = ctx.tx, ctx.event
    name = clean_text(event.user.name, 50)
    key = reward_key(config)
    until = (
        _cooldown_until(ctx.conn, ctx.channel_id, key, event.user.id)
        if config.cooldown_seconds
        else 0
    )
    if until > tx.now_ms:
        wait = format_wait((until - tx.now_ms) / 1000)
        return _cancel(
            ctx,
            config,
            "cooldown",
            f"@{name}, {config.title} is on cooldown for you: try again in {wait}.",
        )
    option = None
    if config.action == "vote":
        option = normalize_option(event.user_input)
        if option is None:
            return _cancel(
                ctx,
                config,
                "invalid_vote",
                f"@{name}, type what you vote for when you redeem {config.title}.",
            )
        if _poll_full(ctx.conn, ctx.channel_id, key, option):
            return _cancel(
                ctx,
                config,
                "poll_full",
                f"@{name}, {config.title} has {MAX_OPTIONS_PER_POLL} options already:"
                " vote for one of them.",
            )
    try:
        with savepoint(tx) if config.cost else contextlib.nullcontext():
            if config.cost:
                ledger.debit(
                    tx,
                    ctx.channel_id,
                    event.user.viewer,
                    config.cost,
                    kind=EntryType.COST,
                    reason=f"reward: {config.title}",
                    actor=event.user.login,
                    ref=f"redemption:{event.id}:cost",
                )
            status, outcome = _act(ctx, config, option)
    except InsufficientPoints as exc:
        cost = format_points(config.cost)
        return _cancel(
            ctx,
            config,
            "insufficient_points",
            f"@{name}, {config.title} costs {cost} {ctx.currency(config.cost)} and you have"
            f" {format_points(exc.balance)}.",
        )
    except BalanceTooHigh:
        return _cancel(
            ctx, config, "balance_full", f"@{name}, your {ctx.currency(2)} are at the maximum."
        )
    if config.cooldown_seconds:
        ctx.conn.execute(
            "INSERT INTO reward_cooldowns (channel_id, reward, user_id, until) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (channel_id, reward, user_id) DO UPDATE SET until = excluded.until",
            (ctx.channel_id, key, event.user.id, tx.now_ms + round(config.cooldown_seconds * 1000)),
        )
    _insert(ctx, config, status, outcome, config.cost)
    twitch_status = None
    if status is Status.FULFILLED:
        twitch_status = _set_twitch_status(ctx, "FULFILLED")
        if config.message and config.action != "discord":  # discord's goes to Discord
            _say(ctx, render(config.message, _values(ctx)))
    return RedemptionOutcome(
        ctx.channel, event.id, config.title, config.action, status, outcome, twitch_status
    )


def _act(ctx: _Context, config: RewardConfig, option: str | None) -> tuple[Status, str]:
    """The action itself, inside the savepoint with the cost."""
    tx, event = ctx.tx, ctx.event
    if config.action == "grant_points":
        ledger.credit(
            tx,
            ctx.channel_id,
            event.user.viewer,
            config.amount or 0,  # the config requires an amount; 0 would raise InvalidAmount
            kind=EntryType.REWARD,
            reason=f"reward: {config.title}",
            actor=event.user.login,
            ref=f"redemption:{event.id}",
        )
        return Status.FULFILLED, "granted"
    if config.action == "chat":
        return Status.FULFILLED, "done"
    if config.action == "title":
        titles.unlock(tx, ctx.channel_id, event.user.viewer, config.unlocks or "", event.id)
        return Status.FULFILLED, "title_unlocked"
    if config.action == "vote":
        ctx.conn.execute(
            "INSERT INTO votes (channel_id, poll, title, option, count, first_at)"
            " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (channel_id, poll, option) DO UPDATE SET"
            " count = count + 1, title = excluded.title",
            (ctx.channel_id, reward_key(config), config.title, option, tx.now_ms),
        )
        return Status.FULFILLED, "voted"
    if config.action == "queue":
        return Status.QUEUED, "awaiting_approval"
    if config.action == "forward":
        jobs.enqueue(tx, FORWARD, ctx.channel_id, _forward_payload(ctx, config))
        return Status.PENDING, "forwarding"
    if config.action == "discord":
        text = discord_text(config.message or "", _values(ctx))
        enqueue_discord(
            tx,
            ctx.channel_id,
            ctx.channel,
            origin=WEBHOOKS,
            key=reward_key(config),
            text=text,
            retries=config.retries,
        )
        return Status.FULFILLED, "posted"
    raise ValueError(f"unknown reward action {config.action!r}")


def _forward_payload(ctx: _Context, config: RewardConfig) -> dict[str, Any]:
    event = ctx.event
    return {
        "channel": ctx.channel,
        "redemption_id": event.id,
        "url": config.url,
        "timeout": config.timeout_seconds,
        "retries": config.retries,
        "announce": render(config.message, _values(ctx)) if config.message else None,
        "body": {
            "id": event.id,
            "channel": ctx.channel,
            "broadcaster_user_id": event.broadcaster.id,
            "user_id": event.user.id,
            "user_login": event.user.login,
            "user_name": event.user.name,
            "user_input": event.user_input[:MAX_CHAT_CHARS],
            "reward": {
                "id": event.reward.id,
                "title": event.reward.title,
                "cost": event.reward.cost,
                "prompt": event.reward.prompt,
            },
            "loyalty_cost": config.cost,
            "redeemed_at": event.redeemed_at,
        },
    }


def _values(ctx: _Context) -> dict[str, str]:
    event = ctx.event
    balance = _balance(ctx.conn, ctx.channel_id, event.user.id)
    return template_values(event.user.name, event.user_input, event.reward.title, balance)


def _balance(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int:
    row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _cancel(ctx: _Context, config: RewardConfig, outcome: str, reply: str) -> RedemptionOutcome:
    """The redemption cannot be honoured: nothing was taken; Twitch refunds if it can."""
    _insert(ctx, config, Status.CANCELED, outcome, 0)
    twitch_status = _set_twitch_status(ctx, "CANCELED")
    if twitch_status:
        reply += " Your channel points were refunded."
    _say(ctx, reply)
    return RedemptionOutcome(
        ctx.channel,
        ctx.event.id,
        config.title,
        config.action,
        Status.CANCELED,
        outcome,
        twitch_status,
    )


def _set_twitch_status(ctx: _Context, status: str) -> str | None:
    if not ctx.manageable:
        return None
    event = ctx.event
    enqueue_twitch_status(
        ctx.tx, ctx.channel_id, ctx.channel, event.broadcaster.id, event.reward.id, event.id, status
    )
    return status


def enqueue_twitch_status(
    tx: Tx,
    channel_id: int,
    channel: str,
    broadcaster_id: str,
    reward_id: str,
    redemption_id: str,
    status: str,
) -> None:
    jobs.enqueue(
        tx,
        REDEMPTION_STATUS,
        channel_id,
        {
            "channel": channel,
            "broadcaster_id": broadcaster_id,
            "reward_id": reward_id,
            "redemption_id": redemption_id,
            "status": status,
        },
    )


def _say(ctx: _Context, text: str) -> None:
    enqueue_chat(ctx.tx, ctx.channel_id, ctx.channel, text)


def _cooldown_until(conn: sqlite3.Connection, channel_id: int, key: str, user_id: str) -> int:
    row = conn.execute(
        "SELECT until FROM reward_cooldowns WHERE channel_id = ? AND reward = ? AND user_id = ?",
        (channel_id, key, user_id),
    ).fetchone()
    return 0 if row is None else int(row[0])


def _poll_full(conn: sqlite3.Connection, channel_id: int, poll: str, option: str) -> bool:
    exists = conn.execute(
        "SELECT 1 FROM votes WHERE channel_id = ? AND poll = ? AND option = ?",
        (channel_id, poll, option),
    ).fetchone()
    if exists:
        return False
    (options,) = conn.execute(
        "SELECT count(*) FROM votes WHERE channel_id = ? AND poll = ?", (channel_id, poll)
    ).fetchone()
    return bool(options >= MAX_OPTIONS_PER_POLL)


# ---- later outcomes: forward results, moderator decisions -----------------------------


def _close(
    tx: Tx,
    channel_id: int,
    channel: str,
    redemption: RedemptionRecord,
    status: Status,
    outcome: str,
    *,
    actor: str | None,
    refund: bool,
) -> Decision:
    """Move a waiting redemption to its final state: refund, Twitch status, and the row."""
    refunded = 0
    if refund and redemption.loyalty_cost:
        viewer = viewers.Viewer(redemption.user_id, redemption.user_login, redemption.user_name)
        try:
            change = ledger.credit(
                tx,
                channel_id,
                viewer,
                redemption.loyalty_cost,
                kind=EntryType.REFUND,
                reason=f"refund: {redemption.reward_title} ({outcome})",
                actor=actor,
                ref=f"redemption:{redemption.redemption_id}:refund",
            )
            refunded = change.applied
        except BalanceTooHigh:
            refunded = 0
    tx.conn.execute(
        "UPDATE redemptions SET status = ?, outcome = ?, decided_by = coalesce(?, decided_by),"
        " loyalty_cost = loyalty_cost - ?, updated_at = ?"
        " WHERE channel_id = ? AND redemption_id = ?",
        (status, outcome, actor, refunded, tx.now_ms, channel_id, redemption.redemption_id),
    )
    twitch_status = None
    if redemption.manageable:
        twitch_status = "FULFILLED" if status is Status.FULFILLED else "CANCELED"
        enqueue_twitch_status(
            tx,
            channel_id,
            channel,
            redemption.broadcaster_id,
            redemption.reward_id,
            redemption.redemption_id,
            twitch_status,
        )
    return Decision(redemption.redemption_id, status, refunded, twitch_status)


def forward_finished(
    tx: Tx,
    channel_id: int,
    channel: str,
    redemption_id: str,
    *,
    delivered: bool,
    announce: str | None,
) -> Decision | None:
    """A forward ended: delivered -> fulfilled; failed for good -> canceled and refunded."""
    redemption = get_redemption(tx.conn, channel_id, redemption_id)
    if redemption is None or redemption.status is not Status.PENDING:
        return None
    if delivered:
        decision = _close(
            tx,
            channel_id,
            channel,
            redemption,
            Status.FULFILLED,
            "forwarded",
            actor=None,
            refund=False,
        )
        if announce:
            enqueue_chat(tx, channel_id, channel, announce)
        return decision
    decision = _close(
        tx,
        channel_id,
        channel,
        redemption,
        Status.CANCELED,
        "forward_failed",
        actor=None,
        refund=True,
    )
    name = clean_text(redemption.user_name, 50)
    reply = f"@{name}, {redemption.reward_title} could not be delivered."
    enqueue_chat(tx, channel_id, channel, reply + _refund_note(tx, channel_id, decision))
    return decision


def _refund_note(tx: Tx, channel_id: int, decision: Decision) -> str:
    parts = []
    if decision.refunded:
        currency = settings.load(tx.conn, channel_id).values.currency(decision.refunded)
        parts.append(f"{format_points(decision.refunded)} {currency}")
    if decision.twitch_status == "CANCELED":
        parts.append("your channel points")
    return f" Refunded: {' and '.join(parts)}." if parts else ""


def decide(
    tx: Tx,
    channel_id: int,
    channel: str,
    redemption_id: str,
    *,
    approve: bool,
    actor: str,
    rewards: Sequence[RewardConfig],
) -> Decision:
    """A moderator's decision on a queued redemption.

    Raises:
        UnknownRedemption, NotQueued.
    """
    redemption = get_redemption(tx.conn, channel_id, redemption_id)
    if redemption is None:
        raise UnknownRedemption(channel, redemption_id)
    if redemption.status is not Status.QUEUED:
        raise NotQueued(redemption_id, redemption.status)
    name = clean_text(redemption.user_name, 50)
    if approve:
        decision = _close(
            tx,
            channel_id,
            channel,
            redemption,
            Status.FULFILLED,
            "approved",
            actor=actor,
            refund=False,
        )
        config = match(rewards, redemption.reward_id, redemption.reward_title)
        if config is not None and config.message:
            balance = _balance(tx.conn, channel_id, redemption.user_id)
            values = template_values(
                redemption.user_name, redemption.user_input, redemption.reward_title, balance
            )
            enqueue_chat(tx, channel_id, channel, render(config.message, values))
        return decision
    decision = _close(
        tx,
        channel_id,
        channel,
        redemption,
        Status.CANCELED,
        "rejected",
        actor=actor,
        refund=True,
    )
    reply = f"@{name}, {redemption.reward_title} was not accepted."
    enqueue_chat(tx, channel_id, channel, reply + _refund_note(tx, channel_id, decision))
    return decision


def set_owned(
    tx: Tx, channel_id: int, rewards: Iterable[tuple[str, str]], *, replace: bool
) -> None:
    """Record rewards (id, title) the bot owns; ``replace`` forgets the others."""
    rewards = list(rewards)
    if replace:
        tx.conn.execute("DELETE FROM owned_rewards WHERE channel_id = ?", (channel_id,))
    tx.conn.executemany(
        "INSERT INTO owned_rewards (channel_id, reward_id, title, synced_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (channel_id, reward_id) DO UPDATE SET title = excluded.title,"
        " synced_at = excluded.synced_at",
        [(channel_id, reward_id, title, tx.now_ms) for reward_id, title in rewards],
    )


def prune(tx: Tx) -> int:
    """Forget cooldowns that have run out."""
    return tx.conn.execute("DELETE FROM reward_cooldowns WHERE until <= ?", (tx.now_ms,)).rowcount


# ---- the async API for the webhook, the dashboard and chat ----------------------------


@dataclass(frozen=True, slots=True)
class RewardUse:
    """One reward's redemptions over a period (the economy page's reward analytics)."""

    title: str
    redemptions: int
    fulfilled: int
    canceled: int
    waiting: int  # queued for a moderator, or a forward still running
    points: int  # loyalty points kept (costs not refunded)
    viewers: int  # distinct viewers who redeemed it


def reward_uses(conn: sqlite3.Connection, channel_id: int, since_ms: int) -> list[RewardUse]:
    """Redemptions of configured rewards since ``since_ms``, per reward title."""
    return [
        RewardUse(str(title), *(int(v or 0) for v in rest))
        for title, *rest in conn.execute(
            "SELECT reward_title, count(*), sum(status = 'fulfilled'), sum(status = 'canceled'),"
            " sum(status IN ('queued', 'pending')), sum(loyalty_cost), count(DISTINCT user_id)"
            " FROM redemptions WHERE channel_id = ? AND created_at >= ? AND status <> 'unmatched'"
            " GROUP BY reward_title",
            (channel_id, since_ms),
        )
    ]


class Rewards:
    """Reward configuration per channel, and the operations on redemptions and votes."""

    def __init__(
        self, bank: Bank, store: Store, rewards: Mapping[str, Sequence[RewardConfig]]
    ) -> None:
        self._bank = bank
        self._store = store
        self._rewards: dict[str, tuple[RewardConfig, ...]] = {}
        self.update(rewards)

    def update(self, rewards: Mapping[str, Sequence[RewardConfig]]) -> None:
        """New reward mappings (config reload); redemptions in flight keep their own."""
        self._rewards = {channel: tuple(items) for channel, items in rewards.items()}

    def configured(self, channel: str) -> tuple[RewardConfig, ...]:
        return self._rewards.get(channel, ())

    def handle(self, tx: Tx, channel: str, event: RedemptionAdded) -> RedemptionOutcome | None:
        """Inside the webhook's transaction."""
        return handle_redemption(
            tx, self._bank.channel_id(channel), channel, self.configured(channel), event
        )

    async def approve(self, channel: str, redemption_id: str, actor: str) -> Decision:
        """Approve a queued redemption: FULFILLED on Twitch (when the bot owns the reward).

        Raises:
            UnknownChannel, UnknownRedemption, NotQueued.
        """
        return await self._decide(channel, redemption_id, actor, approve=True)

    async def reject(self, channel: str, redemption_id: str, actor: str) -> Decision:
        """Reject a queued redemption: the loyalty cost is refunded, and CANCELED on
        Twitch so Twitch refunds the channel points (when the bot owns the reward).

        Raises:
            UnknownChannel, UnknownRedemption, NotQueued.
        """
        return await self._decide(channel, redemption_id, actor, approve=False)

    async def _decide(
        self, channel: str, redemption_id: str, actor: str, *, approve: bool
    ) -> Decision:
        channel_id = self._bank.channel_id(channel)
        rewards = self.configured(channel)
        return await self._store.write(
            lambda tx: decide(
                tx,
                channel_id,
                channel,
                redemption_id,
                approve=approve,
                actor=actor,
                rewards=rewards,
            )
        )

    async def list_queue(self, channel: str, limit: int = 100) -> list[RedemptionRecord]:
        """Redemptions waiting for approval, oldest first."""
        channel_id = self._bank.channel_id(channel)
        rows = await self._store.read(
            lambda c: c.execute(
                f"SELECT {_RECORD_COLUMNS} FROM redemptions"
                " WHERE channel_id = ? AND status = 'queued'"
                " ORDER BY created_at, redeemed_at, redemption_id"
                " LIMIT ?",
                (channel_id, max(1, min(limit, 1000))),
            ).fetchall()
        )
        return [_record(row) for row in rows]

    async def analytics(self, channel: str, since_ms: int) -> list[RewardUse]:
        """Each reward's redemptions since ``since_ms`` (the economy page's reward analytics);
        configured rewards nobody redeemed are listed with zeros."""
        channel_id = self._bank.channel_id(channel)
        rows = await self._store.read(lambda c: reward_uses(c, channel_id, since_ms))
        found = {use.title.casefold(): use for use in rows}
        for config in self.configured(channel):
            found.setdefault(config.title.casefold(), RewardUse(config.title, 0, 0, 0, 0, 0, 0))
        return sorted(found.values(), key=lambda u: (-u.redemptions, u.title.casefold()))

    async def redemption(self, channel: str, redemption_id: str) -> RedemptionRecord | None:
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: get_redemption(c, channel_id, redemption_id))

    async def handled(self, channel: str, redemption_ids: Sequence[str]) -> set[str]:
        """Which of these redemptions were handled already (the catch-up after a gap skips
        them; the transaction that handles one checks again)."""
        channel_id = self._bank.channel_id(channel)
        ids = list(redemption_ids)
        return await self._store.read(lambda c: handled_of(c, channel_id, ids))

    async def title_of(self, channel: str, user_id: str) -> str | None:
        """The title a viewer unlocked most recently (``!points`` shows it), or None."""
        channel_id = self._bank.channel_id(channel)
        return await self._store.read(lambda c: titles.latest(c, channel_id, user_id))

    async def set_owned(
        self, channel: str, rewards: Iterable[tuple[str, str]], *, replace: bool = False
    ) -> None:
        channel_id = self._bank.channel_id(channel)
        items = list(rewards)
        await self._store.write(lambda tx: set_owned(tx, channel_id, items, replace=replace))

    async def refresh_owned(self, channel: str, helix: Helix, broadcaster_id: str) -> int:
        """Ask Twitch which of the channel's rewards our client id manages (at start-up);
        ``helix`` acts as the broadcaster. Returns how many.

        Raises:
            HelixError: Twitch could not be asked; what we knew is kept.
        """
        found = await channel_points.manageable_rewards(helix, broadcaster_id)
        await self.set_owned(channel, [(r.id, r.title) for r in found], replace=True)
        return len(found)

    async def unhandled_on_twitch(
        self, channel: str, helix: Helix, broadcaster_id: str
    ) -> list[RedemptionAdded]:
        """Redemptions of the bot's own configured rewards that Twitch holds as UNFULFILLED
        and this channel never handled, oldest first: what an EventSub gap may have lost.

        Raises:
            HelixError: Twitch could not be asked.
        """
        owned = await channel_points.manageable_rewards(helix, broadcaster_id)
        await self.set_owned(channel, [(r.id, r.title) for r in owned], replace=True)
        rewards = self.configured(channel)
        found: list[RedemptionAdded] = []
        for reward in owned:
            if match(rewards, reward.id, reward.title) is not None:
                found += await channel_points.unfulfilled_redemptions(
                    helix, broadcaster_id, reward.id
                )
        handled = await self.handled(channel, [event.id for event in found])
        fresh = [event for event in found if event.id not in handled]
        return sorted(fresh, key=lambda event: event.redeemed_at)
