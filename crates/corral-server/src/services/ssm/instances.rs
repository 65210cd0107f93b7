//! Managed instances: `DescribeInstanceInformation`, `DeregisterManagedInstance`,
//! `UpdateManagedInstanceRole`, and tags on them and on documents (`AddTagsToResource`,
//! `RemoveTagsFromResource`, `ListTagsForResource` with `ResourceType: ManagedInstance` or
//! `Document`).

use std::collections::BTreeSet;

use corral_api::ssm::{
    AddTagsToResourceRequest, AddTagsToResourceResult, DeregisterManagedInstanceRequest,
    DeregisterManagedInstanceResult, DescribeInstanceInformationRequest, DescribeInstanceInformationResult,
    InstanceInformation, ListTagsForResourceRequest, ListTagsForResourceResult, RemoveTagsFromResourceRequest,
    RemoveTagsFromResourceResult, Tag, UpdateManagedInstanceRoleRequest, UpdateManagedInstanceRoleResult,
};
use corral_store::{ManagedInstance, StoreError};
use corral_wire::time::Timestamp;
use time::OffsetDateTime;

use super::activations::{check_tags, resolve_instance_role, MAX_TAGS_PER_RESOURCE};
use super::SsmError;
use crate::config::ServerConfig;
use crate::context::RequestContext;
use crate::services::pagination;
use crate::state::AppState;

/// `DescribeInstanceInformation` page size when the caller gives none (AWS documents 10).
const DEFAULT_PAGE: usize = 10;
/// How many instances are read from the store at a time while filtering.
const SCAN_BATCH: usize = 200;

/// The ping status of an instance as `DescribeInstanceInformation` reports it.
///
/// `Online` while the last ping (a control channel's opening counts as one) is within the ping
/// timeout, unless the server saw the instance's channel close and it has neither reconnected
/// nor pinged since, for longer than the channel grace period: then the server knows it is gone.
pub fn ping_status(instance: &ManagedInstance, now: OffsetDateTime, config: &ServerConfig) -> &'static str {
    let last_contact = instance.last_ping_at.unwrap_or(instance.registered_at);
    let silence = now - last_contact;
    let channel_gone =
        instance.channel_closed_at.is_some_and(|closed| last_contact <= closed && now - closed > config.channel_grace);
    if instance.last_ping_at.is_some() && silence <= config.ping_timeout && !channel_gone {
        "Online"
    } else if silence > config.inactive_after {
        "Inactive"
    } else {
        "ConnectionLost"
    }
}

/// The wire form of an instance.
pub fn to_wire(instance: &ManagedInstance, now: OffsetDateTime, config: &ServerConfig) -> InstanceInformation {
    let info = &instance.info;
    InstanceInformation {
        instance_id: Some(instance.instance_id.clone()),
        ping_status: Some(ping_status(instance, now, config).to_string()),
        last_ping_date_time: instance.last_ping_at.map(Timestamp),
        agent_version: info.agent_version.clone(),
        is_latest_version: info
            .agent_version
            .as_ref()
            .map(|v| info.agent_name.as_deref() == Some("corral-agent") && v == env!("CARGO_PKG_VERSION")),
        platform_type: info.platform_type.clone(),
        platform_name: info.platform_name.clone(),
        platform_version: info.platform_version.clone(),
        activation_id: Some(instance.activation_id.clone()),
        iam_role: Some(instance.iam_role.clone()),
        registration_date: Some(Timestamp(instance.registered_at)),
        resource_type: Some("ManagedInstance".to_string()),
        name: instance.name.clone(),
        ip_address: info.ip_address.clone(),
        computer_name: info.computer_name.clone(),
        association_status: None,
        last_association_execution_date: None,
        last_successful_association_execution_date: None,
        association_overview: None,
        source_id: Some(instance.instance_id.clone()),
        source_type: Some("AWS::SSM::ManagedInstance".to_string()),
        source_location: None,
    }
}

