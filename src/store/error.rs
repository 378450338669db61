//! What a store call can fail with: the store is out of reach, it holds something we
//! cannot read, our own request was wrong, or a conflict the caller must answer.

/// Errors say what happened, never which library failed; the cause is kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (down, unreachable, timed out, busy). Retry shortly.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Data in the store that we cannot read back: written by someone else, or damaged.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store refused a request of ours that should never be made (a query or script
    /// error, a constraint we did not expect): a bug here, not a reason to retry.
    #[error("store refused our request")]
    Bug(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A custom code is already used by a different link.
    #[error("code is taken by another link")]
    CodeTaken,
    /// A change would give this link the identity (campaign, phone, URL) of another link.
    #[error("another link has this campaign, phone and url")]
    IdentityTaken,
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    pub fn bug(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Bug(Box::new(e))
    }
}
