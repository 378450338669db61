//! The store contract: the same behaviour from both backends, called through the store's
//! ports directly.

mod clicks;
mod links;
mod outbox;
mod rules;

use crate::helpers::{Backend, RETENTION, RedisCluster, RedisServer};
use akti_link::domain::{
    CampaignId, Destination, NewLink, Phone, Routing, ShortCode, Subscription, SubscriptionFilter,
    SubscriptionId,
};
use akti_link::store::{Store, embedded::EmbeddedStore, redis::RedisStore};

/// A store of `backend` with whatever keeps it alive.
struct Fixture {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

fn open(backend: Backend) -> Fixture {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            Fixture {
                store: Box::new(EmbeddedStore::open(dir.path(), RETENTION).unwrap()),
                _dir: Some(dir),
                _redis: None,
                _cluster: None,
            }
        }
        Backend::Redis => {
            let redis = RedisServer::start();
            Fixture {
                store: Box::new(RedisStore::connect(&redis.url(), RETENTION, 0).unwrap()),
                _dir: None,
                _redis: Some(redis),
                _cluster: None,
            }
        }
        Backend::Cluster => {
            let cluster = RedisCluster::start();
            Fixture {
                store: Box::new(RedisStore::connect(&cluster.urls(), RETENTION, 0).unwrap()),
                _dir: None,
                _redis: None,
                _cluster: Some(cluster),
            }
        }
    }
}

fn new_link(campaign: &str, phone: Option<&str>, url: &str) -> NewLink {
    NewLink {
        campaign_id: CampaignId::parse(campaign).unwrap(),
        phone: phone.map(|p| Phone::parse(p).unwrap()),
        external_lead_id: None,
        url: Destination::parse(url).unwrap(),
        code: None,
        expires_at: None,
        routing: Routing::default(),
    }
}

fn with_code(mut link: NewLink, code: &str) -> NewLink {
    link.code = Some(ShortCode::parse(code).unwrap());
    link
}

/// A subscription to every event, named `id`.
fn subscription(id: &str) -> Subscription {
    Subscription {
        id: SubscriptionId::from_trusted(id.into()),
        url: "https://hooks.test/".into(),
        filter: SubscriptionFilter::default(),
        description: None,
        secret: akti_link::dispatch::signing::new_secret(),
        created_at: akti_link::domain::now_millis(),
        disabled: false,
        rate_limit: None,
    }
}
