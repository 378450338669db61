//! Every Redis key name, and the key names each script is given (scripts build none).
//!
//! Every key starts with `akti:`. The part in braces is a Redis Cluster hash tag: keys that
//! one script or command touches together share it.
//!
//! Links; every command touches one key:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:link:{<code>}` | hash | the link: `u` url, `c` campaign, `p` phone, `x` external lead id, `t` created (unix ms), `e` expires (unix ms), `d` disabled (`0`/`1`), `s` when a PATCH last set `d` or `e`, `i` iOS url, `a` Android url, `f` `1` to forward the query; absent fields are `null` (`f`: false). While its creation is under way it has `unfinished` and expires in 60 s |
//! | `akti:identity:{<campaign>}:<sha256(phone NUL url)>` | string | the code of the link with that identity: makes creation idempotent |
//! | `akti:campaign:{<campaign>}:state` | hash | the campaign's settings for all its links (`CampaignState`): `d` disabled (`0`/`1`) and `da` when set, `e` expiry (ms, empty when cleared) and `ea` when set |
//! | `akti:index:phone:{<phone>}` | sorted set | the list positions of the lead's links (see `index:all` below) |
//! | `akti:messages:phone:{<phone>}` | set | the ids of the messages to the lead, for erasing them; expires with the last of them |
//! | channel `akti:link-changes` | pub/sub | codes of links that changed, so that every instance drops them from its cache |
//!
//! Clicks, events, deliveries, messages and counters are spread over [`PARTITIONS`]
//! partitions, each with its own hash tag (`{p0.41}` … `{p15.11}`, written `{P}` below),
//! chosen so that the tags fall in 16 different blocks of 1,024 slots: on a cluster of
//! up to 16 primaries each gets a fair share. A link's clicks, their window, their events
//! and the deliveries of those events live in the partition of the link's code, so one
//! script keeps them atomic; a message and its status events in the partition of the
//! message id; an event without a link or message (tests, replays) in its own id's.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:meta` | hash | `layout`: the version of this layout, checked at start-up |
//! | `akti:{P}:window:<code>` | string | the click time (ms) and event id, joined by a bar, of the click that opened the lead's dedup window; expires with it (kept at least 60 s, so that a retried write finds it) |
//! | `akti:{P}:applied:<batch>:<n>` | string | a counts or series call already added, and what a counts call answered (the links it found first clicked); kept 10 minutes, so that a retried flush adds nothing and learns the same answer |
//! | `akti:{P}:stats:link:<code>` | hash | `clicks`, `clickEvents`, `botClicks`, `lastClickedAt`, `firstClickedAt` (ms of human clicks), `deliveredAt` (ms of the first delivered report of a message carrying the link) |
//! | `akti:{P}:stats:campaign:<campaign>` | hash | the same and `messagesSent`, `messagesDelivered`, for the campaign's work in this partition: the campaign's figures are the sums over the partitions |
//! | `akti:{P}:series:<tier>:<campaign>:<block>` | hash | a block of the campaign's time series, in the campaign's partition: tier `m` (a block is an hour of minute buckets, kept 49 hours) or `q` (6 hours of quarter-hour buckets, kept 400 days); `block` is its start ÷ its length; field: the bucket's place in the block (0 to 59 or 23), value: its counts (`BucketCounts::encode`, base 36). At most 60 or 24 small fields, so Redis keeps it a listpack |
//! | `akti:{P}:index:all` | sorted set | the links of this partition, as their list position `<created ms, 13 digits>:<code>` at score 0, so that `ZRANGE … BYLEX` pages in creation order; a listing merges the partitions |
//! | `akti:{P}:index:campaign:<campaign>` | sorted set | the same members, for one campaign |
//! | `akti:{P}:sub-filters` | hash | subscription id → its filter as the fan-out reads it (`SubscriptionFilter::encode`): this partition's copy of `akti:{subs}:filters`, written before a subscription is answered |
//! | `akti:{P}:event:<event id>` | hash | `t` type, `b` body, `at` created; kept for `AKTI_EVENT_RETENTION` |
//! | `akti:{P}:delivery:<sub id>:<event id>` | hash | `status`, `attempts` (JSON array), `next` (ms), `t`, `at`; kept as long |
//! | `akti:{P}:log:<sub id>` | sorted set | event ids by creation time: this partition's part of the delivery log |
//! | `akti:{P}:ready` | stream | deliveries due now (`s` sub, `e` event), read by the consumer group `dispatchers` |
//! | `akti:{P}:retry` | sorted set | sub id and event id, joined by a bar, by due time (ms) |
//! | `akti:{P}:message:<id>` | hash | a message: `c`, `p`, `x`, `o` original body, `b` rewritten body, `l` links (JSON), `at`, `exp`, and `s:<status>` (ms) once reported; expires after `AKTI_MESSAGE_TTL` |
//!
//! Subscriptions, read and written by the admin API and read by dispatchers, and the list
//! of campaigns (written once per campaign and creation call):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:{subs}:subs` | hash | subscription id → JSON record |
//! | `akti:{subs}:filters` | hash | subscription id → its filter; whether it is disabled is read here |
//! | `akti:{subs}:order` | sorted set | each subscription's list position at score 0 |
//! | `akti:{campaigns}:created` | hash | campaign id → when its first link was created (ms) |
//! | `akti:{campaigns}:order` | sorted set | each campaign's list position `<created ms, 13 digits>:<campaign>` at score 0 |
//! | `akti:slots:{<sub id>}` | sorted set | the send slots a rate-limited subscription was handed in the last second (`lua/take_slots.lua`), by time |
//! | `akti:instance:<consumer>` | string | the heartbeat of a live instance's dispatcher; expires when it stops |
//!
//! A delivery is in its partition's `ready` (due, or leased to a dispatcher until it
//! acknowledges it) or in `retry` (scheduled). Entries leased by a dispatcher whose
//! heartbeat expired are taken over at once; others once idle for longer than an attempt
//! can last.

