-- Admin UI sign-in: lock-out state and the chosen language on users, and the sessions table.

-- Failed sign-ins since the last success or lock-out; reaching the limit sets `locked_until`.
ALTER TABLE users ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
-- The admin UI's language for this user (en, nl, de); NULL follows the browser.
ALTER TABLE users ADD COLUMN language TEXT;

-- A signed-in browser. Only the SHA-256 of the cookie's 32 random bytes is kept, so a copy of
-- the database signs nobody in. Expiry (idle and absolute) is decided from the two instants.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
