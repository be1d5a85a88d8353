//! The one error type of the `ops` layer.

use crate::effect::EffectError;
use crate::oic::OicError;

/// Why a verb failed as a whole (a failure of one item is in that item's result instead, unless
/// the options ask to stop on the first error).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Bad options or arguments.
    #[error("{0}")]
    Usage(String),
    /// The run (Ctrl-C) was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An effect failed after its retries.
    #[error(transparent)]
    Effect(Box<EffectError>),
    /// A read of an instance failed (after its retries); `at` names the instance.
    #[error("{at}: {source}")]
    Oic {
        at: String,
        #[source]
        source: Box<OicError>,
    },
    /// A read of one item (`item`, `CODE|VERSION`) of instance `at` failed (after its retries).
    #[error("{at}: {item}: {source}")]
    OicItem {
        at: String,
        item: String,
        #[source]
        source: Box<OicError>,
    },
    /// The item the verb was given does not exist on instance `at` (an HTTP 404 to scripts).
    #[error("{kind} {item} does not exist on {at}")]
    NotFound {
        at: String,
        kind: crate::artifact::ArtifactKind,
        item: String,
    },
    /// The configuration does not hold what the verb needs.
    #[error(transparent)]
    Config(Box<crate::config::ConfigError>),
    /// The ledger could not be read.
    #[error("{0}")]
    Ledger(String),
    /// A connection could not be configured or failed its test (with `stop_on_error`); `at`
    /// names the instance.
    #[error("{at}: {message}")]
    Connection { at: String, message: String },
    /// A vault could not be opened, read or changed; `at` names the vault.
    #[error("vault {at}: {message}")]
    Vault { at: String, message: String },
}

impl OpsError {
    /// An OIC read error on instance `at`.
    pub fn oic(at: &str, source: OicError) -> OpsError {
        OpsError::Oic {
            at: at.to_string(),
            source: Box::new(source),
        }
    }

    /// An OIC read error about `item` on instance `at`.
    pub fn oic_item(at: &str, item: String, source: OicError) -> OpsError {
        OpsError::OicItem {
            at: at.to_string(),
            item,
            source: Box::new(source),
        }
    }

    /// An effect error, or [`OpsError::Cancelled`] when the run was cancelled.
    pub fn effect(e: EffectError) -> OpsError {
        if e.cancelled {
            OpsError::Cancelled
        } else {
            OpsError::Effect(Box::new(e))
        }
    }
}

impl From<EffectError> for OpsError {
    fn from(e: EffectError) -> OpsError {
        OpsError::effect(e)
    }
}

impl From<crate::config::ConfigError> for OpsError {
    fn from(e: crate::config::ConfigError) -> OpsError {
        OpsError::Config(Box::new(e))
    }
}
