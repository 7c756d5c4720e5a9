-- Claims read the active messages in due order and stop at their limit. An index on exactly
-- those rows, in that order, lets them do so without sorting the whole backlog on every claim.
DROP INDEX messages_due;
CREATE INDEX messages_active ON messages (due_at, id) WHERE status IN ('queued', 'retrying', 'sending');
