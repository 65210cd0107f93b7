//! SSM documents: `CreateDocument`, `GetDocument`, `DescribeDocument`, `ListDocuments`,
//! `UpdateDocument`, `UpdateDocumentDefaultVersion`, `DeleteDocument`,
//! `ListDocumentVersions`.
//!
//! A document is a named, versioned piece of content (JSON or YAML) that Run Command sends to
//! the agent. User documents live in the store per account and region; the AWS-owned ones
//! (`aws_owned`) are served from static data to everyone. `content` parses and validates
//! content and holds what Run Command needs next: parameter resolution and rendering.

pub mod aws_owned;
pub mod content;

use corral_api::ssm::{
    CreateDocumentRequest, CreateDocumentResult, DeleteDocumentRequest, DeleteDocumentResult, DescribeDocumentRequest,
    DescribeDocumentResult, DocumentDefaultVersionDescription, DocumentDescription, DocumentIdentifier,
    DocumentParameter, DocumentVersionInfo, GetDocumentRequest, GetDocumentResult, ListDocumentVersionsRequest,
    ListDocumentVersionsResult, ListDocumentsRequest, ListDocumentsResult, Tag, UpdateDocumentDefaultVersionRequest,
    UpdateDocumentDefaultVersionResult, UpdateDocumentRequest, UpdateDocumentResult,
};
use corral_store::{Document, DocumentListing, DocumentVersion, StoreError};
use corral_wire::time::Timestamp;
use sha2::Digest;

use self::aws_owned::{AwsDocument, AMAZON};
use self::content::{ContentError, DocumentContent, Format};
use super::activations::check_tags;
use super::SsmError;
use crate::context::RequestContext;
use crate::services::pagination;
use crate::state::AppState;

/// Documents an account may hold per region (AWS's quota).
pub const MAX_DOCUMENTS: usize = 500;
/// Versions a document may have (AWS's quota).
pub const MAX_VERSIONS: usize = 1000;
/// `ListDocuments` / `ListDocumentVersions` page size when the caller gives none.
const DEFAULT_PAGE: usize = 50;
/// How many documents are read from the store at a time while filtering.
const SCAN_BATCH: usize = 200;
/// Name prefixes reserved for AWS (compared case-insensitively).
const RESERVED_PREFIXES: &[&str] = &["aws", "amazon", "amzn"];

// === lookups ===

/// A document a caller can see: an AWS-owned one or one of the account's.
pub enum Found {
    /// AWS-owned, served from static data.
    Aws(&'static AwsDocument),
    /// The account's own, with tags.
    User(Document),
}

impl Found {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Found::Aws(d) => d.name,
            Found::User(d) => &d.name,
        }
    }

    /// Its `DocumentType`.
    pub fn document_type(&self) -> &str {
        match self {
            Found::Aws(d) => d.document_type,
            Found::User(d) => &d.document_type,
        }
    }

    /// Its tags (AWS-owned documents have none).
    pub fn tags(&self) -> &[corral_store::Tag] {
        match self {
            Found::Aws(_) => &[],
            Found::User(d) => &d.tags,
        }
    }
}

fn not_found() -> SsmError {
    SsmError::InvalidDocument("The specified document does not exist.".to_string())
}

fn bad_version() -> SsmError {
    SsmError::InvalidDocumentVersion("The document version is not valid or does not exist.".to_string())
}

/// The document name a `Name` input means: a name, or the ARN of an AWS-owned document or
/// one of the account's in this region. `None` for anyone else's ARN.
pub fn name_from(ctx: &RequestContext, name_or_arn: &str) -> Option<String> {
    let Some(rest) = name_or_arn.strip_prefix("arn:") else { return Some(name_or_arn.to_string()) };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    match parts.as_slice() {
        [_, "ssm", region, account, resource] if *region == ctx.region => {
            let name = resource.strip_prefix("document/")?;
            let owner_ok =
                if account.is_empty() { aws_owned::find(name).is_some() } else { *account == ctx.account_id() };
            owner_ok.then(|| name.to_string())
        }
        _ => None,
    }
}

/// The ARN a document's permission is checked on (AWS-owned ones have an empty account).
pub fn document_arn(ctx: &RequestContext, name: &str) -> String {
    if aws_owned::find(name).is_some() {
        aws_owned::arn(&ctx.region, name)
    } else {
        format!("arn:aws:ssm:{}:{}:document/{name}", ctx.region, ctx.account_id())
    }
}