use crate::domain::analytics::Tier;
use crate::domain::{CampaignId, Destination, MessageId, Phone};
use sha2::{Digest, Sha256};

/// The version of the layout above. An instance refuses a store that holds another one:
/// a different partitioning would look for windows and queues where they are not.
pub const LAYOUT: &str = "2";
pub const META: &str = "akti:meta";
/// Keys that only a store of layout 1 (everything under `{q}`) has.
pub const LAYOUT_ONE: [&str; 2] = ["akti:{q}:subs", "akti:{q}:ready"];
pub const CHANGES: &str = "akti:link-changes";
pub const SUBS: &str = "akti:{subs}:subs";
pub const SUB_FILTERS: &str = "akti:{subs}:filters";
pub const SUB_ORDER: &str = "akti:{subs}:order";
pub const CAMPAIGNS_CREATED: &str = "akti:{campaigns}:created";
pub const CAMPAIGNS_ORDER: &str = "akti:{campaigns}:order";
/// The consumer group of every partition's `ready` stream that every instance's
/// dispatcher joins.
pub const GROUP: &str = "dispatchers";

pub fn heartbeat(consumer: &str) -> String {
    format!("akti:instance:{consumer}")
}

pub fn link(code: &str) -> String {
    format!("akti:link:{{{code}}}")
}

pub fn campaign_state(campaign: &CampaignId) -> String {
    format!("akti:campaign:{{{}}}:state", campaign.as_str())
}

