//! Every Redis key name, and the key names each script is given (scripts build none).
//!
//! Every key starts with `akti:`. The part in braces is a Redis Cluster hash tag: keys that
//! one script or command touches together share it.
//!
//! Links; every command touches one key:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:link:{<code>}` | hash | the link: `u` url, `c` campaign, `p` phone, `x` external lead id, `t` created (unix ms), `e` expires (unix ms), `d` disabled (`0`/`1`); absent fields are `null`. While its creation is under way it has `unfinished` and expires in 60 s |
//! | `akti:identity:{<campaign>}:<sha256(phone NUL url)>` | string | the code of the link with that identity: makes creation idempotent |
//! | `akti:index:all` | sorted set | every link, as its list position `<created ms, 13 digits>:<code>` at score 0, so that `ZRANGE … BYLEX` pages in creation order |
//! | `akti:index:campaign:{<campaign>}` | sorted set | the same members, for one campaign |
//! | `akti:index:phone:{<phone>}` | sorted set | the same members, for one lead |
//! | channel `akti:link-changes` | pub/sub | codes of links that changed, so that every instance drops them from its cache |
//!
//! Clicks, events, deliveries and messages carry the tag `{q}`: a lead click's script opens
//! the window and fans the event out to deliveries atomically, and a delivery's outcome
//! moves it between the stream and the retry set, so these keys live in one slot.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:{q}:window:<code>` | string | the click time (ms) and event id, joined by a bar, of the click that opened the lead's dedup window; expires with it (kept at least 60 s, so that a retried write finds it) |
//! | `akti:{q}:applied:<batch>:<n>` | string | a counts call already added; kept 10 minutes, so that a retried flush adds nothing |
//! | `akti:{q}:stats:link:<code>` | hash | `clicks`, `clickEvents`, `botClicks`, `lastClickedAt` (ms) |
//! | `akti:{q}:stats:campaign:<campaign>` | hash | the same, summed, and `messagesSent`, `messagesDelivered` |
//! | `akti:{q}:subs` | hash | subscription id → JSON record |
//! | `akti:{q}:sub-filters` | hash | subscription id → its filter as the fan-out reads it (`SubscriptionFilter::encode`) |
//! | `akti:{q}:sub-order` | sorted set | each subscription's list position at score 0 |
//! | `akti:{q}:event:<event id>` | hash | `t` type, `b` body, `at` created; kept for `AKTI_EVENT_RETENTION` |
//! | `akti:{q}:delivery:<sub id>:<event id>` | hash | `status`, `attempts` (JSON array), `next` (ms), `t`, `at`; kept as long |
//! | `akti:{q}:log:<sub id>` | sorted set | event ids by creation time: the delivery log |
//! | `akti:{q}:ready` | stream | deliveries due now (`s` sub, `e` event), read by the consumer group `dispatchers` |
//! | `akti:{q}:retry` | sorted set | sub id and event id, joined by a bar, by due time (ms) |
//! | `akti:{q}:message:<id>` | hash | a message: `c`, `p`, `x`, `o` original body, `b` rewritten body, `l` links (JSON), `at`, `exp`, and `s:<status>` (ms) once reported; expires after `AKTI_MESSAGE_TTL` |
//!
//! A delivery is in `ready` (due, or leased to a dispatcher until it acknowledges it) or in
//! `retry` (scheduled). Entries leased by a dispatcher that died are taken over with
//! `XAUTOCLAIM` once idle for longer than an attempt can last.

use crate::domain::{CampaignId, Destination, MessageId, Phone};
use sha2::{Digest, Sha256};

pub const INDEX_ALL: &str = "akti:index:all";
pub const CHANGES: &str = "akti:link-changes";
pub const SUBS: &str = "akti:{q}:subs";
pub const SUB_FILTERS: &str = "akti:{q}:sub-filters";
pub const SUB_ORDER: &str = "akti:{q}:sub-order";
pub const READY: &str = "akti:{q}:ready";
pub const RETRY: &str = "akti:{q}:retry";
/// The consumer group of `READY` that every instance's dispatcher joins.
pub const GROUP: &str = "dispatchers";

const EVENT: &str = "akti:{q}:event:";
const DELIVERY: &str = "akti:{q}:delivery:";
const LOG: &str = "akti:{q}:log:";
const WINDOW: &str = "akti:{q}:window:";
const APPLIED: &str = "akti:{q}:applied:";
const LINK_STATS: &str = "akti:{q}:stats:link:";
const CAMPAIGN_STATS: &str = "akti:{q}:stats:campaign:";

pub fn link(code: &str) -> String {
    format!("akti:link:{{{code}}}")
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

pub fn campaign_index(campaign: &CampaignId) -> String {
    format!("akti:index:campaign:{{{}}}", campaign.as_str())
}

pub fn phone_index(phone: &Phone) -> String {
    format!("akti:index:phone:{{{}}}", phone.as_str())
}

pub fn window(code: &str) -> String {
    format!("{WINDOW}{code}")
}

pub fn applied(batch: &str, call: usize) -> String {
    format!("{APPLIED}{batch}:{call}")
}

pub fn link_stats(code: &str) -> String {
    format!("{LINK_STATS}{code}")
}

pub fn campaign_stats(campaign: &str) -> String {
    format!("{CAMPAIGN_STATS}{campaign}")
}

pub fn event(id: &str) -> String {
    format!("{EVENT}{id}")
}

pub fn delivery(sub: &str, event: &str) -> String {
    format!("{DELIVERY}{sub}:{event}")
}

pub fn log(sub: &str) -> String {
    format!("{LOG}{sub}")
}

pub fn message(id: &MessageId) -> String {
    format!("akti:{{q}}:message:{}", id.as_str())
}

/// What the fan-out (`lua/fan_out.lua`) is given first: the event prefix, the delivery
/// prefix, the log prefix, the ready stream and the filters hash.
pub const FAN_OUT: [&str; 5] = [EVENT, DELIVERY, LOG, READY, SUB_FILTERS];
/// The window prefix (`lua/lead_clicks.lua`).
pub const WINDOWS: &str = WINDOW;
/// The counter prefixes: links, campaigns (`lua/add_counts.lua`, `lua/message_status.lua`).
pub const STATS: [&str; 2] = [LINK_STATS, CAMPAIGN_STATS];
/// What `lua/finish.lua` is given first: the ready stream, its group, the retry set, the
/// delivery prefix and the filters hash.
pub const FINISH: [&str; 5] = [READY, GROUP, RETRY, DELIVERY, SUB_FILTERS];
