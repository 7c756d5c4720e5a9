-- The send ledger: one row per outbound message, a state machine with a lease. The same schema
-- as SQLite's 0002_delivery.sql, in native types.
--
-- Constraint names are left to Postgres on purpose: a lost race on an idempotency key is
-- resolved by `ON CONFLICT (idempotency_key)`, which uses the generated
-- `messages_idempotency_key_key`.

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    class text NOT NULL,
    status text NOT NULL,
    skip_rule text,
    to_email text NOT NULL,
    subject text NOT NULL,
    html text NOT NULL,
    text text,
    from_email text,
    from_name text,
    idempotency_key text NOT NULL UNIQUE,
    message_id text,
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL,
    sent_at timestamptz
);
-- The claim reads the live messages in (due_at, id) order and stops at the first one not yet
-- due. Partial, because sent, failed and skipped messages (nearly all rows, in time) are never
-- claimed again: the index stays as small as the backlog, however long the ledger grows.
CREATE INDEX messages_due ON messages (due_at, id)
    WHERE status IN ('queued', 'retrying', 'sending');
-- Listing a contact's messages newest first, and the cascade when a contact is erased.
CREATE INDEX messages_contact ON messages (contact_id, id);
