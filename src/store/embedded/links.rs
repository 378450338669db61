//! Links in SQLite: one row each; the unique index on (campaign, phone, url) makes creation
//! idempotent.

use super::{EmbeddedStore, corrupt, sqlite};
use crate::domain::rules::{self, CODE_ATTEMPTS, Creation, Holder, NoFreeCode};
use crate::domain::{
    CampaignId, CampaignPatch, CampaignState, Destination, ExternalLeadId, Link, LinkPatch,
    NewLink, Page, Phone, Position, Routing, Setting, ShortCode, from_millis, now_millis,
};
use crate::store::{Created, LinkQuery, LinkStore, StoreError};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

const LINK_COLUMNS: &str = "code, campaign_id, phone, external_lead_id, url, created_at, \
    expires_at, disabled, ios_url, android_url, forward_query, liveness_set_at";

fn link_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    let phone: String = row.get(2)?;
    Ok(Link {
        code: ShortCode::from_trusted(&row.get::<_, String>(0)?),
        campaign_id: CampaignId::from_trusted(row.get(1)?),
        phone: (!phone.is_empty()).then(|| Phone::from_trusted(phone)),
        external_lead_id: row
            .get::<_, Option<String>>(3)?
            .map(ExternalLeadId::from_trusted),
        url: Destination::from_trusted(&row.get::<_, String>(4)?),
        created_at: from_millis(row.get(5)?),
        expires_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        disabled: row.get(7)?,
        routing: Routing {
            ios_url: (row.get::<_, Option<String>>(8)?).map(|u| Destination::from_trusted(&u)),
            android_url: (row.get::<_, Option<String>>(9)?).map(|u| Destination::from_trusted(&u)),
            forward_query: row.get(10)?,
        },
        liveness_set_at: row.get::<_, Option<i64>>(11)?.map(from_millis),
    })
}

fn phone_column(phone: Option<&Phone>) -> &str {
    phone.map_or("", Phone::as_str)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

fn find_by_identity(conn: &Connection, new: &NewLink) -> Result<Option<Link>, StoreError> {
    let (campaign, phone, url) = new.identity();
    conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE campaign_id = ?1 AND phone = ?2 AND url = ?3"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![campaign.as_str(), phone_column(phone), url.as_str()],
            link_from_row,
        )
        .optional()
    })
    .map_err(sqlite)
}

fn find_by_code(conn: &Connection, code: &str) -> Result<Option<Link>, StoreError> {
    conn.prepare_cached(&format!("SELECT {LINK_COLUMNS} FROM links WHERE code = ?1"))
        .and_then(|mut s| s.query_row([code], link_from_row).optional())
        .map_err(sqlite)
}

fn insert(conn: &Connection, link: &Link) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO links (code, campaign_id, phone, external_lead_id, url, created_at, \
         expires_at, disabled, ios_url, android_url, forward_query) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        link.code.as_str(),
        link.campaign_id.as_str(),
        phone_column(link.phone.as_ref()),
        link.external_lead_id.as_ref().map(ExternalLeadId::as_str),
        link.url.as_str(),
        link.created_at.timestamp_millis(),
        link.expires_at.map(|t| t.timestamp_millis()),
        link.disabled,
        link.routing.ios_url.as_ref().map(Destination::as_str),
        link.routing.android_url.as_ref().map(Destination::as_str),
        link.routing.forward_query,
    ])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO campaigns (campaign_id, created_at) VALUES (?1, ?2)",
    )?
    .execute(params![
        link.campaign_id.as_str(),
        link.created_at.timestamp_millis()
    ])?;
    Ok(())
}

