//! Creating links in Redis: a sequence of single-key steps, so that a link's keys may live
//! on different Cluster nodes. For each new identity:
//!
//! 1. read what the identity key names (its link, or a dead code);
//! 2. claim a free code: the link hash is written only if the code is free, marked
//!    unfinished and expiring (`lua/claim_code.lua`);
//! 3. bind the identity to the code, unless another creator bound it first (then its link
//!    is the answer and our claim is dropped);
//! 4. index the link and persist it ([`RedisStore::finish_links`]).
//!
//! A crash between steps leaves at most a record that expires, or an identity naming a
//! dead code, which the next creation of it replaces; never a wrong answer.

use super::{RedisStore, keys, link_fields};
use crate::domain::rules::{self, CODE_ATTEMPTS, Creation, Holder, NoFreeCode};
use crate::domain::{Link, NewLink, ShortCode, now_millis};
use crate::store::redis::scripts::SCRIPTS;
use crate::store::{Created, StoreError};
use std::collections::HashMap;

/// How long a claimed code waits for its creation to finish.
const CLAIM_EXPIRES_MS: u64 = 60_000;

/// One identity of the call.
struct Identity {
    key: String,
    /// Its first request in the call (repeats in the same call get the same link).
    new: NewLink,
}

/// A link this call creates.
struct Fresh {
    /// Which identity of the call.
    slot: usize,
    link: Link,
    custom: bool,
    /// The dead code the identity named, which this link replaces.
    replacing: Option<ShortCode>,
}

pub(super) async fn create_links(
    store: &RedisStore,
    links: Vec<NewLink>,
    code_length: usize,
) -> Result<Vec<Created>, StoreError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let (identities, order) = identities_of(links);
    let holders = store.find_holders(&identities).await?;
    let mut results: Vec<Option<Created>> = vec![None; identities.len()];
    let mut fresh = Vec::new();
    let mut unfinished = Vec::new();
    let now = now_millis();
    for (slot, (identity, (holder, was_stopped))) in identities.into_iter().zip(holders).enumerate()
    {
        let custom = identity.new.code.clone();
        match rules::creation(holder, custom.as_ref()) {
            Creation::IdentityTaken => return Err(StoreError::IdentityTaken),
            Creation::Existing(link) => {
                if was_stopped {
                    unfinished.push(link.clone());
                }
                results[slot] = Some(Created {
                    link,
                    is_new: false,
                });
            }
            Creation::Create { replacing } => {
                let code = custom
                    .clone()
                    .unwrap_or_else(|| ShortCode::generate(code_length));
                fresh.push(Fresh {
                    slot,
                    link: identity.new.into_link(code, now),
                    custom: custom.is_some(),
                    replacing,
                });
            }
        }
    }
    // Links whose creation stopped half-way: this one finishes them.
    store
        .finish_links(&unfinished.iter().collect::<Vec<_>>())
        .await?;
    if !fresh.is_empty()
        && let Some(recovered) = store
            .create_fresh(&mut fresh, &mut results, code_length)
            .await?
    {
        return Ok(vec![recovered; order.len()]);
    }
    order
        .into_iter()
        .map(|slot| {
            results[slot]
                .clone()
                .ok_or_else(|| StoreError::Corrupt("a link of the call was not resolved".into()))
        })
        .collect()
}

/// The distinct identities of `links`, and for each link which of them it is.
fn identities_of(links: Vec<NewLink>) -> (Vec<Identity>, Vec<usize>) {
    let mut identities: Vec<Identity> = Vec::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let order = links
        .into_iter()
        .map(|new| {
            let (c, p, u) = new.identity();
            let key = keys::identity(c, p, u);
            *slot_of.entry(key.clone()).or_insert_with(|| {
                identities.push(Identity { key, new });
                identities.len() - 1
            })
        })
        .collect();
    (identities, order)
}

impl RedisStore {
    /// Step 1: what each identity names, and whether a live one's creation stopped
    /// half-way.
    async fn find_holders(
        &self,
        identities: &[Identity],
    ) -> Result<Vec<(Holder, bool)>, StoreError> {
        let reads = (identities.iter())
            .map(|identity| {
                let mut get = redis::cmd("GET");
                get.arg(&identity.key);
                get
            })
            .collect();
        let codes: Vec<Option<String>> = self.spread(reads).await?;
        let named: Vec<String> = codes.iter().flatten().cloned().collect();
        let mut found = self.fetch_links(&named).await?.into_iter();
        Ok(codes
            .into_iter()
            .map(|code| match code {
                None => (Holder::Free, false),
                Some(code) => match found.next().flatten() {
                    Some(stored) => (Holder::Live(stored.link), stored.unfinished),
                    None => (Holder::Dead(ShortCode::from_trusted(&code)), false),
                },
            })
            .collect())
    }

