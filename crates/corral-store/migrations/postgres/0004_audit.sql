-- Corral schema v4 (PostgreSQL): the audit trail (CloudTrail records), one hash chain per
-- (account_id, region). Same conventions as 0001; keep in step with
-- migrations/sqlite/0004_audit.sql.
--
-- Records are append-only: Corral never updates or deletes them. There is deliberately no
-- foreign key to accounts, so that nothing (not even a future account deletion) can make an
-- append fail or take records with it. Columns that are ordered by are COLLATE "C" (byte
-- order, as SQLite's BINARY).

-- The head of each chain: the last appended seq and hash (seq 0 and 64 zeros before the
-- first record is committed; the row is created in the first append's transaction).
-- Appends lock this row (replicas included), so a chain never forks or reuses a seq;
-- audit_streams lists the chains from it.
CREATE TABLE audit_heads (
    account_id TEXT   NOT NULL COLLATE "C",
    region     TEXT   NOT NULL COLLATE "C",
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    hash       TEXT   NOT NULL,
    PRIMARY KEY (account_id, region)
);

-- One CloudTrail record. record_json is the whole record exactly as the server built it
-- (TEXT, not JSONB, which would not keep the bytes that were hashed);
-- hash = SHA-256 over prev_hash, a newline and record_json (see corral_store::audit_chain_hash).
-- The other columns are copies of record fields for LookupEvents' filters.
CREATE TABLE audit_records (
    account_id    TEXT        NOT NULL,
    region        TEXT        NOT NULL,
    seq           BIGINT      NOT NULL CHECK (seq >= 1),
    event_id      TEXT        NOT NULL,
    event_time    TIMESTAMPTZ NOT NULL,
    event_name    TEXT        NOT NULL,
    event_source  TEXT        NOT NULL,
    username      TEXT,
    access_key_id TEXT,
    read_only     BOOLEAN     NOT NULL,
    error_code    TEXT,
    record_json   TEXT        NOT NULL,
    prev_hash     TEXT        NOT NULL,
    hash          TEXT        NOT NULL,
    PRIMARY KEY (account_id, region, seq)
);

-- LookupEvents pages newest first by (event_time, seq); each filterable column gets an index
-- that serves the filter and that order together.
CREATE INDEX audit_records_by_time ON audit_records (account_id, region, event_time, seq);
CREATE UNIQUE INDEX audit_records_by_event_id ON audit_records (account_id, region, event_id);
CREATE INDEX audit_records_by_event_name ON audit_records (account_id, region, event_name, event_time, seq);
CREATE INDEX audit_records_by_event_source ON audit_records (account_id, region, event_source, event_time, seq);
CREATE INDEX audit_records_by_username ON audit_records (account_id, region, username, event_time, seq);
CREATE INDEX audit_records_by_access_key ON audit_records (account_id, region, access_key_id, event_time, seq);
CREATE INDEX audit_records_by_read_only ON audit_records (account_id, region, read_only, event_time, seq);

-- The record's resources (LookupEvents' Resources), in the order given.
CREATE TABLE audit_resources (
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    position      BIGINT  NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_name TEXT    NOT NULL,
    PRIMARY KEY (account_id, region, seq, position),
    FOREIGN KEY (account_id, region, seq) REFERENCES audit_records (account_id, region, seq)
);
CREATE INDEX audit_resources_by_type ON audit_resources (account_id, region, resource_type, seq);
CREATE INDEX audit_resources_by_name ON audit_resources (account_id, region, resource_name, seq);
