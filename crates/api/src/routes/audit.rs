//! The audit log: a page at a time, or the whole chain as an export an auditor can verify
//! offline with `chimatic audit verify --file`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use chimatic_audit::{AuditEntry, ExportLine, ExportedAnchor, ExportedEntry, ExportedHead, Stream, actions, to_hex};
use chimatic_domain::{Scope, Timestamp, WorkspaceId};
use chimatic_store::{AuditFilter, AuditLog, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::Tenant;
use crate::params::{ApiQuery, QueryParams};
use crate::{ApiError, AppState, ErrorCode};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Entries before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only this action, e.g. `api_key.created`.
    #[param(min_length = 1, max_length = 100)]
    pub action: Option<String>,
    /// Only this actor id (an API key id, `operator` or `system`).
    #[param(min_length = 1, max_length = 100)]
    pub actor: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.(control|data)\\.[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

impl QueryParams for AuditQuery {
    fn expected() -> String {
        "query parameters are `from`, `to` (RFC 3339), `action`, `actor`, `limit` (1 to 500) and `cursor`".into()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"data": [{"workspace_id": "ws_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f", "stream": "data", "seq": 25, "at_ms": 1730616075212_i64, "at": "2024-11-03T06:41:15.212Z", "actor": {"kind": "system", "id": "system", "name": "chimatic"}, "ip": "", "user_agent": "", "action": "notification.delivery_attempted", "target": {"kind": "notification", "id": "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"},
    "outcome": "success", "detail": {"error_class": null, "integration_id": null, "latency_ms": 84, "status_code": 200}, "prev_hash": "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d", "hash": "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}], "next_cursor": "1730616075212.data.25"}))]
pub struct AuditPage {
    /// Newest first, from both of the workspace's chains (control plane and data plane).
    pub data: Vec<ExportedEntry>,
    pub next_cursor: Option<String>,
}

/// A position in the newest-first order `(at, stream, seq)`.
#[derive(Clone, Copy)]
struct Cursor {
    at: Timestamp,
    stream: Stream,
    seq: u64,
}

impl Cursor {
    fn of(e: &AuditEntry) -> Self {
        Self { at: e.event.at, stream: e.stream, seq: e.seq }
    }

    fn encode(&self) -> String {
        format!("{}.{}.{}", self.at.as_millis(), self.stream.as_str(), self.seq)
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let at = Timestamp(parts.next()?.parse().ok()?);
        let stream = match parts.next()? {
            "control" => Stream::Control,
            "data" => Stream::Data,
            _ => return None,
        };
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self { at, stream, seq })
    }

    /// The exclusive bound for `stream`'s rows: at the same instant, the data stream sorts
    /// before the control stream in newest-first order.
    fn bound_for(&self, stream: Stream) -> (Timestamp, u64) {
        let seq = match stream.cmp(&self.stream) {
            std::cmp::Ordering::Equal => self.seq,
            std::cmp::Ordering::Less => u64::MAX,
            std::cmp::Ordering::Greater => 0,
        };
        (self.at, seq)
    }
}

fn newest_first(a: &AuditEntry, b: &AuditEntry) -> std::cmp::Ordering {
    (b.event.at, b.stream, b.seq).cmp(&(a.event.at, a.stream, a.seq))
}

/// The workspace's audit log (scope `audit:read`): every recorded action of its API keys, the
/// operator and Chimatic itself (delivery attempts), newest first, filtered and cursor-paginated.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = ["audit:read"])), params(AuditQuery),
    responses((status = 200, body = AuditPage)),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidCursor, crate::ErrorCode::InvalidQuery]))))]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    tenant.require(Scope::AuditRead)?;
    Ok(Json(audit_page(&state, &tenant.store, tenant.workspace_id, q).await?))
}

