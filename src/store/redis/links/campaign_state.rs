//! A campaign's settings for all its links, in one hash (see [`keys::campaign_state`]).

use super::RedisStore;
use crate::domain::{CampaignId, CampaignPatch, CampaignState, Setting, from_millis};
use crate::store::StoreError;
use crate::store::redis::keys;
use std::collections::HashMap;

pub(super) async fn read(
    store: &RedisStore,
    campaign: &CampaignId,
) -> Result<CampaignState, StoreError> {
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(keys::campaign_state(campaign));
    let hash: HashMap<String, String> = store.query(&cmd).await?;
    from_hash(campaign, &hash)
}

pub(super) async fn patch(
    store: &RedisStore,
    campaign: &CampaignId,
    patch: &CampaignPatch,
) -> Result<CampaignState, StoreError> {
    let at = patch.at.timestamp_millis();
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(disabled) = patch.disabled {
        fields.extend([
            ("d", u8::from(disabled).to_string()),
            ("da", at.to_string()),
        ]);
    }
    if let Some(expires) = patch.expires_at {
        let expires = expires.map_or(String::new(), |t| t.timestamp_millis().to_string());
        fields.extend([("e", expires), ("ea", at.to_string())]);
    }
    if !fields.is_empty() {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(keys::campaign_state(campaign));
        for (field, value) in &fields {
            cmd.arg(*field).arg(value);
        }
        store.query::<()>(&cmd).await?;
    }
    read(store, campaign).await
}

fn from_hash(
    campaign: &CampaignId,
    h: &HashMap<String, String>,
) -> Result<CampaignState, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("campaign {}: state", campaign.as_str()));
    let millis = |field: &str| -> Result<Option<i64>, StoreError> {
        match h.get(field).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| corrupt()),
        }
    };
    let set_at = |field: &str| millis(field).map(|at| at.map(from_millis));
    Ok(CampaignState {
        disabled: set_at("da")?.map(|at| Setting {
            value: h.get("d").is_some_and(|d| d == "1"),
            at,
        }),
        expires_at: match set_at("ea")? {
            Some(at) => Some(Setting {
                value: millis("e")?.map(from_millis),
                at,
            }),
            None => None,
        },
    })
}
