-- Instants are INTEGER microseconds since the Unix epoch: they sort as numbers, which RFC 3339
-- text with a varying number of fraction digits does not. Ids are UUIDv7 as 16-byte BLOBs, so
-- ordering by id is ordering by creation time.

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE users (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE fields (
    key TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE groups (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id BLOB REFERENCES groups (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX groups_parent ON groups (parent_id);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE contacts (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    language TEXT,
    time_zone TEXT,
    owner_id BLOB REFERENCES users (id) ON DELETE SET NULL,
    status TEXT NOT NULL,
    source TEXT,
    consent TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_status ON contacts (status, id);
-- `q` matches the start of the email, first or last name (case-insensitively for ASCII).
CREATE INDEX contacts_first_name ON contacts (lower(first_name));
CREATE INDEX contacts_last_name ON contacts (lower(last_name));

CREATE TABLE contact_groups (
    group_id BLOB NOT NULL REFERENCES groups (id),
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX contact_groups_contact ON contact_groups (contact_id);

CREATE TABLE contact_tags (
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX contact_tags_contact ON contact_tags (contact_id);

-- Entries are only ever read per contact, so they are stored clustered by contact: one B-tree
-- instead of a table and two indexes, which matters when an import writes a million of them.
CREATE TABLE timeline (
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    id BLOB NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (contact_id, id)
) WITHOUT ROWID;

-- What an erase keeps: the SHA-256 of the lower-cased address and the status it had.
CREATE TABLE suppressions (
    email_hash TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    erased_at INTEGER NOT NULL
);
