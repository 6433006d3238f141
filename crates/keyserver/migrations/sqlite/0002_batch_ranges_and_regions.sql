-- Issue 4: an export batch selects its keys by range instead of every key
-- being updated with its batch. Keys get an insertion sequence number `seq`
-- (never reused: AUTOINCREMENT); a batch records the sequence high-water
-- mark taken when it was cut (`seq_to`) and its predecessor's (`seq_from`,
-- `ready_from`). Keys of batches cut before this migration keep their
-- `batch_id` (such a batch has `seq_to` NULL); newer keys never get one.
-- Fake keys of a batch are kept packed in one value (`fakes`).
--
-- Issue 6: keys carry the region of the health authority that published them
-- (keys stored before this migration belong to the main region "440"), and a
-- trusted issuer stored by `cocoa keyserver add-issuer` may name its region.
--
-- SQLite cannot add an autoincrementing column, so `exposures` is rebuilt.

CREATE TABLE exposures_v2 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key_data BLOB NOT NULL UNIQUE,
    rolling_start BIGINT NOT NULL,
    rolling_period BIGINT NOT NULL,
    transmission_risk BIGINT NOT NULL,
    report_type BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    region TEXT NOT NULL DEFAULT '440',
    batch_id BIGINT
);
INSERT INTO exposures_v2 (key_data, rolling_start, rolling_period, transmission_risk,
                          report_type, created_at, available_at, batch_id)
SELECT key_data, rolling_start, rolling_period, transmission_risk,
       report_type, created_at, available_at, batch_id
FROM exposures ORDER BY rowid;
DROP TABLE exposures;
ALTER TABLE exposures_v2 RENAME TO exposures;
CREATE INDEX exposures_ready ON exposures (region, available_at);
CREATE INDEX exposures_created ON exposures (created_at);
CREATE INDEX exposures_legacy_batch ON exposures (batch_id) WHERE batch_id IS NOT NULL;

ALTER TABLE export_batches ADD COLUMN seq_from BIGINT;
ALTER TABLE export_batches ADD COLUMN seq_to BIGINT;
ALTER TABLE export_batches ADD COLUMN ready_from BIGINT;
ALTER TABLE export_batches ADD COLUMN fakes BLOB;

ALTER TABLE trusted_issuers ADD COLUMN region TEXT;
