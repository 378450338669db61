//! Links in Redis: see the key layout in the parent module.

use super::super::{
    ChangeListener, Created, LinkChange, LinkPage, LinkQuery, LinkStore, Position, StoreError,
};
use super::{LuaScript, RedisStore, eval};
use crate::domain::{
    CampaignId, Destination, ExternalLeadId, Link, LinkPatch, NewLink, Phone, ShortCode,
    from_millis, now_millis,
};
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub(super) const CHANGES_CHANNEL: &str = "akti:link-changes";
/// How often the change feed confirms that it is caught up: well inside the one second in
/// which a change must reach every instance.
const FEED_PING_EVERY: Duration = Duration::from_millis(200);
/// A feed that does not answer its PING within this is treated as lost and reconnected.
const FEED_PING_TIMEOUT: Duration = Duration::from_secs(2);
pub(super) const INDEX_ALL: &str = "akti:index:all";
const CODE_ATTEMPTS: usize = 10;

fn feed_timeout() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the change feed did not answer its PING",
    ))
}

/// Writes the link hash only if the code is free, marked `unfinished` and to expire unless
/// creation finishes (binds the identity, indexes the link and persists it): a crash or
/// failure in between leaves no unreachable record behind. A later creation of the same
/// identity that finds the link unfinished finishes it. KEYS[1] link; ARGV[1] expiry (ms), then
/// field/value pairs.
const CLAIM_CODE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'unfinished', 1, unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1";

/// How long a claimed code waits for its creation to finish.
const CLAIM_EXPIRES_MS: u64 = 60_000;

/// Points an identity at a code if it is unset or names a dead link; answers the code the
/// identity names afterwards. KEYS[1] identity; ARGV[1] our code, ARGV[2] the dead code.
const BIND_IDENTITY: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current";

/// Members per `ZADD` when indexing a batch: one command holds Redis for about a
/// millisecond at most.
const MEMBERS_PER_ZADD: usize = 1_000;

/// The two scripts of bulk creation, called by SHA.
static CLAIMING: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(CLAIM_CODE.to_owned()));
static BINDING: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(BIND_IDENTITY.to_owned()));

/// Deletes an identity only if it still names this code. KEYS[1] identity; ARGV[1] code.
const UNBIND_IDENTITY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

/// Updates an existing link hash. KEYS[1] link; ARGV[1] '1' to clear the expiry, then
/// field/value pairs.
const PATCH_LINK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then redis.call('HDEL', KEYS[1], 'e') end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1";

fn link_key(code: &str) -> String {
    format!("akti:link:{{{code}}}")
}

fn identity_key(campaign: &CampaignId, phone: Option<&Phone>, url: &Destination) -> String {
    let mut hash = Sha256::new();
    hash.update(phone.map_or("", Phone::as_str));
    hash.update([0]);
    hash.update(url.as_str());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = format!("akti:identity:{{{}}}:", campaign.as_str());
    key.reserve(64);
    for b in hash.finalize() {
        key.push(HEX[usize::from(b >> 4)] as char);
        key.push(HEX[usize::from(b & 15)] as char);
    }
    key
}

pub(super) fn campaign_index(campaign: &CampaignId) -> String {
    format!("akti:index:campaign:{{{}}}", campaign.as_str())
}

fn phone_index(phone: &Phone) -> String {
    format!("akti:index:phone:{{{}}}", phone.as_str())
}

/// The sorted-set member of a link in every index: its list position.
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

fn link_from_hash(code: &str, mut h: HashMap<String, String>) -> Result<Option<Link>, StoreError> {
    if h.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("link {code}: {what}"));
    let millis = |s: String| {
        s.parse::<i64>()
            .map(from_millis)
            .map_err(|_| corrupt("time"))
    };
    Ok(Some(Link {
        code: ShortCode::from_trusted(code),
        url: Destination::from_trusted(&h.remove("u").ok_or_else(|| corrupt("no url"))?),
        campaign_id: CampaignId::from_trusted(h.remove("c").ok_or_else(|| corrupt("no campaign"))?),
        phone: h.remove("p").map(Phone::from_trusted),
        external_lead_id: h.remove("x").map(ExternalLeadId::from_trusted),
        created_at: millis(h.remove("t").ok_or_else(|| corrupt("no created time"))?)?,
        expires_at: h.remove("e").map(millis).transpose()?,
        disabled: h.remove("d").as_deref() == Some("1"),
    }))
}

