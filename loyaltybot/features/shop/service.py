"""The shop's transactions and its SQL (SPEC §10.1).

A purchase is one transaction: the item and its stock, the viewer's balance, limit and
cooldowns are read in it, :func:`rules.check_purchase` decides, and the cost is debited
(``shop_purchase``), the stock taken, the purchase recorded and the action's slow work
queued (``actions.delivery``) together, or nothing happens. A refund (a rejected ``queue``
item, a ``forward`` that never arrived) is one transaction too: ``shop_refund``, the stock
given back, the purchase canceled.

Items live in ``shop_items``: the file's are written there on every start and reload
(``apply_file``), so a purchase reads its item in its own transaction whoever owns it; the
dashboard's are written by the dashboard and refused for a file-owned name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from loyaltybot import settings
from loyaltybot.actions import titles
from loyaltybot.actions.delivery import enqueue_chat, enqueue_discord
from loyaltybot.actions.queue import Decided, NotWaiting, UnknownEntry, Waiting
from loyaltybot.actions.text import (
    MAX_CHAT_CHARS,
    clean_text,
    discord_text,
    render,
    template_values,
    uses_input,
)
from loyaltybot.config import Secret, ShopItemConfig, resolve_secret
from loyaltybot.db import Store, Tx, jobs, savepoint
from loyaltybot.features.shop.rules import NeedsText, NoSuchItem, ShopItem, check_purchase
from loyaltybot.points import ledger
from loyaltybot.points.amounts import format_points
from loyaltybot.points.bank import Bank
from loyaltybot.points.errors import BalanceTooHigh, LoyaltyError
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer

FORWARD: Final = "shop_forward"  # the job kind of a forward item's POST
WEBHOOKS: Final = "shop"  # the origin of the shop's Discord webhooks (actions.delivery)
SOURCE: Final = "shop"  # the approval queue's name for shop purchases
RECENT_LIMIT = 50

LiveNow = Callable[[str], bool | None]
"""Whether a channel is live now (None: not known yet); the daemon hands earning's."""


