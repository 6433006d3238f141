-- The portal's own forms and administration (issue 13, issue 12 finding 7).
--
-- 「処理番号発行」 is idempotent: each confirmation page carries a once-only
-- token; the first post of it claims the row, a repeat (a triple click)
-- waits for and gets the first one's answer (location) and sends nothing.
-- Rows older than a day are swept.
CREATE TABLE portal_forms (
    token_hash TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff (id),
    case_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    location TEXT
);
CREATE INDEX portal_forms_created ON portal_forms (created_at);

-- Staff are shown by their display name (「山田 花子」), not "staff:yamada".
ALTER TABLE staff ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
-- API keys carry a label for the list on the administration page.
ALTER TABLE api_keys ADD COLUMN label TEXT NOT NULL DEFAULT '';
-- The consultation centre (受診・相談センター) shown to notified phones of
-- the prefecture: its name and hours beside the phone and URL of 0001.
ALTER TABLE centres ADD COLUMN consultation_name TEXT NOT NULL DEFAULT '';
ALTER TABLE centres ADD COLUMN consultation_hours TEXT NOT NULL DEFAULT '';
