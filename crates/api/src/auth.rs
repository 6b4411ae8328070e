//! Authentication: who is calling (an API key, a subscriber token or the operator), and the one
//! guard every verified credential passes before a handler runs.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::{header, request::Parts};
use chimatic_audit::{Actor, AuditContext, Origin};
use chimatic_domain::{ApiKeyId, Region, Scope, Scopes, SubscriberId, SubscriberScope, UserId, WorkspaceId};
use chimatic_store::{ControlStore, Store, StoreError, subscriber_token_workspace};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::state::RegionPlane;
use crate::{ApiError, AppState, ErrorCode};

/// The token of an `Authorization: Bearer …` header. RFC 9110 §11.1: the scheme is
/// case-insensitive.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let (scheme, token) = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The peer address and user agent of a request.
pub fn request_origin(parts: &Parts) -> Origin {
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    Origin::new(ip, agent)
}

/// Whom a verified credential speaks for.
enum Principal<'a> {
    /// An API key or a subscriber token: one workspace.
    Workspace { id: WorkspaceId, region: &'a Region, frozen: bool },
    /// The deployment operator: no workspace, so nothing to freeze, meter or route. It must
    /// never be refused for a freeze, since it is who lifts one.
    Operator,
}

/// What the endpoint works on: the control store only, or the workspace's regional data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Control,
    Data,
}

/// The one guard, run after a credential is verified (so only a valid credential learns that
/// its workspace is frozen), in this order: a frozen workspace gets 423, one over its rate
/// limit 429 with `Retry-After`, and a data-plane request to a node that does not serve the
/// workspace's region 421. Returns the region's plane for data-plane requests.
fn guard<'s>(
    state: &'s AppState,
    principal: &Principal<'_>,
    reach: Reach,
) -> Result<Option<&'s RegionPlane>, ApiError> {
    let Principal::Workspace { id, region, frozen } = principal else {
        return Ok(None);
    };
    if *frozen {
        return Err(ApiError::frozen());
    }
    if let Some(limiter) = &state.rate_limiter
        && let Err(not_until) = limiter.check_key(id)
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        metrics::counter!("chimatic_rate_limited_total").increment(1);
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "this workspace is over its request rate limit; retry after the time in `Retry-After`",
        )
        .retry_after(wait));
    }
    match reach {
        Reach::Control => Ok(None),
        Reach::Data => served_plane(state, region).map(Some),
    }
}

/// The plane of a region this node serves. A node that does not serve it answers 421, so data
/// never crosses into a region it does not belong to.
fn served_plane<'s>(state: &'s AppState, region: &Region) -> Result<&'s RegionPlane, ApiError> {
    state.regions.get(region).ok_or_else(|| {
        ApiError::new(
            ErrorCode::RegionNotServed,
            format!(
                "this node does not serve the workspace's region `{region}`; send the request to a node of that region"
            ),
        )
    })
}

/// The plane the guard returns for `Reach::Data`; it always returns one, this only keeps a
/// broken invariant from panicking.
fn data_plane(plane: Option<&RegionPlane>) -> Result<&RegionPlane, ApiError> {
    plane.ok_or_else(|| ApiError::internal("the guard returned no plane for a data-plane request"))
}

/// Refuses requests for a frozen workspace from callers that present no credential of their
/// own (inbound provider webhooks, verified by signature instead).
pub async fn ensure_not_frozen(state: &AppState, ws: WorkspaceId) -> Result<(), ApiError> {
    match state.control.workspace(ws).await {
        Ok(w) if w.frozen_at.is_some() => Err(ApiError::frozen()),
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Who is calling: an API key, or a console member acting through the same handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerId {
    Key(ApiKeyId),
    Member(UserId),
}

impl std::fmt::Display for CallerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallerId::Key(k) => k.fmt(f),
            CallerId::Member(u) => u.fmt(f),
        }
    }
}

/// The caller behind a valid, unrevoked API key. Every handler that touches tenant data takes
/// one, so the workspace id always comes from the key, never from the request.
pub struct Caller {
    pub workspace_id: WorkspaceId,
    pub by: CallerId,
    pub scopes: Scopes,
    /// Who and from where, for the audit log.
    pub audit: AuditContext,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::InsufficientScope, format!("this API key lacks the `{scope}` scope")))
        }
    }

    /// Verifies the API key and runs the guard for `reach`.
    async fn admit<'s>(
        parts: &Parts,
        state: &'s AppState,
        reach: Reach,
    ) -> Result<(Self, Option<&'s RegionPlane>), ApiError> {
        let token = bearer_token(parts).ok_or_else(ApiError::unauthorized)?;
        let found = state.control.authenticate(token, state.clock.now()).await?.ok_or_else(ApiError::unauthorized)?;
        let row = found.key;
        let principal = Principal::Workspace { id: row.workspace_id, region: &found.region, frozen: found.frozen };
        let plane = guard(state, &principal, reach)?;
        let audit = AuditContext { actor: Actor::api_key(row.id, row.name.clone()), origin: request_origin(parts) };
        Ok((Caller { workspace_id: row.workspace_id, by: CallerId::Key(row.id), scopes: row.scopes, audit }, plane))
    }
}

/// A control-plane caller: workspace configuration, API keys, analytics.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Caller::admit(parts, state, Reach::Control).await?.0)
    }
}

/// A caller of the data-plane API, with its workspace's region store.
pub struct Tenant {
    pub caller: Caller,
    pub store: Arc<Store>,
    pub delivery_waker: Arc<Notify>,
}

impl std::ops::Deref for Tenant {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (caller, plane) = Caller::admit(parts, state, Reach::Data).await?;
        let plane = data_plane(plane)?;
        Ok(Tenant { store: plane.store.clone(), delivery_waker: plane.delivery_waker.clone(), caller })
    }
}