/// What an identity names when a creation looks it up.
enum Holder {
    Free,
    /// A link; `unfinished` when its creation stopped before persisting it.
    Live {
        link: Link,
        unfinished: bool,
    },
    /// A code whose link is gone (deleted, or expired unfinished).
    Dead(String),
}

impl RedisStore {
    async fn fetch_hashes(
        &self,
        codes: &[String],
    ) -> Result<Vec<HashMap<String, String>>, StoreError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for code in codes {
            pipe.hgetall(link_key(code));
        }
        pipe.query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)
    }

    async fn fetch_links(&self, codes: &[String]) -> Result<Vec<Option<Link>>, StoreError> {
        let hashes = self.fetch_hashes(codes).await?;
        codes
            .iter()
            .zip(hashes)
            .map(|(code, h)| link_from_hash(code, h))
            .collect()
    }

    /// Step 1 of creation: what each identity names now.
    async fn find_identities(&self, keys: &[String]) -> Result<Vec<Holder>, StoreError> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.get(key);
        }
        let codes: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        let named: Vec<String> = codes.iter().flatten().cloned().collect();
        let mut found = named.iter().zip(self.fetch_hashes(&named).await?);
        codes
            .into_iter()
            .map(|code| {
                let Some(code) = code else {
                    return Ok(Holder::Free);
                };
                let (_, hash) = found
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("short reply".into()))?;
                let unfinished = hash.contains_key("unfinished");
                Ok(match link_from_hash(&code, hash)? {
                    Some(link) => Holder::Live { link, unfinished },
                    None => Holder::Dead(code),
                })
            })
            .collect()
    }

    /// Step 2: claims codes for `links`, drawing new codes after collisions. Answers, per
    /// link, whether the claim held; a taken custom code is `CodeTaken` for the call.
    async fn claim_codes(
        &self,
        links: &mut [Link],
        custom: &[bool],
        code_length: usize,
    ) -> Result<(), StoreError> {
        let mut pending: Vec<usize> = (0..links.len()).collect();
        for _ in 0..CODE_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for &i in &pending {
                let mut cmd = CLAIMING.call(&link_key(links[i].code.as_str()));
                cmd.arg(CLAIM_EXPIRES_MS);
                for (field, value) in link_fields(&links[i]) {
                    cmd.arg(field).arg(value);
                }
                pipe.add_command(cmd);
            }
            let claimed: Vec<bool> = self.query_scripted(&CLAIMING, &pipe).await?;
            let mut retry = Vec::new();
            for (&i, ok) in pending.iter().zip(claimed) {
                if ok {
                    continue;
                }
                if custom[i] {
                    return Err(StoreError::CodeTaken);
                }
                links[i].code = ShortCode::generate(code_length);
                retry.push(i);
            }
            pending = retry;
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::unavailable(std::io::Error::other(
                "no free code found; raise AKTI_CODE_LENGTH",
            )))
        }
    }

    /// The last step of creation: the links join their indexes and stop expiring.
    async fn add_to_indexes(&self, links: &[&Link]) -> Result<(), StoreError> {
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
                pipe.zadd(phone_index(phone), member, 0).ignore();
            }
            by_campaign
                .entry(&link.campaign_id)
                .or_default()
                .push(member);
        }
        let all = (
            INDEX_ALL.to_owned(),
            members.iter().map(String::as_str).collect(),
        );
        let indexes = (by_campaign.into_iter())
            .map(|(campaign, members)| (campaign_index(campaign), members))
            .chain([all]);
        for (index, members) in indexes {
            for chunk in members.chunks(MEMBERS_PER_ZADD) {
                let scored: Vec<(u8, &str)> = chunk.iter().map(|m| (0, *m)).collect();
                pipe.zadd_multiple(&index, &scored).ignore();
            }
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        // Only once every index holds them (a pipeline runs every command, failed or not).
        let mut finish = redis::pipe();
        for link in links {
            let key = link_key(link.code.as_str());
            finish.hdel(&key, "unfinished").ignore();
            finish.persist(key).ignore();
        }
        finish
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)
    }
}

