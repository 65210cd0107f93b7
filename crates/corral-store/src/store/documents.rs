//! SSM documents, their versions and tags. Changes to one document lock its row
//! (`/*FOR UPDATE*/`), so they queue on PostgreSQL as they do behind SQLite's one writer.

use crate::db::{query, query_scalar, sql, Row, Tx};

use super::{commit_write, SqlStore};
use crate::common::{check_tags, collect_tagged, count_from_db, document_columns, unstorable, version_columns};
use crate::error::{StoreError, StoreResult};
use crate::model::{platforms_from_column, Document, DocumentListing, DocumentVersion, Tag};

// === rows ===

fn document_from_row(row: &Row) -> StoreResult<Document> {
    Ok(Document {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        name: row.try_get("name")?,
        document_type: row.try_get("document_type")?,
        created_at: row.try_get("created_at")?,
        default_version: row.try_get("default_version")?,
        latest_version: row.try_get("latest_version")?,
        last_assigned_version: row.try_get("last_assigned_version")?,
        tags: Vec::new(),
    })
}

fn version_from_row(row: &Row) -> StoreResult<DocumentVersion> {
    let platforms: String = row.try_get("v_platform_types")?;
    Ok(DocumentVersion {
        account_id: row.try_get("v_account_id")?,
        region: row.try_get("v_region")?,
        name: row.try_get("v_name")?,
        version: row.try_get("v_version")?,
        version_name: row.try_get("v_version_name")?,
        display_name: row.try_get("v_display_name")?,
        content: row.try_get("v_content")?,
        format: row.try_get("v_format")?,
        hash: row.try_get("v_hash")?,
        document_type: row.try_get("v_document_type")?,
        schema_version: row.try_get("v_schema_version")?,
        target_type: row.try_get("v_target_type")?,
        platform_types: platforms_from_column(&platforms),
        status: row.try_get("v_status")?,
        created_at: row.try_get("v_created_at")?,
    })
}

fn listing_from_row(row: &Row) -> StoreResult<DocumentListing> {
    Ok(DocumentListing { document: document_from_row(row)?, default: version_from_row(row)? })
}

