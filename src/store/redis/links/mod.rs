//! Links in Redis: the hash of each link, the identity keys that make creation idempotent,
//! and the indexes lists page through (see [`super::keys`]).

mod create;
mod list;
mod update;

use super::{RedisStore, keys};
use crate::domain::{
    CampaignId, Destination, ExternalLeadId, Link, LinkPatch, NewLink, Page, Phone, Position,
    ShortCode, from_millis,
};
use crate::store::{Created, LinkQuery, LinkStore, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;

/// Members per `ZADD` when indexing a batch: one command holds Redis for about a
/// millisecond at most.
const MEMBERS_PER_ZADD: usize = 1_000;

/// The member of a link in every index: its list position.
fn index_member(link: &Link) -> String {
    Position::of(&link.created_at, link.code.as_str()).render()
}

fn link_fields(link: &Link) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("u", link.url.as_str().to_owned()),
        ("c", link.campaign_id.as_str().to_owned()),
        ("t", link.created_at.timestamp_millis().to_string()),
        ("d", u8::from(link.disabled).to_string()),
    ];
    if let Some(phone) = &link.phone {
        fields.push(("p", phone.as_str().to_owned()));
    }
    if let Some(lead) = &link.external_lead_id {
        fields.push(("x", lead.as_str().to_owned()));
    }
    if let Some(expires) = link.expires_at {
        fields.push(("e", expires.timestamp_millis().to_string()));
    }
    fields
}

/// A link hash as read back: `None` when there is none.
struct StoredLink {
    link: Link,
    /// Its creation has not finished (see `lua/claim_code.lua`).
    unfinished: bool,
}

fn link_from_hash(
    code: &str,
    mut h: HashMap<String, String>,
) -> Result<Option<StoredLink>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("link {code}: {what}"));
    let millis = |s: String| {
        s.parse::<i64>()
            .map(from_millis)
            .map_err(|_| corrupt("time"))
    };
    let link = Link {
        code: ShortCode::from_trusted(code),
        url: Destination::from_trusted(&h.remove("u").ok_or_else(|| corrupt("no url"))?),
        campaign_id: CampaignId::from_trusted(h.remove("c").ok_or_else(|| corrupt("no campaign"))?),
        phone: h.remove("p").map(Phone::from_trusted),
        external_lead_id: h.remove("x").map(ExternalLeadId::from_trusted),
        created_at: millis(h.remove("t").ok_or_else(|| corrupt("no created time"))?)?,
        expires_at: h.remove("e").map(millis).transpose()?,
        disabled: h.remove("d").as_deref() == Some("1"),
    };
    Ok(Some(StoredLink {
        link,
        unfinished: h.contains_key("unfinished"),
    }))
}

impl RedisStore {
    /// The links of `codes`, in order.
    async fn fetch_links(&self, codes: &[String]) -> Result<Vec<Option<StoredLink>>, StoreError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for code in codes {
            pipe.hgetall(keys::link(code));
        }
        let hashes: Vec<HashMap<String, String>> = self.query_pipe(&pipe).await?;
        codes
            .iter()
            .zip(hashes)
            .map(|(code, h)| link_from_hash(code, h))
            .collect()
    }

    /// The last step of creation: the links join their indexes, and only then (a pipeline
    /// runs every command, failed or not) stop expiring.
    async fn finish_links(&self, links: &[&Link]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        // The listing index and each campaign's take many members per command (a bulk
        // call is one campaign): a command per member cost Redis more than the inserts.
        let members: Vec<String> = links.iter().map(|link| index_member(link)).collect();
        let mut by_campaign: HashMap<&CampaignId, Vec<&str>> = HashMap::new();
        let mut pipe = redis::pipe();
        for (link, member) in links.iter().zip(&members) {
            if let Some(phone) = &link.phone {
                pipe.zadd(keys::phone_index(phone), member, 0).ignore();
            }
            by_campaign
                .entry(&link.campaign_id)
                .or_default()
                .push(member);
        }
        let all = (
            keys::INDEX_ALL.to_owned(),
            members.iter().map(String::as_str).collect(),
        );
        let indexes = (by_campaign.into_iter())
            .map(|(campaign, members)| (keys::campaign_index(campaign), members))
            .chain([all]);
        for (index, members) in indexes {
            for chunk in members.chunks(MEMBERS_PER_ZADD) {
                let scored: Vec<(u8, &str)> = chunk.iter().map(|m| (0, *m)).collect();
                pipe.zadd_multiple(&index, &scored).ignore();
            }
        }
        self.query_pipe::<()>(&pipe).await?;
        let mut persist = redis::pipe();
        for link in links {
            let key = keys::link(link.code.as_str());
            persist.hdel(&key, "unfinished").ignore();
            persist.persist(key).ignore();
        }
        self.query_pipe(&persist).await
    }
}

#[async_trait]
impl LinkStore for RedisStore {
    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError> {
        create::create_links(self, links, code_length).await
    }

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(keys::link(code.as_str()));
        let hash: HashMap<String, String> = self.query(&cmd).await?;
        Ok(link_from_hash(code.as_str(), hash)?.map(|stored| stored.link))
    }

    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        update::update_link(self, code, patch).await
    }

    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError> {
        update::delete_link(self, code).await
    }

    async fn list_links(&self, query: &LinkQuery) -> Result<Page<Link>, StoreError> {
        list::list_links(self, query).await
    }
}
