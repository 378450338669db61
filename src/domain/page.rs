//! Pages of lists and where they end.

use chrono::{DateTime, Utc};

/// A page of a list, in the list's order, and the cursor of the page after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `limit` items from `found`, which holds up to one more than asked (read
    /// so, to know whether there is a next page): the cursor is the position of the last
    /// item kept, and only if one was left out.
    pub fn of(mut found: Vec<T>, limit: usize, position: impl Fn(&T) -> Position) -> Self {
        let next_cursor = (found.len() > limit).then(|| {
            found.truncate(limit);
            found
                .last()
                .map(|last| position(last).render())
                .unwrap_or_default()
        });
        Self {
            items: found,
            next_cursor,
        }
    }
}

/// Where a page of a list ended: the creation time (ms) and id of its last item. Every
/// list of both stores orders by creation time and then id, and its cursor is this, as
/// `<13-digit ms>:<id>`: any cursor of that form names a place in the list, whoever made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub ms: i64,
    pub id: String,
}

impl Position {
    pub fn of(at: &DateTime<Utc>, id: &str) -> Self {
        Self {
            ms: at.timestamp_millis(),
            id: id.to_owned(),
        }
    }

    /// The place before every item.
    pub fn start() -> Self {
        Self {
            ms: i64::MIN,
            id: String::new(),
        }
    }

    /// `None` for anything but `<13 digits>:<1 to 64 of A-Z a-z 0-9 _ ->`.
    pub fn parse(cursor: &str) -> Option<Self> {
        let (ms, id) = cursor.split_once(':')?;
        let is_id = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ms.len() != 13 || !ms.bytes().all(|b| b.is_ascii_digit()) || !is_id {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }

    /// The cursor text; also the member of Redis' lexically ordered indexes.
    pub fn render(&self) -> String {
        format!("{:013}:{}", self.ms, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::from_millis;

    #[test]
    fn a_cursor_is_thirteen_digits_and_an_id() {
        let position = Position::parse("1706443200000:abc_-9").unwrap();
        assert_eq!(position.ms, 1_706_443_200_000);
        assert_eq!(position.render(), "1706443200000:abc_-9");
        assert_eq!(
            Position::of(&from_millis(5), "x").render(),
            "0000000000005:x"
        );
        for bad in [
            "",
            "17:abc",
            "1706443200000",
            "1706443200000:",
            "170644320000a:x",
            "1706443200000:a b",
        ] {
            assert!(Position::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_page_has_a_cursor_only_when_an_item_was_left_out() {
        let at = |i: &i64| Position::of(&from_millis(*i), "x");
        let full = Page::of(vec![1, 2, 3], 2, at);
        assert_eq!(full.items, [1, 2]);
        assert_eq!(full.next_cursor.as_deref(), Some("0000000000002:x"));
        let last = Page::of(vec![1, 2], 2, at);
        assert_eq!((last.items.len(), last.next_cursor), (2, None));
    }
}