/// A page of the workspace's audit log from both its chains, newest first: the API's and the
/// console's one way to read it.
pub async fn audit_page(
    state: &AppState,
    store: &chimatic_store::Store,
    ws: WorkspaceId,
    q: AuditQuery,
) -> Result<AuditPage, ApiError> {
    let time = |v: &Option<String>, name: &str| {
        v.as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidQuery, format!("`{name}` must be an RFC 3339 timestamp"))
                })
            })
            .transpose()
    };
    let text = |v: &Option<String>, name: &str| match v.as_deref() {
        Some(t) if t.is_empty() || t.chars().count() > 100 => {
            Err(ApiError::new(ErrorCode::InvalidQuery, format!("`{name}` must be 1 to 100 characters")))
        }
        _ => Ok(()),
    };
    text(&q.action, "action")?;
    text(&q.actor, "actor")?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "`limit` must be between 1 and 500"));
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            Cursor::decode(c)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "`cursor` is not a cursor from this API"))
        })
        .transpose()?;
    let mut filter = AuditFilter {
        from: time(&q.from, "from")?,
        to: time(&q.to, "to")?,
        action: q.action,
        actor_id: q.actor,
        before: None,
        limit,
    };
    let mut merged = Vec::new();
    for log in [state.control.audit(), store.audit()] {
        filter.before = cursor.map(|c| c.bound_for(log.stream()));
        merged.extend(log.page(ws, &filter).await?);
    }
    merged.sort_by(newest_first);
    merged.truncate(limit as usize);
    let next_cursor = (merged.len() == limit as usize).then(|| merged.last().map(|e| Cursor::of(e).encode())).flatten();
    Ok(AuditPage { data: merged.iter().map(ExportedEntry::from).collect(), next_cursor })
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"}))]
pub struct AuditPublicKey {
    /// Hex Ed25519 public key that signs this region's audit chain heads: pin it when verifying
    /// an export (`chimatic audit verify --file … --public-key …`).
    pub public_key: String,
}

/// The key that signs the audit chain heads (scope `audit:read`).
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit", security(("bearer" = ["audit:read"])),
    responses((status = 200, body = AuditPublicKey)))]
