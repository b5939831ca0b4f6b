-- Escrow (SPEC §10.6, DESIGN invariant 9) and giveaways (SPEC §10.2).
--
-- A round holds the points viewers staked in it (giveaway tickets, contest bets, duel and
-- heist stakes) from the transaction that accepts each stake until the one transaction
-- that settles the round: paying out (or keeping what was spent) or refunding every
-- stake. A stake is a ledger debit naming its round, a payout or refund a ledger credit
-- naming it, so balances stay exact (points == earned_total + sum(ledger)) and the audit
-- also proves, per round: held == staked - returned while open, 0 once settled; the
-- stakes recorded add up to what the ledger took; each viewer's stake equals their debits.

CREATE TABLE escrow_rounds (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    kind        TEXT NOT NULL,                   -- the owning feature: giveaway, contest, duel, heist
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'settled', 'refunded')),
    held        INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),      -- points held now
    staked      INTEGER NOT NULL DEFAULT 0 CHECK (staked >= 0),    -- every point staked into it
    returned    INTEGER NOT NULL DEFAULT 0 CHECK (returned >= 0),  -- paid out or refunded (applied)
    units       INTEGER NOT NULL DEFAULT 0 CHECK (units >= 0),     -- tickets (or other units) staked
    entrants    INTEGER NOT NULL DEFAULT 0 CHECK (entrants >= 0),  -- viewers with a stake
    deadline    INTEGER,                         -- ms; NULL = none (settled by a person)
    created_at  INTEGER NOT NULL,
    settled_at  INTEGER,
    CHECK ((state = 'open') = (settled_at IS NULL)),
    CHECK (state = 'open' OR held = 0)
);
CREATE INDEX escrow_rounds_open ON escrow_rounds (channel_id, kind) WHERE state = 'open';
CREATE INDEX escrow_rounds_due ON escrow_rounds (deadline)
    WHERE state = 'open' AND deadline IS NOT NULL;

-- One row per viewer and round: what they have in it. Kept after settlement (a giveaway's
-- entries are what its draw is verified against).
CREATE TABLE escrow_stakes (
    round_id    INTEGER NOT NULL REFERENCES escrow_rounds (id),
    user_id     TEXT NOT NULL,
    channel_id  INTEGER NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount >= 0),  -- points staked (0 for a free entry)
    units       INTEGER NOT NULL DEFAULT 0 CHECK (units >= 0),
    option      INTEGER,                         -- what the stake is on (a contest's option)
    seq         INTEGER NOT NULL,                -- 1, 2, ...: order of first stake in the round
    first_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (round_id, user_id),
    FOREIGN KEY (channel_id, user_id) REFERENCES viewers (channel_id, user_id)
) WITHOUT ROWID;

-- Stakes, payouts and refunds name their round.
ALTER TABLE ledger ADD COLUMN round_id INTEGER REFERENCES escrow_rounds (id);
CREATE INDEX ledger_round ON ledger (round_id, user_id) WHERE round_id IS NOT NULL;

-- Giveaways: open -> closed -> drawn (-> ended by the next open), or canceled (every ticket
-- refunded). The id is the number the bot announces ("Giveaway #12"). Tickets are stakes
-- of the giveaway's escrow round, spent when the first draw settles it.
CREATE TABLE giveaways (
    id               INTEGER PRIMARY KEY,
    channel_id       INTEGER NOT NULL REFERENCES channels (id),
    round_id         INTEGER NOT NULL UNIQUE REFERENCES escrow_rounds (id),
    prize            TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'open'
                         CHECK (state IN ('open', 'closed', 'drawn', 'canceled', 'ended')),
    ticket_cost      INTEGER NOT NULL CHECK (ticket_cost >= 0),          -- 0 = free entry
    max_tickets      INTEGER NOT NULL CHECK (max_tickets >= 1),          -- per viewer
    subscriber_luck  INTEGER NOT NULL CHECK (subscriber_luck BETWEEN 100 AND 1000),  -- hundredths
    seed             TEXT,                       -- 64 hex, drawn at close; published at the draw
    commitment       TEXT,                       -- SHA-256 of the seed's hex, posted at close
    algorithm        TEXT NOT NULL,              -- how winners follow from the seed (rules.py)
    position         INTEGER NOT NULL DEFAULT 0, -- random numbers the draws have used
    opened_by        TEXT,
    opened_at        INTEGER NOT NULL,
    closed_at        INTEGER,
    drawn_at         INTEGER,                    -- the first draw
    ended_at         INTEGER,
    CHECK ((seed IS NULL) = (commitment IS NULL)),
    CHECK (state = 'open' OR state = 'canceled' OR seed IS NOT NULL)
);
-- At most one giveaway per channel takes tickets or waits for its draw.
CREATE UNIQUE INDEX giveaways_active ON giveaways (channel_id) WHERE state IN ('open', 'closed');
CREATE INDEX giveaways_channel ON giveaways (channel_id, id);

-- What a ticket's weight needs beside the stake: whether the entrant was a subscriber.
CREATE TABLE giveaway_entries (
    giveaway_id  INTEGER NOT NULL REFERENCES giveaways (id),
    user_id      TEXT NOT NULL,
    subscriber   INTEGER NOT NULL DEFAULT 0,     -- at any of their purchases
    PRIMARY KEY (giveaway_id, user_id)
) WITHOUT ROWID;

-- Each !giveaway draw, and every entrant it picked in draw order: winners, and those
-- skipped as not present.
CREATE TABLE giveaway_draws (
    giveaway_id   INTEGER NOT NULL REFERENCES giveaways (id),
    draw_no       INTEGER NOT NULL,              -- 1, 2, ...
    requested     INTEGER NOT NULL,              -- n
    present_only  INTEGER NOT NULL,              -- drawn with `present`
    position      INTEGER NOT NULL,              -- random numbers used after it
    drawn_by      TEXT,
    drawn_at      INTEGER NOT NULL,
    PRIMARY KEY (giveaway_id, draw_no)
) WITHOUT ROWID;

CREATE TABLE giveaway_picks (
    giveaway_id  INTEGER NOT NULL,
    pick         INTEGER NOT NULL,               -- 1, 2, ...: place in the draw order
    draw_no      INTEGER NOT NULL,
    user_id      TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('won', 'skipped')),
    PRIMARY KEY (giveaway_id, pick),
    UNIQUE (giveaway_id, user_id),
    FOREIGN KEY (giveaway_id, draw_no) REFERENCES giveaway_draws (giveaway_id, draw_no)
) WITHOUT ROWID;
