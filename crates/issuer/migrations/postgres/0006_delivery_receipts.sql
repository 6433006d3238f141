-- Delivery receipts (issue 13, "Delivery lifecycle"): the SMS gateway's
-- status callback moves an issuance's delivery queued (pending) -> sent ->
-- delivered / failed / undelivered, never backwards. message_sid is the
-- gateway's id of the message; sent_at the hand-off to the gateway;
-- delivered_at (existing) the delivered receipt, or the hand-off where the
-- channel gives no receipts; validity_seconds the validity the number was
-- issued with, so that it counts from delivery: "a gateway backlog never
-- expires a number in transit".
ALTER TABLE issuances ADD COLUMN message_sid TEXT;
ALTER TABLE issuances ADD COLUMN sent_at BIGINT;
ALTER TABLE issuances ADD COLUMN delivery_updated_at BIGINT;
ALTER TABLE issuances ADD COLUMN validity_seconds BIGINT;
CREATE INDEX issuances_message_sid ON issuances (message_sid);
