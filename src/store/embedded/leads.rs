//! Erasing a lead in SQLite: one transaction over its links, their counters and windows,
//! and its messages with their statuses.

use super::{EmbeddedStore, sqlite};
use crate::domain::{Phone, ShortCode};
use crate::store::{Erasure, LeadStore, StoreError};
use async_trait::async_trait;
use rusqlite::Connection;

fn erase(conn: &Connection, phone: &str) -> rusqlite::Result<Erasure> {
    let codes: Vec<String> = conn
        .prepare_cached("SELECT code FROM links WHERE phone = ?1")?
        .query_map([phone], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for code in &codes {
        for table in ["link_stats", "windows"] {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE code = ?1"))?
                .execute([code])?;
        }
    }
    conn.prepare_cached("DELETE FROM links WHERE phone = ?1")?
        .execute([phone])?;
    conn.prepare_cached(
        "DELETE FROM message_statuses WHERE message_id IN \
         (SELECT id FROM messages WHERE phone = ?1)",
    )?
    .execute([phone])?;
    let messages =
        (conn.prepare_cached("DELETE FROM messages WHERE phone = ?1")?).execute([phone])?;
    Ok(Erasure {
        links: codes.iter().map(|c| ShortCode::from_trusted(c)).collect(),
        messages: messages as u64,
    })
}

#[async_trait]
impl LeadStore for EmbeddedStore {
    async fn erase_lead(&self, phone: &Phone) -> Result<Erasure, StoreError> {
        let phone = phone.clone();
        self.write(move |conn| erase(conn, phone.as_str()).map_err(sqlite))
            .await
    }
}
