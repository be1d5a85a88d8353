//! How the errors of each domain are classified for retries and records: the one place that
//! knows which failures are transient.

use std::time::Duration;

use super::Classify;
use crate::artifact::IntegrityError;
use crate::notify::NotifyError;
use crate::oic::OicError;
use crate::rbac::RbacError;
use crate::vault::VaultError;

/// A failure of one attempt of an effect, from whichever domain performed it.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Oic(#[from] OicError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Rbac(#[from] RbacError),
    /// A blocking task could not finish (panicked or was cancelled).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Classify for Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Oic(e) => e.is_retryable(),
            Failure::Vault(e) => vault_retryable(e),
            Failure::Integrity(_) | Failure::Task(_) => false,
            Failure::Notify(e) => e.is_retryable(),
            Failure::Rbac(e) => e.is_retryable(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Oic(e) => e.retry_after(),
            Failure::Rbac(e) => e.retry_after(),
            _ => None,
        }
    }
    fn status(&self) -> Option<u16> {
        match self {
            Failure::Oic(e) => e.status(),
            Failure::Notify(e) => e.status(),
            Failure::Rbac(e) => e.status(),
            _ => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Failure::Oic(e) => e.kind(),
            Failure::Vault(_) => "vault",
            Failure::Integrity(_) => "integrity",
            Failure::Task(_) => "internal",
            Failure::Notify(e) => e.kind(),
            Failure::Rbac(e) => e.kind(),
        }
    }
}

/// Vault failures worth another attempt: a dropped or refused connection, and store I/O that
/// failed for a transient reason.
fn vault_retryable(e: &VaultError) -> bool {
    use std::io::ErrorKind as K;
    match e {
        VaultError::Connect { .. } => true,
        VaultError::Store { kind, .. } => matches!(
            kind,
            K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::TimedOut
                | K::UnexpectedEof
                | K::Interrupted
                | K::ConnectionRefused
                | K::NotConnected
        ),
        _ => false,
    }
}

impl Classify for OicError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
    fn retry_after(&self) -> Option<Duration> {
        OicError::retry_after(self)
    }
    fn status(&self) -> Option<u16> {
        OicError::status(self)
    }
    fn kind(&self) -> &'static str {
        OicError::kind(self)
    }
}
