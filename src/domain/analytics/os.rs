//! The system of a human click, from its `User-Agent`.

/// The systems a campaign's human clicks are counted by, in the order the API lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    Ios,
    Android,
    Windows,
    MacOs,
    Linux,
    Other,
}

impl Os {
    pub const ALL: [Os; 6] = [
        Os::Ios,
        Os::Android,
        Os::Windows,
        Os::MacOs,
        Os::Linux,
        Os::Other,
    ];

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Os::Ios => "iOS",
            Os::Android => "Android",
            Os::Windows => "Windows",
            Os::MacOs => "macOS",
            Os::Linux => "Linux",
            Os::Other => "other",
        }
    }

    /// The system named in an agent's platform, judged by a few substrings rather than a
    /// parser: this runs on the redirect path for every human click, where a full
    /// `User-Agent` parser would cost more than the redirect itself. Android agents also
    /// name Linux, and iOS ones "like Mac OS X", so those are looked for first. (An iPad on
    /// iPadOS 13 or later asks for desktop pages as a Mac and is counted as one.)
    pub fn of(agent: Option<&str>) -> Os {
        let Some(agent) = agent else {
            return Os::Other;
        };
        // The platform is in the first parenthesis; apps' webviews add their own tokens
        // after it, which must not decide.
        let platform = agent
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map_or(agent, |(platform, _)| platform);
        let has = |needle: &str| platform.contains(needle);
        if has("iPhone") || has("iPad") || has("iPod") {
            Os::Ios
        } else if has("Android") {
            Os::Android
        } else if has("Windows") {
            Os::Windows
        } else if has("Macintosh") || has("Mac OS X") {
            Os::MacOs
        } else if has("Linux") || (has("X11") && !has("CrOS")) {
            Os::Linux
        } else {
            Os::Other
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_desktops_are_told_apart_by_their_platform() {
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                Os::Ios,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
                Os::Ios,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like \
                 Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
                Os::Android,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0",
                Os::Windows,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
                Os::MacOs,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                Os::Linux,
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36",
                Os::Other,
            ),
            // An app's token after the platform does not decide.
            (
                "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Instagram 300.0 (iPhone)",
                Os::Android,
            ),
            ("curl/8.5.0", Os::Other),
        ];
        for (agent, os) in cases {
            assert_eq!(Os::of(Some(agent)), os, "{agent}");
        }
        assert_eq!(Os::of(None), Os::Other);
    }
}
