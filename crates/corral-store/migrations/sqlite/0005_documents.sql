-- Corral schema v5 (SQLite): SSM documents, their versions and tags. Same conventions as
-- 0001; keep in step with migrations/postgres/0005_documents.sql.
--
-- AWS-owned documents (AWS-RunShellScript, ...) are not stored: the server serves them from
-- static data for every account and region.

-- One row per document. Names are unique per account and region, case-sensitively.
-- default_version and latest_version name rows of document_versions; last_assigned_version
-- is the highest number ever given, so a deleted version's number is never reused.
CREATE TABLE documents (
    account_id            TEXT    NOT NULL REFERENCES accounts (account_id),
    region                TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    document_type         TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    default_version       INTEGER NOT NULL CHECK (default_version >= 1),
    latest_version        INTEGER NOT NULL CHECK (latest_version >= 1),
    last_assigned_version INTEGER NOT NULL CHECK (last_assigned_version >= latest_version),
    PRIMARY KEY (account_id, region, name)
) STRICT;

-- One row per version. content is kept exactly as given (in `format`); hash is its SHA-256.
-- platform_types is derived from the content by the server (comma-separated).
CREATE TABLE document_versions (
    account_id     TEXT    NOT NULL,
    region         TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    version_name   TEXT,
    display_name   TEXT,
    content        TEXT    NOT NULL,
    format         TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    document_type  TEXT    NOT NULL,
    schema_version TEXT    NOT NULL,
    target_type    TEXT,
    platform_types TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name, version),
    -- NULL version names do not collide (both backends treat NULLs as distinct).
    UNIQUE (account_id, region, name, version_name),
    FOREIGN KEY (account_id, region, name) REFERENCES documents (account_id, region, name)
        ON DELETE CASCADE
) STRICT;

-- Document tags, one row per tag (like instance_tags).
CREATE TABLE document_tags (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (account_id, region, name, key),
    FOREIGN KEY (account_id, region, name) REFERENCES documents (account_id, region, name)
        ON DELETE CASCADE
) STRICT;
