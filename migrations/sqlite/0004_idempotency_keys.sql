-- `Idempotency-Key` on creating POSTs: the first request's resource, per scope (caller and
-- route) and key, kept 24 hours. In the database, so a retry that reaches another replica
-- gets the same answer.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,             -- "<owner or anonymous> <METHOD> <route>"
    key             TEXT NOT NULL,             -- the client's key, 1-255 printable ASCII
    request_hash    TEXT NOT NULL,             -- sha256 of the request (body and path)
    resource_id     TEXT NOT NULL,             -- gen_… or img_…
    created_at      BIGINT NOT NULL,           -- unix ms
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
