-- The operator log (CONTRACT §16): one row per admin action, never changed or removed.
CREATE TABLE operator_log (
    id     BIGSERIAL   PRIMARY KEY,
    at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- `admin-token` or the `sub` of an `orders:admin` token.
    actor  TEXT        NOT NULL,
    action TEXT        NOT NULL,
    target TEXT        NOT NULL,
    -- What the action replaced or worked from (an edit's original body).
    detail JSONB       NOT NULL DEFAULT '{}',
    result JSONB       NOT NULL DEFAULT '{}'
);

CREATE INDEX operator_log_newest_first ON operator_log (at DESC, id DESC);

-- Append-only: a record of what operators did is worth nothing if it can be rewritten.
CREATE FUNCTION operator_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the operator log is append-only';
END $$;

CREATE TRIGGER operator_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON operator_log
    FOR EACH ROW EXECUTE FUNCTION operator_log_is_append_only();

CREATE TRIGGER operator_log_no_truncate
    BEFORE TRUNCATE ON operator_log
    FOR EACH STATEMENT EXECUTE FUNCTION operator_log_is_append_only();