/// One filter, normalised from either filter style.
enum Filter {
    /// A field compared with a set of values (OR'ed).
    Field(&'static str, BTreeSet<String>),
    /// `tag:<key>` with values.
    Tag(String, BTreeSet<String>),
    /// `tag-key`: the instance has one of these tag keys.
    TagKey(BTreeSet<String>),
}

const FIELD_KEYS: &[&str] = &[
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
    "SourceIds",
    "SourceTypes",
];

fn allowed_values(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "PingStatus" => Some(&["Online", "ConnectionLost", "Inactive"]),
        "PlatformTypes" => Some(&["Windows", "Linux", "MacOS"]),
        "ResourceType" => Some(&["EC2Instance", "ManagedInstance"]),
        "AssociationStatus" => Some(&["Success", "Pending", "Failed"]),
        _ => None,
    }
}

fn parse_filters(input: &DescribeInstanceInformationRequest) -> Result<Vec<Filter>, SsmError> {
    let legacy = input.instance_information_filter_list.as_deref().unwrap_or_default();
    let current = input.filters.as_deref().unwrap_or_default();
    if !legacy.is_empty() && !current.is_empty() {
        return Err(SsmError::Validation(
            "InstanceInformationFilterList and Filters cannot be used in the same request.".to_string(),
        ));
    }
    let pairs: Vec<(&str, &[String])> = legacy
        .iter()
        .map(|f| (f.key.as_str(), f.value_set.as_slice()))
        .chain(current.iter().map(|f| (f.key.as_str(), f.values.as_slice())))
        .collect();
    let mut filters = Vec::new();
    for (key, values) in pairs {
        let set: BTreeSet<String> = values.iter().cloned().collect();
        if let Some(tag_key) = key.strip_prefix("tag:") {
            filters.push(Filter::Tag(tag_key.to_string(), set));
        } else if key == "tag-key" {
            filters.push(Filter::TagKey(set));
        } else if let Some(known) = FIELD_KEYS.iter().find(|k| **k == key) {
            if let Some(allowed) = allowed_values(known) {
                if let Some(bad) = set.iter().find(|v| !allowed.contains(&v.as_str())) {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "{bad} is not a valid value for the filter {key}. Valid values: {}.",
                        allowed.join(", ")
                    )));
                }
            }
            filters.push(Filter::Field(known, set));
        } else {
            return Err(SsmError::InvalidFilterKey(format!("The filter key {key} is not valid.")));
        }
    }
    Ok(filters)
}

fn matches(filter: &Filter, instance: &ManagedInstance, wire: &InstanceInformation) -> bool {
    let has = |set: &BTreeSet<String>, v: Option<&str>| v.is_some_and(|v| set.contains(v));
    match filter {
        Filter::Field(key, set) => match *key {
            "InstanceIds" => has(set, Some(&instance.instance_id)),
            "AgentVersion" => has(set, wire.agent_version.as_deref()),
            "PingStatus" => has(set, wire.ping_status.as_deref()),
            "PlatformTypes" => has(set, wire.platform_type.as_deref()),
            "ActivationIds" => has(set, Some(&instance.activation_id)),
            "IamRole" => has(set, Some(&instance.iam_role)),
            "ResourceType" => has(set, wire.resource_type.as_deref()),
            "SourceIds" => has(set, wire.source_id.as_deref()),
            "SourceTypes" => has(set, wire.source_type.as_deref()),
            // No State Manager yet: no instance has an association status.
            _ => false,
        },
        Filter::Tag(key, values) => instance.tags.iter().any(|t| &t.key == key && values.contains(&t.value)),
        Filter::TagKey(keys) => instance.tags.iter().any(|t| keys.contains(&t.key)),
    }
}

