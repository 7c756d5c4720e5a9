-- The send ledger: one row per outbound message, a state machine with a lease.
CREATE TABLE messages (
    id BLOB PRIMARY KEY,
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    class TEXT NOT NULL,
    status TEXT NOT NULL,
    skip_rule TEXT,
    to_email TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT,
    from_email TEXT,
    from_name TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX messages_due ON messages (status, due_at);
CREATE INDEX messages_contact ON messages (contact_id, id);
