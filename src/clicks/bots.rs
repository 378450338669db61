//! Tells a lead's tap from a bot or a link preview, by `User-Agent`.
//!
//! The patterns live in `bot_patterns.txt` beside this file (with where each group comes
//! from) and are compiled once into three `RegexSet`s; classifying is then a few linear
//! scans of the agent, with no allocation.

use regex::RegexSet;
use std::sync::OnceLock;

const PATTERNS: &str = include_str!("bot_patterns.txt");

/// Who asked for a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visitor {
    Human,
    Bot,
}

struct Classifier {
    previews: RegexSet,
    humans: RegexSet,
    bots: RegexSet,
}

fn compile(patterns: &[&str]) -> RegexSet {
    regex::RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .build()
        // The file is compiled into the binary and covered by the tests below.
        .expect("bot_patterns.txt holds valid patterns")
}

fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        let (mut previews, mut humans, mut bots) = (Vec::new(), Vec::new(), Vec::new());
        let mut section = "";
        for line in PATTERNS.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = match name {
                    "preview" => "preview",
                    "human" => "human",
                    _ => "bot",
                };
                continue;
            }
            match section {
                "preview" => previews.push(line),
                "human" => humans.push(line),
                _ => bots.push(line),
            }
        }
        Classifier {
            previews: compile(&previews),
            humans: compile(&humans),
            bots: compile(&bots),
        }
    })
}

/// Compiles the patterns now, so the first redirect does not pay for it.
pub fn warm_up() {
    classifier();
}

/// A missing or blank agent is a bot. (The redirect path remembers the answer per agent:
/// [`super::agents::Agent::of`].)
pub fn classify(user_agent: Option<&str>) -> Visitor {
    match user_agent.map(str::trim).filter(|a| !a.is_empty()) {
        Some(agent) => scan(agent),
        None => Visitor::Bot,
    }
}

fn scan(agent: &str) -> Visitor {
    let c = classifier();
    if c.previews.is_match(agent) {
        Visitor::Bot
    } else if c.humans.is_match(agent) || !c.bots.is_match(agent) {
        Visitor::Human
    } else {
        Visitor::Bot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents of real phones and in-app browsers, as leads tap links.
    const HUMANS: &[&str] = &[
        // iOS Safari
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        // Chrome on iOS and Android
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.210 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36",
        // Samsung Internet
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        // Firefox, Edge, Opera on phones
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.64",
        "Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.193 Mobile Safari/537.36 OPR/79.0.4195.76647",
        // Android WebView and in-app browsers
        "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/449.0.0.39.107;FBBV/551839539;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.2;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/553459041]",
        "Mozilla/5.0 (Linux; Android 13; SM-A546B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/445.0.0.34.118;]",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 302.0.0.23.114 (iPhone14,5; iOS 16_5; en_US; en; scale=3.00; 1170x2532; 522553018)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/300.0.598994205 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.39.0.35 (like Safari/8615.2.9.10.4, panda)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_30.0.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Line/13.20.0",
        "Mozilla/5.0 (Linux; Android 12; NOH-NX9 Build/HUAWEINOH-NX9; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 HuaweiBrowser/14.0.0.322 HMSCore/6.11.0.302 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; U; Android 12; en-us; 2201117TG Build/SKQ1.211006.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.4.0-g",
        "Mozilla/5.0 (Linux; Android 11; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        // Desktop, for links opened from a synced phone
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    ];

    /// Previews, scanners, crawlers and libraries.
    const BOTS: &[&str] = &[
        // iMessage, Google Messages, Samsung Messages, WhatsApp/Signal
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
        "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36 Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/)",
        "GoogleMessages/20240301",
        "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0",
        "WhatsApp/2.23.20.0 A",
        "WhatsApp/2",
        // Slack, Telegram, Discord, Skype/Teams
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Slack-ImgProxy (+https://api.slack.com/robots)",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36 SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.81 Safari/537.36 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        // Security scanners
        "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))",
        "Mozilla/5.0 (compatible; urlscan.io)",
        "Mozilla/5.0 zgrab/0.x",
        // Crawlers
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        // HTTP libraries and command-line clients
        "curl/8.5.0",
        "Wget/1.21.4",
        "python-requests/2.31.0",
        "Python-urllib/3.11",
        "Go-http-client/1.1",
        "Go-http-client/2.0",
        "okhttp/4.12.0",
        "axios/1.6.7",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Java/17.0.2",
        "Apache-HttpClient/4.5.14 (Java/17.0.9)",
        "libwww-perl/6.72",
        "PostmanRuntime/7.36.1",
        "HTTPie/3.2.2",
        "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3803",
    ];

    #[test]
    fn real_browsers_and_in_app_browsers_are_human() {
        // Twice: the second answer comes from the per-thread memory of agents.
        for agent in HUMANS.iter().chain(HUMANS) {
            assert_eq!(classify(Some(agent)), Visitor::Human, "{agent}");
        }
    }

    #[test]
    fn previews_scanners_crawlers_and_libraries_are_bots() {
        for agent in BOTS.iter().chain(BOTS) {
            assert_eq!(classify(Some(agent)), Visitor::Bot, "{agent}");
        }
    }

    #[test]
    fn a_missing_or_blank_agent_is_a_bot() {
        assert_eq!(classify(None), Visitor::Bot);
        assert_eq!(classify(Some("")), Visitor::Bot);
        assert_eq!(classify(Some("   ")), Visitor::Bot);
    }

    #[test]
    fn a_preview_is_a_bot_even_when_it_also_looks_human() {
        let agent =
            "Mozilla/5.0 (Linux; Android 11; CUBOT_X30) Chrome/120.0 facebookexternalhit/1.1";
        assert_eq!(classify(Some(agent)), Visitor::Bot);
    }
}
