-- The shop (SPEC §10.1): items, purchases, and the streams purchase limits count in.

-- Items of a channel, from config.toml (owner 'file', read-only on the dashboard) or the
-- dashboard. An item the file no longer lists, or the dashboard deleted, is kept inactive
-- so its purchases still name it.
CREATE TABLE shop_items (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    key         TEXT NOT NULL,                     -- the name casefolded: what !buy matches
    name        TEXT NOT NULL,
    owner       TEXT NOT NULL CHECK (owner IN ('file', 'dashboard')),
    -- JSON: the item's keys as config.toml writes them. A Discord webhook is a secret: only
    -- its source is kept ("env:NAME", "file:/path"; "inline" for one written in the file).
    spec        TEXT NOT NULL,
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),  -- not refunded; left = stock - sold
    position    INTEGER NOT NULL,                  -- order in !shop and on the pages
    active      INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (channel_id, key)
) WITHOUT ROWID;

-- One row per purchase, written in the transaction that debits its cost (ledger type
-- shop_purchase, ref 'purchase:<id>'); a refund (shop_refund) cancels it and gives the
-- stock back.
CREATE TABLE shop_purchases (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    item_key    TEXT NOT NULL,
    item_name   TEXT NOT NULL,
    action      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    user_login  TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    user_input  TEXT NOT NULL,
    cost        INTEGER NOT NULL,
    refunded    INTEGER NOT NULL DEFAULT 0,
    stream      INTEGER NOT NULL,                  -- shop_streams.stream when bought
    -- fulfilled | queued: waits for a moderator | pending: a forward is running | canceled
    status      TEXT NOT NULL CHECK (status IN ('fulfilled', 'queued', 'pending', 'canceled')),
    outcome     TEXT NOT NULL,
    decided_by  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    FOREIGN KEY (channel_id, user_id) REFERENCES viewers (channel_id, user_id)
);
CREATE INDEX shop_purchases_viewer ON shop_purchases (channel_id, item_key, user_id, created_at);
CREATE INDEX shop_purchases_item ON shop_purchases (channel_id, item_key, created_at);
CREATE INDEX shop_purchases_channel ON shop_purchases (channel_id, id);
CREATE INDEX shop_purchases_queued ON shop_purchases (channel_id, created_at)
    WHERE status = 'queued';

-- Streams seen going live, per channel: `per_viewer` limits count purchases of the current
-- one (from one stream's start to the next's). 0 = before the first stream seen.
CREATE TABLE shop_streams (
    channel_id  INTEGER PRIMARY KEY REFERENCES channels (id),
    stream      INTEGER NOT NULL,
    live        INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL
);
