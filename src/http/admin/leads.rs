//! `DELETE /v1/leads/{phone}`: erasing a lead (a privacy request).

use crate::domain::Phone;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Path;
use crate::http::schema;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase_lead))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedBody {
    /// Links deleted, in every campaign.
    links: u64,
    /// Messages deleted.
    messages: u64,
}

/// Erase a lead: every link and message of the phone, in every campaign, is deleted, with
/// the link's counters (campaign totals keep their counts). Its short links answer `404`
/// on every instance within a second. Events emitted before stay until they expire
/// (`AKTI_EVENT_RETENTION`). Erasing a lead the store does not hold answers zeros.
#[utoipa::path(delete, path = "/v1/leads/{phone}", tag = "links",
    params(("phone" = schema::Phone, Path, description = "The lead's phone, E.164 (`+` as is or as `%2B`)")),
    responses(
        (status = 200, body = ErasedBody),
        (status = 422, description = "Invalid phone"),
    ))]
async fn erase_lead(
    State(state): State<AppState>,
    Path(phone): Path<String>,
) -> Result<axum::Json<ErasedBody>, ApiError> {
    let phone = Phone::parse(&phone)?;
    let erasure = state.links.erase_lead(&phone).await?;
    Ok(axum::Json(ErasedBody {
        links: erasure.links.len() as u64,
        messages: erasure.messages,
    }))
}
