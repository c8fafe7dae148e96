-- Carnet schema version 7: this node's own key statements (NP/1 §2.5), kept until each peer has them.
-- A planned rotation (RotateKey) is sent to every active peer; a peer that
-- could not be reached gets it later, transport-signed by the retiring key
-- (key_name, whose seed stays in the data folder until it expires).

CREATE TABLE key_statement_out (
    id {pk},
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    kind VARCHAR(16) NOT NULL,
    body TEXT NOT NULL,
    key_name VARCHAR(64) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- after this, the retiring key no longer signs requests: no more tries
    send_until TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TIMESTAMP,
    next_attempt_at TIMESTAMP,
    last_error TEXT,
    -- accepted by the peer | given up (window closed, or the operator revoked the key)
    delivered_at TIMESTAMP,
    dropped_at TIMESTAMP
);
CREATE INDEX key_statement_out_open ON key_statement_out (delivered_at, dropped_at);
