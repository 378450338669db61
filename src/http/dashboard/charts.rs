//! The dashboard's charts, drawn on the server as SVG: the page needs no script to show
//! them, and each bar carries a `<title>` that the browser shows on hover.

use maud::{Markup, html};

/// Bars over time: humans and bots stacked, one column per bucket.
pub struct Column {
    pub label: String,
    pub humans: u64,
    pub bots: u64,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;

pub fn clicks_over_time(columns: &[Column]) -> Markup {
    let top = columns.iter().map(|c| c.humans + c.bots).max().unwrap_or(0);
    let scale = nice_ceiling(top);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - BOTTOM - 8.0;
    let step = plot_w / columns.len().max(1) as f64;
    let bar = (step * 0.8).max(1.0);
    let y = |v: u64| 8.0 + plot_h - plot_h * v as f64 / scale as f64;
    // About six labels along the bottom, whatever the number of buckets.
    let every = columns.len().div_ceil(6).max(1);
    html! {
        svg class="chart" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-label="Clicks over time: humans and bots" {
            @for i in 0..=4u64 {
                @let v = scale * i / 4;
                line class="grid" x1=(LEFT) x2=(WIDTH - 8.0) y1=(y(v)) y2=(y(v)) {}
                text class="axis" x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" { (v) }
            }
            @for (i, c) in columns.iter().enumerate() {
                @let x = LEFT + i as f64 * step + (step - bar) / 2.0;
                g {
                    title { (c.label) ": " (c.humans) " human, " (c.bots) " bot" }
                    rect class="humans" x=(x) width=(bar) y=(y(c.humans)) height=(y(0) - y(c.humans)) {}
                    rect class="bots" x=(x) width=(bar) y=(y(c.humans + c.bots)) height=(y(c.humans) - y(c.humans + c.bots)) {}
                }
                @if i % every == 0 {
                    text class="axis" x=(x + bar / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { (c.label) }
                }
            }
        }
    }
}

/// Labelled horizontal bars (time to click, systems, the funnel), as HTML so that they
/// wrap on a phone.
pub fn bars(rows: &[(String, u64)], class: &str) -> Markup {
    let top = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    html! {
        div class=(format!("bars {class}")) {
            @for (label, n) in rows {
                div class="bar-row" {
                    span class="bar-label" { (label) }
                    // SVG, not a style attribute: the page's policy allows no inline style.
                    svg class="bar-track" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
                        rect class="bar-fill" x="0" y="0" height="10" width=(format!("{:.2}", 100.0 * *n as f64 / top as f64)) {}
                    }
                    span class="bar-value" { (n) }
                }
            }
        }
    }
}

/// The smallest of 4, 8, 20 × 10ⁿ not below `n`: a quarter of it, one grid step, is a
/// whole and readable number (1, 2, 5, 10, 20, 50…).
fn nice_ceiling(n: u64) -> u64 {
    let mut unit = 1;
    loop {
        for m in [4, 8, 20] {
            if m * unit >= n {
                return m * unit;
            }
        }
        unit *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_rounds_up_to_a_readable_number() {
        assert_eq!(nice_ceiling(0), 4);
        assert_eq!(nice_ceiling(7), 8);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(21), 40);
        assert_eq!(nice_ceiling(480), 800);
    }

    #[test]
    fn every_bucket_is_a_column_with_its_numbers_on_hover() {
        let columns: Vec<Column> = (0..30)
            .map(|i| Column {
                label: format!("h{i}"),
                humans: i,
                bots: 1,
            })
            .collect();
        let svg = clicks_over_time(&columns).into_string();
        assert_eq!(svg.matches("class=\"humans\"").count(), 30);
        assert!(svg.contains("<title>h7: 7 human, 1 bot</title>"));
    }
}
