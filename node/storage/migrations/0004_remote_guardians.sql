-- Carnet schema version 4: guardians whose account lives on another school's node.
-- On the class's node such a guardian is an account row with status 'remote'
-- (it can never log in here), login 'np:<member id>' and the node it lives
-- on; the class's membership log names them by that member id.  Their
-- requests to join a class (NP/1 Follow) are kept in remote_follow.

ALTER TABLE account ADD COLUMN home_peer_id BIGINT REFERENCES peer (id) ON DELETE SET NULL;

CREATE TABLE remote_follow (
    id {pk},
    follow_id VARCHAR(400) NOT NULL UNIQUE,
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    actor VARCHAR(400) NOT NULL,
    member VARCHAR(128) NOT NULL,
    class_id BIGINT NOT NULL REFERENCES school_class (id) ON DELETE CASCADE,
    invitation_id BIGINT REFERENCES guardian_invitation (id) ON DELETE SET NULL,
    attempt_id BIGINT REFERENCES login_attempt (id) ON DELETE SET NULL,
    account_id BIGINT REFERENCES account (id) ON DELETE SET NULL,
    sign_pk VARCHAR(64) NOT NULL,
    enc_pk VARCHAR(64) NOT NULL,
    state VARCHAR(12) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX remote_follow_class ON remote_follow (class_id, state);
