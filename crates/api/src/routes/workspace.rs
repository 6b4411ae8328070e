use axum::Json;
use axum::extract::State;
use chimatic_domain::{Region, Scope, WorkspaceId};
use chimatic_store::{StatsRow, day_of, start_of_day};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Tenant};
use crate::body::ApiJson;
use crate::params::{ApiQuery, QueryParams};
use crate::{ApiError, AppState, ErrorCode};

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "name": "Acme", "region": "eu", "created_at": "2024-11-03T06:40:02.117Z", "plan": "free", "audit_retention_days": 7, "payload_retention_days": 30}))]
pub struct WorkspaceView {
    pub id: WorkspaceId,
    pub name: String,
    /// Where the workspace's notification data, addresses and credentials are stored; set at
    /// creation (`chimatic workspace create --region`).
    pub region: Region,
    pub created_at: String,
    /// `free`, `pro`, `scale` or `enterprise`: sets how long the audit log is kept.
    pub plan: String,
    pub audit_retention_days: u32,
    /// Days a finished notification's content is kept; its delivery metadata stays.
    pub payload_retention_days: u32,
}

/// The caller's workspace (any valid API key).
#[utoipa::path(get, path = "/v1/workspace", tag = "workspace", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceView)))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Json<WorkspaceView>, ApiError> {
    let w = state.control.workspace(caller.workspace_id).await?;
    Ok(Json(WorkspaceView {
        id: w.id,
        name: w.name,
        region: w.region,
        created_at: w.created_at.to_rfc3339(),
        plan: w.plan.name().to_string(),
        audit_retention_days: w.plan.audit_retention_days(),
        payload_retention_days: w.payload_retention_days,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"confirm": "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"}))]
pub struct DeleteWorkspace {
    /// The workspace's id (`ws_…`), to confirm which workspace is deleted.
    pub confirm: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"workspace_id": "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "deleted": {"control.api_keys": 2, "control.audit_log": 4, "data.attempts": 1398, "data.audit_log": 1512, "data.channels": 2, "data.notifications": 1342, "data.subscribers": 120, "vault.secrets": 4}}))]
pub struct WorkspaceDeleted {
    pub workspace_id: WorkspaceId,
    /// Rows removed per store and table (`vault.secrets`, `data.notifications`,
    /// `control.api_keys`, …); the same counts are in the deployment's audit log.
    pub deleted: std::collections::BTreeMap<String, u64>,
}

/// Delete the workspace and everything of it, for good (the owner key only, created with the
/// workspace; `confirm` must be the workspace's id). Its keys stop working at once; its DEKs,
/// credentials and vault keys are destroyed first, then every row in every store. Recorded in
/// the deployment's audit log.
#[utoipa::path(delete, path = "/v1/workspace", tag = "workspace", security(("bearer" = ["admin"])), request_body = DeleteWorkspace,
    responses((status = 200, body = WorkspaceDeleted)),
    extensions(("x-codes" = json!([crate::ErrorCode::ConfirmationMismatch, crate::ErrorCode::OwnerOnly]))))]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(req): ApiJson<DeleteWorkspace>,
) -> Result<Json<WorkspaceDeleted>, ApiError> {
    let ws = tenant.workspace_id;
    let workspace = state.control.workspace(ws).await?;
    if workspace.owner_key_id.map(crate::auth::CallerId::Key) != Some(tenant.by) {
        return Err(ApiError::new(
            ErrorCode::OwnerOnly,
            "only the workspace's owner key (the one created with it) can delete the workspace",
        ));
    }
    if req.confirm != ws.to_string() {
        return Err(ApiError::new(ErrorCode::ConfirmationMismatch, "`confirm` must be this workspace's id"));
    }
    let deleted = state.control.delete_workspace(ws, &tenant.store, state.clock.now(), &tenant.audit).await?;
    tracing::warn!(workspace = %ws, "workspace deleted");
    Ok(Json(WorkspaceDeleted { workspace_id: ws, deleted }))
}

pub const MAX_STATS_DAYS: u32 = 90;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// How many UTC days back, today included (1 to 90, default 7).
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<u32>,
}

impl QueryParams for StatsQuery {
    fn expected() -> String {
        format!("the query parameter is `days` (1 to {MAX_STATS_DAYS})")
    }
}

#[derive(Serialize, utoipa::ToSchema, Default)]
pub struct DayStats {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Notifications accepted by the API.
    pub accepted: u64,
    /// Delivery attempts made.
    pub attempts: u64,
    /// Notifications delivered.
    pub delivered: u64,
    /// Notifications that exhausted their retries.
    pub failed: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"days": [{"day": "2024-11-01", "accepted": 0, "attempts": 0, "delivered": 0, "failed": 0}, {"day": "2024-11-02", "accepted": 120, "attempts": 130, "delivered": 117, "failed": 1}, {"day": "2024-11-03",
    "accepted": 62, "attempts": 70, "delivered": 63, "failed": 0}], "totals": {"accepted": 182, "attempts": 200, "delivered": 180, "failed": 1, "attempt_success_rate": 0.9}}))]
pub struct DeliveryStatsView {
    /// One entry per day of the range, oldest first (days without traffic are zero).
    pub days: Vec<DayStats>,
    pub totals: DayTotals,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayTotals {
    pub accepted: u64,
    pub attempts: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Share of attempts that delivered, or null without attempts.
    pub attempt_success_rate: Option<f64>,
}

/// Delivery analytics of the caller's workspace (scope `notifications:read`): counts per UTC
/// day. Gathered by data-plane nodes and added here every few seconds.
#[utoipa::path(get, path = "/v1/stats", tag = "workspace", security(("bearer" = ["notifications:read"])), params(StatsQuery),
    responses((status = 200, body = DeliveryStatsView)))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<DeliveryStatsView>, ApiError> {
    caller.require(Scope::NotificationsRead)?;
    let days = q.days.unwrap_or(7);
    if !(1..=MAX_STATS_DAYS).contains(&days) {
        return Err(StatsQuery::invalid());
    }
    let today = day_of(state.clock.now());
    let first = today - i64::from(days) + 1;
    let stored = state.control.daily_stats(caller.workspace_id, first, today).await?;
    let view_of = |day: i64, s: Option<&StatsRow>| {
        let s = s.copied().unwrap_or_default();
        let date = start_of_day(day).to_rfc3339();
        DayStats {
            day: date.get(..10).unwrap_or_default().to_string(),
            accepted: s.accepted,
            attempts: s.attempts,
            delivered: s.delivered,
            failed: s.failed,
        }
    };
    let days: Vec<DayStats> = (first..=today).map(|d| view_of(d, stored.iter().find(|s| s.period == d))).collect();
    let sum = |f: fn(&DayStats) -> u64| days.iter().map(f).sum::<u64>();
    let (attempts, delivered) = (sum(|d| d.attempts), sum(|d| d.delivered));
    let totals = DayTotals {
        accepted: sum(|d| d.accepted),
        attempts,
        delivered,
        failed: sum(|d| d.failed),
        attempt_success_rate: (attempts > 0).then(|| delivered as f64 / attempts as f64),
    };
    Ok(Json(DeliveryStatsView { days, totals }))
}
