-- Corral schema v2 (SQLite): hybrid setup. IAM roles and their managed-policy attachments,
-- SSM activations, managed instances with their tags, and the per-region instance count.
-- Same conventions as 0001; keep in step with migrations/postgres/0002_hybrid.sql.
--
-- Ordering and paging compare TEXT with SQLite's BINARY collation (byte order); the
-- PostgreSQL schema declares the same columns COLLATE "C" so both backends agree.

-- IAM roles. Role names are unique per account case-insensitively (AWS rule): role_name_key
-- is the name folded to lower case by the store (src/common.rs, not SQL lower(), whose
-- Unicode handling differs between the backends); role_name keeps the case given.
CREATE TABLE iam_roles (
    account_id                  TEXT    NOT NULL REFERENCES accounts (account_id),
    role_name_key               TEXT    NOT NULL,
    role_name                   TEXT    NOT NULL,
    role_id                     TEXT    NOT NULL UNIQUE,
    path                        TEXT    NOT NULL,
    arn                         TEXT    NOT NULL,
    assume_role_policy_document TEXT    NOT NULL,
    description                 TEXT,
    max_session_duration        INTEGER NOT NULL,
    created_at                  INTEGER NOT NULL,
    PRIMARY KEY (account_id, role_name_key)
) STRICT;

CREATE TABLE iam_role_tags (
    account_id    TEXT NOT NULL,
    role_name_key TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (account_id, role_name_key, key),
    FOREIGN KEY (account_id, role_name_key) REFERENCES iam_roles (account_id, role_name_key)
        ON DELETE CASCADE
) STRICT;

-- Managed policies attached to roles (AttachRolePolicy). No cascade: a role with attached
-- policies cannot be deleted (AWS: DeleteConflict), which the store checks first.
CREATE TABLE iam_role_policy_attachments (
    account_id    TEXT NOT NULL,
    role_name_key TEXT NOT NULL,
    policy_arn    TEXT NOT NULL,
    PRIMARY KEY (account_id, role_name_key, policy_arn),
    FOREIGN KEY (account_id, role_name_key) REFERENCES iam_roles (account_id, role_name_key)
) STRICT;

-- SSM activations. activation_id is a UUID, unique deployment-wide, because the agent's
-- unsigned registration names only the id. The activation code is kept as a keyed hash
-- (code_hash, see Store::secret_hash), never in clear. Deleting an activation deletes its
-- row; instances registered with it stay (no foreign key from managed_instances).
CREATE TABLE activations (
    activation_id         TEXT    NOT NULL PRIMARY KEY,
    account_id            TEXT    NOT NULL REFERENCES accounts (account_id),
    region                TEXT    NOT NULL,
    code_hash             TEXT    NOT NULL,
    description           TEXT,
    default_instance_name TEXT,
    iam_role              TEXT    NOT NULL,
    registration_limit    INTEGER NOT NULL,
    registrations_count   INTEGER NOT NULL,
    expiration_date       INTEGER NOT NULL,
    created_date          INTEGER NOT NULL
) STRICT;
CREATE INDEX activations_by_region ON activations (account_id, region, created_date, activation_id);

-- Activation tags: fixed at creation and copied onto each instance at registration.
CREATE TABLE activation_tags (
    activation_id TEXT NOT NULL REFERENCES activations (activation_id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (activation_id, key)
) STRICT;

-- Managed (hybrid) instances. instance_id ('mi-...') is unique deployment-wide: agents
-- authenticate with it alone. The info columns hold the agent's last health ping.
CREATE TABLE managed_instances (
    instance_id            TEXT    NOT NULL PRIMARY KEY,
    account_id             TEXT    NOT NULL REFERENCES accounts (account_id),
    region                 TEXT    NOT NULL,
    activation_id          TEXT    NOT NULL,
    iam_role               TEXT    NOT NULL,
    name                   TEXT,
    public_key             TEXT    NOT NULL,
    previous_public_key    TEXT,
    fingerprint            TEXT    NOT NULL,
    registered_at          INTEGER NOT NULL,
    last_ping_at           INTEGER,
    agent_name             TEXT,
    agent_status           TEXT,
    agent_version          TEXT,
    platform_type          TEXT,
    platform_name          TEXT,
    platform_version       TEXT,
    ip_address             TEXT,
    computer_name          TEXT,
    ssm_connection_channel TEXT
) STRICT;
CREATE INDEX managed_instances_by_region ON managed_instances (account_id, region, instance_id);

-- Instance tags, one row per tag. account_id and region repeat the instance's so that tag
-- lookups within a region (tag: targets and filters) need no join.
CREATE TABLE instance_tags (
    instance_id TEXT NOT NULL REFERENCES managed_instances (instance_id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (instance_id, key)
) STRICT;
CREATE INDEX instance_tags_by_key ON instance_tags (account_id, region, key, value);

-- How many managed instances each account holds per region, kept by registration and
-- deregistration in the same transaction. Registration locks this row to enforce the
-- standard tier's cap without counting (and so that racing registrations queue on it).
CREATE TABLE instance_counts (
    account_id TEXT    NOT NULL REFERENCES accounts (account_id),
    region     TEXT    NOT NULL,
    count      INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (account_id, region)
) STRICT;

-- Deregistration revokes the instance's role sessions (session_name = instance id).
CREATE INDEX session_credentials_by_session_name ON session_credentials (account_id, session_name);