fn limit(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The document's row (locked on PostgreSQL), or `None`.
async fn lock_document(tx: &mut Tx, account_id: &str, region: &str, name: &str) -> StoreResult<Option<Document>> {
    let row = query(sql!(concat!(
        "SELECT ",
        document_columns!(),
        " FROM documents d WHERE d.account_id = ? AND d.region = ? AND d.name = ? /*FOR UPDATE*/"
    )))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(document_from_row).transpose()
}

async fn insert_version(tx: &mut Tx, v: &DocumentVersion) -> StoreResult<()> {
    query(sql!(
        "INSERT INTO document_versions (account_id, region, name, version, version_name, display_name, \
         content, format, hash, document_type, schema_version, target_type, platform_types, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&v.account_id)
    .bind(&v.region)
    .bind(&v.name)
    .bind(v.version)
    .bind(&v.version_name)
    .bind(&v.display_name)
    .bind(&v.content)
    .bind(&v.format)
    .bind(&v.hash)
    .bind(&v.document_type)
    .bind(&v.schema_version)
    .bind(&v.target_type)
    .bind(v.platform_column())
    .bind(&v.status)
    .bind(v.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// === documents ===

pub(super) async fn create_document(
    store: &SqlStore,
    document: &Document,
    version: &DocumentVersion,
    max_documents: usize,
) -> StoreResult<()> {
    document.validate()?;
    version.validate()?;
    let consistent = version.version == 1
        && document.default_version == 1
        && document.latest_version == 1
        && document.last_assigned_version == 1
        && version.account_id == document.account_id
        && version.region == document.region
        && version.name == document.name;
    if !consistent {
        return Err(StoreError::InvalidInput("a new document starts with its version 1".into()));
    }
    let mut tx = store.begin_write().await?;
    let count: i64 = query_scalar(sql!("SELECT COUNT(*) FROM documents WHERE account_id = ? AND region = ?"))
        .bind(&document.account_id)
        .bind(&document.region)
        .fetch_one(&mut *tx)
        .await?;
    if count_from_db(count)? >= limit(max_documents) {
        return Err(StoreError::Conflict("DocumentLimit".into()));
    }
    query(sql!(
        "INSERT INTO documents (account_id, region, name, document_type, created_at, default_version, \
         latest_version, last_assigned_version) VALUES (?, ?, ?, ?, ?, 1, 1, 1)"
    ))
    .bind(&document.account_id)
    .bind(&document.region)
    .bind(&document.name)
    .bind(&document.document_type)
    .bind(document.created_at)
    .execute(&mut *tx)
    .await?;
    insert_version(&mut tx, version).await?;
    for tag in &document.tags {
        query(sql!("INSERT INTO document_tags (account_id, region, name, key, value) VALUES (?, ?, ?, ?, ?)"))
            .bind(&document.account_id)
            .bind(&document.region)
            .bind(&document.name)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
    }
    commit_write(tx).await
}

pub(super) async fn get_document(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
) -> StoreResult<Option<Document>> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Ok(None);
    }
    let rows = query(sql!(concat!(
        "SELECT ",
        document_columns!(),
        ", t.key AS tag_key, t.value AS tag_value FROM documents d LEFT JOIN document_tags t \
         ON t.account_id = d.account_id AND t.region = d.region AND t.name = d.name \
         WHERE d.account_id = ? AND d.region = ? AND d.name = ? ORDER BY t.key"
    )))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .fetch_all(&store.db)
    .await?;
    Ok(collect_tagged(&rows, "name", document_from_row)?.into_iter().next())
}

pub(super) async fn get_document_version(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
    version: i64,
) -> StoreResult<Option<DocumentVersion>> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Ok(None);
    }
    let row = query(sql!(concat!(
        "SELECT ",
        version_columns!(),
        " FROM document_versions v WHERE v.account_id = ? AND v.region = ? AND v.name = ? AND v.version = ?"
    )))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .bind(version)
    .fetch_optional(&store.db)
    .await?;
    row.as_ref().map(version_from_row).transpose()
}

pub(super) async fn list_document_versions(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
) -> StoreResult<Vec<DocumentVersion>> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    // One statement: the document's presence and its versions from the same snapshot.
    let rows = query(sql!(concat!(
        "SELECT d.name AS doc_name, ",
        version_columns!(),
        " FROM documents d LEFT JOIN document_versions v \
         ON v.account_id = d.account_id AND v.region = d.region AND v.name = d.name \
         WHERE d.account_id = ? AND d.region = ? AND d.name = ? ORDER BY v.version"
    )))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .fetch_all(&store.db)
    .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: Option<i64> = row.try_get("v_version")?;
        if version.is_some() {
            out.push(version_from_row(row)?);
        }
    }
    Ok(out)
}