/// Finds a document the caller can see by name or ARN.
pub async fn find(state: &AppState, ctx: &RequestContext, name_or_arn: &str) -> Result<Option<Found>, SsmError> {
    let Some(name) = name_from(ctx, name_or_arn) else { return Ok(None) };
    if let Some(d) = aws_owned::find(&name) {
        return Ok(Some(Found::Aws(d)));
    }
    Ok(state.store.get_document(ctx.account_id(), &ctx.region, &name).await?.map(Found::User))
}

/// The stored version an AWS-owned document presents (version 1, never stored).
fn aws_version(ctx: &RequestContext, d: &AwsDocument) -> Result<DocumentVersion, SsmError> {
    let parsed = parse_content(d.content, Format::Json, d.document_type)?;
    Ok(DocumentVersion {
        account_id: String::new(),
        region: ctx.region.clone(),
        name: d.name.to_string(),
        version: 1,
        version_name: None,
        display_name: None,
        content: d.content.to_string(),
        format: Format::Json.as_str().to_string(),
        hash: sha256_hex(d.content),
        document_type: d.document_type.to_string(),
        schema_version: parsed.schema_version.clone(),
        target_type: None,
        platform_types: parsed.platform_types(d.document_type),
        status: "Active".to_string(),
        created_at: d.created_at,
    })
}

/// The meta-data a description shows for a document: (default, latest, owner).
fn meta(ctx: &RequestContext, found: &Found) -> (i64, i64, String) {
    match found {
        Found::Aws(_) => (1, 1, AMAZON.to_string()),
        Found::User(d) => (d.default_version, d.latest_version, ctx.account_id().to_string()),
    }
}

/// Every version of a found document, oldest first.
async fn versions_of(state: &AppState, ctx: &RequestContext, found: &Found) -> Result<Vec<DocumentVersion>, SsmError> {
    match found {
        Found::Aws(d) => Ok(vec![aws_version(ctx, d)?]),
        Found::User(d) => match state.store.list_document_versions(&d.account_id, &d.region, &d.name).await {
            Ok(v) => Ok(v),
            Err(StoreError::NotFound) => Err(not_found()),
            Err(e) => Err(e.into()),
        },
    }
}

/// The version a request names: `DocumentVersion` (`$DEFAULT` or absent: the default;
/// `$LATEST`; a number) and/or `VersionName`; both must agree when both are given.
async fn select_version(
    state: &AppState,
    ctx: &RequestContext,
    found: &Found,
    document_version: Option<&str>,
    version_name: Option<&str>,
) -> Result<DocumentVersion, SsmError> {
    let (default, latest, _) = meta(ctx, found);
    let number = match document_version {
        None if version_name.is_some() => None,
        None | Some("$DEFAULT") => Some(default),
        Some("$LATEST") => Some(latest),
        Some(n) => Some(n.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(bad_version)?),
    };
    let version = match (found, number) {
        (Found::Aws(d), Some(1)) => Some(aws_version(ctx, d)?),
        (Found::Aws(_), _) => None,
        (Found::User(d), Some(n)) => state.store.get_document_version(&d.account_id, &d.region, &d.name, n).await?,
        (Found::User(_), None) => {
            versions_of(state, ctx, found).await?.into_iter().find(|v| v.version_name.as_deref() == version_name)
        }
    };
    let version = version.ok_or_else(bad_version)?;
    if version_name.is_some() && version.version_name.as_deref() != version_name {
        return Err(bad_version());
    }
    Ok(version)
}

/// A document version ready to run: what `SendCommand` resolves its `DocumentName` and
/// `DocumentVersion` to.
pub struct Runnable {
    /// The document's name (never an ARN).
    pub name: String,
    /// The version chosen.
    pub version: DocumentVersion,
    /// Its parsed content.
    pub content: DocumentContent,
}

/// Resolves a Run Command document: `InvalidDocument` when the caller cannot see it or it is
/// not a `Command` document, `InvalidDocumentVersion` for a version it does not have.
pub async fn runnable(
    state: &AppState,
    ctx: &RequestContext,
    name_or_arn: &str,
    document_version: Option<&str>,
) -> Result<Runnable, SsmError> {
    let found = find(state, ctx, name_or_arn).await?.ok_or_else(not_found)?;
    if found.document_type() != "Command" {
        return Err(SsmError::InvalidDocument(format!(
            "Document {} is a {} document; Run Command runs Command documents.",
            found.name(),
            found.document_type()
        )));
    }
    let version = select_version(state, ctx, &found, document_version, None).await?;
    let content = parsed(&version)?;
    Ok(Runnable { name: found.name().to_string(), version, content })
}

