-- Issue 4: an export batch selects its keys by range instead of every key
-- being updated with its batch. Keys get an insertion sequence number `seq`;
-- a batch records the sequence high-water mark taken when it was cut
-- (`seq_to`, under a SHARE lock on `exposures` so that no lower number is
-- still uncommitted) and its predecessor's (`seq_from`, `ready_from`). Keys
-- of batches cut before this migration keep their `batch_id` (such a batch
-- has `seq_to` NULL); newer keys never get one. Fake keys of a batch are kept
-- packed in one value (`fakes`).
--
-- Issue 6: keys carry the region of the health authority that published them
-- (keys stored before this migration belong to the main region "440"), and a
-- trusted issuer stored by `cocoa keyserver add-issuer` may name its region.

CREATE SEQUENCE exposures_seq;
ALTER TABLE exposures ADD COLUMN seq BIGINT;
UPDATE exposures SET seq = nextval('exposures_seq');
ALTER TABLE exposures ALTER COLUMN seq SET DEFAULT nextval('exposures_seq');
ALTER TABLE exposures ALTER COLUMN seq SET NOT NULL;
ALTER SEQUENCE exposures_seq OWNED BY exposures.seq;
ALTER TABLE exposures ADD COLUMN region TEXT NOT NULL DEFAULT '440';
DROP INDEX exposures_unbatched;
DROP INDEX exposures_batch;
CREATE INDEX exposures_by_seq ON exposures (seq);
CREATE INDEX exposures_ready ON exposures (region, available_at);
CREATE INDEX exposures_legacy_batch ON exposures (batch_id) WHERE batch_id IS NOT NULL;

ALTER TABLE export_batches ADD COLUMN seq_from BIGINT;
ALTER TABLE export_batches ADD COLUMN seq_to BIGINT;
ALTER TABLE export_batches ADD COLUMN ready_from BIGINT;
ALTER TABLE export_batches ADD COLUMN fakes BYTEA;

ALTER TABLE trusted_issuers ADD COLUMN region TEXT;
