-- Corral schema v3 (SQLite): IAM users' tags, groups, customer managed policies and their
-- versions, managed-policy attachments of users and groups, and inline policies of users,
-- groups and roles. Same conventions as 0001/0002; keep in step with
-- migrations/postgres/0003_iam.sql.
--
-- Deletion rules follow AWS: a user, group, role or policy that is still referenced cannot
-- be deleted (DeleteConflict), so attachments, memberships and inline policies have no
-- ON DELETE CASCADE and the store checks them first; tags and policy versions go with
-- their owner.

CREATE TABLE iam_user_tags (
    account_id TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, key),
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name) ON DELETE CASCADE
) STRICT;

-- IAM groups. Names are exact (case-sensitive) like user names.
CREATE TABLE iam_groups (
    account_id TEXT    NOT NULL REFERENCES accounts (account_id),
    group_name TEXT    NOT NULL,
    group_id   TEXT    NOT NULL UNIQUE,
    path       TEXT    NOT NULL,
    arn        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_name)
) STRICT;

CREATE TABLE iam_group_members (
    account_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    PRIMARY KEY (account_id, group_name, user_name),
    FOREIGN KEY (account_id, group_name) REFERENCES iam_groups (account_id, group_name),
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name)
) STRICT;
CREATE INDEX iam_group_members_by_user ON iam_group_members (account_id, user_name);

-- Customer managed policies. The ARN (which holds the account and path) is the key; names
-- are unique per account whatever the path (AWS rule). next_version numbers new versions
-- (v1, v2, ...; numbers are never reused after DeletePolicyVersion).
CREATE TABLE iam_policies (
    arn                TEXT    NOT NULL PRIMARY KEY,
    account_id         TEXT    NOT NULL REFERENCES accounts (account_id),
    policy_name        TEXT    NOT NULL,
    policy_id          TEXT    NOT NULL UNIQUE,
    path               TEXT    NOT NULL,
    description        TEXT,
    default_version_id TEXT    NOT NULL,
    next_version       INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (account_id, policy_name)
) STRICT;

CREATE TABLE iam_policy_versions (
    arn        TEXT    NOT NULL REFERENCES iam_policies (arn) ON DELETE CASCADE,
    version_id TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (arn, version_id)
) STRICT;

CREATE TABLE iam_policy_tags (
    arn   TEXT NOT NULL REFERENCES iam_policies (arn) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
) STRICT;

-- Managed policies (AWS or customer) attached to users and groups; roles have
-- iam_role_policy_attachments (0002). Customer policy ARNs are checked by the store.
CREATE TABLE iam_user_policy_attachments (
    account_id TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, policy_arn),
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name)
) STRICT;

CREATE TABLE iam_group_policy_attachments (
    account_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (account_id, group_name, policy_arn),
    FOREIGN KEY (account_id, group_name) REFERENCES iam_groups (account_id, group_name)
) STRICT;

-- DeletePolicy and AttachmentCount look attachments up by policy.
CREATE INDEX iam_user_policy_attachments_by_policy ON iam_user_policy_attachments (policy_arn);
CREATE INDEX iam_group_policy_attachments_by_policy ON iam_group_policy_attachments (policy_arn);
CREATE INDEX iam_role_policy_attachments_by_policy ON iam_role_policy_attachments (policy_arn);

-- Inline policies, one row per (entity, policy name).
CREATE TABLE iam_user_policies (
    account_id  TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, policy_name),
    FOREIGN KEY (account_id, user_name) REFERENCES iam_users (account_id, user_name)
) STRICT;

CREATE TABLE iam_group_policies (
    account_id  TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account_id, group_name, policy_name),
    FOREIGN KEY (account_id, group_name) REFERENCES iam_groups (account_id, group_name)
) STRICT;

CREATE TABLE iam_role_policies (
    account_id    TEXT NOT NULL,
    role_name_key TEXT NOT NULL,
    policy_name   TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (account_id, role_name_key, policy_name),
    FOREIGN KEY (account_id, role_name_key) REFERENCES iam_roles (account_id, role_name_key)
) STRICT;

-- Deleting a role ends its sessions (found by role id).
CREATE INDEX session_credentials_by_role_id ON session_credentials (role_id);
