use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chimatic_domain::{
    ChannelKind, IntegrationKind, RenderedMessage, Scope, WorkflowDefinition, WorkflowId, WorkflowStep, is_event_name,
};
use chimatic_store::StoreError;
use chimatic_store::records::Workflow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Tenant;
use crate::body::ApiJson;
use crate::params::parse_id;
use crate::{ApiError, AppState, ErrorCode};

const MAX_STEPS: usize = 10;
const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
const MAX_FAILOVER_AFTER: u32 = 10;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "order.shipped", "category": "orders", "steps": [{"channel": "inapp", "title": "Shipped", "text": "Order {{ data.order }} is on its way"}]}))]
pub struct CreateWorkflow {
    /// The event name this workflow handles, e.g. `order.shipped` (1 to 100 of `a-z 0-9 . _ -`).
    #[schema(value_type = chimatic_domain::patterns::EventName)]
    pub key: String,
    /// A category subscribers can opt out of, e.g. `marketing`.
    #[schema(value_type = Option<chimatic_domain::patterns::CategoryName>)]
    pub category: Option<String>,
    /// 1 to 10 steps, one per channel. Templates use minijinja syntax with `subscriber` (its
    /// attributes) and `data` (the event's data) in scope; `html` is autoescaped.
    #[schema(min_items = 1, max_items = 10)]
    pub steps: Vec<WorkflowStep>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "orders", "steps": [{"channel": "inapp", "title": "Shipped", "text": "Order {{ data.order }} is on its way"}]}))]
pub struct ReplaceWorkflow {
    #[schema(value_type = Option<chimatic_domain::patterns::CategoryName>)]
    pub category: Option<String>,
    #[schema(min_items = 1, max_items = 10)]
    pub steps: Vec<WorkflowStep>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "wf_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "key": "order.shipped", "category": "orders", "steps": [{"channel": "inapp", "integration_id": null, "subject": null,
    "text": "Order {{ data.order }} is on its way", "html": null, "title": "Shipped"}], "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z"}))]
pub struct WorkflowView {
    pub id: WorkflowId,
    pub key: String,
    pub category: Option<String>,
    pub steps: Vec<WorkflowStep>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"id": "wf_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "key": "order.shipped", "category": "orders", "steps": [{"channel": "inapp", "integration_id": null, "subject": null,
    "text": "Order {{ data.order }} is on its way", "html": null, "title": "Shipped"}], "created_at": "2024-11-03T06:41:14.931Z", "updated_at": "2024-11-03T06:41:14.931Z"}]}))]
pub struct WorkflowList {
    pub data: Vec<WorkflowView>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"order": 42}, "subscriber": {"name": "Ann"}}))]
pub struct PreviewRequest {
    /// Sample event data (`data` in templates).
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, Value>>,
    /// Sample subscriber attributes (`subscriber` in templates). Stored subscribers are never
    /// used, so a preview shows no one's personal data.
    #[schema(value_type = Option<Object>)]
    pub subscriber: Option<serde_json::Map<String, Value>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewStep {
    pub channel: ChannelKind,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub title: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"steps": [{"channel": "inapp", "subject": null, "text": "Order 42 is on its way", "html": null, "title": "Shipped"}]}))]
pub struct Preview {
    pub steps: Vec<PreviewStep>,
}

fn view(w: Workflow) -> WorkflowView {
    WorkflowView {
        id: w.id,
        key: w.key,
        category: w.definition.category,
        steps: w.definition.steps,
        created_at: w.created_at.to_rfc3339(),
        updated_at: w.updated_at.to_rfc3339(),
    }
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidWorkflow, detail)
}

/// The integration kind a channel is delivered through; `None` for in-app.
fn integration_kind_for(channel: ChannelKind) -> Option<IntegrationKind> {
    match channel {
        ChannelKind::Email => Some(IntegrationKind::Smtp),
        ChannelKind::Sms => Some(IntegrationKind::Sms),
        ChannelKind::Slack => Some(IntegrationKind::Slack),
        ChannelKind::Webhook => Some(IntegrationKind::Webhook),
        ChannelKind::Inapp => None,
    }
}