// === content ===

fn sha256_hex(content: &str) -> String {
    let digest = sha2::Sha256::digest(content.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_error(e: ContentError) -> SsmError {
    match e {
        ContentError::Invalid(_) => SsmError::InvalidDocumentContent(e.to_string()),
        ContentError::SchemaVersion(_) => SsmError::InvalidDocumentSchemaVersion(e.to_string()),
        ContentError::TooLarge => SsmError::MaxDocumentSizeExceeded(e.to_string()),
    }
}

fn parse_content(content: &str, format: Format, document_type: &str) -> Result<DocumentContent, SsmError> {
    if format == Format::Text {
        return Err(SsmError::InvalidDocumentContent(
            "The content for the document is not valid. TEXT content is not supported for this document type."
                .to_string(),
        ));
    }
    content::parse(content, format, document_type).map_err(content_error)
}

fn format_of(input: Option<&str>) -> Result<Format, SsmError> {
    let s = input.unwrap_or("JSON");
    Format::parse(s).ok_or_else(|| SsmError::Validation(format!("DocumentFormat {s} is not valid.")))
}

/// The content of a stored version, parsed (it was validated when stored).
fn parsed(v: &DocumentVersion) -> Result<DocumentContent, SsmError> {
    let format = Format::parse(&v.format).ok_or_else(|| SsmError::Internal(format!("stored format {}", v.format)))?;
    content::parse(&v.content, format, &v.document_type)
        .map_err(|e| SsmError::Internal(format!("stored document {} v{} no longer parses: {e}", v.name, v.version)))
}

// === wire shapes ===

fn wire_tags(tags: &[corral_store::Tag]) -> Vec<Tag> {
    tags.iter().map(|t| Tag { key: t.key.clone(), value: t.value.clone() }).collect()
}

/// `DocumentDescription` of one version.
fn describe(
    found: &Found,
    version: &DocumentVersion,
    default: i64,
    latest: i64,
    owner: &str,
) -> Result<DocumentDescription, SsmError> {
    let body = parsed(version)?;
    Ok(DocumentDescription {
        hash: Some(version.hash.clone()),
        hash_type: Some("Sha256".to_string()),
        name: Some(version.name.clone()),
        display_name: version.display_name.clone(),
        version_name: version.version_name.clone(),
        owner: Some(owner.to_string()),
        created_date: Some(Timestamp(version.created_at)),
        status: Some(version.status.clone()),
        document_version: Some(version.version.to_string()),
        description: body.description.clone(),
        parameters: Some(
            body.parameters
                .iter()
                .map(|p| DocumentParameter {
                    name: Some(p.name.clone()),
                    r#type: Some(p.r#type.clone()),
                    description: p.description.clone(),
                    default_value: p.default_text(),
                })
                .collect(),
        ),
        platform_types: Some(version.platform_types.clone()),
        document_type: Some(version.document_type.clone()),
        schema_version: Some(version.schema_version.clone()),
        latest_version: Some(latest.to_string()),
        default_version: Some(default.to_string()),
        document_format: Some(version.format.clone()),
        target_type: version.target_type.clone(),
        tags: Some(wire_tags(found.tags())),
        ..Default::default()
    })
}

fn identifier(version: &DocumentVersion, owner: &str, tags: &[corral_store::Tag]) -> DocumentIdentifier {
    DocumentIdentifier {
        name: Some(version.name.clone()),
        created_date: Some(Timestamp(version.created_at)),
        display_name: version.display_name.clone(),
        owner: Some(owner.to_string()),
        version_name: version.version_name.clone(),
        platform_types: Some(version.platform_types.clone()),
        document_version: Some(version.version.to_string()),
        document_type: Some(version.document_type.clone()),
        schema_version: Some(version.schema_version.clone()),
        document_format: Some(version.format.clone()),
        target_type: version.target_type.clone(),
        tags: Some(wire_tags(tags)),
        ..Default::default()
    }
}

// === handlers ===

fn check_name_not_reserved(name: &str) -> Result<(), SsmError> {
    let lower = name.to_ascii_lowercase();
    if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(SsmError::Validation(format!(
            "Document name {name} is not valid: names beginning with aws, amazon or amzn (in any case) are \
             reserved for documents owned by AWS."
        )));
    }
    Ok(())
}

fn aws_owned_refusal(name: &str) -> SsmError {
    SsmError::InvalidDocumentOperation(format!("{name} is owned by Amazon and cannot be changed or deleted."))
}

/// `CreateDocument`.
pub async fn create_document(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateDocumentRequest,
) -> Result<CreateDocumentResult, SsmError> {
    check_name_not_reserved(&input.name)?;
    let document_type = input.document_type.unwrap_or_else(|| "Command".to_string());
    let format = format_of(input.document_format.as_deref())?;
    let body = parse_content(&input.content, format, &document_type)?;
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    let now = ctx.received_at;
    let document = Document {
        account_id: ctx.account_id().to_string(),
        region: ctx.region.clone(),
        name: input.name.clone(),
        document_type: document_type.clone(),
        created_at: now,
        default_version: 1,
        latest_version: 1,
        last_assigned_version: 1,
        tags: tags.into_iter().map(|t| corral_store::Tag { key: t.key, value: t.value }).collect(),
    };
    let version = DocumentVersion {
        account_id: document.account_id.clone(),
        region: document.region.clone(),
        name: input.name.clone(),
        version: 1,
        version_name: input.version_name,
        display_name: input.display_name,
        hash: sha256_hex(&input.content),
        content: input.content,
        format: format.as_str().to_string(),
        document_type,
        schema_version: body.schema_version.clone(),
        target_type: input.target_type,
        platform_types: body.platform_types(&document.document_type),
        status: "Active".to_string(),
        created_at: now,
    };
    let mut shown = document.clone();
    shown.tags.sort();
    let description = describe(&Found::User(shown), &version, 1, 1, ctx.account_id())?;
    let output = CreateDocumentResult { document_description: Some(description) };
    crate::audit::stage_output(&output);
    match state.store.create_document(&document, &version, MAX_DOCUMENTS).await {
        Ok(()) => Ok(output),
        Err(StoreError::AlreadyExists) => {
            Err(SsmError::DocumentAlreadyExists("The specified document already exists.".to_string()))
        }
        Err(StoreError::Conflict(_)) => Err(SsmError::DocumentLimitExceeded(format!(
            "You can create at most {MAX_DOCUMENTS} documents per region."
        ))),
        Err(StoreError::InvalidInput(m)) => Err(SsmError::Validation(m)),
        Err(e) => Err(e.into()),
    }
}

/// `GetDocument`: the content of a version, converted to another format on request.
pub async fn get_document(
    state: &AppState,
    ctx: &RequestContext,
    input: GetDocumentRequest,
) -> Result<GetDocumentResult, SsmError> {
    let found = find(state, ctx, &input.name).await?.ok_or_else(not_found)?;
    let version =
        select_version(state, ctx, &found, input.document_version.as_deref(), input.version_name.as_deref()).await?;
    let stored = Format::parse(&version.format).unwrap_or(Format::Json);
    let wanted = match input.document_format.as_deref() {
        Some(f) => format_of(Some(f))?,
        None => stored,
    };
    let content = if wanted == stored || stored == Format::Text {
        version.content.clone()
    } else {
        content::convert(&version.content, stored, wanted).map_err(content_error)?
    };
    Ok(GetDocumentResult {
        name: Some(version.name.clone()),
        created_date: Some(Timestamp(version.created_at)),
        display_name: version.display_name.clone(),
        version_name: version.version_name.clone(),
        document_version: Some(version.version.to_string()),
        status: Some(version.status.clone()),
        content: Some(content),
        document_type: Some(version.document_type.clone()),
        document_format: Some(if stored == Format::Text { stored } else { wanted }.as_str().to_string()),
        ..Default::default()
    })
}

/// `DescribeDocument`.
pub async fn describe_document(
    state: &AppState,
    ctx: &RequestContext,
    input: DescribeDocumentRequest,
) -> Result<DescribeDocumentResult, SsmError> {
    let found = find(state, ctx, &input.name).await?.ok_or_else(not_found)?;
    let version =
        select_version(state, ctx, &found, input.document_version.as_deref(), input.version_name.as_deref()).await?;
    let (default, latest, owner) = meta(ctx, &found);
    Ok(DescribeDocumentResult { document: Some(describe(&found, &version, default, latest, &owner)?) })
}

// --- ListDocuments ---

/// Whose documents a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owners {
    All,
    Mine,
    Amazon,
    Nobody,
}

