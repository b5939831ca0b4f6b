-- The foundation schema. Times are integers: milliseconds since the Unix epoch, UTC.
-- Points are integers in [0, 2^53-1]; see loyaltybot/amounts.py.

CREATE TABLE channels (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,          -- lowercase Twitch login, as in config.toml
    twitch_id     TEXT UNIQUE,                   -- the broadcaster's user id, once known
    earned_total  INTEGER NOT NULL DEFAULT 0,    -- sum of earning_ticks.points (audit cross-check)
    created_at    INTEGER NOT NULL
);

-- Per-channel loyalty settings. One owner per key: the config file or the dashboard.
CREATE TABLE channel_settings (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,                   -- JSON
    owner       TEXT NOT NULL CHECK (owner IN ('file', 'dashboard')),
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (channel_id, key)
) WITHOUT ROWID;

-- One row per (channel, Twitch user id). A renamed viewer keeps the row; the old login
-- goes to login_history. points == earned_total + sum(ledger.amount) is the audit.
CREATE TABLE viewers (
    channel_id       INTEGER NOT NULL REFERENCES channels (id),
    user_id          TEXT NOT NULL,
    login            TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    points           INTEGER NOT NULL DEFAULT 0 CHECK (points BETWEEN 0 AND 9007199254740991),
    earned_total     INTEGER NOT NULL DEFAULT 0 CHECK (earned_total >= 0),
    watch_seconds    INTEGER NOT NULL DEFAULT 0 CHECK (watch_seconds >= 0),
    messages         INTEGER NOT NULL DEFAULT 0 CHECK (messages >= 0),
    subscriber       INTEGER NOT NULL DEFAULT 0,
    earning_enabled  INTEGER NOT NULL DEFAULT 1,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE INDEX viewers_login ON viewers (channel_id, login);
-- No index on points: an earning tick rewrites every present viewer's balance, and the
-- daemon answers ranks and leaderboards from memory (loyaltybot/standings.py).

CREATE TABLE login_history (
    user_id    TEXT NOT NULL,
    login      TEXT NOT NULL,                    -- a login this user had before
    until      INTEGER NOT NULL,                 -- when we saw it replaced
    PRIMARY KEY (user_id, login)
) WITHOUT ROWID;
CREATE INDEX login_history_login ON login_history (login);

CREATE TRIGGER viewers_renamed AFTER UPDATE OF login ON viewers
WHEN OLD.login <> NEW.login
BEGIN
    INSERT INTO login_history (user_id, login, until) VALUES (OLD.user_id, OLD.login, NEW.last_seen)
    ON CONFLICT (user_id, login) DO UPDATE SET until = max(until, excluded.until);
END;

-- Every balance change except earning ticks, in the same transaction as the change.
CREATE TABLE ledger (
    id               INTEGER PRIMARY KEY,
    channel_id       INTEGER NOT NULL,
    user_id          TEXT NOT NULL,
    amount           INTEGER NOT NULL,           -- signed, as applied
    requested        INTEGER,                    -- what was asked, only when a clamp applied less
    balance_after    INTEGER NOT NULL,
    type             TEXT NOT NULL,
    reason           TEXT,
    related_user_id  TEXT,
    actor            TEXT,                       -- who caused it: a login, 'cli', 'dashboard:<login>'
    ref              TEXT,                       -- idempotency key (import row, redemption, event)
    created_at       INTEGER NOT NULL,
    FOREIGN KEY (channel_id, user_id) REFERENCES viewers (channel_id, user_id)
);
CREATE INDEX ledger_viewer ON ledger (channel_id, user_id, id);
CREATE INDEX ledger_channel ON ledger (channel_id, id);
CREATE UNIQUE INDEX ledger_ref ON ledger (channel_id, ref) WHERE ref IS NOT NULL;

-- One row per credited earning interval. The primary key is what makes a tick happen once.
CREATE TABLE earning_ticks (
    channel_id      INTEGER NOT NULL REFERENCES channels (id),
    seq             INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    credited_at     INTEGER NOT NULL,
    watch_seconds   INTEGER NOT NULL,
    present         INTEGER NOT NULL,
    points          INTEGER NOT NULL,
    PRIMARY KEY (channel_id, seq)
);

-- Ids of external events (EventSub message ids, ...) whose effect has been applied.
CREATE TABLE processed_events (
    source        TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    processed_at  INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;
