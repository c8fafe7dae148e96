-- Carnet schema version 8: emergency alerts (docs/alerts.md).
--
-- The school's "all guardians" group has its own tables: e2e_group belongs
-- to a class (class_id NOT NULL), and SQLite cannot relax that without
-- rebuilding a table that four others reference.  The log format and its
-- verification are the same (docs/protocol/e2e-groups.md §7).

-- peer_id set: another school's group, mirrored here for its guardians who
-- live on this node (NP/1 §6.5); remote_url: its alerts stream there.
CREATE TABLE school_group (
    id {pk},
    public_id VARCHAR(22) NOT NULL UNIQUE,
    peer_id BIGINT REFERENCES peer (id) ON DELETE CASCADE,
    remote_url VARCHAR(400),
    admins TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash VARCHAR(43) NOT NULL,
    current_epoch INTEGER,
    pending_removals INTEGER NOT NULL DEFAULT 0,
    -- the emergency role changed: no alert until the next rotate
    pending_admins BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE school_group_entry (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES school_group (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    op VARCHAR(8) NOT NULL,
    entry TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, seq)
);

CREATE TABLE school_group_member (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES school_group (id) ON DELETE CASCADE,
    member VARCHAR(128) NOT NULL,
    account_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    role VARCHAR(16) NOT NULL,
    sign_pk VARCHAR(43) NOT NULL,
    enc_pk VARCHAR(43) NOT NULL,
    active BOOLEAN NOT NULL,
    added_seq INTEGER NOT NULL,
    UNIQUE (group_id, member)
);
CREATE INDEX school_group_member_account ON school_group_member (account_id);

CREATE TABLE school_group_envelope (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES school_group (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    member VARCHAR(128) NOT NULL,
    enc_pk VARCHAR(43) NOT NULL,
    envelope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, epoch, member, enc_pk)
);

-- The school's alert policy, set by an admin (one row, created on first change).
CREATE TABLE alert_policy (
    id {pk},
    -- guardians who have not acknowledged after this many seconds get an SMS
    sms_delay_seconds INTEGER NOT NULL DEFAULT 120,
    -- the SMS carries the alert's text (not end-to-end encrypted) instead of a content-free notice
    sms_with_text BOOLEAN NOT NULL DEFAULT FALSE,
    -- a real (not drill) alert waits for a second admin's approval
    two_person BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL
);

-- One alert thread: the first alert, its follow-ups, until "all clear".
-- peer_id set: an alert of another school, for guardians of this node (remote_url: its id there).
CREATE TABLE alert (
    id {pk},
    public_id VARCHAR(22) NOT NULL UNIQUE,
    peer_id BIGINT REFERENCES peer (id) ON DELETE CASCADE,
    remote_url VARCHAR(400),
    -- the school's name and the sender's, for an alert of another school
    school VARCHAR(120),
    sender VARCHAR(120),
    template VARCHAR(16) NOT NULL,
    drill BOOLEAN NOT NULL,
    sent_by BIGINT REFERENCES account (id) ON DELETE SET NULL,
    -- awaiting_approval | active | closed | cancelled
    state VARCHAR(20) NOT NULL,
    approved_by BIGINT REFERENCES account (id) ON DELETE SET NULL,
    -- what an SMS says; the alert's text only where the school opted in
    sms_text VARCHAR(320) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    escalate_at TIMESTAMP,
    closed_at TIMESTAMP
);
CREATE INDEX alert_state ON alert (state, escalate_at);

CREATE TABLE alert_message (
    id {pk},
    alert_id BIGINT NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    public_id VARCHAR(22) NOT NULL UNIQUE,
    template VARCHAR(16) NOT NULL,
    -- the signed, encrypted message exactly as the sender's client made it
    wire TEXT NOT NULL,
    sent_by BIGINT REFERENCES account (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (alert_id, seq)
);

-- Every guardian the alert was for, written in the send's transaction.
CREATE TABLE alert_recipient (
    id {pk},
    alert_id BIGINT NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    -- a push service accepted a notice, or the guardian's page fetched the alert
    delivered_at TIMESTAMP,
    acknowledged_at TIMESTAMP,
    -- none | queued | sent | failed | no_phone | drill | remote (texted by their own node)
    sms_state VARCHAR(10) NOT NULL DEFAULT 'none',
    sms_reference VARCHAR(43),
    sms_at TIMESTAMP,
    UNIQUE (alert_id, account_id)
);
CREATE INDEX alert_recipient_account ON alert_recipient (account_id, acknowledged_at);

-- Which child each recipient was reached for, for the dashboard (per class, per child).
CREATE TABLE alert_child (
    id {pk},
    alert_id BIGINT NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    account_id BIGINT REFERENCES account (id) ON DELETE CASCADE
);
CREATE INDEX alert_child_alert ON alert_child (alert_id, class_id);

-- A push notice announcing an alert names it (message_id names class posts).
ALTER TABLE notification ADD COLUMN alert_id BIGINT REFERENCES alert (id) ON DELETE CASCADE;

-- Numbers that answered STOP: recorded, and shown to admins; they silence no
-- emergency alert and no code the person asked for (the only texts Carnet sends).
CREATE TABLE sms_opt_out (
    id {pk},
    phone VARCHAR(16) NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

-- NP/1 §9.1: the end of a wait a peer asked for (Retry-After); a request from
-- that peer clears our own backoff, not that.
ALTER TABLE peer ADD COLUMN asked_wait_until TIMESTAMP;
