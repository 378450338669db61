//! Listing links in Redis: a page of an index, in creation order.

use super::{RedisStore, keys};
use crate::domain::{Link, Page, Position};
use crate::store::{LinkQuery, StoreError};

pub(super) async fn list_links(
    store: &RedisStore,
    query: &LinkQuery,
) -> Result<Page<Link>, StoreError> {
    let index = match (&query.phone, &query.campaign_id) {
        (Some(phone), _) => keys::phone_index(phone),
        (None, Some(campaign)) => keys::campaign_index(campaign),
        (None, None) => keys::INDEX_ALL.to_owned(),
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
        let mut range = redis::cmd("ZRANGE");
        range
            .arg(&index)
            .arg(&from)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(want);
        let members: Vec<String> = store.query(&range).await?;
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
