-- Generations are also the job queue: a row is claimed by a worker with a lease.
CREATE TABLE generations (
    id              TEXT PRIMARY KEY,          -- gen_<ulid>, time-sortable
    owner_id        TEXT,                      -- NULL until accounts exist (issue: accounts)
    status          TEXT NOT NULL,             -- queued|running|retrying|succeeded|failed|canceled
    model           TEXT NOT NULL,             -- provider/model
    request_json    TEXT NOT NULL,             -- the validated request, echoed back
    metadata_json   TEXT NOT NULL DEFAULT '{}',
    progress        DOUBLE PRECISION NOT NULL DEFAULT 0,   -- 0..100
    stage           TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL DEFAULT 3,
    lease_owner     TEXT,
    lease_expires_at BIGINT,                   -- unix ms
    error_code      TEXT,
    error_message   TEXT,
    provider_metadata_json TEXT,
    timings_json    TEXT,
    created_at      BIGINT NOT NULL,           -- unix ms
    started_at      BIGINT,
    completed_at    BIGINT
);
CREATE INDEX generations_queue ON generations (status, id);
CREATE INDEX generations_owner ON generations (owner_id, id);

CREATE TABLE images (
    id              TEXT PRIMARY KEY,          -- img_<ulid>
    generation_id   TEXT REFERENCES generations (id),
    owner_id        TEXT,
    position        BIGINT NOT NULL,          -- index within its generation
    blob_key        TEXT NOT NULL,
    width           BIGINT NOT NULL,
    height          BIGINT NOT NULL,
    format          TEXT NOT NULL,
    bytes           BIGINT NOT NULL,
    seed            BIGINT,
    prompt          TEXT,
    negative_prompt TEXT,
    model           TEXT,
    aspect_ratio    TEXT,
    metadata_json   TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX images_generation_position ON images (generation_id, position);
CREATE INDEX images_owner ON images (owner_id, id);
