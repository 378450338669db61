//! The links port: creation (idempotent on the identity), reads, changes, lists.

use super::StoreError;
use crate::domain::{
    CampaignId, CampaignPatch, CampaignState, Link, LinkPatch, NewLink, Page, Phone, Position,
    ShortCode,
};
use async_trait::async_trait;

/// The outcome of one creation: the link, and whether this call created it (`201`) or
/// found it by its identity (`200`).
#[derive(Debug, Clone)]
pub struct Created {
    pub link: Link,
    pub is_new: bool,
}

/// Filter and page of a list of links.
#[derive(Debug, Clone)]
pub struct LinkQuery {
    pub campaign_id: Option<CampaignId>,
    pub phone: Option<Phone>,
    /// The list continues after this place.
    pub after: Position,
    pub limit: usize,
}

#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// Creates links, or finds the existing ones with the same identity (campaign, phone,
    /// URL), in the order given. Generated codes have `code_length` characters. A custom
    /// code held by a link of another identity fails the whole call with `CodeTaken`.
    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError>;

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError>;

    /// Applies `patch`; `None` when there is no such link.
    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError>;

    /// `false` when there was no such link.
    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError>;

    /// Oldest first, by creation time and then code.
    async fn list_links(&self, query: &LinkQuery) -> Result<Page<Link>, StoreError>;

    /// What the campaign says of all its links. Links are stored as their own `PATCH`es
    /// left them: readers let this state govern them (`CampaignState::govern`).
    async fn campaign_state(&self, campaign: &CampaignId) -> Result<CampaignState, StoreError>;

    /// Applies `patch` to the campaign's state, in one write whatever its number of links.
    async fn patch_campaign(
        &self,
        campaign: &CampaignId,
        patch: &CampaignPatch,
    ) -> Result<CampaignState, StoreError>;
}

impl Default for LinkQuery {
    /// Every link, from the start, a page of 50.
    fn default() -> Self {
        Self {
            campaign_id: None,
            phone: None,
            after: Position::start(),
            limit: 50,
        }
    }
}