/// Checks a definition completely before anything is stored: shape per channel, integrations
/// of the right kind in this workspace, and templates that parse.
async fn checked_definition(
    tenant: &Tenant,
    state: &AppState,
    category: Option<String>,
    steps: Vec<WorkflowStep>,
) -> Result<WorkflowDefinition, ApiError> {
    if let Some(c) = &category
        && !(is_event_name(c) && c.len() <= 64)
    {
        return Err(invalid("`category` must be 1 to 64 of `a-z 0-9 . _ -`"));
    }
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(invalid(format!("`steps` must hold 1 to {MAX_STEPS} steps")));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = |what: &str| invalid(format!("`steps[{i}]`: {what}"));
        let sources = [Some(&step.text), step.subject.as_ref(), step.html.as_ref(), step.title.as_ref()];
        if sources.iter().flatten().any(|s| s.len() > MAX_TEMPLATE_BYTES) {
            return Err(at(&format!("a template exceeds {MAX_TEMPLATE_BYTES} bytes")));
        }
        let email = step.channel == ChannelKind::Email;
        if email != step.subject.is_some() {
            return Err(at("`subject` is required for email and only for email"));
        }
        if step.html.is_some() && !email {
            return Err(at("`html` is for email only"));
        }
        if step.title.is_some() && step.channel != ChannelKind::Inapp {
            return Err(at("`title` is for in-app only"));
        }
        let kind = integration_kind_for(step.channel);
        match (kind, step.integration_id) {
            (None, None) => {}
            (None, Some(_)) => return Err(at("an in-app step takes no `integration_id`")),
            (Some(kind), None) => {
                return Err(at(&format!("`integration_id` of a `{}` integration is required", kind.as_str())));
            }
            (Some(kind), Some(id)) => {
                if let Some(problem) = integration_problem(tenant, id, kind, "integration_id").await? {
                    return Err(at(&problem));
                }
            }
        }
        match (kind, step.fallback_integration_id) {
            (_, None) if step.failover_after.is_some() => {
                return Err(at("`failover_after` needs a `fallback_integration_id`"));
            }
            (_, None) => {}
            (None, Some(_)) => return Err(at("an in-app step takes no `fallback_integration_id`")),
            (Some(_), Some(id)) if Some(id) == step.integration_id => {
                return Err(at("`fallback_integration_id` must differ from `integration_id`"));
            }
            (Some(kind), Some(id)) => {
                if let Some(problem) = integration_problem(tenant, id, kind, "fallback_integration_id").await? {
                    return Err(at(&problem));
                }
            }
        }
        if step.failover_after.is_some_and(|n| !(1..=MAX_FAILOVER_AFTER).contains(&n)) {
            return Err(at(&format!("`failover_after` must be 1 to {MAX_FAILOVER_AFTER}")));
        }
        state
            .templates
            .check(step)
            .map_err(|e| ApiError::new(ErrorCode::InvalidTemplate, format!("`steps[{i}]`: {e}")))?;
    }
    Ok(WorkflowDefinition { category, steps })
}

/// Why `id` does not name an integration of `kind` in the tenant's workspace; `None` if it does.
async fn integration_problem(
    tenant: &Tenant,
    id: chimatic_domain::IntegrationId,
    kind: IntegrationKind,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match tenant.store.integration(tenant.workspace_id, id).await {
        // Email goes through SMTP or Gmail alike.
        Ok(found) if found.kind.channel() == kind.channel() => Ok(None),
        Ok(_) => Ok(Some(format!("`{field}` must name an integration that delivers `{}`", kind.channel().as_str()))),
        Err(StoreError::NotFound) => Ok(Some(format!("`{field}` names no integration of this workspace"))),
        Err(e) => Err(e.into()),
    }
}

/// Create the workflow for an event (scope `workflows:write`).
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", security(("bearer" = ["workflows:write"])), request_body = CreateWorkflow,
    responses((status = 201, body = WorkflowView)),
    extensions(("x-codes" = json!([crate::ErrorCode::Conflict, crate::ErrorCode::InvalidTemplate, crate::ErrorCode::InvalidWorkflow]))))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<CreateWorkflow>,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    tenant.require(Scope::WorkflowsWrite)?;
    if !is_event_name(&req.key) {
        return Err(invalid("`key` must be 1 to 100 of `a-z 0-9 . _ -`"));
    }
    let definition = checked_definition(&tenant, &state, req.category, req.steps).await?;
    let workflow = tenant.store.create_workflow(tenant.workspace_id, &req.key, definition, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(view(workflow))))
}

