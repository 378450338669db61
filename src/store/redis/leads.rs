//! Erasing a lead in Redis: its links through the phone index, its messages through the
//! lead's message index (see [`keys`]).

use super::RedisStore;
use super::keys::{self, Partition};
use crate::domain::{MessageId, Phone, Position, ShortCode};
use crate::store::{Erasure, LeadStore, LinkStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl LeadStore for RedisStore {
    async fn erase_lead(&self, phone: &Phone) -> Result<Erasure, StoreError> {
        let index = keys::phone_index(phone);
        let mut range = redis::cmd("ZRANGE");
        range.arg(&index).arg(0).arg(-1);
        let members: Vec<String> = self.query(&range).await?;
        let mut links = Vec::with_capacity(members.len());
        for member in &members {
            let place = Position::parse(member)
                .ok_or_else(|| StoreError::Corrupt(format!("a phone index member {member:?}")))?;
            let code = ShortCode::from_trusted(&place.id);
            // The link's identity, its places in the indexes and its hash.
            if self.delete_link(&code).await? {
                links.push(code);
            }
        }
        // What the link's clicks left: its counters and its dedup window.
        let mut leftovers: Vec<redis::Cmd> = Vec::new();
        for code in &links {
            let partition = Partition::of(code.as_str());
            for key in [
                partition.link_stats(code.as_str()),
                partition.window(code.as_str()),
            ] {
                let mut del = redis::cmd("DEL");
                del.arg(key);
                leftovers.push(del);
            }
        }
        let messages_index = keys::phone_messages(phone);
        let mut members = redis::cmd("SMEMBERS");
        members.arg(&messages_index);
        let message_ids: Vec<String> = self.query(&members).await?;
        let message_dels = (message_ids.iter())
            .map(|id| {
                let id = MessageId::parse(id)
                    .map_err(|_| StoreError::Corrupt(format!("a message id {id:?}")))?;
                let mut del = redis::cmd("DEL");
                del.arg(Partition::of(id.as_str()).message(&id));
                Ok(del)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let deleted: Vec<u64> = self.spread(message_dels).await?;
        for key in [index, messages_index] {
            let mut del = redis::cmd("DEL");
            del.arg(key);
            leftovers.push(del);
        }
        self.spread::<()>(leftovers).await?;
        Ok(Erasure {
            links,
            messages: deleted.iter().sum(),
        })
    }
}
