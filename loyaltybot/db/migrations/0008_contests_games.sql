-- Contests (SPEC §10.3), games (§10.4) and the economy page's daily figures (§10.7).

-- Contests: open -> closed -> settled (paid out, or refunded when nobody backed the
-- winner), or canceled (every bet refunded). The id is the number the bot announces
-- ("Contest #3"). Bets are stakes of the contest's escrow round, with the option as the
-- stake's option; settlement pays the whole pool back in one transaction.
CREATE TABLE contests (
    id             INTEGER PRIMARY KEY,
    channel_id     INTEGER NOT NULL REFERENCES channels (id),
    round_id       INTEGER NOT NULL UNIQUE REFERENCES escrow_rounds (id),
    question       TEXT NOT NULL,
    options        TEXT NOT NULL,                -- JSON array of the option texts, 2 to 10
    state          TEXT NOT NULL DEFAULT 'open'
                       CHECK (state IN ('open', 'closed', 'settled', 'refunded', 'canceled')),
    min_bet        INTEGER NOT NULL CHECK (min_bet >= 1),
    max_bet        INTEGER NOT NULL CHECK (max_bet >= min_bet),  -- per viewer, in total
    closes_at      INTEGER,                      -- ms: closed by the timer (NULL = by a mod)
    winner         INTEGER,                      -- the winning option's number, once settled
    winning_pool   INTEGER,                      -- recorded at settlement
    losing_pool    INTEGER,
    extra_points   INTEGER,                      -- points the largest remainders received
    opened_by      TEXT,
    opened_at      INTEGER NOT NULL,
    closed_at      INTEGER,
    ended_by       TEXT,
    ended_at       INTEGER,
    CHECK ((state IN ('settled', 'refunded')) = (winner IS NOT NULL))
);
-- At most one contest per channel takes bets or waits for its winner.
CREATE UNIQUE INDEX contests_active ON contests (channel_id) WHERE state IN ('open', 'closed');
CREATE INDEX contests_channel ON contests (channel_id, id);
CREATE INDEX contests_closing ON contests (closes_at) WHERE state = 'open' AND closes_at IS NOT NULL;

-- Each option's pool and bettors, kept in the transaction of every bet so the overlay and
-- !contest read one row per option, not every stake.
CREATE TABLE contest_pools (
    contest_id  INTEGER NOT NULL REFERENCES contests (id),
    option      INTEGER NOT NULL CHECK (option BETWEEN 1 AND 10),
    pool        INTEGER NOT NULL DEFAULT 0 CHECK (pool >= 0),
    bettors     INTEGER NOT NULL DEFAULT 0 CHECK (bettors >= 0),
    PRIMARY KEY (contest_id, option)
) WITHOUT ROWID;

-- Games: one row per round. gamble and slots are settled in the transaction that plays
-- them (one ledger row, game_win or game_loss, for the net change); a duel and a heist
-- hold their stakes in an escrow round until one transaction settles or refunds it.
-- `rules` is the settings the round was played with (JSON), so its outcome can be checked
-- against them later; `won` and `lost` are the viewers' net gains and losses, per round.
CREATE TABLE game_rounds (
    id           INTEGER PRIMARY KEY,
    channel_id   INTEGER NOT NULL REFERENCES channels (id),
    game         TEXT NOT NULL CHECK (game IN ('gamble', 'slots', 'duel', 'heist')),
    round_id     INTEGER UNIQUE REFERENCES escrow_rounds (id),  -- duel, heist
    state        TEXT NOT NULL CHECK (state IN ('open', 'settled', 'refunded')),
    user_id      TEXT NOT NULL,                 -- the player; a duel's challenger; who opened a heist
    target_id    TEXT,                          -- a duel's target
    bet          INTEGER NOT NULL DEFAULT 0,    -- points bet in all (a duel: both stakes)
    returned     INTEGER NOT NULL DEFAULT 0,    -- points paid back in all
    won          INTEGER NOT NULL DEFAULT 0,    -- the winners' net gains
    lost         INTEGER NOT NULL DEFAULT 0,    -- the losers' net losses
    players      INTEGER NOT NULL DEFAULT 1,
    rules        TEXT NOT NULL,
    outcome      TEXT,                          -- one line: what happened, as chat said it
    created_at   INTEGER NOT NULL,
    settled_at   INTEGER,
    CHECK ((state = 'open') = (settled_at IS NULL))
);
CREATE INDEX game_rounds_channel ON game_rounds (channel_id, id);
CREATE INDEX game_rounds_game ON game_rounds (channel_id, game, id);
CREATE INDEX game_rounds_open ON game_rounds (channel_id, game) WHERE state = 'open';
-- At most one heist lobby per channel.
CREATE UNIQUE INDEX game_rounds_heist ON game_rounds (channel_id) WHERE game = 'heist' AND state = 'open';

