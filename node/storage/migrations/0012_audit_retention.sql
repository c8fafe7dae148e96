-- Carnet schema version 12: the audit log and what retention needs (docs/security.md).
--
-- audit_event: one security-relevant action (a login, an access code issued,
-- a guardian approved or removed, a role change, an alert, an export, an
-- erasure).  actor and target are pseudonyms (an HMAC of the account id under
-- a key derived from the node secret), never a name, a phone number or an
-- e-mail address; details is a small JSON object of ids and counts.
CREATE TABLE audit_event (
    id {pk},
    created_at TIMESTAMP NOT NULL,
    action VARCHAR(40) NOT NULL,
    actor VARCHAR(32),
    target VARCHAR(32),
    outcome VARCHAR(16) NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_event_time ON audit_event (created_at);
CREATE INDEX audit_event_action ON audit_event (action, id);

-- A guardian account (account_id) or a child (child_id) found in no class any
-- more, since when.  Housekeeping writes a row the first time it finds them
-- so, deletes it if they come back, and erases them once `since` is older than
-- departed_family_retention_days.
CREATE TABLE departure (
    id {pk},
    account_id BIGINT UNIQUE REFERENCES account (id) ON DELETE CASCADE,
    child_id BIGINT UNIQUE REFERENCES child (id) ON DELETE CASCADE,
    since TIMESTAMP NOT NULL
)
