-- Carnet schema version 10: post priority levels, daily digests, absence notes.
--
-- message.priority: info | action | urgent, chosen by the teacher; plaintext
-- because the node routes notifications by it (docs/security.md).
ALTER TABLE message ADD COLUMN priority VARCHAR(8) NOT NULL DEFAULT 'info';

-- A guardian's daily digest of information posts: "HH:MM" in the school's
-- time zone, or NULL to be notified of every post at once (the default).
ALTER TABLE notification_settings ADD COLUMN digest_time VARCHAR(5);

-- An information post held for a guardian's digest has status 'held' and
-- deliver_after at their next digest time; the digest notification that
-- announced it is named here once it is formed.
ALTER TABLE notification ADD COLUMN digest_id BIGINT REFERENCES notification (id) ON DELETE SET NULL;
CREATE INDEX notification_digest ON notification (digest_id);

-- An absence note: the encrypted message (kind 'absence') lives in message;
-- this row holds what the node needs to show it on the right day, and nothing
-- of its reason or arrival time.
CREATE TABLE absence_note (
    id {pk},
    message_id BIGINT NOT NULL UNIQUE REFERENCES message (id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    child_id BIGINT NOT NULL REFERENCES child (id) ON DELETE CASCADE,
    author_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    kind VARCHAR(8) NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP
);
CREATE INDEX absence_note_day ON absence_note (class_id, first_day, last_day);
CREATE INDEX absence_note_child ON absence_note (child_id, last_day);
