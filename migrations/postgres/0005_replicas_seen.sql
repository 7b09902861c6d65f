-- Replicas announce themselves while they run, so a job pinned to a replica (which holds the
-- caller's provider key in memory) is handed to another only when that replica is gone.
CREATE TABLE replicas (
    id              TEXT PRIMARY KEY,          -- rep_<ulid>, new at each start
    started_at      BIGINT NOT NULL,           -- unix ms
    last_seen       BIGINT NOT NULL            -- unix ms, renewed every lease_seconds / 3
);