class FileOwned(LoyaltyError):
    """The dashboard tried to change an item config.toml owns."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is set in config.toml")
        self.name = name


class NameTaken(LoyaltyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"another item is called {name}")
        self.name = name


# ---- items ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """An item as stored: its keys, who owns it and how many are sold (not refunded)."""

    spec: Mapping[str, Any]
    owner: str
    sold: int
    position: int

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def key(self) -> str:
        return self.name.casefold()

    @property
    def cost(self) -> int:
        return int(self.spec["cost"])

    @property
    def action(self) -> str:
        return str(self.spec.get("action", "chat"))

    @property
    def description(self) -> str:
        return str(self.spec.get("description") or "")

    @property
    def message(self) -> str | None:
        message = self.spec.get("message")
        return None if message is None else str(message)

    @property
    def stock(self) -> int | None:
        stock = self.spec.get("stock")
        return None if stock is None else int(stock)

    @property
    def stock_left(self) -> int | None:
        return None if self.stock is None else max(0, self.stock - self.sold)

    @property
    def needs_text(self) -> bool:
        return uses_input(self.message)

    @property
    def rule(self) -> ShopItem:
        spec = self.spec
        return ShopItem(
            name=self.name,
            cost=self.cost,
            description=self.description,
            action=spec.get("action", "chat"),
            stock=self.stock,
            per_viewer=spec.get("per_viewer"),
            cooldown_seconds=float(spec.get("cooldown_seconds") or 0),
            global_cooldown_seconds=float(spec.get("global_cooldown_seconds") or 0),
        )


def spec_of(item: ShopItemConfig) -> dict[str, Any]:
    """What is stored of an item: every key, with a Discord webhook as its source only."""
    spec = item.model_dump(mode="json", exclude={"webhook_url"}, exclude_none=True)
    if item.webhook_url is not None:
        spec["webhook_source"] = item.webhook_url.source
    return spec


_ITEM_COLUMNS = "spec, owner, sold, position"


def _item(row: Sequence[Any]) -> Item:
    return Item(json.loads(row[0]), str(row[1]), int(row[2]), int(row[3]))


def items_of(conn: sqlite3.Connection, channel_id: int) -> list[Item]:
    """The channel's items on sale, the file's first, in their order."""
    rows = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM shop_items WHERE channel_id = ? AND active = 1"
        " ORDER BY owner = 'dashboard', position, key",
        (channel_id,),
    ).fetchall()
    return [_item(row) for row in rows]


def item_of(conn: sqlite3.Connection, channel_id: int, name: str) -> Item | None:
    """The item ``!buy <name>`` means: case-insensitive, a leading ``!`` ignored."""
    key = name.strip().removeprefix("!").casefold()
    row = conn.execute(
        f"SELECT {_ITEM_COLUMNS} FROM shop_items WHERE channel_id = ? AND key = ? AND active = 1",
        (channel_id, key),
    ).fetchone()
    return None if row is None else _item(row)


def apply_file(tx: Tx, channel_id: int, items: Sequence[ShopItemConfig]) -> None:
    """Make the file's items stored and file-owned (a dashboard item of the same name
    becomes the file's); items the file no longer lists leave the shop."""
    conn = tx.conn
    for position, item in enumerate(items):
        conn.execute(
            "INSERT INTO shop_items (channel_id, key, name, owner, spec, position, active,"
            " updated_at, updated_by) VALUES (?, ?, ?, 'file', ?, ?, 1, ?, 'config')"
            " ON CONFLICT (channel_id, key) DO UPDATE SET name = excluded.name,"
            "  owner = 'file', spec = excluded.spec, position = excluded.position, active = 1,"
            "  updated_at = excluded.updated_at, updated_by = 'config'"
            " WHERE spec <> excluded.spec OR owner <> 'file' OR active = 0"
            "  OR position <> excluded.position",
            (channel_id, item.key, item.name, json.dumps(spec_of(item)), position, tx.now_ms),
        )
    keys = [item.key for item in items]
    marks = ",".join("?" * len(keys))
    conn.execute(
        "UPDATE shop_items SET active = 0, updated_at = ?, updated_by = 'config'"
        " WHERE channel_id = ? AND owner = 'file' AND active = 1"
        + (f" AND key NOT IN ({marks})" if keys else ""),
        (tx.now_ms, channel_id, *keys),
    )


def save_item(
    tx: Tx, channel_id: int, item: ShopItemConfig, actor: str, *, replacing: str | None
) -> None:
    """Store a dashboard item: new (``replacing`` None) or an edit of ``replacing``.

    Raises:
        FileOwned: the name (or the edited item) is config.toml's.
        NameTaken: another item on sale has the new name.
        NoSuchItem: the edited item is not on sale any more.
    """
    conn = tx.conn
    if replacing is not None:
        old = conn.execute(
            "SELECT owner, position FROM shop_items WHERE channel_id = ? AND key = ?"
            " AND active = 1",
            (channel_id, replacing.casefold()),
        ).fetchone()
        if old is None:
            raise NoSuchItem(replacing)
        if old[0] == "file":
            raise FileOwned(replacing)
    taken = conn.execute(
        "SELECT owner, active FROM shop_items WHERE channel_id = ? AND key = ?",
        (channel_id, item.key),
    ).fetchone()
    renamed = replacing is None or item.key != replacing.casefold()
    if taken is not None and taken[0] == "file" and (taken[1] or renamed):
        raise FileOwned(item.name)
    if taken is not None and taken[1] and renamed:
        raise NameTaken(item.name)
    spec = json.dumps(spec_of(item))
    if replacing is not None and not renamed:
        conn.execute(
            "UPDATE shop_items SET name = ?, spec = ?, updated_at = ?, updated_by = ?"
            " WHERE channel_id = ? AND key = ?",
            (item.name, spec, tx.now_ms, actor, channel_id, item.key),
        )
        return
    (position,) = conn.execute(
        "SELECT coalesce(max(position), -1) + 1 FROM shop_items WHERE channel_id = ?",
        (channel_id,),
    ).fetchone()
    if replacing is not None:  # a rename keeps the place and the count sold
        position, sold = conn.execute(
            "SELECT position, sold FROM shop_items WHERE channel_id = ? AND key = ?",
            (channel_id, replacing.casefold()),
        ).fetchone()
        _deactivate(tx, channel_id, replacing.casefold(), actor)
    else:
        sold = 0
    conn.execute(
        "INSERT INTO shop_items (channel_id, key, name, owner, spec, sold, position, active,"
        " updated_at, updated_by) VALUES (?, ?, ?, 'dashboard', ?, ?, ?, 1, ?, ?)"
        " ON CONFLICT (channel_id, key) DO UPDATE SET name = excluded.name,"
        "  owner = 'dashboard', spec = excluded.spec, sold = excluded.sold,"
        "  position = excluded.position, active = 1, updated_at = excluded.updated_at,"
        "  updated_by = excluded.updated_by",
        (channel_id, item.key, item.name, spec, sold, position, tx.now_ms, actor),
    )


