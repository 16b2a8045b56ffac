//! JSON-RPC errors: the one table from error kind to wire code.

use serde_json::{json, Value};

/// What went wrong, as far as a client is concerned. Each kind has exactly one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The message is not JSON.
    ParseError,
    /// The JSON is not a JSON-RPC 2.0 request object.
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// Missing, mistyped or unacceptable params.
    InvalidParams,
    /// A bug or an unexpected failure inside the service.
    Internal,
    /// Authentication required, or the credential was refused (expired, forged, wrong secret).
    AuthFailed,
    /// The connection sends requests faster than its rate limit.
    RateLimited,
    /// The caller's role is below the method's role.
    InsufficientRole,
    /// No camera with that id.
    CameraNotFound,
    /// The camera is not in a state that allows the call (already recording, not recording).
    InvalidState,
    /// MediaMTX or FFmpeg failed.
    MediaBackend,
    /// No such recording or snapshot.
    FileNotFound,
    /// The disk is above the block threshold.
    StorageFull,
    /// The media process limit is reached and no process ended in time; retry later.
    Busy,
}

impl ErrorKind {
    /// The JSON-RPC error code (standard −32700…−32603, service −32001…−32009).
    pub const fn code(self) -> i64 {
        match self {
            ErrorKind::ParseError => -32700,
            ErrorKind::InvalidRequest => -32600,
            ErrorKind::MethodNotFound => -32601,
            ErrorKind::InvalidParams => -32602,
            ErrorKind::Internal => -32603,
            ErrorKind::AuthFailed => -32001,
            ErrorKind::RateLimited => -32002,
            ErrorKind::InsufficientRole => -32003,
            ErrorKind::CameraNotFound => -32004,
            ErrorKind::InvalidState => -32005,
            ErrorKind::MediaBackend => -32006,
            ErrorKind::FileNotFound => -32007,
            ErrorKind::StorageFull => -32008,
            ErrorKind::Busy => -32009,
        }
    }
}

/// An error sent to a client: a kind and a message naming the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// The kind, which fixes the code.
    pub kind: ErrorKind,
    /// Human-readable message naming what was wrong.
    pub message: String,
}

impl RpcError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// `-32602` naming the parameter.
    pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::InvalidParams,
            format!("invalid params: `{name}` {reason}"),
        )
    }

    /// The `error` member of a response.
    pub fn to_json(&self) -> Value {
        json!({ "code": self.kind.code(), "message": self.message })
    }
}

/// Runs a request handler; a panic inside it becomes −32603 (logged with the method), so no
/// request can take its connection or the service down.
pub async fn catch_panic<F>(method: &str, handler: F) -> Result<Value, RpcError>
where
    F: std::future::Future<Output = Result<Value, RpcError>>,
{
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(not a text panic)".to_owned());
            tracing::error!(%method, "request handler panicked: {what}");
            Err(RpcError::new(
                ErrorKind::Internal,
                format!("Internal error: the {method} handler failed (see the service log)"),
            ))
        }
    }
}

// Domain errors → kinds. Together with `ErrorKind::code` this is the whole mapping to the wire.

impl From<crate::storage::StorageError> for RpcError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError;
        let kind = match &e {
            StorageError::InvalidName { .. } | StorageError::Exists { .. } => {
                ErrorKind::InvalidParams
            }
            StorageError::NotFound { .. } => ErrorKind::FileNotFound,
            StorageError::Create { .. } | StorageError::Io { .. } => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<crate::recording::RecordingError> for RpcError {
    fn from(e: crate::recording::RecordingError) -> Self {
        use crate::recording::RecordingError;
        match e {
            RecordingError::Storage(e) => e.into(),
            RecordingError::AlreadyRecording(_) | RecordingError::NotRecording(_) => {
                Self::new(ErrorKind::InvalidState, e.to_string())
            }
            RecordingError::StorageFull { .. } => Self::new(ErrorKind::StorageFull, e.to_string()),
            RecordingError::Create { .. } => Self::new(ErrorKind::MediaBackend, e.to_string()),
            RecordingError::Ffmpeg { camera, source } => {
                tracing::warn!(%camera, "recording failed: {source}");
                Self::new(
                    ErrorKind::MediaBackend,
                    format!("recording on camera {camera} failed: {}", source.summary()),
                )
            }
            RecordingError::NoOutput {
                ref camera,
                timeout,
                ..
            } => {
                tracing::warn!(%camera, "{e}");
                Self::new(
                    ErrorKind::MediaBackend,
                    format!(
                        "recording on camera {camera} produced no output within {}",
                        humantime::format_duration(timeout)
                    ),
                )
            }
        }
    }
}

impl From<crate::snapshot::SnapshotError> for RpcError {
    fn from(e: crate::snapshot::SnapshotError) -> Self {
        use crate::snapshot::SnapshotError;
        match e {
            SnapshotError::Storage(e) => e.into(),
            SnapshotError::Ffmpeg { camera, source } => {
                tracing::warn!(%camera, "snapshot failed: {source}");
                Self::new(
                    ErrorKind::MediaBackend,
                    format!("snapshot of camera {camera} failed: {}", source.summary()),
                )
            }
            SnapshotError::Busy(busy) => busy.into(),
            SnapshotError::Create { .. }
            | SnapshotError::Empty { .. }
            | SnapshotError::NoLiveFrame { .. } => {
                Self::new(ErrorKind::MediaBackend, e.to_string())
            }
        }
    }
}

impl From<crate::media_slots::Busy> for RpcError {
    fn from(e: crate::media_slots::Busy) -> Self {
        Self::new(ErrorKind::Busy, e.to_string())
    }
}

impl From<crate::auth::AuthError> for RpcError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        let kind = match &e {
            AuthError::Expired | AuthError::NotYetValid | AuthError::Invalid(_) => {
                ErrorKind::AuthFailed
            }
            AuthError::SecretFile { .. }
            | AuthError::SecretTooShort { .. }
            | AuthError::ApiKeyFile { .. } => ErrorKind::Internal,
        };
        Self::new(kind, format!("Authentication failed: {e}"))
    }
}