-- Every roll, from `secrets`, with the round it decided: a gamble's d100, the three slots
-- symbols, a duel's coin flip (the side that won), each heist player's d100.
CREATE TABLE game_rolls (
    game_round_id  INTEGER NOT NULL REFERENCES game_rounds (id),
    seq            INTEGER NOT NULL,            -- 1, 2, ...: a heist's players in join order
    user_id        TEXT NOT NULL,
    bet            INTEGER NOT NULL,
    roll           TEXT NOT NULL,               -- "73", "Kappa Kappa LUL", "challenger"
    returned       INTEGER NOT NULL,            -- what this roll paid back
    PRIMARY KEY (game_round_id, seq)
) WITHOUT ROWID;

-- Per channel, UTC day and game: rounds played out (a duel accepted, a heist that ran),
-- points bet and paid back; kept by the transaction that settles each round, so the house
-- edge realised is read from a few rows, not from every round.
CREATE TABLE game_daily (
    channel_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    game        TEXT NOT NULL,
    rounds      INTEGER NOT NULL DEFAULT 0,
    bet         INTEGER NOT NULL DEFAULT 0,
    returned    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, day, game)
) WITHOUT ROWID;

-- Games settings the dashboard owns: the keys [channels.C.games] in config.toml does not
-- write (those are the file's, applied on every start and reload). Values are JSON.
CREATE TABLE game_settings (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT,
    PRIMARY KEY (channel_id, key)
) WITHOUT ROWID;

-- ---- the economy page's daily figures (UTC days since the epoch) --------------------------
--
-- Kept by triggers in the transaction of every change, so the page reads a few hundred
-- rows whatever the size of the ledger, and the figures are exact: no code path can
-- write the ledger or settle a round without them following.

-- Per channel, day and ledger type: points credited, points debited, rows.
CREATE TABLE ledger_daily (
    channel_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    credits     INTEGER NOT NULL DEFAULT 0,
    debits      INTEGER NOT NULL DEFAULT 0,
    entries     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, day, type)
) WITHOUT ROWID;

CREATE TRIGGER ledger_daily_add AFTER INSERT ON ledger
BEGIN
    INSERT INTO ledger_daily (channel_id, day, type, credits, debits, entries)
    VALUES (NEW.channel_id, NEW.created_at / 86400000, NEW.type, max(NEW.amount, 0),
            max(-NEW.amount, 0), 1)
    ON CONFLICT (channel_id, day, type) DO UPDATE SET
        credits = credits + excluded.credits,
        debits = debits + excluded.debits,
        entries = entries + 1;
END;

-- Per channel, day and kind of escrow round (giveaway, contest, duel, heist): rounds that
-- ended that day, and what their stakers won and lost in them (each viewer's payout or
-- refund minus their stake: above 0 is won, below 0 lost; a refund is neither).
CREATE TABLE escrow_daily (
    channel_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    rounds      INTEGER NOT NULL DEFAULT 0,
    won         INTEGER NOT NULL DEFAULT 0,
    lost        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, day, kind)
) WITHOUT ROWID;

-- What each viewer got back from a round, read from the index alone when the round ends
-- (a contest of 100,000 bets: its 133,000 rows without a table lookup each).
-- It serves every query the index of migration 0005 served (the same leading columns),
-- so that one goes: one index to keep per stake and payout, not two.
CREATE INDEX ledger_round_amount ON ledger (round_id, user_id, amount) WHERE round_id IS NOT NULL;
DROP INDEX ledger_round;

CREATE TRIGGER escrow_daily_ended AFTER UPDATE OF state ON escrow_rounds
WHEN OLD.state = 'open' AND NEW.state <> 'open'
BEGIN
    INSERT INTO escrow_daily (channel_id, day, kind, rounds, won, lost)
    SELECT NEW.channel_id, NEW.settled_at / 86400000, NEW.kind, 1,
           coalesce(sum(max(n.net, 0)), 0), coalesce(sum(max(-n.net, 0)), 0)
    FROM (SELECT sum(amount) AS net FROM ledger WHERE round_id = NEW.id GROUP BY user_id) AS n
    WHERE true
    ON CONFLICT (channel_id, day, kind) DO UPDATE SET
        rounds = rounds + 1,
        won = won + excluded.won,
        lost = lost + excluded.lost;
END;

-- What was there before this migration.
INSERT INTO ledger_daily (channel_id, day, type, credits, debits, entries)
SELECT channel_id, created_at / 86400000, type, sum(max(amount, 0)), sum(max(-amount, 0)),
       count(*)
FROM ledger GROUP BY channel_id, created_at / 86400000, type;

INSERT INTO escrow_daily (channel_id, day, kind, rounds, won, lost)
SELECT r.channel_id, r.settled_at / 86400000, r.kind, count(*),
       coalesce(sum(n.won), 0), coalesce(sum(n.lost), 0)
FROM escrow_rounds AS r
LEFT JOIN (SELECT round_id, sum(max(net, 0)) AS won, sum(max(-net, 0)) AS lost
           FROM (SELECT round_id, sum(amount) AS net FROM ledger WHERE round_id IS NOT NULL
                 GROUP BY round_id, user_id)
           GROUP BY round_id) AS n ON n.round_id = r.id
WHERE r.state <> 'open'
GROUP BY r.channel_id, r.settled_at / 86400000, r.kind;

-- Watching per day: the channel's ticks by the time they were credited.
CREATE INDEX earning_ticks_credited ON earning_ticks (channel_id, credited_at);
