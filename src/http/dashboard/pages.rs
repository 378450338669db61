//! The dashboard's pages, rendered with maud (which escapes every value).

use super::charts::{self, Column};
use crate::domain::analytics::{Os, Report, TTC_BANDS};
use crate::domain::{Link, Stats};
use crate::store::{CampaignSummary, CampaignTotals};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

/// The ranges a campaign page offers, as (parameter, label, length in hours).
pub const RANGES: [(&str, &str, i64); 5] = [
    ("1h", "Last hour", 1),
    ("24h", "Last 24 hours", 24),
    ("7d", "Last 7 days", 7 * 24),
    ("30d", "Last 30 days", 30 * 24),
    ("90d", "Last 90 days", 90 * 24),
];

fn layout(title: &str, signed_in: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · akti-link" }
                link rel="stylesheet" href="/dashboard/assets/dashboard.css";
                @if signed_in {
                    script src="/dashboard/assets/dashboard.js" defer {}
                    noscript { meta http-equiv="refresh" content="60"; }
                }
            }
            body {
                header class="top" {
                    a class="brand" href="/dashboard" { "akti" span { "link" } }
                    @if signed_in {
                        form method="post" action="/dashboard/sign-out" {
                            button class="quiet" type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main id="content" { (body) }
            }
        }
    }
}

pub fn sign_in(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        false,
        html! {
            section class="card sign-in" {
                h1 { "Sign in" }
                p class="muted" { "Use an admin token of this akti-link (AKTI_ADMIN_TOKEN)." }
                @if let Some(error) = error { p class="error" role="alert" { (error) } }
                form method="post" action="/dashboard/sign-in" {
                    label for="token" { "Admin token" }
                    input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                    button type="submit" id="sign-in" { "Sign in" }
                }
            }
        },
    )
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

fn when(at: &Option<DateTime<Utc>>, tz: Tz) -> String {
    at.map(|t| t.with_timezone(&tz).format("%-d %b %Y %H:%M").to_string())
        .unwrap_or_else(|| "–".to_owned())
}

