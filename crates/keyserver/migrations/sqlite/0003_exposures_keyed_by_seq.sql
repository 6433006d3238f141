-- PostgreSQL's `exposures` is made to match SQLite's (keyed by `seq`,
-- `key_data` UNIQUE): SQLite's 0002 built it that way already. This file
-- keeps the two folders' migration numbers in step.
SELECT 1;
