-- Carnet schema version 1: people, classes, children, guardians, onboarding, sessions.
-- Placeholders: {pk} is the auto-increment primary key, {blob} a byte string.
-- Times are naive UTC. Phone numbers and e-mail addresses appear only in
-- `account` and `guardian_invitation`, and never leave the node's services unmasked.

CREATE TABLE account (
    id {pk},
    role VARCHAR(16) NOT NULL,
    display_name VARCHAR(120) NOT NULL,
    login VARCHAR(254) NOT NULL UNIQUE,
    phone VARCHAR(16),
    email VARCHAR(254),
    status VARCHAR(16) NOT NULL,
    kdf_salt VARCHAR(64),
    kdf_iterations INTEGER,
    login_verifier VARCHAR(255),
    sign_pk VARCHAR(64),
    enc_pk VARCHAR(64),
    vault TEXT,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    disabled_at TIMESTAMP
);

CREATE TABLE session (
    id {pk},
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    user_agent VARCHAR(200) NOT NULL DEFAULT ''
);
CREATE INDEX session_account ON session (account_id);

CREATE TABLE setup_link (
    id {pk},
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX setup_link_account ON setup_link (account_id);

CREATE TABLE school_class (
    id {pk},
    name VARCHAR(80) NOT NULL,
    school_year VARCHAR(9) NOT NULL,
    teacher_id BIGINT NOT NULL REFERENCES account (id),
    created_at TIMESTAMP NOT NULL,
    archived_at TIMESTAMP
);
CREATE INDEX school_class_teacher ON school_class (teacher_id);

CREATE TABLE child (
    id {pk},
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    first_name VARCHAR(60) NOT NULL,
    last_name VARCHAR(60) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX child_class ON child (class_id);

CREATE TABLE guardian_invitation (
    id {pk},
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    issued_by_id BIGINT NOT NULL REFERENCES account (id),
    display_name VARCHAR(120) NOT NULL,
    phone VARCHAR(16) NOT NULL,
    code_hash VARCHAR(64),
    created_at TIMESTAMP NOT NULL,
    code_issued_at TIMESTAMP,
    expires_at TIMESTAMP,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    account_id BIGINT REFERENCES account (id)
);
CREATE INDEX guardian_invitation_child ON guardian_invitation (child_id);
CREATE INDEX guardian_invitation_phone ON guardian_invitation (phone);

CREATE TABLE guardianship (
    id {pk},
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    invitation_id BIGINT REFERENCES guardian_invitation (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (child_id, account_id)
);
CREATE INDEX guardianship_account ON guardianship (account_id);

CREATE TABLE login_attempt (
    id {pk},
    public_id VARCHAR(43) NOT NULL UNIQUE,
    invitation_id BIGINT NOT NULL REFERENCES guardian_invitation (id) ON DELETE CASCADE,
    client_ip VARCHAR(64) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    sms_code_hash VARCHAR(64),
    sms_code_expires_at TIMESTAMP,
    sms_failures INTEGER NOT NULL DEFAULT 0,
    codes_sent INTEGER NOT NULL DEFAULT 0,
    verified_at TIMESTAMP,
    completed_at TIMESTAMP
);
CREATE INDEX login_attempt_invitation ON login_attempt (invitation_id);

CREATE TABLE sms_message (
    id {pk},
    reference VARCHAR(43) NOT NULL UNIQUE,
    recipient VARCHAR(16) NOT NULL,
    purpose VARCHAR(32) NOT NULL,
    body TEXT,
    status VARCHAR(16) NOT NULL,
    provider_id VARCHAR(128),
    attempts INTEGER NOT NULL DEFAULT 0,
    error VARCHAR(200),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP
);
CREATE INDEX sms_message_status ON sms_message (status, next_attempt_at);

CREATE TABLE rate_event (
    id {pk},
    bucket VARCHAR(120) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX rate_event_bucket ON rate_event (bucket, created_at);
