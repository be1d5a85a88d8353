//! The failure of one attempt of an effect, from whichever domain performed it. The effect layer
//! knows no domain: each domain's error implements [`Classify`] (transient or not, status, kind)
//! and converts into a [`Failure`] with `From`, so the arrows point from the domains down to here.

use std::time::Duration;

use super::Classify;
use crate::artifact::IntegrityError;

/// A failure of one attempt of an effect.
pub enum Failure {
    /// A domain's error, classified by the domain.
    Domain(Box<dyn Classify + Send + Sync>),
    /// A blocking task could not finish (panicked or was cancelled).
    Task(String),
}

impl Failure {
    /// Wraps a domain's classified error.
    pub fn new(e: impl Classify + Send + Sync + 'static) -> Failure {
        Failure::Domain(Box::new(e))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Domain(e) => e.fmt(f),
            Failure::Task(m) => write!(f, "internal task failed: {m}"),
        }
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Domain(e) => write!(f, "Failure({}: {e})", e.kind()),
            Failure::Task(m) => write!(f, "Failure::Task({m})"),
        }
    }
}

impl std::error::Error for Failure {}

impl Classify for Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Domain(e) => e.retryable(),
            Failure::Task(_) => false,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Domain(e) => e.retry_after(),
            Failure::Task(_) => None,
        }
    }
    fn status(&self) -> Option<u16> {
        match self {
            Failure::Domain(e) => e.status(),
            Failure::Task(_) => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Failure::Domain(e) => e.kind(),
            Failure::Task(_) => "internal",
        }
    }
}

/// Implements `From<$error> for Failure` for domain errors that implement [`Classify`].
#[macro_export]
macro_rules! into_failure {
    ($($t:ty),+ $(,)?) => {$(
        impl From<$t> for $crate::effect::Failure {
            fn from(e: $t) -> Self {
                $crate::effect::Failure::new(e)
            }
        }
    )+};
}

impl Classify for IntegrityError {
    fn retryable(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "integrity"
    }
}

crate::into_failure!(IntegrityError);
