-- The key server's state. No personal data: keys, their metadata, hour-truncated
-- upload times, export bookkeeping and daily counts. No IP address, no onset date.

CREATE TABLE exposures (
    key_data BYTEA PRIMARY KEY,
    rolling_start BIGINT NOT NULL,
    rolling_period BIGINT NOT NULL,
    transmission_risk BIGINT NOT NULL,
    report_type BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    batch_id BIGINT
);
CREATE INDEX exposures_unbatched ON exposures (available_at) WHERE batch_id IS NULL;
CREATE INDEX exposures_batch ON exposures (batch_id);
CREATE INDEX exposures_created ON exposures (created_at);

CREATE TABLE publishes (
    cert_digest TEXT PRIMARY KEY,
    keys_digest TEXT NOT NULL,
    inserted BIGINT NOT NULL,
    warnings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX publishes_created ON publishes (created_at);

CREATE TABLE stats_daily (
    day TEXT PRIMARY KEY,
    registrations BIGINT NOT NULL,
    keys BIGINT NOT NULL
);

CREATE TABLE export_batches (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region TEXT NOT NULL,
    start_timestamp BIGINT NOT NULL,
    end_timestamp BIGINT NOT NULL,
    status TEXT NOT NULL,
    padded BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (region, start_timestamp)
);

CREATE TABLE export_fakes (
    batch_id BIGINT NOT NULL,
    key_data BYTEA NOT NULL,
    rolling_start BIGINT NOT NULL,
    rolling_period BIGINT NOT NULL,
    transmission_risk BIGINT NOT NULL,
    report_type BIGINT NOT NULL
);
CREATE INDEX export_fakes_batch ON export_fakes (batch_id);

CREATE TABLE export_files (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id BIGINT NOT NULL,
    region TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    batch_end BIGINT NOT NULL,
    file_num BIGINT NOT NULL,
    key_count BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX export_files_batch ON export_files (batch_id);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE trusted_issuers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    health_authority_id TEXT NOT NULL,
    iss TEXT NOT NULL,
    kid TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (health_authority_id, kid)
);

CREATE TABLE export_signing_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id TEXT NOT NULL,
    key_version TEXT NOT NULL,
    private_pkcs8_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
