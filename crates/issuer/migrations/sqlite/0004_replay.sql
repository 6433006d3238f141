-- A phone whose answer was lost retries with the same Idempotency-Key
-- (issue 5: "a crash, a lost answer or no network resumes where it stopped
-- without burning the number"). Only HMACs of the keys are kept: a retry of
-- /api/verify with the same number and key gets a fresh token (the lost one
-- stops working); a retry of /api/certificate with the same token, key and
-- ekeyhmac gets a certificate again.
ALTER TABLE issuances ADD COLUMN claim_key_hmac TEXT;
ALTER TABLE issuances ADD COLUMN certificate_key_hmac TEXT;
