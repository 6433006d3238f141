-- Canary cases (issue 6): synthetic cases made by the production canary
-- through `POST /api/v1/canary-cases`. Their numbers go through the canary
-- delivery channel and their certificates name the canary issuer, so the key
-- server stores their keys in the canary region only.
ALTER TABLE cases ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;
