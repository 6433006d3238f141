-- Refused logins are one row per account, outcome and window, with a count
-- (issue 12, finding 8: "Aggregate refusals (one row per login and window
-- with a count), page and filter the audit log"). Other rows keep
-- window_start NULL (NULLs never conflict) and times 1.
ALTER TABLE audit_log ADD COLUMN times INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN window_start INTEGER;
CREATE UNIQUE INDEX audit_log_window ON audit_log (actor, action, outcome, window_start);
CREATE INDEX audit_log_at ON audit_log (at);
