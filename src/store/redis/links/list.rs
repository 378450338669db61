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
/// `parts`, in order: list positions sort as strings. Links spread evenly over the parts,
/// so each part is asked for a share of the page rather than the whole page (which read
/// sixteen times the page on every page of an export); a part that fills its share may
/// hold more, and another round reads on from where the members known in order end.
async fn first_after(
    store: &RedisStore,
    parts: &[String],
    from: &str,
    want: usize,
) -> Result<Vec<String>, StoreError> {
    let share = want.min(want / parts.len() * 2 + 16);
    let mut members = Vec::with_capacity(want);
    let mut from = from.to_owned();
    loop {
        let ranges = (parts.iter())
            .map(|part| {
                let mut range = redis::cmd("ZRANGE");
                range.arg(part).arg(&from).arg("+").arg("BYLEX");
                range.arg("LIMIT").arg(0).arg(share);
                range
            })
            .collect();
        let replies: Vec<Vec<String>> = store.spread(ranges).await?;
        let (ordered, more) = merge_shares(replies, share);
        members.extend(ordered.into_iter().take(want - members.len()));
        match members.last() {
            Some(last) if more && members.len() < want => from = format!("({last}"),
            _ => return Ok(members),
        }
    }
}

/// The members of `replies` (each part's first `share` after a bound, in order) that are
/// known to come before anything unread, merged in order, and whether any part may hold
/// more: a part that answered its whole share may have members beyond its last, so only
/// members up to the smallest such last one are certain. That part's own share is among
/// them, so a round always makes progress.
fn merge_shares(replies: Vec<Vec<String>>, share: usize) -> (Vec<String>, bool) {
    let certain_to = (replies.iter())
        .filter(|reply| reply.len() == share)
        .filter_map(|reply| reply.last())
        .min()
        .cloned();
    let mut merged: Vec<String> = (replies.into_iter().flatten())
        .filter(|m| certain_to.as_ref().is_none_or(|end| m <= end))
        .collect();
    merged.sort_unstable();
    (merged, certain_to.is_some())
}

#[cfg(test)]
mod tests {
    use super::merge_shares;

    fn part(members: &[&str]) -> Vec<String> {
        members.iter().map(|m| (*m).to_owned()).collect()
    }

    #[test]
    fn parts_that_answered_less_than_their_share_are_merged_whole() {
        let (merged, more) = merge_shares(vec![part(&["b", "d"]), part(&["a"]), part(&[])], 3);
        assert_eq!(merged, ["a", "b", "d"]);
        assert!(!more);
    }

    #[test]
    fn nothing_past_the_end_of_a_full_share_is_taken_as_in_order() {
        // The first part may hold "c" after "b": "d" and "e" are not yet known to be next.
        let replies = vec![part(&["a", "b"]), part(&["d", "e"]), part(&["b0"])];
        let (merged, more) = merge_shares(replies, 2);
        assert_eq!(merged, ["a", "b"]);
        assert!(more);
    }

    #[test]
    fn the_full_share_that_ends_first_bounds_the_round() {
        let replies = vec![part(&["a", "f"]), part(&["b", "c"]), part(&["d"])];
        let (merged, more) = merge_shares(replies, 2);
        assert_eq!(merged, ["a", "b", "c"]);
        assert!(more);
    }
}