pub fn campaign_list(campaigns: &[CampaignSummary], next: Option<&str>) -> Markup {
    layout(
        "Campaigns",
        true,
        html! {
            h1 { "Campaigns" }
            @if campaigns.is_empty() {
                p class="card muted" { "No campaign yet: create links with the API, and they appear here." }
            } @else {
                div class="table-wrap card" {
                    table id="campaigns" {
                        thead { tr {
                            th { "Campaign" } th class="n" { "Links" } th class="n" { "Sent" }
                            th class="n" { "Delivered" } th class="n" { "Clicked leads" }
                            th class="n" { "Click-through" } th class="n" { "Human clicks" }
                            th class="n" { "Bot clicks" } th { "Last click (UTC)" }
                        } }
                        tbody {
                            @for c in campaigns {
                                @let s = &c.totals.stats;
                                tr data-campaign=(c.id.as_str()) {
                                    td { a href=(format!("/dashboard/campaigns/{}", c.id.as_str())) { (c.id.as_str()) } }
                                    td class="n" { (c.totals.links) }
                                    td class="n" { (s.messages_sent) }
                                    td class="n" { (s.messages_delivered) }
                                    td class="n" data-field="uniqueClicks" { (s.unique_clicks) }
                                    td class="n" { (percent(s.unique_clicks, s.messages_delivered)) }
                                    td class="n" data-field="clicks" { (s.clicks) }
                                    td class="n" data-field="botClicks" { (s.bot_clicks) }
                                    td { (when(&s.last_clicked_at, Tz::UTC)) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a class="button quiet" href=(format!("/dashboard?cursor={next}")) { "More campaigns →" } }
                }
            }
        },
    )
}

/// What the campaign page shows.
pub struct CampaignPage<'a> {
    pub campaign: &'a str,
    pub totals: &'a CampaignTotals,
    /// The report, or why the controls chosen give none.
    pub report: Result<Report, String>,
    pub range: &'a str,
    pub interval: &'a str,
    pub tz: &'a str,
    pub links: &'a [(Link, Stats)],
    pub short_url: &'a dyn Fn(&str) -> String,
    pub next_links: Option<String>,
}

/// The names of [`TTC_BANDS`], in their order.
const BAND_LABELS: [&str; TTC_BANDS.len()] = [
    "within 1 min",
    "1–5 min",
    "5–15 min",
    "15–60 min",
    "1–6 h",
    "6–24 h",
    "over a day",
];

pub fn campaign(page: &CampaignPage<'_>) -> Markup {
    let s = &page.totals.stats;
    let id = page.campaign;
    let tz: Tz = page.tz.parse().unwrap_or(Tz::UTC);
    let query = format!(
        "range={}&interval={}&tz={}",
        page.range, page.interval, page.tz
    );
    layout(
        id,
        true,
        html! {
            nav class="crumbs" { a href="/dashboard" { "← Campaigns" } }
            div class="title-row" {
                h1 { (id) }
                div class="downloads" {
                    a class="button quiet" id="links-csv" href=(format!("/dashboard/campaigns/{id}/links.csv")) download { "Links CSV" }
                    a class="button quiet" id="analytics-csv" href=(format!("/dashboard/campaigns/{id}/analytics.csv?{query}")) download { "Analytics CSV" }
                }
            }
            section class="kpis" {
                div class="kpi card" { span class="kpi-label" { "Sent" } span class="kpi-value" id="kpi-sent" { (s.messages_sent) } }
                div class="kpi card" { span class="kpi-label" { "Delivered" } span class="kpi-value" id="kpi-delivered" { (s.messages_delivered) } }
                div class="kpi card" { span class="kpi-label" { "Clicked leads" } span class="kpi-value" id="kpi-unique" { (s.unique_clicks) } }
                div class="kpi card accent" { span class="kpi-label" { "Click-through rate" } span class="kpi-value" id="kpi-ctr" { (percent(s.unique_clicks, s.messages_delivered)) } }
                div class="kpi card" { span class="kpi-label" { "Human clicks" } span class="kpi-value" id="kpi-clicks" { (s.clicks) } }
                div class="kpi card" { span class="kpi-label" { "Bots and previews" } span class="kpi-value" id="kpi-bots" { (s.bot_clicks) } }
            }
            section class="card" {
                h2 { "Funnel" span class="muted" { " · all time" } }
                (charts::bars(&[
                    ("Sent".to_owned(), s.messages_sent),
                    (format!("Delivered ({})", percent(s.messages_delivered, s.messages_sent)), s.messages_delivered),
                    (format!("Clicked ({})", percent(s.unique_clicks, s.messages_delivered)), s.unique_clicks),
                ], "funnel"))
            }
            form class="controls card" method="get" {
                label { "Range " select name="range" {
                    @for (value, label, _) in RANGES {
                        option value=(value) selected[value == page.range] { (label) }
                    }
                } }
                label { "Interval " select name="interval" {
                    @for (value, label) in [("auto", "Automatic"), ("minute", "Minute"), ("hour", "Hour"), ("day", "Day")] {
                        option value=(value) selected[value == page.interval] { (label) }
                    }
                } }
                label { "Time zone " input name="tz" list="zones" value=(page.tz) size="18"; }
                datalist id="zones" {
                    @for zone in chrono_tz::TZ_VARIANTS { option value=(zone.name()) {} }
                }
                button type="submit" { "Show" }
            }
            @match &page.report {
                Err(message) => { p class="card error" role="alert" { (message) } }
                Ok(report) => { (analytics(report, tz)) }
            }
            section class="card" {
                h2 { "Links" }
                div class="table-wrap" {
                    table id="links" {
                        thead { tr {
                            th { "Short link" } th { "Phone" } th { "Lead" } th { "Delivered" }
                            th { "First click" } th { "Last click" } th class="n" { "Clicks" } th class="n" { "Bots" }
                        } }
                        tbody {
                            @for (link, stats) in page.links {
                                tr {
                                    td { code { ((page.short_url)(link.code.as_str())) } }
                                    td { (link.phone.as_ref().map_or("–", |p| p.as_str())) }
                                    td { (link.external_lead_id.as_ref().map_or("–", |x| x.as_str())) }
                                    td { (when(&stats.delivered_at, tz)) }
                                    td { (when(&stats.first_clicked_at, tz)) }
                                    td { (when(&stats.last_clicked_at, tz)) }
                                    td class="n" { (stats.clicks) }
                                    td class="n" { (stats.bot_clicks) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next_links {
                    p { a class="button quiet" href=(format!("?{query}&links={next}")) { "Next links →" } }
                }
            }
        },
    )
}

fn analytics(report: &Report, tz: Tz) -> Markup {
    let label_format = match report.query.interval {
        crate::domain::analytics::Interval::Day => "%-d %b",
        _ => "%-d %b %H:%M",
    };
    let columns: Vec<Column> = (report.series.iter())
        .map(|b| Column {
            label: b.start.with_timezone(&tz).format(label_format).to_string(),
            humans: b.counts.clicks,
            bots: b.counts.bot_clicks,
        })
        .collect();
    let t = &report.totals;
    let bands: Vec<(String, u64)> = (BAND_LABELS.iter().zip(t.time_to_click))
        .map(|(l, n)| ((*l).to_owned(), n))
        .collect();
    let systems: Vec<(String, u64)> = Os::ALL
        .iter()
        .map(|o| (o.name().to_owned(), t.os[o.index()]))
        .collect();
    html! {
        section class="card" {
            h2 { "Clicks over time" span class="muted" { " · " (report.query.interval.name()) " in " (tz.name()) } }
            p class="legend" {
                span class="swatch humans" {} "Humans " strong id="range-clicks" { (t.clicks) }
                span class="swatch bots" {} "Bots and previews " strong id="range-bots" { (t.bot_clicks) }
                "Clicked leads " strong id="range-unique" { (t.unique_clicks) }
            }
            (charts::clicks_over_time(&columns))
        }
        div class="two" {
            section class="card" {
                h2 { "Time to click" span class="muted" { " · after delivery" } }
                (charts::bars(&bands, "ttc"))
            }
            section class="card" {
                h2 { "Systems" span class="muted" { " · human clicks" } }
                (charts::bars(&systems, "os"))
            }
        }
    }
}