/// `DescribeInstanceInformation`: filters first, then full pages; the token is the last
/// instance ID returned, so pagination always advances.
pub async fn describe_instance_information(
    state: &AppState,
    ctx: &RequestContext,
    input: DescribeInstanceInformationRequest,
) -> Result<DescribeInstanceInformationResult, SsmError> {
    let filters = parse_filters(&input)?;
    // Naming an instance that does not exist is an error, as AWS makes it.
    for f in &filters {
        if let Filter::Field("InstanceIds", ids) = f {
            for id in ids {
                let known = state
                    .store
                    .get_instance(id)
                    .await?
                    .is_some_and(|i| i.account_id == ctx.account_id() && i.region == ctx.region);
                if !known {
                    return Err(SsmError::InvalidInstanceId(format!("Instance ID {id} is not valid.")));
                }
            }
        }
    }
    let page_size = input.max_results.map(|m| m.max(1) as usize).unwrap_or(DEFAULT_PAGE);
    let mut cursor = match &input.next_token {
        Some(t) => Some(
            pagination::decode("instances", t)
                .ok_or_else(|| SsmError::InvalidNextToken("The NextToken is not valid.".to_string()))?,
        ),
        None => None,
    };
    let mut page: Vec<InstanceInformation> = Vec::new();
    let mut more = false;
    'scan: loop {
        let batch = state.store.list_instances(ctx.account_id(), &ctx.region, cursor.as_deref(), SCAN_BATCH).await?;
        let exhausted = batch.len() < SCAN_BATCH;
        for instance in &batch {
            let wire = to_wire(instance, ctx.received_at, &state.config);
            if filters.iter().all(|f| matches(f, instance, &wire)) {
                if page.len() == page_size {
                    more = true;
                    break 'scan;
                }
                page.push(wire);
            }
        }
        match batch.last() {
            Some(last) if !exhausted => cursor = Some(last.instance_id.clone()),
            _ => break,
        }
    }
    let next_token = if more {
        page.last().and_then(|i| i.instance_id.as_deref()).map(|id| pagination::encode("instances", id))
    } else {
        None
    };
    Ok(DescribeInstanceInformationResult { instance_information_list: Some(page), next_token })
}

