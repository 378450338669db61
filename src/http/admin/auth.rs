//! Bearer-token authentication of the `/v1` API.
//!
//! Tokens are compared as SHA-256 digests in constant time, against every configured token
//! without stopping at the first match, so that neither the content nor the length of a
//! token leaks through timing. Tokens are never logged.

use crate::http::AppState;
use crate::http::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub struct AdminAuth {
    digests: Vec<[u8; 32]>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AdminAuth {
    pub fn new(tokens: &[String]) -> Self {
        Self {
            digests: tokens.iter().map(|t| digest(t)).collect(),
        }
    }

    /// `true` when `Authorization` carries one of the configured tokens.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        authorization
            .and_then(bearer_token)
            .is_some_and(|token| self.accepts_token(token))
    }

    /// `true` when `token` is one of the configured tokens (the dashboard's sign-in).
    pub fn accepts_token(&self, token: &str) -> bool {
        if token.is_empty() {
            return false;
        }
        let presented = digest(token);
        let mut matched = subtle::Choice::from(0);
        for known in &self.digests {
            matched |= known.ct_eq(&presented);
        }
        matched.into()
    }
}

/// The token of `Bearer <token>`; the scheme is case-insensitive (RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Guards every path under `/v1`; operator routes (`/metrics`, `/healthz`, `/readyz`) are
/// open, which is why this listener must stay private.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !(path == "/v1" || path.starts_with("/v1/")) {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.auth.accepts(authorization) {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_token_and_nothing_else() {
        let auth = AdminAuth::new(&["alpha".into(), "beta".into()]);
        assert!(auth.accepts(Some("Bearer alpha")));
        assert!(auth.accepts(Some("bearer beta")));
        assert!(!auth.accepts(Some("Bearer gamma")));
        assert!(!auth.accepts(Some("Bearer alph")));
        assert!(!auth.accepts(Some("Basic alpha")));
        assert!(!auth.accepts(Some("Bearer ")));
        assert!(!auth.accepts(None));
    }

    #[test]
    fn no_configured_token_accepts_nothing() {
        let auth = AdminAuth::new(&[]);
        assert!(!auth.accepts(Some("Bearer ")));
        assert!(!auth.accepts(Some("Bearer anything")));
    }
}