    /// Steps 2 to 4 for the links this call creates. Answers `Some` when a custom code
    /// turned out to hold the very link asked for (see [`RedisStore::recover_custom`]).
    async fn create_fresh(
        &self,
        fresh: &mut [Fresh],
        results: &mut [Option<Created>],
        code_length: usize,
    ) -> Result<Option<Created>, StoreError> {
        match self.claim_codes(fresh, code_length).await {
            Err(StoreError::CodeTaken) => return self.recover_custom(&fresh[0]).await.map(Some),
            other => other?,
        }
        let bound = self.bind_identities(fresh).await?;
        let mut won = Vec::new();
        let mut lost = Vec::new();
        for (f, winner) in fresh.iter().zip(bound) {
            match winner {
                None => {
                    results[f.slot] = Some(Created {
                        link: f.link.clone(),
                        is_new: true,
                    });
                    won.push(&f.link);
                }
                Some(winner) => lost.push((f, winner)),
            }
        }
        self.finish_links(&won).await?;
        if !lost.is_empty() {
            self.answer_lost_races(&lost, results).await?;
        }
        Ok(None)
    }

    /// Step 2: claims codes, drawing new ones after collisions. A taken custom code is
    /// `CodeTaken` for the call.
    async fn claim_codes(&self, fresh: &mut [Fresh], code_length: usize) -> Result<(), StoreError> {
        let mut pending: Vec<usize> = (0..fresh.len()).collect();
        for _ in 0..CODE_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            let mut claims = Vec::with_capacity(pending.len());
            for &i in &pending {
                let mut cmd = SCRIPTS
                    .claim_code
                    .call(&[&keys::link(fresh[i].link.code.as_str())]);
                cmd.arg(CLAIM_EXPIRES_MS);
                for (field, value) in link_fields(&fresh[i].link) {
                    cmd.arg(field).arg(value);
                }
                claims.push(cmd);
            }
            let claimed: Vec<bool> = self.run_spread(claims).await?;
            let mut retry = Vec::new();
            for (&i, ok) in pending.iter().zip(claimed) {
                if ok {
                    continue;
                }
                if fresh[i].custom {
                    return Err(StoreError::CodeTaken);
                }
                fresh[i].link.code = ShortCode::generate(code_length);
                retry.push(i);
            }
            pending = retry;
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::unavailable(NoFreeCode))
        }
    }

    /// Step 3: per link, `None` when its identity is now bound to it, or the code another
    /// creator bound it to first.
    async fn bind_identities(&self, fresh: &[Fresh]) -> Result<Vec<Option<String>>, StoreError> {
        let mut binds = Vec::with_capacity(fresh.len());
        for f in fresh {
            let (c, p, u) = f.link.identity();
            let key = keys::identity(c, p, u);
            match &f.replacing {
                // Natively (no script call): set unless set, and answer what was there. A
                // second run (after NOSCRIPT) finds our own code, the same answer.
                None => {
                    let mut set = redis::cmd("SET");
                    set.arg(key).arg(f.link.code.as_str()).arg("NX").arg("GET");
                    binds.push(set);
                }
                Some(dead) => {
                    let mut cmd = SCRIPTS.bind_identity.call(&[&key]);
                    cmd.arg(f.link.code.as_str()).arg(dead.as_str());
                    binds.push(cmd);
                }
            }
        }
        let bound: Vec<Option<String>> = self.run_spread(binds).await?;
        Ok(fresh
            .iter()
            .zip(bound)
            .map(|(f, winner)| winner.filter(|w| w != f.link.code.as_str()))
            .collect())
    }

    /// Another creator bound these identities first: drop our claims and answer with its
    /// links.
    async fn answer_lost_races(
        &self,
        lost: &[(&Fresh, String)],
        results: &mut [Option<Created>],
    ) -> Result<(), StoreError> {
        let drops = (lost.iter())
            .map(|(f, _)| {
                let mut del = redis::cmd("DEL");
                del.arg(keys::link(f.link.code.as_str()));
                del
            })
            .collect();
        self.spread::<redis::Value>(drops).await?;
        let codes: Vec<String> = lost.iter().map(|(_, winner)| winner.clone()).collect();
        let winners = self.fetch_links(&codes).await?;
        for ((f, _), winner) in lost.iter().zip(winners) {
            let stored = winner.ok_or_else(|| {
                StoreError::unavailable(std::io::Error::other(
                    "a concurrent creation did not finish; retry",
                ))
            })?;
            results[f.slot] = Some(Created {
                link: stored.link,
                is_new: false,
            });
        }
        Ok(())
    }

    /// A custom code that is taken may hold a link of this very identity whose identity
    /// key a crash never wrote: that is the link asked for, not a conflict. (Custom codes
    /// come one link at a time.)
    async fn recover_custom(&self, wanted: &Fresh) -> Result<Created, StoreError> {
        use crate::store::LinkStore;
        match self.get_link(&wanted.link.code).await? {
            Some(link) if link.identity() == wanted.link.identity() => {
                let (c, p, u) = link.identity();
                let mut cmd = SCRIPTS.bind_identity.call(&[&keys::identity(c, p, u)]);
                cmd.arg(link.code.as_str())
                    .arg(wanted.replacing.as_ref().map_or("", ShortCode::as_str));
                self.run_one::<String>(cmd).await?;
                self.finish_links(&[&link]).await?;
                Ok(Created {
                    link,
                    is_new: false,
                })
            }
            _ => Err(StoreError::CodeTaken),
        }
    }
}
