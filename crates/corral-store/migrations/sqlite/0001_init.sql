-- Corral schema v1 (SQLite).
--
-- Conventions shared with migrations/postgres (keep the two in step, one file per version):
--  * every tenant-owned table starts with account_id (and region where the resource is
--    per-region) so later tables (activations, managed instances, commands, audit records)
--    follow the same keying and can reference accounts(account_id);
--  * timestamps are INTEGER milliseconds since the Unix epoch, UTC (PostgreSQL: TIMESTAMPTZ,
--    written truncated to the millisecond so both backends read back the same value);
--  * secret columns (*_enc) hold 'v1:' || base64(nonce || AES-256-GCM ciphertext), never
--    plaintext; see src/crypto.rs;
--  * tables are STRICT so a wrongly typed bind fails loudly instead of being coerced.

-- Deployment-wide key/value metadata, e.g. 'default_account_id'.
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE accounts (
    account_id TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE iam_users (
    account_id TEXT    NOT NULL REFERENCES accounts (account_id),
    user_name  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL UNIQUE,
    path       TEXT    NOT NULL,
    arn        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_name)
) STRICT;

-- Long-term access keys. Deleting a user that still has keys fails (AWS: DeleteConflict).
CREATE TABLE access_keys (
    access_key_id         TEXT    NOT NULL PRIMARY KEY,
    account_id            TEXT    NOT NULL,
    user_name             TEXT    NOT NULL,
    secret_access_key_enc TEXT    NOT NULL,
    status                TEXT    NOT NULL CHECK (status IN ('Active', 'Inactive')),
    created_at            INTEGER NOT NULL,
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name)
) STRICT;
CREATE INDEX access_keys_by_user ON access_keys (account_id, user_name);

-- Temporary credentials (STS, managed-instance role tokens). The principal is stored in
-- columns rather than JSON so that revocation ("every session of role X") is a plain query.
-- A user's sessions go away with the user.
CREATE TABLE session_credentials (
    access_key_id         TEXT    NOT NULL PRIMARY KEY,
    account_id            TEXT    NOT NULL REFERENCES accounts (account_id),
    secret_access_key_enc TEXT    NOT NULL,
    session_token_hash    TEXT    NOT NULL,
    principal_type        TEXT    NOT NULL CHECK (principal_type IN ('user', 'assumed_role')),
    user_name             TEXT,
    role_name             TEXT,
    role_id               TEXT,
    session_name          TEXT,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    CHECK (
        (principal_type = 'user'
            AND user_name IS NOT NULL
            AND role_name IS NULL AND role_id IS NULL AND session_name IS NULL)
     OR (principal_type = 'assumed_role'
            AND user_name IS NULL
            AND role_name IS NOT NULL AND role_id IS NOT NULL AND session_name IS NOT NULL)
    ),
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name)
        ON DELETE CASCADE
) STRICT;
CREATE INDEX session_credentials_by_expiry ON session_credentials (expires_at);
CREATE INDEX session_credentials_by_token ON session_credentials (session_token_hash);
CREATE INDEX session_credentials_by_role ON session_credentials (account_id, role_name);

-- SSM service settings (GetServiceSetting / UpdateServiceSetting), per account and region.
CREATE TABLE service_settings (
    account_id         TEXT    NOT NULL REFERENCES accounts (account_id),
    region             TEXT    NOT NULL,
    setting_id         TEXT    NOT NULL,
    value              TEXT    NOT NULL,
    last_modified_user TEXT    NOT NULL,
    last_modified_date INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, setting_id)
) STRICT;
