-- Sequences (automailers), their enrolments, forms, and the trigger jobs that start them.

-- A sequence's messages, start groups, condition and window are kept as one JSON document
-- (`definition`): they are always read and written whole. `version` grows with every edit and is
-- part of each step's idempotency key. `has_condition` lets the contact triggers below ask
-- "is any sequence bound to a condition?" without reading JSON.
CREATE TABLE sequences (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    has_condition INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Which groups start which sequences, so that joining a group can find them by index.
CREATE TABLE sequence_start_groups (
    group_id BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    sequence_id BLOB NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, sequence_id)
) WITHOUT ROWID;
CREATE INDEX sequence_start_groups_sequence ON sequence_start_groups (sequence_id);

-- A contact's place in a sequence: a state machine (active, suspended, paused, completed,
-- cancelled) with a due time and a lease, like the send ledger.
CREATE TABLE enrolments (
    id BLOB PRIMARY KEY,
    sequence_id BLOB NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    suspension TEXT,
    next_step INTEGER,
    next_due_at INTEGER,
    last_step INTEGER,
    last_message_at INTEGER,
    reason TEXT,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- A contact is in a sequence at most once at a time.
CREATE UNIQUE INDEX enrolments_current ON enrolments (sequence_id, contact_id)
    WHERE status IN ('active', 'suspended', 'paused');
-- The engine's claim: active enrolments in due order.
CREATE INDEX enrolments_due ON enrolments (next_due_at, id)
    WHERE status = 'active' AND next_due_at IS NOT NULL;
CREATE INDEX enrolments_contact ON enrolments (contact_id);
CREATE INDEX enrolments_sequence ON enrolments (sequence_id, id);

CREATE TABLE forms (
    id BLOB PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Trigger jobs: "look at this contact's sequences again". They are written by the database
-- triggers below in the transaction that changed the contact, so no code path that adds a
-- contact to a group or changes its fields can forget them. A job is due at once; `group_id`
-- names the group the contact joined, if that is what happened.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    group_id BLOB,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX jobs_contact ON jobs (contact_id);

CREATE TRIGGER jobs_on_group_join AFTER INSERT ON contact_groups
WHEN EXISTS (SELECT 1 FROM sequence_start_groups WHERE group_id = NEW.group_id)
BEGIN
    INSERT INTO jobs (contact_id, group_id) VALUES (NEW.contact_id, NEW.group_id);
END;

CREATE TRIGGER jobs_on_contact_insert AFTER INSERT ON contacts
WHEN EXISTS (SELECT 1 FROM sequences WHERE has_condition = 1)
BEGIN
    INSERT INTO jobs (contact_id) VALUES (NEW.id);
END;

CREATE TRIGGER jobs_on_contact_update AFTER UPDATE OF fields, status ON contacts
WHEN (OLD.fields IS NOT NEW.fields OR OLD.status IS NOT NEW.status)
    AND EXISTS (SELECT 1 FROM sequences WHERE has_condition = 1)
BEGIN
    INSERT INTO jobs (contact_id) VALUES (NEW.id);
END;
