-- Carnet schema version 9: the class community's conversations (parent chat,
-- private parent groups, teacher-family threads), all end-to-end encrypted.
-- A conversation is opened by a message of kind 'conversation' and its
-- messages ('chat', 'member', 'report') are message rows replying to it, so
-- they travel on the class stream like posts.  The node keeps only what it
-- needs to route and enforce the rules: the kind, the child of a family
-- thread, who is in a group, who accepted the code of conduct, who blocked
-- whom, which message was reported.  No column holds text.

-- Parent chat: 'off' (the default), 'open' or 'closed' (read-only for all).
ALTER TABLE school_class ADD COLUMN parent_chat VARCHAR(8) NOT NULL DEFAULT 'off';
-- Teacher-family threads: 'open' (guardians may start one) or 'reply' (they answer only).
ALTER TABLE school_class ADD COLUMN family_threads VARCHAR(8) NOT NULL DEFAULT 'open';
ALTER TABLE school_class ADD COLUMN office_hours VARCHAR(200) NOT NULL DEFAULT '';
-- A holiday pause: threads show an automatic reply until this day (included).
ALTER TABLE school_class ADD COLUMN away_until DATE;

-- 'conversation' is longer than the first kinds; SQLite does not enforce lengths.
/*postgresql*/ ALTER TABLE message ALTER COLUMN kind TYPE VARCHAR(16);

CREATE TABLE conversation (
    id {pk},
    message_id BIGINT NOT NULL UNIQUE REFERENCES message (id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    kind VARCHAR(8) NOT NULL,
    child_id BIGINT REFERENCES child (id) ON DELETE CASCADE,
    -- 'room:<class id>' and 'family:<child id>' exist once; private groups have none
    singleton VARCHAR(40) UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_message_at TIMESTAMP NOT NULL
);
CREATE INDEX conversation_class ON conversation (class_id, kind);

CREATE TABLE conversation_member (
    id {pk},
    conversation_id BIGINT NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
    member VARCHAR(128) NOT NULL,
    account_id BIGINT REFERENCES account (id) ON DELETE CASCADE,
    joined_at TIMESTAMP NOT NULL,
    UNIQUE (conversation_id, member)
);
CREATE INDEX conversation_member_account ON conversation_member (account_id);

CREATE TABLE chat_conduct (
    id {pk},
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    accepted_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, class_id)
);

CREATE TABLE chat_block (
    id {pk},
    blocker_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (blocker_id, blocked_id)
);

CREATE TABLE chat_report (
    id {pk},
    report_id BIGINT NOT NULL UNIQUE REFERENCES message (id) ON DELETE CASCADE,
    reported_id BIGINT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    handled_at TIMESTAMP
);
CREATE INDEX chat_report_class ON chat_report (class_id, handled_at);
