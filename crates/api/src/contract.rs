//! The OpenAPI document's last step, derived from the routes so it cannot drift: readable,
//! unique operation ids (`{tag}_{handler}`, the SDKs' method names) and the error responses of
//! every operation as `application/problem+json`, one per status, each naming the `code`s it
//! can carry. The codes follow from the operation's shape (how it authenticates, whether it
//! takes path ids, a query string or a body) plus the ones its handler declares with
//! `extensions(("x-codes" = json!([...])))`.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

use crate::ErrorCode;

const PROBLEM_JSON: &str = "application/problem+json";

/// The extension a handler lists its own problem codes in; consumed here.
pub const CODES_EXTENSION: &str = "x-codes";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    ApiKey,
    Subscriber,
    Operator,
}

fn auth_of(op: &Operation) -> Auth {
    match op.security.as_deref() {
        None => Auth::ApiKey,
        Some(requirements) => {
            let value = serde_json::to_value(requirements).unwrap_or_default();
            let names: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_object())
                .flat_map(|r| r.keys())
                .map(String::as_str)
                .collect();
            if names.contains(&"operator") {
                Auth::Operator
            } else if names.contains(&"subscriber") {
                Auth::Subscriber
            } else if names.contains(&"bearer") {
                Auth::ApiKey
            } else {
                Auth::None
            }
        }
    }
}

/// The codes an operation of this shape can answer with, whatever its handler does.
fn shape_codes(op: &Operation) -> Vec<ErrorCode> {
    let mut codes = vec![ErrorCode::Internal];
    match auth_of(op) {
        Auth::None => {}
        Auth::ApiKey => codes.extend([
            ErrorCode::Unauthorized,
            ErrorCode::InsufficientScope,
            ErrorCode::WorkspaceFrozen,
            ErrorCode::RateLimited,
            ErrorCode::RegionNotServed,
            ErrorCode::Unavailable,
        ]),
        Auth::Subscriber => codes.extend([
            ErrorCode::Unauthorized,
            ErrorCode::InsufficientScope,
            ErrorCode::WorkspaceFrozen,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
        ]),
        Auth::Operator => codes.extend([ErrorCode::Unauthorized, ErrorCode::OperatorDisabled]),
    }
    let params: Vec<ParameterIn> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p.parameter_in.clone()),
            RefOr::Ref(_) => None,
        })
        .collect();
    if params.iter().any(|p| matches!(p, ParameterIn::Path)) {
        codes.extend([ErrorCode::InvalidId, ErrorCode::NotFound]);
    }
    if params.iter().any(|p| matches!(p, ParameterIn::Query)) {
        codes.extend([ErrorCode::InvalidQuery, ErrorCode::InvalidId]);
    }
    if op.request_body.is_some() {
        codes.extend([
            ErrorCode::MalformedJson,
            ErrorCode::UnreadableBody,
            ErrorCode::BodyTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::InvalidBody,
        ]);
    }
    codes
}

/// The codes the handler declared, by their wire names.
fn declared_codes(op: &mut Operation) -> Vec<ErrorCode> {
    let Some(value) = op.extensions.as_mut().and_then(|e| e.remove(CODES_EXTENSION)) else { return Vec::new() };
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|wire| ErrorCode::parse(wire).unwrap_or_else(|| panic!("`{wire}` in x-codes is no error code")))
        .collect()
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Response")
}

fn problem_response(status: u16, codes: &[ErrorCode]) -> RefOr<Response> {
    let wires: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let description =
        format!("{}: {}", reason(status), wires.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "));
    let exact = ObjectBuilder::new()
        .property("status", ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some([status])))
        .property("code", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(wires)));
    let schema = AllOfBuilder::new().item(Ref::from_schema_name("Problem")).item(exact);
    let content = ContentBuilder::new().schema(Some(schema)).build();
    RefOr::T(ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build())
}

fn finish_operation(tag_default: &str, op: &mut Operation) {
    let tag = op.tags.as_ref().and_then(|t| t.first()).map_or(tag_default, String::as_str).replace('-', "_");
    let handler = op.operation_id.clone().unwrap_or_default();
    op.operation_id = Some(format!("{tag}_{handler}"));

    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    let mut codes = shape_codes(op);
    codes.extend(declared_codes(op));
    for code in codes {
        let list = by_status.entry(code.status()).or_default();
        if !list.contains(&code) {
            list.push(code);
        }
    }
    let responses = &mut op.responses.responses;
    // The hand-written catch-alls give way to the exact list.
    responses.retain(|status, _| status.starts_with('2') || status.starts_with('3'));
    // OpenAPI requires a description of every response; the status's reason when none is given.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = reason(status.parse().unwrap_or(200)).to_string();
        }
    }
    for (status, codes) in by_status {
        responses.insert(status.to_string(), problem_response(status, &codes));
    }
}

/// Applies the contract to the document the routes built.
pub fn finish(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            finish_operation("api", op);
        }
    }
}