#[async_trait]
impl LinkStore for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await
            .map(drop)
            .map_err(StoreError::unavailable)
    }

    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        // The same identity twice in one call is one link: resolve each identity once.
        let mut identities: Vec<String> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut firsts: Vec<NewLink> = Vec::new();
        let order: Vec<usize> = links
            .into_iter()
            .map(|new| {
                let (c, p, u) = new.identity();
                let key = identity_key(c, p, u);
                *slot_of.entry(key.clone()).or_insert_with(|| {
                    identities.push(key);
                    firsts.push(new);
                    identities.len() - 1
                })
            })
            .collect();

        let found = self.find_identities(&identities).await?;
        let mut results: Vec<Option<Created>> = vec![None; identities.len()];
        let mut fresh: Vec<(usize, Link, bool, Option<String>)> = Vec::new();
        let mut unfinished: Vec<Link> = Vec::new();
        let now = now_millis();
        for (slot, (new, holder)) in firsts.into_iter().zip(found).enumerate() {
            let dead = match holder {
                Holder::Live {
                    link,
                    unfinished: was_stopped,
                } => {
                    if new.code.as_ref().is_some_and(|c| *c != link.code) {
                        return Err(StoreError::IdentityTaken);
                    }
                    if was_stopped {
                        unfinished.push(link.clone());
                    }
                    results[slot] = Some(Created {
                        link,
                        is_new: false,
                    });
                    continue;
                }
                Holder::Free => None,
                Holder::Dead(code) => Some(code),
            };
            let custom = new.code.is_some();
            let code = new
                .code
                .clone()
                .unwrap_or_else(|| ShortCode::generate(code_length));
            fresh.push((slot, new.into_link(code, now), custom, dead));
        }
        // Links whose creation stopped half-way: this one finishes them.
        self.add_to_indexes(&unfinished.iter().collect::<Vec<_>>())
            .await?;

        if !fresh.is_empty() {
            let mut claimed: Vec<Link> = fresh.iter().map(|f| f.1.clone()).collect();
            let custom: Vec<bool> = fresh.iter().map(|f| f.2).collect();
            match self.claim_codes(&mut claimed, &custom, code_length).await {
                Err(StoreError::CodeTaken) => {
                    // Custom codes come one link at a time. The code may hold a link of
                    // this very identity whose identity key a crash never wrote: that is
                    // the link asked for, not a conflict.
                    let wanted = &fresh[0].1;
                    return match self.get_link(&wanted.code).await? {
                        Some(link) if link.identity() == wanted.identity() => {
                            let (c, p, u) = link.identity();
                            eval(BIND_IDENTITY, &identity_key(c, p, u))
                                .arg(link.code.as_str())
                                .arg(fresh[0].3.as_deref().unwrap_or(""))
                                .query_async::<String>(&mut self.conn())
                                .await
                                .map_err(StoreError::unavailable)?;
                            self.add_to_indexes(&[&link]).await?;
                            Ok(vec![
                                Created {
                                    link,
                                    is_new: false
                                };
                                order.len()
                            ])
                        }
                        _ => Err(StoreError::CodeTaken),
                    };
                }
                other => other?,
            }
            let mut pipe = redis::pipe();
            for ((_, _, _, dead), link) in fresh.iter().zip(&claimed) {
                let (c, p, u) = link.identity();
                let key = identity_key(c, p, u);
                match dead {
                    // The common case, natively (no script call): set unless set, and
                    // answer what was there. Safe to repeat after `NOSCRIPT`: a second
                    // run finds our own code.
                    None => {
                        pipe.cmd("SET")
                            .arg(key)
                            .arg(link.code.as_str())
                            .arg("NX")
                            .arg("GET");
                    }
                    Some(dead) => {
                        let mut cmd = BINDING.call(&key);
                        cmd.arg(link.code.as_str()).arg(dead);
                        pipe.add_command(cmd);
                    }
                }
            }
            // Per link, the code its identity names now (`None`: it was free, now ours).
            let bound: Vec<Option<String>> = self.query_scripted(&BINDING, &pipe).await?;
            let mut lost_races: Vec<(usize, String)> = Vec::new();
            let mut won: Vec<&Link> = Vec::new();
            for (((slot, ..), link), winner) in fresh.iter().zip(&claimed).zip(bound) {
                let winner = winner.unwrap_or_else(|| link.code.as_str().to_owned());
                if winner == link.code.as_str() {
                    results[*slot] = Some(Created {
                        link: link.clone(),
                        is_new: true,
                    });
                    won.push(link);
                } else {
                    lost_races.push((*slot, winner));
                }
            }
            self.add_to_indexes(&won).await?;
            if !lost_races.is_empty() {
                // Another creator bound these identities first: drop our claims and answer
                // with its links.
                let mut pipe = redis::pipe();
                for ((slot, ..), link) in fresh.iter().zip(&claimed) {
                    if lost_races.iter().any(|(s, _)| s == slot) {
                        pipe.del(link_key(link.code.as_str())).ignore();
                    }
                }
                pipe.query_async::<()>(&mut self.conn())
                    .await
                    .map_err(StoreError::unavailable)?;
                let codes: Vec<String> = lost_races.iter().map(|(_, c)| c.clone()).collect();
                let winners = self.fetch_links(&codes).await?;
                for ((slot, _), link) in lost_races.into_iter().zip(winners) {
                    let link = link.ok_or_else(|| {
                        StoreError::unavailable(std::io::Error::other(
                            "a concurrent creation did not finish; retry",
                        ))
                    })?;
                    results[slot] = Some(Created {
                        link,
                        is_new: false,
                    });
                }
            }
        }

        order
            .into_iter()
            .map(|slot| {
                results[slot]
                    .clone()
                    .ok_or_else(|| StoreError::Corrupt("unresolved link".into()))
            })
            .collect()
    }

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(link_key(code.as_str()))
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        link_from_hash(code.as_str(), hash)
    }

    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        let Some(before) = self.get_link(code).await? else {
            return Ok(None);
        };
        let mut after = before.clone();
        patch.apply(&mut after);
        let moves_identity = after.url != before.url;
        if moves_identity {
            let (c, p, u) = after.identity();
            let key = identity_key(c, p, u);
            let holder: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.conn())
                .await
                .map_err(StoreError::unavailable)?;
            let dead = match holder {
                Some(h) if h != code.as_str() => {
                    if self.get_link(&ShortCode::from_trusted(&h)).await?.is_some() {
                        return Err(StoreError::IdentityTaken);
                    }
                    h
                }
                _ => String::new(),
            };
            let winner: String = eval(BIND_IDENTITY, &key)
                .arg(code.as_str())
                .arg(&dead)
                .query_async(&mut self.conn())
                .await
                .map_err(StoreError::unavailable)?;
            if winner != code.as_str() {
                return Err(StoreError::IdentityTaken);
            }
        }
        let mut cmd = eval(PATCH_LINK, &link_key(code.as_str()));
        cmd.arg(if after.expires_at.is_none() { "1" } else { "0" });
        cmd.arg("u").arg(after.url.as_str());
        cmd.arg("d").arg(u8::from(after.disabled));
        if let Some(expires) = after.expires_at {
            cmd.arg("e").arg(expires.timestamp_millis());
        }
        let existed: bool = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        let (c, p, u) = if existed {
            before.identity()
        } else {
            after.identity()
        };
        if moves_identity {
            // Release the identity this link no longer has (or, if it vanished meanwhile,
            // the one we just bound).
            eval(UNBIND_IDENTITY, &identity_key(c, p, u))
                .arg(code.as_str())
                .query_async::<()>(&mut self.conn())
                .await
                .map_err(StoreError::unavailable)?;
        }
        Ok(existed.then_some(after))
    }

    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError> {
        let Some(link) = self.get_link(code).await? else {
            return Ok(false);
        };
        let (c, p, u) = link.identity();
        let member = index_member(&link);
        let mut pipe = redis::pipe();
        pipe.add_command({
            let mut cmd = eval(UNBIND_IDENTITY, &identity_key(c, p, u));
            cmd.arg(code.as_str());
            cmd
        })
        .ignore();
        pipe.zrem(INDEX_ALL, &member).ignore();
        pipe.zrem(campaign_index(&link.campaign_id), &member)
            .ignore();
        if let Some(phone) = &link.phone {
            pipe.zrem(phone_index(phone), &member).ignore();
        }
        pipe.del(link_key(code.as_str()));
        let (deleted,): (u32,) = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)?;
        Ok(deleted > 0)
    }

    async fn list_links(&self, query: &LinkQuery) -> Result<LinkPage, StoreError> {
        let mut from = match &query.cursor {
            Some(c) => format!("({}", Position::parse(c)?.render()),
            None => "-".to_owned(),
        };
        let index = match (&query.phone, &query.campaign_id) {
            (Some(phone), _) => phone_index(phone),
            (None, Some(campaign)) => campaign_index(campaign),
            (None, None) => INDEX_ALL.to_owned(),
        };
        // Read one more than asked, to know whether there is a next page. With a phone
        // and a campaign, the phone index is filtered by campaign, page after page.
        let want = query.limit + 1;
        let mut found: Vec<(String, Link)> = Vec::with_capacity(want);
        loop {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(&from)
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(&mut self.conn())
                .await
                .map_err(StoreError::unavailable)?;
            let codes: Vec<String> = members
                .iter()
                .map(|m| Position::parse(m).map_or_else(|_| String::new(), |p| p.id))
                .collect();
            let links = self.fetch_links(&codes).await?;
            for (member, link) in members.iter().zip(links) {
                let Some(link) = link else { continue };
                let in_campaign =
                    (query.campaign_id.as_ref()).is_none_or(|c| *c == link.campaign_id);
                if in_campaign && found.len() < want {
                    found.push((member.clone(), link));
                }
            }
            match members.last() {
                Some(last) if members.len() == want && found.len() < want => {
                    from = format!("({last}");
                }
                _ => break,
            }
        }
        let next_cursor = (found.len() > query.limit).then(|| {
            found.truncate(query.limit);
            found.last().map(|(m, _)| m.clone()).unwrap_or_default()
        });
        Ok(LinkPage {
            links: found.into_iter().map(|(_, l)| l).collect(),
            next_cursor,
        })
    }

    async fn announce_change(&self, code: &ShortCode) -> Result<(), StoreError> {
        redis::cmd("PUBLISH")
            .arg(CHANGES_CHANNEL)
            .arg(code.as_str())
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(StoreError::unavailable)
    }

    fn shares_changes(&self) -> bool {
        true
    }

    fn watch_changes(&self, listener: ChangeListener, shutdown: CancellationToken) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let session = async {
                    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
                    sink.subscribe(CHANGES_CHANNEL).await?;
                    // Whatever changed while we were not subscribed is unknown: start over.
                    listener(LinkChange::All).await;
                    let changed = |msg: redis::Msg| {
                        let code = msg.get_payload::<String>().ok()?;
                        Some(LinkChange::One(ShortCode::from_trusted(&code)))
                    };
                    let mut ping = tokio::time::interval(FEED_PING_EVERY);
                    loop {
                        tokio::select! {
                            msg = messages.next() => {
                                let Some(msg) = msg else { break };
                                if let Some(change) = changed(msg) {
                                    listener(change).await;
                                }
                            }
                            _ = ping.tick() => {
                                // Redis answers the PING after sending every message
                                // published before it, on this same connection.
                                let sent = Instant::now();
                                tokio::time::timeout(FEED_PING_TIMEOUT, sink.ping::<()>())
                                    .await
                                    .map_err(|_| feed_timeout())??;
                                // Those messages are in the stream by now: apply them first.
                                while let Some(Some(msg)) = messages.next().now_or_never() {
                                    if let Some(change) = changed(msg) {
                                        listener(change).await;
                                    }
                                }
                                listener(LinkChange::CaughtUp(sent)).await;
                            }
                        }
                    }
                    Ok::<(), redis::RedisError>(())
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = session => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "link change feed lost; reconnecting");
                        } else {
                            backoff = Duration::from_millis(100);
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
    }
}
