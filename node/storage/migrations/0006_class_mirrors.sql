-- Carnet schema version 6: classes of other schools' nodes, mirrored for this node's guardians.
-- A guardian of this node approved in a class of another node reads it here:
-- the class's node sends its encrypted content (NP/1 class stream) and this
-- node keeps it in the ordinary class tables, marked with the peer it comes
-- from and the class's id there.  Only the class's node writes to it; this
-- node forwards its guardians' comments, reactions and reads.

ALTER TABLE school_class ADD COLUMN peer_id BIGINT REFERENCES peer (id) ON DELETE CASCADE;
ALTER TABLE school_class ADD COLUMN remote_url VARCHAR(400);
CREATE UNIQUE INDEX school_class_remote ON school_class (remote_url);

ALTER TABLE child ADD COLUMN remote_url VARCHAR(400);
CREATE UNIQUE INDEX child_remote ON child (remote_url);

-- the object an activity announces, so a delete can purge the ciphertext of
-- the activities that carried it
ALTER TABLE fed_activity ADD COLUMN object_id VARCHAR(400);
CREATE INDEX fed_activity_object ON fed_activity (object_id);

-- the NP/1 version of a message: it grows with every change the class's
-- node announces (an edit, comments switched off), not only with the
-- author's re-encryptions (the header's version)
ALTER TABLE message ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;

-- the child (on the class's node) a guardian's request to join was for: leaving
-- or being removed for that child unlinks that child only
ALTER TABLE join_request ADD COLUMN child_url VARCHAR(400);
