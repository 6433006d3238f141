-- Delivery lifecycle (issue 13): a send queue that survives a restart, with
-- retry, backoff and dead-letter, and per-centre delivery settings.
--
-- Per centre, both off by default: fall back to the case's other channel
-- when a message fails permanently, and send ONE reminder when a number is
-- still unused reminder_after_hours after delivery (NULL: no reminder).
ALTER TABLE centres ADD COLUMN delivery_fallback INTEGER NOT NULL DEFAULT 0;
ALTER TABLE centres ADD COLUMN reminder_after_hours INTEGER;

-- One row per message to send. kind: 'number' (the message that carries a
-- processing number) or 'reminder'; at most one of each per issuance, so a
-- reminder is never sent twice. sealed_message holds the message sealed
-- under the server secret ("the processing number never appears in a
-- database ... after it is sent") and is cleared (NULL) once the message
-- is sent or dead-lettered. status: queued -> sending (claimed until
-- claimed_until, a lease) -> sent | dead. attempts counts gateway calls.
CREATE TABLE send_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issuance_id INTEGER NOT NULL REFERENCES issuances (id),
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sealed_message TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    claimed_until INTEGER,
    claim_token TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    UNIQUE (issuance_id, kind)
);
CREATE INDEX send_queue_due ON send_queue (status, due_at);
