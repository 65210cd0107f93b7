//! IAM access control: users' tags, access keys, groups, customer managed policies,
//! attachments, inline policies and the authoriser's `identity_policies`. Checks made inside a
//! transaction hold until it commits: the rows they read are locked (`/*FOR UPDATE*/`,
//! `/*FOR SHARE*/`) on PostgreSQL, and SQLite's `BEGIN IMMEDIATE` serialises writers.

use crate::db::{query, query_scalar, sql, Row, Tx};
use time::OffsetDateTime;

use super::{commit_write, user_from_row, SqlStore, INSERT_ACCESS_KEY, INSERT_USER};
use crate::common::{check_tags, check_text, collect_tagged, count_from_db, role_name_key, unstorable, Tagged};
use crate::crypto::Purpose;
use crate::error::{StoreError, StoreResult};
use crate::model::{
    policy_size, AccessKey, AccessKeyMetadata, AccessKeyStatus, EntityTables, IamEntity, IamGroup, IamUser,
    IdentityPolicies, ManagedPolicy, ManagedPolicyVersion, PolicySubject, Tag, AWS_MANAGED_POLICY_PREFIX,
};

// === helpers ===

/// Is the entity there? Locks its row on PostgreSQL so counts checked after it hold.
async fn entity_exists(tx: &mut Tx, t: &EntityTables, account_id: &str, key: &str) -> StoreResult<bool> {
    let sql = format!(
        "SELECT {key_col} FROM {table} WHERE account_id = ? AND {key_col} = ? /*FOR UPDATE*/",
        key_col = t.key_column,
        table = t.table
    );
    let found: Option<String> = query_scalar(sql).bind(account_id).bind(key).fetch_optional(&mut **tx).await?;
    Ok(found.is_some())
}

/// How many rows of `table` belong to the entity.
async fn count_rows(tx: &mut Tx, table: &str, key_col: &str, account_id: &str, key: &str) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE account_id = ? AND {key_col} = ?");
    let n: i64 = query_scalar(sql).bind(account_id).bind(key).fetch_one(&mut **tx).await?;
    count_from_db(n)
}

/// How many users, groups and roles a managed policy is attached to.
async fn attachment_count(tx: &mut Tx, arn: &str) -> StoreResult<u64> {
    let n: i64 = query_scalar(sql!(
        "SELECT (SELECT COUNT(*) FROM iam_user_policy_attachments WHERE policy_arn = ?) \
         + (SELECT COUNT(*) FROM iam_group_policy_attachments WHERE policy_arn = ?) \
         + (SELECT COUNT(*) FROM iam_role_policy_attachments WHERE policy_arn = ?)"
    ))
    .bind(arn)
    .bind(arn)
    .bind(arn)
    .fetch_one(&mut **tx)
    .await?;
    count_from_db(n)
}

