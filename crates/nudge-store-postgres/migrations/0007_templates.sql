-- Stored email templates. The same schema as SQLite's 0007_templates.sql, in native types. A
-- message queued with one copies its content into the ledger row, so nothing refers to a
-- template and editing or deleting it never changes mail already queued.
CREATE TABLE templates (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    subject text NOT NULL,
    html text NOT NULL,
    text text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
