-- The same schema as SQLite's 0001_contacts.sql, in native types. Ids are UUIDv7, and Postgres
-- compares uuid values byte by byte, so ordering by id is ordering by creation time.
--
-- The store recognises a lost race by the name of the unique index that reports it:
-- `users_email_key_key` and `fields_pkey` are the names Postgres generates, and the index on
-- `contacts.email_key` is created under the name a UNIQUE constraint would get.

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    scopes text NOT NULL,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    email_key text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE fields (
    key text PRIMARY KEY,
    label text NOT NULL,
    type text NOT NULL,
    options jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE groups (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    parent_id uuid REFERENCES groups (id),
    created_at timestamptz NOT NULL
);
CREATE INDEX groups_parent ON groups (parent_id);

CREATE TABLE tags (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

-- The primary key carries the status: a filtered count walks it in id order next to the
-- membership indexes and reads the status from it, in fewer pages than `contacts_status`, whose
-- leaves are only half full because every status has its own insertion point.
CREATE TABLE contacts (
    id uuid NOT NULL,
    email text NOT NULL,
    email_key text NOT NULL,
    first_name text,
    last_name text,
    phone text,
    language text,
    time_zone text,
    owner_id uuid REFERENCES users (id) ON DELETE SET NULL,
    status text NOT NULL,
    source text,
    consent jsonb,
    fields jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (id) INCLUDE (status)
);
CREATE INDEX contacts_status ON contacts (status, id);
-- One index for both the exact `email_key` lookups and `q`'s LIKE 'prefix%' (text_pattern_ops
-- has `=` too), so that every imported contact updates one index fewer.
CREATE UNIQUE INDEX contacts_email_key_key ON contacts (email_key text_pattern_ops);
-- `q` also matches the start of the first or last name.
CREATE INDEX contacts_first_name ON contacts (lower(first_name) text_pattern_ops);
CREATE INDEX contacts_last_name ON contacts (lower(last_name) text_pattern_ops);

CREATE TABLE contact_groups (
    group_id uuid NOT NULL REFERENCES groups (id),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, contact_id)
);
-- With `group_id`, "is this contact in one of these groups" is answered from the index alone.
CREATE INDEX contact_groups_contact ON contact_groups (contact_id, group_id);

CREATE TABLE contact_tags (
    tag_id bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, contact_id)
);
CREATE INDEX contact_tags_contact ON contact_tags (contact_id, tag_id);

-- Entries are only ever read by contact, so the key is (contact_id, id) as in SQLite, and there
-- is no second index to update for each entry. The ids are UUIDv7, unique on their own.
CREATE TABLE timeline (
    id uuid NOT NULL,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    summary text NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (contact_id, id)
);

-- What an erase keeps: the SHA-256 of the lower-cased address and the status it had.
CREATE TABLE suppressions (
    email_hash text PRIMARY KEY,
    status text NOT NULL,
    erased_at timestamptz NOT NULL
);
