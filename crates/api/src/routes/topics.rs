use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{Scope, SubscriberId, TopicId, is_event_name};
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::params::{ApiQuery, QueryParams, parse_id};
use crate::{ApiError, AppState, ErrorCode};

const MAX_IDS: usize = 1000;
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "project.42.watchers"}))]
pub struct CreateTopic {
    /// 1 to 100 of `a-z 0-9 . _ -`, e.g. `project.42.watchers`.
    #[schema(value_type = chimatic_domain::patterns::EventName)]
    pub key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "top_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "key": "project.42.watchers", "subscriber_count": 2, "created_at": "2024-11-03T06:41:14.931Z"}))]
pub struct TopicView {
    pub id: TopicId,
    pub key: String,
    pub subscriber_count: u64,
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "top_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "key": "project.42.watchers", "subscriber_count": 2, "created_at": "2024-11-03T06:41:14.931Z"}]}))]
pub struct TopicList {
    pub data: Vec<TopicView>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subscriber_ids": ["sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"]}))]
pub struct TopicMembers {
    /// 1 to 1000 subscriber ids (`sub_…`); ids that are not this workspace's are ignored.
    #[schema(min_items = 1, max_items = 1000)]
    pub subscriber_ids: Vec<SubscriberId>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"changed": 1}))]
pub struct MembersChanged {
    /// How many were added (or removed); members already present (or absent) are not counted.
    pub changed: u64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MemberPage {
    #[param(value_type = Option<chimatic_domain::SubscriberId>)]
    pub after: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl QueryParams for MemberPage {
    fn expected() -> String {
        "query parameters are `after` (a subscriber id) and `limit` (1 to 1000)".into()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": ["sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "sub_0192f0c1a2b37c4d8e9f0a1b2c3d4e60"], "next_cursor": null}))]
pub struct MemberList {
    pub data: Vec<SubscriberId>,
    pub next_cursor: Option<SubscriberId>,
}

async fn view(tenant: &Tenant, row: chimatic_store::TopicRow) -> Result<TopicView, ApiError> {
    let subscriber_count = tenant.store.topic_size(tenant.workspace_id, row.id).await?;
    Ok(TopicView { id: row.id, key: row.key, subscriber_count, created_at: row.created_at.to_rfc3339() })
}

fn checked_ids(ids: &[SubscriberId]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::new(ErrorCode::InvalidMembers, format!("`subscriber_ids` must hold 1 to {MAX_IDS} ids")));
    }
    Ok(())
}

/// Create a topic (scope `subscribers:write`).
#[utoipa::path(post, path = "/v1/topics", tag = "topics", security(("bearer" = ["subscribers:write"])), request_body = CreateTopic,
    responses((status = 201, body = TopicView)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::InvalidTopic]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateTopic>,
) -> Result<(StatusCode, Json<TopicView>), ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    if !is_event_name(&req.key) {
        return Err(ApiError::new(ErrorCode::InvalidTopic, "`key` must be 1 to 100 of `a-z 0-9 . _ -`"));
    }
    let row = tenant.store.create_topic(tenant.workspace_id, &req.key, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(view(&tenant, row).await?)))
}

/// List topics with their sizes (scope `subscribers:read`).
#[utoipa::path(get, path = "/v1/topics", tag = "topics", security(("bearer" = ["subscribers:read"])),
    responses((status = 200, body = TopicList)))]
pub async fn list(tenant: Tenant) -> Result<Json<TopicList>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let mut data = Vec::new();
    for row in tenant.store.list_topics(tenant.workspace_id).await? {
        data.push(view(&tenant, row).await?);
    }
    Ok(Json(TopicList { data }))
}

/// Get a topic (scope `subscribers:read`).
#[utoipa::path(get, path = "/v1/topics/{id}", tag = "topics", security(("bearer" = ["subscribers:read"])),
    params(("id" = chimatic_domain::TopicId, Path, description = "Topic id (`top_…`)")),
    responses((status = 200, body = TopicView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<TopicView>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: TopicId = parse_id(&id)?;
    let row = tenant.store.topic(tenant.workspace_id, id).await?;
    Ok(Json(view(&tenant, row).await?))
}

/// Add subscribers to a topic (scope `subscribers:write`).
#[utoipa::path(post, path = "/v1/topics/{id}/subscribers", tag = "topics", security(("bearer" = ["subscribers:write"])), request_body = TopicMembers,
    params(("id" = chimatic_domain::TopicId, Path, description = "Topic id (`top_…`)")),
    responses((status = 200, body = MembersChanged)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidMembers]))))]
pub async fn add(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TopicMembers>,
) -> Result<Json<MembersChanged>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: TopicId = parse_id(&id)?;
    checked_ids(&req.subscriber_ids)?;
    let changed =
        tenant.store.add_topic_subscribers(tenant.workspace_id, id, &req.subscriber_ids, state.clock.now()).await?;
    Ok(Json(MembersChanged { changed }))
}

/// Remove subscribers from a topic (scope `subscribers:write`).
#[utoipa::path(post, path = "/v1/topics/{id}/subscribers/remove", tag = "topics", security(("bearer" = ["subscribers:write"])), request_body = TopicMembers,
    params(("id" = chimatic_domain::TopicId, Path, description = "Topic id (`top_…`)")),
    responses((status = 200, body = MembersChanged)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidMembers]))))]
pub async fn remove(
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TopicMembers>,
) -> Result<Json<MembersChanged>, ApiError> {
    tenant.require(Scope::SubscribersWrite)?;
    let id: TopicId = parse_id(&id)?;
    checked_ids(&req.subscriber_ids)?;
    let changed = tenant.store.remove_topic_subscribers(tenant.workspace_id, id, &req.subscriber_ids).await?;
    Ok(Json(MembersChanged { changed }))
}

/// A page of a topic's members (scope `subscribers:read`), in id order.
#[utoipa::path(get, path = "/v1/topics/{id}/subscribers", tag = "topics", security(("bearer" = ["subscribers:read"])),
    params(("id" = chimatic_domain::TopicId, Path, description = "Topic id (`top_…`)"), MemberPage),
    responses((status = 200, body = MemberList)))]
pub async fn members(
    tenant: Tenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<MemberPage>,
) -> Result<Json<MemberList>, ApiError> {
    tenant.require(Scope::SubscribersRead)?;
    let id: TopicId = parse_id(&id)?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(MemberPage::invalid());
    }
    let after = page.after.as_deref().map(parse_id::<SubscriberId>).transpose()?;
    tenant.store.topic(tenant.workspace_id, id).await?;
    let data = tenant.store.topic_subscribers(tenant.workspace_id, id, after, limit).await?;
    let next_cursor = if data.len() == limit as usize { data.last().copied() } else { None };
    Ok(Json(MemberList { data, next_cursor }))
}
