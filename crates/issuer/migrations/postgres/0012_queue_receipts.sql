-- Receipts for every SMS the queue sends (issue 13, "Delivery receipts").
-- The number message's MessageSid lives on its issuance (0006); a reminder
-- by SMS is sent with the same StatusCallback, so its MessageSid is kept on
-- its queue row and its receipts are recorded there (receipt_status:
-- sent -> delivered | failed | undelivered, never backwards) instead of
-- being answered 404 message_unknown. A sid is the gateway's id, not
-- personal data.
ALTER TABLE send_queue ADD COLUMN message_sid TEXT;
ALTER TABLE send_queue ADD COLUMN receipt_status TEXT;
CREATE INDEX send_queue_message_sid ON send_queue (message_sid);
