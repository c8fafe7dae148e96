-- Carnet schema version 3: federation between school nodes (NP/1, docs/protocol/np1.md).
-- The node's own private keys stay in the data folder; these tables hold
-- public keys, peers and their pinned keys, the activity log (which is the
-- outbox), per-peer cursors and batches, and what the receiver applied.

-- This node's signing keys (public halves and their life; seeds: data folder).
CREATE TABLE node_key (
    id {pk},
    name VARCHAR(64) NOT NULL UNIQUE,
    public_key VARCHAR(64) NOT NULL UNIQUE,
    state VARCHAR(8) NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    expired_at TIMESTAMP,
    revoked_at TIMESTAMP
);

-- Allow-listed peer schools.  state: pending (document fetched, fingerprints
-- shown, not confirmed) | active | paused (a pinned key was revoked: an admin
-- must re-pin) | retired.
CREATE TABLE peer (
    id {pk},
    origin VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    state VARCHAR(8) NOT NULL,
    document TEXT NOT NULL,
    document_until TIMESTAMP NOT NULL,
    added_by BIGINT REFERENCES account (id) ON DELETE SET NULL,
    added_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_contact_at TIMESTAMP,
    clock_skew INTEGER,
    last_error TEXT,
    fail_count INTEGER NOT NULL DEFAULT 0,
    auth_failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    failing_since TIMESTAMP,
    refetched_at TIMESTAMP
);

-- Keys of a peer this node trusts (pinned after an admin compared fingerprints,
-- or through a rotation signed by a pinned key).
CREATE TABLE peer_key (
    id {pk},
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    key_id VARCHAR(400) NOT NULL,
    public_key VARCHAR(64) NOT NULL,
    pinned_at TIMESTAMP NOT NULL,
    expired_at TIMESTAMP,
    revoked_at TIMESTAMP,
    UNIQUE (peer_id, key_id)
);

-- Streams this node writes: head_seq is the last sequence number given out.
CREATE TABLE fed_stream (
    id {pk},
    stream VARCHAR(400) NOT NULL UNIQUE,
    kind VARCHAR(8) NOT NULL,
    head_seq INTEGER NOT NULL DEFAULT 0
);

-- The activity log: every activity this node wrote, signed, exactly as sent
-- (without the per-destination "to").  It is the outbox: nothing is queued
-- per message.
CREATE TABLE fed_activity (
    id {pk},
    activity_id VARCHAR(400) NOT NULL UNIQUE,
    stream_id BIGINT NOT NULL REFERENCES fed_stream (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    type VARCHAR(16) NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (stream_id, seq)
);

-- Which peers an activity is for, and its recipients there ("to").
CREATE TABLE fed_activity_dest (
    id {pk},
    activity_id BIGINT NOT NULL REFERENCES fed_activity (id) ON DELETE CASCADE,
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    recipients TEXT NOT NULL,
    UNIQUE (activity_id, peer_id)
);
CREATE INDEX fed_activity_dest_peer ON fed_activity_dest (peer_id, activity_id);

-- Per peer and stream: the highest sequence number the peer acknowledged.
CREATE TABLE fed_cursor (
    id {pk},
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    stream_id BIGINT NOT NULL REFERENCES fed_stream (id) ON DELETE CASCADE,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (peer_id, stream_id)
);

-- The one batch in flight per peer, retried with the same txn id until answered.
CREATE TABLE fed_txn_out (
    id {pk},
    peer_id BIGINT NOT NULL UNIQUE REFERENCES peer (id) ON DELETE CASCADE,
    txn_id VARCHAR(26) NOT NULL,
    body TEXT NOT NULL,
    ranges TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);

-- Activities or batches refused for good, shown to the admin, replayable.
CREATE TABLE fed_dead_letter (
    id {pk},
    peer_id BIGINT REFERENCES peer (id) ON DELETE CASCADE,
    direction VARCHAR(3) NOT NULL,
    txn_id VARCHAR(26),
    activity_id VARCHAR(400),
    reason VARCHAR(32) NOT NULL,
    message TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP
);
CREATE INDEX fed_dead_letter_peer ON fed_dead_letter (peer_id, resolved_at);

-- Receiver: streams of peers this node follows, and how far they are applied.
CREATE TABLE fed_remote_stream (
    id {pk},
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    stream VARCHAR(400) NOT NULL UNIQUE,
    applied_seq INTEGER NOT NULL DEFAULT 0,
    gap_since TIMESTAMP,
    pulled_at TIMESTAMP
);

-- Receiver: every activity id applied (duplicates are no-ops).
CREATE TABLE fed_received (
    id {pk},
    activity_id VARCHAR(400) NOT NULL UNIQUE,
    remote_stream_id BIGINT NOT NULL REFERENCES fed_remote_stream (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    received_at TIMESTAMP NOT NULL
);

-- Receiver: answers to transactions, so a retried transaction gets the same answer.
CREATE TABLE fed_txn_in (
    id {pk},
    peer_id BIGINT NOT NULL REFERENCES peer (id) ON DELETE CASCADE,
    txn_id VARCHAR(26) NOT NULL,
    response TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    UNIQUE (peer_id, txn_id)
);