pub async fn public_key(State(state): State<AppState>, tenant: Tenant) -> Result<Json<AuditPublicKey>, ApiError> {
    tenant.require(Scope::AuditRead)?;
    let signer = tenant.store.audit_head_signer(state.clock.now()).await?;
    Ok(Json(AuditPublicKey { public_key: to_hex(&signer.public_key()) }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default; verifiable with `chimatic audit verify --file`) or `csv`.
    #[param(pattern = "^(jsonl|csv)$")]
    pub format: Option<String>,
}

impl QueryParams for ExportQuery {
    fn expected() -> String {
        "the query parameter is `format`".into()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

/// Export the workspace's whole audit log (scope `audit:read`), streamed, oldest first per
/// chain. The export itself is recorded first, and both chains' heads are signed just before,
/// so the file ends with signed heads covering everything in it. JSON Lines carry each chain's
/// anchor, signed heads and entries with their hashes.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", security(("bearer" = ["audit:read"])), params(ExportQuery),
    responses((status = 200, description = "JSON Lines or CSV",
        content((String = "application/x-ndjson"), (String = "text/csv")))),
    extensions(("x-codes" = json!([crate::ErrorCode::InvalidQuery]))))]
pub async fn export(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    tenant.require(Scope::AuditRead)?;
    let response = export_audit(&state, &tenant.store, tenant.workspace_id, &tenant.audit, q.format.as_deref()).await?;
    tracing::info!(workspace = %tenant.workspace_id, by = %tenant.by, "audit log exported");
    Ok(response)
}

/// The export itself, recorded in the log as done `by` (an API key or a console member).
pub async fn export_audit(
    state: &AppState,
    store: &Arc<chimatic_store::Store>,
    ws: WorkspaceId,
    by: &chimatic_audit::AuditContext,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let format = match format.unwrap_or("jsonl") {
        "jsonl" => Format::Jsonl,
        "csv" => Format::Csv,
        _ => return Err(ApiError::new(ErrorCode::InvalidQuery, "`format` must be `jsonl` or `csv`")),
    };
    let now = state.clock.now();
    let event = by
        .event(now, actions::AUDIT_EXPORTED, "workspace", ws)
        .with_detail(serde_json::json!({ "format": if format == Format::Csv { "csv" } else { "jsonl" } }));
    store.audit().record(ws, event).await?;
    let signer = store.audit_head_signer(now).await?;
    store.audit().sign_heads(&signer, now).await?;
    state.control.audit().sign_heads(&signer, now).await?;

    let body = futures_util::stream::unfold(
        Export::new(ws, format, state.control.clone(), store.clone()),
        |mut ex| async move { ex.next_chunk().await.map(|chunk| (chunk, ex)) },
    );
    let content_type = if format == Format::Csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    let name = if format == Format::Csv { "audit.csv" } else { "audit.jsonl" };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .body(Body::from_stream(body))
        .map_err(ApiError::internal)
}

/// Walks the chains one page at a time, so an export of any size holds one page in memory.
struct Export {
    ws: WorkspaceId,
    format: Format,
    control: Arc<chimatic_store::ControlStore>,
    store: Arc<chimatic_store::Store>,
    /// 0: the control store's chain, 1: the region's, 2: done.
    current: usize,
    /// `None` until the current chain's preamble (anchor, heads) is written; then the last
    /// sequence number written and the chain's end.
    position: Option<(u64, u64)>,
    header_written: bool,
}

type Chunk = Result<Vec<u8>, std::io::Error>;

impl Export {
    const CHAINS: usize = 2;

    fn new(
        ws: WorkspaceId,
        format: Format,
        control: Arc<chimatic_store::ControlStore>,
        store: Arc<chimatic_store::Store>,
    ) -> Self {
        Self { ws, format, control, store, current: 0, position: None, header_written: false }
    }

    fn log(&self) -> &AuditLog {
        if self.current == 0 { self.control.audit() } else { self.store.audit() }
    }

    async fn next_chunk(&mut self) -> Option<Chunk> {
        match self.step().await {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => None,
            Err(_) => {
                // The body is already streaming; ending it early is the only signal left, and a
                // truncated export fails verification.
                tracing::warn!(workspace = %self.ws, "audit export stopped by a storage error");
                self.current = Self::CHAINS;
                Some(Err(std::io::Error::other("audit export interrupted")))
            }
        }
    }

    async fn step(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        if self.format == Format::Csv && !self.header_written {
            self.header_written = true;
            out.extend_from_slice(
                b"stream,seq,at,actor_kind,actor_id,actor_name,ip,user_agent,action,target_kind,target_id,outcome,detail,hash\n",
            );
        }
        while self.current < Self::CHAINS {
            let log = self.log();
            match self.position {
                None => {
                    let chain = log.chain(self.ws).await?;
                    let (anchor_seq, end) = chain.map_or((0, 0), |c| (c.anchor_seq, c.next_seq - 1));
                    if let (Format::Jsonl, Some(c)) = (self.format, chain) {
                        let anchor = ExportedAnchor {
                            workspace_id: self.ws,
                            stream: log.stream(),
                            seq: c.anchor_seq,
                            hash: to_hex(&c.anchor_hash),
                            next_seq: end + 1,
                        };
                        line(&mut out, &ExportLine::Anchor(anchor));
                        for head in log.heads(self.ws).await? {
                            line(&mut out, &ExportLine::Head(ExportedHead::from(&head)));
                        }
                    }
                    self.position = Some((anchor_seq, end));
                    if !out.is_empty() {
                        return Ok(Some(out));
                    }
                }
                Some((after, end)) if after < end => {
                    let page = log.entries_after(self.ws, after).await?;
                    let Some(last) = page.last().map(|e| e.seq) else {
                        self.position = Some((end, end));
                        continue;
                    };
                    for e in page.iter().filter(|e| e.seq <= end) {
                        match self.format {
                            Format::Jsonl => line(&mut out, &ExportLine::Entry(ExportedEntry::from(e))),
                            Format::Csv => csv_row(&mut out, e),
                        }
                    }
                    self.position = Some((last.min(end), end));
                    return Ok(Some(out));
                }
                Some(_) => {
                    self.current += 1;
                    self.position = None;
                }
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

fn line(out: &mut Vec<u8>, value: &ExportLine) {
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// RFC 4180 quoting; cells that a spreadsheet would run as a formula are prefixed with `'`.
fn csv_cell(out: &mut Vec<u8>, value: &str) {
    let guarded = value.starts_with(['=', '+', '-', '@']);
    out.push(b'"');
    if guarded {
        out.push(b'\'');
    }
    out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
    out.push(b'"');
}

fn csv_row(out: &mut Vec<u8>, e: &AuditEntry) {
    let ev = &e.event;
    let cells = [
        e.stream.as_str().to_string(),
        e.seq.to_string(),
        ev.at.to_rfc3339(),
        ev.actor.kind.as_str().to_string(),
        ev.actor.id.clone(),
        ev.actor.name.clone(),
        ev.origin.ip.clone(),
        ev.origin.user_agent.clone(),
        ev.action.clone(),
        ev.target.kind.clone(),
        ev.target.id.clone(),
        ev.outcome.as_str().to_string(),
        ev.detail.clone(),
        to_hex(&e.hash),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(out, cell);
    }
    out.push(b'\n');
}
