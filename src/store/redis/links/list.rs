//! Listing links in Redis: a page of an index, in creation order. The listing and campaign
//! indexes are kept in parts, one per partition, and merged; a lead's is one key.

use super::RedisStore;
use crate::domain::{Link, Page, Position};
use crate::store::redis::keys::{self, Partition};
use crate::store::{LinkQuery, StoreError};

pub(super) async fn list_links(
    store: &RedisStore,
    query: &LinkQuery,
) -> Result<Page<Link>, StoreError> {
    let parts: Vec<String> = match (&query.phone, &query.campaign_id) {
        (Some(phone), _) => vec![keys::phone_index(phone)],
        (None, Some(campaign)) => Partition::all()
            .map(|p| p.campaign_index(campaign))
            .collect(),
        (None, None) => Partition::all().map(Partition::index_all).collect(),
    };
    let mut from = if query.after == Position::start() {
        "-".to_owned()
    } else {
        format!("({}", query.after.render())
    };
    // One more than asked, to know whether there is a next page. With a phone and a
    // campaign, the phone index is filtered by campaign, page after page.
    let want = query.limit + 1;
    let mut found: Vec<Link> = Vec::with_capacity(want);
    loop {
        let members = first_after(store, &parts, &from, want).await?;
        let codes: Vec<String> = members
            .iter()
            .map(|m| Position::parse(m).map_or_else(String::new, |p| p.id))
            .collect();
        for stored in store.fetch_links(&codes).await?.into_iter().flatten() {
            let in_campaign =
                (query.campaign_id.as_ref()).is_none_or(|c| *c == stored.link.campaign_id);
            if in_campaign && found.len() < want {
                found.push(stored.link);
            }
        }
        match members.last() {
            Some(last) if members.len() == want && found.len() < want => from = format!("({last}"),
            _ => break,
        }
    }
    Ok(Page::of(found, query.limit, |l| {
        Position::of(&l.created_at, l.code.as_str())
    }))
}

/// The first `want` members after `from` (a `ZRANGE … BYLEX` bound) of the union of
/// `parts`, in order: list positions sort as strings.
async fn first_after(
    store: &RedisStore,
    parts: &[String],
    from: &str,
    want: usize,
) -> Result<Vec<String>, StoreError> {
    let ranges = (parts.iter())
        .map(|part| {
            let mut range = redis::cmd("ZRANGE");
            range.arg(part).arg(from).arg("+").arg("BYLEX");
            range.arg("LIMIT").arg(0).arg(want);
            range
        })
        .collect();
    let mut members: Vec<String> = (store.spread::<Vec<String>>(ranges).await?)
        .into_iter()
        .flatten()
        .collect();
    members.sort_unstable();
    members.truncate(want);
    Ok(members)
}
