-- Anomaly signals (issue 13): the issuer's /metrics reads, at every scrape,
-- the numbers issued and registered over the last 24 hours per centre, the
-- delivery failures of the last hour and the oldest message still waiting;
-- these indexes keep those reads (and the statistics period) off a full
-- scan of every number ever issued.
CREATE INDEX issuances_issued_at ON issuances (issued_at);
CREATE INDEX issuances_used_at ON issuances (used_at);
CREATE INDEX issuances_delivery ON issuances (delivery_status, issued_at);