/// `DeregisterManagedInstance`: the instance disappears and its credentials stop working at once.
pub async fn deregister_managed_instance(
    state: &AppState,
    ctx: &RequestContext,
    input: DeregisterManagedInstanceRequest,
) -> Result<DeregisterManagedInstanceResult, SsmError> {
    match state.store.deregister_instance(ctx.account_id(), &ctx.region, &input.instance_id).await {
        Ok(()) => {
            // Locked out at once: its control channel closes and its unfinished invocations
            // become undeliverable.
            state.hub.disconnect(&input.instance_id);
            if let Err(e) = state.engine.instance_gone(&input.instance_id).await {
                tracing::warn!(error = %e, instance_id = %input.instance_id, "could not end the invocations of a deregistered instance");
            }
            Ok(DeregisterManagedInstanceResult::default())
        }
        Err(StoreError::NotFound) => {
            Err(SsmError::InvalidInstanceId(format!("Instance ID {} is not valid.", input.instance_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `UpdateManagedInstanceRole`: the instance's next role token carries the new role.
pub async fn update_managed_instance_role(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateManagedInstanceRoleRequest,
) -> Result<UpdateManagedInstanceRoleResult, SsmError> {
    let role = resolve_instance_role(state, ctx, &input.iam_role).await?;
    match state.store.update_instance_role(ctx.account_id(), &ctx.region, &input.instance_id, &role.role_name).await {
        Ok(()) => Ok(UpdateManagedInstanceRoleResult::default()),
        Err(StoreError::NotFound) => {
            Err(SsmError::InvalidInstanceId(format!("Instance ID {} is not valid.", input.instance_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A resource the tagging calls can tag.
enum Taggable {
    /// A managed instance of the account and region (boxed: it is much larger than a document).
    Instance(Box<ManagedInstance>),
    /// One of the account's documents in the region (by name).
    Document(corral_store::Document),
}

impl Taggable {
    fn id(&self) -> &str {
        match self {
            Taggable::Instance(i) => &i.instance_id,
            Taggable::Document(d) => &d.name,
        }
    }

    fn tags(&self) -> &[corral_store::Tag] {
        match self {
            Taggable::Instance(i) => &i.tags,
            Taggable::Document(d) => &d.tags,
        }
    }
}

fn invalid_resource_id(id: &str) -> SsmError {
    SsmError::InvalidResourceId(format!("The resource ID {id} is not valid."))
}

/// Checks the resource type and finds the managed instance or document a tagging call names.
async fn tagged_resource(
    state: &AppState,
    ctx: &RequestContext,
    resource_type: &str,
    resource_id: &str,
) -> Result<Taggable, SsmError> {
    match resource_type {
        "ManagedInstance" => state
            .store
            .get_instance(resource_id)
            .await?
            .filter(|i| i.account_id == ctx.account_id() && i.region == ctx.region)
            .map(|i| Taggable::Instance(Box::new(i)))
            .ok_or_else(|| invalid_resource_id(resource_id)),
        // AWS-owned documents cannot be tagged: they are not the account's.
        "Document" => match super::documents::find(state, ctx, resource_id).await? {
            Some(super::documents::Found::User(d)) => Ok(Taggable::Document(d)),
            _ => Err(invalid_resource_id(resource_id)),
        },
        other => Err(SsmError::InvalidResourceType(format!(
            "Corral does not tag resources of type {other} yet; ManagedInstance and Document are supported."
        ))),
    }
}

/// `AddTagsToResource` (adds or overwrites).
pub async fn add_tags_to_resource(
    state: &AppState,
    ctx: &RequestContext,
    input: AddTagsToResourceRequest,
) -> Result<AddTagsToResourceResult, SsmError> {
    let resource = tagged_resource(state, ctx, &input.resource_type, &input.resource_id).await?;
    check_tags(&input.tags)?;
    let tags: Vec<corral_store::Tag> =
        input.tags.into_iter().map(|t| corral_store::Tag { key: t.key, value: t.value }).collect();
    let (account, region) = (ctx.account_id(), ctx.region.as_str());
    let result = match &resource {
        Taggable::Instance(i) => {
            state.store.put_instance_tags(account, region, &i.instance_id, &tags, MAX_TAGS_PER_RESOURCE).await
        }
        Taggable::Document(d) => {
            state.store.put_document_tags(account, region, &d.name, &tags, MAX_TAGS_PER_RESOURCE).await
        }
    };
    match result {
        Ok(()) => Ok(AddTagsToResourceResult::default()),
        Err(StoreError::Conflict(_)) => Err(SsmError::TooManyTagsError(format!(
            "The resource {} would have more than {MAX_TAGS_PER_RESOURCE} tags.",
            resource.id()
        ))),
        Err(StoreError::NotFound) => Err(invalid_resource_id(resource.id())),
        Err(e) => Err(e.into()),
    }
}

/// `RemoveTagsFromResource` (absent keys are ignored).
pub async fn remove_tags_from_resource(
    state: &AppState,
    ctx: &RequestContext,
    input: RemoveTagsFromResourceRequest,
) -> Result<RemoveTagsFromResourceResult, SsmError> {
    let resource = tagged_resource(state, ctx, &input.resource_type, &input.resource_id).await?;
    let (account, region) = (ctx.account_id(), ctx.region.as_str());
    let result = match &resource {
        Taggable::Instance(i) => {
            state.store.remove_instance_tags(account, region, &i.instance_id, &input.tag_keys).await
        }
        Taggable::Document(d) => state.store.remove_document_tags(account, region, &d.name, &input.tag_keys).await,
    };
    match result {
        Ok(()) => Ok(RemoveTagsFromResourceResult::default()),
        Err(StoreError::NotFound) => Err(invalid_resource_id(resource.id())),
        Err(e) => Err(e.into()),
    }
}

/// `ListTagsForResource`.
pub async fn list_tags_for_resource(
    state: &AppState,
    ctx: &RequestContext,
    input: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResult, SsmError> {
    let resource = tagged_resource(state, ctx, &input.resource_type, &input.resource_id).await?;
    Ok(ListTagsForResourceResult {
        tag_list: Some(resource.tags().iter().map(|t| Tag { key: t.key.clone(), value: t.value.clone() }).collect()),
    })
}
