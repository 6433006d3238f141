-- The same schema on both backends (issue 11's schema test found this):
-- SQLite's 0002 rebuilt `exposures` with `seq` as its primary key and
-- `key_data` UNIQUE, PostgreSQL's kept `key_data` as the primary key with a
-- plain index on `seq`. Make PostgreSQL's match: `seq` is the key (unique,
-- as the range reads of an export batch assume) and `key_data` stays unique
-- (publishes insert with ON CONFLICT (key_data) DO NOTHING).
ALTER TABLE exposures ADD CONSTRAINT exposures_key_data_key UNIQUE (key_data);
ALTER TABLE exposures DROP CONSTRAINT exposures_pkey;
ALTER TABLE exposures ADD PRIMARY KEY (seq);
DROP INDEX exposures_by_seq;
