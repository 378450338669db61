//! Changing and deleting links in Redis.

use super::{OPTIONAL_FIELDS, RedisStore, index_member, link_fields};
use crate::domain::{Link, LinkPatch, ShortCode};
use crate::store::redis::keys::{self, Partition};
use crate::store::redis::scripts::SCRIPTS;
use crate::store::{LinkStore, StoreError};

pub(super) async fn update_link(
    store: &RedisStore,
    code: &ShortCode,
    patch: &LinkPatch,
) -> Result<Option<Link>, StoreError> {
    let Some(before) = store.get_link(code).await? else {
        return Ok(None);
    };
    let mut after = before.clone();
    patch.apply(&mut after);
    let moves_identity = after.url != before.url;
    if moves_identity {
        store.take_identity(code, &after).await?;
    }
    let fields = link_fields(&after);
    let removed: Vec<&str> = (OPTIONAL_FIELDS.iter().copied())
        .filter(|name| !fields.iter().any(|(field, _)| field == name))
        .collect();
    let mut cmd = SCRIPTS.patch_link.call(&[&keys::link(code.as_str())]);
    cmd.arg(removed.len()).arg(&removed);
    for (field, value) in &fields {
        cmd.arg(*field).arg(value);
    }
    let existed: bool = store.run_one(cmd).await?;
    if moves_identity {
        // Release the identity this link no longer has (or, if it vanished meanwhile,
        // the one just bound).
        let (c, p, u) = if existed {
            before.identity()
        } else {
            after.identity()
        };
        let mut cmd = SCRIPTS.unbind_identity.call(&[&keys::identity(c, p, u)]);
        cmd.arg(code.as_str());
        store.run_one::<()>(cmd).await?;
    }
    Ok(existed.then_some(after))
}

impl RedisStore {
    /// Binds the identity `after` will have to `code`, unless a live link of another code
    /// has it (`IdentityTaken`).
    async fn take_identity(&self, code: &ShortCode, after: &Link) -> Result<(), StoreError> {
        let (c, p, u) = after.identity();
        let key = keys::identity(c, p, u);
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let holder: Option<String> = self.query(&get).await?;
        let dead = match holder {
            Some(h) if h != code.as_str() => {
                if self.get_link(&ShortCode::from_trusted(&h)).await?.is_some() {
                    return Err(StoreError::IdentityTaken);
                }
                h
            }
            _ => String::new(),
        };
        let mut bind = SCRIPTS.bind_identity.call(&[&key]);
        bind.arg(code.as_str()).arg(&dead);
        let winner: String = self.run_one(bind).await?;
        if winner != code.as_str() {
            return Err(StoreError::IdentityTaken);
        }
        Ok(())
    }
}

pub(super) async fn delete_link(store: &RedisStore, code: &ShortCode) -> Result<bool, StoreError> {
    let Some(link) = store.get_link(code).await? else {
        return Ok(false);
    };
    let (c, p, u) = link.identity();
    let member = index_member(&link);
    let partition = Partition::of(code.as_str());
    let mut unbind = SCRIPTS.unbind_identity.call(&[&keys::identity(c, p, u)]);
    unbind.arg(code.as_str());
    let mut cmds = vec![unbind];
    let mut indexes = vec![
        partition.index_all(),
        partition.campaign_index(&link.campaign_id),
    ];
    indexes.extend(link.phone.as_ref().map(keys::phone_index));
    for index in indexes {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(index).arg(&member);
        cmds.push(zrem);
    }
    let mut del = redis::cmd("DEL");
    del.arg(keys::link(code.as_str()));
    cmds.push(del);
    let replies: Vec<redis::Value> = store.run_spread(cmds).await?;
    let deleted: u32 = (replies.last())
        .map(redis::from_redis_value_ref)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("DEL answered {e}")))?
        .unwrap_or(0);
    Ok(deleted > 0)
}
