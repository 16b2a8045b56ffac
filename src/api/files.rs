//! Authenticated downloads: `GET /files/{recordings|snapshots}/NAME` with
//! `Authorization: Bearer <jwt|api key>` or `X-API-Key`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::server::ApiState;
use crate::auth::Role;
use crate::storage::{FileKind, StorageError};

/// The download handler.
pub async fn download(
    State(state): State<ApiState>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(credential) = super::ws::bearer_token(&headers).or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }) else {
        return (StatusCode::UNAUTHORIZED, "authentication required").into_response();
    };
    match state.service.auth.verify(&credential) {
        Ok(caller) if caller.role >= Role::Viewer => {}
        Ok(_) => return (StatusCode::FORBIDDEN, "insufficient role").into_response(),
        Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    }
    let Some(kind) = FileKind::from_dir_name(&kind) else {
        return (StatusCode::NOT_FOUND, "no such file collection").into_response();
    };
    let path = match state.service.storage.existing(kind, &name) {
        Ok(path) => path,
        Err(e @ StorageError::InvalidName { .. }) => {
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        Err(e @ StorageError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Err(
            e @ (StorageError::Io { .. }
            | StorageError::Exists { .. }
            | StorageError::Create { .. }),
        ) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("mp4") => "video/mp4",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response()
}
