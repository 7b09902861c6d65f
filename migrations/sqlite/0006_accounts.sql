-- Accounts, API keys, invites, request counters and quota bookkeeping (issue: accounts).
CREATE TABLE users (
    id              TEXT PRIMARY KEY,          -- usr_<ulid>
    email           TEXT NOT NULL UNIQUE,      -- lower case
    name            TEXT,
    avatar_url      TEXT,
    password_hash   TEXT,                      -- argon2id PHC string; NULL: key-only user
    tier            TEXT NOT NULL,
    disabled        BIGINT NOT NULL DEFAULT 0, -- 0 | 1
    settings_json   TEXT NOT NULL DEFAULT '{}',
    token_version   BIGINT NOT NULL DEFAULT 0, -- bumped on password change: older sessions die
    credits         BIGINT NOT NULL DEFAULT 0,
    credits_total   BIGINT NOT NULL DEFAULT 0, -- every credit ever granted (refills, admin)
    credits_refilled_at BIGINT,                -- unix ms
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,          -- key_<ulid>
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL,             -- first characters of the secret, for display
    secret_hash     TEXT NOT NULL UNIQUE,      -- sha256 hex of the whole secret
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);

CREATE TABLE invites (
    code_hash       TEXT PRIMARY KEY,          -- sha256 hex of the code
    tier            TEXT,                      -- tier of the user it makes (NULL: auth.default_tier)
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_by         TEXT,
    used_at         BIGINT
);

-- Fixed-window counters shared by replicas: requests per hour, sign-in attempts.
CREATE TABLE rate_counters (
    subject         TEXT NOT NULL,             -- e.g. 'req usr_…', 'login ip 192.0.2.1'
    window_start    BIGINT NOT NULL,           -- unix ms
    count           BIGINT NOT NULL,
    PRIMARY KEY (subject, window_start)
);

-- Values generated once and shared by every replica (the session signing key).
CREATE TABLE server_secrets (
    name            TEXT PRIMARY KEY,
    value           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

ALTER TABLE generations ADD COLUMN quota_subject TEXT;
ALTER TABLE generations ADD COLUMN images_reserved BIGINT NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN credits_charged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN style TEXT;
CREATE INDEX generations_quota ON generations (quota_subject, created_at);

-- Everything made before accounts existed came through the loopback allowlist.
UPDATE generations SET owner_id = 'net_local' WHERE owner_id IS NULL;
UPDATE images SET owner_id = 'net_local' WHERE owner_id IS NULL;
