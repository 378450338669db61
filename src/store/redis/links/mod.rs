//! Links in Redis: the hash of each link, the identity keys that make creation idempotent,
//! and the indexes lists page through (see [`super::keys`]).

mod campaign_state;
mod create;
mod list;
mod update;

use super::RedisStore;
use super::keys::{self, Partition};
use super::scripts::SCRIPTS;
use crate::domain::{
    CampaignId, CampaignPatch, CampaignState, Destination, ExternalLeadId, Link, LinkPatch,
    NewLink, Page, Phone, Position, Routing, ShortCode, from_millis,
};
use crate::store::{Created, LinkQuery, LinkStore, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};

/// Members per `ZADD` when indexing a batch: one command holds Redis for about a
/// millisecond at most.
const MEMBERS_PER_ZADD: usize = 1_000;

/// The member of a link in every index: its list position.
fn index_member(link: &Link) -> String {
    Position::of(&link.created_at, link.code.as_str()).render()
}

/// The fields of a link hash that are left out when they have no value.
const OPTIONAL_FIELDS: [&str; 7] = ["p", "x", "e", "s", "i", "a", "f"];

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
    if let Some(set_at) = link.liveness_set_at {
        fields.push(("s", set_at.timestamp_millis().to_string()));
    }
    let routing = &link.routing;
    if let Some(ios) = &routing.ios_url {
        fields.push(("i", ios.as_str().to_owned()));
    }
    if let Some(android) = &routing.android_url {
        fields.push(("a", android.as_str().to_owned()));
    }
    if routing.forward_query {
        fields.push(("f", "1".to_owned()));
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
        liveness_set_at: h.remove("s").map(millis).transpose()?,
        routing: Routing {
            ios_url: h.remove("i").as_deref().map(Destination::from_trusted),
            android_url: h.remove("a").as_deref().map(Destination::from_trusted),
            forward_query: h.remove("f").as_deref() == Some("1"),
        },
    };
    Ok(Some(StoredLink {
        link,
        unfinished: h.contains_key("unfinished"),
    }))
}

impl RedisStore {
    /// The links of `codes`, in order.
    async fn fetch_links(&self, codes: &[String]) -> Result<Vec<Option<StoredLink>>, StoreError> {
        let reads = (codes.iter())
            .map(|code| {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(keys::link(code));
                cmd
            })
            .collect();
        let hashes: Vec<HashMap<String, String>> = self.spread(reads).await?;
        codes
            .iter()
            .zip(hashes)
            .map(|(code, h)| link_from_hash(code, h))
            .collect()
    }

    /// The last step of creation: the links join their indexes, and only then (a failed
    /// index write fails the call) stop expiring.
    async fn finish_links(&self, links: &[&Link]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        self.register_campaigns(links).await?;
        // The listing and campaign indexes take many members per command (a bulk call is
        // one campaign): a command per member cost Redis more than the inserts.
        let mut writes = Vec::new();
        let mut by_index: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for link in links {
            let member = index_member(link);
            if let Some(phone) = &link.phone {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(keys::phone_index(phone)).arg(0).arg(&member);
                writes.push(zadd);
            }
            let partition = Partition::of(link.code.as_str());
            for index in [
                partition.index_all(),
                partition.campaign_index(&link.campaign_id),
            ] {
                by_index.entry(index).or_default().push(member.clone());
            }
        }
        for (index, members) in &by_index {
            for chunk in members.chunks(MEMBERS_PER_ZADD) {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(index);
                for member in chunk {
                    zadd.arg(0).arg(member);
                }
                writes.push(zadd);
            }
        }
        self.spread::<redis::Value>(writes).await?;
        let mut persist = Vec::with_capacity(links.len() * 2);
        for link in links {
            let key = keys::link(link.code.as_str());
            let (mut hdel, mut keep) = (redis::cmd("HDEL"), redis::cmd("PERSIST"));
            hdel.arg(&key).arg("unfinished");
            keep.arg(key);
            persist.extend([hdel, keep]);
        }
        self.spread::<redis::Value>(persist).await.map(drop)
    }
}

impl RedisStore {
    /// The campaigns of `links` join the list of campaigns, if new, at their earliest link.
    async fn register_campaigns(&self, links: &[&Link]) -> Result<(), StoreError> {
        let mut earliest: BTreeMap<&str, i64> = BTreeMap::new();
        for link in links {
            let at = link.created_at.timestamp_millis();
            let known = earliest.entry(link.campaign_id.as_str()).or_insert(at);
            *known = (*known).min(at);
        }
        let mut cmd = SCRIPTS
            .register_campaigns
            .call(&[keys::CAMPAIGNS_CREATED, keys::CAMPAIGNS_ORDER]);
        for (campaign, at) in earliest {
            cmd.arg(campaign).arg(at);
        }
        self.run_one(cmd).await
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

    async fn campaign_state(&self, campaign: &CampaignId) -> Result<CampaignState, StoreError> {
        campaign_state::read(self, campaign).await
    }

    async fn patch_campaign(
        &self,
        campaign: &CampaignId,
        patch: &CampaignPatch,
    ) -> Result<CampaignState, StoreError> {
        campaign_state::patch(self, campaign, patch).await
    }
}
