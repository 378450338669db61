//! `PATCH /v1/campaigns/{campaignId}`: disable, enable or expire every link of a campaign
//! at once.

use super::links::parse_time;
use crate::domain::{CampaignId, CampaignPatch, InvalidValue, now_millis};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::http::schema;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(patch_campaign))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchCampaign {
    /// Disables (or enables again) every link of the campaign.
    disabled: Option<bool>,
    /// Every link of the campaign answers `410` from then on; `null` removes the expiry.
    #[serde(default, deserialize_with = "crate::http::extract::present")]
    #[schema(value_type = Option<schema::Time>)]
    expires_at: Option<Option<String>>,
}

impl PatchCampaign {
    fn validate(self) -> Result<CampaignPatch, InvalidValue> {
        Ok(CampaignPatch {
            disabled: self.disabled,
            expires_at: self
                .expires_at
                .map(|t| t.as_deref().map(|t| parse_time("expiresAt", t)).transpose())
                .transpose()?,
            at: now_millis(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignPatchedBody {
    campaign_id: String,
    /// The campaign's links, all of which the change applies to.
    links: u64,
}

/// Disable, enable or set the expiry of every link of the campaign in one call, whatever
/// their number: effective on every instance within a second. Against a link's own
/// `PATCH`, the later one wins (a link created after this call is its own).
#[utoipa::path(patch, path = "/v1/campaigns/{campaignId}", tag = "links",
    request_body = PatchCampaign,
    params(("campaignId" = schema::CampaignId, Path, description = "Campaign id")),
    responses(
        (status = 200, body = CampaignPatchedBody),
        (status = 422, description = "Invalid campaign id or body"),
    ))]
async fn patch_campaign(
    State(state): State<AppState>,
    Path(campaign): Path<String>,
    Json(body): Json<PatchCampaign>,
) -> Result<axum::Json<CampaignPatchedBody>, ApiError> {
    let campaign = CampaignId::parse(&campaign)?;
    let patch = body.validate()?;
    state.links.patch_campaign(&campaign, &patch).await?;
    let links = state.campaigns.totals(&campaign).await?.links;
    Ok(axum::Json(CampaignPatchedBody {
        campaign_id: campaign.as_str().to_owned(),
        links,
    }))
}