/// One `ListDocuments` condition: a key and the values any of which matches.
struct Condition {
    key: String,
    values: Vec<String>,
}

fn parse_conditions(input: &ListDocumentsRequest) -> Result<(Owners, Vec<Condition>), SsmError> {
    let mut raw: Vec<(String, Vec<String>)> = Vec::new();
    for f in input.document_filter_list.iter().flatten() {
        if !matches!(f.key.as_str(), "Name" | "Owner" | "PlatformTypes" | "DocumentType") {
            return Err(SsmError::InvalidFilterKey(format!("The filter key {} is not valid.", f.key)));
        }
        raw.push((f.key.clone(), vec![f.value.clone()]));
    }
    for f in input.filters.iter().flatten() {
        let key = f.key.clone().unwrap_or_default();
        let known = matches!(key.as_str(), "Owner" | "Name" | "DocumentType" | "PlatformTypes" | "TargetType")
            || key.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(SsmError::InvalidFilterKey(format!("The filter key {key} is not valid.")));
        }
        raw.push((key, f.values.clone().unwrap_or_default()));
    }
    let mut owners = Owners::All;
    let mut conditions = Vec::new();
    for (key, values) in raw {
        if key == "Owner" {
            let [value] = values.as_slice() else {
                return Err(SsmError::Validation("The Owner filter takes exactly one value.".to_string()));
            };
            let wanted = match value.as_str() {
                "Self" | "Private" => Owners::Mine,
                "Amazon" | "Public" => Owners::Amazon,
                "ThirdParty" => Owners::Nobody,
                other => {
                    return Err(SsmError::Validation(format!(
                        "The Owner filter value {other} is not valid; use Self, Amazon, Private, Public or ThirdParty."
                    )))
                }
            };
            owners = match (owners, wanted) {
                (Owners::All, w) => w,
                (a, b) if a == b => a,
                _ => Owners::Nobody,
            };
        } else {
            conditions.push(Condition { key, values });
        }
    }
    Ok((owners, conditions))
}