/// List workflows (scope `workflows:read`).
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", security(("bearer" = ["workflows:read"])),
    responses((status = 200, body = WorkflowList)))]
pub async fn list(tenant: Tenant) -> Result<Json<WorkflowList>, ApiError> {
    tenant.require(Scope::WorkflowsRead)?;
    let all = tenant.store.list_workflows(tenant.workspace_id).await?;
    Ok(Json(WorkflowList { data: all.into_iter().map(view).collect() }))
}

/// Get a workflow (scope `workflows:read`).
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["workflows:read"])),
    params(("id" = chimatic_domain::WorkflowId, Path, description = "Workflow id (`wf_…`)")),
    responses((status = 200, body = WorkflowView)))]
pub async fn get(tenant: Tenant, Path(id): Path<String>) -> Result<Json<WorkflowView>, ApiError> {
    tenant.require(Scope::WorkflowsRead)?;
    let id: WorkflowId = parse_id(&id)?;
    Ok(Json(view(tenant.store.workflow(tenant.workspace_id, id).await?)))
}

/// Replace a workflow's category and steps (scope `workflows:write`); its key stays.
#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["workflows:write"])), request_body = ReplaceWorkflow,
    params(("id" = chimatic_domain::WorkflowId, Path, description = "Workflow id (`wf_…`)")),
    responses((status = 200, body = WorkflowView)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidTemplate, crate::ErrorCode::InvalidWorkflow]))))]
pub async fn replace(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReplaceWorkflow>,
) -> Result<Json<WorkflowView>, ApiError> {
    tenant.require(Scope::WorkflowsWrite)?;
    let id: WorkflowId = parse_id(&id)?;
    // A missing workflow is a 404 before any body problem is reported.
    tenant.store.workflow(tenant.workspace_id, id).await?;
    let definition = checked_definition(&tenant, &state, req.category, req.steps).await?;
    let workflow = tenant.store.replace_workflow(tenant.workspace_id, id, definition, state.clock.now()).await?;
    Ok(Json(view(workflow)))
}

/// Delete a workflow (scope `workflows:write`).
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["workflows:write"])),
    params(("id" = chimatic_domain::WorkflowId, Path, description = "Workflow id (`wf_…`)")),
    responses((status = 204)))]
pub async fn delete(tenant: Tenant, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    tenant.require(Scope::WorkflowsWrite)?;
    let id: WorkflowId = parse_id(&id)?;
    tenant.store.delete_workflow(tenant.workspace_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Render every step with sample data (scope `workflows:read`), without sending anything.
#[utoipa::path(post, path = "/v1/workflows/{id}/preview", tag = "workflows", security(("bearer" = ["workflows:read"])), request_body = PreviewRequest,
    params(("id" = chimatic_domain::WorkflowId, Path, description = "Workflow id (`wf_…`)")),
    responses((status = 200, body = Preview)),
    extensions(("x-codes" = json!([crate::ErrorCode::RenderFailed]))))]
pub async fn preview(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> Result<Json<Preview>, ApiError> {
    tenant.require(Scope::WorkflowsRead)?;
    let id: WorkflowId = parse_id(&id)?;
    let workflow = tenant.store.workflow(tenant.workspace_id, id).await?;
    let context = json!({
        "data": req.data.unwrap_or_default(),
        "subscriber": req.subscriber.unwrap_or_default(),
    });
    let mut steps = Vec::with_capacity(workflow.definition.steps.len());
    for (i, step) in workflow.definition.steps.iter().enumerate() {
        let RenderedMessage { subject, text, html, title } = state
            .templates
            .render(step, &context)
            .map_err(|e| ApiError::new(ErrorCode::RenderFailed, format!("`steps[{i}]`: {e}")))?;
        steps.push(PreviewStep { channel: step.channel, subject, text, html, title });
    }
    Ok(Json(Preview { steps }))
}
