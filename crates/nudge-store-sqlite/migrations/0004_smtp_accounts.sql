-- Sending accounts. The password is stored as given, since the relay needs it; the API never
-- returns it. rate_per_second and daily_limit of 0 mean no limit.
CREATE TABLE smtp_accounts (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    tls TEXT NOT NULL,
    username TEXT,
    password TEXT,
    from_email TEXT NOT NULL,
    from_name TEXT,
    rate_per_second REAL NOT NULL DEFAULT 0,
    daily_limit INTEGER NOT NULL DEFAULT 0,
    weight INTEGER NOT NULL DEFAULT 1,
    tracking INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Which account sent a message. No foreign key: the ledger is history, and deleting an account
-- must not rewrite (or be blocked by) the messages it sent.
ALTER TABLE messages ADD COLUMN smtp_account_id BLOB;
-- The daily limits count each account's messages sent since midnight UTC.
CREATE INDEX messages_sent_by_account ON messages (sent_at, smtp_account_id)
    WHERE smtp_account_id IS NOT NULL;