impl Tenant {
    /// A console member whose session the console has verified, as a caller of the API's own
    /// handlers: their role's scopes, the same guard, their workspace's region.
    pub fn member(
        state: &AppState,
        ws: WorkspaceId,
        region: &Region,
        frozen: bool,
        user: UserId,
        scopes: Scopes,
        audit: AuditContext,
    ) -> Result<Tenant, ApiError> {
        let plane = data_plane(admit_member(state, ws, region, frozen, true)?)?;
        let caller = Caller { workspace_id: ws, by: CallerId::Member(user), scopes, audit };
        Ok(Tenant { store: plane.store.clone(), delivery_waker: plane.delivery_waker.clone(), caller })
    }
}

/// The guard for a console member whose session the console has verified: the same freeze,
/// rate-limit and region checks as an API key, with the region's plane when `data` is asked for.
pub fn admit_member<'s>(
    state: &'s AppState,
    ws: WorkspaceId,
    region: &Region,
    frozen: bool,
    data: bool,
) -> Result<Option<&'s RegionPlane>, ApiError> {
    let principal = Principal::Workspace { id: ws, region, frozen };
    guard(state, &principal, if data { Reach::Data } else { Reach::Control })
}

/// The subscriber behind a valid subscriber token that opens `S` (the browser inbox by
/// default, or the webhook portal), with its region's store. The token travels in
/// `Authorization: Bearer sbt_…`, or for the inbox in `?token=` too.
pub struct SubscriberSession<S: TokenScope = InboxScope> {
    pub workspace_id: WorkspaceId,
    pub subscriber_id: SubscriberId,
    pub store: Arc<Store>,
    /// To end a live stream when the workspace is frozen.
    pub control: Arc<ControlStore>,
    /// Who acts, for the audit trail: the subscriber, from this request's origin.
    pub audit: AuditContext,
    /// Wakes the region's dispatcher (a replayed delivery).
    pub delivery_waker: Arc<Notify>,
    scope: std::marker::PhantomData<S>,
}

/// What a handler needs a subscriber token to open; the extractor refuses a token without it,
/// so no handler can forget the check.
pub trait TokenScope: Send + Sync + 'static {
    const SCOPE: SubscriberScope;
}

/// The in-app inbox and the subscriber's own preferences (`/v1/inbox…`).
pub struct InboxScope;
impl TokenScope for InboxScope {
    const SCOPE: SubscriberScope = SubscriberScope::Inbox;
}

/// The webhook portal (`/v1/portal/…`).
pub struct PortalScope;
impl TokenScope for PortalScope {
    const SCOPE: SubscriberScope = SubscriberScope::Portal;
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl<S: TokenScope> FromRequestParts<AppState> for SubscriberSession<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let from_header = bearer_token(parts).map(str::to_string);
        // Only the inbox takes a token in the URL (`EventSource` cannot set headers); the
        // portal, which manages secrets, keeps its token out of URLs and logs.
        let from_query = || match S::SCOPE {
            SubscriberScope::Inbox => parts.uri.query().and_then(token_from_query),
            SubscriberScope::Portal => None,
        };
        let token = from_header.or_else(from_query).ok_or_else(ApiError::unauthorized)?;
        let ws = subscriber_token_workspace(&token).ok_or_else(ApiError::unauthorized)?;
        let (region, frozen) = match state.control.workspace(ws).await {
            Ok(w) => (w.region, w.frozen_at.is_some()),
            Err(StoreError::NotFound) => return Err(ApiError::unauthorized()),
            Err(e) => return Err(e.into()),
        };
        // Tokens are kept in the region's store, so it is needed to verify one at all.
        let store = &served_plane(state, &region)?.store;
        let grant =
            store.verify_subscriber_token(&token, state.clock.now()).await?.ok_or_else(ApiError::unauthorized)?;
        let principal = Principal::Workspace { id: grant.workspace_id, region: &region, frozen };
        let plane = data_plane(guard(state, &principal, Reach::Data)?)?;
        if !grant.scopes.contains(&S::SCOPE) {
            let detail = format!("this subscriber token lacks the `{}` scope", S::SCOPE.as_str());
            return Err(ApiError::new(ErrorCode::InsufficientScope, detail));
        }
        Ok(SubscriberSession {
            workspace_id: grant.workspace_id,
            subscriber_id: grant.subscriber_id,
            store: plane.store.clone(),
            control: state.control.clone(),
            delivery_waker: plane.delivery_waker.clone(),
            audit: AuditContext { actor: Actor::subscriber(grant.subscriber_id), origin: request_origin(parts) },
            scope: std::marker::PhantomData,
        })
    }
}

fn token_from_query(query: &str) -> Option<String> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    Query::<TokenQuery>::try_from_uri(&uri).ok()?.0.token
}

/// The deployment operator, authenticated by the operator token (`CHIMATIC_OPERATOR_TOKEN`).
pub struct Operator {
    pub audit: AuditContext,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused =
            || ApiError::new(ErrorCode::Unauthorized, "the operator token is required: `Authorization: Bearer …`");
        let presented = bearer_token(parts).ok_or_else(refused)?;
        let credential = state.operator.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::OperatorDisabled,
                "operator endpoints are disabled: start the server with CHIMATIC_OPERATOR_TOKEN or \
                 CHIMATIC_OPERATOR_TOKEN_FILE",
            )
        })?;
        if !credential.matches(presented) {
            return Err(refused());
        }
        guard(state, &Principal::Operator, Reach::Control)?;
        Ok(Operator { audit: AuditContext { actor: Actor::operator(), origin: request_origin(parts) } })
    }
}
