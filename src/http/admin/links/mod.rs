//! `/v1/links`: create (single and bulk), get, patch, delete and list links.

mod bodies;

pub(super) use bodies::parse_time;
use bodies::{
    CreateLink, CreateLinksBulk, LinkBody, LinkList, LinkPageBody, ListParams, PatchLink,
};

use crate::domain::ShortCode;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::http::schema;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_link, list_links))
        .routes(routes!(create_links_bulk))
        .routes(routes!(get_link, patch_link, delete_link))
}

/// A code in a path that cannot exist is simply not found.
fn path_code(code: &str) -> Result<ShortCode, ApiError> {
    ShortCode::parse(code).map_err(|_| ApiError::NotFound("link"))
}

/// Create a link, or return the existing one with the same campaign, phone and URL.
#[utoipa::path(post, path = "/v1/links", tag = "links", request_body = CreateLink,
    responses(
        (status = 201, description = "Created", body = LinkBody),
        (status = 200, description = "A link with this campaignId, phone and url already existed", body = LinkBody),
        (status = 409, description = "The custom code is taken, or this identity has another code"),
        (status = 422, description = "Invalid field"),
    ))]
async fn create_link(
    State(state): State<AppState>,
    Json(body): Json<CreateLink>,
) -> Result<Response, ApiError> {
    let new = body.validate()?;
    let created = (state.links.create(vec![new]).await?)
        .pop()
        .ok_or_else(|| ApiError::Internal("the store returned no link".into()))?;
    let status = if created.is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(LinkBody::new(&state, &created.link))).into_response())
}

/// Create one link per lead for a campaign URL, in the order given (idempotent per lead).
#[utoipa::path(post, path = "/v1/links/bulk", tag = "links", request_body = CreateLinksBulk,
    responses(
        (status = 200, description = "The links, in the order of `leads`", body = LinkList),
        (status = 422, description = "Invalid field, or more than 10,000 leads"),
    ))]
async fn create_links_bulk(
    State(state): State<AppState>,
    Json(body): Json<CreateLinksBulk>,
) -> Result<Response, ApiError> {
    let links = body.validate()?;
    let created = state.links.create(links).await?;
    let list = LinkList {
        links: created
            .iter()
            .map(|c| LinkBody::new(&state, &c.link))
            .collect(),
    };
    // Sized up front: 10,000 links are megabytes, which axum's Json would reach by doubling.
    let mut json = Vec::with_capacity(64 + list.links.len() * 320);
    serde_json::to_writer(&mut json, &list).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/links/{code}", tag = "links",
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses((status = 200, body = LinkBody), (status = 404, description = "No such link")))]
async fn get_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<axum::Json<LinkBody>, ApiError> {
    let code = path_code(&code)?;
    let link = (state.links.get(&code).await?).ok_or(ApiError::NotFound("link"))?;
    Ok(axum::Json(LinkBody::new(&state, &link)))
}

/// Change the destination, disable or re-enable, or set or clear the expiry. Takes effect
/// on every instance within a second.
#[utoipa::path(patch, path = "/v1/links/{code}", tag = "links", request_body = PatchLink,
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses(
        (status = 200, body = LinkBody),
        (status = 404, description = "No such link"),
        (status = 409, description = "Another link already has the new campaign, phone and url"),
    ))]
async fn patch_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(body): Json<PatchLink>,
) -> Result<axum::Json<LinkBody>, ApiError> {
    let code = path_code(&code)?;
    let patch = body.validate()?;
    let link = (state.links.patch(&code, &patch).await?).ok_or(ApiError::NotFound("link"))?;
    Ok(axum::Json(LinkBody::new(&state, &link)))
}

#[utoipa::path(delete, path = "/v1/links/{code}", tag = "links",
    params(("code" = schema::ShortCode, Path, description = "Short code")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such link")))]
async fn delete_link(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let code = path_code(&code)?;
    if !state.links.delete(&code).await? {
        return Err(ApiError::NotFound("link"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// List links, oldest first, optionally of one campaign and/or one lead.
#[utoipa::path(get, path = "/v1/links", tag = "links", params(ListParams),
    responses((status = 200, body = LinkPageBody), (status = 422, description = "Invalid parameter")))]
async fn list_links(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<LinkPageBody>, ApiError> {
    let query = params.validate()?;
    let page = state.links.list(&query).await?;
    Ok(axum::Json(LinkPageBody {
        links: page
            .items
            .iter()
            .map(|l| LinkBody::new(&state, l))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