fn create_one(conn: &Connection, new: NewLink, code_length: usize) -> Result<Created, StoreError> {
    let holder = match find_by_identity(conn, &new)? {
        Some(link) => Holder::Live(link),
        None => Holder::Free,
    };
    match rules::creation(holder, new.code.as_ref()) {
        Creation::Existing(link) => {
            return Ok(Created {
                link,
                is_new: false,
            });
        }
        Creation::IdentityTaken => return Err(StoreError::IdentityTaken),
        Creation::Create { .. } => {}
    }
    let custom = new.code.clone();
    let now = now_millis();
    for _ in 0..CODE_ATTEMPTS {
        let code = custom
            .clone()
            .unwrap_or_else(|| ShortCode::generate(code_length));
        let link = new.clone().into_link(code, now);
        match insert(conn, &link) {
            Ok(()) => return Ok(Created { link, is_new: true }),
            Err(e) if is_unique_violation(&e) && custom.is_some() => {
                return Err(StoreError::CodeTaken);
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(sqlite(e)),
        }
    }
    Err(StoreError::unavailable(NoFreeCode))
}

#[async_trait]
impl LinkStore for EmbeddedStore {
    async fn create_links(
        &self,
        links: Vec<NewLink>,
        code_length: usize,
    ) -> Result<Vec<Created>, StoreError> {
        self.write(move |conn| {
            links
                .into_iter()
                .map(|new| create_one(conn, new, code_length))
                .collect()
        })
        .await
    }

    async fn get_link(&self, code: &ShortCode) -> Result<Option<Link>, StoreError> {
        let code = code.clone();
        self.read(move |conn| find_by_code(conn, code.as_str()))
            .await
    }

    async fn update_link(
        &self,
        code: &ShortCode,
        patch: &LinkPatch,
    ) -> Result<Option<Link>, StoreError> {
        let (code, patch) = (code.clone(), patch.clone());
        self.write(move |conn| {
            let Some(mut link) = find_by_code(conn, code.as_str())? else {
                return Ok(None);
            };
            patch.apply(&mut link);
            let updated = conn
                .prepare_cached(
                    "UPDATE links SET url = ?2, disabled = ?3, expires_at = ?4, ios_url = ?5, \
                     android_url = ?6, forward_query = ?7, liveness_set_at = ?8 WHERE code = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        code.as_str(),
                        link.url.as_str(),
                        link.disabled,
                        link.expires_at.map(|t| t.timestamp_millis()),
                        link.routing.ios_url.as_ref().map(Destination::as_str),
                        link.routing.android_url.as_ref().map(Destination::as_str),
                        link.routing.forward_query,
                        link.liveness_set_at.map(|t| t.timestamp_millis()),
                    ])
                });
            match updated {
                Ok(_) => Ok(Some(link)),
                Err(e) if is_unique_violation(&e) => Err(StoreError::IdentityTaken),
                Err(e) => Err(sqlite(e)),
            }
        })
        .await
    }

    async fn delete_link(&self, code: &ShortCode) -> Result<bool, StoreError> {
        let code = code.clone();
        self.write(move |conn| {
            (conn.execute("DELETE FROM links WHERE code = ?1", [code.as_str()]))
                .map(|n| n > 0)
                .map_err(sqlite)
        })
        .await
    }

    async fn list_links(&self, query: &LinkQuery) -> Result<Page<Link>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut sql =
                format!("SELECT {LINK_COLUMNS} FROM links WHERE (created_at, code) > (?1, ?2)");
            if query.campaign_id.is_some() {
                sql.push_str(" AND campaign_id = ?3");
            }
            if query.phone.is_some() {
                sql.push_str(" AND phone = ?4");
            }
            sql.push_str(" ORDER BY created_at, code LIMIT ?5");
            let mut stmt = conn.prepare_cached(&sql).map_err(sqlite)?;
            let filters = [
                (3, query.campaign_id.as_ref().map(CampaignId::as_str)),
                (4, query.phone.as_ref().map(Phone::as_str)),
            ];
            for (index, value) in filters {
                if let Some(value) = value {
                    stmt.raw_bind_parameter(index, value).map_err(sqlite)?;
                }
            }
            stmt.raw_bind_parameter(1, query.after.ms).map_err(sqlite)?;
            stmt.raw_bind_parameter(2, &query.after.id)
                .map_err(sqlite)?;
            stmt.raw_bind_parameter(5, query.limit as i64 + 1)
                .map_err(sqlite)?;
            let mut rows = stmt.raw_query();
            let mut links = Vec::with_capacity(query.limit + 1);
            while let Some(row) = rows.next().map_err(sqlite)? {
                links.push(link_from_row(row).map_err(|e| corrupt(format!("a link row: {e}")))?);
            }
            Ok(Page::of(links, query.limit, |l| {
                Position::of(&l.created_at, l.code.as_str())
            }))
        })
        .await
    }

    async fn campaign_state(&self, campaign: &CampaignId) -> Result<CampaignState, StoreError> {
        let campaign = campaign.clone();
        self.read(move |conn| read_campaign_state(conn, &campaign))
            .await
    }

    async fn patch_campaign(
        &self,
        campaign: &CampaignId,
        patch: &CampaignPatch,
    ) -> Result<CampaignState, StoreError> {
        let (campaign, patch) = (campaign.clone(), patch.clone());
        self.write(move |conn| {
            let mut state = read_campaign_state(conn, &campaign)?;
            state.apply(&patch);
            let disabled = state.disabled.as_ref();
            let expires = state.expires_at.as_ref();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO campaign_states (campaign_id, disabled, disabled_at, \
                 expires_at, expires_set_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    campaign.as_str(),
                    disabled.is_some_and(|d| d.value),
                    disabled.map(|d| d.at.timestamp_millis()),
                    expires.and_then(|e| e.value).map(|t| t.timestamp_millis()),
                    expires.map(|e| e.at.timestamp_millis()),
                ])
            })
            .map_err(sqlite)?;
            Ok(state)
        })
        .await
    }
}

fn read_campaign_state(
    conn: &Connection,
    campaign: &CampaignId,
) -> Result<CampaignState, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT disabled, disabled_at, expires_at, expires_set_at FROM campaign_states \
             WHERE campaign_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([campaign.as_str()], |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .optional()
        })
        .map_err(sqlite)?;
    let Some((disabled, disabled_at, expires_at, expires_set_at)) = row else {
        return Ok(CampaignState::default());
    };
    Ok(CampaignState {
        disabled: disabled_at.map(|at| Setting {
            value: disabled,
            at: from_millis(at),
        }),
        expires_at: expires_set_at.map(|at| Setting {
            value: expires_at.map(from_millis),
            at: from_millis(at),
        }),
    })
}