def delete_item(tx: Tx, channel_id: int, name: str, actor: str) -> None:
    """Take a dashboard item off sale (its purchases keep naming it).

    Raises:
        NoSuchItem, FileOwned.
    """
    row = tx.conn.execute(
        "SELECT owner FROM shop_items WHERE channel_id = ? AND key = ? AND active = 1",
        (channel_id, name.casefold()),
    ).fetchone()
    if row is None:
        raise NoSuchItem(name)
    if row[0] == "file":
        raise FileOwned(name)
    _deactivate(tx, channel_id, name.casefold(), actor)


def _deactivate(tx: Tx, channel_id: int, key: str, actor: str) -> None:
    tx.conn.execute(
        "UPDATE shop_items SET active = 0, updated_at = ?, updated_by = ?"
        " WHERE channel_id = ? AND key = ?",
        (tx.now_ms, actor, channel_id, key),
    )


# ---- streams ----------------------------------------------------------------------------


def observe_stream(tx: Tx, channel_id: int, live: bool | None) -> int:
    """Record the stream state; returns the current stream's number. A channel going live
    starts a new stream (``per_viewer`` limits count from there); None changes nothing."""
    conn = tx.conn
    row = conn.execute(
        "SELECT stream, live FROM shop_streams WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    if row is None:
        stream = 1 if live else 0
        conn.execute(
            "INSERT INTO shop_streams (channel_id, stream, live, changed_at) VALUES (?, ?, ?, ?)",
            (channel_id, stream, int(bool(live)), tx.now_ms),
        )
        return stream
    stream, was_live = int(row[0]), bool(row[1])
    if live is None or live == was_live:
        return stream
    if live:
        stream += 1
    conn.execute(
        "UPDATE shop_streams SET stream = ?, live = ?, changed_at = ? WHERE channel_id = ?",
        (stream, int(live), tx.now_ms, channel_id),
    )
    return stream


# ---- purchases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """A purchase made: what the buyer is told."""

    id: int
    item: str
    cost: int
    balance: int  # after the purchase
    status: str  # fulfilled | queued | pending
    stock_left: int | None


@dataclass(frozen=True)
class PurchaseRecord:
    id: int
    item_key: str
    item_name: str
    action: str
    user_id: str
    user_login: str
    user_name: str
    user_input: str
    cost: int
    refunded: int
    status: str
    outcome: str
    decided_by: str | None
    created_at: int


_PURCHASE_COLUMNS = (
    "id, item_key, item_name, action, user_id, user_login, user_name, user_input, cost,"
    " refunded, status, outcome, decided_by, created_at"
)


def _record(row: Sequence[Any]) -> PurchaseRecord:
    return PurchaseRecord(*row)


def _last(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> float | None:
    row = conn.execute(sql, args).fetchone()
    return None if row is None else int(row[0]) / 1000


def buy(
    tx: Tx,
    channel_id: int,
    channel: str,
    viewer: Viewer,
    name: str,
    text: str,
    live: bool | None,
) -> Purchase:
    """One purchase, all or nothing, decided on what this transaction reads.

    Raises:
        NoSuchItem, NeedsText, SoldOut, LimitReached, ShopOnCooldown, ItemOnCooldown,
        NotEnoughPoints.
    """
    conn = tx.conn
    item = item_of(conn, channel_id, name)
    if item is None:
        raise NoSuchItem(name)
    user_input = clean_text(text)
    if item.needs_text and not user_input:
        raise NeedsText(item.name)
    stream = observe_stream(tx, channel_id, live)
    balance_row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?",
        (channel_id, viewer.user_id),
    ).fetchone()
    balance = 0 if balance_row is None else int(balance_row[0])
    (bought,) = conn.execute(
        "SELECT count(*) FROM shop_purchases WHERE channel_id = ? AND item_key = ?"
        " AND user_id = ? AND stream = ? AND status <> 'canceled'",
        (channel_id, item.key, viewer.user_id, stream),
    ).fetchone()
    mine = _last(
        conn,
        "SELECT created_at FROM shop_purchases WHERE channel_id = ? AND item_key = ?"
        " AND user_id = ? AND status <> 'canceled' ORDER BY created_at DESC LIMIT 1",
        (channel_id, item.key, viewer.user_id),
    )
    anyone = _last(
        conn,
        "SELECT created_at FROM shop_purchases WHERE channel_id = ? AND item_key = ?"
        " AND status <> 'canceled' ORDER BY created_at DESC LIMIT 1",
        (channel_id, item.key),
    )
    check_purchase(item.rule, balance, item.stock_left, bought, tx.now_ms / 1000, mine, anyone)
    with savepoint(tx, "purchase"):
        status, outcome = _initial_status(item.action)
        cursor = conn.execute(
            "INSERT INTO shop_purchases (channel_id, item_key, item_name, action, user_id,"
            " user_login, user_name, user_input, cost, stream, status, outcome, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                channel_id,
                item.key,
                item.name,
                item.action,
                viewer.user_id,
                viewer.login,
                viewer.display_name or viewer.login,
                user_input,
                item.cost,
                stream,
                status,
                outcome,
                tx.now_ms,
                tx.now_ms,
            ),
        )
        purchase_id = int(cursor.lastrowid or 0)
        change = ledger.debit(
            tx,
            channel_id,
            viewer,
            item.cost,
            kind=EntryType.SHOP_PURCHASE,
            reason=f"shop: {item.name}",
            actor=viewer.login,
            ref=f"purchase:{purchase_id}",
        )
        conn.execute(
            "UPDATE shop_items SET sold = sold + 1 WHERE channel_id = ? AND key = ?",
            (channel_id, item.key),
        )
        values = template_values(
            viewer.display_name or viewer.login, user_input, item.name, change.balance
        )
        _act(tx, channel_id, channel, item, viewer, purchase_id, values)
    left = None if item.stock_left is None else item.stock_left - 1
    return Purchase(purchase_id, item.name, item.cost, change.balance, status, left)


