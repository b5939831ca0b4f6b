-- Twitch user tokens obtained by `loyaltybot auth` (device code flow) and kept fresh by the
-- daemon. One row per Twitch account: the bot's, and each broadcaster's that was authorised.
-- When the bot account is also a configured channel, one token (one row) serves both roles:
-- Twitch rotates refresh tokens, so two copies of one grant would invalidate each other.
-- The database file is therefore a secret too (the service runs with UMask=0077).

CREATE TABLE twitch_tokens (
    login          TEXT PRIMARY KEY,             -- lowercase login the token belongs to
    user_id        TEXT NOT NULL,
    client_id      TEXT NOT NULL,                -- the app it was issued to; refresh needs the same
    access_token   TEXT NOT NULL,
    refresh_token  TEXT,
    scopes         TEXT NOT NULL,                -- space-separated, sorted
    expires_at     INTEGER,                      -- ms since the epoch; NULL = does not expire
    obtained_at    INTEGER NOT NULL,             -- when `loyaltybot auth` stored it
    refreshed_at   INTEGER NOT NULL,             -- last refresh (or obtained_at)
    validated_at   INTEGER                       -- last successful /validate
) WITHOUT ROWID;
