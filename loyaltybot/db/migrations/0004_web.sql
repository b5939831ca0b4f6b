-- The web dashboard's own state. Secrets the daemon generates for itself (the session
-- cookie key, when config.toml sets no web.session_secret) live here so that logins
-- survive restarts; the row is written once and never shown.
CREATE TABLE web_secrets (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