pub fn identity(campaign: &CampaignId, phone: Option<&Phone>, url: &Destination) -> String {
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

pub fn phone_index(phone: &Phone) -> String {
    format!("akti:index:phone:{{{}}}", phone.as_str())
}

pub fn send_slots(sub: &str) -> String {
    format!("akti:slots:{{{sub}}}")
}

pub fn phone_messages(phone: &Phone) -> String {
    format!("akti:messages:phone:{{{}}}", phone.as_str())
}

/// How many partitions the click, event and delivery work is spread over.
pub const PARTITIONS: usize = 16;

/// The key prefix of each partition; the tag of partition `n` hashes into slots
/// `n * 1024 .. (n + 1) * 1024` (a unit test checks it).
const PREFIXES: [&str; PARTITIONS] = [
    "akti:{p0.41}:",
    "akti:{p1.42}:",
    "akti:{p2.3}:",
    "akti:{p3.0}:",
    "akti:{p4.22}:",
    "akti:{p5.21}:",
    "akti:{p6.11}:",
    "akti:{p7.12}:",
    "akti:{p8.61}:",
    "akti:{p9.62}:",
    "akti:{p10.62}:",
    "akti:{p11.61}:",
    "akti:{p12.43}:",
    "akti:{p13.40}:",
    "akti:{p14.12}:",
    "akti:{p15.11}:",
];

/// One partition of the click, event and delivery keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(u8);

impl Partition {
    pub fn all() -> impl Iterator<Item = Partition> {
        (0..PARTITIONS as u8).map(Partition)
    }

    /// The partition of a link's code, a message id or an event id: FNV-1a, which any
    /// instance of any version computes the same.
    pub fn of(id: &str) -> Partition {
        let mut hash: u32 = 0x811c_9dc5;
        for b in id.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        Partition((hash % PARTITIONS as u32) as u8)
    }

    /// `items` grouped by their partition, each group in the order given.
    pub fn group<T>(
        items: impl IntoIterator<Item = T>,
        partition: impl Fn(&T) -> Partition,
    ) -> std::collections::BTreeMap<Partition, Vec<T>> {
        let mut groups = std::collections::BTreeMap::<Partition, Vec<T>>::new();
        for item in items {
            groups.entry(partition(&item)).or_default().push(item);
        }
        groups
    }

    pub fn from_index(n: usize) -> Option<Partition> {
        (n < PARTITIONS).then_some(Partition(n as u8))
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    fn key(self, rest: &str) -> String {
        let prefix = PREFIXES[self.index()];
        let mut key = String::with_capacity(prefix.len() + rest.len());
        key.push_str(prefix);
        key.push_str(rest);
        key
    }

    pub fn ready(self) -> String {
        self.key("ready")
    }

    pub fn retry(self) -> String {
        self.key("retry")
    }

    pub fn sub_filters(self) -> String {
        self.key("sub-filters")
    }

    pub fn index_all(self) -> String {
        self.key("index:all")
    }

    pub fn campaign_index(self, campaign: &CampaignId) -> String {
        self.key(&format!("index:campaign:{}", campaign.as_str()))
    }

    pub fn applied(self, batch: &str, call: usize) -> String {
        self.key(&format!("applied:{batch}:{call}"))
    }

    pub fn window(self, code: &str) -> String {
        self.key(&format!("window:{code}"))
    }

    pub fn link_stats(self, code: &str) -> String {
        self.key(&format!("stats:link:{code}"))
    }

    pub fn campaign_stats(self, campaign: &str) -> String {
        self.key(&format!("stats:campaign:{campaign}"))
    }

    /// A block of a campaign's series buckets of one tier (`block` its start, unix ms).
    pub fn series(self, tier: Tier, campaign: &CampaignId, block: i64) -> String {
        let (letter, n) = (tier.letter(), block / tier.block_ms());
        self.key(&format!("series:{letter}:{}:{n}", campaign.as_str()))
    }

    pub fn event(self, id: &str) -> String {
        self.key(&format!("event:{id}"))
    }

    pub fn delivery(self, sub: &str, event: &str) -> String {
        self.key(&format!("delivery:{sub}:{event}"))
    }

    pub fn log(self, sub: &str) -> String {
        self.key(&format!("log:{sub}"))
    }

    pub fn message(self, id: &MessageId) -> String {
        self.key(&format!("message:{}", id.as_str()))
    }

    /// What the fan-out (`lua/fan_out.lua`) is given first: the event prefix, the
    /// delivery prefix, the log prefix, the ready stream and the filters hash.
    pub fn fan_out(self) -> [String; 5] {
        [
            self.key("event:"),
            self.key("delivery:"),
            self.key("log:"),
            self.ready(),
            self.sub_filters(),
        ]
    }

    /// The window prefix (`lua/lead_clicks.lua`).
    pub fn windows(self) -> String {
        self.key("window:")
    }

    /// The counter prefixes: links, campaigns (`lua/add_counts.lua`,
    /// `lua/message_status.lua`).
    pub fn stats(self) -> [String; 2] {
        [self.key("stats:link:"), self.key("stats:campaign:")]
    }

    /// What `lua/finish.lua` is given first: the ready stream, its group, the retry set,
    /// the delivery prefix and the filters hash.
    pub fn finish(self) -> [String; 5] {
        [
            self.ready(),
            GROUP.to_owned(),
            self.retry(),
            self.key("delivery:"),
            self.sub_filters(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn each_partition_has_its_own_block_of_slots() {
        for p in Partition::all() {
            let slot = (0..1024u16)
                .map(|i| p.index() as u16 * 1024 + i)
                .find(|&s| Slot::for_key(p.ready()) == Slot::new(s).unwrap());
            assert!(slot.is_some(), "partition {p:?} is outside its block");
            // Every key of a partition is in its slot.
            assert_eq!(Slot::for_key(p.event("e")), Slot::for_key(p.ready()));
        }
    }

    #[test]
    fn codes_spread_evenly_over_the_partitions() {
        let mut counts = [0usize; PARTITIONS];
        for i in 0..16_000 {
            counts[Partition::of(&format!("c{i:07}")).index()] += 1;
        }
        for n in counts {
            assert!((800..1200).contains(&n), "{counts:?}");
        }
    }
}