def _initial_status(action: str) -> tuple[str, str]:
    if action == "queue":
        return "queued", "awaiting_approval"
    if action == "forward":
        return "pending", "forwarding"
    return "fulfilled", "done"


def _act(
    tx: Tx,
    channel_id: int,
    channel: str,
    item: Item,
    viewer: Viewer,
    purchase_id: int,
    values: Mapping[str, str],
) -> None:
    """The item's action, inside the purchase's savepoint (SPEC §6's reward actions)."""
    spec, message = item.spec, item.message
    if item.action == "title":
        titles.unlock(tx, channel_id, viewer, str(spec["unlocks"]), f"purchase:{purchase_id}")
    if item.action == "discord":
        enqueue_discord(
            tx,
            channel_id,
            channel,
            origin=WEBHOOKS,
            key=item.key,
            text=discord_text(message or "", values),
            retries=int(spec.get("retries", 3)),
        )
        return
    if item.action == "forward":
        jobs.enqueue(tx, FORWARD, channel_id, _forward_payload(item, channel, purchase_id, values))
        return
    if message and item.action != "queue":  # a queue item's message is said on approval
        enqueue_chat(tx, channel_id, channel, render(message, values))


def _forward_payload(
    item: Item, channel: str, purchase_id: int, values: Mapping[str, str]
) -> dict[str, Any]:
    spec = item.spec
    return {
        "channel": channel,
        "purchase_id": purchase_id,
        "url": spec["url"],
        "timeout": spec.get("timeout_seconds", 5.0),
        "retries": spec.get("retries", 3),
        "announce": render(item.message, values) if item.message else None,
        "body": {
            "id": purchase_id,
            "channel": channel,
            "item": item.name,
            "cost": item.cost,
            "user_name": values["user"],
            "user_input": values["input"],
        },
    }


