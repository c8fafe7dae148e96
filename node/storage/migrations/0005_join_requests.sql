-- Carnet schema version 5: this node's guardians asking to join classes of other schools' nodes.
-- The class's node decides; this row follows the request from the access
-- code to the teacher's answer (NP/1 §9.2, home side).

CREATE TABLE join_request (
    id {pk},
    account_id BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    follow_id VARCHAR(400) NOT NULL UNIQUE,
    join_id VARCHAR(64),
    state VARCHAR(12) NOT NULL,
    masked_phone VARCHAR(40) NOT NULL DEFAULT '',
    school_name VARCHAR(200) NOT NULL DEFAULT '',
    class_name VARCHAR(200) NOT NULL DEFAULT '',
    child_first_name VARCHAR(200) NOT NULL DEFAULT '',
    class_url VARCHAR(400),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX join_request_account ON join_request (account_id, state);