fn matches(conditions: &[Condition], v: &DocumentVersion, tags: &[corral_store::Tag]) -> bool {
    conditions.iter().all(|c| match c.key.as_str() {
        "Name" => c.values.iter().any(|p| v.name.starts_with(p.as_str())),
        "DocumentType" => c.values.contains(&v.document_type),
        "PlatformTypes" => c.values.iter().any(|p| v.platform_types.contains(p)),
        "TargetType" => v.target_type.as_ref().is_some_and(|t| c.values.contains(t)),
        key => {
            let tag_key = key.strip_prefix("tag:").unwrap_or(key);
            tags.iter().any(|t| t.key == tag_key && (c.values.is_empty() || c.values.contains(&t.value)))
        }
    })
}

/// `ListDocuments`: AWS-owned and the account's documents in name order, filtered, paged.
pub async fn list_documents(
    state: &AppState,
    ctx: &RequestContext,
    input: ListDocumentsRequest,
) -> Result<ListDocumentsResult, SsmError> {
    let (owners, conditions) = parse_conditions(&input)?;
    let after = match &input.next_token {
        Some(t) => Some(
            pagination::decode("documents", t)
                .ok_or_else(|| SsmError::InvalidNextToken("The NextToken is not valid.".to_string()))?,
        ),
        None => None,
    };
    let page_size = input.max_results.map(|m| m.clamp(1, 50) as usize).unwrap_or(DEFAULT_PAGE);
    let past_cursor = |name: &str| after.as_deref().is_none_or(|c| name > c);

    // (name, identifier) candidates; enough of each kind to fill the page and see one more.
    let mut candidates: Vec<(String, DocumentIdentifier)> = Vec::new();
    if matches!(owners, Owners::All | Owners::Amazon) {
        for d in aws_owned::AWS_DOCUMENTS.iter().filter(|d| past_cursor(d.name)) {
            let v = aws_version(ctx, d)?;
            if matches(&conditions, &v, &[]) {
                candidates.push((d.name.to_string(), identifier(&v, AMAZON, &[])));
            }
        }
    }
    if matches!(owners, Owners::All | Owners::Mine) {
        let mut cursor = after.clone();
        let mut mine = 0;
        'scan: loop {
            let batch: Vec<DocumentListing> =
                state.store.list_documents(ctx.account_id(), &ctx.region, cursor.as_deref(), SCAN_BATCH).await?;
            let done = batch.len() < SCAN_BATCH;
            for l in &batch {
                cursor = Some(l.document.name.clone());
                if matches(&conditions, &l.default, &l.document.tags) {
                    candidates
                        .push((l.document.name.clone(), identifier(&l.default, ctx.account_id(), &l.document.tags)));
                    mine += 1;
                    if mine > page_size {
                        break 'scan;
                    }
                }
            }
            if done {
                break;
            }
        }
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let more = candidates.len() > page_size;
    candidates.truncate(page_size);
    let next_token = if more { candidates.last().map(|(n, _)| pagination::encode("documents", n)) } else { None };
    Ok(ListDocumentsResult { document_identifiers: Some(candidates.into_iter().map(|(_, i)| i).collect()), next_token })
}

