-- Carnet schema version 11: actionable posts (events, sign-ups, permission
-- slips, polls), the families' answers, and private calendar feeds.
--
-- What the node stores in plaintext is what it must know to enforce the
-- rules: the kind of action, its deadline and times, the short ids of its
-- choices with their capacities, and which id each family chose.  Titles,
-- places, slot and option labels and the slip's text stay in the post's
-- ciphertext (docs/security.md).

CREATE TABLE post_action (
    id {pk},
    message_id BIGINT NOT NULL UNIQUE REFERENCES message (id) ON DELETE CASCADE,
    type VARCHAR(8) NOT NULL,
    deadline TIMESTAMP,
    starts_at TIMESTAMP,
    ends_at TIMESTAMP,
    all_day BOOLEAN NOT NULL DEFAULT FALSE,
    -- [{"id": "a", "capacity": 3 | null}, ...]
    choices TEXT NOT NULL,
    multiple BOOLEAN NOT NULL DEFAULT FALSE,
    reminded_at TIMESTAMP
);
CREATE INDEX post_action_starts ON post_action (type, starts_at);

-- One answer per child (the family unit): either guardian answers, the
-- latest answer counts and names who gave it.
CREATE TABLE action_answer (
    id {pk},
    message_id BIGINT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    account_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    member VARCHAR(128) NOT NULL,
    -- a JSON list of choice ids ("yes", "a", "agree"...); [] withdraws a sign-up
    choice TEXT NOT NULL,
    -- permission slips: the guardian's Ed25519 signature, the post version
    -- and the time (Unix seconds) it covers
    signature VARCHAR(86),
    post_version INTEGER,
    signed_at BIGINT,
    answered_at TIMESTAMP NOT NULL,
    UNIQUE (message_id, child_id)
);
CREATE INDEX action_answer_child ON action_answer (child_id);

-- A guardian's private calendar feed (/calendar/<token>.ics): the token is
-- stored hashed, like every other secret link.
CREATE TABLE calendar_token (
    id {pk},
    account_id BIGINT NOT NULL UNIQUE REFERENCES account (id) ON DELETE CASCADE,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