def get_purchase(
    conn: sqlite3.Connection, channel_id: int, purchase_id: int
) -> PurchaseRecord | None:
    row = conn.execute(
        f"SELECT {_PURCHASE_COLUMNS} FROM shop_purchases WHERE channel_id = ? AND id = ?",
        (channel_id, purchase_id),
    ).fetchone()
    return None if row is None else _record(row)


def _refund(
    tx: Tx, channel_id: int, purchase: PurchaseRecord, outcome: str, actor: str | None
) -> int:
    """Cancel a purchase: its cost back (``shop_refund``), its stock back. Returns the
    points given back (0 when the viewer's balance is at the maximum)."""
    refunded = 0
    viewer = Viewer(purchase.user_id, purchase.user_login, purchase.user_name)
    try:
        change = ledger.credit(
            tx,
            channel_id,
            viewer,
            purchase.cost,
            kind=EntryType.SHOP_REFUND,
            reason=f"refund: {purchase.item_name} ({outcome})",
            actor=actor,
            ref=f"purchase:{purchase.id}:refund",
        )
        refunded = change.applied
    except BalanceTooHigh:
        refunded = 0
    tx.conn.execute(
        "UPDATE shop_items SET sold = max(0, sold - 1) WHERE channel_id = ? AND key = ?",
        (channel_id, purchase.item_key),
    )
    _close(tx, channel_id, purchase.id, "canceled", outcome, actor, refunded)
    return refunded


def _close(
    tx: Tx,
    channel_id: int,
    purchase_id: int,
    status: str,
    outcome: str,
    actor: str | None,
    refunded: int = 0,
) -> None:
    tx.conn.execute(
        "UPDATE shop_purchases SET status = ?, outcome = ?, refunded = ?,"
        " decided_by = coalesce(?, decided_by), updated_at = ? WHERE channel_id = ? AND id = ?",
        (status, outcome, refunded, actor, tx.now_ms, channel_id, purchase_id),
    )


def _currency(tx: Tx, channel_id: int, amount: int) -> str:
    return settings.load(tx.conn, channel_id).values.currency(amount)


def decide(
    tx: Tx, channel_id: int, channel: str, purchase_id: int, *, approve: bool, actor: str
) -> Decided:
    """A moderator's decision on a queued purchase: approve says the item's message;
    reject refunds the cost.

    Raises:
        UnknownEntry, NotWaiting.
    """
    purchase = get_purchase(tx.conn, channel_id, purchase_id)
    if purchase is None:
        raise UnknownEntry(channel, str(purchase_id))
    if purchase.status != "queued":
        raise NotWaiting(str(purchase_id), purchase.status)
    name = clean_text(purchase.user_name, 50)
    if approve:
        _close(tx, channel_id, purchase_id, "fulfilled", "approved", actor)
        item = item_of(tx.conn, channel_id, purchase.item_key)
        if item is not None and item.message:
            balance = _balance(tx.conn, channel_id, purchase.user_id)
            values = template_values(
                purchase.user_name, purchase.user_input, purchase.item_name, balance
            )
            enqueue_chat(tx, channel_id, channel, render(item.message, values))
        return Decided(str(purchase_id), True, 0)
    refunded = _refund(tx, channel_id, purchase, "rejected", actor)
    note = f" {format_points(refunded)} {_currency(tx, channel_id, refunded)} refunded."
    enqueue_chat(
        tx,
        channel_id,
        channel,
        f"@{name}, {purchase.item_name} was not accepted." + (note if refunded else ""),
    )
    return Decided(str(purchase_id), False, refunded)


