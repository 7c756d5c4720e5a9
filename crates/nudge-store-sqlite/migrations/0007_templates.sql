-- Stored email templates. A message queued with one copies its content into the ledger row, so
-- nothing refers to a template and editing or deleting it never changes mail already queued.
CREATE TABLE templates (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