// --- changes ---

/// The account's own document named by `name_or_arn`; AWS-owned ones are refused.
async fn own_document(state: &AppState, ctx: &RequestContext, name_or_arn: &str) -> Result<Document, SsmError> {
    match find(state, ctx, name_or_arn).await?.ok_or_else(not_found)? {
        Found::Aws(d) => Err(aws_owned_refusal(d.name)),
        Found::User(d) => Ok(d),
    }
}

/// `UpdateDocument`: a new version (latest + 1) from the latest one; the default stays.
pub async fn update_document(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateDocumentRequest,
) -> Result<UpdateDocumentResult, SsmError> {
    let doc = own_document(state, ctx, &input.name).await?;
    match input.document_version.as_deref() {
        None | Some("$LATEST") => {}
        Some(n) if n.parse::<i64>().ok() == Some(doc.latest_version) => {}
        Some(_) => {
            return Err(SsmError::InvalidDocumentVersion(format!(
                "Only the latest version of the document ({}) can be updated.",
                doc.latest_version
            )))
        }
    }
    let format = format_of(input.document_format.as_deref())?;
    let body = parse_content(&input.content, format, &doc.document_type)?;
    let latest = state
        .store
        .get_document_version(&doc.account_id, &doc.region, &doc.name, doc.latest_version)
        .await?
        .ok_or_else(not_found)?;
    let version = DocumentVersion {
        account_id: doc.account_id.clone(),
        region: doc.region.clone(),
        name: doc.name.clone(),
        version: doc.last_assigned_version + 1,
        version_name: input.version_name,
        display_name: input.display_name.or(latest.display_name),
        hash: sha256_hex(&input.content),
        content: input.content,
        format: format.as_str().to_string(),
        document_type: doc.document_type.clone(),
        schema_version: body.schema_version.clone(),
        target_type: input.target_type.or(latest.target_type),
        platform_types: body.platform_types(&doc.document_type),
        status: "Active".to_string(),
        created_at: ctx.received_at,
    };
    let (default, owner) = (doc.default_version, ctx.account_id().to_string());
    let description = describe(&Found::User(doc), &version, default, version.version, &owner)?;
    let output = UpdateDocumentResult { document_description: Some(description) };
    crate::audit::stage_output(&output);
    match state.store.add_document_version(&version, MAX_VERSIONS).await {
        Ok(()) => Ok(output),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(StoreError::Conflict(reason)) => Err(match reason.as_str() {
            "DuplicateContent" => SsmError::DuplicateDocumentContent(
                "The content of the document is identical to one of its versions.".to_string(),
            ),
            "DuplicateVersionName" => SsmError::DuplicateDocumentVersionName(format!(
                "The version name {} is already used by a version of the document.",
                version.version_name.as_deref().unwrap_or_default()
            )),
            "DocumentVersionLimit" => {
                SsmError::DocumentVersionLimitExceeded(format!("A document can have at most {MAX_VERSIONS} versions."))
            }
            _ => SsmError::InvalidDocumentVersion(
                "The document was updated at the same time; update its new latest version.".to_string(),
            ),
        }),
        Err(StoreError::InvalidInput(m)) => Err(SsmError::Validation(m)),
        Err(e) => Err(e.into()),
    }
}

