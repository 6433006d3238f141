-- Staff portal: server-side sessions (only a hash of the session id is
-- stored), the two HER-SYS header fields the portal edits (症状, 居所), and
-- the last TOTP time step used per account (a code works once).

CREATE TABLE staff_sessions (
    id_hash TEXT PRIMARY KEY,
    staff_id INTEGER REFERENCES staff (id),
    stage TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    totp_pending TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX staff_sessions_seen ON staff_sessions (last_seen_at);

ALTER TABLE cases ADD COLUMN symptoms TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN residence TEXT NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
