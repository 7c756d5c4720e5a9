-- Sequences (automailers), their enrolments, forms, and the trigger jobs that start them. The
-- same schema as SQLite's 0009_sequences.sql, in native types.

-- A sequence's messages, start groups, condition and window are kept as one JSON document
-- (`definition`): they are always read and written whole. `version` grows with every edit and is
-- part of each step's idempotency key. `has_condition` lets the contact triggers below ask
-- "is any sequence bound to a condition?" without reading JSON.
CREATE TABLE sequences (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    definition jsonb NOT NULL,
    version integer NOT NULL,
    has_condition boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Which groups start which sequences, so that joining a group can find them by index.
CREATE TABLE sequence_start_groups (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    sequence_id uuid NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, sequence_id)
);
CREATE INDEX sequence_start_groups_sequence ON sequence_start_groups (sequence_id);

-- A contact's place in a sequence: a state machine (active, suspended, paused, completed,
-- cancelled) with a due time and a lease, like the send ledger.
CREATE TABLE enrolments (
    id uuid PRIMARY KEY,
    sequence_id uuid NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status text NOT NULL,
    suspension text,
    next_step integer,
    next_due_at timestamptz,
    last_step integer,
    last_message_at timestamptz,
    reason text,
    lease_owner text,
    lease_until timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
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
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Trigger jobs: "look at this contact's sequences again". They are written by the database
-- triggers below in the transaction that changed the contact, so no code path that adds a
-- contact to a group or changes its fields can forget them. A job is due at once; `group_id`
-- names the group the contact joined, if that is what happened.
CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    group_id uuid,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX jobs_contact ON jobs (contact_id);

-- Statement-level triggers over transition tables: an import of a million contacts runs each
-- trigger once per statement, not once per row. (SQLite's are per row; they write the same
-- jobs.) An UPDATE trigger with transition tables cannot name columns, so the update trigger
-- compares the fields and the status itself.
CREATE FUNCTION jobs_on_group_join() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (contact_id, group_id)
    SELECT n.contact_id, n.group_id FROM new_rows n
    WHERE EXISTS (SELECT 1 FROM sequence_start_groups s WHERE s.group_id = n.group_id);
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_on_group_join AFTER INSERT ON contact_groups
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_on_group_join();

CREATE FUNCTION jobs_on_contact_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sequences WHERE has_condition) THEN
        INSERT INTO jobs (contact_id) SELECT id FROM new_rows;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_on_contact_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_on_contact_insert();

CREATE FUNCTION jobs_on_contact_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sequences WHERE has_condition) THEN
        INSERT INTO jobs (contact_id)
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.fields IS DISTINCT FROM n.fields OR o.status IS DISTINCT FROM n.status;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_on_contact_update AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_on_contact_update();
