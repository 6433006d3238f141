-- Staff portal: server-side sessions (only a hash of the session id is
-- stored), the two HER-SYS header fields the portal edits (症状, 居所), and
-- the last TOTP time step used per account (a code works once).

CREATE TABLE staff_sessions (
    id_hash TEXT PRIMARY KEY,
    staff_id BIGINT REFERENCES staff (id),
    stage TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    totp_pending TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX staff_sessions_seen ON staff_sessions (last_seen_at);

ALTER TABLE cases ADD COLUMN symptoms TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN residence TEXT NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;

-- Expiry sweeps before each issuance look up live numbers by expiry: keep
-- that an index range, not a scan of every issuance ever made.
CREATE INDEX issuances_state_expiry ON issuances (state, expires_at);

-- The verification token lives on its issuance (one claim, one token), so
-- a claim is one conditional UPDATE and a redemption another: no
-- transaction on the device path. The tokens table of 0001 is only read
-- for tokens issued before this migration.
ALTER TABLE issuances ADD COLUMN token_hmac TEXT;
ALTER TABLE issuances ADD COLUMN token_expires_at BIGINT;
ALTER TABLE issuances ADD COLUMN token_used_at BIGINT;
CREATE UNIQUE INDEX issuances_token ON issuances (token_hmac);