/// `UpdateDocumentDefaultVersion`.
pub async fn update_document_default_version(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateDocumentDefaultVersionRequest,
) -> Result<UpdateDocumentDefaultVersionResult, SsmError> {
    let doc = own_document(state, ctx, &input.name).await?;
    let number = input.document_version.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(bad_version)?;
    let version = state
        .store
        .get_document_version(&doc.account_id, &doc.region, &doc.name, number)
        .await?
        .ok_or_else(bad_version)?;
    let output = UpdateDocumentDefaultVersionResult {
        description: Some(DocumentDefaultVersionDescription {
            name: Some(doc.name.clone()),
            default_version: Some(number.to_string()),
            default_version_name: version.version_name.clone(),
        }),
    };
    crate::audit::stage_output(&output);
    match state.store.set_default_document_version(&doc.account_id, &doc.region, &doc.name, number).await {
        Ok(()) => Ok(output),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(StoreError::Conflict(_)) => Err(bad_version()),
        Err(e) => Err(e.into()),
    }
}

/// `DeleteDocument`: every version, or one version that is not the default.
pub async fn delete_document(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteDocumentRequest,
) -> Result<DeleteDocumentResult, SsmError> {
    let doc = own_document(state, ctx, &input.name).await?;
    let result = if input.document_version.is_none() && input.version_name.is_none() {
        state.store.delete_document(&doc.account_id, &doc.region, &doc.name).await
    } else {
        let found = Found::User(doc);
        let version =
            select_version(state, ctx, &found, input.document_version.as_deref(), input.version_name.as_deref())
                .await?;
        let Found::User(doc) = found else { return Err(SsmError::Internal("document kind changed".into())) };
        if version.version == doc.default_version {
            return Err(SsmError::InvalidDocumentOperation(
                "Default version of the document can't be deleted.".to_string(),
            ));
        }
        state.store.delete_document_version(&doc.account_id, &doc.region, &doc.name, version.version).await
    };
    match result {
        Ok(()) => Ok(DeleteDocumentResult::default()),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(StoreError::Conflict(_)) => {
            Err(SsmError::InvalidDocumentOperation("Default version of the document can't be deleted.".to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ListDocumentVersions`: oldest first, paged.
pub async fn list_document_versions(
    state: &AppState,
    ctx: &RequestContext,
    input: ListDocumentVersionsRequest,
) -> Result<ListDocumentVersionsResult, SsmError> {
    let found = find(state, ctx, &input.name).await?.ok_or_else(not_found)?;
    let after = match &input.next_token {
        Some(t) => Some(
            pagination::decode("document-versions", t)
                .and_then(|c| c.parse::<i64>().ok())
                .ok_or_else(|| SsmError::InvalidNextToken("The NextToken is not valid.".to_string()))?,
        ),
        None => None,
    };
    let page_size = input.max_results.map(|m| m.clamp(1, 50) as usize).unwrap_or(DEFAULT_PAGE);
    let (default, _, _) = meta(ctx, &found);
    let mut versions: Vec<DocumentVersion> =
        versions_of(state, ctx, &found).await?.into_iter().filter(|v| after.is_none_or(|a| v.version > a)).collect();
    let more = versions.len() > page_size;
    versions.truncate(page_size);
    let next_token = if more {
        versions.last().map(|v| pagination::encode("document-versions", &v.version.to_string()))
    } else {
        None
    };
    Ok(ListDocumentVersionsResult {
        document_versions: Some(
            versions
                .iter()
                .map(|v| DocumentVersionInfo {
                    name: Some(v.name.clone()),
                    display_name: v.display_name.clone(),
                    document_version: Some(v.version.to_string()),
                    version_name: v.version_name.clone(),
                    created_date: Some(Timestamp(v.created_at)),
                    is_default_version: Some(v.version == default),
                    document_format: Some(v.format.clone()),
                    status: Some(v.status.clone()),
                    ..Default::default()
                })
                .collect(),
        ),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_prefixes_any_case() {
        for name in ["AWS-Mine", "aws_x", "Amazon.Doc", "AMZN-1", "awsome"] {
            assert!(check_name_not_reserved(name).is_err(), "{name}");
        }
        for name in ["Restart", "my-aws-doc", "Ama"] {
            assert!(check_name_not_reserved(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
