//! The router. Every endpoint is registered through `routes!`, so it is in the OpenAPI document
//! served at `/v1/openapi.json` by construction.

mod admin;
mod api_keys;
pub mod audit;
mod channels;
pub mod connections;
mod events;
mod inbound;
mod inbox;
pub mod integrations;
mod keys;
mod notifications;
mod ops;
mod portal;
pub mod subscribers;
pub mod suppressions;
pub mod topics;
pub mod workflows;
mod workspace;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState, ErrorCode, Planes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chimatic API",
        description = "Notification orchestration and delivery. Authenticate with `Authorization: Bearer <API key>`. \
                       Errors are `application/problem+json`.",
        license(name = "MIT")
    ),
    components(schemas(crate::error::Problem, crate::error::ItemError)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("chm_…").build()),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The deployment operator's token (CHIMATIC_OPERATOR_TOKEN), for /v1/admin only"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "subscriber",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sbt_…").build()),
        );
    }
}

/// The API of the given planes: a control-plane node serves workspace configuration, API keys
/// and analytics; a data-plane node serves channels and notifications. The OpenAPI document
/// lists exactly what the node serves.
pub fn router(state: AppState, planes: Planes) -> Router {
    let (router, mut openapi) = api_routes(planes).with_state(state.clone()).split_for_parts();
    crate::contract::finish(&mut openapi);
    let openapi = std::sync::Arc::new(openapi);
    serve(router, openapi, &state)
}

/// The OpenAPI document of a node serving `planes`, exactly as `/v1/openapi.json` serves it
/// (`chimatic openapi` prints it; the SDKs are generated from it).
pub fn document(planes: Planes) -> utoipa::openapi::OpenApi {
    let (_, mut openapi) = api_routes(planes).split_for_parts();
    crate::contract::finish(&mut openapi);
    openapi
}

/// Every endpoint of the planes, registered with its documentation.
fn api_routes(planes: Planes) -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    if planes.control {
        api = api
            .routes(routes!(api_keys::create, api_keys::list))
            .routes(routes!(api_keys::revoke))
            .routes(routes!(workspace::get))
            .routes(routes!(workspace::stats))
            .routes(routes!(admin::freeze))
            .routes(routes!(admin::unfreeze));
    }
    if planes.data {
        api = api
            .routes(routes!(audit::list))
            .routes(routes!(audit::export))
            .routes(routes!(audit::public_key))
            .routes(routes!(channels::create, channels::list))
            .routes(routes!(channels::get))
            .routes(routes!(channels::deactivate))
            .routes(routes!(channels::reactivate))
            .routes(routes!(notifications::create))
            .routes(routes!(notifications::create_batch))
            .routes(routes!(notifications::get))
            .routes(routes!(notifications::replay))
            .routes(routes!(subscribers::identify, subscribers::list))
            .routes(routes!(subscribers::get, subscribers::update, subscribers::erase))
            .routes(routes!(subscribers::add_channel, subscribers::list_channels))
            .routes(routes!(subscribers::remove_channel))
            .routes(routes!(subscribers::preferences, subscribers::set_preferences))
            .routes(routes!(subscribers::inbox))
            .routes(routes!(subscribers::issue_token))
            .routes(routes!(subscribers::mark_inbox))
            .routes(routes!(events::send))
            .routes(routes!(inbox::list))
            .routes(routes!(inbox::mark))
            .routes(routes!(inbox::stream))
            .routes(routes!(inbox::read_all))
            .routes(routes!(inbox::preferences, inbox::set_preferences))
            .routes(routes!(portal::list, portal::create))
            .routes(routes!(portal::delete))
            .routes(routes!(portal::rotate_secret))
            .routes(routes!(portal::disable))
            .routes(routes!(portal::enable))
            .routes(routes!(portal::deliveries))
            .routes(routes!(portal::replay))
            .routes(routes!(topics::create, topics::list))
            .routes(routes!(topics::get))
            .routes(routes!(topics::add, topics::members))
            .routes(routes!(topics::remove))
            .routes(routes!(integrations::create, integrations::list))
            .routes(routes!(integrations::get, integrations::update, integrations::delete))
            .routes(routes!(integrations::check))
            .routes(routes!(connections::oauth_start))
            .routes(routes!(connections::oauth_finish))
            .routes(routes!(inbound::inbound_history))
            .routes(routes!(inbound::receive))
            .routes(routes!(suppressions::create, suppressions::list))
            .routes(routes!(suppressions::delete))
            .routes(routes!(workspace::delete))
            .routes(routes!(keys::rotate_dek))
            .routes(routes!(keys::use_kms))
            .routes(routes!(workflows::create, workflows::list))
            .routes(routes!(workflows::get, workflows::replace, workflows::delete))
            .routes(routes!(workflows::preview));
    }
    api.routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
}

fn serve(router: Router, openapi: std::sync::Arc<utoipa::openapi::OpenApi>, state: &AppState) -> Router {
    router
        .layer(axum::Extension(openapi))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not support this method")
        })
        .layer(middleware::from_fn(record_request))
        .layer(inbox_cors(state.inbox_origins.clone()))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        // Responses can carry a key or secret shown once: never cache them.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        // Spans name the path, never the query string (which can carry a subscriber token).
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &Request| tracing::debug_span!("request", method = %req.method(), path = %req.uri().path()),
        ))
}

/// CORS for the browser inbox and webhook portal (`/v1/inbox…`, `/v1/portal/…`) and the
/// configured front-end origins only; the API-key endpoints are never opened to browsers. No cookies are involved: the subscriber token
/// is sent explicitly.
fn inbox_cors(origins: Vec<HeaderValue>) -> tower_http::cors::CorsLayer {
    let allow = tower_http::cors::AllowOrigin::predicate(move |origin, request| {
        let path = request.uri.path();
        (path.starts_with("/v1/inbox") || path.starts_with("/v1/portal/")) && origins.contains(origin)
    });
    tower_http::cors::CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::PATCH,
            axum::http::Method::PUT,
            axum::http::Method::POST,
            axum::http::Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

/// Request counts by route template (never the concrete path, which holds ids) and status.
async fn record_request(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    metrics::counter!(
        "chimatic_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}