def forward_finished(
    tx: Tx,
    channel_id: int,
    channel: str,
    purchase_id: int,
    *,
    delivered: bool,
    announce: str | None,
) -> None:
    """A forward ended: delivered -> fulfilled (and the item's message said); failed for
    good -> refunded."""
    purchase = get_purchase(tx.conn, channel_id, purchase_id)
    if purchase is None or purchase.status != "pending":
        return
    if delivered:
        _close(tx, channel_id, purchase_id, "fulfilled", "forwarded", None)
        if announce:
            enqueue_chat(tx, channel_id, channel, announce)
        return
    refunded = _refund(tx, channel_id, purchase, "forward_failed", None)
    name = clean_text(purchase.user_name, 50)
    note = f" {format_points(refunded)} {_currency(tx, channel_id, refunded)} refunded."
    enqueue_chat(
        tx,
        channel_id,
        channel,
        f"@{name}, {purchase.item_name} could not be delivered." + (note if refunded else ""),
    )


def _balance(conn: sqlite3.Connection, channel_id: int, user_id: str) -> int:
    row = conn.execute(
        "SELECT points FROM viewers WHERE channel_id = ? AND user_id = ?", (channel_id, user_id)
    ).fetchone()
    return 0 if row is None else int(row[0])


def recent(
    conn: sqlite3.Connection, channel_id: int, limit: int, *, status: str | None = None
) -> list[PurchaseRecord]:
    """The latest purchases (or those with ``status``), newest first."""
    where = " AND status = ?" if status else ""
    args: tuple[Any, ...] = (channel_id, status, limit) if status else (channel_id, limit)
    rows = conn.execute(
        f"SELECT {_PURCHASE_COLUMNS} FROM shop_purchases WHERE channel_id = ?{where}"
        " ORDER BY id DESC LIMIT ?",
        args,
    ).fetchall()
    return [_record(row) for row in rows]


def queued(conn: sqlite3.Connection, channel_id: int, limit: int) -> list[PurchaseRecord]:
    rows = conn.execute(
        f"SELECT {_PURCHASE_COLUMNS} FROM shop_purchases WHERE channel_id = ?"
        " AND status = 'queued' ORDER BY created_at, id LIMIT ?",
        (channel_id, limit),
    ).fetchall()
    return [_record(row) for row in rows]


# ---- the async API for chat, the pages, the queue and the jobs -------------------------


