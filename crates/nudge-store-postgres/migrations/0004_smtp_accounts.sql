-- Sending accounts. The same schema as SQLite's 0004_smtp_accounts.sql, in native types. The
-- password is stored as given, since the relay needs it; the API never returns it.
CREATE TABLE smtp_accounts (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    host text NOT NULL,
    port integer NOT NULL,
    tls text NOT NULL,
    username text,
    password text,
    from_email text NOT NULL,
    from_name text,
    rate_per_second double precision NOT NULL DEFAULT 0,
    daily_limit bigint NOT NULL DEFAULT 0,
    weight integer NOT NULL DEFAULT 1,
    tracking boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Which account sent a message. No foreign key: the ledger is history, and deleting an account
-- must not rewrite (or be blocked by) the messages it sent.
ALTER TABLE messages ADD COLUMN smtp_account_id uuid;
-- The daily limits count each account's messages sent since midnight UTC.
CREATE INDEX messages_sent_by_account ON messages (sent_at, smtp_account_id)
    WHERE smtp_account_id IS NOT NULL;
