//! The error type of the OIC client, classified for the effect layer's retry policy.

use std::time::Duration;

/// Everything that can go wrong talking to an OIC instance.
///
/// The client itself never retries (except one token renewal on a 401); the effect layer decides
/// from [`OicError::is_retryable`], [`OicError::status`] and [`OicError::retry_after`]. No variant
/// ever carries a token, a client secret or a password.
#[derive(Debug, thiserror::Error)]
pub enum OicError {
    /// The instance answered with a non-success status.
    #[error("{instance}: {method} {path}: HTTP {status}: {title}")]
    Http {
        /// The instance profile name.
        instance: String,
        /// `GET`, `POST`, ... (`POST(PATCH)` for a method-override update).
        method: String,
        /// The request path, without the query string.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// The `title` of the OIC error body, or the start of the body text.
        title: String,
        /// The `Retry-After` header, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// A write answered 409 while other writes of ferry's were in flight on the instance, on a
    /// call for which OIC documents no 409 of its own (not a create's "already exists", not a
    /// connection test's "not fully configured"): the instance refusing parallel writes, as
    /// OIC does for imports and activations. Retryable: the effect executor backs off and sends
    /// it again (the adaptive limiter has cut the write window meanwhile).
    #[error("{instance}: {method} {path}: HTTP 409 while other writes were in flight: {title}")]
    Busy {
        /// The instance profile name.
        instance: String,
        /// `POST`, `PUT`, `PATCH`, `DELETE`.
        method: String,
        /// The request path, without the query string.
        path: String,
        /// The `title` of the OIC error body, or the start of the body text.
        title: String,
    },
    /// The connection failed, was reset, or the body could not be read.
    #[error("{instance}: {method} {path}: transport error: {message}")]
    Transport {
        /// The instance profile name.
        instance: String,
        /// The HTTP method.
        method: String,
        /// The request path, without the query string.
        path: String,
        /// What failed (no URL, no secret).
        message: String,
    },
    /// No answer within the profile's timeout.
    #[error("{instance}: {method} {path}: timed out")]
    Timeout {
        /// The instance profile name.
        instance: String,
        /// The HTTP method.
        method: String,
        /// The request path, without the query string.
        path: String,
    },
    /// The token endpoint refused the client credentials (`invalid_client`, `invalid_scope`...).
    #[error("{instance}: authentication failed: {message}")]
    Auth {
        /// The instance profile name.
        instance: String,
        /// The token endpoint's error (`invalid_client: ...`).
        message: String,
    },
    /// A file is not a valid archive, or it does not hold what it should.
    #[error("{artifact}: {message}")]
    Archive {
        /// The archive (path or artifact key).
        artifact: String,
        /// What is wrong with it.
        message: String,
    },
    /// An activation ended in `FAILEDACTIVATION`, or did not finish in time.
    #[error("{instance}: {id}: activation {}: {message}", if *timed_out { "timed out" } else { "failed" })]
    Activation {
        /// The instance profile name.
        instance: String,
        /// `CODE|VERSION`.
        id: String,
        /// The last status seen (`FAILEDACTIVATION`, `ACTIVATION_INPROGRESS`, ...).
        status: String,
        /// The activation errors reported by OIC, or what was waited for.
        message: String,
        /// True when the poll loop gave up; the activation may still finish.
        timed_out: bool,
    },
    /// A success response whose body could not be understood.
    #[error("{instance}: {method} {path}: unexpected response: {message}")]
    Protocol {
        /// The instance profile name.
        instance: String,
        /// The HTTP method.
        method: String,
        /// The request path, without the query string.
        path: String,
        /// What was wrong with the body.
        message: String,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },
    /// The profile or an argument is unusable (bad URL, bad id, basic auth on OIC 3...).
    #[error("{0}")]
    Config(String),
}

impl crate::effect::Classify for OicError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        OicError::retry_after(self)
    }
    fn status(&self) -> Option<u16> {
        OicError::status(self)
    }
    fn kind(&self) -> &'static str {
        OicError::kind(self)
    }
}

crate::into_failure!(OicError);

impl OicError {
    /// The HTTP status, for [`OicError::Http`] (and 409 for [`OicError::Busy`]).
    pub fn status(&self) -> Option<u16> {
        match self {
            OicError::Http { status, .. } => Some(*status),
            OicError::Busy { .. } => Some(409),
            _ => None,
        }
    }

