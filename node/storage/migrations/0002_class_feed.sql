-- Carnet schema version 2: the end-to-end encrypted class feed.
-- The node stores signed log entries, sealed keys and ciphertext only; the
-- columns it reads (kind, audience, epoch, version, times) are metadata it
-- needs to route, order and label.  No column holds text or a file name.

ALTER TABLE school_class ADD COLUMN comments_enabled BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE e2e_group (
    id {pk},
    public_id VARCHAR(22) NOT NULL UNIQUE,
    class_id BIGINT NOT NULL UNIQUE REFERENCES school_class (id) ON DELETE CASCADE,
    admins TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash VARCHAR(43) NOT NULL,
    current_epoch INTEGER,
    pending_removals INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE group_entry (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES e2e_group (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    op VARCHAR(8) NOT NULL,
    entry TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, seq)
);

CREATE TABLE group_member (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES e2e_group (id) ON DELETE CASCADE,
    member VARCHAR(128) NOT NULL,
    account_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    role VARCHAR(16) NOT NULL,
    sign_pk VARCHAR(43) NOT NULL,
    enc_pk VARCHAR(43) NOT NULL,
    active BOOLEAN NOT NULL,
    added_seq INTEGER NOT NULL,
    UNIQUE (group_id, member)
);
CREATE INDEX group_member_account ON group_member (account_id);

CREATE TABLE epoch_envelope (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES e2e_group (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    member VARCHAR(128) NOT NULL,
    enc_pk VARCHAR(43) NOT NULL,
    envelope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, member, enc_pk, epoch)
);

CREATE TABLE message (
    id {pk},
    group_id BIGINT NOT NULL REFERENCES e2e_group (id) ON DELETE CASCADE,
    public_id VARCHAR(22) NOT NULL,
    kind VARCHAR(10) NOT NULL,
    parent_id BIGINT REFERENCES message (id) ON DELETE CASCADE,
    author_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    author_member VARCHAR(128) NOT NULL,
    epoch INTEGER,
    version INTEGER NOT NULL,
    header TEXT,
    ct TEXT,
    sig VARCHAR(86),
    comments_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    reminded_at TIMESTAMP,
    UNIQUE (group_id, public_id)
);
CREATE INDEX message_feed ON message (group_id, kind, id);
CREATE INDEX message_parent ON message (parent_id);

CREATE TABLE message_child (
    id {pk},
    message_id BIGINT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    UNIQUE (message_id, child_id)
);
CREATE INDEX message_child_child ON message_child (child_id);

CREATE TABLE message_key (
    id {pk},
    message_id BIGINT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    member VARCHAR(128) NOT NULL,
    sealed TEXT NOT NULL,
    UNIQUE (message_id, member)
);

CREATE TABLE blob (
    id {pk},
    public_id VARCHAR(22) NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES e2e_group (id) ON DELETE CASCADE,
    message_id BIGINT REFERENCES message (id) ON DELETE SET NULL,
    size BIGINT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    sha256 VARCHAR(43),
    status VARCHAR(10) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP
);
CREATE INDEX blob_message ON blob (message_id);
CREATE INDEX blob_status ON blob (status, created_at);

CREATE TABLE read_receipt (
    id {pk},
    message_id BIGINT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    read_at TIMESTAMP NOT NULL,
    UNIQUE (message_id, account_id)
);

CREATE TABLE push_subscription (
    id {pk},
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL,
    endpoint_hash VARCHAR(64) NOT NULL UNIQUE,
    p256dh VARCHAR(128) NOT NULL,
    auth VARCHAR(32) NOT NULL,
    user_agent VARCHAR(200) NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    last_success_at TIMESTAMP,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_subscription_account ON push_subscription (account_id);

CREATE TABLE notification_settings (
    id {pk},
    account_id BIGINT NOT NULL UNIQUE REFERENCES account (id) ON DELETE CASCADE,
    quiet_start VARCHAR(5),
    quiet_end VARCHAR(5),
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE notification (
    id {pk},
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    kind VARCHAR(16) NOT NULL,
    message_id BIGINT REFERENCES message (id) ON DELETE CASCADE,
    class_id BIGINT REFERENCES school_class (id) ON DELETE CASCADE,
    urgency VARCHAR(8) NOT NULL DEFAULT 'normal',
    created_at TIMESTAMP NOT NULL,
    deliver_after TIMESTAMP NOT NULL,
    pushed_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    status VARCHAR(10) NOT NULL
);
CREATE INDEX notification_due ON notification (status, deliver_after);
CREATE INDEX notification_account ON notification (account_id, id);