@dataclass
class Shop:
    """The shop of every channel: purchases, items, the queue's shop entries."""

    bank: Bank
    store: Store
    live: LiveNow = field(default=lambda channel: None)
    file_items: dict[str, tuple[ShopItemConfig, ...]] = field(default_factory=dict)
    queue_channels: set[str] = field(default_factory=set)  # with a queue item on sale
    _streams: dict[str, bool | None] = field(default_factory=dict)

    async def apply_file(self, items: Mapping[str, Sequence[ShopItemConfig]]) -> None:
        """The file's items, at start and on every reload."""
        self.file_items = {channel: tuple(found) for channel, found in items.items()}
        for channel, found in self.file_items.items():
            channel_id = self.bank.channel_id(channel)
            await self.store.write(partial(apply_file, channel_id=channel_id, items=found))
            await self._held(channel)

    async def _held(self, channel: str) -> None:
        if any(item.action == "queue" for item in await self.items(channel)):
            self.queue_channels.add(channel)
        else:
            self.queue_channels.discard(channel)

    async def buy(self, channel: str, viewer: Viewer, name: str, text: str) -> Purchase:
        """Raises NoSuchItem, NeedsText and the refusals of ``rules.check_purchase``."""
        channel_id = self.bank.channel_id(channel)
        live = self.live(channel)
        purchase = await self.store.write(
            lambda tx: buy(tx, channel_id, channel, viewer, name, text[:MAX_CHAT_CHARS], live)
        )
        self._streams[channel] = live
        return purchase

    async def watch_streams(self, channels: Sequence[str]) -> None:
        """Record stream changes as they happen (a purchase records them too), so a stream
        that starts with no purchase still starts the count of ``per_viewer`` anew."""
        for channel in channels:
            live = self.live(channel)
            if live is None or self._streams.get(channel) == live:
                continue
            channel_id = self.bank.channel_id(channel)
            await self.store.write(partial(observe_stream, channel_id=channel_id, live=live))
            self._streams[channel] = live

    async def items(self, channel: str) -> list[Item]:
        channel_id = self.bank.channel_id(channel)
        return await self.store.read(lambda c: items_of(c, channel_id))

    async def item(self, channel: str, name: str) -> Item | None:
        channel_id = self.bank.channel_id(channel)
        return await self.store.read(lambda c: item_of(c, channel_id, name))

    async def recent(self, channel: str, limit: int = RECENT_LIMIT) -> list[PurchaseRecord]:
        channel_id = self.bank.channel_id(channel)
        return await self.store.read(lambda c: recent(c, channel_id, limit))

    async def save(
        self, channel: str, item: ShopItemConfig, actor: str, *, replacing: str | None = None
    ) -> None:
        """Raises FileOwned, NameTaken, NoSuchItem."""
        channel_id = self.bank.channel_id(channel)
        await self.store.write(
            lambda tx: save_item(tx, channel_id, item, actor, replacing=replacing)
        )
        await self._held(channel)

    async def delete(self, channel: str, name: str, actor: str) -> None:
        """Raises NoSuchItem, FileOwned."""
        channel_id = self.bank.channel_id(channel)
        await self.store.write(lambda tx: delete_item(tx, channel_id, name, actor))
        await self._held(channel)

    async def webhook(self, channel: str, key: str) -> Secret | None:
        """The Discord webhook of an item, as configured now (see ``webhook_now``)."""
        return self.webhook_now(channel, key, await self.item(channel, key))

    def webhook_now(self, channel: str, key: str, item: Item | None) -> Secret | None:
        """A file item's webhook from the file; a dashboard item's from its env:/file:
        source, read now."""
        for configured in self.file_items.get(channel, ()):
            if configured.key == key:
                return configured.webhook_url
        source = None if item is None else item.spec.get("webhook_source")
        if not isinstance(source, str) or not source.startswith(("env:", "file:")):
            return None
        try:
            return resolve_secret(source)
        except ValueError:
            return None

    # -- the approval queue

    async def waiting(self, channel: str, limit: int) -> list[Waiting]:
        channel_id = self.bank.channel_id(channel)
        rows = await self.store.read(lambda c: queued(c, channel_id, limit))
        return [
            Waiting(
                SOURCE,
                str(p.id),
                "Shop",
                p.item_name,
                p.user_login,
                p.user_name,
                p.user_input,
                p.cost,
                p.created_at,
            )
            for p in rows
        ]

    async def decide(self, channel: str, entry_id: str, *, approve: bool, actor: str) -> Decided:
        """Raises UnknownEntry, NotWaiting."""
        if not entry_id.isdigit() or len(entry_id) > 18:
            raise UnknownEntry(channel, entry_id)
        channel_id = self.bank.channel_id(channel)
        return await self.store.write(
            lambda tx: decide(tx, channel_id, channel, int(entry_id), approve=approve, actor=actor)
        )
