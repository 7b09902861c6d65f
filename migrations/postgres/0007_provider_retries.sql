-- Remote providers: retries within a claim, the last provider error while retrying, and the
-- model that produced the images (the requested one, or a fallback).
ALTER TABLE generations ADD COLUMN retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN last_error_code TEXT;
ALTER TABLE generations ADD COLUMN last_error_message TEXT;
ALTER TABLE generations ADD COLUMN model_used TEXT;