fn limit(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn group_from_row(row: &Row) -> StoreResult<IamGroup> {
    Ok(IamGroup {
        account_id: row.try_get("account_id")?,
        group_name: row.try_get("group_name")?,
        group_id: row.try_get("group_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        created_at: row.try_get("created_at")?,
    })
}

fn policy_from_row(row: &Row) -> StoreResult<ManagedPolicy> {
    Ok(ManagedPolicy {
        account_id: row.try_get("account_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_id: row.try_get("policy_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        description: row.try_get("description")?,
        default_version_id: row.try_get("default_version_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        tags: Vec::new(),
        attachment_count: count_from_db(row.try_get("attachment_count")?)?,
    })
}

fn version_from_row(row: &Row) -> StoreResult<ManagedPolicyVersion> {
    let version_id: String = row.try_get("version_id")?;
    let default_version_id: String = row.try_get("default_version_id")?;
    Ok(ManagedPolicyVersion {
        is_default: version_id == default_version_id,
        version_id,
        document: row.try_get("document")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Tagged for ManagedPolicy {
    fn id(&self) -> &str {
        &self.arn
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

/// Version number of `v<n>`, for ordering (`v10` after `v9`).
fn version_number(version_id: &str) -> u64 {
    version_id.strip_prefix('v').and_then(|n| n.parse().ok()).unwrap_or(0)
}

const USER_COLUMNS: &str = "account_id, user_name, user_id, path, arn, created_at";
const GROUP_COLUMNS: &str = "account_id, group_name, group_id, path, arn, created_at";

// === users ===

pub(super) async fn create_user_with_tags(store: &SqlStore, user: &IamUser, tags: &[Tag]) -> StoreResult<()> {
    user.validate()?;
    check_tags(tags)?;
    let mut tx = store.begin_write().await?;
    query(sql!(INSERT_USER))
        .bind(&user.account_id)
        .bind(&user.user_name)
        .bind(&user.user_id)
        .bind(&user.path)
        .bind(&user.arn)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?;
    for tag in tags {
        query(sql!("INSERT INTO iam_user_tags (account_id, user_name, key, value) VALUES (?, ?, ?, ?)"))
            .bind(&user.account_id)
            .bind(&user.user_name)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
    }
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn list_users(store: &SqlStore, account_id: &str) -> StoreResult<Vec<IamUser>> {
    if unstorable(account_id) {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {USER_COLUMNS} FROM iam_users WHERE account_id = ? ORDER BY user_name /*C*/");
    let rows = query(sql).bind(account_id).fetch_all(&store.db).await?;
    rows.iter().map(user_from_row).collect()
}

pub(super) async fn delete_user(store: &SqlStore, account_id: &str, user_name: &str) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(user_name) {
        return Err(StoreError::NotFound);
    }
    let (t, key) = IamEntity::User(user_name).tables();
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    for (table, reason) in [
        ("access_keys", "access keys"),
        (t.inline, "inline policies"),
        (t.attachments, "attached policies"),
        ("iam_group_members", "groups"),
    ] {
        if count_rows(&mut tx, table, "user_name", account_id, &key).await? > 0 {
            return Err(StoreError::Conflict(reason.into()));
        }
    }
    query(sql!("DELETE FROM session_credentials WHERE account_id = ? AND principal_type = 'user' AND user_name = ?"))
        .bind(account_id)
        .bind(user_name)
        .execute(&mut *tx)
        .await?;
    // The user's tags go with it (ON DELETE CASCADE).
    query(sql!("DELETE FROM iam_users WHERE account_id = ? AND user_name = ?"))
        .bind(account_id)
        .bind(user_name)
        .execute(&mut *tx)
        .await?;
    commit_write(tx).await?;
    Ok(())
}

// === tags of users and roles ===

fn tag_table(t: &EntityTables) -> StoreResult<&'static str> {
    t.tags.ok_or_else(|| StoreError::InvalidInput(format!("a {} has no tags", t.kind)))
}

pub(super) async fn list_entity_tags(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
) -> StoreResult<Vec<Tag>> {
    let (t, key) = entity.tables();
    let tags = tag_table(&t)?;
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "SELECT key, value FROM {tags} WHERE account_id = ? AND {key_col} = ? ORDER BY key /*C*/",
        key_col = t.key_column
    );
    let rows = query(sql).bind(account_id).bind(&key).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    rows.iter().map(|r| Ok(Tag { key: r.try_get("key")?, value: r.try_get("value")? })).collect()
}

pub(super) async fn tag_entity(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    new_tags: &[Tag],
    max_tags: usize,
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    let tags = tag_table(&t)?;
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    check_tags(new_tags)?;
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "INSERT INTO {tags} (account_id, {key_col}, key, value) VALUES (?, ?, ?, ?) \
         ON CONFLICT (account_id, {key_col}, key) DO UPDATE SET value = excluded.value",
        key_col = t.key_column
    );
    for tag in new_tags {
        query(sql.clone()).bind(account_id).bind(&key).bind(&tag.key).bind(&tag.value).execute(&mut *tx).await?;
    }
    if count_rows(&mut tx, tags, t.key_column, account_id, &key).await? > limit(max_tags) {
        // Dropping the transaction rolls the upserts back.
        return Err(StoreError::Conflict("TooManyTags".into()));
    }
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn untag_entity(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    keys: &[String],
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    let tags = tag_table(&t)?;
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!("DELETE FROM {tags} WHERE account_id = ? AND {key_col} = ? AND key = ?", key_col = t.key_column);
    for tag_key in keys.iter().filter(|k| !unstorable(k)) {
        query(sql.clone()).bind(account_id).bind(&key).bind(tag_key).execute(&mut *tx).await?;
    }
    commit_write(tx).await?;
    Ok(())
}

// === access keys ===

pub(super) async fn create_access_key_limited(
    store: &SqlStore,
    key: &AccessKey,
    max_per_user: usize,
) -> StoreResult<()> {
    key.validate()?;
    let sealed = store.sealer.seal(Purpose::AccessKey, &key.access_key_id, &key.secret_access_key)?;
    let (t, user_key) = IamEntity::User(&key.user_name).tables();
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, &key.account_id, &user_key).await? {
        return Err(StoreError::NotFound);
    }
    if count_rows(&mut tx, "access_keys", "user_name", &key.account_id, &user_key).await? >= limit(max_per_user) {
        return Err(StoreError::Conflict("AccessKeysPerUser".into()));
    }
    query(sql!(INSERT_ACCESS_KEY))
        .bind(&key.access_key_id)
        .bind(&key.account_id)
        .bind(&key.user_name)
        .bind(&sealed)
        .bind(key.status.as_str())
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn list_access_keys(
    store: &SqlStore,
    account_id: &str,
    user_name: &str,
) -> StoreResult<Vec<AccessKeyMetadata>> {
    if unstorable(account_id) || unstorable(user_name) {
        return Err(StoreError::NotFound);
    }
    let (t, key) = IamEntity::User(user_name).tables();
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let rows = query(sql!(
        "SELECT access_key_id, user_name, status, created_at FROM access_keys \
         WHERE account_id = ? AND user_name = ? ORDER BY created_at, access_key_id /*C*/"
    ))
    .bind(account_id)
    .bind(user_name)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            Ok(AccessKeyMetadata {
                access_key_id: row.try_get("access_key_id")?,
                user_name: row.try_get("user_name")?,
                status: AccessKeyStatus::from_db(&status)?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub(super) async fn update_access_key_status(
    store: &SqlStore,
    account_id: &str,
    user_name: &str,
    access_key_id: &str,
    status: AccessKeyStatus,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(user_name) || unstorable(access_key_id) {
        return Err(StoreError::NotFound);
    }
    let query =
        query(sql!("UPDATE access_keys SET status = ? WHERE access_key_id = ? AND account_id = ? AND user_name = ?"))
            .bind(status.as_str())
            .bind(access_key_id)
            .bind(account_id)
            .bind(user_name);
    store.write_one(query, true).await?;
    Ok(())
}

pub(super) async fn delete_access_key(
    store: &SqlStore,
    account_id: &str,
    user_name: &str,
    access_key_id: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(user_name) || unstorable(access_key_id) {
        return Err(StoreError::NotFound);
    }
    let query = query(sql!("DELETE FROM access_keys WHERE access_key_id = ? AND account_id = ? AND user_name = ?"))
        .bind(access_key_id)
        .bind(account_id)
        .bind(user_name);
    store.write_one(query, true).await?;
    Ok(())
}

// === groups ===

pub(super) async fn create_group(store: &SqlStore, group: &IamGroup) -> StoreResult<()> {
    group.validate()?;
    let query = query(sql!(
        "INSERT INTO iam_groups (account_id, group_name, group_id, path, arn, created_at) VALUES (?, ?, ?, ?, ?, ?)"
    ))
    .bind(&group.account_id)
    .bind(&group.group_name)
    .bind(&group.group_id)
    .bind(&group.path)
    .bind(&group.arn)
    .bind(group.created_at);
    store.write_one(query, false).await?;
    Ok(())
}

pub(super) async fn get_group(store: &SqlStore, account_id: &str, group_name: &str) -> StoreResult<Option<IamGroup>> {
    if unstorable(account_id) || unstorable(group_name) {
        return Ok(None);
    }
    let sql = format!("SELECT {GROUP_COLUMNS} FROM iam_groups WHERE account_id = ? AND group_name = ?");
    let row = query(sql).bind(account_id).bind(group_name).fetch_optional(&store.db).await?;
    row.as_ref().map(group_from_row).transpose()
}

pub(super) async fn list_groups(store: &SqlStore, account_id: &str) -> StoreResult<Vec<IamGroup>> {
    if unstorable(account_id) {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {GROUP_COLUMNS} FROM iam_groups WHERE account_id = ? ORDER BY group_name /*C*/");
    let rows = query(sql).bind(account_id).fetch_all(&store.db).await?;
    rows.iter().map(group_from_row).collect()
}

pub(super) async fn delete_group(store: &SqlStore, account_id: &str, group_name: &str) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(group_name) {
        return Err(StoreError::NotFound);
    }
    let (t, key) = IamEntity::Group(group_name).tables();
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    for (table, reason) in
        [("iam_group_members", "members"), (t.inline, "inline policies"), (t.attachments, "attached policies")]
    {
        if count_rows(&mut tx, table, "group_name", account_id, &key).await? > 0 {
            return Err(StoreError::Conflict(reason.into()));
        }
    }
    query(sql!("DELETE FROM iam_groups WHERE account_id = ? AND group_name = ?"))
        .bind(account_id)
        .bind(group_name)
        .execute(&mut *tx)
        .await?;
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn add_user_to_group(
    store: &SqlStore,
    account_id: &str,
    group_name: &str,
    user_name: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(group_name) || unstorable(user_name) {
        return Err(StoreError::NotFound);
    }
    // A missing user or group fails a foreign key (NotFound); adding twice changes nothing.
    let query = query(sql!(
        "INSERT INTO iam_group_members (account_id, group_name, user_name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
    ))
    .bind(account_id)
    .bind(group_name)
    .bind(user_name);
    store.write_one(query, false).await?;
    Ok(())
}

pub(super) async fn remove_user_from_group(
    store: &SqlStore,
    account_id: &str,
    group_name: &str,
    user_name: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(group_name) || unstorable(user_name) {
        return Err(StoreError::NotFound);
    }
    let query = query(sql!("DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ? AND user_name = ?"))
        .bind(account_id)
        .bind(group_name)
        .bind(user_name);
    store.write_one(query, true).await?;
    Ok(())
}

pub(super) async fn list_group_members(
    store: &SqlStore,
    account_id: &str,
    group_name: &str,
) -> StoreResult<Vec<IamUser>> {
    if unstorable(account_id) || unstorable(group_name) {
        return Err(StoreError::NotFound);
    }
    let (t, key) = IamEntity::Group(group_name).tables();
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let rows = query(sql!(
        "SELECT u.account_id AS account_id, u.user_name AS user_name, u.user_id AS user_id, u.path AS path, \
         u.arn AS arn, u.created_at AS created_at FROM iam_group_members m JOIN iam_users u \
         ON u.account_id = m.account_id AND u.user_name = m.user_name \
         WHERE m.account_id = ? AND m.group_name = ? ORDER BY u.user_name /*C*/"
    ))
    .bind(account_id)
    .bind(group_name)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(user_from_row).collect()
}

pub(super) async fn list_groups_for_user(
    store: &SqlStore,
    account_id: &str,
    user_name: &str,
) -> StoreResult<Vec<IamGroup>> {
    if unstorable(account_id) || unstorable(user_name) {
        return Err(StoreError::NotFound);
    }
    let (t, key) = IamEntity::User(user_name).tables();
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let rows = query(sql!(
        "SELECT g.account_id AS account_id, g.group_name AS group_name, g.group_id AS group_id, g.path AS path, \
         g.arn AS arn, g.created_at AS created_at FROM iam_group_members m JOIN iam_groups g \
         ON g.account_id = m.account_id AND g.group_name = m.group_name \
         WHERE m.account_id = ? AND m.user_name = ? ORDER BY g.group_name /*C*/"
    ))
    .bind(account_id)
    .bind(user_name)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(group_from_row).collect()
}

// === customer managed policies ===

/// Policy columns plus the attachment count, for a query that aliases the policy table `p`
/// and joins its tags as `t`.
const POLICY_SELECT: &str = "SELECT p.arn AS arn, p.account_id AS account_id, p.policy_name AS policy_name, \
     p.policy_id AS policy_id, p.path AS path, p.description AS description, \
     p.default_version_id AS default_version_id, p.created_at AS created_at, p.updated_at AS updated_at, \
     (SELECT COUNT(*) FROM iam_user_policy_attachments x WHERE x.policy_arn = p.arn) \
     + (SELECT COUNT(*) FROM iam_group_policy_attachments x WHERE x.policy_arn = p.arn) \
     + (SELECT COUNT(*) FROM iam_role_policy_attachments x WHERE x.policy_arn = p.arn) AS attachment_count, \
     t.key AS tag_key, t.value AS tag_value FROM iam_policies p LEFT JOIN iam_policy_tags t ON t.arn = p.arn";

pub(super) async fn create_policy(store: &SqlStore, policy: &ManagedPolicy, document: &str) -> StoreResult<()> {
    policy.validate()?;
    check_text("document", document)?;
    let mut tx = store.begin_write().await?;
    query(sql!(
        "INSERT INTO iam_policies (arn, account_id, policy_name, policy_id, path, description, \
         default_version_id, next_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'v1', 2, ?, ?)"
    ))
    .bind(&policy.arn)
    .bind(&policy.account_id)
    .bind(&policy.policy_name)
    .bind(&policy.policy_id)
    .bind(&policy.path)
    .bind(&policy.description)
    .bind(policy.created_at)
    .bind(policy.updated_at)
    .execute(&mut *tx)
    .await?;
    query(sql!("INSERT INTO iam_policy_versions (arn, version_id, document, created_at) VALUES (?, 'v1', ?, ?)"))
        .bind(&policy.arn)
        .bind(document)
        .bind(policy.created_at)
        .execute(&mut *tx)
        .await?;
    for tag in &policy.tags {
        query(sql!("INSERT INTO iam_policy_tags (arn, key, value) VALUES (?, ?, ?)"))
            .bind(&policy.arn)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
    }
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn get_policy(store: &SqlStore, account_id: &str, arn: &str) -> StoreResult<Option<ManagedPolicy>> {
    if unstorable(account_id) || unstorable(arn) {
        return Ok(None);
    }
    let sql = format!("{POLICY_SELECT} WHERE p.account_id = ? AND p.arn = ? ORDER BY t.key");
    let rows = query(sql).bind(account_id).bind(arn).fetch_all(&store.db).await?;
    Ok(collect_tagged(&rows, "arn", policy_from_row)?.into_iter().next())
}

pub(super) async fn list_policies(store: &SqlStore, account_id: &str) -> StoreResult<Vec<ManagedPolicy>> {
    if unstorable(account_id) {
        return Ok(Vec::new());
    }
    let sql = format!("{POLICY_SELECT} WHERE p.account_id = ? ORDER BY p.policy_name, t.key");
    let rows = query(sql).bind(account_id).fetch_all(&store.db).await?;
    collect_tagged(&rows, "arn", policy_from_row)
}

pub(super) async fn delete_policy(store: &SqlStore, account_id: &str, arn: &str) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(arn) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    let found: Option<String> =
        query_scalar(sql!("SELECT arn FROM iam_policies WHERE account_id = ? AND arn = ? /*FOR UPDATE*/"))
            .bind(account_id)
            .bind(arn)
            .fetch_optional(&mut *tx)
            .await?;
    if found.is_none() {
        return Err(StoreError::NotFound);
    }
    if attachment_count(&mut tx, arn).await? > 0 {
        return Err(StoreError::Conflict("attached".into()));
    }
    // Versions and tags go with it (ON DELETE CASCADE).
    query(sql!("DELETE FROM iam_policies WHERE arn = ?")).bind(arn).execute(&mut *tx).await?;
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn create_policy_version(
    store: &SqlStore,
    account_id: &str,
    arn: &str,
    document: &str,
    set_as_default: bool,
    created_at: OffsetDateTime,
    max_versions: usize,
) -> StoreResult<ManagedPolicyVersion> {
    if unstorable(account_id) || unstorable(arn) {
        return Err(StoreError::NotFound);
    }
    check_text("document", document)?;
    crate::common::check_time("created_at", created_at)?;
    let created_at = crate::common::truncate_millis(created_at)?;
    let mut tx = store.begin_write().await?;
    let next: Option<i64> =
        query_scalar(sql!("SELECT next_version FROM iam_policies WHERE account_id = ? AND arn = ? /*FOR UPDATE*/"))
            .bind(account_id)
            .bind(arn)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(next) = next else {
        return Err(StoreError::NotFound);
    };
    let existing: i64 = query_scalar(sql!("SELECT COUNT(*) FROM iam_policy_versions WHERE arn = ?"))
        .bind(arn)
        .fetch_one(&mut *tx)
        .await?;
    if count_from_db(existing)? >= limit(max_versions) {
        return Err(StoreError::Conflict("VersionsPerPolicy".into()));
    }
    let version_id = format!("v{next}");
    query(sql!("INSERT INTO iam_policy_versions (arn, version_id, document, created_at) VALUES (?, ?, ?, ?)"))
        .bind(arn)
        .bind(&version_id)
        .bind(document)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
    if set_as_default {
        query(sql!(
            "UPDATE iam_policies SET next_version = next_version + 1, default_version_id = ?, updated_at = ? \
             WHERE arn = ?"
        ))
        .bind(&version_id)
        .bind(created_at)
        .bind(arn)
        .execute(&mut *tx)
        .await?;
    } else {
        query(sql!("UPDATE iam_policies SET next_version = next_version + 1 WHERE arn = ?"))
            .bind(arn)
            .execute(&mut *tx)
            .await?;
    }
    commit_write(tx).await?;
    Ok(ManagedPolicyVersion { version_id, document: document.to_string(), is_default: set_as_default, created_at })
}

const VERSION_SELECT: &str = "SELECT v.version_id AS version_id, v.document AS document, \
     v.created_at AS created_at, p.default_version_id AS default_version_id \
     FROM iam_policies p JOIN iam_policy_versions v ON v.arn = p.arn";

pub(super) async fn get_policy_version(
    store: &SqlStore,
    account_id: &str,
    arn: &str,
    version_id: &str,
) -> StoreResult<Option<ManagedPolicyVersion>> {
    if unstorable(account_id) || unstorable(arn) || unstorable(version_id) {
        return Ok(None);
    }
    let sql = format!("{VERSION_SELECT} WHERE p.account_id = ? AND p.arn = ? AND v.version_id = ?");
    let row = query(sql).bind(account_id).bind(arn).bind(version_id).fetch_optional(&store.db).await?;
    row.as_ref().map(version_from_row).transpose()
}

pub(super) async fn list_policy_versions(
    store: &SqlStore,
    account_id: &str,
    arn: &str,
) -> StoreResult<Vec<ManagedPolicyVersion>> {
    if unstorable(account_id) || unstorable(arn) {
        return Err(StoreError::NotFound);
    }
    // Every policy has at least one version, so no rows means no policy.
    let sql = format!("{VERSION_SELECT} WHERE p.account_id = ? AND p.arn = ?");
    let rows = query(sql).bind(account_id).bind(arn).fetch_all(&store.db).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    let mut versions = rows.iter().map(version_from_row).collect::<StoreResult<Vec<_>>>()?;
    versions.sort_by_key(|v| std::cmp::Reverse(version_number(&v.version_id)));
    Ok(versions)
}

pub(super) async fn delete_policy_version(
    store: &SqlStore,
    account_id: &str,
    arn: &str,
    version_id: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(arn) || unstorable(version_id) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    let default: Option<String> = query_scalar(sql!(
        "SELECT default_version_id FROM iam_policies WHERE account_id = ? AND arn = ? /*FOR UPDATE*/"
    ))
    .bind(account_id)
    .bind(arn)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(default) = default else {
        return Err(StoreError::NotFound);
    };
    if default == version_id {
        return Err(StoreError::Conflict("default version".into()));
    }
    let done = query(sql!("DELETE FROM iam_policy_versions WHERE arn = ? AND version_id = ?"))
        .bind(arn)
        .bind(version_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn policy_attachment_counts(store: &SqlStore, account_id: &str) -> StoreResult<Vec<(String, u64)>> {
    if unstorable(account_id) {
        return Ok(Vec::new());
    }
    let rows = query(sql!(
        "SELECT a.policy_arn AS policy_arn, COUNT(*) AS n FROM \
         (SELECT policy_arn FROM iam_user_policy_attachments WHERE account_id = ? \
          UNION ALL SELECT policy_arn FROM iam_group_policy_attachments WHERE account_id = ? \
          UNION ALL SELECT policy_arn FROM iam_role_policy_attachments WHERE account_id = ?) a \
         GROUP BY a.policy_arn ORDER BY a.policy_arn /*C*/"
    ))
    .bind(account_id)
    .bind(account_id)
    .bind(account_id)
    .fetch_all(&store.db)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("policy_arn")?, count_from_db(r.try_get("n")?)?))).collect()
}

// === managed-policy attachments ===

pub(super) async fn attach_policy(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    policy_arn: &str,
    max_attached: usize,
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    check_text("policy_arn", policy_arn)?;
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    if !policy_arn.starts_with(AWS_MANAGED_POLICY_PREFIX) {
        // Held against a concurrent DeletePolicy until this transaction ends.
        let found: Option<String> =
            query_scalar(sql!("SELECT arn FROM iam_policies WHERE account_id = ? AND arn = ? /*FOR SHARE*/"))
                .bind(account_id)
                .bind(policy_arn)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
    }
    let sql = format!(
        "SELECT policy_arn FROM {att} WHERE account_id = ? AND {key_col} = ?",
        att = t.attachments,
        key_col = t.key_column
    );
    let attached: Vec<String> = query_scalar(sql).bind(account_id).bind(&key).fetch_all(&mut *tx).await?;
    if attached.iter().any(|a| a == policy_arn) {
        return Ok(());
    }
    if limit(attached.len()) >= limit(max_attached) {
        return Err(StoreError::Conflict("PolicyCount".into()));
    }
    let sql = format!(
        "INSERT INTO {att} (account_id, {key_col}, policy_arn) VALUES (?, ?, ?)",
        att = t.attachments,
        key_col = t.key_column
    );
    query(sql).bind(account_id).bind(&key).bind(policy_arn).execute(&mut *tx).await?;
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn detach_policy(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    policy_arn: &str,
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) || unstorable(policy_arn) {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "DELETE FROM {att} WHERE account_id = ? AND {key_col} = ? AND policy_arn = ?",
        att = t.attachments,
        key_col = t.key_column
    );
    let query = query(sql).bind(account_id).bind(&key).bind(policy_arn);
    store.write_one(query, true).await?;
    Ok(())
}

pub(super) async fn list_attached_policies(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
) -> StoreResult<Vec<String>> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "SELECT policy_arn FROM {att} WHERE account_id = ? AND {key_col} = ? ORDER BY policy_arn /*C*/",
        att = t.attachments,
        key_col = t.key_column
    );
    let arns: Vec<String> = query_scalar(sql).bind(account_id).bind(&key).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(arns)
}

// === inline policies ===

pub(super) async fn put_inline_policy(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    policy_name: &str,
    document: &str,
    max_total_size: usize,
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    check_text("policy_name", policy_name)?;
    check_text("document", document)?;
    let mut tx = store.begin_write().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "SELECT policy_name, document FROM {inline} WHERE account_id = ? AND {key_col} = ?",
        inline = t.inline,
        key_col = t.key_column
    );
    let others = query(sql).bind(account_id).bind(&key).fetch_all(&mut *tx).await?;
    let mut total = policy_size(document);
    for row in &others {
        let name: String = row.try_get("policy_name")?;
        if name != policy_name {
            total += policy_size(&row.try_get::<String, _>("document")?);
        }
    }
    if total > max_total_size {
        return Err(StoreError::Conflict("PolicySize".into()));
    }
    let sql = format!(
        "INSERT INTO {inline} (account_id, {key_col}, policy_name, document) VALUES (?, ?, ?, ?) \
         ON CONFLICT (account_id, {key_col}, policy_name) DO UPDATE SET document = excluded.document",
        inline = t.inline,
        key_col = t.key_column
    );
    query(sql).bind(account_id).bind(&key).bind(policy_name).bind(document).execute(&mut *tx).await?;
    commit_write(tx).await?;
    Ok(())
}

pub(super) async fn get_inline_policy(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    policy_name: &str,
) -> StoreResult<Option<String>> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    if unstorable(policy_name) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT document FROM {inline} WHERE account_id = ? AND {key_col} = ? AND policy_name = ?",
        inline = t.inline,
        key_col = t.key_column
    );
    let doc: Option<String> =
        query_scalar(sql).bind(account_id).bind(&key).bind(policy_name).fetch_optional(&mut *tx).await?;
    tx.commit().await?;
    Ok(doc)
}

pub(super) async fn list_inline_policies(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
) -> StoreResult<Vec<String>> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.db.begin_read().await?;
    if !entity_exists(&mut tx, &t, account_id, &key).await? {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "SELECT policy_name FROM {inline} WHERE account_id = ? AND {key_col} = ? ORDER BY policy_name /*C*/",
        inline = t.inline,
        key_col = t.key_column
    );
    let names: Vec<String> = query_scalar(sql).bind(account_id).bind(&key).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(names)
}

pub(super) async fn delete_inline_policy(
    store: &SqlStore,
    account_id: &str,
    entity: IamEntity<'_>,
    policy_name: &str,
) -> StoreResult<()> {
    let (t, key) = entity.tables();
    if unstorable(account_id) || unstorable(&key) || unstorable(policy_name) {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "DELETE FROM {inline} WHERE account_id = ? AND {key_col} = ? AND policy_name = ?",
        inline = t.inline,
        key_col = t.key_column
    );
    let query = query(sql).bind(account_id).bind(&key).bind(policy_name);
    store.write_one(query, true).await?;
    Ok(())
}

// === roles ===

pub(super) async fn update_assume_role_policy(
    store: &SqlStore,
    account_id: &str,
    role_name: &str,
    document: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(role_name) {
        return Err(StoreError::NotFound);
    }
    check_text("assume_role_policy_document", document)?;
    let query =
        query(sql!("UPDATE iam_roles SET assume_role_policy_document = ? WHERE account_id = ? AND role_name_key = ?"))
            .bind(document)
            .bind(account_id)
            .bind(role_name_key(role_name));
    store.write_one(query, true).await?;
    Ok(())
}

// === identity_policies ===

/// One statement, so one snapshot on both backends and one round trip per authorised
/// request. Each row is `(kind, a, b)`: `subject` (the subject exists), `tag` (key, value),
/// `inline` (name, document) and `managed` (ARN, default-version document or NULL for an AWS
/// managed or dangling ARN).
const USER_POLICIES: &str = "\
     SELECT 'subject' AS kind, user_name /*C*/ AS a, NULL AS b FROM iam_users \
     WHERE account_id = ? AND user_name = ? \
     UNION ALL SELECT 'tag', key /*C*/, value FROM iam_user_tags WHERE account_id = ? AND user_name = ? \
     UNION ALL SELECT 'inline', policy_name /*C*/, document FROM iam_user_policies \
     WHERE account_id = ? AND user_name = ? \
     UNION ALL SELECT 'inline', gp.policy_name /*C*/, gp.document FROM iam_group_members m \
     JOIN iam_group_policies gp ON gp.account_id = m.account_id AND gp.group_name = m.group_name \
     WHERE m.account_id = ? AND m.user_name = ? \
     UNION ALL SELECT 'managed', a.policy_arn /*C*/, v.document FROM \
     (SELECT policy_arn FROM iam_user_policy_attachments WHERE account_id = ? AND user_name = ? \
      UNION SELECT ga.policy_arn FROM iam_group_members m \
      JOIN iam_group_policy_attachments ga ON ga.account_id = m.account_id AND ga.group_name = m.group_name \
      WHERE m.account_id = ? AND m.user_name = ?) a \
     LEFT JOIN iam_policies p ON p.arn = a.policy_arn AND p.account_id = ? \
     LEFT JOIN iam_policy_versions v ON v.arn = p.arn AND v.version_id = p.default_version_id";

/// [`USER_POLICIES`] for a role (by `role_name_key`).
const ROLE_POLICIES: &str = "\
     SELECT 'subject' AS kind, role_name /*C*/ AS a, NULL AS b FROM iam_roles \
     WHERE account_id = ? AND role_name_key = ? \
     UNION ALL SELECT 'tag', key /*C*/, value FROM iam_role_tags WHERE account_id = ? AND role_name_key = ? \
     UNION ALL SELECT 'inline', policy_name /*C*/, document FROM iam_role_policies \
     WHERE account_id = ? AND role_name_key = ? \
     UNION ALL SELECT 'managed', a.policy_arn /*C*/, v.document FROM iam_role_policy_attachments a \
     LEFT JOIN iam_policies p ON p.arn = a.policy_arn AND p.account_id = ? \
     LEFT JOIN iam_policy_versions v ON v.arn = p.arn AND v.version_id = p.default_version_id \
     WHERE a.account_id = ? AND a.role_name_key = ?";

pub(super) async fn identity_policies(
    store: &SqlStore,
    account_id: &str,
    subject: PolicySubject<'_>,
) -> StoreResult<IdentityPolicies> {
    let rows = match subject {
        PolicySubject::User(name) => {
            if unstorable(account_id) || unstorable(name) {
                return Err(StoreError::NotFound);
            }
            let mut q = query(sql!(USER_POLICIES));
            for _ in 0..6 {
                q = q.bind(account_id).bind(name);
            }
            q.bind(account_id).fetch_all(&store.db).await?
        }
        PolicySubject::Role(name) => {
            if unstorable(account_id) || unstorable(name) {
                return Err(StoreError::NotFound);
            }
            let key = role_name_key(name);
            query(sql!(ROLE_POLICIES))
                .bind(account_id)
                .bind(&key)
                .bind(account_id)
                .bind(&key)
                .bind(account_id)
                .bind(&key)
                .bind(account_id)
                .bind(account_id)
                .bind(&key)
                .fetch_all(&store.db)
                .await?
        }
    };
    fold_identity_policies(&rows)
}

fn fold_identity_policies(rows: &[Row]) -> StoreResult<IdentityPolicies> {
    let mut out = IdentityPolicies::default();
    let mut found = false;
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let a: String = row.try_get("a")?;
        let b: Option<String> = row.try_get("b")?;
        match (kind.as_str(), b) {
            ("subject", _) => found = true,
            ("tag", Some(value)) => out.principal_tags.push(Tag { key: a, value }),
            ("inline", Some(document)) => out.inline_documents.push(document),
            ("managed", document) => {
                if let Some(document) = document {
                    out.customer_managed_documents.push((a.clone(), document));
                }
                out.managed_policy_arns.push(a);
            }
            (other, _) => return Err(StoreError::Database(format!("unexpected identity policy row {other:?}"))),
        }
    }
    if !found {
        return Err(StoreError::NotFound);
    }
    out.principal_tags.sort();
    out.managed_policy_arns.sort();
    out.managed_policy_arns.dedup();
    out.customer_managed_documents.sort();
    out.customer_managed_documents.dedup();
    Ok(out)
}
