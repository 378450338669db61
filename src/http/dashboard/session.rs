//! Dashboard sessions: signing in with an admin token gives a random session id in a
//! cookie (`HttpOnly`, `SameSite=Strict`, scoped to `/dashboard`), so the token never
//! sits in a page, a URL or the browser's storage. Sessions live in this instance's
//! memory: a restart, or another instance behind the same name, asks to sign in again.

use crate::domain::random_id;
use axum::http::{HeaderMap, header};
use std::time::Duration;

const COOKIE: &str = "akti_session";
/// A session ends this long after sign-in, or after this long unused.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const IDLE: Duration = Duration::from_secs(2 * 3600);
/// Most live sessions; beyond, the least recently used are forgotten.
const MOST: u64 = 10_000;

pub struct Sessions {
    live: moka::sync::Cache<String, ()>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            live: moka::sync::Cache::builder()
                .max_capacity(MOST)
                .time_to_live(LIFETIME)
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

impl Sessions {
    /// A new session, and the `Set-Cookie` value that hands it to the browser.
    pub fn start(&self) -> String {
        let id = random_id("ses_", 32);
        self.live.insert(id.clone(), ());
        format!(
            "{COOKIE}={id}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={}",
            LIFETIME.as_secs()
        )
    }

    /// Whether the request carries a live session.
    pub fn is_signed_in(&self, headers: &HeaderMap) -> bool {
        session_id(headers).is_some_and(|id| self.live.get(id).is_some())
    }

    /// Ends the request's session; the `Set-Cookie` value that clears the cookie.
    pub fn end(&self, headers: &HeaderMap) -> &'static str {
        if let Some(id) = session_id(headers) {
            self.live.invalidate(id);
        }
        "akti_session=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0"
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    (headers.get_all(header::COOKIE).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_is_live_from_sign_in_to_sign_out() {
        let sessions = Sessions::default();
        let cookie = sessions.start();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let pair = cookie.split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {pair}")).unwrap(),
        );
        assert!(sessions.is_signed_in(&headers));
        sessions.end(&headers);
        assert!(!sessions.is_signed_in(&headers));
        let mut forged = HeaderMap::new();
        forged.insert(
            header::COOKIE,
            HeaderValue::from_static("akti_session=ses_guess"),
        );
        assert!(!sessions.is_signed_in(&forged));
    }
}
