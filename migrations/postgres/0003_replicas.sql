-- Several replicas: a job may be pinned to the replica holding the caller's provider key
-- (kept in that process's memory only), and claims scan only unfinished jobs.
ALTER TABLE generations ADD COLUMN pinned_to TEXT;
CREATE INDEX generations_active ON generations (id) WHERE status IN ('queued', 'running', 'retrying');
