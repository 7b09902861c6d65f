-- Rate limits as GCRA (host/src/auth/gcra.rs), shared by replicas: one row per subject
-- ('req usr_…' for requests, 'gen usr_…' for generation creations) holding the theoretical
-- arrival time of its per-minute and per-hour window. A row whose times are past is the same
-- as no row, and is swept.
CREATE TABLE rate_limits (
    subject         TEXT PRIMARY KEY,
    minute_tat      BIGINT NOT NULL,           -- unix ms
    hour_tat        BIGINT NOT NULL,           -- unix ms
    updated_at      BIGINT NOT NULL            -- unix ms of the last event taken
);

-- Every request taken is counted per clock hour in rate_counters for usage reports, by the
-- same statement that takes it (a refused request changes no row and is not counted).
CREATE FUNCTION rate_limits_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rate_counters (subject, window_start, count)
    VALUES (NEW.subject, NEW.updated_at - NEW.updated_at % 3600000, 1)
    ON CONFLICT (subject, window_start) DO UPDATE SET count = rate_counters.count + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER rate_limits_count AFTER INSERT OR UPDATE ON rate_limits
    FOR EACH ROW WHEN (NEW.subject LIKE 'req %') EXECUTE FUNCTION rate_limits_count();
