-- Initial schema of the issuer (SQLite). Append-only: never edit a released
-- migration, add a new one. Timestamps are unix seconds; booleans are 0/1.
-- Codes (processing numbers, link codes, tokens, API keys) are stored only as
-- hex HMAC-SHA256 under the server secret.

CREATE TABLE centres (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    prefecture TEXT NOT NULL,
    consultation_phone TEXT NOT NULL DEFAULT '',
    consultation_url TEXT NOT NULL DEFAULT '',
    validity_seconds INTEGER NOT NULL DEFAULT 86400,
    auto_issue INTEGER NOT NULL DEFAULT 0,
    allow_clinical INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE staff (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    centre_id INTEGER NOT NULL REFERENCES centres (id),
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    totp_secret TEXT,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hmac TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    centre_id INTEGER REFERENCES centres (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    centre_id INTEGER REFERENCES centres (id),
    name_kanji TEXT NOT NULL,
    name_kana TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    mobile TEXT,
    email TEXT,
    outpatient_facility TEXT NOT NULL,
    test_positive INTEGER NOT NULL,
    classification TEXT NOT NULL,
    diagnosis_date TEXT,
    reported INTEGER NOT NULL,
    uses_app INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX cases_centre ON cases (centre_id);

CREATE TABLE issuances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    number_hmac TEXT NOT NULL,
    link_hmac TEXT NOT NULL UNIQUE,
    report_type TEXT NOT NULL,
    state TEXT NOT NULL,
    channel TEXT NOT NULL,
    delivery_status TEXT NOT NULL,
    delivery_error TEXT,
    issued_by TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    delivered_at INTEGER,
    used_at INTEGER
);
CREATE UNIQUE INDEX issuances_live_number ON issuances (number_hmac) WHERE state = 'issued';
CREATE INDEX issuances_case ON issuances (case_id);
CREATE INDEX issuances_number ON issuances (number_hmac);

CREATE TABLE tokens (
    token_hmac TEXT PRIMARY KEY,
    issuance_id INTEGER NOT NULL REFERENCES issuances (id),
    report_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kid TEXT NOT NULL UNIQUE,
    private_pkcs8_hex TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retire_at INTEGER
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    centre_id INTEGER,
    case_id INTEGER,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_centre ON audit_log (centre_id, at);

CREATE TABLE idempotency (
    api_key_id INTEGER NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idem_key)
);
