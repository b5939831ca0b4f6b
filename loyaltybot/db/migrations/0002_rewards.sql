-- Channel points (SPEC §6): redemptions and what became of them, the work that runs after
-- the webhook has answered, votes, viewer titles, per-user reward cooldowns, and the
-- rewards the bot itself created on Twitch (only those can be marked FULFILLED/CANCELED).

-- One row per redemption seen, keyed by Twitch's redemption id: a redemption has one
-- effect even if Twitch delivers it under two message ids.
CREATE TABLE redemptions (
    channel_id      INTEGER NOT NULL REFERENCES channels (id),
    redemption_id   TEXT NOT NULL,
    broadcaster_id  TEXT NOT NULL,                 -- the channel's Twitch user id
    reward_id       TEXT NOT NULL,
    reward_title    TEXT NOT NULL,
    reward_cost     INTEGER NOT NULL,              -- channel points, as Twitch reported it
    action          TEXT,                          -- the configured action; NULL = unmatched
    user_id         TEXT NOT NULL,
    user_login      TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    user_input      TEXT NOT NULL,                 -- as received, cut to 500 characters
    redeemed_at     TEXT NOT NULL,                 -- Twitch's RFC 3339 time
    -- unmatched: no configured reward (left alone) | queued: waits for a moderator |
    -- pending: a slow action (forward) is running | fulfilled | canceled
    status          TEXT NOT NULL CHECK (status IN
                        ('unmatched', 'queued', 'pending', 'fulfilled', 'canceled')),
    outcome         TEXT NOT NULL,                 -- why: done, insufficient_points, ...
    loyalty_cost    INTEGER NOT NULL DEFAULT 0,    -- loyalty points taken (0 if none/refunded)
    manageable      INTEGER NOT NULL DEFAULT 0,    -- the bot owns the reward and Twitch holds
                                                   -- the redemption as unfulfilled: it may
                                                   -- mark it FULFILLED or CANCELED
    decided_by      TEXT,                          -- who approved or rejected a queued one
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (channel_id, redemption_id)
) WITHOUT ROWID;
-- The moderation queue; only waiting redemptions are in it, so keeping it costs nothing
-- for the others.
CREATE INDEX redemptions_queued ON redemptions (channel_id, created_at) WHERE status = 'queued';

-- Slow work decided inside a transaction and done after it (chat lines, forwards, Helix
-- status updates). A row is written with the effect that needs it and deleted when the
-- work is done, so a crash or restart resumes it; work that can no longer succeed stays
-- as 'dead' (or 'expired', for chat lines too old to send) for the operator to see.
CREATE TABLE pending_work (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,                    -- chat | forward | redemption_status
    channel_id   INTEGER NOT NULL REFERENCES channels (id),
    payload      TEXT NOT NULL,                    -- JSON
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead', 'expired')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   INTEGER NOT NULL,                 -- ms; due from then on
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_error   TEXT
);
CREATE INDEX pending_work_due ON pending_work (state, not_before);

-- Vote tallies, per channel and poll (the vote reward's title, casefolded).
CREATE TABLE votes (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    poll        TEXT NOT NULL,
    title       TEXT NOT NULL,                     -- the poll as shown (the reward's title)
    option      TEXT NOT NULL,                     -- normalised user input
    count       INTEGER NOT NULL CHECK (count > 0),
    first_at    INTEGER NOT NULL,                  -- ties are shown in order of first vote
    PRIMARY KEY (channel_id, poll, option)
) WITHOUT ROWID;

-- Titles viewers unlocked; !points shows the most recent one.
CREATE TABLE viewer_titles (
    channel_id     INTEGER NOT NULL,
    user_id        TEXT NOT NULL,
    title          TEXT NOT NULL,
    unlocked_at    INTEGER NOT NULL,
    redemption_id  TEXT,
    PRIMARY KEY (channel_id, user_id, title),
    FOREIGN KEY (channel_id, user_id) REFERENCES viewers (channel_id, user_id)
) WITHOUT ROWID;
CREATE INDEX viewer_titles_latest ON viewer_titles (channel_id, user_id, unlocked_at);

-- Per-user reward cooldowns; `reward` is the configured title, casefolded.
CREATE TABLE reward_cooldowns (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    reward      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    until       INTEGER NOT NULL,                  -- ms
    PRIMARY KEY (channel_id, reward, user_id)
) WITHOUT ROWID;

-- Rewards the bot created on Twitch (`loyaltybot rewards sync`, or found at start-up with
-- only_manageable_rewards): the only ones whose redemptions it may fulfil or cancel.
CREATE TABLE owned_rewards (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    reward_id   TEXT NOT NULL,
    title       TEXT NOT NULL,
    synced_at   INTEGER NOT NULL,
    PRIMARY KEY (channel_id, reward_id)
) WITHOUT ROWID;