pub(super) async fn list_documents(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<DocumentListing>> {
    if limit == 0 || unstorable(account_id) || unstorable(region) || after.is_some_and(unstorable) {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // LIMIT applies to documents (the subquery), not to document-and-tag rows.
    let rows = query(sql!(concat!(
        "SELECT ",
        document_columns!(),
        ", ",
        version_columns!(),
        ", t.key AS tag_key, t.value AS tag_value FROM \
         (SELECT * FROM documents WHERE account_id = ? AND region = ? AND (? IS NULL OR name > ?) \
          ORDER BY name LIMIT ?) d \
         JOIN document_versions v ON v.account_id = d.account_id AND v.region = d.region \
          AND v.name = d.name AND v.version = d.default_version \
         LEFT JOIN document_tags t ON t.account_id = d.account_id AND t.region = d.region AND t.name = d.name \
         ORDER BY d.name, t.key"
    )))
    .bind(account_id)
    .bind(region)
    .bind(after)
    .bind(after)
    .bind(limit)
    .fetch_all(&store.db)
    .await?;
    collect_tagged(&rows, "name", listing_from_row)
}

pub(super) async fn add_document_version(
    store: &SqlStore,
    version: &DocumentVersion,
    max_versions: usize,
) -> StoreResult<()> {
    version.validate()?;
    let mut tx = store.begin_write().await?;
    let Some(doc) = lock_document(&mut tx, &version.account_id, &version.region, &version.name).await? else {
        return Err(StoreError::NotFound);
    };
    if version.version != doc.last_assigned_version + 1 {
        return Err(StoreError::Conflict("VersionChanged".into()));
    }
    let rows = query(sql!(
        "SELECT hash, version_name FROM document_versions WHERE account_id = ? AND region = ? AND name = ?"
    ))
    .bind(&version.account_id)
    .bind(&version.region)
    .bind(&version.name)
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let hash: String = row.try_get("hash")?;
        if hash == version.hash {
            return Err(StoreError::Conflict("DuplicateContent".into()));
        }
    }
    for row in &rows {
        let name: Option<String> = row.try_get("version_name")?;
        if name.is_some() && name == version.version_name {
            return Err(StoreError::Conflict("DuplicateVersionName".into()));
        }
    }
    if limit(rows.len()) >= limit(max_versions) {
        return Err(StoreError::Conflict("DocumentVersionLimit".into()));
    }
    insert_version(&mut tx, version).await?;
    query(sql!(
        "UPDATE documents SET latest_version = ?, last_assigned_version = ? \
         WHERE account_id = ? AND region = ? AND name = ?"
    ))
    .bind(version.version)
    .bind(version.version)
    .bind(&version.account_id)
    .bind(&version.region)
    .bind(&version.name)
    .execute(&mut *tx)
    .await?;
    commit_write(tx).await
}

pub(super) async fn set_default_document_version(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
    version: i64,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    if lock_document(&mut tx, account_id, region, name).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    let exists: Option<i64> = query_scalar(sql!(
        "SELECT version FROM document_versions WHERE account_id = ? AND region = ? AND name = ? AND version = ?"
    ))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .bind(version)
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(StoreError::Conflict("NoSuchVersion".into()));
    }
    query(sql!("UPDATE documents SET default_version = ? WHERE account_id = ? AND region = ? AND name = ?"))
        .bind(version)
        .bind(account_id)
        .bind(region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    commit_write(tx).await
}

pub(super) async fn delete_document(store: &SqlStore, account_id: &str, region: &str, name: &str) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    // Versions and tags go with it (ON DELETE CASCADE).
    let query = query(sql!("DELETE FROM documents WHERE account_id = ? AND region = ? AND name = ?"))
        .bind(account_id)
        .bind(region)
        .bind(name);
    store.write_one(query, true).await
}

pub(super) async fn delete_document_version(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
    version: i64,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    let Some(doc) = lock_document(&mut tx, account_id, region, name).await? else {
        return Err(StoreError::NotFound);
    };
    if doc.default_version == version {
        return Err(StoreError::Conflict("DefaultVersion".into()));
    }
    let done =
        query(sql!("DELETE FROM document_versions WHERE account_id = ? AND region = ? AND name = ? AND version = ?"))
            .bind(account_id)
            .bind(region)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    // The default version remains, so the document keeps at least one version.
    query(sql!(
        "UPDATE documents SET latest_version = (SELECT MAX(version) FROM document_versions v \
         WHERE v.account_id = documents.account_id AND v.region = documents.region AND v.name = documents.name) \
         WHERE account_id = ? AND region = ? AND name = ?"
    ))
    .bind(account_id)
    .bind(region)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    commit_write(tx).await
}

// === tags ===

pub(super) async fn put_document_tags(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
    tags: &[Tag],
    max_tags: usize,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    check_tags(tags)?;
    let mut tx = store.begin_write().await?;
    if lock_document(&mut tx, account_id, region, name).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    for tag in tags {
        query(sql!(
            "INSERT INTO document_tags (account_id, region, name, key, value) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (account_id, region, name, key) DO UPDATE SET value = excluded.value"
        ))
        .bind(account_id)
        .bind(region)
        .bind(name)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *tx)
        .await?;
    }
    let count: i64 =
        query_scalar(sql!("SELECT COUNT(*) FROM document_tags WHERE account_id = ? AND region = ? AND name = ?"))
            .bind(account_id)
            .bind(region)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    if count_from_db(count)? > limit(max_tags) {
        // Dropping the transaction rolls the upserts back.
        return Err(StoreError::Conflict("TooManyTags".into()));
    }
    commit_write(tx).await
}

pub(super) async fn remove_document_tags(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    name: &str,
    keys: &[String],
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(name) {
        return Err(StoreError::NotFound);
    }
    let mut tx = store.begin_write().await?;
    if lock_document(&mut tx, account_id, region, name).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    // A key that cannot be stored cannot be present either.
    for key in keys.iter().filter(|k| !unstorable(k)) {
        query(sql!("DELETE FROM document_tags WHERE account_id = ? AND region = ? AND name = ? AND key = ?"))
            .bind(account_id)
            .bind(region)
            .bind(name)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    commit_write(tx).await
}
