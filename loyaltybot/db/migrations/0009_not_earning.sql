-- Viewers a moderator stopped from earning: few, and asked for at every earning tick of a
-- channel whose ranks the daemon keeps in memory (points.ledger.credit_tick).
CREATE INDEX viewers_not_earning ON viewers (channel_id) WHERE earning_enabled = 0;
