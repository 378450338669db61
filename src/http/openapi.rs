//! The OpenAPI document of both listeners, `GET /v1/openapi.json`.
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler, the
//! admin ones collected as their routes are registered, so the document cannot drift from
//! the router). The answers every operation shares are added here, by one rule each rather
//! than on every handler: `401` and `503` on the `/v1` API, the body errors on every JSON
//! body, `422` on every query, the error body on every error. The public listener's routes
//! name their own server, `AKTI_BASE_URL`, since they are not served where the document is.

use super::error::ErrorBody;
use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "akti-link",
        description = "Short, per-lead tracked links for SMS campaigns. The `/v1` API and the \
            operator routes are served by the admin listener; redirects and the Twilio callback \
            by the public listener, at `AKTI_BASE_URL`."
    ),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    paths(
        super::public::redirect,
        redirect_head,
        super::twilio::status_callback,
        super::public::healthz,
        super::public::readyz,
        super::metrics::render,
        openapi_json,
    )
)]
struct Operators;

/// `HEAD /{code}`: answered by the same handler as `GET`.
#[utoipa::path(head, path = "/{code}", tag = "public",
    description = "The same status and headers as `GET`, without a body; records nothing.",
    security(()),
    params(("code" = super::schema::ShortCode, Path, description = "Short code")),
    responses(
        (status = 302, description = "The link's destination",
            headers(("location" = String), ("cache-control" = String), ("content-length" = String))),
        (status = 404, description = "No such link", content_type = "text/html"),
        (status = 410, description = "Disabled or expired", content_type = "text/html"),
        (status = 503, description = "The store is unavailable", content_type = "text/html",
            headers(("retry-after" = String))),
    ))]
#[allow(dead_code)]
fn redirect_head() {}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operators",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json",
        body = serde_json::Value)))]
#[allow(dead_code)]
fn openapi_json() {}

/// The whole document: the admin API's operations (`admin`), the operator and public ones,
/// and the shared answers.
pub fn document(admin: OpenApi, base_url: &str) -> OpenApi {
    let mut doc = Operators::openapi();
    doc.merge(admin);
    doc.info.license = None;
    let components = doc.components.get_or_insert_with(Components::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (name, description) in SHARED {
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", error_content())
            .build();
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = !path.starts_with("/v1") && !OPERATOR_PATHS.contains(&path.as_str());
        if public {
            item.servers = Some(vec![Server::new(base_url)]);
        }
        for operation in operations(item) {
            complete(path, operation);
        }
    }
    doc
}

/// Paths of the admin listener outside `/v1`.
const OPERATOR_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The shared error answers: (component name, description).
const SHARED: [(&str, &str); 8] = [
    (
        "Unauthorized",
        "No bearer token, or not one of AKTI_ADMIN_TOKEN",
    ),
    (
        "StoreUnavailable",
        "The store did not answer; retry shortly",
    ),
    (
        "MalformedJson",
        "The body is not well-formed JSON, or could not be read",
    ),
    ("BodyTimeout", "The body did not arrive in time"),
    ("BodyTooLarge", "The body is over the listener's limit"),
    (
        "UnsupportedMediaType",
        "The body is not sent as application/json",
    ),
    (
        "InvalidBody",
        "A field is missing, unknown, of the wrong kind or invalid",
    ),
    (
        "InvalidQuery",
        "A query parameter is unknown, repeated or invalid",
    ),
];

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.head,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds the answers `operation` shares with others, and the error body to its own errors.
fn complete(path: &str, operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    let mut shared = |status: &str, name: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if path.starts_with("/v1") {
        shared("401", "Unauthorized");
        if path != "/v1/openapi.json" {
            shared("503", "StoreUnavailable");
        }
    }
    let json_body = matches!(&operation.request_body, Some(RefOr::T(body))
        if body.content.contains_key("application/json"));
    if json_body {
        shared("400", "MalformedJson");
        shared("408", "BodyTimeout");
        shared("413", "BodyTooLarge");
        shared("415", "UnsupportedMediaType");
        shared("422", "InvalidBody");
    }
    let has_query = (operation.parameters.iter().flatten())
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
    if has_query {
        shared("422", "InvalidQuery");
    }
    if !path.starts_with("/v1") {
        return;
    }
    // The admin API's own errors (404, 409, 422…) carry the error body too.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && !status.starts_with('2')
            && response.content.is_empty()
        {
            (response.content).insert("application/json".into(), RefOr::T(error_content()));
        }
    }
}
