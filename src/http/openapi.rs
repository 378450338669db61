//! The OpenAPI document of both listeners, `GET /v1/openapi.json`.
//!
//! Operations are described where they are handled (`#[utoipa::path]` on each handler, the
//! admin ones collected as their routes are registered, so the document cannot drift from
//! the router). The answers every operation shares are added here, by one rule each rather
//! than on every handler: `401` and `503` on the `/v1` API, the body errors on every JSON
//! body, `422` on every query, the error body on every error. The public listener's routes
//! name their own server, `AKTI_BASE_URL`, since they are not served where the document is.

use super::error::ErrorBody;
use crate::domain::{ClickedData, DeliveredData, EventMetadata, EventType, SentData};
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr};
use utoipa::openapi::{Paths, PathsBuilder, Required};
use utoipa::{OpenApi as _, ToSchema};

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
    doc.webhooks = Some(webhooks(components_of(&mut doc)));
    doc
}

fn components_of(doc: &mut OpenApi) -> &mut Components {
    doc.components.get_or_insert_with(Components::default)
}

/// The three events as a receiver gets them (OpenAPI 3.1 `webhooks`), their bodies
/// described by the very types that render them; the schemas go into `components`.
fn webhooks(components: &mut Components) -> Paths {
    fn add<T: ToSchema>(components: &mut Components) -> String {
        let name = T::name().into_owned();
        components.schemas.insert(name.clone(), T::schema());
        name
    }
    let metadata = add::<EventMetadata>(components);
    let events = [
        (
            EventType::LinkSent,
            add::<SentData>(components),
            "A message holding the lead's short link was reported sent: one event per short link.",
        ),
        (
            EventType::LinkDelivered,
            add::<DeliveredData>(components),
            "A message holding short links was reported delivered.",
        ),
        (
            EventType::LinkClicked,
            add::<ClickedData>(components),
            "A lead's human click opened a dedup window (at most one per lead and link per AKTI_DEDUP_WINDOW).",
        ),
    ];
    let mut paths = PathsBuilder::new();
    for (event, data, description) in events {
        let body = ObjectBuilder::new()
            .property("metadata", Ref::from_schema_name(&metadata))
            .property("data", Ref::from_schema_name(&data))
            .required("metadata")
            .required("data");
        let operation = OperationBuilder::new()
            .summary(Some(event.as_str()))
            .description(Some(description))
            .operation_id(Some(event.as_str().replace('.', "_")))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(body)).build(),
                    )
                    .required(Some(Required::True))
                    .build(),
            ))
            .parameters(Some(signature_headers()))
            .response(
                "2XX",
                ResponseBuilder::new().description(
                    "Received. Any other answer, or none within AKTI_WEBHOOK_TIMEOUT, is \
                     retried on AKTI_WEBHOOK_RETRY_SCHEDULE.",
                ),
            )
            .build();
        paths = paths.path(event.as_str(), PathItem::new(HttpMethod::Post, operation));
    }
    paths.build()
}

/// The Standard Webhooks headers every delivery carries.
fn signature_headers() -> Vec<utoipa::openapi::path::Parameter> {
    let header = |name: &str, kind: Type, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(kind)))
            .build()
    };
    vec![
        header(
            "webhook-id",
            Type::String,
            "The event's id (`evt_…`), the same on every attempt: deduplicate on it.",
        ),
        header(
            "webhook-timestamp",
            Type::Integer,
            "When this attempt was signed, in seconds since the epoch.",
        ),
        header(
            "webhook-signature",
            Type::String,
            "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, \
             keyed by the base64-decoded part of the subscription's secret after `whsec_`.",
        ),
    ]
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
    // OpenAPI requires a description of every answer; a handler's `200` with only a body
    // says what it is by its schema.
    for response in responses.values_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = "Success".to_owned();
        }
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
