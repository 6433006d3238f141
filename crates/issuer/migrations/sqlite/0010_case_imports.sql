-- CSV import of confirmed cases (issue 13). An uploaded file's parsed rows
-- wait here, server-side, between the preview and the confirmation: keyed
-- by the hash of an unguessable import id, tied to the staff member, their
-- session and their centre, expiring. The confirmation consumes the row
-- once (consumed_at), clears the rows and keeps only the result (line
-- numbers, case ids, counts) for the result page.
CREATE TABLE case_imports (
    id_hash TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff (id),
    session_hash TEXT NOT NULL,
    centre_id INTEGER NOT NULL REFERENCES centres (id),
    encoding TEXT NOT NULL,
    rows_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    result_json TEXT
);
CREATE INDEX case_imports_expiry ON case_imports (expires_at);

-- The case system's own ID of an imported case (the file's ID column):
-- unique within a centre, so a file imported twice makes no duplicates.
ALTER TABLE cases ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX cases_external_id ON cases (centre_id, external_id);
