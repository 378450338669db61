-- The embedded store's schema. Times are unix milliseconds; a link without a lead has
-- phone ''.

CREATE TABLE IF NOT EXISTS links (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    code             TEXT    NOT NULL UNIQUE,
    campaign_id      TEXT    NOT NULL,
    phone            TEXT    NOT NULL,  -- '' for a link without a lead
    external_lead_id TEXT,
    url              TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,  -- unix milliseconds
    expires_at       INTEGER,
    disabled         INTEGER NOT NULL DEFAULT 0,
    ios_url          TEXT,
    android_url      TEXT,
    forward_query    INTEGER NOT NULL DEFAULT 0,
    liveness_set_at  INTEGER            -- when a PATCH last set disabled or expires_at
);
CREATE UNIQUE INDEX IF NOT EXISTS links_identity ON links (campaign_id, phone, url);
-- Every campaign that has had a link, with the time of its first.
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT    PRIMARY KEY,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS campaigns_by_time ON campaigns (created_at, campaign_id);
-- A campaign's settings for all its links (`domain::CampaignState`): each value with the
-- time it was set; NULL times for never set.
CREATE TABLE IF NOT EXISTS campaign_states (
    campaign_id    TEXT    PRIMARY KEY,
    disabled       INTEGER NOT NULL DEFAULT 0,
    disabled_at    INTEGER,
    expires_at     INTEGER,
    expires_set_at INTEGER
) WITHOUT ROWID;
-- Lists go by creation time, then code, as the cursor says (`domain::Position`).
DROP INDEX IF EXISTS links_by_campaign;
DROP INDEX IF EXISTS links_by_phone;
CREATE INDEX IF NOT EXISTS links_in_order ON links (created_at, code);
CREATE INDEX IF NOT EXISTS links_of_campaign_in_order ON links (campaign_id, created_at, code);
CREATE INDEX IF NOT EXISTS links_of_phone_in_order ON links (phone, created_at, code);

-- A lead's open dedup window: the click time that opened it, in ms, and that click's
-- event, so that the same click written again finds its own window.
CREATE TABLE IF NOT EXISTS windows (
    code       TEXT    PRIMARY KEY,
    opened_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    event_id   TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS link_stats (
    code             TEXT    PRIMARY KEY,
    clicks           INTEGER NOT NULL DEFAULT 0,
    click_events     INTEGER NOT NULL DEFAULT 0,
    bot_clicks       INTEGER NOT NULL DEFAULT 0,
    last_clicked_at  INTEGER,
    first_clicked_at INTEGER,
    delivered_at     INTEGER
);
CREATE TABLE IF NOT EXISTS campaign_stats (
    campaign_id        TEXT    PRIMARY KEY,
    clicks             INTEGER NOT NULL DEFAULT 0,
    click_events       INTEGER NOT NULL DEFAULT 0,
    bot_clicks         INTEGER NOT NULL DEFAULT 0,
    last_clicked_at    INTEGER,
    first_clicked_at   INTEGER,
    unique_clicks      INTEGER NOT NULL DEFAULT 0,
    messages_sent      INTEGER NOT NULL DEFAULT 0,
    messages_delivered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS subscriptions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    url          TEXT    NOT NULL,
    event_types  TEXT,              -- JSON array; NULL for every type
    campaign_ids TEXT,              -- JSON array; NULL for every campaign
    description  TEXT,
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    rate_limit   INTEGER            -- deliveries per second; NULL for no limit
);
CREATE INDEX IF NOT EXISTS subscriptions_in_order ON subscriptions (created_at, id);
CREATE TABLE IF NOT EXISTS events (
    id          TEXT    PRIMARY KEY,
    event_type  TEXT    NOT NULL,
    campaign_id TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
-- One row per event and matching subscription. Due when pending, next_attempt_at has
-- passed and no live lease holds it.
CREATE TABLE IF NOT EXISTS deliveries (
    sub_id          TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    status          TEXT    NOT NULL,   -- pending | delivered | failed
    attempts        TEXT    NOT NULL DEFAULT '[]',
    next_attempt_at INTEGER,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (sub_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_log ON deliveries (sub_id, created_at, event_id);
-- Messages, kept until expires_at (AKTI_MESSAGE_TTL) for late status reports.
CREATE TABLE IF NOT EXISTS messages (
    id               TEXT    PRIMARY KEY,
    campaign_id      TEXT    NOT NULL,
    phone            TEXT    NOT NULL,
    external_lead_id TEXT,
    original         TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    links            TEXT    NOT NULL,  -- JSON array of {url, shortUrl, code}
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
-- Counts batches already added, so that one written again adds nothing.
CREATE TABLE IF NOT EXISTS applied_batches (
    id         TEXT    PRIMARY KEY,
    applied_at INTEGER NOT NULL
);
-- The first report of each status of a message.
CREATE TABLE IF NOT EXISTS message_statuses (
    message_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, status)
);
-- Campaign time series: a row per bucket of a tier ('m' minutes, 'q' quarter hours), its
-- counts in BucketCounts's stored form; swept once expires_at has passed.
CREATE TABLE IF NOT EXISTS campaign_series (
    campaign_id TEXT    NOT NULL,
    tier        TEXT    NOT NULL,
    start       INTEGER NOT NULL,
    counts      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, tier, start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS campaign_series_expiry ON campaign_series (expires_at);