    /// True for failures that may succeed when repeated: 429, 500, 502, 503, 504, a 409 to a
    /// write refused while others were in flight ([`OicError::Busy`]), transport failures and
    /// timeouts. Any other 409 (already exists, not fully configured, a job running) is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            OicError::Http { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            OicError::Busy { .. } | OicError::Transport { .. } | OicError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OicError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable name of the variant: `http`, `busy`, `transport`, `timeout`, `auth`,
    /// `archive`, `activation`, `protocol`, `io`, `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            OicError::Http { .. } => "http",
            OicError::Busy { .. } => "busy",
            OicError::Transport { .. } => "transport",
            OicError::Timeout { .. } => "timeout",
            OicError::Auth { .. } => "auth",
            OicError::Archive { .. } => "archive",
            OicError::Activation { .. } => "activation",
            OicError::Protocol { .. } => "protocol",
            OicError::Io { .. } => "io",
            OicError::Config(_) => "config",
        }
    }

    /// True for an [`OicError::Http`] with this status (or [`OicError::Busy`] for 409).
    pub fn is_status(&self, code: u16) -> bool {
        self.status() == Some(code)
    }

    /// A 409 known, from what the caller has read since, to have been the instance refusing a
    /// write sent in parallel (a create answered 409 while the target turns out not to hold
    /// it): [`OicError::Busy`], retryable. Any other error is returned as it is.
    pub fn into_busy(self) -> OicError {
        match self {
            OicError::Http {
                instance,
                method,
                path,
                status: 409,
                title,
                ..
            } => OicError::Busy {
                instance,
                method,
                path,
                title,
            },
            e => e,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> OicError {
        OicError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> OicError {
        OicError::Http {
            instance: "dev".into(),
            method: "GET".into(),
            path: "/ic/api/integration/v1/integrations".into(),
            status,
            title: "t".into(),
            retry_after: if status == 429 {
                Some(Duration::from_secs(3))
            } else {
                None
            },
        }
    }

    #[test]
    fn classification() {
        for s in [429, 500, 502, 503, 504] {
            assert!(http(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 423, 501] {
            assert!(!http(s).is_retryable(), "{s}");
        }
        assert_eq!(http(412).status(), Some(412));
        assert_eq!(http(429).retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(http(409).kind(), "http");
        // a 409 is retryable only once known to be a refusal of parallel writes
        let busy = http(409).into_busy();
        assert!(busy.is_retryable());
        assert_eq!(busy.kind(), "busy");
        assert!(busy.is_status(409));
        assert!(!http(412).into_busy().is_retryable());
        assert_eq!(http(412).into_busy().kind(), "http");
        let t = OicError::Transport {
            instance: "a".into(),
            method: "GET".into(),
            path: "/x".into(),
            message: "reset".into(),
        };
        assert!(t.is_retryable());
        assert_eq!(t.kind(), "transport");
        assert_eq!(t.status(), None);
        let t = OicError::Timeout {
            instance: "a".into(),
            method: "GET".into(),
            path: "/x".into(),
        };
        assert!(t.is_retryable());
        assert_eq!(t.kind(), "timeout");
        let a = OicError::Auth {
            instance: "a".into(),
            message: "invalid_client".into(),
        };
        assert!(!a.is_retryable());
        assert_eq!(a.kind(), "auth");
        let a = OicError::Archive {
            artifact: "x.iar".into(),
            message: "not a zip".into(),
        };
        assert!(!a.is_retryable());
        assert_eq!(a.kind(), "archive");
        assert_eq!(OicError::Config("x".into()).kind(), "config");
        assert_eq!(
            OicError::io("read x", std::io::Error::other("boom")).kind(),
            "io"
        );
    }

    #[test]
    fn display_names_the_context() {
        assert_eq!(
            http(412).to_string(),
            "dev: GET /ic/api/integration/v1/integrations: HTTP 412: t"
        );
        let e = OicError::Activation {
            instance: "t".into(),
            id: "A|01.00.0000".into(),
            status: "FAILEDACTIVATION".into(),
            message: "m".into(),
            timed_out: false,
        };
        assert_eq!(e.to_string(), "t: A|01.00.0000: activation failed: m");
    }
}
